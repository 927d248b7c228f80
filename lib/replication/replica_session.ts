/**
 * One primary's session on the replica: an RC QP whose posted RECVs are the metadata ring
 * slots, and the loop that answers each record with an inline ack SEND.
 *
 * @module
 */
import {
  IBV_ACCESS_FLAGS as A,
  IBV_SEND_FLAGS as S,
  IBV_WC_OPCODE,
  IBV_WC_STATUS,
  IBV_WR_OPCODE as O,
} from "../../ffi/verbs_constants.ts";
import { ackBytes, emptyAck, encodeAck } from "../log/ack.ts";
import {
  decodeRecord,
  emptyRecord,
  recordBytes,
  recordLimits,
  RecordReason,
} from "../log/record.ts";
import { CompletionError } from "../verbs/errors.ts";
import { addressOf } from "../verbs/handles.ts";
import type { MemoryRegion } from "../verbs/pd.ts";
import type { QpEndpoint } from "../verbs/qp.ts";
import { recvDescriptor, sendDescriptor } from "../verbs/work_requests.ts";
import { CompletionPoller, type WaitMode } from "./poller.ts";
import { breakdown, Stamp } from "../trace/breakdown.ts";
import type { ReplicaState } from "./replica_state.ts";
import type { Link, Side } from "./side.ts";
import { AckStatus } from "../log/ack.ts";
import { InvariantError } from "../assert.ts";
import { type ReplicaFaults, selfKill, stallFor } from "./faults.ts";
import { Side as TraceSide, trace } from "../trace/trace.ts";
import { FaultCode } from "../trace/codes.ts";
import { disposeAfter } from "../dispose.ts";

/** Ack SENDs between two signaled ones (each signaled completion retires the ones before). */
const ackSignalEvery = 16;

/** Options of a session. */
export interface ReplicaSessionOptions {
  metaSlots: number;
  /** How to wait for completions (default hybrid). */
  wait?: WaitMode;
  spinUs: number;
  faults?: ReplicaFaults;
  /** Called just before a fault kills the process (write the trace). */
  beforeDeath?: () => void;
  log: (line: string) => void;
}

/** A session: QP, slot buffers, the answering loop. */
export class ReplicaSession {
  readonly #state: ReplicaState;
  readonly #link: Link;
  readonly #slots: ArrayBuffer;
  readonly #slotsView: DataView;
  readonly #slotsMr: MemoryRegion;
  readonly #acks: DataView;
  readonly #acksAddress: number;
  readonly #record = emptyRecord();
  readonly #ack = emptyAck();
  readonly #recv = recvDescriptor();
  readonly #send = sendDescriptor();
  readonly #options: ReplicaSessionOptions;
  readonly #delayQueue: DataView;
  readonly #delayQueueAddress: number;
  /** The record slots' address, read from a field here (a getter's double is boxed). */
  readonly #slotsAddress: number;
  /** Offsets of held-back acks in #delayQueue (a 0 marker first while a delay runs). */
  readonly #delayed: number[] = [];
  readonly #limits;
  #poller: CompletionPoller | undefined;
  /** When the batch being handled was polled (breakdown only). */
  #batchNow = 0;
  #acksSinceSignal = 0;
  /** Inside a completion batch: posts wait for its end. */
  #batching = false;
  /** Seqs whose ACK_POSTED stamp waits for the flush (breakdown only). */
  readonly #unstampedSeqs: Float64Array;
  #unstamped = 0;
  #closed = false;
  #failure: Error | undefined;

