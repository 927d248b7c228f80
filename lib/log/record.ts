/**
 * The 64-byte log record (metadata portion) codec, byte for byte as in docs/protocol.md
 * ("Log record"). Encoding and decoding allocate nothing: decode reads into a caller-owned
 * {@linkcode LogRecord} and returns a typed {@linkcode RecordReason}; on refusal the caller's
 * object is left untouched. u64 fields are JS numbers; a value above
 * `Number.MAX_SAFE_INTEGER` is refused rather than rounded.
 *
 * @example
 * ```ts
 * import { decodeRecord, emptyRecord, encodeRecord, RecordReason, recordBytes } from "./record.ts";
 * const view = new DataView(new ArrayBuffer(recordBytes));
 * encodeRecord(view, 0, { ...emptyRecord(), seq: 1, dataLength: 4096 });
 * const out = emptyRecord();
 * if (decodeRecord(view, 0, out) !== RecordReason.OK) throw new Error("refused");
 * ```
 *
 * @module
 */

import { InvariantError } from "../assert.ts";
import { crc32cViewInt32 } from "./crc32c.ts";
import { blockBytes } from "../block.ts";

/** Size of a record on the wire, in bytes. */
export const recordBytes = 64;
/** `magic` field: bytes `R L O G` read as a little-endian u32. */
export const recordMagic = 0x474f4c52;
/** `version` field of this codec. */
export const recordVersion = 1;
/** Bytes covered by `recordCrc` (offsets 0..55, everything before it). */
export const recordCrcCoveredBytes = 56;
/** Alignment of `dataOffset` and `dataLength`, in bytes. */
export const dataAlignBytes: number = blockBytes;
/** Largest `dataLength` the protocol allows: 16 MiB. */
export const dataLengthMax = 16 * 1024 * 1024;

/** `flags` bits. */
export const RecordFlags = {
  /** A hole: the log failed, its ring space is accounted and released; no data. */
  SKIP: 1,
  /** A probe: seq 0, no data. */
  NOP: 2,
  /** Release: the replica may free the space of every log up to `seq`; no data. */
  RELEASE: 4,
} as const;

/** `lbaFlags` bits. */
export const LbaFlags = {
  /** Force unit access: the write must reach stable media before it completes. */
  FUA: 1,
} as const;

const knownFlags = RecordFlags.SKIP | RecordFlags.NOP | RecordFlags.RELEASE;
const knownLbaFlags = LbaFlags.FUA;
/** High 32 bits of Number.MAX_SAFE_INTEGER (2^53 - 1). */
const safeHighMax = 0x1f_ffff;

/** A decoded log record; magic, version and reserved fields are implied. */
export interface LogRecord {
  /** `RecordFlags` bits. */
  flags: number;
  /** Sequence number, ≥ 1 (0 for NOP). */
  seq: number;
  /** Offset of the data portion in the data ring, a multiple of 4096. */
  dataOffset: number;
  /** Length of the data portion: a multiple of 4096, 4096 to 16 MiB (0 for NOP). */
  dataLength: number;
  /** CRC32C of the data portion (0 for SKIP and NOP). */
  dataCrc: number;
  /** Logical block address of the first 4096-byte block. */
  lba: number;
  /** `LbaFlags` bits. */
  lbaFlags: number;
  /** Primary's monotonic clock when the log was built, in nanoseconds. */
  timestampNs: number;
}

/** Why {@linkcode decodeRecord} refused a record (`OK` when it did not). */
export const RecordReason = {
  OK: 0,
  TRUNCATED: 1,
  BAD_MAGIC: 2,
  BAD_VERSION: 3,
  BAD_RECORD_CRC: 4,
  RESERVED_NOT_ZERO: 5,
  UNKNOWN_FLAGS: 6,
  /** More than one of SKIP, NOP, RELEASE. */
  CONFLICTING_FLAGS: 7,
  UNKNOWN_LBA_FLAGS: 8,
  U64_TOO_LARGE: 9,
  OFFSET_NOT_ALIGNED: 10,
  NOP_NOT_EMPTY: 11,
  SEQ_ZERO: 12,
  LENGTH_ZERO: 13,
  LENGTH_NOT_ALIGNED: 14,
  LENGTH_TOO_LARGE: 15,
  DATA_CRC_NOT_ZERO: 16,
  /** A RELEASE with an offset, a length or a dataCrc. */
  RELEASE_NOT_EMPTY: 17,
} as const;

