/**
 * The write cache's on-file layout and its header codec (docs/protocol.md, "Persistence
 * points"). One file, mapped whole: a 4096-byte header page, the metadata ring
 * (`metaSlots` × 64 bytes, rounded up to 4096) and the data ring (`dataBytes`), which
 * starts page-aligned so it can be registered as a memory region with zero copies.
 *
 * The header page holds two 128-byte copies of the header, at 0 and 2048 (different
 * 512-byte sectors). Each write goes to the older copy, so a write torn by a crash leaves
 * the other copy intact; a reader takes the valid copy with the higher `updateCount`.
 *
 * @example
 * ```ts
 * import { cacheGeometry, decodeHeaderPage, encodeHeader, headerPageBytes, newHeader } from "./cache_file.ts";
 * const page = new DataView(new ArrayBuffer(headerPageBytes));
 * encodeHeader(page, 0, newHeader("replica", cacheGeometry(64 * 1024, 16)));
 * const read = decodeHeaderPage(page);
 * if (!read.ok) throw new Error(read.detail);
 * ```
 *
 * @module
 */
import { crc32cView } from "../log/crc32c.ts";
import { readU64Safe, recordBytes, writeU64Safe } from "../log/record.ts";
import { checkMetaSlots, checkRingBytes } from "../log/ring.ts";
import { blockBytes } from "../block.ts";

/** Size of the header page and the alignment of every region, in bytes. */
export const headerPageBytes = blockBytes;
/** Size of one header copy, in bytes. */
export const headerCopyBytes = 128;
/** Offsets of the two header copies in the header page. */
export const headerCopyOffsets: readonly [number, number] = [0, 2048];
/** Bytes covered by `headerCrc` (offsets 0..123). */
export const headerCrcCoveredBytes = 124;
/** `magic` field: bytes `R R W C` read as a little-endian u32. */
export const cacheMagic = 0x43575252;
/** `version` field of this layout. */
export const cacheFormatVersion = 1;

/** Whose cache a file is: the primary's or the replica's. */
export type CacheRole = "primary" | "replica";
const roleCodes: Record<CacheRole, number> = { primary: 1, replica: 2 };

/** Sizes and offsets of the three regions of a cache file. */
export interface CacheGeometry {
  /** Data ring size: a multiple of 4096 from 64 KiB to 1 GiB. */
  dataBytes: number;
  /** Metadata slots (64 bytes each), 1 to 65536. */
  metaSlots: number;
  /** Offset of the metadata ring in the file (4096). */
  metaOffset: number;
  /** Offset of the data ring in the file: 4096 + the metadata ring rounded up to 4096. */
  dataOffset: number;
  /** Size of the whole file: `dataOffset + dataBytes`. */
  fileBytes: number;
}

/** A decoded header copy. */
export interface CacheHeader extends CacheGeometry {
  role: CacheRole;
  /** Incremented on every open for writing (1 after create). */
  generation: number;
  /** Incremented on every header write; the reader takes the copy with the higher one. */
  updateCount: number;
  /** Every log with seq ≤ this is in the backing store. */
  destagedSeq: number;
  /** Ring position released by the owner (a multiple of 4096). */
  releasedPos: number;
  /** The owner's next seq when it last wrote the header (a hint; recovery scans). */
  nextSeq: number;
}

/**
 * Returns the geometry of a cache with a data ring of `dataBytes` and `metaSlots` slots;
 * RangeError saying what to pass otherwise.
 */
export function cacheGeometry(dataBytes: number, metaSlots: number): CacheGeometry {
  checkRingBytes(dataBytes);
  checkMetaSlots(metaSlots);
  const metaRegion = Math.ceil((metaSlots * recordBytes) / headerPageBytes) * headerPageBytes;
  const dataOffset = headerPageBytes + metaRegion;
  return {
    dataBytes,
    metaSlots,
    metaOffset: headerPageBytes,
    dataOffset,
    fileBytes: dataOffset + dataBytes,
  };
}

/** Returns the header of a new cache: generation 1, nothing destaged, next seq 1. */
export function newHeader(role: CacheRole, geometry: CacheGeometry): CacheHeader {
  checkRole(role);
  return {
    ...geometry,
    role,
    generation: 1,
    updateCount: 1,
    destagedSeq: 0,
    releasedPos: 0,
    nextSeq: 1,
  };
}

/** Throws TypeError unless `role` is `"primary"` or `"replica"`. */
export function checkRole(role: unknown): asserts role is CacheRole {
  if (role !== "primary" && role !== "replica") {
    throw new TypeError(`Cannot use cache role ${String(role)}: pass "primary" or "replica"`);
  }
}

