/**
 * Preallocated work-request chains: `ibv_send_wr`/`ibv_recv_wr` slots with one SGE each,
 * filled from a caller-owned descriptor and posted as one chain. Nothing is allocated
 * per work request.
 *
 * @module
 */
import type { Layout } from "../../ffi/layout.ts";
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
  /** Caller's id, returned in the completion (`wr_id`). */
  wrId: number;
  /** `IBV_WR_*`. */
  opcode: number;
  /** `IBV_SEND_*`. */
  flags: number;
  /** Local address (registered, or any memory for an inline send). */
  addr: number;
  /** Bytes; 0 posts no SGE. */
  length: number;
  /** Local key of the MR holding `addr`. */
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
  /** Caller's id, returned in the completion (`wr_id`). */
  wrId: number;
  /** Local address the received bytes go to (registered). */
  addr: number;
  /** Bytes the buffer holds; 0 posts no SGE. */
  length: number;
  /** Local key of the MR holding `addr`. */
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

/** Index of a field's first 32-bit word (every field is 4-byte aligned). */
function word<P extends string>(layout: Layout<P>, name: P): number {
  const offset = layout.offsetOf(name);
  if (offset % 4 !== 0) throw new InvariantError(`${name} is not 4-byte aligned (${offset})`);
  return offset / 4;
}
// Word indexes as plain module constants (context slots), not properties of an object:
// a property load is a feedback site V8 deoptimized this hot method on ("insufficient type
// feedback for generic named access"), leaving it in the baseline tier for whole laps.
const sendWrId = word(ibvSendWr, "wr_id");
const sendNext = word(ibvSendWr, "next");
const sendSgList = word(ibvSendWr, "sg_list");
const sendNumSge = word(ibvSendWr, "num_sge");
const sendOpcode = word(ibvSendWr, "opcode");
const sendFlags = word(ibvSendWr, "send_flags");
const sendImm = word(ibvSendWr, "imm_data");
const sendRemoteAddr = word(ibvSendWr, "wr.rdma.remote_addr");
const sendRkey = word(ibvSendWr, "wr.rdma.rkey");
const recvWrId = word(ibvRecvWr, "wr_id");
const recvNext = word(ibvRecvWr, "next");
const recvSgList = word(ibvRecvWr, "sg_list");
const recvNumSge = word(ibvRecvWr, "num_sge");
const sgeAddr = word(ibvSge, "addr");
const sgeLength = word(ibvSge, "length");
const sgeLkey = word(ibvSge, "lkey");
const sgeWords = ibvSge.size / 4;
const twoTo32 = 2 ** 32;
const u64Max = Number.MAX_SAFE_INTEGER;
// The slots are written as 32-bit words through an Int32Array (x86-64 and aarch64 are
// little-endian; checked below): a store of `x | 0` to an Int32Array stays an untagged
// int32 in every tier of V8, where a DataView call with a value >= 2^31 or a double passed
// to a helper V8 did not inline is a boxed heap number, an allocation per work request.
// The checks are inline operators for the same reason (no Math.floor call).
if (new Uint8Array(new Uint32Array([1]).buffer)[0] !== 1) {
  throw new Error("work-request chains are written little-endian: this host is big-endian");
}

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
export abstract class Chain {
  /** The slots as 32-bit words (work requests first, then one SGE per slot). */
  protected readonly words: Int32Array;
  /** Address of the slots' buffer. */
  protected readonly base: number;
  /** Word index of slot 0's SGE. */
  protected readonly sgeWord: number;
  /** Words per work request. */
  protected readonly wrWords: number;
  /** Word index of `next` in a work request. */
  readonly #nextWord: number;
  /** Low and high words of each slot's own address (what the previous slot links to). */
  readonly #self: Int32Array;
  /** Work requests in the chain now. */
  length = 0;
  /** Slots available. */
  readonly capacity: number;