/** A {@linkcode RecordReason} code. */
export type RecordReason = typeof RecordReason[keyof typeof RecordReason];

const reasonNames: string[] = [];
for (const [name, code] of Object.entries(RecordReason)) reasonNames[code] = name;

/** Returns the name of a reason code (`"BAD_MAGIC"`), or `"UNKNOWN(n)"`. */
export function recordReasonName(code: number): string {
  return reasonNames[code] ?? `UNKNOWN(${code})`;
}

/** Decode limits; make them with {@linkcode recordLimits}. */
export interface RecordLimits {
  /** Largest `dataLength` accepted, a multiple of 4096 up to 16 MiB. */
  readonly maxDataLength: number;
}

/** The protocol's own limits. */
export const defaultRecordLimits: RecordLimits = Object.freeze({ maxDataLength: dataLengthMax });

/** Returns checked decode limits; RangeError saying what to pass otherwise. */
export function recordLimits(options: { maxDataLength?: number } = {}): RecordLimits {
  const maxDataLength = options.maxDataLength ?? dataLengthMax;
  if (
    !Number.isInteger(maxDataLength) || maxDataLength < dataAlignBytes ||
    maxDataLength > dataLengthMax || maxDataLength % dataAlignBytes !== 0
  ) {
    throw new RangeError(
      `Cannot limit record data to ${maxDataLength} bytes: pass a multiple of ${blockBytes} from ${blockBytes} ` +
        `to ${dataLengthMax} (16 MiB)`,
    );
  }
  return Object.freeze({ maxDataLength });
}

/** Returns a zeroed record to decode into or to fill before encoding. */
export function emptyRecord(): LogRecord {
  return {
    flags: 0,
    seq: 0,
    dataOffset: 0,
    dataLength: 0,
    dataCrc: 0,
    lba: 0,
    lbaFlags: 0,
    timestampNs: 0,
  };
}

/** Reads a little-endian u64 as a number, or -1 when it exceeds MAX_SAFE_INTEGER. */
export function readU64Safe(view: DataView, offset: number): number {
  const high = view.getUint32(offset + 4, true);
  if (high > safeHighMax) return -1;
  return high * 0x1_0000_0000 + view.getUint32(offset, true);
}

/** Writes a non-negative safe integer as a little-endian u64 without making a bigint. */
export function writeU64Safe(view: DataView, offset: number, value: number): void {
  if (!(Number.isSafeInteger(value) && value >= 0)) {
    throw new InvariantError(`u64 field must be a safe integer: ${value}`);
  }
  view.setUint32(offset, value >>> 0, true);
  view.setUint32(offset + 4, Math.floor(value / 0x1_0000_0000), true);
}

/** Recomputes and stores `recordCrc` over bytes 0..55 of the record at `offset`. */
export function sealRecord(view: DataView, offset: number): void {
  view.setInt32(offset + 56, crc32cViewInt32(view, offset, recordCrcCoveredBytes), true);
}

// The codecs below read every field into a local, check it inline and write 32-bit halves
// as int32 (`| 0`): a u64, a u32 at or above 2^31 or a timestamp passed to a helper V8 did
// not inline is a heap number, one allocation per field per log on the hot path.

/** Largest u64 field value a number carries exactly. */
const u64Max = Number.MAX_SAFE_INTEGER;

/**
 * Writes `record` as 64 bytes at `offset` of `view` and seals it with `recordCrc`.
 * Field values are written as given (a fault campaign may encode a record the replica must
 * refuse); only values that do not fit their field stop with an InvariantError.
 */
