/**
 * The primary's side of the bootstrap (docs/protocol.md, "Bootstrap (TCP control
 * connection)"): connect, answer the CHALLENGE with a HELLO and its mac, check the
 * WELCOME's mac and fields; READY is sent by the caller once its QP is in RTS.
 *
 * @example
 * ```ts ignore
 * const link = await connectBootstrap({ port, secret, endpoint, ringBytes, maxLogBytes, depth });
 * // Move the QP to RTR/RTS with link.welcome.endpoint and post the RECVs, then:
 * await link.sendReady();
 * ```
 *
 * @module
 */

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
  randomNonce,
  secretHint,
  sign,
  sleep,
  verify,
  versionHint,
} from "./control_channel.ts";
import { helloMacInput, welcomeMacInput } from "./control_codec.ts";
import {
  checkHelloFields,
  type ControlMessage,
  type HelloFields,
  type MessageType,
  type Refuse,
  type RefuseReason,
  type WelcomeFields,
} from "./control_messages.ts";

/** Default bound on connection attempts while the replica refuses connections. */
export const connectAttemptsDefault = 10;
/** Default pause between two connection attempts. */
export const connectRetryDelayMsDefault = 500;
/**
 * Default time during which a BUSY refusal is retried: five times the replica's default
 * `authTimeoutMs` (2 s), so slots held by connections without the secret free up several
 * times, and a replica ending its previous session has time to notice.
 */
export const busyRetryMsDefault = 10_000;

// Pause before BUSY retry n: 50 ms doubling to 1 s, each 50-100 % of that (jitter, so
// primaries refused together do not come back together).
const busyBackoffMsFirst = 50;
const busyBackoffMsMax = 1_000;

// Numeric options: default, min, max; checked in this order.
const bounds = {
  port: [bootstrapPortDefault, 1, 65_535],
  controlTimeoutMs: controlTimeoutMsBounds,
  connectAttempts: [connectAttemptsDefault, 1, 1000],
  connectRetryDelayMs: [connectRetryDelayMsDefault, 0, 60_000],
  busyRetryMs: [busyRetryMsDefault, 0, 600_000],
} as const;

/** Options of {@linkcode connectBootstrap}: the HELLO fields and where the replica is. */
export interface ConnectBootstrapOptions extends HelloFields {
  /** Shared secret, 8 to 1024 UTF-8 bytes (the CLI reads --secret or RRL_SECRET). */
  secret: string;
  /** The replica's host; default `127.0.0.1`. */
  hostname?: string;
  /** The replica's bootstrap port; default {@linkcode bootstrapPortDefault}. */
  port?: number;
  /** Attempts while the connection is refused (replica not up yet); default 10. */
  connectAttempts?: number;
  /** Pause between attempts; default 500 ms. */
  connectRetryDelayMs?: number;
  /** Time allowed to connect, or to read or write one frame; default 5000 ms. */
  controlTimeoutMs?: number;
  /** Time during which a REFUSE BUSY is retried on a new connection, with backoff (50 ms
   * doubling to 1 s); `0` fails at the first one; default 10000 ms. */
  busyRetryMs?: number;
  /** Where BUSY retries are reported, one line each; default: not reported. */
  log?: (line: string) => void;
  /** Called before each wait after a BUSY refusal (attempt from 1; for scripts' events). */
  onBusyRetry?: (attempt: number, delayMs: number) => void;
  /** Aborts connecting and the handshake (not the connection once returned). */
  signal?: AbortSignal;
}

/** The primary's side after WELCOME: move the QP to RTS, post RECVs, then `sendReady()`. */
export interface BootstrapLink {
  /** The fields the replica granted, mac checked. */
  readonly welcome: WelcomeFields;
  /** The control connection; keep it open for the session, close it to end the session. */
  readonly conn: Deno.TcpConn;
  /** Sends READY: this side's QP is in RTS with its RECVs posted. */
  sendReady(): Promise<void>;
  /** Resolves when the replica closes the connection (or breaks the silence). */
  waitClosed(): Promise<void>;
  /** Closes the control connection; idempotent. */
  close(): void;
}