/** Writes `header` as one 128-byte copy at `offset` of `view` and seals it with its CRC. */
export function encodeHeader(view: DataView, offset: number, header: CacheHeader): void {
  new Uint8Array(view.buffer, view.byteOffset + offset, headerCopyBytes).fill(0);
  view.setUint32(offset, cacheMagic, true);
  view.setUint16(offset + 4, cacheFormatVersion, true);
  view.setUint8(offset + 6, roleCodes[header.role]);
  view.setUint32(offset + 8, header.metaSlots, true);
  const u64s = [
    header.dataBytes,
    header.metaOffset,
    header.dataOffset,
    header.fileBytes,
    header.generation,
    header.updateCount,
    header.destagedSeq,
    header.releasedPos,
    header.nextSeq,
  ];
  for (let i = 0; i < u64s.length; i++) writeU64Safe(view, offset + 16 + 8 * i, u64s[i]);
  view.setUint32(offset + 124, crc32cView(view, offset, headerCrcCoveredBytes), true);
}

/** Why a header copy was refused (`OK` when it was not). */
export const HeaderReason = {
  OK: 0,
  BAD_MAGIC: 1,
  BAD_VERSION: 2,
  BAD_CRC: 3,
  /** The CRC checks but a field is out of range or inconsistent. */
  BAD_FIELD: 4,
} as const;

/** A {@linkcode HeaderReason} code. */
export type HeaderReason = typeof HeaderReason[keyof typeof HeaderReason];

/**
 * Checks the copy at `offset` in the order magic, version, CRC, fields (role, reserved
 * bytes, u64 range, geometry) and returns the header or the first refusal; never throws.
 */
export function decodeHeaderCopy(
  view: DataView,
  offset: number,
): { reason: typeof HeaderReason.OK; header: CacheHeader } | { reason: HeaderReason } {
  if (view.getUint32(offset, true) !== cacheMagic) return { reason: HeaderReason.BAD_MAGIC };
  if (view.getUint16(offset + 4, true) !== cacheFormatVersion) {
    return { reason: HeaderReason.BAD_VERSION };
  }
  const crc = crc32cView(view, offset, headerCrcCoveredBytes);
  if (view.getUint32(offset + 124, true) !== crc) return { reason: HeaderReason.BAD_CRC };
  const bad = { reason: HeaderReason.BAD_FIELD };
  const roleCode = view.getUint8(offset + 6);
  const role: CacheRole | undefined = roleCode === 1
    ? "primary"
    : roleCode === 2
    ? "replica"
    : undefined;
  if (role === undefined || view.getUint8(offset + 7) !== 0) return bad;
  if (view.getUint32(offset + 12, true) !== 0) return bad;
  for (let at = offset + 88; at < offset + 124; at += 4) {
    if (view.getUint32(at, true) !== 0) return bad;
  }
  const u64s: number[] = [];
  for (let i = 0; i < 9; i++) {
    const value = readU64Safe(view, offset + 16 + 8 * i);
    if (value < 0) return bad;
    u64s.push(value);
  }
  const [dataBytes, metaOffset, dataOffset, fileBytes, generation, updateCount] = u64s;
  const [destagedSeq, releasedPos, nextSeq] = u64s.slice(6);
  const metaSlots = view.getUint32(offset + 8, true);
  let geometry: CacheGeometry;
  try {
    geometry = cacheGeometry(dataBytes, metaSlots);
  } catch {
    return bad;
  }
  if (
    geometry.metaOffset !== metaOffset || geometry.dataOffset !== dataOffset ||
    geometry.fileBytes !== fileBytes || generation < 1 || updateCount < 1 || nextSeq < 1 ||
    releasedPos % headerPageBytes !== 0
  ) {
    return bad;
  }
  const header = { ...geometry, role, generation, updateCount, destagedSeq, releasedPos, nextSeq };
  return { reason: HeaderReason.OK, header };
}

/** Why a whole header page was refused. */
export type HeaderRefusal = "FOREIGN" | "VERSION" | "TORN_HEADER";

/** Result of {@linkcode decodeHeaderPage}. */
export type HeaderPageRead =
  | { ok: true; header: CacheHeader; copy: 0 | 1; otherValid: boolean }
  | { ok: false; reason: HeaderRefusal; detail: string };

