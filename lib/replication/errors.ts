/**
 * Errors of the replication layer: a log the replica refused ({@linkcode ReplicationError}),
 * a peer that broke the protocol ({@linkcode ProtocolError}), and a session that ended
 * ({@linkcode SessionError}).
 *
 * @module
 */
import { ackStatusName } from "../log/ack.ts";

/** The replica answered a log with a non-OK status: the log is not replicated. */
export class ReplicationError extends Error {
  /** The error's name, for messages and `instanceof`-free checks. */
  override name = "ReplicationError";
  /** The ack status (`AckStatus`). */
  readonly status: number;
  /** The log's sequence number. */
  readonly seq: number;

  /** `status` from the ack, `seq` of the refused log. */
  constructor(status: number, seq: number, detail = "") {
    super(`Replica refused log ${seq}: ${ackStatusName(status)}${detail ? ` (${detail})` : ""}`);
    this.status = status;
    this.seq = seq;
  }

  /** The status name, e.g. `CRC_MISMATCH`. */
  get statusName(): string {
    return ackStatusName(this.status);
  }
}

/** The peer sent something the protocol does not allow: what came, what was expected. */
export class ProtocolError extends Error {
  /** The error's name, for messages and `instanceof`-free checks. */
  override name = "ProtocolError";
  /** What was received. */
  readonly received: string;
  /** What was expected. */
  readonly expected: string;

  /** `received` and `expected` describe the violation. */
  constructor(received: string, expected: string) {
    super(`Protocol violation: received ${received}, expected ${expected}`);
    this.received = received;
    this.expected = expected;
  }
}

/**
 * The session ended (QP error, failed completion, control connection closed, ack
 * timeout, protocol violation, close): every log in flight fails with it.
 */
export class SessionError extends Error {
  /** The error's name, for messages and `instanceof`-free checks. */
  override name = "SessionError";
  /** Why: `completion`, `protocol`, `ack-timeout`, `peer-closed`, `device` (a verb failed), `closed`. */
  readonly reason: "completion" | "protocol" | "ack-timeout" | "peer-closed" | "device" | "closed";

  /** `cause` is the underlying error, when there is one. */
  constructor(reason: SessionError["reason"], message: string, cause?: unknown) {
    super(message, cause === undefined ? undefined : { cause });
    this.reason = reason;
  }
}

/** A log could not be placed in time: no room in the ring or no credit from the replica. */
export class BackpressureError extends Error {
  /** The error's name, for messages and `instanceof`-free checks. */
  override name = "BackpressureError";
}
