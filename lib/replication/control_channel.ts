/**
 * The TCP control connection shared by both sides of the bootstrap (docs/protocol.md,
 * "Bootstrap (TCP control connection)"): bounded frame reads and writes with a timeout,
 * the {@linkcode BootstrapError} every failure becomes, and the HMAC-SHA-256 helpers.
 *
 * @example
 * ```ts ignore
 * const key = await importSecret(secret);
 * const channel = new Channel(conn, "replica 10.0.0.2:18515", controlTimeoutMsDefault);
 * const challenge = expectType(await channel.read("CHALLENGE"), "CHALLENGE", channel.peer);
 * ```
 *
 * @module
 */

import { decodeBody, encodeMessage } from "./control_codec.ts";
import {
  type ControlMessage,
  controlVersion,
  frameBodyBytesMax,
  frameBodyBytesMin,
  framePrefixBytes,
  type MessageType,
  nonceBytes,
  type RefuseReason,
} from "./control_messages.ts";

/** Default TCP port of the replica's bootstrap listener (perftest's port). */
export const bootstrapPortDefault = 18515;
/** Default time allowed to read or write one frame. */
export const controlTimeoutMsDefault = 5_000;
/** Bounds of the `controlTimeoutMs` option: default, min, max. */
export const controlTimeoutMsBounds = [controlTimeoutMsDefault, 1, 600_000] as const;
/** Shortest secret, in UTF-8 bytes. */
export const secretBytesMin = 8;
/** Longest secret, in UTF-8 bytes. */
export const secretBytesMax = 1024;
/** What to do about a wrong or missing secret. */
export const secretHint = "set the same --secret or RRL_SECRET on both sides";
/** What to do about a peer that speaks another version or sends bad frames. */
export const versionHint = "run the same rrl version on both sides";

const lingerBytesMax = 64 * 1024;

/** Why a bootstrap failed: a REFUSE reason, or a local failure. */
export type BootstrapErrorReason =
  | RefuseReason
  | "TRUNCATED"
  | "OVERSIZED"
  | "TIMEOUT"
  | "CLOSED"
  | "CONNECT_FAILED"
  | "ABORTED"
  | "BAD_OPTIONS";

/** Thrown (primary) or logged (replica) when a bootstrap fails; `reason` says why. */
export class BootstrapError extends Error {
  /** Always `"BootstrapError"`. */
  override name = "BootstrapError";
  /** What failed, as a code to branch on. */
  readonly reason: BootstrapErrorReason;
  /** Short text without advice: the REFUSE text received (primary) or sent (replica). */
  readonly detail: string;
  /** True when `reason` comes from a REFUSE the replica sent. */
  readonly fromPeer: boolean;

  /** Makes an error; `message` says what failed and what to do. */
  constructor(
    reason: BootstrapErrorReason,
    message: string,
    options: { detail?: string; fromPeer?: boolean; cause?: unknown } = {},
  ) {
    super(message, { cause: options.cause });
    this.reason = reason;
    this.detail = options.detail ?? message;
    this.fromPeer = options.fromPeer ?? false;
  }
}

/** The message of `error`, or its text if it is not an `Error`. */
export function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** Bounds of numeric options by name: default, min, max. */
export type OptionBounds = Record<string, readonly [number, number, number]>;

/**
 * Returns each option named in `bounds` (its default when absent), checked in the order of
 * `bounds`; throws BAD_OPTIONS for the first that is not an integer within its bounds.
 */
export function checkOptions<B extends OptionBounds>(
  bounds: B,
  values: { [name in keyof B]?: number },
): { [name in keyof B]: number } {
  const chosen: Record<string, number> = {};
  for (const [name, [fallback, min, max]] of Object.entries(bounds)) {
    const value = values[name] ?? fallback;
    if (!(Number.isInteger(value) && value >= min && value <= max)) {
      const message = `Option ${name} is ${value}: use an integer ${min}..${max}`;
      throw new BootstrapError("BAD_OPTIONS", message);
    }
    chosen[name] = value;
  }
  return chosen as { [name in keyof B]: number };
}

