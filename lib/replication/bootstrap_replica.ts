/**
 * The replica's side of the bootstrap (docs/protocol.md, "Bootstrap (TCP control
 * connection)"): listen, send CHALLENGE, check the HELLO's mac, let `accept()` decide,
 * answer WELCOME or REFUSE, wait for READY, then hand the session over.
 *
 * @example
 * ```ts ignore
 * const server = await serveBootstrap({ port: 0, secret, accept, onSession });
 * // ... later:
 * await server.close();
 * ```
 *
 * @module
 */

import { assert } from "../assert.ts";
import {
  type AcceptContext,
  type AcceptDecision,
  handshakeFailure,
  refuseAndClose,
  tryRefuse,
  welcomePrimary,
} from "./bootstrap_replica_handshake.ts";
import {
  BootstrapError,
  bootstrapPortDefault,
  Channel,
  checkOptions,
  controlTimeoutMsBounds,
  expectType,
  formatAddr,
  importSecret,
  messageOf,
  sleep,
} from "./control_channel.ts";
import type { Hello, WelcomeFields } from "./control_messages.ts";

export type { AcceptContext, AcceptDecision };

/** Default time allowed for one whole handshake on the replica, `accept()` included. */
export const handshakeTimeoutMsDefault = 15_000;
/** Default bound on handshakes in progress at once; more connections are refused BUSY. */
export const handshakesMaxDefault = 8;
/**
 * Default time from accepting a connection to a HELLO whose mac checks out. A primary sends
 * its HELLO as soon as the CHALLENGE arrives (well under 100 ms on a host); 2 s leaves room
 * for a slow lab VM (TCG) while a silent connection holds a slot 2 s, not 5 s or 15 s.
 */
export const authTimeoutMsDefault = 2_000;
/** Default bound on handshakes in progress at once from one source address. A primary
 * makes one at a time; 2 lets it start over while its last attempt is still timing out. */
export const handshakesPerSourceMaxDefault = 2;

const acceptRetryDelayMs = 100;
// Numeric options: default, min, max; checked in this order.
const bounds = {
  controlTimeoutMs: controlTimeoutMsBounds,
  handshakeTimeoutMs: [handshakeTimeoutMsDefault, 1, 3_600_000],
  handshakesMax: [handshakesMaxDefault, 1, 1024],
  authTimeoutMs: [authTimeoutMsDefault, 1, 600_000],
  handshakesPerSourceMax: [handshakesPerSourceMaxDefault, 1, 1024],
  port: [bootstrapPortDefault, 0, 65_535],
} as const;

/** A finished handshake, handed to `onSession`; the caller owns and closes it. */
export interface BootstrapSession {
  /** The primary's HELLO, mac checked. */
  readonly hello: Hello;
  /** The fields this replica granted. */
  readonly welcome: WelcomeFields;
  /** The primary's TCP address. */
  readonly remoteAddr: Deno.NetAddr;
  /** The control connection, silent after READY; its closing ends the session. */
  readonly conn: Deno.TcpConn;
  /** Resolves when the primary closes the connection (or breaks the silence). */
  waitClosed(): Promise<void>;
  /** Closes the control connection; idempotent. */
  close(): void;
}

/** Options of {@linkcode serveBootstrap}. */
export interface ServeBootstrapOptions {
  /** Shared secret, 8 to 1024 UTF-8 bytes (the CLI reads --secret or RRL_SECRET). */
  secret: string;
  /** Decides on a HELLO whose mac checked out: set up the QP and ring, or refuse. */
  accept(hello: Hello, context: AcceptContext): Promise<AcceptDecision>;
  /** Receives each session once the primary's READY arrived. */
  onSession(session: BootstrapSession): void | Promise<void>;
  /** Address to listen on; default `127.0.0.1`. */
  hostname?: string;
  /** Port to listen on; `0` picks a free one; default {@linkcode bootstrapPortDefault}. */
  port?: number;
  /** Where failed handshakes are reported, one line each; default `console.error`. */
  log?: (line: string) => void;
  /** Closes the server when aborted. */
  signal?: AbortSignal;
  /** Time allowed to read or write one frame; default 5000 ms. */
  controlTimeoutMs?: number;
  /** Time allowed for one handshake, `accept()` included; default 15000 ms. */
  handshakeTimeoutMs?: number;
  /** Handshakes in progress at once; more connections are refused BUSY; default 8. */
  handshakesMax?: number;
  /** Time from accepting a connection to a HELLO whose mac checks out; a connection
   * without one by then is closed; default 2000 ms. */
  authTimeoutMs?: number;
  /** Handshakes in progress at once from one source IP address; more from it are refused
   * BUSY; default 2. */
  handshakesPerSourceMax?: number;
}

