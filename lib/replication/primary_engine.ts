/**
 * The primary's protocol engine (docs/protocol.md, "Ordering and completion"): posts log
 * chains, SKIPs, RELEASEs and resends, matches acks to records in order, validates every
 * ack field, tracks credits. It outlives sessions: when one breaks (a failed completion,
 * an ack timeout, the peer gone) it is suspended with its logs kept; attached to a new
 * session it counts what the replica's WELCOME says it holds as replicated and posts the
 * rest again, unchanged. Protocol violations are final.
 *
 * @module
 */
import {
  IBV_SEND_FLAGS as S,
  IBV_WC_OPCODE,
  IBV_WC_STATUS,
  IBV_WR_OPCODE as O,
} from "../../ffi/verbs_constants.ts";
import { ackBytes, AckReason, ackReasonName, decodeAck, emptyAck } from "../log/ack.ts";
import type { LatencyRecorder } from "../bench/summary.ts";
import { RegionCrc } from "../log/crc32c.ts";
import { emptyRecord, encodeRecord, recordBytes, RecordFlags } from "../log/record.ts";
import type { RingCursor } from "../log/ring.ts";
import { InvariantError } from "../assert.ts";
import { addressOf } from "../verbs/handles.ts";
import { pollBatchMax } from "../verbs/cq.ts";
import type { MemoryRegion } from "../verbs/pd.ts";
import { recvDescriptor, sendDescriptor } from "../verbs/work_requests.ts";
import type { WelcomeFields } from "./control_messages.ts";
import type { LogDigest } from "./digest.ts";
import { ProtocolError, ReplicationError, SessionError } from "./errors.ts";
import { type Entry, type Flight, Kind, type ReplicatedLog } from "./flight.ts";
import type { LogSource } from "./primary.ts";
import { AckOutcome, PrimaryState } from "./primary_state.ts";
import type { PrimaryStats } from "./primary_stats.ts";
import type { RingMemory } from "./ring_memory.ts";
import type { Link } from "./side.ts";
import { chainOpcode, Side as TraceSide, trace } from "../trace/trace.ts";
import { FaultCode, RecoveryStep } from "../trace/codes.ts";
import { type PrimaryFaults, selfKill } from "./faults.ts";
import { breakdown, Stamp } from "../trace/breakdown.ts";

/** A placed log as the hooks see it. */
export interface PlacedLog {
  /** Its sequence number. */
  seq: number;
  /** Offset of its data in the ring. */
  offset: number;
  /** Bytes of data. */
  length: number;
  /** The LBA it writes. */
  lba: number;
  /** `LbaFlags` of the record. */
  lbaFlags: number;
  /** CRC32C of its data. */
  crc: number;
}

/** Called by the engine at the write cache's persistence points (docs/protocol.md). */
export interface PrimaryHooks {
  /** The log's data is in the ring: persist it and its record before it is posted. */
  beforePost?(log: PlacedLog): void;
  /** The replica refused the log: it becomes a SKIP (a hole) at the same place. */
  onSkip?(log: PlacedLog): void;
  /** The log (or its SKIP) is answered, in seq order: replicated, or a hole. */
  onAnswered?(log: PlacedLog, skip: boolean): void;
}

/** What the engine is built from (it owns none of it). */
export interface EngineParts {
  memory: RingMemory;
  ringMr: MemoryRegion;
  acks: ArrayBuffer;
  acksMr: MemoryRegion;
  ring: RingCursor;
  flight: Flight;
  depth: number;
  signalEvery: number;
  ackTimeoutMs: number;
  stats: PrimaryStats;
  digest: LogDigest;
  /** Keep acked logs in the ring until release() (a write cache de-stages them first). */
  retain: boolean;
  hooks?: PrimaryHooks;
  /** The replica's OK ack of a log was handled (a witness; see PrimaryOptions.onAcked). */
  onAcked?: (log: PlacedLog) => void;
  /** Faults to inject (tests and fault campaigns). */
  faults?: PrimaryFaults;
  /** Called just before a fault kills the process (write the trace). */
  beforeDeath?: () => void;
}

