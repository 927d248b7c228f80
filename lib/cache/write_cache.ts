/**
 * The write cache: one file (layout in `cache_file.ts`) mapped `MAP_SHARED` as a whole,
 * holding a side's data ring (registered for RDMA in place) and a metadata ring of 64-byte
 * log records indexed by seq, with explicit persistence points (`msync(2)` `MS_SYNC`) and
 * a recovery scan that trusts a log only when its record and its data both check
 * (docs/protocol.md, "Persistence points").
 *
 * @example
 * ```ts
 * import { WriteCache } from "./write_cache.ts";
 * using cache = WriteCache.create({
 *   path: "/dev/shm/replica.cache", dataBytes: 1 << 20, metaSlots: 64, role: "replica",
 *   overwrite: true,
 * });
 * // register cache.data as the data ring; per accepted log:
 * //   cache.persistData(offset, length); cache.writeRecord(seq, record); cache.persistRecord(seq)
 * const { logs } = cache.scan(); // after a restart: the logs to destage again
 * ```
 *
 * @module
 */
import { ERRNO } from "../../ffi/errno.ts";
import {
  errno,
  libc,
  MS_SYNC,
  O_CLOEXEC,
  O_CREAT,
  O_EXCL,
  O_RDWR,
  pageSize,
} from "../../ffi/libc.ts";
import { assert } from "../assert.ts";
import { openInOrder } from "../dispose.ts";
import { crc32cAt } from "../log/crc32c.ts";
import {
  decodeRecord,
  emptyRecord,
  encodeRecord,
  type LogRecord,
  RecordFlags,
  RecordReason,
  recordReasonName,
} from "../log/record.ts";
import { mappedMemory, type RingMemory } from "../replication/ring_memory.ts";
import { ResourceError, verbsError } from "../verbs/errors.ts";
import {
  CacheFileError,
  cacheGeometry,
  type CacheHeader,
  type CacheRole,
  checkHeader,
  checkRole,
  decodeHeaderPage,
  encodeHeader,
  headerCopyOffsets,
  headerPageBytes,
  newHeader,
} from "./cache_file.ts";
import {
  allocateFile,
  fileBytesOf,
  fileSystemOfFd,
  lockExclusive,
  mapShared,
  openFd,
  type SharedMapping,
  syncParentDirectory,
} from "./fs_kind.ts";
import { blockBytes } from "../block.ts";

/** Options of {@linkcode WriteCache.create}. */
export interface WriteCacheCreateOptions {
  path: string;
  /** Data ring size: a multiple of 4096 from 64 KiB to 1 GiB. */
  dataBytes: number;
  /** Metadata slots, 1 to 65536: at least the logs the owner keeps un-destaged. */
  metaSlots: number;
  role: CacheRole;
  /** Replace an existing file (its logs are lost); default false. */
  overwrite?: boolean;
}

/** Options of {@linkcode WriteCache.open}; a geometry given must match the file's. */
export interface WriteCacheOpenOptions {
  path: string;
  role: CacheRole;
  dataBytes?: number;
  metaSlots?: number;
}

/** The header fields an owner records with {@linkcode WriteCache.persistHeader}. */
export type DurablePositions = Partial<
  Pick<CacheHeader, "destagedSeq" | "releasedPos" | "nextSeq">
>;

/** A non-empty metadata slot whose record the scan did not trust. */
export interface ScanRefusal {
  slot: number;
  /** The record's seq, or -1 when it did not decode. */
  seq: number;
  /** A `RecordReason` name, or `DATA_CRC_MISMATCH`, `WRONG_SLOT`, `OUTSIDE_RING`, `NOT_A_LOG`. */
  reason: string;
}

/** What {@linkcode WriteCache.scan} found. */
export interface ScanResult {
  /** Ascending, consecutive seqs ending at `highestSeq`, all above `destagedSeq` (SKIPs too). */
  logs: LogRecord[];
  destagedSeq: number;
  /** Highest trusted seq above `destagedSeq`, or 0 when there is none. */
  highestSeq: number;
  /** True when `logs` is empty or starts at `destagedSeq + 1`: nothing is missing. */
  contiguous: boolean;
  /** Trusted seqs above `destagedSeq` left out because a gap lies between them and `logs`. */
  stranded: number[];
  refused: ScanRefusal[];
}

/** A write cache file, open and mapped; see the module documentation. */
export class WriteCache implements Disposable {
  /** The file. */
  readonly path: string;
  /** The data ring (page-aligned, zero copies); closing it does nothing: close the cache. */
  readonly data: RingMemory;
  /** The metadata ring: `metaSlots` × 64 bytes. */
  readonly metaView: DataView;
  /** The file was mapped with `MAP_SYNC` (DAX); `msync` is still what makes data durable. */
  readonly mapSync: boolean;
  /** The file system holding the file (`fs_kind.ts`), for registration advice. */
  readonly fileSystem: string;
  #fd: number;
  #map: SharedMapping;
  #headerView: DataView;
  #header: CacheHeader;
  #copy: 0 | 1;
  #closed = false;
  #scratch = emptyRecord();

