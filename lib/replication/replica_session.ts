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
import { CompletionPoller } from "./poller.ts";
import type { ReplicaState } from "./replica_state.ts";
import type { Link, Side } from "./side.ts";
import { AckStatus } from "../log/ack.ts";

/** Ack SENDs between two signaled ones (each signaled completion retires the ones before). */
const ackSignalEvery = 16;

/** Options of a session. */
export interface ReplicaSessionOptions {
  metaSlots: number;
  spinUs: number;
  faultStatus?: (seq: number) => number | undefined;
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
  readonly #limits;
  #poller: CompletionPoller | undefined;
  #acksSinceSignal = 0;
  #closed = false;
  #failure: Error | undefined;

  /** Creates the QP and slot buffers on `side` (not yet connected). */
  constructor(side: Side, state: ReplicaState, options: ReplicaSessionOptions) {
    this.#state = state;
    this.#options = options;
    const slots = options.metaSlots;
    this.#link = side.openLink({
      maxSendWr: slots + 2 * ackSignalEvery,
      maxRecvWr: slots,
      maxInlineData: ackBytes,
    });
    this.#slots = new ArrayBuffer(slots * recordBytes);
    this.#slotsView = new DataView(this.#slots);
    this.#slotsMr = side.pd.register(this.#slots, A.IBV_ACCESS_LOCAL_WRITE);
    const acks = new ArrayBuffer(slots * ackBytes);
    this.#acks = new DataView(acks);
    this.#acksAddress = addressOf(Deno.UnsafePointer.of(acks));
    this.#limits = recordLimits({ maxDataLength: state.maxLogBytes });
    this.#send.opcode = O.IBV_WR_SEND;
    this.#send.length = ackBytes;
    this.#recv.length = recordBytes;
    this.#recv.lkey = this.#slotsMr.lkey;
  }

  /** This session's QP endpoint, for the WELCOME. */
  get endpoint(): QpEndpoint {
    return this.#link.endpoint;
  }

  /** Connects to the primary's QP (REMOTE_WRITE only) and posts every slot's RECV. */
  connect(primary: QpEndpoint): void {
    this.#link.connect(primary, A.IBV_ACCESS_REMOTE_WRITE);
    for (let slot = 0; slot < this.#options.metaSlots; slot++) this.#postRecv(slot);
  }

  /** Starts answering. */
  start(): void {
    this.#poller = new CompletionPoller(this.#link.cq, {
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
    const reason = byteLen === recordBytes
      ? decodeRecord(this.#slotsView, slot * recordBytes, record, this.#limits)
      : RecordReason.TRUNCATED;
    let status: number;
    let seq = 0;
    if (reason !== RecordReason.OK) {
      status = state.refuseUndecodable();
    } else {
      seq = record.seq;
      // Injection answers for data logs only (never for a SKIP or NOP).
      const injected =
        this.#options.faultStatus && record.flags === 0 && record.seq === state.nextSeq
          ? this.#options.faultStatus(record.seq)
          : undefined;
      status = injected !== undefined && injected !== AckStatus.OK
        ? state.refuse(injected)
        : state.check(record);
    }
    this.#postRecv(slot);
    const ack = this.#ack;
    ack.status = status;
    ack.seq = seq;
    ack.nextSeq = state.nextSeq;
    ack.released = state.released;
    encodeAck(this.#acks, slot * ackBytes, ack);
    const send = this.#send;
    send.wrId = slot;
    send.addr = this.#acksAddress + slot * ackBytes;
    send.flags = S.IBV_SEND_INLINE;
    if (++this.#acksSinceSignal >= ackSignalEvery) {
      send.flags |= S.IBV_SEND_SIGNALED;
      this.#acksSinceSignal = 0;
    }
    this.#link.qp.sendChain.add(send);
    this.#link.qp.postSend();
    if (status !== AckStatus.OK) {
      this.#options.log(`replica: answered ${statusLabel(status)} to seq ${seq}`);
    }
  }

  #postRecv(slot: number): void {
    this.#recv.wrId = slot;
    this.#recv.addr = this.#slotsMr.address + slot * recordBytes;
    this.#link.qp.recvChain.add(this.#recv);
    this.#link.qp.postRecv();
  }
}

function statusLabel(status: number): string {
  return Object.keys(AckStatus).find((k) => AckStatus[k as keyof typeof AckStatus] === status) ??
    String(status);
}