/** Posting and ack handling across sessions. */
export class PrimaryEngine {
  readonly #p: EngineParts;
  readonly #acksView: DataView;
  /** The stats' latency histogram (its pending buffer is written per acked log). */
  readonly #latency: LatencyRecorder;
  /** CRC32C over this side's ring (page pointers made once). */
  readonly #crc: RegionCrc;
  readonly #record = emptyRecord();
  /**
   * One record slot per SEND of a batch: an inline SEND copies its record when the chain is
   * posted, so the records of one chain must not share a buffer.
   */
  readonly #recordSlots: number;
  readonly #recordBuffer: ArrayBuffer;
  readonly #recordView: DataView;
  readonly #recordAddress: number;
  /** The next free record slot of the chain being gathered. */
  #recordSlot = 0;
  readonly #ack = emptyAck();
  readonly #send = sendDescriptor();
  readonly #recv = recvDescriptor();
  readonly #started = performance.now();
  /** The result handed to a stream's sink (reused: the sink copies what it keeps). */
  readonly #result: ReplicatedLog = {
    seq: 0,
    lba: 0,
    length: 0,
    offset: 0,
    latencyUs: 0,
    resends: 0,
    ackedAt: 0,
  };
  /** The time of the completion batch being handled (one clock read per batch). */
  #batchNow = 0;
  /** Inside a batch: chains and RECVs are posted at its end. */
  #batching = false;
  /** Seqs gathered in a batch whose POSTED stamp waits for the post (breakdown only). */
  readonly #unstampedSeqs: Float64Array;
  #unstamped = 0;
  #link: Link | undefined;
  #remote = { address: 0, rkey: 0 };
  /** Seqs, window, credits, ack matching, SKIPs and resends (no verbs, no callers). */
  readonly #state: PrimaryState;
  #sendsSinceSignal = 0;
  /** Logs recovered from a write cache, waiting for the first session. */
  #recovered: Entry[] = [];
  #suspendedAt = 0;
  /** One-shot faults already injected (a resend must not repeat them). */
  readonly #fired = { badRkey: false, breakQp: false };
  /** The session's failure, once final. */
  failure: Error | undefined;
  /** Why the current session broke, while waiting for a new one. */
  suspended: Error | undefined;
  /** Promises settled since the poller last gave their callers a turn. */
  settled = 0;
  /** Called after acks were handled (room may have opened). */
  onProgress: () => void = () => {};
  /** Called once when everything fails for good. */
  onFailure: (error: Error) => void = () => {};
  /** Called when a session breaks and a new one could continue. */
  onSuspend: (error: Error) => void = () => {};

  /** Starts before the first seq `nextSeq` (1 for a fresh ring). */
  constructor(parts: EngineParts, nextSeq: number) {
    this.#p = parts;
    this.#acksView = new DataView(parts.acks);
    this.#state = new PrimaryState({
      ring: parts.ring,
      flight: parts.flight,
      depth: parts.depth,
      retain: parts.retain,
      nextSeq,
    });
    this.#recv.lkey = parts.acksMr.lkey;
    this.#recv.length = ackBytes;
    this.#crc = new RegionCrc(parts.memory.address, parts.memory.length);
    this.#latency = parts.stats.latency;
    // A batch posts at most every record of the flight plus one resend per completion.
    this.#recordSlots = parts.flight.capacity + pollBatchMax;
    this.#unstampedSeqs = new Float64Array(this.#recordSlots);
    this.#recordBuffer = new ArrayBuffer(this.#recordSlots * recordBytes);
    this.#recordView = new DataView(this.#recordBuffer);
    this.#recordAddress = addressOf(Deno.UnsafePointer.of(this.#recordBuffer));
  }

  #takeRecordSlot(): number {
    if (this.#recordSlot >= this.#recordSlots) {
      throw new InvariantError(`more than ${this.#recordSlots} records in one batch`);
    }
    return this.#recordSlot++;
  }

  /** The ack buffer (registered again when the device is reopened). */
  get acksBuffer(): ArrayBuffer {
    return this.#p.acks;
  }

  /** Uses memory regions registered on a reopened device (after the old one was removed). */
  rebind(ringMr: MemoryRegion, acksMr: MemoryRegion): void {
    this.#p.ringMr = ringMr;
    this.#p.acksMr = acksMr;
    this.#recv.lkey = acksMr.lkey;
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
    return this.#state.released;
  }
  /** The next sequence number to assign. */
  get nextSeq(): number {
    return this.#state.nextSeq;
  }
  /** This side's ring. */
  get ring(): RingCursor {
    return this.#p.ring;
  }
  /** Every log up to this seq has been answered (acked, or refused and skipped). */
  get answeredSeq(): number {
    return this.#state.answeredSeq;
  }

  /**
   * A log recovered from this side's write cache (primary restart), in seq order, before
   * the first session: it is placed again, and replicated again unless the replica has it.
   */
  seedRecovered(log: PlacedLog & { skip: boolean }): Entry {
    const e = this.#p.flight.detached(log.skip ? Kind.SKIP : Kind.LOG);
    this.#state.placeRecovered(e, log.seq, log.offset, log.length);
    e.lba = log.lba;
    e.lbaFlags = log.lbaFlags;
    e.crc = log.crc;
    e.submitted = performance.now();
    this.#recovered.push(e);
    return e;
  }

  /**
   * Starts (or resumes on) a session: what the WELCOME says the replica holds
   * (`nextSeq`) is replicated; every later log or SKIP is posted again, in order.
   */
  attach(link: Link, welcome: WelcomeFields): void {
    const n = welcome.nextSeq;
    const state = this.#state;
    if (!state.attach(n, welcome.released)) {
      const error = new ProtocolError(state.problem.received, state.problem.expected);
      this.fail(
        new SessionError("protocol", `The replica's state is impossible: ${error.message}`, error),
      );
      return;
    }
    this.#link = link;
    this.#remote = { address: welcome.ringAddr, rkey: welcome.rkey };
    this.#sendsSinceSignal = 0;
    const pending = state.drainForResume(this.#recovered);
    if (trace.on) trace.recovery(RecoveryStep.RESUMED, n, pending.length);
    this.#recovered = [];
    this.suspended = undefined;
    this.postAckReceives();
    for (const e of pending) {
      if (e.kind === Kind.NOP || e.kind === Kind.RELEASE) this.#p.flight.give(e);
      else if (e.kind === Kind.RAW) {
        e.reject?.(
          new SessionError("peer-closed", "The session ended before the raw record's ack"),
        );
        this.#p.flight.give(e);
      } else if (e.seq < n) {
        if (trace.on) trace.recovery(RecoveryStep.REPLICATED_BY_WELCOME, e.seq, 0);
        state.answered(e);
        this.#replicated(e);
      } else {
        if (trace.on) trace.recovery(RecoveryStep.RESEND, e.seq, 0);
        this.#repost(e);
      }
    }
    this.#postRelease();
    this.onProgress();
  }

  #drainFlight(): Entry[] {
    const out: Entry[] = [];
    while (this.#p.flight.count > 0) out.push(this.#p.flight.shift());
    return out;
  }

  /** A log or SKIP the replica holds (its ack or the WELCOME said so; the state has it answered). */
  #replicated(e: Entry): void {
    this.#p.hooks?.onAnswered?.(e, e.kind === Kind.SKIP);
    if (e.kind === Kind.SKIP) {
      this.#p.flight.give(e);
      return;
    }
    this.#p.digest.add(e.seq, e.lba, e.length, e.crc | 0);
    this.#p.onAcked?.(e);
    const ackedAt = this.#batchNow > 0 ? this.#batchNow : performance.now();
    const latencyUs = (ackedAt - e.submitted) * 1000;
    if (breakdown.on) breakdown.stamp(Stamp.ACKED, e.seq, ackedAt);
    // The latency goes through a typed array, not an argument (a boxed double per log).
    const latency = this.#latency;
    if (latency.pendingCount >= latency.pending.length) latency.recordPending();
    latency.pending[latency.pendingCount++] = latencyUs;
    this.#p.stats.acked(e.length);
    if (this.#suspendedAt > 0) {
      this.#p.stats.recovered(ackedAt - this.#suspendedAt);
      if (trace.on) {
        trace.recovery(RecoveryStep.FIRST_ACK, e.seq, Math.round(ackedAt - this.#suspendedAt));
      }
      this.#suspendedAt = 0;
    }
    const sink = e.sink;
    if (sink) {
      const r = this.#result;
      r.seq = e.seq;
      r.lba = e.lba;
      r.length = e.length;
      r.offset = e.offset;
      r.latencyUs = latencyUs;
      r.resends = e.resends;
      r.ackedAt = ackedAt;
      this.#p.flight.give(e);
      sink.replicated(r);
      return;
    }
    if (e.resolve) {
      this.settled++;
      e.resolve({
        seq: e.seq,
        lba: e.lba,
        length: e.length,
        offset: e.offset,
        latencyUs,
        resends: e.resends,
        ackedAt,
      });
    }
    this.#p.flight.give(e);
  }

  #repost(e: Entry): void {
    this.#state.resending(e);
    this.#p.stats.resends++;
    this.#post(e);
  }

  /** The session broke: keep every log; post nothing until attach(). */
  suspend(error: Error): void {
    if (this.failure || this.suspended) return;
    this.suspended = error;
    this.#suspendedAt = performance.now();
    if (trace.on) {
      trace.recovery(RecoveryStep.SUSPEND, this.#state.answeredSeq + 1, this.#p.flight.count);
    }
    this.#link = undefined;
    this.#p.stats.suspensions++;
    this.onSuspend(error);
  }

  /** Whether a log of `length` may be posted now: session, depth, credits, ring, no recovery. */
  canPost(length: number): boolean {
    return this.failure === undefined && this.#link !== undefined && this.#state.canPost(length);
  }

  /** A log waited for room (depth, credits, ring, a session): counted as the promise API's waits are. */
  countAdmissionWait(): void {
    this.#p.stats.admissionWaits++;
  }

  /** A flight entry for a new log. */
  takeLog(): Entry {
    return this.#p.flight.take(Kind.LOG);
  }
  /** A flight entry for a raw record. */
  takeRaw(): Entry {
    return this.#p.flight.take(Kind.RAW);
  }

  /**
   * Places, fills, checksums, persists (hooks) and posts a log (after canPost). The caller
   * sets `e.submitted` first (a field: a double argument would be boxed per log).
   */
  postLog(
    e: Entry,
    source: LogSource,
    length: number,
    lba: number,
    lbaFlags: number,
  ): void {
    const p = this.#p;
    // Flow control (in the state): never write into replica space it has not released.
    const offset = this.#state.placeLog(e, length);
    if (breakdown.on) breakdown.stamp(Stamp.PREPARE, e.seq, performance.now());
    const ahead = this.#state.aheadBytes;
    if (ahead > p.stats.maxAheadBytes) p.stats.maxAheadBytes = ahead;
    if (typeof source === "function") source(p.memory.bytes, offset, length);
    else if (source instanceof Uint8Array) p.memory.bytes.set(source, offset);
    else source.fill(p.memory.bytes, offset, length);
    e.lba = lba;
    e.lbaFlags = lbaFlags;
    e.crc = this.#crc.int32At(offset, length) >>> 0;
    p.hooks?.beforePost?.(e);
    this.#post(e);
    p.stats.posted++;
  }

  /** Sends a crafted 64-byte record (tests), alone in flight; its ack goes to `e.onAck`. */
  postRaw(record: Uint8Array, e: Entry): void {
    new Uint8Array(this.#recordBuffer, this.#takeRecordSlot() * recordBytes, recordBytes)
      .set(record);
    e.posted = performance.now();
    this.#postRecord(e, false);
  }

  /**
   * Retain mode: frees this side's ring through `seq` (answered and de-staged) and asks the
   * replica to free its copies with a RELEASE record.
   */
  release(seq: number): void {
    this.#state.release(seq);
    this.#postRelease();
  }

  /** Posts the wanted RELEASE when a spare flight slot is free. */
  #postRelease(): void {
    const flight = this.#p.flight;
    const seq = this.#state.releaseDue;
    if (this.failure || !this.#link || seq === 0 || flight.count >= flight.capacity) return;
    const e = flight.take(Kind.RELEASE);
    e.seq = seq;
    this.#state.releasePosted(seq);
    this.#post(e);
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
    const now = performance.now();
    r.timestampNs = Math.round((now - this.#started) * 1e6);
    encodeRecord(this.#recordView, this.#takeRecordSlot() * recordBytes, r);
    e.posted = now; // a field, not an argument: a double argument would be boxed per log
    this.#postRecord(e, e.kind === Kind.LOG);
  }

  /** Posts [the WRITE of e's data] + the SEND of the record buffer, in one chain. */
  #postRecord(e: Entry, withData: boolean): void {
    const p = this.#p;
    p.flight.push(e);
    const link = this.#link;
    if (!link) return; // suspended: attach() posts it again
    const send = this.#send;
    const faults = p.faults;
    if (withData) {
      send.wrId = e.seq;
      send.opcode = O.IBV_WR_RDMA_WRITE;
      send.flags = 0;
      send.addr = p.memory.address + e.offset;
      send.length = e.length;
      send.lkey = p.ringMr.lkey;
      send.remoteAddr = this.#remote.address + e.offset;
      send.rkey = this.#remote.rkey;
      if (faults?.badRkey === e.seq && !this.#fired.badRkey) {
        this.#fired.badRkey = true;
        if (trace.on) trace.fault(FaultCode.BAD_RKEY, e.seq, 0);
        send.rkey = (this.#remote.rkey ^ 0x5a5a5a5a) >>> 0; // the replica's NAK: remote access error
      }
      link.qp.sendChain.add(send);
    }
    let flags = S.IBV_SEND_INLINE;
    if (++this.#sendsSinceSignal >= p.signalEvery) {
      flags |= S.IBV_SEND_SIGNALED;
      this.#sendsSinceSignal = 0;
    }
    send.wrId = e.seq;
    send.opcode = O.IBV_WR_SEND;
    send.flags = flags;
    send.addr = this.#recordAddress + (this.#recordSlot - 1) * recordBytes;
    send.length = recordBytes;
    send.lkey = 0;
    send.remoteAddr = 0;
    send.rkey = 0;
    link.qp.sendChain.add(send);
    if (trace.on) {
      const opcode = withData ? chainOpcode(O.IBV_WR_RDMA_WRITE, O.IBV_WR_SEND) : O.IBV_WR_SEND;
      trace.post(
        TraceSide.PRIMARY,
        opcode,
        e.seq,
        e.seq,
        withData ? e.length : recordBytes,
        link.qp.qpn,
      );
    }
    if (breakdown.on && withData) this.#unstampedSeqs[this.#unstamped++] = e.seq;
    // In a batch the chain is posted once at its end; a fault plan posts at once (its
    // faults act right after a given post).
    if (this.#batching && !faults) return;
    this.flush();
    if (faults && e.kind === Kind.LOG) this.#afterPostFaults(faults, e.seq, link);
  }

  /** Starts a batch: posts wait for {@linkcode endBatch} (one post_send, one post_recv). */
  beginBatch(): void {
    this.#batching = true;
  }

  /** Ends a batch: posts what it gathered. */
  endBatch(): void {
    this.#batching = false;
    this.flush();
  }

  /** Posts the gathered ack RECVs, then the gathered chains, on the current session. */
  flush(): void {
    const qp = this.#link?.qp;
    const unstamped = this.#unstamped;
    this.#unstamped = 0;
    this.#recordSlot = 0; // posted (or dropped with a broken session): the slots are free
    if (!qp) return;
    try {
      if (qp.recvChain.length > 0) qp.postRecv();
    } catch (error) {
      return this.suspend(
        new SessionError(
          "completion",
          `Posting an ack RECV failed: ${(error as Error).message}`,
          error,
        ),
      );
    }
    if (qp.sendChain.length === 0) return;
    try {
      qp.postSend();
    } catch (error) {
      return this.suspend(
        new SessionError(
          "completion",
          `Posting through seq ${this.#state.nextSeq - 1} failed: ${(error as Error).message}`,
          error,
        ),
      );
    }
    if (unstamped > 0) {
      const now = performance.now();
      for (let i = 0; i < unstamped; i++) {
        breakdown.stamp(Stamp.POSTED, this.#unstampedSeqs[i], now);
      }
    }
  }

  /** The primary's own faults, right after log `seq` was posted (between post and ack). */
  #afterPostFaults(faults: PrimaryFaults, seq: number, link: Link): void {
    if (faults.kill?.seq === seq) {
      if (trace.on) trace.fault(FaultCode.PRIMARY_KILL, seq, 0);
      selfKill(`primary killed right after posting seq ${seq}`, this.#p.beforeDeath);
    }
    if (faults.breakQp === seq && !this.#fired.breakQp) {
      this.#fired.breakQp = true;
      if (trace.on) trace.fault(FaultCode.BREAK_QP, seq, 0);
      link.qp.toError();
    }
  }

  /** Handles `n` completions from the current session's CQ. */
  onCompletions(n: number): void {
    const cq = this.#link?.cq;
    if (!cq) return;
    this.#batchNow = performance.now();
    this.beginBatch();
    try {
      this.#handleCompletions(cq, n);
    } finally {
      this.#batchNow = 0;
      this.endBatch();
    }
  }

  #handleCompletions(cq: Link["cq"], n: number): void {
    for (let i = 0; i < n && this.#link && !this.failure; i++) {
      if (trace.on) {
        trace.completion(
          TraceSide.PRIMARY,
          cq.opcode(i),
          cq.status(i),
          cq.wrId(i),
          cq.byteLen(i),
          cq.qpNum(i),
        );
      }
      if (cq.status(i) !== IBV_WC_STATUS.IBV_WC_SUCCESS) {
        const error = cq.completionError(i, "primary");
        this.suspend(new SessionError("completion", `The session failed: ${error.message}`, error));
        return;
      }
      if (cq.opcode(i) === IBV_WC_OPCODE.IBV_WC_RECV) this.#onAck(cq.wrId(i), cq.byteLen(i));
    }
    if (!this.failure && this.#link) {
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
    if (trace.on) trace.ack(TraceSide.PRIMARY, ack.status, ack.seq, ack.nextSeq, ack.released);
    const state = this.#state;
    const outcome = state.onAck(ack);
    const e = state.entry!;
    switch (outcome) {
      case AckOutcome.REPLICATED:
      case AckOutcome.SKIP_ANSWERED:
        this.#replicated(e);
        return;
      case AckOutcome.RESEND:
        p.stats.resends++;
        this.#post(e);
        return;
      case AckOutcome.REFUSED:
        p.stats.refused++;
        this.#reject(e, new ReplicationError(ack.status, e.seq));
        e.reject = undefined;
        e.sink = undefined;
        p.hooks?.onSkip?.(e);
        p.stats.skips++;
        this.#post(e);
        return;
      case AckOutcome.DONE:
        p.flight.give(e);
        return;
      case AckOutcome.RAW:
        this.settled++;
        e.onAck?.({ ...ack });
        p.flight.give(e);
        return;
      case AckOutcome.SUSPEND: {
        // An ack went missing (the replica skipped it): the session cannot be trusted, but
        // a new one can resume: its WELCOME says which logs the replica holds.
        const error = new ProtocolError(state.problem.received, state.problem.expected);
        return this.suspend(
          new SessionError("protocol", `The session broke: ${error.message}`, error),
        );
      }
      default:
        return this.#violation(state.problem.received, state.problem.expected);
    }
  }

  /** Suspends the session when the oldest record waited longer than the ack timeout (`clock[0]`: now, ms). */
  checkTimeout(clock: Float64Array): void {
    if (!this.#link || this.failure) return;
    const e = this.#state.overdue(clock[0], this.#p.ackTimeoutMs);
    if (e) {
      this.suspend(
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

  /** Ends everything: every log in flight fails with `error`; later calls are refused. */
  fail(error: Error): void {
    if (this.failure) return;
    this.failure = error;
    this.#link = undefined;
    const flight = this.#p.flight;
    for (const e of [...this.#recovered, ...this.#drainFlight()]) {
      this.#reject(e, error);
      if (e.kind === Kind.LOG) this.#p.stats.failed++;
      flight.give(e);
    }
    this.#recovered = [];
    this.onFailure(error);
  }

  /** Reports a log's failure to its promise or its stream. */
  #reject(e: Entry, error: Error): void {
    if (e.sink) e.sink.failed(e.seq, error);
    else if (e.reject) {
      this.settled++;
      e.reject(error);
    }
  }

  /** Posts one RECV per ack slot on the current session. */
  postAckReceives(): void {
    for (let slot = 0; slot < this.#p.flight.capacity; slot++) this.#postRecv(slot);
  }

  #postRecv(slot: number): void {
    const qp = this.#link?.qp;
    if (!qp) return;
    this.#recv.wrId = slot;
    this.#recv.addr = this.#p.acksMr.address + slot * ackBytes;
    qp.recvChain.add(this.#recv);
    if (!this.#batching) this.flush();
  }
}
