/**
 * Preallocated work-request chains: `ibv_send_wr`/`ibv_recv_wr` slots with one SGE each,
 * filled from a caller-owned descriptor and posted as one chain. Nothing is allocated
 * per work request.
 *
 * @module
 */
import { ibvRecvWr, ibvSendWr, ibvSge } from "../../ffi/verbs_types.ts";
import { InvariantError } from "../assert.ts";
import { addressOf } from "./handles.ts";

/** Largest chain one post carries. */
export const chainLengthMax = 1024;

/**
 * One send work request, reused by the caller: set the fields, then
 * {@linkcode SendChain.add}. `opcode` is an `IBV_WR_*`, `flags` `IBV_SEND_*`.
 */
export interface SendDescriptor {
  wrId: number;
  opcode: number;
  flags: number;
  /** Local address (registered, or any memory for an inline send). */
  addr: number;
  /** Bytes; 0 posts no SGE. */
  length: number;
  lkey: number;
  /** Remote address for RDMA WRITE/READ. */
  remoteAddr: number;
  /** Remote key for RDMA WRITE/READ. */
  rkey: number;
  /** Immediate data (host byte order) for `*_WITH_IMM`. */
  imm: number;
}

/** One receive work request, reused by the caller. */
export interface RecvDescriptor {
  wrId: number;
  addr: number;
  length: number;
  lkey: number;
}

/** A fresh descriptor with every field 0. */
export function sendDescriptor(): SendDescriptor {
  return {
    wrId: 0,
    opcode: 0,
    flags: 0,
    addr: 0,
    length: 0,
    lkey: 0,
    remoteAddr: 0,
    rkey: 0,
    imm: 0,
  };
}

/** A fresh receive descriptor with every field 0. */
export function recvDescriptor(): RecvDescriptor {
  return { wrId: 0, addr: 0, length: 0, lkey: 0 };
}

const send = {
  wrId: ibvSendWr.field("wr_id").offset,
  next: ibvSendWr.field("next").offset,
  sgList: ibvSendWr.field("sg_list").offset,
  numSge: ibvSendWr.field("num_sge").offset,
  opcode: ibvSendWr.field("opcode").offset,
  flags: ibvSendWr.field("send_flags").offset,
  imm: ibvSendWr.field("imm_data").offset,
  remoteAddr: ibvSendWr.field("wr.rdma.remote_addr").offset,
  rkey: ibvSendWr.field("wr.rdma.rkey").offset,
};
const recv = {
  wrId: ibvRecvWr.field("wr_id").offset,
  next: ibvRecvWr.field("next").offset,
  sgList: ibvRecvWr.field("sg_list").offset,
  numSge: ibvRecvWr.field("num_sge").offset,
};
const sge = {
  addr: ibvSge.field("addr").offset,
  length: ibvSge.field("length").offset,
  lkey: ibvSge.field("lkey").offset,
};
const twoTo32 = 2 ** 32;

// The 64-bit fields are written inline, as two 32-bit halves, in the methods below rather
// than through a helper: a double (every address is one) passed to a function V8 did not
// inline is boxed, which would be an allocation per work request.

function isU64(x: number): boolean {
  return Number.isSafeInteger(x) && x >= 0;
}

function isU32(x: number): boolean {
  return x >>> 0 === x;
}

function badSend(d: SendDescriptor): never {
  const bad = (["wrId", "addr", "remoteAddr"] as const).find((k) => !isU64(d[k])) ??
    (["opcode", "flags", "length", "lkey", "rkey", "imm"] as const).find((k) => !isU32(d[k]));
  throw new InvariantError(`Send work request field ${bad} is out of range: ${bad && d[bad]}`);
}

function badRecv(d: RecvDescriptor): never {
  const bad = (["wrId", "addr"] as const).find((k) => !isU64(d[k])) ??
    (["length", "lkey"] as const).find((k) => !isU32(d[k]));
  throw new InvariantError(`Receive work request field ${bad} is out of range: ${bad && d[bad]}`);
}

/** Slots for up to `capacity` chained work requests of one kind, in one ArrayBuffer. */
abstract class Chain {
  protected readonly view: DataView;
  protected readonly base: number;
  protected readonly sgeBase: number;
  /** Work requests in the chain now. */
  length = 0;
  /** Slots available. */
  readonly capacity: number;

  protected constructor(capacity: number, readonly wrBytes: number) {
    if (!Number.isInteger(capacity) || capacity < 1 || capacity > chainLengthMax) {
      throw new RangeError(`A work-request chain holds 1..${chainLengthMax}, got ${capacity}`);
    }
    this.capacity = capacity;
    const buffer = new ArrayBuffer(capacity * (wrBytes + ibvSge.size));
    this.view = new DataView(buffer);
    this.base = addressOf(Deno.UnsafePointer.of(buffer));
    this.sgeBase = capacity * wrBytes;
  }