/** A running bootstrap listener. */
export interface BootstrapServer {
  /** The bound address. */
  readonly addr: Deno.NetAddr;
  /** The bound port (useful with `port: 0`). */
  readonly port: number;
  /** Stops accepting, aborts handshakes in progress and waits for them; sessions already
   * handed over stay open. Idempotent. */
  close(): Promise<void>;
  /** Same as `close()`, for `await using`. */
  [Symbol.asyncDispose](): Promise<void>;
}

type ServerSettings =
  & Required<Omit<ServeBootstrapOptions, "secret" | "hostname" | "port" | "signal">>
  & { key: CryptoKey };

class Server implements BootstrapServer {
  readonly addr: Deno.NetAddr;
  readonly port: number;
  #listener: Deno.TcpListener;
  #settings: ServerSettings;
  #stops = new Set<(error: BootstrapError) => void>();
  #tasks = new Set<Promise<void>>();
  #handshakes = 0;
  #handshakesBySource = new Map<string, number>();
  #closing = new AbortController();
  #loop: Promise<void>;

  constructor(listener: Deno.TcpListener, settings: ServerSettings) {
    this.#listener = listener;
    this.#settings = settings;
    this.addr = listener.addr;
    this.port = listener.addr.port;
    this.#loop = this.#acceptLoop();
  }