export function encodeRecord(view: DataView, offset: number, record: LogRecord): void {
  if (!(Number.isInteger(offset) && offset >= 0 && offset + recordBytes <= view.byteLength)) {
    throw new InvariantError(
      `record at offset ${offset} does not fit a ${view.byteLength}-byte view`,
    );
  }
  const flags = record.flags, dataLength = record.dataLength, dataCrc = record.dataCrc;
  const lbaFlags = record.lbaFlags, seq = record.seq, dataOffset = record.dataOffset;
  const lba = record.lba, timestampNs = record.timestampNs;
  if (!(flags >= 0 && flags <= 0xffff && Math.floor(flags) === flags)) badField("flags", flags);
  if (!(dataLength >= 0 && dataLength <= 0xffff_ffff && Math.floor(dataLength) === dataLength)) {
    badField("dataLength", dataLength);
  }
  if (!(dataCrc >= 0 && dataCrc <= 0xffff_ffff && Math.floor(dataCrc) === dataCrc)) {
    badField("dataCrc", dataCrc);
  }
  if (!(lbaFlags >= 0 && lbaFlags <= 0xffff_ffff && Math.floor(lbaFlags) === lbaFlags)) {
    badField("lbaFlags", lbaFlags);
  }
  if (!(seq >= 0 && seq <= u64Max && Math.floor(seq) === seq)) badField("seq", seq);
  if (!(dataOffset >= 0 && dataOffset <= u64Max && Math.floor(dataOffset) === dataOffset)) {
    badField("dataOffset", dataOffset);
  }
  if (!(lba >= 0 && lba <= u64Max && Math.floor(lba) === lba)) badField("lba", lba);
  if (!(timestampNs >= 0 && timestampNs <= u64Max && Math.floor(timestampNs) === timestampNs)) {
    badField("timestampNs", timestampNs);
  }
  view.setInt32(offset, recordMagic | 0, true);
  view.setUint16(offset + 4, recordVersion, true);
  view.setUint16(offset + 6, flags, true);
  view.setInt32(offset + 8, seq | 0, true);
  view.setInt32(offset + 12, (seq / twoTo32) | 0, true);
  view.setInt32(offset + 16, dataOffset | 0, true);
  view.setInt32(offset + 20, (dataOffset / twoTo32) | 0, true);
  view.setInt32(offset + 24, dataLength | 0, true);
  view.setInt32(offset + 28, dataCrc | 0, true);
  view.setInt32(offset + 32, lba | 0, true);
  view.setInt32(offset + 36, (lba / twoTo32) | 0, true);
  view.setInt32(offset + 40, lbaFlags | 0, true);
  view.setInt32(offset + 44, 0, true);
  view.setInt32(offset + 48, timestampNs | 0, true);
  view.setInt32(offset + 52, (timestampNs / twoTo32) | 0, true);
  view.setInt32(offset + 60, 0, true);
  sealRecord(view, offset);
}

const twoTo32 = 0x1_0000_0000;

function badField(field: string, value: number): never {
  throw new InvariantError(`${field} does not fit its record field: ${value}`);
}

/**
 * Checks the 64 bytes at `offset` of `view` in the order magic, version, recordCrc,
 * reserved, flags, u64 range, offset, NOP/length rules, and on success copies the fields
 * into `out`. Returns `RecordReason.OK` or the first refusal; never throws on any bytes.
 */