  /** Address of the first work request: the chain's head for the post. */
  get headAddress(): number {
    return this.base;
  }

  /** Index of the work request at `address` (from `bad_wr`), or -1. */
  indexOf(address: number): number {
    const offset = address - this.base;
    return offset >= 0 && offset < this.length * this.wrBytes && offset % this.wrBytes === 0
      ? offset / this.wrBytes
      : -1;
  }

  /** Empties the chain. */
  clear(): void {
    this.length = 0;
  }

  /** Takes the next free slot; links the previous one to it when `nextOffset` >= 0. */
  protected take(nextOffset: number): number {
    if (this.length >= this.capacity) {
      throw new InvariantError(`work-request chain full (${this.capacity}): post it first`);
    }
    const index = this.length++;
    const v = this.view;
    const offset = index * this.wrBytes;
    const here = this.base + offset;
    if (index > 0) {
      const prev = offset - this.wrBytes + nextOffset;
      v.setUint32(prev, here >>> 0, true);
      v.setUint32(prev + 4, (here / twoTo32) >>> 0, true);
    }
    v.setUint32(offset + nextOffset, 0, true);
    v.setUint32(offset + nextOffset + 4, 0, true);
    return index;
  }
}

/** A chain of send work requests (WRITE, WRITE_WITH_IMM, READ, SEND, SEND_WITH_IMM). */
export class SendChain extends Chain {
  /** `capacity` slots. */
  constructor(capacity: number) {
    super(capacity, ibvSendWr.size);
  }

  /** Appends one work request copied from `d`; returns its index in the chain. */
  add(d: SendDescriptor): number {
    if (
      !isU64(d.wrId) || !isU64(d.addr) || !isU64(d.remoteAddr) || !isU32(d.opcode) ||
      !isU32(d.flags) || !isU32(d.length) || !isU32(d.lkey) || !isU32(d.rkey) || !isU32(d.imm)
    ) badSend(d);
    const index = this.take(send.next);
    const v = this.view;
    const o = index * this.wrBytes;
    v.setUint32(o + send.wrId, d.wrId >>> 0, true);
    v.setUint32(o + send.wrId + 4, (d.wrId / twoTo32) >>> 0, true);
    v.setUint32(o + send.opcode, d.opcode, true);
    v.setUint32(o + send.flags, d.flags, true);
    v.setUint32(o + send.imm, d.imm, false); // imm_data is big-endian on the wire
    v.setUint32(o + send.remoteAddr, d.remoteAddr >>> 0, true);
    v.setUint32(o + send.remoteAddr + 4, (d.remoteAddr / twoTo32) >>> 0, true);
    v.setUint32(o + send.rkey, d.rkey, true);
    if (d.length > 0) {
      const s = this.sgeBase + index * ibvSge.size;
      const sgeAddress = this.base + s;
      v.setUint32(s + sge.addr, d.addr >>> 0, true);
      v.setUint32(s + sge.addr + 4, (d.addr / twoTo32) >>> 0, true);
      v.setUint32(s + sge.length, d.length, true);
      v.setUint32(s + sge.lkey, d.lkey, true);
      v.setUint32(o + send.sgList, sgeAddress >>> 0, true);
      v.setUint32(o + send.sgList + 4, (sgeAddress / twoTo32) >>> 0, true);
      v.setInt32(o + send.numSge, 1, true);
    } else {
      v.setUint32(o + send.sgList, 0, true);
      v.setUint32(o + send.sgList + 4, 0, true);
      v.setInt32(o + send.numSge, 0, true);
    }
    return index;
  }
}

/** A chain of receive work requests. */
export class RecvChain extends Chain {
  /** `capacity` slots. */
  constructor(capacity: number) {
    super(capacity, ibvRecvWr.size);
  }

  /** Appends one receive copied from `d`; returns its index in the chain. */
  add(d: RecvDescriptor): number {
    if (!isU64(d.wrId) || !isU64(d.addr) || !isU32(d.length) || !isU32(d.lkey)) badRecv(d);
    const index = this.take(recv.next);
    const v = this.view;
    const o = index * this.wrBytes;
    const s = this.sgeBase + index * ibvSge.size;
    const sgeAddress = this.base + s;
    v.setUint32(o + recv.wrId, d.wrId >>> 0, true);
    v.setUint32(o + recv.wrId + 4, (d.wrId / twoTo32) >>> 0, true);
    v.setUint32(s + sge.addr, d.addr >>> 0, true);
    v.setUint32(s + sge.addr + 4, (d.addr / twoTo32) >>> 0, true);
    v.setUint32(s + sge.length, d.length, true);
    v.setUint32(s + sge.lkey, d.lkey, true);
    v.setUint32(o + recv.sgList, sgeAddress >>> 0, true);
    v.setUint32(o + recv.sgList + 4, (sgeAddress / twoTo32) >>> 0, true);
    v.setInt32(o + recv.numSge, 1, true);
    return index;
  }
}