/**
 * Decodes both copies of a 4096-byte header page and returns the valid one with the higher
 * `updateCount` (`copy` says which), or a refusal: `FOREIGN` when neither copy has the
 * magic, `VERSION` when a copy is of another format version, `TORN_HEADER` otherwise.
 */
export function decodeHeaderPage(page: DataView): HeaderPageRead {
  if (page.byteLength < headerPageBytes) {
    return { ok: false, reason: "FOREIGN", detail: `${page.byteLength} bytes, not a full page` };
  }
  const reads = headerCopyOffsets.map((at) => decodeHeaderCopy(page, at));
  const valid = reads.map((r) => "header" in r ? r.header : undefined);
  if (valid[0] || valid[1]) {
    const copy = !valid[0] || (valid[1] && valid[1].updateCount > valid[0].updateCount) ? 1 : 0;
    return { ok: true, header: valid[copy]!, copy, otherValid: !!valid[1 - copy] };
  }
  const reasons = reads.map((r) => r.reason);
  const names = reasons.map((code) =>
    Object.keys(HeaderReason).find((k) => HeaderReason[k as keyof typeof HeaderReason] === code)
  );
  const detail = `header copies: ${names.join(", ")}`;
  if (reasons.every((r) => r === HeaderReason.BAD_MAGIC)) {
    return { ok: false, reason: "FOREIGN", detail };
  }
  if (reasons.includes(HeaderReason.BAD_VERSION)) return { ok: false, reason: "VERSION", detail };
  return { ok: false, reason: "TORN_HEADER", detail };
}

/** Why a cache file was refused, created or opened. */
export type CacheRefusal =
  | HeaderRefusal
  | "EXISTS"
  | "NOT_FOUND"
  | "ROLE"
  | "GEOMETRY"
  | "SIZE"
  | "BUSY";

const recreate = "recreate it with WriteCache.create({ overwrite: true }), which discards its logs";
const advice: Record<CacheRefusal, string> = {
  EXISTS: "open it with WriteCache.open, or pass overwrite: true to replace it (its logs are lost)",
  NOT_FOUND: "create it with WriteCache.create",
  FOREIGN:
    "it is not a write cache file: pass the right path, or create one with WriteCache.create",
  VERSION: `this code reads format version ${cacheFormatVersion}: open it with the release ` +
    `that wrote it, or ${recreate}`,
  TORN_HEADER: `the header is torn or corrupt: restore the file, or ${recreate}`,
  ROLE: "open it with its own role, or use another file for this side",
  GEOMETRY: `open it with the file's geometry, or ${recreate}`,
  SIZE: `it was truncated or extended since it was created: ${recreate}`,
  BUSY: "another process (or handle) has it open: close that first",
};

/** A typed refusal of a cache file: `reason` says which; the message what and what to do. */
export class CacheFileError extends Error {
  override name = "CacheFileError";
  /** Why the file was refused. */
  readonly reason: CacheRefusal;
  /** The file. */
  readonly path: string;

  /** `detail` says what was found; the advice for `reason` is appended. */
  constructor(reason: CacheRefusal, path: string, detail: string) {
    const verb = reason === "EXISTS" ? "create" : "open";
    super(`Cannot ${verb} ${path}: ${detail}; ${advice[reason]}`);
    this.reason = reason;
    this.path = path;
  }
}

/** What the opener expects of a file: its role, optionally its geometry, and its size. */
export interface HeaderExpectation {
  role: CacheRole;
  dataBytes?: number;
  metaSlots?: number;
  /** The file's size in bytes. */
  fileBytes: number;
}

/** Throws {@linkcode CacheFileError} (ROLE, GEOMETRY, SIZE) where `header` differs. */
export function checkHeader(path: string, header: CacheHeader, expect: HeaderExpectation): void {
  if (header.role !== expect.role) {
    const detail = `it is the ${header.role}'s write cache, not the ${expect.role}'s`;
    throw new CacheFileError("ROLE", path, detail);
  }
  const diffs: string[] = [];
  for (const key of ["dataBytes", "metaSlots"] as const) {
    if (expect[key] !== undefined && expect[key] !== header[key]) {
      diffs.push(`${key} ${expect[key]} asked, ${header[key]} in the file`);
    }
  }
  if (diffs.length > 0) {
    throw new CacheFileError("GEOMETRY", path, `its geometry differs (${diffs.join("; ")})`);
  }
  if (expect.fileBytes !== header.fileBytes) {
    const detail = `it is ${expect.fileBytes} bytes but its header describes ${header.fileBytes}`;
    throw new CacheFileError("SIZE", path, detail);
  }
}