  private constructor(path: string, fd: number, header: CacheHeader, copy: 0 | 1) {
    this.path = path;
    this.#fd = fd;
    this.#header = header;
    this.#copy = copy;
    this.fileSystem = fileSystemOfFd(fd);
    this.#map = mapShared(fd, header.fileBytes);
    const ptr = this.#map.ptr;
    this.mapSync = this.#map.mapSync;
    this.#headerView = new DataView(Deno.UnsafePointerView.getArrayBuffer(ptr, headerPageBytes));
    this.metaView = new DataView(
      Deno.UnsafePointerView.getArrayBuffer(ptr, header.metaSlots * 64, header.metaOffset),
    );
    const dataPtr = Deno.UnsafePointer.offset(ptr, header.dataOffset)!;
    this.data = mappedMemory(dataPtr, header.dataBytes, () => {});
    assert(this.data.address % headerPageBytes === 0, "data ring is not page-aligned");
  }

  /** Creates a cache file (refusing an existing one unless `overwrite`), mapped and durable. */
  static create(options: WriteCacheCreateOptions): WriteCache {
    const { path, role } = options;
    checkPath(path);
    checkRole(role);
    const geometry = cacheGeometry(options.dataBytes, options.metaSlots);
    const fd = openFd(path, O_RDWR | O_CREAT | O_CLOEXEC | (options.overwrite ? 0 : O_EXCL));
    if (fd === -ERRNO.EEXIST) throw new CacheFileError("EXISTS", path, "it exists");
    if (fd < 0) throw verbsError("open", -fd, `${path}: check the directory and permissions`);
    return withFd(fd, options.overwrite ? undefined : path, (hold) => {
      lockOrRefuse(fd, path);
      if (libc.symbols.ftruncate(fd, 0n) !== 0) throw verbsError("ftruncate", errno(), path);
      allocateFile(fd, geometry.fileBytes, path);
      // updateCount 0 and copy 1: the first header write goes to copy 0 with updateCount 1.
      const header = { ...newHeader(role, geometry), updateCount: 0 };
      const cache = hold.cache = new WriteCache(path, fd, header, 1);
      cache.#writeHeader({ ...header });
      if (libc.symbols.fdatasync(fd) !== 0) throw verbsError("fdatasync", errno(), path);
      syncParentDirectory(path);
      return cache;
    });
  }

  /**
   * Opens an existing cache file of `role`: checks the header (magic, version, CRC, fields),
   * the role, the geometry given and the file size, each a {@linkcode CacheFileError}; then
   * maps it and persists the header with the generation incremented.
   */
  static open(options: WriteCacheOpenOptions): WriteCache {
    const { path, role } = options;
    checkPath(path);
    checkRole(role);
    const fd = openFd(path, O_RDWR | O_CLOEXEC);
    if (fd === -ERRNO.ENOENT) throw new CacheFileError("NOT_FOUND", path, "no such file");
    if (fd < 0) throw verbsError("open", -fd, `${path}: check the path and permissions`);
    return withFd(fd, undefined, (hold) => {
      lockOrRefuse(fd, path);
      const fileBytes = fileBytesOf(fd, path);
      if (fileBytes < headerPageBytes) {
        const detail = `it is ${fileBytes} bytes, smaller than a header page`;
        throw new CacheFileError("FOREIGN", path, detail);
      }
      const page = new Uint8Array(new ArrayBuffer(headerPageBytes));
      const got = libc.symbols.pread_buffer(fd, page, BigInt(headerPageBytes), 0n);
      if (got !== BigInt(headerPageBytes)) {
        throw verbsError("pread", got < 0n ? errno() : ERRNO.EIO, `${path}: header page`);
      }
      const read = decodeHeaderPage(new DataView(page.buffer));
      if (!read.ok) throw new CacheFileError(read.reason, path, read.detail);
      checkHeader(path, read.header, { ...options, fileBytes });
      const cache = hold.cache = new WriteCache(path, fd, read.header, read.copy);
      cache.#writeHeader({ ...read.header, generation: read.header.generation + 1 });
      return cache;
    });
  }

