/**
 * The primary's protocol state (docs/protocol.md, "Ordering and completion" and
 * "Reconnect and resume"): sequence numbers, the in-flight window, credits, admission,
 * the matching of each ack to the oldest record in flight, SKIPs and resends, and what a
 * WELCOME means for the logs kept across sessions. No verbs, no clock, no callers, no
 * hooks: {@linkcode PrimaryEngine} posts and reports what this state decides, the way
 * `ReplicaState` decides for the replica. So the two state machines can be run against
 * each other on the host (`tests/unit/protocol_sim_test.ts`).
 *
 * Nothing is allocated per ack: an outcome is a small integer and the entry it concerns
 * is left in {@linkcode PrimaryState.entry}; only a violation builds strings.
 *
 * @module
 */
import { type Ack, AckStatus, ackStatusName } from "../log/ack.ts";
import type { RingCursor } from "../log/ring.ts";
import { InvariantError } from "../assert.ts";
import { type Entry, type Flight, Kind } from "./flight.ts";

/** A log is posted again at most this often after earlier refusals. */
export const resendsMax = 8;

/** What one ack did ({@linkcode PrimaryState.onAck}); the entry is in `state.entry`. */
export const AckOutcome = {
  /** The log is replicated (answered OK): report it, then give the entry back. */
  REPLICATED: 0,
  /** A SKIP was answered (a hole, both sides alike): give the entry back. */
  SKIP_ANSWERED: 1,
  /** A log sent behind a refused one: post it again (after its SKIP). */
  RESEND: 2,
  /** The replica refused the log: it is a SKIP now; fail its caller, then post the SKIP. */
  REFUSED: 3,
  /** A NOP or RELEASE was answered OK: give the entry back. */
  DONE: 4,
  /** The ack of a raw record (tests): hand the ack to its `onAck`. */
  RAW: 5,
  /** An ack went missing: this session cannot be trusted, a new one may resume. */
  SUSPEND: 6,
  /** A protocol violation (final): `problem` says what came and what was expected. */
  VIOLATION: 7,
} as const;

/** What a violation or broken session was: filled only on those (rare) outcomes. */
export interface Problem {
  received: string;
  expected: string;
}

/** What the state is built from (the flight pool and the ring are shared with the engine). */
export interface PrimaryStateOptions {
  ring: RingCursor;
  flight: Flight;
  /** Logs in flight at most. */
  depth: number;
  /** Keep answered logs in the ring until {@linkcode PrimaryState.release}. */
  retain: boolean;
  /** The first seq to assign (1 for a fresh ring). */
  nextSeq: number;
}

/** The primary's side of the protocol, across sessions. */
export class PrimaryState {
  readonly ring: RingCursor;
  readonly flight: Flight;
  readonly depth: number;
  readonly retain: boolean;
  /** The entry the last outcome concerns. */
  entry: Entry | undefined;
  /** Set on SUSPEND and VIOLATION outcomes (and a refused WELCOME). */
  readonly problem: Problem = { received: "", expected: "" };
  #nextSeq: number;
  #answeredSeq: number;
  #releasedSeq: number;
  /** The replica's released position (credits). */
  #released = 0;
  /** The highest nextSeq an ack (or the WELCOME) reported: never goes back. */
  #lastNextSeq = 0;
  #skipsPending = 0;
  #releaseWanted = 0;
  #releaseSent = 0;

  /** Starts before seq `options.nextSeq`. */
  constructor(options: PrimaryStateOptions) {
    this.ring = options.ring;
    this.flight = options.flight;
    this.depth = options.depth;
    this.retain = options.retain;
    this.#nextSeq = options.nextSeq;
    this.#answeredSeq = options.nextSeq - 1;
    this.#releasedSeq = options.nextSeq - 1;
  }

  /** The next sequence number to assign. */
  get nextSeq(): number {
    return this.#nextSeq;
  }
  /** Every log up to this seq has been answered (acked, or refused and skipped). */
  get answeredSeq(): number {
    return this.#answeredSeq;
  }
  /** The replica's released position (credits). */
  get released(): number {
    return this.#released;
  }
  /** SKIPs posted and not yet answered (no new log goes out meanwhile). */
  get skipsPending(): number {
    return this.#skipsPending;
  }

