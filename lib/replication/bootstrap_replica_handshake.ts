/**
 * The replica's side of one handshake on an accepted control connection (docs/protocol.md,
 * "Bootstrap (TCP control connection)"): CHALLENGE, HELLO with its mac checked, `accept()`,
 * WELCOME; or, on failure before WELCOME, the REFUSE that tells the primary why.
 * The listener around it is `bootstrap_replica.ts`.
 *
 * @example
 * ```ts ignore
 * const { hello, welcome } = await welcomePrimary(channel, { key, accept, signal });
 * ```
 *
 * @module
 */

import {
  BootstrapError,
  type BootstrapErrorReason,
  type Channel,
  expectType,
  messageOf,
  randomNonce,
  secretHint,
  sign,
  verify,
} from "./control_channel.ts";
import { helloMacInput, welcomeMacInput } from "./control_codec.ts";
import {
  checkWelcomeFields,
  clipUtf8,
  type Hello,
  type RefuseReason,
  refuseReasons,
  type WelcomeFields,
} from "./control_messages.ts";

/** What `accept()` learns about the connection it decides on. */
export interface AcceptContext {
  /** The primary's TCP address. */
  remoteAddr: Deno.NetAddr;
  /** Aborts if the handshake fails after all (deadline, no READY, server closed): release
   * whatever `accept()` set up for this hello; a decision returned after it is ignored. */
  signal: AbortSignal;
}

/** `accept()`'s answer: the WELCOME fields, or a REFUSE reason and text. */
export type AcceptDecision =
  | { ok: true; welcome: WelcomeFields }
  | { ok: false; reason: RefuseReason; text: string };

/** What {@linkcode welcomePrimary} needs besides the connection. */
export interface WelcomeOptions {
  /** The shared secret as an HMAC-SHA-256 key. */
  key: CryptoKey;
  /** Decides on a HELLO whose mac checked out. */
  accept(hello: Hello, context: AcceptContext): Promise<AcceptDecision>;
  /** Aborts the handshake; passed on to `accept()`. */
  signal: AbortSignal;
  /** Called once the HELLO's mac checked out, before `accept()`. */
  authenticated(): void;
}

/** Settles like `promise`, or rejects with `signal.reason` as soon as `signal` aborts. */
function abortable<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  return new Promise((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    if (signal.aborted) onAbort();
    else signal.addEventListener("abort", onAbort, { once: true });
    promise.then(resolve, reject).finally(() => signal.removeEventListener("abort", onAbort));
  });
}

/**
 * Runs the handshake up to WELCOME: sends CHALLENGE, reads HELLO and checks its mac before
 * `accept()` sees it, then sends WELCOME with its mac. Throws a {@linkcode BootstrapError}
 * (a REFUSE decision included), or what `accept()` threw.
 */
export async function welcomePrimary(
  channel: Channel,
  options: WelcomeOptions,
): Promise<{ hello: Hello; welcome: WelcomeFields }> {
  const { key, signal } = options;
  const remoteAddr = channel.conn.remoteAddr;
  const challenge = randomNonce();
  await channel.write({ type: "CHALLENGE", nonce: challenge });
  const hello = expectType(await channel.read("HELLO"), "HELLO", channel.peer);
  if (!(await verify(key, hello.mac, helloMacInput(challenge, hello)))) {
    const message =
      `The ${channel.peer} sent a HELLO with a wrong mac: wrong secret (${secretHint})`;
    throw new BootstrapError("BAD_AUTH", message, { detail: "wrong secret" });
  }
  options.authenticated();
  const decision = await abortable(options.accept(hello, { remoteAddr, signal }), signal);
  if (!decision.ok) {
    const message = `Refused the ${channel.peer}: ${decision.reason}: ${decision.text}`;
    throw new BootstrapError(decision.reason, message, { detail: decision.text });
  }
  const welcome = { ...decision.welcome };
  const problem = checkWelcomeFields(welcome);
  if (problem !== null) {
    const message = `accept() granted the ${channel.peer} a bad WELCOME: ${problem} (a bug)`;
    throw new BootstrapError("REFUSED", message, { detail: "replica setup failed" });
  }
  const mac = await sign(key, welcomeMacInput(hello.nonce, welcome));
  await channel.write({ type: "WELCOME", mac, ...welcome });
  return { hello, welcome };
}

/** A failed handshake's error as a {@linkcode BootstrapError}; anything else is REFUSED. */
export function handshakeFailure(channel: Channel, error: unknown): BootstrapError {
  if (error instanceof BootstrapError) return error;
  const message = `Setting up a session for the ${channel.peer} failed: ${messageOf(error)}`;
  return new BootstrapError("REFUSED", message, { detail: "replica setup failed", cause: error });
}

// The REFUSE reason that tells the primary about a local failure, if any.
function refuseReasonOf(reason: BootstrapErrorReason): RefuseReason | null {
  if (reason === "OVERSIZED") return "BAD_MESSAGE";
  return Object.hasOwn(refuseReasons, reason) ? reason as RefuseReason : null;
}

/** Sends a REFUSE if it can; a peer that is gone cannot be told more. */
export async function tryRefuse(
  channel: Channel,
  reason: RefuseReason,
  text: string,
): Promise<void> {
  try {
    await channel.write({ type: "REFUSE", reason, text });
  } catch { /* the peer is gone: nothing more to tell it */ }
}

/**
 * Ends a handshake that failed before WELCOME: answers REFUSE with `failure`'s detail when
 * its reason has a wire code, then lingers and closes; closes at once when it has none
 * (timeout, cut or closed connection, server closing).
 */
export async function refuseAndClose(channel: Channel, failure: BootstrapError): Promise<void> {
  const reason = refuseReasonOf(failure.reason);
  if (reason === null) return channel.close();
  await tryRefuse(channel, reason, clipUtf8(failure.detail));
  await channel.finish();
}
