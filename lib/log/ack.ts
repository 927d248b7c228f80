/**
 * The 32-byte ack codec, byte for byte as in docs/protocol.md ("Ack"). Like the record
 * codec it allocates nothing: decode reads into a caller-owned {@linkcode Ack} and returns a
 * typed {@linkcode AckReason}, leaving the caller's object untouched on refusal.
 *
 * @example
 * ```ts
 * import { AckReason, AckStatus, ackBytes, decodeAck, emptyAck, encodeAck } from "./ack.ts";
 * const view = new DataView(new ArrayBuffer(ackBytes));
 * encodeAck(view, 0, { status: AckStatus.OK, seq: 1, nextSeq: 2, released: 4096 });
 * const out = emptyAck();
 * if (decodeAck(view, 0, out) !== AckReason.OK) throw new Error("refused");
 * ```
 *
 * @module
 */

import { InvariantError } from "../assert.ts";

const twoTo32 = 0x1_0000_0000;
/** Largest u64 value a number carries exactly, and the high half of it. */
const u64Max = Number.MAX_SAFE_INTEGER;
const safeHighMax = 0x1f_ffff;

function badU64(field: string, value: number): never {
  throw new InvariantError(`ack ${field} must be a safe integer ≥ 0: ${value}`);
}

/** Size of an ack on the wire, in bytes. */
export const ackBytes = 32;
/** `magic` field: bytes `R A C K` read as a little-endian u32. */
export const ackMagic = 0x4b434152;
/** `version` field of this codec. */
export const ackVersion = 1;

/** The replica's answer to one record (docs/protocol.md, ack status table). */
export const AckStatus = {
  /** Checked and durable; covers every earlier seq (cumulative). */
  OK: 0,
  /** The bytes in the replica's ring do not match `dataCrc`. */
  CRC_MISMATCH: 1,
  /** Offset/length outside the ring or not where the placement rule puts it. */
  OUT_OF_BOUNDS: 2,
  /** seq is beyond `nextSeq`. */
  SEQ_GAP: 3,
  /** seq is below `nextSeq`. */
  SEQ_DUPLICATE: 4,
  /** The record did not decode. */
  BAD_RECORD: 5,
  /** The replica could not make the log durable. */
  PERSIST_FAILED: 6,
  /** The log's end is beyond `released + ringBytes`. */
  NO_CREDIT: 7,
  /** A RELEASE beyond the last accepted seq. */
  BAD_RELEASE: 8,
} as const;

/** An {@linkcode AckStatus} code. */
export type AckStatus = typeof AckStatus[keyof typeof AckStatus];

const statusNames: string[] = [];
for (const [name, code] of Object.entries(AckStatus)) statusNames[code] = name;
const statusMax = statusNames.length - 1;

/** Returns the name of a status code (`"SEQ_GAP"`), or `"UNKNOWN(n)"`. */
export function ackStatusName(code: number): string {
  return statusNames[code] ?? `UNKNOWN(${code})`;
}

/** Why {@linkcode decodeAck} refused an ack (`OK` when it did not). */
export const AckReason = {
  OK: 0,
  TRUNCATED: 1,
  BAD_MAGIC: 2,
  BAD_VERSION: 3,
  UNKNOWN_STATUS: 4,
  U64_TOO_LARGE: 5,
} as const;

/** An {@linkcode AckReason} code. */
export type AckReason = typeof AckReason[keyof typeof AckReason];

const reasonNames: string[] = [];
for (const [name, code] of Object.entries(AckReason)) reasonNames[code] = name;

/** Returns the name of a reason code (`"BAD_MAGIC"`), or `"UNKNOWN(n)"`. */
export function ackReasonName(code: number): string {
  return reasonNames[code] ?? `UNKNOWN(${code})`;
}

/** A decoded ack; magic and version are implied. */
export interface Ack {
  /** An {@linkcode AckStatus} code. */
  status: number;
  /** The record's seq (0 when the record could not be decoded). */
  seq: number;
  /** The replica's next expected seq after handling the record. */
  nextSeq: number;
  /** The replica's released ring position (credits). */
  released: number;
}

/** Returns a zeroed ack to decode into or to fill before encoding. */
export function emptyAck(): Ack {
  return { status: 0, seq: 0, nextSeq: 0, released: 0 };
}