  /** The header as last persisted (a copy). */
  get header(): Readonly<CacheHeader> {
    return { ...this.#header };
  }

  /** Byte offset of the slot of `seq` in {@linkcode metaView}: `(seq mod metaSlots) × 64`. */
  slotOffset(seq: number): number {
    checkSeq(seq);
    return (seq % this.#header.metaSlots) * 64;
  }

  /** Encodes `record` (a log or a SKIP of seq `seq`) into its slot; not durable until persisted. */
  writeRecord(seq: number, record: LogRecord): void {
    this.#open();
    const offset = this.slotOffset(seq);
    if (record.seq !== seq) {
      throw new RangeError(`Cannot write record of seq ${record.seq} as seq ${seq}: pass its seq`);
    }
    if ((record.flags & (RecordFlags.NOP | RecordFlags.RELEASE)) !== 0) {
      throw new RangeError(
        `Cannot cache a NOP or RELEASE record (seq ${seq}): cache logs and SKIPs`,
      );
    }
    this.#checkRange(record.dataOffset, record.dataLength, `seq ${seq}'s data`);
    const { destagedSeq, metaSlots } = this.#header;
    if (seq > destagedSeq + metaSlots) {
      throw new RangeError(
        `Cannot write seq ${seq}: its slot still holds seq ${seq - metaSlots}, not destaged ` +
          `(destagedSeq ${destagedSeq}); destage it and persistHeader({ destagedSeq }) first, ` +
          "or create the cache with more metaSlots",
      );
    }
    encodeRecord(this.metaView, offset, record);
  }

  /**
   * Decodes the slot of `seq` into `out`; true only when it holds a valid record of exactly
   * that seq (false for an empty, torn or foreign slot or another lap's seq: `out` unchanged).
   */
  readRecord(seq: number, out: LogRecord): boolean {
    this.#open();
    const offset = this.slotOffset(seq);
    if (decodeRecord(this.metaView, offset, this.#scratch) !== RecordReason.OK) return false;
    if (this.#scratch.seq !== seq) return false;
    Object.assign(out, this.#scratch);
    return true;
  }

  /** Persistence point: `msync(MS_SYNC)` of the pages covering data ring `[offset, offset + length)`. */
  persistData(offset: number, length: number): void {
    this.#open();
    this.#checkRange(offset, length, "data to persist");
    if (length === 0) throw new RangeError("Cannot persist 0 bytes of data: pass a length ≥ 1");
    this.#msync(this.#header.dataOffset + offset, length, `data ring bytes ${offset}+${length}`);
  }

  /** Persistence point: `msync(MS_SYNC)` of the page holding the slot of `seq`. */
  persistRecord(seq: number): void {
    this.#open();
    this.#msync(this.#header.metaOffset + this.slotOffset(seq), 64, `record of seq ${seq}`);
  }

  /**
   * Persistence point: writes the header with `fields` (none may go backwards; `nextSeq` >
   * `destagedSeq`) into the older copy, then `msync(MS_SYNC)` of the header page.
   */
  persistHeader(fields: DurablePositions): void {
    this.#open();
    const next = {
      ...this.#header,
      destagedSeq: fields.destagedSeq ?? this.#header.destagedSeq,
      releasedPos: fields.releasedPos ?? this.#header.releasedPos,
      nextSeq: fields.nextSeq ?? this.#header.nextSeq,
    };
    for (const key of ["destagedSeq", "releasedPos", "nextSeq"] as const) {
      const value = next[key], was = this.#header[key];
      if (!Number.isSafeInteger(value) || value < was) {
        throw new RangeError(`Cannot set ${key} to ${value}: pass a safe integer ≥ ${was}`);
      }
    }
    if (next.releasedPos % headerPageBytes !== 0 || next.nextSeq <= next.destagedSeq) {
      throw new RangeError(
        `Cannot record releasedPos ${next.releasedPos} and nextSeq ${next.nextSeq} with ` +
          `destagedSeq ${next.destagedSeq}: pass a multiple of ${blockBytes} and a nextSeq above it`,
      );
    }
    this.#writeHeader(next);
  }

  /**
   * Recovery: walks every slot once (bounded by `metaSlots`) and trusts a record only when
   * it decodes, sits in its seq's slot, is a log or SKIP above `destagedSeq`, lies inside
   * the data ring and (for a log) the CRC32C of its bytes in the data ring is its `dataCrc`.
   * Returns the longest run of consecutive trusted seqs ending at the highest one.
   */
  scan(): ScanResult {
    this.#open();
    const { destagedSeq, metaSlots } = this.#header;
    const trusted = new Map<number, LogRecord>();
    const refused: ScanRefusal[] = [];
    for (let slot = 0; slot < metaSlots; slot++) {
      const record = { ...emptyRecord(), seq: -1 }; // decodeRecord leaves -1 on a refusal
      const reason = this.#checkSlot(slot, record, destagedSeq);
      if (reason === "OK") trusted.set(record.seq, record);
      else if (reason !== "EMPTY" && reason !== "DESTAGED") {
        refused.push({ slot, seq: record.seq, reason });
      }
    }
    let highestSeq = 0;
    for (const seq of trusted.keys()) highestSeq = Math.max(highestSeq, seq);
    const logs: LogRecord[] = [];
    for (let seq = highestSeq; seq > destagedSeq && trusted.has(seq); seq--) {
      logs.push(trusted.get(seq)!);
      assert(logs.length <= metaSlots, "scan run is longer than the metadata ring");
    }
    logs.reverse();
    const first = logs.length > 0 ? logs[0].seq : Infinity;
    const stranded = [...trusted.keys()].filter((s) => s < first).sort((a, b) => a - b);
    const contiguous = logs.length === 0 || first === destagedSeq + 1;
    return { logs, destagedSeq, highestSeq, contiguous, stranded, refused };
  }

  /** Unmaps the file and closes it (releasing its lock); idempotent. Views die with it. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    libc.symbols.munmap(this.#map.ptr, BigInt(this.#map.length));
    libc.symbols.close(this.#fd);
  }

  /** Same as {@linkcode close}. */
  [Symbol.dispose](): void {
    this.close();
  }

  #checkSlot(slot: number, out: LogRecord, destagedSeq: number): string {
    const at = slot * 64;
    let empty = true;
    for (let i = 0; i < 64 && empty; i += 4) empty = this.metaView.getUint32(at + i) === 0;
    if (empty) return "EMPTY";
    const decoded = decodeRecord(this.metaView, at, out);
    if (decoded !== RecordReason.OK) return recordReasonName(decoded);
    if (out.seq % this.#header.metaSlots !== slot) return "WRONG_SLOT";
    if ((out.flags & (RecordFlags.NOP | RecordFlags.RELEASE)) !== 0) return "NOT_A_LOG";
    if (out.seq <= destagedSeq) return "DESTAGED";
    if (out.dataOffset + out.dataLength > this.#header.dataBytes) return "OUTSIDE_RING";
    if (out.flags === RecordFlags.SKIP) return "OK";
    const crc = crc32cAt(this.data.address, out.dataOffset, out.dataLength);
    return crc === out.dataCrc ? "OK" : "DATA_CRC_MISMATCH";
  }

  #writeHeader(next: CacheHeader): void {
    next.updateCount = this.#header.updateCount + 1;
    const target = this.#copy === 0 ? 1 : 0;
    encodeHeader(this.#headerView, headerCopyOffsets[target], next);
    this.#header = next;
    this.#copy = target;
    this.#msync(0, headerPageBytes, "header");
  }

  #msync(fileOffset: number, length: number, what: string): void {
    const start = Math.floor(fileOffset / pageSize) * pageSize;
    const end = Math.min(this.#map.length, Math.ceil((fileOffset + length) / pageSize) * pageSize);
    const ptr = Deno.UnsafePointer.offset(this.#map.ptr, start)!;
    if (libc.symbols.msync(ptr, BigInt(end - start), MS_SYNC) !== 0) {
      throw verbsError(
        "msync",
        errno(),
        `${what} of ${this.path} is not durable; check the device (dmesg) and free space`,
      );
    }
  }

  #checkRange(offset: number, length: number, what: string): void {
    const ring = this.#header.dataBytes;
    if (
      !Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 ||
      length < 0 || offset + length > ring
    ) {
      throw new RangeError(
        `Cannot use ${what} at ${offset}+${length}: pass a range inside the ${ring}-byte data ring`,
      );
    }
  }

  #open(): void {
    if (this.#closed) throw new ResourceError(`WriteCache ${this.path} is closed`);
  }
}

function checkPath(path: unknown): asserts path is string {
  if (typeof path !== "string" || path.length === 0 || path.includes("\0")) {
    throw new TypeError(`Cannot use cache path ${JSON.stringify(path)}: pass a file path`);
  }
}

function checkSeq(seq: number): void {
  if (!Number.isSafeInteger(seq) || seq < 1) {
    throw new RangeError(`Cannot use seq ${seq}: pass a safe integer ≥ 1`);
  }
}

function lockOrRefuse(fd: number, path: string): void {
  if (!lockExclusive(fd, path)) throw new CacheFileError("BUSY", path, "it is locked");
}

/**
 * Runs `body`, which may hand `fd` to a cache it puts in `hold`; if `body` throws, closes
 * the cache or else `fd`, and removes `created` (a file this call made).
 */
function withFd(
  fd: number,
  created: string | undefined,
  body: (hold: { cache?: WriteCache }) => WriteCache,
): WriteCache {
  return openInOrder((stack) => {
    if (created !== undefined) stack.defer(() => Deno.removeSync(created));
    const hold: { cache?: WriteCache } = {};
    stack.defer(() => hold.cache ? hold.cache.close() : libc.symbols.close(fd));
    return body(hold);
  });
}
