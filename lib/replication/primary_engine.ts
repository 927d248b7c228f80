/**
 * The primary's protocol engine (docs/protocol.md, "Ordering and completion"): posts log
 * chains, SKIPs and resends, matches acks to records in order, validates every ack field,
 * tracks credits, and fails everything in flight when the session breaks.
 *
 * @module
 */
import {
  IBV_SEND_FLAGS as S,
  IBV_WC_OPCODE,
  IBV_WC_STATUS,
  IBV_WR_OPCODE as O,
} from "../../ffi/verbs_constants.ts";
import {
  ackBytes,
  AckReason,
  ackReasonName,
  AckStatus,
  ackStatusName,
  decodeAck,
  emptyAck,
} from "../log/ack.ts";
import { crc32cAt } from "../log/crc32c.ts";
import { emptyRecord, encodeRecord, recordBytes, RecordFlags } from "../log/record.ts";
import type { RingCursor } from "../log/ring.ts";
import { InvariantError } from "../assert.ts";
import { addressOf } from "../verbs/handles.ts";
import type { MemoryRegion } from "../verbs/pd.ts";
import { recvDescriptor, sendDescriptor } from "../verbs/work_requests.ts";
import type { LogDigest } from "./digest.ts";
import { ProtocolError, ReplicationError, SessionError } from "./errors.ts";
import { type Entry, type Flight, Kind } from "./flight.ts";
import type { LogSource } from "./primary.ts";
import type { PrimaryStats } from "./primary_stats.ts";
import type { RingMemory } from "./ring_memory.ts";
import type { Link } from "./side.ts";

/** A log is posted again at most this often after earlier refusals. */
const resendsMax = 8;

/** What the engine is built from. */
export interface EngineParts {
  link: Link;
  memory: RingMemory;
  ringMr: MemoryRegion;
  acks: ArrayBuffer;
  acksMr: MemoryRegion;
  ring: RingCursor;
  flight: Flight;
  depth: number;
  signalEvery: number;
  ackTimeoutMs: number;
  remote: { address: number; rkey: number };
  nextSeq: number;
  released: number;
  stats: PrimaryStats;
  digest: LogDigest;
  /** Keep acked logs in the ring until release() (a write cache de-stages them first). */
  retain: boolean;
  /** Write-cache hooks: persist a placed log before it is posted, record a refused one. */
  hooks?: PrimaryHooks;
}

/** A placed log as the hooks see it. */
export interface PlacedLog {
  seq: number;
  offset: number;
  length: number;
  lba: number;
  lbaFlags: number;
  crc: number;
}

/** Called by the engine at the write cache's persistence points (docs/protocol.md). */
export interface PrimaryHooks {
  /** The log's data is in the ring: persist it and its record before it is posted. */
  beforePost?(log: PlacedLog): void;
  /** The replica refused the log: it becomes a SKIP (a hole) at the same place. */
  onSkip?(log: PlacedLog): void;
}

/** Posting and ack handling of one session. */
export class PrimaryEngine {
  readonly #p: EngineParts;
  readonly #acksView: DataView;
  readonly #record = emptyRecord();
  readonly #recordBuffer = new ArrayBuffer(recordBytes);
  readonly #recordView = new DataView(this.#recordBuffer);
  readonly #recordAddress = addressOf(Deno.UnsafePointer.of(this.#recordBuffer));
  readonly #ack = emptyAck();
  readonly #send = sendDescriptor();
  readonly #recv = recvDescriptor();
  readonly #started = performance.now();
  #nextSeq: number;
  #released: number;
  #lastNextSeq: number;
  #skipsPending = 0;
  #sendsSinceSignal = 0;
  /** Every log up to this seq is answered (acked, or refused and skipped). */
  #answeredSeq: number;
  /** This side's ring is released through this seq. */
  #releasedSeq: number;
  /** The replica is asked to release through this seq (0: nothing asked). */
  #releaseWanted = 0;
  #releaseSent = 0;
  /** The session's failure, once it ended. */
  failure: Error | undefined;
  /** Called after acks were handled (room may have opened). */
  onProgress: () => void = () => {};
  /** Called once when the session fails. */
  onFailure: (error: Error) => void = () => {};