/** Imports the shared secret (its UTF-8 bytes) as an HMAC-SHA-256 key; checks its length. */
export async function importSecret(secret: unknown): Promise<CryptoKey> {
  if (typeof secret !== "string" || secret.length === 0) {
    throw new BootstrapError("BAD_OPTIONS", `No bootstrap secret given (${secretHint})`);
  }
  const bytes = new TextEncoder().encode(secret);
  if (bytes.length < secretBytesMin || bytes.length > secretBytesMax) {
    const range = `${secretBytesMin} to ${secretBytesMax}`;
    const message = `Bootstrap secret is ${bytes.length} bytes, not ${range} (${secretHint})`;
    throw new BootstrapError("BAD_OPTIONS", message);
  }
  const algorithm = { name: "HMAC", hash: "SHA-256" };
  return await crypto.subtle.importKey("raw", bytes, algorithm, false, ["sign", "verify"]);
}

/** HMAC-SHA-256 of `data`. */
export async function sign(key: CryptoKey, data: BufferSource): Promise<Uint8Array> {
  return new Uint8Array(await crypto.subtle.sign("HMAC", key, data));
}

/** Checks an HMAC-SHA-256 tag; `crypto.subtle.verify` compares in constant time. */
export async function verify(
  key: CryptoKey,
  mac: Uint8Array,
  data: BufferSource,
): Promise<boolean> {
  return await crypto.subtle.verify("HMAC", key, new Uint8Array(mac), data);
}

/** 32 random bytes for a CHALLENGE or HELLO. */
export function randomNonce(): Uint8Array {
  return crypto.getRandomValues(new Uint8Array(nonceBytes));
}

/** Sleeps `ms`; resolves `false` at once if `signal` aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<boolean> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve(false);
    const onAbort = () => {
      clearTimeout(timer);
      resolve(false);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve(true);
    }, ms);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

/** `host:port`, with brackets around an IPv6 host. */
export function formatAddr(addr: Deno.NetAddr): string {
  return addr.hostname.includes(":")
    ? `[${addr.hostname}]:${addr.port}`
    : `${addr.hostname}:${addr.port}`;
}

/** Returns `message` as a `type` message, or throws BAD_MESSAGE naming both types. */
export function expectType<T extends MessageType>(
  message: ControlMessage,
  type: T,
  peer: string,
): Extract<ControlMessage, { type: T }> {
  if (message.type === type) return message as Extract<ControlMessage, { type: T }>;
  const detail = `expected ${type}, got ${message.type}`;
  const text = `The ${peer} sent ${detail} (${versionHint})`;
  throw new BootstrapError("BAD_MESSAGE", text, { detail });
}

/** One control connection: bounded frame reads and writes, each with a timeout. */
export class Channel {
  /** The TCP connection. */
  readonly conn: Deno.TcpConn;
  /** Who is at the other end, for messages: `"primary 10.0.0.1:40000"`. */
  readonly peer: string;
  #frame = new Uint8Array(framePrefixBytes + frameBodyBytesMax);
  #timeoutMs: number;
  #failure: BootstrapError | undefined;
  #closed = false;
  #ended: Promise<void> | undefined;

  /** Wraps `conn`; every frame read or write must finish within `timeoutMs`. */
  constructor(conn: Deno.TcpConn, peer: string, timeoutMs: number) {
    this.conn = conn;
    this.peer = peer;
    this.#timeoutMs = timeoutMs;
    conn.setNoDelay(true);
  }

  /** Closes the connection; the pending and later operations throw `failure`. */
  fail(failure: BootstrapError): void {
    this.#failure ??= failure;
    this.close();
  }