  /** Whether a log of `length` may be posted now (the engine adds: a session, no failure). */
  canPost(length: number): boolean {
    return this.#skipsPending === 0 && this.flight.count < this.depth &&
      this.ring.canPlace(length, this.#released + this.ring.ringBytes);
  }

  /**
   * Gives `e` the next seq and places `length` bytes for it (after canPost); returns the
   * offset. Never writes into replica space the replica has not released.
   */
  placeLog(e: Entry, length: number): number {
    e.seq = this.#nextSeq++;
    const offset = this.ring.place(length, this.#released + this.ring.ringBytes);
    const ahead = this.ring.writePos - this.#released;
    if (ahead > this.ring.ringBytes) {
      throw new InvariantError(`${ahead} B ahead of the replica's release`);
    }
    e.offset = offset;
    e.length = length;
    e.end = this.ring.writePos;
    return offset;
  }

  /** Bytes written ahead of the replica's release. */
  get aheadBytes(): number {
    return this.ring.writePos - this.#released;
  }

  /** A log recovered from the write cache, in seq order, placed where the ring rule puts it. */
  placeRecovered(e: Entry, seq: number, offset: number, length: number): void {
    if (seq !== this.#nextSeq) {
      throw new InvariantError(`recovered seq ${seq}, expected ${this.#nextSeq}`);
    }
    const placed = this.ring.place(length);
    if (placed !== offset) {
      throw new InvariantError(
        `recovered log ${seq} sits at ${offset}, the ring rule puts it at ${placed}`,
      );
    }
    e.seq = seq;
    e.offset = offset;
    e.length = length;
    e.end = this.ring.writePos;
    this.#nextSeq++;
  }

  /**
   * A new session's WELCOME: the replica expects `nextSeq` and has released `released`.
   * False (with `problem` set) when that is impossible (it lost acked logs, or claims logs
   * never sent). On true, logs below `nextSeq` are replicated and the rest must be posted
   * again, in order ({@linkcode resending}).
   */
  attach(nextSeq: number, released: number): boolean {
    if (nextSeq <= this.#answeredSeq || nextSeq > this.#nextSeq) {
      this.problem.received = `a WELCOME with next seq ${nextSeq}`;
      this.problem.expected = `${
        this.#answeredSeq + 1
      }..${this.#nextSeq} (logs through ${this.#answeredSeq} were acked: the replica lost them?)`;
      return false;
    }
    this.#released = Math.min(released, this.ring.writePos);
    this.#lastNextSeq = nextSeq;
    this.#skipsPending = 0;
    this.#releaseSent = 0; // the replica may have lost a RELEASE: send the latest again
    return true;
  }

  /**
   * Empties the flight for a new session: `recovered` and every record in flight, logs and
   * SKIPs in seq order (the order the replica takes them), other records first. The flight
   * is not in seq order after a refusal: logs sent behind the refused one sit ahead of its
   * SKIP and of their own resends, and posting them first would make the replica answer
   * SEQ_GAP to a log nothing was refused before (a false refusal, then a violation).
   */
  drainForResume(recovered: readonly Entry[]): Entry[] {
    const out = [...recovered];
    while (this.flight.count > 0) out.push(this.flight.shift());
    const key = (e: Entry) => (e.kind === Kind.LOG || e.kind === Kind.SKIP ? e.seq : -1);
    return out.sort((a, b) => key(a) - key(b));
  }

  /** `e` (a log or SKIP kept from an earlier session) is posted again. */
  resending(e: Entry): void {
    if (e.kind === Kind.SKIP) this.#skipsPending++;
  }

  /** `e` became a SKIP (refused) and is posted: no new log until it is answered. */
  #skipping(e: Entry): void {
    e.kind = Kind.SKIP;
    this.#skipsPending++;
  }

  /**
   * Log or SKIP `e` is answered (an OK ack, or the WELCOME said the replica holds it):
   * its ring space is free now unless the ring retains it for release().
   */
  answered(e: Entry): void {
    this.#answeredSeq = e.seq;
    if (!this.retain) {
      this.ring.release(e.end);
      this.#releasedSeq = e.seq;
    }
  }

  /**
   * Matches `ack` to the oldest record in flight and applies it; returns an
   * {@linkcode AckOutcome} (the entry is in {@linkcode entry}, already out of the flight
   * except for SUSPEND and VIOLATION).
   */
  onAck(ack: Ack): number {
    const flight = this.flight;
    const e = flight.peek();
    this.entry = e;
    if (!e) return this.#violation(`an ack for seq ${ack.seq}`, "no ack: nothing is in flight");
    if (e.kind === Kind.RAW) {
      flight.shift();
      return AckOutcome.RAW;
    }
    const expectedSeq = e.kind === Kind.NOP ? 0 : e.seq;
    if (ack.seq > expectedSeq && expectedSeq > 0) {
      // The replica skipped an ack: a new session's WELCOME says which logs it holds.
      this.problem.received = `an ack for seq ${ack.seq}`;
      this.problem.expected = `the ack of seq ${expectedSeq}`;
      return AckOutcome.SUSPEND;
    }
    if (ack.seq !== expectedSeq) {
      return this.#violation(`an ack for seq ${ack.seq}`, `the ack of seq ${expectedSeq}`);
    }
    if (ack.nextSeq < this.#lastNextSeq) {
      return this.#violation(`nextSeq ${ack.nextSeq}`, `at least ${this.#lastNextSeq}`);
    }
    if (ack.released > this.ring.writePos) {
      return this.#violation(`released ${ack.released}`, `at most ${this.ring.writePos}`);
    }
    flight.shift();
    if (ack.released > this.#released) this.#released = ack.released;
    this.#lastNextSeq = ack.nextSeq;
    if (e.kind === Kind.LOG) return this.#onLogAck(e, ack.status, ack.nextSeq);
    if (e.kind === Kind.SKIP) return this.#onSkipAck(e, ack.status);
    if (e.kind === Kind.RELEASE && ack.status !== AckStatus.OK) {
      return this.#violation(
        `${ackStatusName(ack.status)} for a RELEASE through seq ${e.seq}`,
        "OK",
      );
    }
    return AckOutcome.DONE;
  }

  #onLogAck(e: Entry, status: number, nextSeq: number): number {
    if (status === AckStatus.OK) {
      if (nextSeq <= e.seq) {
        return this.#violation(`OK for seq ${e.seq} with nextSeq ${nextSeq}`, `nextSeq > ${e.seq}`);
      }
      this.answered(e);
      return AckOutcome.REPLICATED;
    }
    if (status === AckStatus.SEQ_GAP && this.#skipsPending > 0) {
      // Sent behind a refused log: the replica consumed nothing; post it after the SKIP.
      if (++e.resends > resendsMax) {
        return this.#violation(`SEQ_GAP for seq ${e.seq} ${e.resends} times`, "progress");
      }
      return AckOutcome.RESEND;
    }
    this.#skipping(e);
    return AckOutcome.REFUSED;
  }