  /** Creates the QP and slot buffers on `side` (not yet connected). */
  constructor(side: Side, state: ReplicaState, options: ReplicaSessionOptions) {
    this.#state = state;
    this.#options = options;
    const slots = options.metaSlots;
    this.#slots = new ArrayBuffer(slots * recordBytes);
    this.#slotsView = new DataView(this.#slots);
    const stack = new DisposableStack();
    try {
      this.#link = stack.use(side.openLink({
        maxSendWr: slots + 2 * ackSignalEvery,
        maxRecvWr: slots,
        maxInlineData: ackBytes,
      }));
      this.#slotsMr = stack.use(side.pd.register(this.#slots, A.IBV_ACCESS_LOCAL_WRITE));
    } catch (error) {
      throw disposeAfter(stack, error);
    }
    const acks = new ArrayBuffer(slots * ackBytes);
    this.#acks = new DataView(acks);
    this.#acksAddress = addressOf(Deno.UnsafePointer.of(acks));
    this.#limits = recordLimits({ maxDataLength: state.maxLogBytes });
    const delayQueue = new ArrayBuffer((slots + 1) * ackBytes);
    this.#delayQueue = new DataView(delayQueue);
    this.#delayQueueAddress = addressOf(Deno.UnsafePointer.of(delayQueue));
    this.#unstampedSeqs = new Float64Array(slots);
    this.#send.opcode = O.IBV_WR_SEND;
    this.#send.length = ackBytes;
    this.#recv.length = recordBytes;
    this.#recv.lkey = this.#slotsMr.lkey;
    this.#slotsAddress = this.#slotsMr.address;
  }

  /** This session's QP endpoint, for the WELCOME. */
  get endpoint(): QpEndpoint {
    return this.#link.endpoint;
  }

  /** Connects to the primary's QP (REMOTE_WRITE only) and posts every slot's RECV. */
  connect(primary: QpEndpoint): void {
    this.#link.connect(primary, A.IBV_ACCESS_REMOTE_WRITE);
    // A receiver-not-ready fault posts fewer RECVs than the primary may have in flight.
    const slots = Math.min(this.#options.metaSlots, this.#options.faults?.recvSlots ?? Infinity);
    for (let slot = 0; slot < slots; slot++) this.#postRecv(slot);
    if (slots < this.#options.metaSlots && trace.on) trace.fault(FaultCode.FEW_RECVS, 0, slots);
  }

  /** Starts answering. */
  start(): void {
    this.#poller = new CompletionPoller(this.#link.cq, {
      wait: this.#options.wait,
      spinUs: this.#options.spinUs,
      idleWaitMs: 50,
      onCompletions: (n) => this.#onCompletions(n),
    });
    this.#poller.start();
  }

  /** Resolves when the loop stops: after stop(), or rejects on a failed completion. */
  get done(): Promise<void> {
    return (this.#poller?.done ?? Promise.resolve()).then(() => {
      if (this.#failure) throw this.#failure;
    });
  }

  /** Stops the loop. */
  async stop(): Promise<void> {
    this.#poller?.stop();
    await this.#poller?.done.catch(() => {});
  }

  /** Destroys the QP and buffers (after stop()). Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#link.close();
    this.#slotsMr.close();
  }

  #onCompletions(n: number): void {
    const cq = this.#link.cq;
    if (breakdown.on) this.#batchNow = performance.now();
    // The batch's RECV re-posts and ack SENDs go in one post each, at its end.
    this.#batching = true;
    try {
      this.#handle(cq, n);
    } finally {
      this.#batching = false;
      this.#flush();
    }
  }

  #handle(cq: Link["cq"], n: number): void {
    for (let i = 0; i < n; i++) {
      if (cq.status(i) !== IBV_WC_STATUS.IBV_WC_SUCCESS) {
        // The primary went away (flush) or the transport failed: the session is over.
        if (cq.status(i) !== IBV_WC_STATUS.IBV_WC_WR_FLUSH_ERR) {
          this.#failure ??= cq.completionError(i, "replica session") as CompletionError;
        }
        this.#poller?.stop();
        return;
      }
      if (cq.opcode(i) === IBV_WC_OPCODE.IBV_WC_RECV) this.#answer(cq.wrId(i), cq.byteLen(i));
    }
  }

  #answer(slot: number, byteLen: number): void {
    const state = this.#state;
    const record = this.#record;
    const faults = this.#options.faults;
    const reason = byteLen === recordBytes
      ? decodeRecord(this.#slotsView, slot * recordBytes, record, this.#limits)
      : RecordReason.TRUNCATED;
    let status: number;
    let seq = 0;
    if (reason !== RecordReason.OK) {
      status = state.refuseUndecodable();
    } else {
      seq = record.seq;
      if (breakdown.on && record.flags === 0) breakdown.stamp(Stamp.RECV, seq, this.#batchNow);
      if (trace.on) {
        trace.record(TraceSide.REPLICA, record.flags, seq, record.dataOffset, record.dataLength);
      }
      // Faults hit data logs only (never a SKIP, NOP or RELEASE), at the expected seq.
      const here = faults && record.flags === 0 && seq === state.nextSeq;
      if (here && faults.kill?.seq === seq && faults.kill.point === "before-check") {
        this.#die("killed with log data placed, before checking it", seq);
      }
      if (here && faults.stall?.seq === seq) {
        if (trace.on) trace.fault(FaultCode.REPLICA_STALL, seq, faults.stall.ms);
        stallFor(faults.stall.ms);
      }
      const injected = here && faults.status?.seq === seq
        ? AckStatus[faults.status.status as keyof typeof AckStatus]
        : undefined;
      if (injected !== undefined && trace.on) trace.fault(FaultCode.STATUS, seq, injected);
      status = injected !== undefined ? state.refuse(injected) : state.check(record);
      if (here && status === AckStatus.OK) {
        if (faults.kill?.seq === seq && faults.kill.point === "after-persist") {
          this.#die("killed after persisting, before the ack", seq);
        }
        if (faults.signalAt?.seq === seq) Deno.writeTextFileSync(faults.signalAt.file, `${seq}\n`);
      }
    }
    if (breakdown.on && status === AckStatus.OK && record.flags === 0) {
      breakdown.stamp(Stamp.CHECKED, seq, performance.now());
    }
    this.#postRecv(slot);
    const ack = this.#ack;
    ack.status = status;
    ack.seq = seq;
    ack.nextSeq = state.nextSeq;
    ack.released = state.released;
    if (status !== AckStatus.OK) {
      this.#options.log(`replica: answered ${statusLabel(status)} to seq ${seq}`);
    }
    if (trace.on) trace.ack(TraceSide.REPLICA, status, seq, ack.nextSeq, ack.released);
    if (faults?.dropAck === seq && seq > 0 && status === AckStatus.OK) {
      if (trace.on) trace.fault(FaultCode.DROP_ACK, seq, 0);
      return; // accepted, not answered
    }
    if (faults?.delayAck?.seq === seq && seq > 0 && this.#delayed.length === 0) {
      if (trace.on) trace.fault(FaultCode.DELAY_ACK, seq, faults.delayAck.ms);
      setTimeout(() => this.#sendDelayed(), faults.delayAck.ms);
      this.#delayed.push(0);
    }
    if (this.#delayed.length > 0) {
      // An ack held back holds back every later one: acks leave in order.
      if (this.#delayed.length > this.#options.metaSlots) {
        throw new InvariantError("delayed acks beyond the slots");
      }
      const at = (this.#delayed.length - 1) * ackBytes;
      encodeAck(this.#delayQueue, at, ack);
      this.#delayed.push(at);
      return;
    }
    encodeAck(this.#acks, slot * ackBytes, ack);
    if (breakdown.on && status === AckStatus.OK && record.flags === 0) {
      this.#unstampedSeqs[this.#unstamped++] = seq;
    }
    this.#sendAck(slot, -1);
    if (faults?.kill?.seq === seq && faults.kill.point === "after-ack" && status === AckStatus.OK) {
      this.#die("killed after sending the ack", seq);
    }
  }

  /**
   * Adds the ack of `slot` (or, with `delayedAt` ≥ 0, the held-back ack at that offset of
   * the delay queue) to the send chain. Small integers in, the address made here: a
   * double passed to a call V8 did not inline would be boxed, once per log.
   */
  #sendAck(slot: number, delayedAt: number): void {
    const send = this.#send;
    send.wrId = delayedAt >= 0 ? 0 : slot;
    send.addr = delayedAt >= 0
      ? this.#delayQueueAddress + delayedAt
      : this.#acksAddress + slot * ackBytes;
    send.flags = S.IBV_SEND_INLINE;
    if (++this.#acksSinceSignal >= ackSignalEvery) {
      send.flags |= S.IBV_SEND_SIGNALED;
      this.#acksSinceSignal = 0;
    }
    this.#link.qp.sendChain.add(send);
    if (!this.#batching) this.#flush();
  }

  /** Posts the RECVs, then the acks, added since the last flush (RECVs first: the primary may send as soon as it has an ack). */
  #flush(): void {
    const qp = this.#link.qp;
    if (qp.recvChain.length > 0) qp.postRecv();
    if (qp.sendChain.length > 0) {
      qp.postSend();
      if (breakdown.on) this.#stampAcksPosted();
    }
  }

  #stampAcksPosted(): void {
    const now = performance.now();
    for (let i = 0; i < this.#unstamped; i++) {
      breakdown.stamp(Stamp.ACK_POSTED, this.#unstampedSeqs[i], now);
    }
    this.#unstamped = 0;
  }

  /** Sends the held-back acks, in order. */
  #sendDelayed(): void {
    if (this.#closed) return;
    const pending = this.#delayed.splice(0);
    for (const at of pending.slice(1)) this.#sendAck(0, at);
  }

  #die(reason: string, seq: number): never {
    this.#flush(); // what was answered before leaves, as it would have unbatched
    if (trace.on) trace.fault(FaultCode.REPLICA_KILL, seq, 0);
    return selfKill(`replica ${reason} (seq ${seq})`, this.#options.beforeDeath);
  }

  #postRecv(slot: number): void {
    this.#recv.wrId = slot;
    this.#recv.addr = this.#slotsAddress + slot * recordBytes;
    this.#link.qp.recvChain.add(this.#recv);
    if (!this.#batching) this.#flush();
  }
}

function statusLabel(status: number): string {
  return Object.keys(AckStatus).find((k) => AckStatus[k as keyof typeof AckStatus] === status) ??
    String(status);
}