  /** Closes the connection; idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    try {
      this.conn.close();
    } catch { /* already closed by the runtime */ }
  }

  /** Writes one frame. */
  async write(message: ControlMessage): Promise<void> {
    const frame = encodeMessage(message);
    await this.#guard(`Sending ${message.type} to the ${this.peer} took more than`, async () => {
      for (let at = 0; at < frame.length;) at += await this.conn.write(frame.subarray(at));
    });
  }

  /** Reads one frame; throws a typed error for a closed, cut, oversized or bad frame. */
  async read(expected: MessageType): Promise<ControlMessage> {
    const timeoutText = `No ${expected} from the ${this.peer} within`;
    const body = await this.#guard(timeoutText, () => this.#readFrame(expected));
    const decoded = decodeBody(body);
    if (decoded.ok) return decoded.value;
    if (decoded.reason === "BAD_VERSION") {
      const message = `The ${this.peer} speaks bootstrap ${decoded.detail} (${versionHint})`;
      const detail = `this side speaks bootstrap version ${controlVersion}`;
      throw new BootstrapError("BAD_VERSION", message, { detail });
    }
    throw this.#bad(expected, "BAD_MESSAGE", decoded.detail);
  }

  /** Half-closes, then discards what the peer still sends (bounded), so the last frame
   * sent is not lost to a reset; then closes. */
  async finish(): Promise<void> {
    try {
      await this.conn.closeWrite();
      await this.#guard("Lingering took more than", async () => {
        for (let left = lingerBytesMax; left > 0;) {
          const n = await this.conn.read(this.#frame);
          if (n === null) break;
          left -= n;
        }
      });
    } catch { /* the peer is gone or slow: close anyway */ }
    this.close();
  }

  /** Resolves when the peer closes the connection; any byte after READY also ends it. */
  waitClosed(): Promise<void> {
    const close = () => this.close();
    this.#ended ??= this.conn.read(this.#frame.subarray(0, 1)).then(close, close);
    return this.#ended;
  }

  // Reads the length prefix, refuses a length out of bounds, then reads exactly the body.
  async #readFrame(expected: MessageType): Promise<Uint8Array> {
    const head = await this.#fill(0, framePrefixBytes);
    if (head === 0) {
      const message = `The ${this.peer} closed the control connection before ${expected}`;
      throw new BootstrapError("CLOSED", message);
    }
    if (head < framePrefixBytes) throw this.#truncated(expected, head, framePrefixBytes);
    const length = new DataView(this.#frame.buffer).getUint32(0, true);
    if (length > frameBodyBytesMax) {
      const detail = `frame length ${length} is above ${frameBodyBytesMax}`;
      throw this.#bad(expected, "OVERSIZED", detail);
    }
    if (length < frameBodyBytesMin) {
      const detail = `frame length ${length} is below ${frameBodyBytesMin}`;
      throw this.#bad(expected, "BAD_MESSAGE", detail);
    }
    const got = await this.#fill(framePrefixBytes, framePrefixBytes + length);
    if (got < length) throw this.#truncated(expected, head + got, framePrefixBytes + length);
    return this.#frame.subarray(framePrefixBytes, framePrefixBytes + length);
  }

  // Fills frame bytes [start, end); returns how many arrived before end of stream.
  async #fill(start: number, end: number): Promise<number> {
    let at = start;
    while (at < end) {
      const n = await this.conn.read(this.#frame.subarray(at, end));
      if (n === null) break;
      at += n;
    }
    return at - start;
  }

  #bad(expected: MessageType, reason: BootstrapErrorReason, detail: string): BootstrapError {
    const message = `The ${this.peer} sent a bad ${expected}: ${detail} (is it rrl?)`;
    return new BootstrapError(reason, message, { detail });
  }

  #truncated(expected: MessageType, got: number, total: number): BootstrapError {
    const message = `The ${this.peer} closed the control connection inside ${expected}` +
      ` (${got} of ${total} bytes)`;
    return new BootstrapError("TRUNCATED", message);
  }

  async #guard<T>(timeoutText: string, op: () => Promise<T>): Promise<T> {
    if (this.#failure) throw this.#failure;
    const timer = setTimeout(() => {
      const hint = "check the peer runs rrl and is reachable; raise the control timeout";
      const message = `${timeoutText} ${this.#timeoutMs} ms (${hint})`;
      this.fail(new BootstrapError("TIMEOUT", message));
    }, this.#timeoutMs);
    try {
      const result = await op();
      if (this.#failure) throw this.#failure;
      return result;
    } catch (error) {
      if (this.#failure) throw this.#failure;
      if (error instanceof BootstrapError) throw error;
      const message = `Control connection to the ${this.peer} failed: ${messageOf(error)}`;
      throw new BootstrapError("CLOSED", message, { cause: error });
    } finally {
      clearTimeout(timer);
    }
  }
}