  #onSkipAck(e: Entry, status: number): number {
    if (status !== AckStatus.OK) {
      return this.#violation(
        `${ackStatusName(status)} for the SKIP of seq ${e.seq}`,
        "OK (both sides place the hole alike)",
      );
    }
    this.answered(e);
    this.#skipsPending--;
    return AckOutcome.SKIP_ANSWERED;
  }

  #violation(received: string, expected: string): number {
    this.problem.received = received;
    this.problem.expected = expected;
    return AckOutcome.VIOLATION;
  }

  /**
   * Retain mode: frees this side's ring through `seq` (answered and de-staged); the
   * replica is then asked to free its copies ({@linkcode releaseDue}).
   */
  release(seq: number): void {
    if (!this.retain) {
      throw new RangeError("release() is for a primary created with retain: true");
    }
    if (!Number.isSafeInteger(seq) || seq > this.#answeredSeq) {
      throw new RangeError(
        `Cannot release through seq ${seq}: logs are answered through ${this.#answeredSeq}`,
      );
    }
    for (; this.#releasedSeq < seq; this.#releasedSeq++) this.ring.releaseOldest();
    if (seq > this.#releaseWanted) this.#releaseWanted = seq;
  }

  /** The seq a RELEASE should carry now, or 0 when none is due. */
  get releaseDue(): number {
    return this.#releaseWanted > this.#releaseSent ? this.#releaseWanted : 0;
  }

  /** A RELEASE through `seq` was posted. */
  releasePosted(seq: number): void {
    this.#releaseSent = seq;
  }

  /** The oldest record in flight when it waited longer than `timeoutMs` at `nowMs`. */
  overdue(nowMs: number, timeoutMs: number): Entry | undefined {
    const e = this.flight.peek();
    return e && nowMs - e.posted > timeoutMs ? e : undefined;
  }
}