const refusalHints: Record<RefuseReason, string> = {
  BAD_AUTH: secretHint,
  BAD_VERSION: versionHint,
  BAD_MESSAGE: versionHint,
  BUSY: "it serves another primary, or too many connections are opening to it: retry later",
  MISMATCH: "use the replica's ring size and a depth within its metadata slots",
  REFUSED: "see the replica's log",
};

function refusedError(refuse: Refuse, peer: string): BootstrapError {
  // The text is untrusted: keep control and format characters out of our messages.
  const text = refuse.text.replace(/[\p{Cc}\p{Cf}]/gu, "?") || refuse.reason;
  const message = `The ${peer} refused the hello: ${text} (${refusalHints[refuse.reason]})`;
  return new BootstrapError(refuse.reason, message, { detail: refuse.text, fromPeer: true });
}

// A REFUSE may come instead of any message the replica sends.
function expectFromReplica<T extends MessageType>(message: ControlMessage, type: T, peer: string) {
  if (message.type === "REFUSE") throw refusedError(message, peer);
  return expectType(message, type, peer);
}

interface ConnectSettings {
  hostname: string;
  port: number;
  controlTimeoutMs: number;
  connectAttempts: number;
  connectRetryDelayMs: number;
  signal?: AbortSignal;
}

async function connectOnce(settings: ConnectSettings): Promise<Deno.TcpConn> {
  const { hostname, port, signal } = settings;
  const controller = new AbortController();
  const abort = () => controller.abort();
  const timer = setTimeout(abort, settings.controlTimeoutMs);
  signal?.addEventListener("abort", abort, { once: true });
  try {
    return await Deno.connect({ hostname, port, transport: "tcp", signal: controller.signal });
  } finally {
    clearTimeout(timer);
    signal?.removeEventListener("abort", abort);
  }
}

async function connectWithRetry(settings: ConnectSettings): Promise<Deno.TcpConn> {
  const { hostname, port, connectAttempts: attempts, signal } = settings;
  const target = formatAddr({ transport: "tcp", hostname, port });
  const aborted = () =>
    new BootstrapError("ABORTED", `Connecting to the replica at ${target} was aborted`);
  for (let attempt = 1;; attempt++) {
    try {
      return await connectOnce(settings);
    } catch (error) {
      if (signal?.aborted) throw aborted();
      if (!(error instanceof Deno.errors.ConnectionRefused) || attempt >= attempts) {
        const why = error instanceof DOMException
          ? `no answer in ${settings.controlTimeoutMs} ms`
          : messageOf(error);
        const message = `Cannot connect to the replica at ${target} (attempt ${attempt} of ` +
          `${attempts}): ${why} (start the replica first, or check its host and port)`;
        throw new BootstrapError("CONNECT_FAILED", message, { cause: error });
      }
    }
    if (!(await sleep(settings.connectRetryDelayMs, signal))) throw aborted();
  }
}

/**
 * Connects to the replica (retrying while the connection is refused) and runs the
 * primary's side of the bootstrap: CHALLENGE, HELLO with its mac, WELCOME (mac checked:
 * a replica without the secret is refused) or REFUSE (thrown as a {@linkcode BootstrapError}
 * with the replica's reason; BUSY is first retried for `busyRetryMs`). READY is the
 * caller's, once its QP is in RTS.
 */
