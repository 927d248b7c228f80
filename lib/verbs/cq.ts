/**
 * Completion queues and completion channels: ibv_create_cq(3), ibv_poll_cq(3),
 * ibv_req_notify_cq(3), ibv_create_comp_channel(3), ibv_get_cq_event(3).
 *
 * `poll()` calls `ops.poll_cq` into a completion array preallocated with the CQ and returns
 * a count; the accessors read that array without allocating.
 *
 * @module
 */
import { errno, F_GETFL, F_SETFL, libc, O_NONBLOCK, POLLIN } from "../../ffi/libc.ts";
import { PreparedCall } from "../../ffi/prepared_call.ts";
import { IBV_WC_STATUS } from "../../ffi/verbs_constants.ts";
import { ibvCompChannel, ibvWc } from "../../ffi/verbs_types.ts";
import { verbs } from "../../ffi/verbs.ts";
import { assert } from "../assert.ts";
import { callDestroy, callPointer } from "./call.ts";
import type { Context } from "./context.ts";
import { CompletionError, ResourceError, verbsError } from "./errors.ts";
import { addressOf, brandPointer, type ChannelPtr, type CqPtr } from "./handles.ts";
import { armed, HOT, injectedHotErrno } from "./inject.ts";
import { Resource } from "./resource.ts";
import { closeAfter } from "../dispose.ts";

/** Largest CQ this layer creates. */
export const cqEntriesMax = 65536;
/** Largest completion array one `poll()` fills. */
export const pollBatchMax = 256;
/** Longest single `poll(2)` wait, so waits stay responsive to aborts and close. */
const waitSliceMsMax = 50;

const wc = {
  wrId: ibvWc.field("wr_id"),
  status: ibvWc.field("status"),
  opcode: ibvWc.field("opcode"),
  vendorErr: ibvWc.field("vendor_err"),
  byteLen: ibvWc.field("byte_len"),
  immData: ibvWc.field("imm_data"),
  qpNum: ibvWc.field("qp_num"),
  wcFlags: ibvWc.field("wc_flags"),
};

/** A completion channel (`struct ibv_comp_channel`) whose fd is non-blocking. */
export class CompletionChannel extends Resource {
  readonly #ptr: ChannelPtr;
  /** The channel's file descriptor. */
  readonly fd: number;
  readonly #pollFd = new DataView(new ArrayBuffer(8)); // struct pollfd
  readonly #pollFdBytes = new Uint8Array(this.#pollFd.buffer);
  readonly #eventCq = new BigUint64Array(new ArrayBuffer(8));
  /** The same 8 bytes as two u32 (reading them allocates no BigInt). */
  readonly #eventCqWords = new Uint32Array(this.#eventCq.buffer);
  readonly #eventContext = new BigUint64Array(new ArrayBuffer(8));
  #waiting = false;
  /** For messages. */
  readonly label: string;