export function decodeRecord(
  view: DataView,
  offset: number,
  out: LogRecord,
  limits: RecordLimits = defaultRecordLimits,
): RecordReason {
  if (!Number.isInteger(offset) || offset < 0) {
    throw new InvariantError(`record offset must be ≥ 0: ${offset}`);
  }
  if (offset + recordBytes > view.byteLength) return RecordReason.TRUNCATED;
  if (view.getInt32(offset, true) !== (recordMagic | 0)) return RecordReason.BAD_MAGIC;
  if (view.getUint16(offset + 4, true) !== recordVersion) return RecordReason.BAD_VERSION;
  const crc = crc32cViewInt32(view, offset, recordCrcCoveredBytes);
  if (view.getInt32(offset + 56, true) !== crc) return RecordReason.BAD_RECORD_CRC;
  if (view.getInt32(offset + 44, true) !== 0 || view.getInt32(offset + 60, true) !== 0) {
    return RecordReason.RESERVED_NOT_ZERO;
  }
  const flags = view.getUint16(offset + 6, true);
  if ((flags & ~knownFlags) !== 0) return RecordReason.UNKNOWN_FLAGS;
  if ((flags & (flags - 1)) !== 0) return RecordReason.CONFLICTING_FLAGS;
  const lbaFlags = view.getInt32(offset + 40, true) >>> 0;
  if ((lbaFlags & ~knownLbaFlags) !== 0) return RecordReason.UNKNOWN_LBA_FLAGS;
  // u64 halves read as int32 and made unsigned here; a high half above safeHighMax is out.
  const seqHigh = view.getInt32(offset + 12, true) >>> 0;
  const offsetHigh = view.getInt32(offset + 20, true) >>> 0;
  const lbaHigh = view.getInt32(offset + 36, true) >>> 0;
  const timeHigh = view.getInt32(offset + 52, true) >>> 0;
  if (
    seqHigh > safeHighMax || offsetHigh > safeHighMax || lbaHigh > safeHighMax ||
    timeHigh > safeHighMax
  ) return RecordReason.U64_TOO_LARGE;
  const seq = seqHigh * twoTo32 + (view.getInt32(offset + 8, true) >>> 0);
  const dataOffset = offsetHigh * twoTo32 + (view.getInt32(offset + 16, true) >>> 0);
  const lba = lbaHigh * twoTo32 + (view.getInt32(offset + 32, true) >>> 0);
  const timestampNs = timeHigh * twoTo32 + (view.getInt32(offset + 48, true) >>> 0);
  if (dataOffset % dataAlignBytes !== 0) return RecordReason.OFFSET_NOT_ALIGNED;
  const dataLength = view.getInt32(offset + 24, true) >>> 0;
  const dataCrc = view.getInt32(offset + 28, true) >>> 0;
  if (flags === RecordFlags.NOP) {
    if (seq !== 0 || dataLength !== 0) return RecordReason.NOP_NOT_EMPTY;
    if (dataCrc !== 0) return RecordReason.DATA_CRC_NOT_ZERO;
  } else if (flags === RecordFlags.RELEASE) {
    if (dataOffset !== 0 || dataLength !== 0 || dataCrc !== 0) {
      return RecordReason.RELEASE_NOT_EMPTY;
    }
  } else {
    if (seq === 0) return RecordReason.SEQ_ZERO;
    if (dataLength === 0) return RecordReason.LENGTH_ZERO;
    if (dataLength % dataAlignBytes !== 0) return RecordReason.LENGTH_NOT_ALIGNED;
    if (dataLength > Math.min(limits.maxDataLength, dataLengthMax)) {
      return RecordReason.LENGTH_TOO_LARGE;
    }
    if (flags === RecordFlags.SKIP && dataCrc !== 0) return RecordReason.DATA_CRC_NOT_ZERO;
  }
  out.flags = flags;
  out.seq = seq;
  out.dataOffset = dataOffset;
  out.dataLength = dataLength;
  out.dataCrc = dataCrc;
  out.lba = lba;
  out.lbaFlags = lbaFlags;
  out.timestampNs = timestampNs;
  return RecordReason.OK;
}

/** Result of {@linkcode parseRecord}. */
export type ParsedRecord =
  | { ok: true; record: LogRecord }
  | { ok: false; reason: RecordReason };

/** Decodes the first 64 bytes of `bytes` into a new record (allocates; for tests/fuzzers). */
export function parseRecord(bytes: Uint8Array, limits?: RecordLimits): ParsedRecord {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const record = emptyRecord();
  const reason = decodeRecord(view, 0, record, limits);
  return reason === RecordReason.OK ? { ok: true, record } : { ok: false, reason };
}