export async function connectBootstrap(options: ConnectBootstrapOptions): Promise<BootstrapLink> {
  const { endpoint, ringBytes, maxLogBytes, depth, signal } = options;
  const fields: HelloFields = { endpoint, ringBytes, maxLogBytes, depth };
  const problem = checkHelloFields(fields);
  if (problem !== null) {
    throw new BootstrapError("BAD_OPTIONS", `Cannot propose this session: ${problem}`);
  }
  const limits = checkOptions(bounds, options);
  const key = await importSecret(options.secret);
  const settings = { ...limits, hostname: options.hostname ?? "127.0.0.1", signal };
  const started = performance.now();
  for (let attempt = 1;; attempt++) {
    try {
      return await handshake(settings, key, fields);
    } catch (error) {
      const busy = error instanceof BootstrapError && error.reason === "BUSY" && error.fromPeer;
      if (!busy || limits.busyRetryMs === 0) throw error;
      const delayMs = busyBackoffMs(attempt);
      const elapsedMs = Math.round(performance.now() - started);
      if (elapsedMs + delayMs > limits.busyRetryMs) {
        const message = `Still refused BUSY after ${attempt} attempts in ${elapsedMs} ms ` +
          `(busyRetryMs ${limits.busyRetryMs}; raise it to wait longer): ${error.message}`;
        throw new BootstrapError("BUSY", message, {
          detail: error.detail,
          fromPeer: true,
          cause: error,
        });
      }
      options.log?.(`bootstrap: ${error.message}; retry ${attempt} in ${delayMs} ms`);
      options.onBusyRetry?.(attempt, delayMs);
      if (!(await sleep(delayMs, signal))) {
        throw new BootstrapError("ABORTED", "The bootstrap was aborted while the replica was busy");
      }
    }
  }
}

function busyBackoffMs(attempt: number): number {
  const ms = Math.min(busyBackoffMsMax, busyBackoffMsFirst * 2 ** (attempt - 1));
  return Math.round(ms * (0.5 + Math.random() / 2));
}

// One connection and handshake up to WELCOME.
async function handshake(
  settings: ConnectSettings,
  key: CryptoKey,
  fields: HelloFields,
): Promise<BootstrapLink> {
  const { signal } = settings;
  const conn = await connectWithRetry(settings);
  const peer = `replica ${formatAddr(conn.remoteAddr)}`;
  const channel = new Channel(conn, peer, settings.controlTimeoutMs);
  const onAbort = () => channel.fail(new BootstrapError("ABORTED", "The bootstrap was aborted"));
  signal?.addEventListener("abort", onAbort, { once: true });
  try {
    if (signal?.aborted) onAbort();
    const welcome = await greet(channel, key, fields);
    return {
      welcome,
      conn,
      sendReady: () => channel.write({ type: "READY" }),
      waitClosed: () => channel.waitClosed(),
      close: () => channel.close(),
    };
  } catch (error) {
    channel.close();
    throw error;
  } finally {
    signal?.removeEventListener("abort", onAbort);
  }
}

// CHALLENGE, HELLO sent, WELCOME (mac and fields checked) or REFUSE thrown.
async function greet(
  channel: Channel,
  key: CryptoKey,
  fields: HelloFields,
): Promise<WelcomeFields> {
  const { peer } = channel;
  const challenge = expectFromReplica(await channel.read("CHALLENGE"), "CHALLENGE", peer);
  const nonce = randomNonce();
  const mac = await sign(key, helloMacInput(challenge.nonce, { ...fields, nonce }));
  await channel.write({ type: "HELLO", nonce, mac, ...fields });
  const answer = expectFromReplica(await channel.read("WELCOME"), "WELCOME", peer);
  const { type: _, mac: welcomeMac, ...welcome } = answer;
  if (!(await verify(key, welcomeMac, welcomeMacInput(nonce, welcome)))) {
    const message = `The ${peer} sent a WELCOME with a wrong mac: it does not know our ` +
      `secret, or something else answers on that port (${secretHint})`;
    throw new BootstrapError("BAD_AUTH", message, { detail: "wrong WELCOME mac" });
  }
  const mismatch = welcome.ringBytes !== fields.ringBytes
    ? `its ring is ${welcome.ringBytes} bytes, ours ${fields.ringBytes}`
    : welcome.metaSlots < fields.depth
    ? `it posts ${welcome.metaSlots} metadata slots, fewer than our depth ${fields.depth}`
    : null;
  if (mismatch !== null) {
    const message = `The ${peer} cannot take this session: ${mismatch} (${refusalHints.MISMATCH})`;
    throw new BootstrapError("MISMATCH", message, { detail: mismatch });
  }
  return welcome;
}