  /** `ibv_create_comp_channel(3)`; sets O_NONBLOCK on its fd. */
  constructor(context: Context) {
    const ptr = callPointer(
      "ibv_create_comp_channel",
      () => context.name,
      () => verbs().ibv_create_comp_channel(context.ptr),
    );
    super([context]);
    this.label = `completion channel on ${context.name}`;
    this.#ptr = brandPointer(ptr);
    this.fd = ibvCompChannel.field("fd").read(this.#ptr);
    const flags = libc.symbols.fcntl(this.fd, F_GETFL, 0);
    if (flags < 0 || libc.symbols.fcntl(this.fd, F_SETFL, flags | O_NONBLOCK) < 0) {
      const error = verbsError("fcntl", errno(), `O_NONBLOCK on completion channel fd ${this.fd}`);
      throw closeAfter(this, error);
    }
    this.#pollFd.setInt32(0, this.fd, true);
    this.#pollFd.setInt16(4, POLLIN, true);
  }

  /** The raw handle. */
  get ptr(): ChannelPtr {
    this.assertOpen();
    return this.#ptr;
  }

  /**
   * Takes one event if there is one: returns the CQ's address (the caller acks it), or 0
   * when none is pending. Never blocks (the fd is non-blocking).
   */
  takeEvent(): number {
    const rc = (armed && injectedHotErrno(HOT.GET_CQ_EVENT) && -1) ||
      verbs().ibv_get_cq_event(this.ptr, this.#eventCq, this.#eventContext);
    if (rc === 0) return this.#eventCqWords[0] + this.#eventCqWords[1] * 0x1_0000_0000;
    const code = errno();
    if (code === 11) return 0; // EAGAIN: nothing pending
    throw verbsError("ibv_get_cq_event", code, this.label);
  }

  /**
   * Waits up to `timeoutMs` for the fd to become readable, in `poll(2)` on Deno's blocking
   * pool (the event loop keeps running). Resolves true when readable.
   */
  async waitReadable(timeoutMs: number): Promise<boolean> {
    this.assertOpen();
    assert(!this.#waiting, "one wait at a time on a completion channel");
    this.#waiting = true;
    try {
      const slice = Math.max(0, Math.floor(Math.min(timeoutMs, waitSliceMsMax)));
      const rc = await libc.symbols.poll(this.#pollFdBytes, 1n, slice);
      return rc > 0;
    } finally {
      this.#waiting = false;
    }
  }

  /**
   * Waits up to `timeoutMs` on this thread in `poll(2)`: no thread hop, the CPU is free for
   * the kernel meanwhile, and the event loop is blocked for at most `timeoutMs`.
   */
  waitReadableSync(timeoutMs: number): boolean {
    this.assertOpen();
    return libc.symbols.poll_sync(this.#pollFdBytes, 1n, Math.floor(timeoutMs)) > 0;
  }

  /** Calls the destroy verb (see {@linkcode Resource.close}). */
  protected destroy(): void {
    if (this.#waiting) throw new ResourceError(`Cannot close ${this.label}: a wait is in progress`);
    callDestroy(
      "ibv_destroy_comp_channel",
      () => this.label,
      () => verbs().ibv_destroy_comp_channel(this.#ptr),
    );
  }
}

/** Options of {@linkcode CompletionQueue}. */
export interface CqOptions {
  /** Minimum number of entries (1..65536). */
  entries: number;
  /** Completions one `poll()` reads at most (1..256, default 32). */
  pollBatch?: number;
  /** Completion channel for event mode. */
  channel?: CompletionChannel;
}

/** A completion queue (`struct ibv_cq`). */
export class CompletionQueue extends Resource {
  readonly #ptr: CqPtr;
  readonly #wcView: DataView;
  readonly #poll: PreparedCall;
  readonly #notify: PreparedCall;
  readonly #context: Context;
  /** Entries requested. */
  readonly entries: number;
  /** Completion array length. */
  readonly pollBatch: number;
  /** The channel, in event mode. */
  readonly channel: CompletionChannel | undefined;
  /** Address of the CQ, as events report it. */
  readonly address: number;
  #unackedEvents = 0;
  /** For messages. */
  readonly label: string;

  /** `ibv_create_cq(3)` with a completion array of `pollBatch` entries. */
  constructor(context: Context, options: CqOptions) {
    const { entries, pollBatch = 32, channel } = options;
    if (!Number.isInteger(entries) || entries < 1 || entries > cqEntriesMax) {
      throw new RangeError(`CQ entries must be 1..${cqEntriesMax}, got ${entries}`);
    }
    if (!Number.isInteger(pollBatch) || pollBatch < 1 || pollBatch > pollBatchMax) {
      throw new RangeError(`pollBatch must be 1..${pollBatchMax}, got ${pollBatch}`);
    }
    const ptr = callPointer(
      "ibv_create_cq",
      () => `${entries} entries on ${context.name}`,
      () => verbs().ibv_create_cq(context.ptr, entries, null, channel?.ptr ?? null, 0),
    );
    super(channel ? [context, channel] : [context]);
    this.#context = context;
    this.entries = entries;
    this.pollBatch = pollBatch;
    this.channel = channel;
    this.label = `CQ(${entries}) on ${context.name}`;
    this.#ptr = brandPointer(ptr);
    this.address = addressOf(this.#ptr);
    const wcBuffer = new ArrayBuffer(pollBatch * ibvWc.size);
    this.#wcView = new DataView(wcBuffer);
    try {
      this.#poll = new PreparedCall(context.ops.pollCq, ["ptr", "i32", "ptr"]);
      this.#poll.setPointer(0, this.address);
      this.#poll.setI32(1, pollBatch);
      this.#poll.setPointer(2, addressOf(Deno.UnsafePointer.of(wcBuffer)));
      this.#notify = new PreparedCall(context.ops.reqNotifyCq, ["ptr", "i32"]);
      this.#notify.setPointer(0, this.address);
    } catch (error) {
      throw closeAfter(this, error); // the CQ exists: destroy it, or its context could never close
    }
  }

  /** The raw handle. */
  get ptr(): CqPtr {
    this.assertOpen();
    return this.#ptr;
  }

  /**
   * `ibv_poll_cq`: reads up to `pollBatch` completions into the completion array and
   * returns how many; read them with the accessors (index < count). Allocates nothing.
   * Throws a ResourceError once the CQ is closed.
   */
  poll(): number {
    this.assertOpen();
    const n = (armed && -injectedHotErrno(HOT.POLL_CQ)) || this.#poll.call();
    if (n < 0) throw verbsError("ibv_poll_cq", -n, this.label);
    return n;
  }

  /** `wr_id` of completion `i`. */
  wrId(i: number): number {
    return wc.wrId.get(this.#wcView, i * ibvWc.size);
  }
  /** `status` (`IBV_WC_*`) of completion `i`. */
  status(i: number): number {
    return wc.status.get(this.#wcView, i * ibvWc.size);
  }
  /** `opcode` (`IBV_WC_SEND`, `IBV_WC_RECV`, ...) of completion `i`. */
  opcode(i: number): number {
    return wc.opcode.get(this.#wcView, i * ibvWc.size);
  }
  /** `byte_len` of completion `i`. */
  byteLen(i: number): number {
    return wc.byteLen.get(this.#wcView, i * ibvWc.size);
  }
  /** `imm_data` of completion `i`, in host byte order. */
  immData(i: number): number {
    return byteSwap32(wc.immData.get(this.#wcView, i * ibvWc.size));
  }
  /** `qp_num` of completion `i`. */
  qpNum(i: number): number {
    return wc.qpNum.get(this.#wcView, i * ibvWc.size);
  }
  /** `wc_flags` of completion `i`. */
  wcFlags(i: number): number {
    return wc.wcFlags.get(this.#wcView, i * ibvWc.size);
  }
  /** `vendor_err` of completion `i`. */
  vendorErr(i: number): number {
    return wc.vendorErr.get(this.#wcView, i * ibvWc.size);
  }

  /** A {@linkcode CompletionError} for failed completion `i`. */
  completionError(i: number, context = ""): CompletionError {
    const status = this.status(i);
    return new CompletionError({
      status,
      statusText: statusText(status),
      vendorErr: this.vendorErr(i),
      wrId: this.wrId(i),
      qpNum: this.qpNum(i),
    }, context);
  }

  /** `ibv_req_notify_cq`: arms the CQ for one completion event. */
  requestNotify(solicitedOnly = false): void {
    this.assertOpen();
    this.#notify.setI32(1, solicitedOnly ? 1 : 0);
    const rc = (armed && injectedHotErrno(HOT.REQ_NOTIFY_CQ)) || this.#notify.call();
    if (rc !== 0) throw verbsError("ibv_req_notify_cq", rc > 0 ? rc : errno(), this.label);
  }

  /**
   * Like {@linkcode waitEvent}, blocking this thread in `poll(2)` for at most `timeoutMs`
   * (keep it short: the event loop waits too).
   */
  waitEventSync(timeoutMs: number): boolean {
    const channel = this.channel;
    if (!channel) throw new ResourceError(`${this.label} has no completion channel`);
    let cq = channel.takeEvent();
    if (cq === 0 && channel.waitReadableSync(timeoutMs)) cq = channel.takeEvent();
    if (cq === 0) return false;
    assert(cq === this.address, "completion event for another CQ on this channel");
    this.#unackedEvents++;
    this.#ackEvents();
    return true;
  }

  /**
   * Event mode: waits up to `timeoutMs` for a completion event on this CQ's channel and
   * acknowledges it. The caller re-arms ({@linkcode requestNotify}) and polls. Resolves
   * false on timeout.
   */
  async waitEvent(timeoutMs: number): Promise<boolean> {
    const channel = this.channel;
    if (!channel) throw new ResourceError(`${this.label} has no completion channel`);
    const deadline = performance.now() + timeoutMs;
    for (;;) {
      const cq = channel.takeEvent();
      if (cq !== 0) {
        assert(cq === this.address, "completion event for another CQ on this channel");
        this.#unackedEvents++;
        this.#ackEvents();
        return true;
      }
      const left = deadline - performance.now();
      if (left <= 0) return false;
      await channel.waitReadable(left);
    }
  }

  #ackEvents(): void {
    verbs().ibv_ack_cq_events(this.#ptr, this.#unackedEvents);
    this.#unackedEvents = 0;
  }

  /** The context this CQ belongs to. */
  get context(): Context {
    return this.#context;
  }

  /** Calls the destroy verb (see {@linkcode Resource.close}). */
  protected destroy(): void {
    callDestroy("ibv_destroy_cq", () => this.label, () => verbs().ibv_destroy_cq(this.#ptr));
  }
}

/** `ibv_wc_status_str(3)`. */
export function statusText(status: number): string {
  const ptr = verbs().ibv_wc_status_str(status);
  return ptr ? Deno.UnsafePointerView.getCString(ptr) : `status ${status}`;
}

/** True for `IBV_WC_SUCCESS`. */
export function succeeded(status: number): boolean {
  return status === IBV_WC_STATUS.IBV_WC_SUCCESS;
}

/** Swaps the bytes of a u32 (host ↔ network order for `imm_data`). */
export function byteSwap32(value: number): number {
  return (((value & 0xff) << 24) | ((value & 0xff00) << 8) | ((value >>> 8) & 0xff00) |
    (value >>> 24)) >>> 0;
}