  async close(): Promise<void> {
    if (!this.#closing.signal.aborted) {
      this.#closing.abort();
      this.#listener.close();
      const message = "The bootstrap server closed during the handshake";
      const error = new BootstrapError("ABORTED", message);
      for (const stop of this.#stops) stop(error);
    }
    await this.#loop;
    while (this.#tasks.size > 0) await Promise.all(this.#tasks);
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  // A failing logger must not stop the server.
  #log(line: string): void {
    try {
      this.#settings.log(line);
    } catch { /* nowhere left to report it */ }
  }

  async #acceptLoop(): Promise<void> {
    while (!this.#closing.signal.aborted) {
      let conn: Deno.TcpConn;
      try {
        conn = await this.#listener.accept();
      } catch (error) {
        if (this.#closing.signal.aborted) return;
        this.#log(`bootstrap: accept failed: ${messageOf(error)}; retrying`);
        await sleep(acceptRetryDelayMs, this.#closing.signal);
        continue;
      }
      if (this.#closing.signal.aborted) return conn.close();
      const busy = this.#busyText(conn.remoteAddr.hostname);
      const task = (busy === null ? this.#serve(conn) : this.#refuseBusy(conn, busy))
        .catch((error) => this.#log(`bootstrap: bug: ${messageOf(error)}`));
      this.#tasks.add(task);
      task.finally(() => this.#tasks.delete(task));
    }
  }

  #channel(conn: Deno.TcpConn): Channel {
    const peer = `primary ${formatAddr(conn.remoteAddr)}`;
    return new Channel(conn, peer, this.#settings.controlTimeoutMs);
  }

  // Why a new connection from `source` must be refused BUSY, or null if it has a slot.
  #busyText(source: string): string | null {
    const { handshakesMax, handshakesPerSourceMax } = this.#settings;
    if (this.#handshakes >= handshakesMax) {
      return `${handshakesMax} handshakes already in progress`;
    }
    if ((this.#handshakesBySource.get(source) ?? 0) >= handshakesPerSourceMax) {
      return `${handshakesPerSourceMax} handshakes already in progress from ${source}`;
    }
    return null;
  }

  // Counts a handshake in (+1) or out (-1), in all and for its source address.
  #count(source: string, step: 1 | -1): void {
    const bySource = (this.#handshakesBySource.get(source) ?? 0) + step;
    assert(bySource >= 0 && this.#handshakes + step >= 0, "handshake counts went negative");
    this.#handshakes += step;
    if (bySource === 0) this.#handshakesBySource.delete(source);
    else this.#handshakesBySource.set(source, bySource);
  }

  async #refuseBusy(conn: Deno.TcpConn, text: string): Promise<void> {
    const channel = this.#channel(conn);
    const stop = (error: BootstrapError) => channel.fail(error);
    this.#stops.add(stop);
    this.#log(`bootstrap: BUSY: refused the ${channel.peer}: ${text}`);
    await tryRefuse(channel, "BUSY", text);
    channel.close();
    this.#stops.delete(stop);
  }

  async #serve(conn: Deno.TcpConn): Promise<void> {
    const { handshakeTimeoutMs, authTimeoutMs } = this.#settings;
    const source = conn.remoteAddr.hostname;
    this.#count(source, 1);
    const channel = this.#channel(conn);
    const controller = new AbortController();
    const stop = (error: BootstrapError) => {
      controller.abort(error);
      channel.fail(error);
    };
    const deadline = setTimeout(() => {
      const message = `Handshake with the ${channel.peer} took more than ${handshakeTimeoutMs} ms`;
      stop(new BootstrapError("TIMEOUT", message));
    }, handshakeTimeoutMs);
    // Tighter than the whole handshake: without the secret, a slot is held this long at most.
    const authDeadline = setTimeout(() => {
      const message = `The ${channel.peer} sent no HELLO with a valid mac within ` +
        `${authTimeoutMs} ms (a primary sends it at once; raise authTimeoutMs for a slow link)`;
      stop(new BootstrapError("TIMEOUT", message));
    }, authTimeoutMs);
    this.#stops.add(stop);
    let welcomed = false; // once WELCOME is sent, no REFUSE may follow
    try {
      const { key, accept } = this.#settings;
      const { signal } = controller;
      const authenticated = () => clearTimeout(authDeadline);
      const options = { key, accept, signal, authenticated };
      const { hello, welcome } = await welcomePrimary(channel, options);
      welcomed = true;
      expectType(await channel.read("READY"), "READY", channel.peer);
      clearTimeout(deadline);
      this.#deliver({
        hello,
        welcome,
        remoteAddr: conn.remoteAddr,
        conn,
        waitClosed: () => channel.waitClosed(),
        close: () => channel.close(),
      });
    } catch (error) {
      controller.abort(error);
      await this.#reject(channel, error, welcomed);
    } finally {
      clearTimeout(deadline);
      clearTimeout(authDeadline);
      this.#count(source, -1);
      this.#stops.delete(stop);
    }
  }

  async #reject(channel: Channel, error: unknown, welcomed: boolean): Promise<void> {
    const failure = handshakeFailure(channel, error);
    this.#log(`bootstrap: ${failure.reason}: ${failure.message}`);
    if (welcomed) return channel.close();
    await refuseAndClose(channel, failure);
  }

  #deliver(session: BootstrapSession): void {
    const onError = (error: unknown) => {
      const peer = formatAddr(session.remoteAddr);
      this.#log(`bootstrap: onSession failed for ${peer}: ${messageOf(error)}`);
      session.close();
    };
    try {
      Promise.resolve(this.#settings.onSession(session)).catch(onError);
    } catch (error) {
      onError(error);
    }
  }
}

/**
 * Listens for primaries on TCP and runs the replica's side of the bootstrap for each:
 * CHALLENGE, HELLO (mac checked), `accept()`, WELCOME or REFUSE, READY, then `onSession`.
 * A client without the secret holds a handshake slot for `authTimeoutMs` at most, and one
 * source address holds at most `handshakesPerSourceMax` slots; none can stop the server.
 */
export async function serveBootstrap(options: ServeBootstrapOptions): Promise<BootstrapServer> {
  for (const name of ["accept", "onSession"] as const) {
    if (typeof options[name] !== "function") {
      throw new BootstrapError("BAD_OPTIONS", `Option ${name} must be a function`);
    }
  }
  const key = await importSecret(options.secret);
  const { port, ...limits } = checkOptions(bounds, options);
  const settings: ServerSettings = {
    key,
    accept: options.accept,
    onSession: options.onSession,
    log: options.log ?? ((line) => console.error(line)),
    ...limits,
  };
  const hostname = options.hostname ?? "127.0.0.1";
  let listener: Deno.TcpListener;
  try {
    listener = Deno.listen({ hostname, port, transport: "tcp" });
  } catch (error) {
    const message = `Cannot listen on ${hostname}:${port}: ${messageOf(error)} (pick another port)`;
    throw new BootstrapError("BAD_OPTIONS", message, { cause: error });
  }
  const server = new Server(listener, settings);
  const signal = options.signal;
  if (signal?.aborted) await server.close();
  signal?.addEventListener("abort", () => server.close(), { once: true });
  return server;
}