  /**
   * Allocates `capacity` slots of `wrBytes` each (a work request whose `next` pointer is at
   * `nextOffset`) followed by one SGE per slot.
   */
  protected constructor(capacity: number, readonly wrBytes: number, nextOffset: number) {
    if (!Number.isInteger(capacity) || capacity < 1 || capacity > chainLengthMax) {
      throw new RangeError(`A work-request chain holds 1..${chainLengthMax}, got ${capacity}`);
    }
    if (wrBytes % 8 !== 0 || nextOffset % 8 !== 0 || ibvSge.size % 8 !== 0) {
      throw new InvariantError(`work-request layout is not 8-byte aligned (${wrBytes})`);
    }
    this.capacity = capacity;
    const buffer = new ArrayBuffer(capacity * (wrBytes + ibvSge.size));
    this.words = new Int32Array(buffer);
    this.base = addressOf(Deno.UnsafePointer.of(buffer));
    this.wrWords = wrBytes / 4;
    this.sgeWord = (capacity * wrBytes) / 4;
    this.#nextWord = nextOffset / 4;
    this.#self = new Int32Array(2 * capacity);
    for (let i = 0; i < capacity; i++) {
      const address = this.base + i * wrBytes;
      this.#self[2 * i] = address | 0;
      this.#self[2 * i + 1] = (address / twoTo32) | 0;
    }
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

  /** Takes the next free slot and links the previous one to it; returns its first word. */
  protected take(): number {
    if (this.length >= this.capacity) {
      throw new InvariantError(`work-request chain full (${this.capacity}): post it first`);
    }
    const index = this.length++;
    const w = this.words;
    const o = index * this.wrWords;
    if (index > 0) {
      const prev = o - this.wrWords + this.#nextWord;
      w[prev] = this.#self[2 * index];
      w[prev + 1] = this.#self[2 * index + 1];
    }
    w[o + this.#nextWord] = 0;
    w[o + this.#nextWord + 1] = 0;
    return o;
  }

  /**
   * Writes slot `index`'s SGE and points `sgListWord` at it. The address comes as two int32
   * halves (a double argument would be boxed where V8 does not inline this call).
   */
  protected setSge(
    index: number,
    o: number,
    sgListWord: number,
    addrLow: number,
    addrHigh: number,
    length: number,
    lkey: number,
  ): void {
    const w = this.words;
    const s = this.sgeWord + index * sgeWords;
    const sgeAddress = this.base + s * 4;
    w[s + sgeAddr] = addrLow;
    w[s + sgeAddr + 1] = addrHigh;
    w[s + sgeLength] = length | 0;
    w[s + sgeLkey] = lkey | 0;
    w[o + sgListWord] = sgeAddress | 0;
    w[o + sgListWord + 1] = (sgeAddress / twoTo32) | 0;
  }
}

/** A chain of send work requests (WRITE, WRITE_WITH_IMM, READ, SEND, SEND_WITH_IMM). */
export class SendChain extends Chain {
  /** `capacity` slots. */
  constructor(capacity: number) {
    super(capacity, ibvSendWr.size, sendNext * 4);
  }

  /** Appends one work request copied from `d`; returns its index in the chain. */
  add(d: SendDescriptor): number {
    const wrId = d.wrId, addr = d.addr, remoteAddr = d.remoteAddr;
    const opcode = d.opcode, flags = d.flags, length = d.length, lkey = d.lkey, rkey = d.rkey;
    const imm = d.imm;
    if (
      !(wrId >= 0 && wrId <= u64Max && wrId % 1 === 0) ||
      !(addr >= 0 && addr <= u64Max && addr % 1 === 0) ||
      !(remoteAddr >= 0 && remoteAddr <= u64Max && remoteAddr % 1 === 0) ||
      (opcode >>> 0) !== opcode ||
      (flags >>> 0) !== flags ||
      (length >>> 0) !== length ||
      (lkey >>> 0) !== lkey ||
      (rkey >>> 0) !== rkey ||
      (imm >>> 0) !== imm
    ) badSend(d);
    const index = this.length;
    const o = this.take();
    const w = this.words;
    w[o + sendWrId] = wrId | 0;
    w[o + sendWrId + 1] = (wrId / twoTo32) | 0;
    w[o + sendOpcode] = opcode | 0;
    w[o + sendFlags] = flags | 0;
    // imm_data is big-endian on the wire: store the byte-swapped word.
    w[o + sendImm] = ((imm & 0xff) << 24) | ((imm & 0xff00) << 8) | ((imm >>> 8) & 0xff00) |
      (imm >>> 24);
    w[o + sendRemoteAddr] = remoteAddr | 0;
    w[o + sendRemoteAddr + 1] = (remoteAddr / twoTo32) | 0;
    w[o + sendRkey] = rkey | 0;
    if (length > 0) {
      this.setSge(index, o, sendSgList, addr | 0, (addr / twoTo32) | 0, length, lkey);
      w[o + sendNumSge] = 1;
    } else {
      w[o + sendSgList] = 0;
      w[o + sendSgList + 1] = 0;
      w[o + sendNumSge] = 0;
    }
    return index;
  }
}

/** A chain of receive work requests. */
export class RecvChain extends Chain {
  /** `capacity` slots. */
  constructor(capacity: number) {
    super(capacity, ibvRecvWr.size, recvNext * 4);
  }

  /** Appends one receive copied from `d`; returns its index in the chain. */
  add(d: RecvDescriptor): number {
    const wrId = d.wrId, addr = d.addr, length = d.length, lkey = d.lkey;
    if (
      !(wrId >= 0 && wrId <= u64Max && wrId % 1 === 0) ||
      !(addr >= 0 && addr <= u64Max && addr % 1 === 0) ||
      (length >>> 0) !== length ||
      (lkey >>> 0) !== lkey
    ) badRecv(d);
    const index = this.length;
    const o = this.take();
    const w = this.words;
    w[o + recvWrId] = wrId | 0;
    w[o + recvWrId + 1] = (wrId / twoTo32) | 0;
    this.setSge(index, o, recvSgList, addr | 0, (addr / twoTo32) | 0, length, lkey);
    w[o + recvNumSge] = 1;
    return index;
  }
}