/**
 * Writes `ack` as 32 bytes at `offset` of `view`. Values are written as given; only values
 * that do not fit their field stop with an InvariantError.
 */
export function encodeAck(view: DataView, offset: number, ack: Ack): void {
  if (!(Number.isInteger(offset) && offset >= 0 && offset + ackBytes <= view.byteLength)) {
    throw new InvariantError(`ack at offset ${offset} does not fit a ${view.byteLength}-byte view`);
  }
  if (!(Number.isInteger(ack.status) && ack.status >= 0 && ack.status <= 0xffff)) {
    throw new InvariantError(`ack status must be a u16: ${ack.status}`);
  }
  // Inline checks and int32 halves: no number boxed per ack in any tier (see record.ts).
  const seq = ack.seq, nextSeq = ack.nextSeq, released = ack.released;
  if (!(seq >= 0 && seq <= u64Max && Math.floor(seq) === seq)) badU64("seq", seq);
  if (!(nextSeq >= 0 && nextSeq <= u64Max && Math.floor(nextSeq) === nextSeq)) {
    badU64("nextSeq", nextSeq);
  }
  if (!(released >= 0 && released <= u64Max && Math.floor(released) === released)) {
    badU64("released", released);
  }
  view.setInt32(offset, ackMagic | 0, true);
  view.setUint16(offset + 4, ackVersion, true);
  view.setUint16(offset + 6, ack.status, true);
  view.setInt32(offset + 8, seq | 0, true);
  view.setInt32(offset + 12, (seq / twoTo32) | 0, true);
  view.setInt32(offset + 16, nextSeq | 0, true);
  view.setInt32(offset + 20, (nextSeq / twoTo32) | 0, true);
  view.setInt32(offset + 24, released | 0, true);
  view.setInt32(offset + 28, (released / twoTo32) | 0, true);
}

/**
 * Checks the 32 bytes at `offset` of `view` (magic, version, known status, u64 range) and
 * on success copies the fields into `out`. Returns `AckReason.OK` or the first refusal;
 * never throws on any bytes. Whether the ack makes sense (seq vs nextSeq) is the
 * primary's call, not the codec's.
 */
export function decodeAck(view: DataView, offset: number, out: Ack): AckReason {
  if (!Number.isInteger(offset) || offset < 0) {
    throw new InvariantError(`ack offset must be ≥ 0: ${offset}`);
  }
  if (offset + ackBytes > view.byteLength) return AckReason.TRUNCATED;
  if (view.getInt32(offset, true) !== (ackMagic | 0)) return AckReason.BAD_MAGIC;
  if (view.getUint16(offset + 4, true) !== ackVersion) return AckReason.BAD_VERSION;
  const status = view.getUint16(offset + 6, true);
  if (status > statusMax) return AckReason.UNKNOWN_STATUS;
  const seqHigh = view.getInt32(offset + 12, true) >>> 0;
  const nextHigh = view.getInt32(offset + 20, true) >>> 0;
  const releasedHigh = view.getInt32(offset + 28, true) >>> 0;
  if (seqHigh > safeHighMax || nextHigh > safeHighMax || releasedHigh > safeHighMax) {
    return AckReason.U64_TOO_LARGE;
  }
  const seq = seqHigh * twoTo32 + (view.getInt32(offset + 8, true) >>> 0);
  const nextSeq = nextHigh * twoTo32 + (view.getInt32(offset + 16, true) >>> 0);
  const released = releasedHigh * twoTo32 + (view.getInt32(offset + 24, true) >>> 0);
  out.status = status;
  out.seq = seq;
  out.nextSeq = nextSeq;
  out.released = released;
  return AckReason.OK;
}

/** Result of {@linkcode parseAck}. */
export type ParsedAck = { ok: true; ack: Ack } | { ok: false; reason: AckReason };

/** Decodes the first 32 bytes of `bytes` into a new ack (allocates; for tests/fuzzers). */
export function parseAck(bytes: Uint8Array): ParsedAck {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const ack = emptyAck();
  const reason = decodeAck(view, 0, ack);
  return reason === AckReason.OK ? { ok: true, ack } : { ok: false, reason };
}
