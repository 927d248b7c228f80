/**
 * The bootstrap exchange on the TCP control connection (docs/protocol.md, "Bootstrap (TCP
 * control connection)"): the replica serves CHALLENGE → HELLO → WELCOME or REFUSE → READY;
 * the primary connects, proves it knows the shared secret (HMAC-SHA-256) and checks that
 * the replica does too. This module gathers both sides; see `bootstrap_replica.ts`,
 * `bootstrap_primary.ts` and `control_channel.ts`.
 *
 * @example
 * ```ts ignore
 * const server = await serveBootstrap({ port: 0, secret, accept, onSession });
 * const link = await connectBootstrap({ port: server.port, secret, endpoint, ringBytes,
 *   maxLogBytes, depth });
 * // Move the QP to RTR/RTS with link.welcome.endpoint and post the RECVs, then:
 * await link.sendReady();
 * ```
 *
 * @module
 */

export {
  BootstrapError,
  type BootstrapErrorReason,
  bootstrapPortDefault,
  controlTimeoutMsDefault,
  secretBytesMax,
  secretBytesMin,
} from "./control_channel.ts";
export {
  type AcceptContext,
  type AcceptDecision,
  authTimeoutMsDefault,
  type BootstrapServer,
  type BootstrapSession,
  handshakesMaxDefault,
  handshakesPerSourceMaxDefault,
  handshakeTimeoutMsDefault,
  serveBootstrap,
  type ServeBootstrapOptions,
} from "./bootstrap_replica.ts";
export {
  type BootstrapLink,
  busyRetryMsDefault,
  connectAttemptsDefault,
  connectBootstrap,
  type ConnectBootstrapOptions,
  connectRetryDelayMsDefault,
} from "./bootstrap_primary.ts";