  /** Takes ownership of nothing: the caller closes the parts. */
  constructor(parts: EngineParts) {
    this.#p = parts;
    this.#acksView = new DataView(parts.acks);
    this.#nextSeq = parts.nextSeq;
    this.#released = parts.released;
    this.#lastNextSeq = parts.nextSeq;
    this.#answeredSeq = parts.nextSeq - 1;
    this.#releasedSeq = parts.nextSeq - 1;
    this.#recv.lkey = parts.acksMr.lkey;
    this.#recv.length = ackBytes;
  }

  /** The digest of acked logs. */
  get digest(): LogDigest {
    return this.#p.digest;
  }

  /** Records posted and not yet answered. */
  get inFlight(): number {
    return this.#p.flight.count;
  }

  /** The replica's released position (credits). */
  get released(): number {
    return this.#released;
  }

  /** The next sequence number to assign. */
  get nextSeq(): number {
    return this.#nextSeq;
  }

  /** This side's ring. */
  get ring(): RingCursor {
    return this.#p.ring;
  }

  /** Posts one RECV per ack slot (depth + 2). */
  postAckReceives(): void {
    for (let slot = 0; slot < this.#p.flight.capacity; slot++) this.#postRecv(slot);
  }

  /** Whether a log of `length` may be posted now: depth, credits, ring, no recovery. */
  canPost(length: number): boolean {
    const p = this.#p;
    return this.failure === undefined && this.#skipsPending === 0 && p.flight.count < p.depth &&
      p.ring.canPlace(length, this.#released + p.ring.ringBytes);
  }

  /** A flight entry for a new log. */
  takeLog(): Entry {
    return this.#p.flight.take(Kind.LOG);
  }

  /** A flight entry for a raw record. */
  takeRaw(): Entry {
    return this.#p.flight.take(Kind.RAW);
  }

  /** Every log up to this seq has been answered (acked or refused and skipped). */
  get answeredSeq(): number {
    return this.#answeredSeq;
  }

  /**
   * Retain mode: frees this side's ring through `seq` (every log up to it is answered and
   * de-staged) and asks the replica to free its copies with a RELEASE record.
   */
  release(seq: number): void {
    if (!this.#p.retain) {
      throw new RangeError("release() is for a primary created with retain: true");
    }
    if (!Number.isSafeInteger(seq) || seq > this.#answeredSeq) {
      throw new RangeError(
        `Cannot release through seq ${seq}: logs are answered through ${this.#answeredSeq}`,
      );
    }
    for (; this.#releasedSeq < seq; this.#releasedSeq++) this.#p.ring.releaseOldest();
    if (seq > this.#releaseWanted) this.#releaseWanted = seq;
    this.#postRelease();
  }

  /** Posts the wanted RELEASE when a spare flight slot is free (one in flight at a time). */
  #postRelease(): void {
    const flight = this.#p.flight;
    if (
      this.failure || this.#releaseWanted <= this.#releaseSent || flight.count >= flight.capacity
    ) return;
    const e = flight.take(Kind.RELEASE);
    e.seq = this.#releaseWanted;
    this.#releaseSent = e.seq;
    this.#post(e);
  }

  /** Places, fills, checksums and posts a log (after canPost). */
  postLog(
    e: Entry,
    source: LogSource,
    length: number,
    lba: number,
    lbaFlags: number,
    submitted: number,
  ): void {
    const p = this.#p;
    const offset = p.ring.place(length, this.#released + p.ring.ringBytes);
    const ahead = p.ring.writePos - this.#released;
    // Flow control: never write into replica space it has not released.
    if (ahead > p.ring.ringBytes) {
      throw new InvariantError(`${ahead} B ahead of the replica's release`);
    }
    if (ahead > p.stats.maxAheadBytes) p.stats.maxAheadBytes = ahead;
    if (typeof source === "function") source(p.memory.bytes, offset, length);
    else p.memory.bytes.set(source, offset);
    e.seq = this.#nextSeq++;
    e.offset = offset;
    e.length = length;
    e.end = p.ring.writePos;
    e.lba = lba;
    e.lbaFlags = lbaFlags;
    e.crc = crc32cAt(p.memory.address, offset, length);
    e.submitted = submitted;
    p.hooks?.beforePost?.(e);
    this.#post(e);
    p.stats.posted++;
  }

  /**
   * Sends `record` (64 bytes, taken as is: tests send crafted and broken records) as a SEND
   * with no data, alone in flight, and hands its ack back; changes no state of this side.
   */
  postRaw(record: Uint8Array, e: Entry): void {
    new Uint8Array(this.#recordBuffer).set(record);
    this.#postRecord(e, -1);
  }

  #post(e: Entry): void {
    const r = this.#record;
    const bare = e.kind === Kind.NOP || e.kind === Kind.RELEASE;
    r.flags = e.kind === Kind.SKIP
      ? RecordFlags.SKIP
      : e.kind === Kind.NOP
      ? RecordFlags.NOP
      : e.kind === Kind.RELEASE
      ? RecordFlags.RELEASE
      : 0;
    r.seq = e.kind === Kind.NOP ? 0 : e.seq;
    r.dataOffset = bare ? 0 : e.offset;
    r.dataLength = bare ? 0 : e.length;
    r.dataCrc = e.kind === Kind.LOG ? e.crc : 0;
    r.lba = e.kind === Kind.LOG ? e.lba : 0;
    r.lbaFlags = e.kind === Kind.LOG ? e.lbaFlags : 0;
    r.timestampNs = Math.round((performance.now() - this.#started) * 1e6);
    encodeRecord(this.#recordView, 0, r);
    this.#postRecord(e, e.kind === Kind.LOG ? e.seq : -1);
  }

  /** Posts [WRITE of e's data when `dataSeq` ≥ 0] + SEND of the record buffer. */
  #postRecord(e: Entry, dataSeq: number): void {
    const p = this.#p;
    const qp = p.link.qp;
    const send = this.#send;
    if (dataSeq >= 0) {
      send.wrId = e.seq;
      send.opcode = O.IBV_WR_RDMA_WRITE;
      send.flags = 0;
      send.addr = p.memory.address + e.offset;
      send.length = e.length;
      send.lkey = p.ringMr.lkey;
      send.remoteAddr = p.remote.address + e.offset;
      send.rkey = p.remote.rkey;
      qp.sendChain.add(send);
    }
    send.wrId = e.seq;
    send.opcode = O.IBV_WR_SEND;
    send.flags = S.IBV_SEND_INLINE;
    if (++this.#sendsSinceSignal >= p.signalEvery) {
      send.flags |= S.IBV_SEND_SIGNALED;
      this.#sendsSinceSignal = 0;
    }
    send.addr = this.#recordAddress;
    send.length = recordBytes;
    send.lkey = 0;
    send.remoteAddr = 0;
    send.rkey = 0;
    qp.sendChain.add(send);
    e.posted = performance.now();
    p.flight.push(e);
    try {
      qp.postSend();
    } catch (error) {
      this.fail(
        new SessionError(
          "completion",
          `Posting seq ${e.seq} failed: ${(error as Error).message}`,
          error,
        ),
      );
    }
  }

  /** Handles `n` completions from the CQ's array. */
  onCompletions(n: number): void {
    const cq = this.#p.link.cq;
    for (let i = 0; i < n && !this.failure; i++) {
      if (cq.status(i) !== IBV_WC_STATUS.IBV_WC_SUCCESS) {
        const error = cq.completionError(i, "primary");
        this.fail(new SessionError("completion", `The session failed: ${error.message}`, error));
        return;
      }
      if (cq.opcode(i) === IBV_WC_OPCODE.IBV_WC_RECV) this.#onAck(cq.wrId(i), cq.byteLen(i));
    }
    if (!this.failure) {
      this.#postRelease();
      this.onProgress();
    }
  }

  #onAck(slot: number, byteLen: number): void {
    const p = this.#p;
    const ack = this.#ack;
    const reason = byteLen === ackBytes
      ? decodeAck(this.#acksView, slot * ackBytes, ack)
      : AckReason.TRUNCATED;
    if (reason !== AckReason.OK) {
      return this.#violation(
        `an ack that does not decode (${ackReasonName(reason)}, ${byteLen} B)`,
        "a 32-byte ack",
      );
    }
    this.#postRecv(slot);
    const e = p.flight.peek();
    if (!e) return this.#violation(`an ack for seq ${ack.seq}`, "no ack: nothing is in flight");
    if (e.kind === Kind.RAW) {
      p.flight.shift();
      e.onAck?.({ ...ack });
      p.flight.give(e);
      return;
    }
    const expectedSeq = e.kind === Kind.NOP ? 0 : e.seq;
    if (ack.seq !== expectedSeq) {
      return this.#violation(`an ack for seq ${ack.seq}`, `the ack of seq ${expectedSeq}`);
    }
    if (ack.nextSeq < this.#lastNextSeq) {
      return this.#violation(`nextSeq ${ack.nextSeq}`, `at least ${this.#lastNextSeq}`);
    }
    if (ack.released < this.#released || ack.released > p.ring.writePos) {
      return this.#violation(`released ${ack.released}`, `${this.#released}..${p.ring.writePos}`);
    }
    p.flight.shift();
    this.#released = ack.released;
    this.#lastNextSeq = ack.nextSeq;
    if (e.kind === Kind.LOG) this.#onLogAck(e, ack.status, ack.nextSeq);
    else if (e.kind === Kind.SKIP) this.#onSkipAck(e, ack.status);
    else if (e.kind === Kind.RELEASE && ack.status !== AckStatus.OK) {
      this.#violation(`${ackStatusName(ack.status)} for a RELEASE through seq ${e.seq}`, "OK");
    } else p.flight.give(e);
  }

  #onLogAck(e: Entry, status: number, nextSeq: number): void {
    const p = this.#p;
    if (status === AckStatus.OK) {
      if (nextSeq <= e.seq) {
        return this.#violation(`OK for seq ${e.seq} with nextSeq ${nextSeq}`, `nextSeq > ${e.seq}`);
      }
      this.#answered(e);
      p.digest.add(e.seq, e.lba, e.length, e.crc);
      const ackedAt = performance.now();
      const latencyUs = (ackedAt - e.submitted) * 1000;
      p.stats.acked(e.length, latencyUs);
      e.resolve?.({
        seq: e.seq,
        lba: e.lba,
        length: e.length,
        offset: e.offset,
        latencyUs,
        resends: e.resends,
        ackedAt,
      });
      p.flight.give(e);
      return;
    }
    if (status === AckStatus.SEQ_GAP && this.#skipsPending > 0) {
      // Sent behind a refused log: the replica consumed nothing; post it again after the SKIP.
      if (++e.resends > resendsMax) {
        return this.#violation(`SEQ_GAP for seq ${e.seq} ${e.resends} times`, "progress");
      }
      p.stats.resends++;
      this.#post(e);
      return;
    }
    p.stats.refused++;
    e.reject?.(new ReplicationError(status, e.seq));
    e.resolve = undefined;
    e.reject = undefined;
    e.kind = Kind.SKIP;
    p.hooks?.onSkip?.(e);
    this.#skipsPending++;
    p.stats.skips++;
    this.#post(e);
  }

  #onSkipAck(e: Entry, status: number): void {
    if (status !== AckStatus.OK) {
      return this.#violation(
        `${ackStatusName(status)} for the SKIP of seq ${e.seq}`,
        "OK (both sides place the hole alike)",
      );
    }
    this.#answered(e);
    this.#skipsPending--;
    this.#p.flight.give(e);
  }

  /** Log `e.seq` is answered: free its ring space now unless retaining it for release(). */
  #answered(e: Entry): void {
    this.#answeredSeq = e.seq;
    if (!this.#p.retain) {
      this.#p.ring.release(e.end);
      this.#releasedSeq = e.seq;
    }
  }

  /** Fails the session when the oldest record waited longer than the ack timeout. */
  checkTimeout(now: number): void {
    const e = this.#p.flight.peek();
    if (e && !this.failure && now - e.posted > this.#p.ackTimeoutMs) {
      this.fail(
        new SessionError(
          "ack-timeout",
          `No ack for seq ${e.seq} within ${this.#p.ackTimeoutMs} ms`,
        ),
      );
    }
  }

  #violation(received: string, expected: string): void {
    const error = new ProtocolError(received, expected);
    this.fail(new SessionError("protocol", `The session failed: ${error.message}`, error));
  }

  /** Ends the session: every log in flight fails with `error`; later calls are refused. */
  fail(error: Error): void {
    if (this.failure) return;
    this.failure = error;
    const flight = this.#p.flight;
    while (flight.count > 0) {
      const e = flight.shift();
      e.reject?.(error);
      if (e.kind === Kind.LOG) this.#p.stats.failed++;
      flight.give(e);
    }
    this.onFailure(error);
  }

  #postRecv(slot: number): void {
    const qp = this.#p.link.qp;
    this.#recv.wrId = slot;
    this.#recv.addr = this.#p.acksMr.address + slot * ackBytes;
    qp.recvChain.add(this.#recv);
    try {
      qp.postRecv();
    } catch (error) {
      this.fail(
        new SessionError(
          "completion",
          `Posting an ack RECV failed: ${(error as Error).message}`,
          error,
        ),
      );
    }
  }
}
