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
import { byteSwap32 } from "./cq.ts";

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
  wrId: ibvSendWr.field("wr_id"),
  next: ibvSendWr.field("next"),
  sgList: ibvSendWr.field("sg_list"),
  numSge: ibvSendWr.field("num_sge"),
  opcode: ibvSendWr.field("opcode"),
  flags: ibvSendWr.field("send_flags"),
  imm: ibvSendWr.field("imm_data"),
  remoteAddr: ibvSendWr.field("wr.rdma.remote_addr"),
  rkey: ibvSendWr.field("wr.rdma.rkey"),
};
const recv = {
  wrId: ibvRecvWr.field("wr_id"),
  next: ibvRecvWr.field("next"),
  sgList: ibvRecvWr.field("sg_list"),
  numSge: ibvRecvWr.field("num_sge"),
};
const sge = {
  addr: ibvSge.field("addr"),
  length: ibvSge.field("length"),
  lkey: ibvSge.field("lkey"),
};

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

  protected next(): number {
    if (this.length >= this.capacity) {
      throw new InvariantError(`work-request chain full (${this.capacity}): post it first`);
    }
    const index = this.length++;
    const offset = index * this.wrBytes;
    // Link the previous slot to this one; this one ends the chain until another is added.
    if (index > 0) this.nextField().set(this.view, offset - this.wrBytes, this.base + offset);
    this.nextField().set(this.view, offset, 0);
    return index;
  }

  protected writeSge(index: number, addr: number, length: number, lkey: number): number {
    const offset = this.sgeBase + index * ibvSge.size;
    sge.addr.set(this.view, offset, addr);
    sge.length.set(this.view, offset, length);
    sge.lkey.set(this.view, offset, lkey);
    return this.base + offset;
  }

  protected abstract nextField(): typeof send.next;
}

/** A chain of send work requests (WRITE, WRITE_WITH_IMM, READ, SEND, SEND_WITH_IMM). */
export class SendChain extends Chain {
  /** `capacity` slots. */
  constructor(capacity: number) {
    super(capacity, ibvSendWr.size);
  }

  /** Appends one work request copied from `d`; returns its index in the chain. */
  add(d: SendDescriptor): number {
    const index = this.next();
    const offset = index * this.wrBytes;
    send.wrId.set(this.view, offset, d.wrId);
    send.opcode.set(this.view, offset, d.opcode);
    send.flags.set(this.view, offset, d.flags);
    send.imm.set(this.view, offset, byteSwap32(d.imm));
    send.remoteAddr.set(this.view, offset, d.remoteAddr);
    send.rkey.set(this.view, offset, d.rkey);
    if (d.length > 0) {
      send.sgList.set(this.view, offset, this.writeSge(index, d.addr, d.length, d.lkey));
      send.numSge.set(this.view, offset, 1);
    } else {
      send.sgList.set(this.view, offset, 0);
      send.numSge.set(this.view, offset, 0);
    }
    return index;
  }

  protected nextField(): typeof send.next {
    return send.next;
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
    const index = this.next();
    const offset = index * this.wrBytes;
    recv.wrId.set(this.view, offset, d.wrId);
    recv.sgList.set(this.view, offset, this.writeSge(index, d.addr, d.length, d.lkey));
    recv.numSge.set(this.view, offset, 1);
    return index;
  }

  protected nextField(): typeof send.next {
    return recv.next;
  }
}
