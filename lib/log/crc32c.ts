/**
 * CRC32C (Castagnoli, RFC 3720 B.4): polynomial 0x1EDC6F41, reflected 0x82F63B78, initial
 * value and final XOR 0xFFFFFFFF, so `crc32c("123456789") === 0xE3069283`.
 *
 * Two backends compute the same values: `isal` calls libisal2's `crc32_iscsi` (SSE4.2 /
 * PCLMUL) through `Deno.dlopen`; `js` is a slicing-by-8 table implementation. The
 * environment variable `RRL_CRC32C=isal|js` picks one; by default `isal` is used when the
 * library loads (needs `--allow-ffi`), else `js`. `RRL_LIBISAL` points at another copy of
 * the library. Both variables need `--allow-env` to be read. No function here allocates per
 * call once its caches are warm (see {@linkcode crc32cAt}).
 *
 * @example
 * ```ts
 * import { crc32c, crc32cBackend } from "./crc32c.ts";
 * console.log(crc32cBackend(), crc32c(new TextEncoder().encode("123456789")).toString(16));
 * ```
 *
 * @module
 */
import { blockBytes } from "../block.ts";

/** Name of a CRC32C implementation. */
export type Crc32cBackendName = "isal" | "js";

/** One CRC32C implementation. Every `crc` argument and result is a standard CRC32C value. */
export interface Crc32cBackend {
  /** Which implementation this is. */
  readonly name: Crc32cBackendName;
  /** Continues `crc` (0 to start) over `bytes`: `update(update(0, a), b) === crc32c(a ‖ b)`. */
  update(crc: number, bytes: Uint8Array): number;
  /** Continues `crc` over `length` bytes at `baseAddress + offset` (memory owned elsewhere). */
  updateAt(crc: number, baseAddress: number, offset: number, length: number): number;
}

/** Longest input of one call, in bytes (`crc32_iscsi` takes an `int` length). */
export const crc32cLengthMax = 0x7fff_ffff;
/** Base addresses the `js` backend keeps a view for; the cache is cleared beyond this. */
const addressViewsMax = 64;
/** Smallest view the `js` backend makes over a base address (grown by powers of two). */
const addressViewBytesMin = 64 * 1024;
/** Page size of registered memory; the isal backend caches one pointer per page offset. */
const pageBytes = blockBytes;
/** Page pointers cached per base address: 1 GiB of 4096-byte pages (the largest ring). */
const pagePointersMax = 262_144;

// Eight 256-entry tables, slicing-by-8 (Intel's "Slicing-by-8", Kounavis & Berry 2005).
const table = new Int32Array(8 * 256);
for (let n = 0; n < 256; n++) {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
  table[n] = c;
}
for (let n = 0; n < 256; n++) {
  for (let t = 1; t < 8; t++) {
    const prev = table[(t - 1) * 256 + n];
    table[t * 256 + n] = (prev >>> 8) ^ table[prev & 0xff];
  }
}

/** Raw (pre-inverted) CRC state over `bytes[start, end)`. */
function jsRaw(raw: number, bytes: Uint8Array, start: number, end: number): number {
  let c = raw | 0;
  let i = start;
  for (; i + 8 <= end; i += 8) {
    c ^= bytes[i] | (bytes[i + 1] << 8) | (bytes[i + 2] << 16) | (bytes[i + 3] << 24);
    const h = bytes[i + 4] | (bytes[i + 5] << 8) | (bytes[i + 6] << 16) | (bytes[i + 7] << 24);
    c = table[1792 + (c & 0xff)] ^ table[1536 + ((c >>> 8) & 0xff)] ^
      table[1280 + ((c >>> 16) & 0xff)] ^ table[1024 + (c >>> 24)] ^
      table[768 + (h & 0xff)] ^ table[512 + ((h >>> 8) & 0xff)] ^
      table[256 + ((h >>> 16) & 0xff)] ^ table[h >>> 24];
  }
  for (; i < end; i++) c = (c >>> 8) ^ table[(c ^ bytes[i]) & 0xff];
  return c;
}

/** Raw CRC state over `length` bytes of `view` at `offset`, read through the DataView. */
function jsRawView(raw: number, view: DataView, offset: number, length: number): number {
  let c = raw | 0;
  let i = offset;
  const end = offset + length;
  for (; i + 8 <= end; i += 8) {
    c ^= view.getInt32(i, true);
    const h = view.getInt32(i + 4, true); // int32: a uint32 >= 2^31 could be boxed
    c = table[1792 + (c & 0xff)] ^ table[1536 + ((c >>> 8) & 0xff)] ^
      table[1280 + ((c >>> 16) & 0xff)] ^ table[1024 + (c >>> 24)] ^
      table[768 + (h & 0xff)] ^ table[512 + ((h >>> 8) & 0xff)] ^
      table[256 + ((h >>> 16) & 0xff)] ^ table[h >>> 24];
  }
  for (; i < end; i++) c = (c >>> 8) ^ table[(c ^ view.getUint8(i)) & 0xff];
  return c;
}

/** Throws RangeError unless `baseAddress + offset .. + length` is a plausible span. */
function checkSpan(baseAddress: number, offset: number, length: number): void {
  if (
    !Number.isSafeInteger(baseAddress) || baseAddress <= 0 || !Number.isSafeInteger(offset) ||
    offset < 0 || !Number.isInteger(length) || length < 0 || length > crc32cLengthMax
  ) {
    throw new RangeError(
      `Cannot checksum ${length} bytes at address ${baseAddress} + ${offset}: pass a non-null ` +
        `address, offset ≥ 0 and length 0..${crc32cLengthMax}`,
    );
  }
}

const addressViews = new Map<number, Uint8Array>();
const pagePointers = new Map<number, Deno.PointerObject[]>();

/**
 * Returns a cached pointer object for `baseAddress + offset` (`offset` a multiple of 4096),
 * made on first use, or null beyond `pagePointersMax` pages. Ring data always starts on a
 * page, so after warm-up every isal call takes Deno's fast path without allocating.
 */
function pagePointer(baseAddress: number, offset: number): Deno.PointerObject | null {
  if (offset >= pagePointersMax * pageBytes) return null;
  let pointers = pagePointers.get(baseAddress);
  if (pointers === undefined) {
    if (pagePointers.size >= addressViewsMax) pagePointers.clear();
    pointers = [];
    pagePointers.set(baseAddress, pointers);
  }
  const page = offset / pageBytes;
  let pointer = pointers[page];
  if (pointer === undefined) {
    pointer = Deno.UnsafePointer.create(BigInt(baseAddress + offset))!;
    pointers[page] = pointer;
  }
  return pointer;
}

/**
 * Returns a cached byte view covering at least `bytes` bytes from `baseAddress`, grown by
 * doubling; only the spans callers ask for are ever read.
 */
function addressView(baseAddress: number, bytes: number): Uint8Array {
  const cached = addressViews.get(baseAddress);
  if (cached !== undefined && cached.length >= bytes) return cached;
  let size = Math.max(addressViewBytesMin, cached?.length ?? 0);
  while (size < bytes) size *= 2;
  if (addressViews.size >= addressViewsMax) addressViews.clear();
  const pointer = Deno.UnsafePointer.create(BigInt(baseAddress));
  const view = new Uint8Array(Deno.UnsafePointerView.getArrayBuffer(pointer!, size));
  addressViews.set(baseAddress, view);
  return view;
}

/** The pure TypeScript slicing-by-8 backend; always available. */
export const jsBackend: Crc32cBackend = {
  name: "js",
  update(crc: number, bytes: Uint8Array): number {
    return (jsRaw(~crc, bytes, 0, bytes.length) ^ -1) >>> 0;
  },
  updateAt(crc: number, baseAddress: number, offset: number, length: number): number {
    checkSpan(baseAddress, offset, length);
    if (length === 0) return crc >>> 0;
    const bytes = addressView(baseAddress, offset + length);
    return (jsRaw(~crc, bytes, offset, offset + length) ^ -1) >>> 0;
  },
};

/** libisal2's symbols (isa-l `include/crc.h`); loaded once. */
const isalSymbols = {
  crc32_iscsi: {
    parameters: [
      "buffer", // unsigned char *buffer
      "i32", // int len
      "u32", // unsigned int init_crc (raw state: ~crc; the result is not inverted either)
    ],
    result: "u32", // unsigned int
  },
  crc32_iscsi_ptr: {
    name: "crc32_iscsi", // the same function, taking a pointer object (fast call)
    parameters: ["pointer", "i32", "u32"],
    result: "u32",
  },
  crc32_iscsi_i32: {
    name: "crc32_iscsi", // the same function on int32 bits: no heap number in or out
    parameters: ["pointer", "i32", "i32"],
    result: "i32",
  },
  crc32_iscsi_at: {
    name: "crc32_iscsi", // the same function, taking a plain address (slow call path)
    parameters: ["usize", "i32", "u32"],
    result: "u32",
  },
} as const satisfies Deno.ForeignLibraryInterface;

/** Reads an environment variable, or undefined when unset or not permitted. */
function readEnv(name: string): string | undefined {
  try {
    return Deno.env.get(name);
  } catch {
    return undefined;
  }
}

let isalLoaded: Crc32cBackend | null | undefined;
let isalCalls: Deno.DynamicLibrary<typeof isalSymbols>["symbols"] | undefined;
let isalError = "";

/** Returns the libisal2 backend, or null when the library cannot be loaded (see `isalLoadError`). */
export function isalBackend(): Crc32cBackend | null {
  if (isalLoaded !== undefined) return isalLoaded;
  const path = readEnv("RRL_LIBISAL") || "libisal.so.2";
  try {
    const { symbols } = Deno.dlopen(path, isalSymbols);
    isalCalls = symbols;
    isalLoaded = {
      name: "isal",
      update(crc: number, bytes: Uint8Array): number {
        const length = bytes.length;
        if (length === 0) return crc >>> 0;
        if (length > crc32cLengthMax) {
          throw new RangeError(
            `Cannot checksum ${length} bytes in one call: split the input below 2 GiB`,
          );
        }
        return (symbols.crc32_iscsi(bytes, length, ~crc >>> 0) ^ -1) >>> 0;
      },
      updateAt(crc: number, baseAddress: number, offset: number, length: number): number {
        checkSpan(baseAddress, offset, length);
        let raw = ~crc;
        // An unaligned head goes through the js kernel up to the next page, so that the
        // isal call starts on a cached page pointer.
        const head = Math.min((pageBytes - (offset % pageBytes)) % pageBytes, length);
        if (head !== 0) {
          raw = jsRaw(raw, addressView(baseAddress, offset + head), offset, offset + head);
        }
        const start = offset + head, rest = length - head;
        if (rest === 0) return (raw ^ -1) >>> 0;
        const pointer = pagePointer(baseAddress, start);
        if (pointer !== null) {
          return (symbols.crc32_iscsi_ptr(pointer, rest, raw >>> 0) ^ -1) >>> 0;
        }
        // Beyond 1 GiB from the base: pass a number for "usize", which Deno accepts at run
        // time (its types say bigint) on its slower, allocating call path.
        const at = symbols.crc32_iscsi_at as unknown as (a: number, n: number, c: number) => number;
        return (at(baseAddress + start, rest, raw >>> 0) ^ -1) >>> 0;
      },
    };
  } catch (error) {
    isalError = `${path} could not be loaded (${
      error instanceof Error ? error.message : String(error)
    }): install libisal2, set RRL_LIBISAL, or allow FFI with --allow-ffi`;
    isalLoaded = null;
  }
  return isalLoaded;
}

/** Why the isal backend is unavailable, or "" when it loaded (or was never tried). */
export function isalLoadError(): string {
  return isalError;
}

/** Picks the backend from `RRL_CRC32C`; throws when a named backend is unusable. */
function selectBackend(): Crc32cBackend {
  const wanted = readEnv("RRL_CRC32C") ?? "";
  if (wanted === "js") return jsBackend;
  if (wanted === "isal") {
    const isal = isalBackend();
    if (isal === null) throw new Error(`Cannot use RRL_CRC32C=isal: ${isalError}`);
    return isal;
  }
  if (wanted !== "") {
    throw new RangeError(`Cannot use RRL_CRC32C=${wanted}: pass "isal", "js" or leave it unset`);
  }
  return isalBackend() ?? jsBackend;
}

const active: Crc32cBackend = selectBackend();

/** Name of the backend the functions below use, for `doctor` and benchmark output. */
export function crc32cBackend(): Crc32cBackendName {
  return active.name;
}

/** Returns the CRC32C of `bytes`. */
export function crc32c(bytes: Uint8Array): number {
  return active.update(0, bytes);
}

/** Continues a CRC32C: `crc32cUpdate(crc32c(a), b) === crc32c(a ‖ b)`. */
export function crc32cUpdate(crc: number, bytes: Uint8Array): number {
  return active.update(crc, bytes);
}

/**
 * Returns the CRC32C of `length` bytes at `baseAddress + offset`, where `baseAddress` is
 * `Number(Deno.UnsafePointer.value(ptr))` of registered memory owned elsewhere. Caches are
 * made on first use: the `js` backend keeps one view per base address, the `isal` backend
 * one pointer object per 4096-byte page offset and checksums an unaligned head with the
 * `js` kernel. Offsets beyond 1 GiB from the base take a slower FFI path that allocates.
 */
export function crc32cAt(baseAddress: number, offset: number, length: number): number {
  return active.updateAt(0, baseAddress, offset, length);
}

/**
 * Returns the CRC32C of `length` bytes of `view` at `offset` with the `js` kernel,
 * whichever backend is active: for short fields such as a record's 56 bytes, where an FFI
 * call costs more than the table loop. RangeError when the span is outside `view`.
 */
export function crc32cView(view: DataView, offset: number, length: number): number {
  if (!(offset >= 0 && length >= 0 && offset + length <= view.byteLength)) {
    throw new RangeError(
      `Cannot checksum ${length} bytes at offset ${offset} of a ${view.byteLength}-byte view`,
    );
  }
  return (jsRawView(-1, view, offset, length) ^ -1) >>> 0;
}

/**
 * CRC32C over spans of one region (a ring) for the hot path: the page pointers (isal) or
 * the byte view (js) are made once here, and {@linkcode RegionCrc.int32At} takes and
 * returns small integers only, so no tier of V8 boxes a number per call (a CRC at or
 * above 2^31 returned as a number would be one heap number per log).
 */
export class RegionCrc {
  readonly #pointers: Deno.PointerObject[] = [];
  readonly #bytes: Uint8Array;
  readonly #length: number;

  /** `length` bytes at `baseAddress` (registered memory owned elsewhere, up to 1 GiB). */
  constructor(baseAddress: number, length: number) {
    checkSpan(baseAddress, 0, length);
    if (length < 1 || length > pagePointersMax * pageBytes) {
      throw new RangeError(`Cannot checksum a region of ${length} bytes: 1 B to 1 GiB`);
    }
    this.#length = length;
    const base = Deno.UnsafePointer.create(BigInt(baseAddress))!;
    this.#bytes = new Uint8Array(Deno.UnsafePointerView.getArrayBuffer(base, length));
    if (active.name === "isal") {
      for (let offset = 0; offset < length; offset += pageBytes) {
        this.#pointers.push(Deno.UnsafePointer.create(BigInt(baseAddress + offset))!);
      }
    }
  }

  /**
   * The CRC32C of `length` bytes at `offset` as a signed 32-bit integer: `>>> 0` gives the
   * value {@linkcode crc32cAt} returns. Spans that start on a page go to isal when it is
   * the active backend; others run the js kernel.
   */
  int32At(offset: number, length: number): number {
    if (
      !(offset >= 0 && length >= 0 && offset + length <= this.#length) ||
      (offset | 0) !== offset || (length | 0) !== length
    ) {
      throw new RangeError(
        `Cannot checksum ${length} bytes at offset ${offset} of a ${this.#length}-byte region`,
      );
    }
    if (length === 0) return 0;
    if (this.#pointers.length === 0 || offset % pageBytes !== 0) {
      return jsRaw(-1, this.#bytes, offset, offset + length) ^ -1;
    }
    return isalCalls!.crc32_iscsi_i32(this.#pointers[offset / pageBytes], length, -1) ^ -1;
  }
}

/**
 * The CRC32C of `length` bytes of `view` at `offset` as a signed 32-bit integer (the bits
 * of {@linkcode crc32cView}'s result), for hot paths that compare it with `getInt32`.
 */
export function crc32cViewInt32(view: DataView, offset: number, length: number): number {
  if (!(offset >= 0 && length >= 0 && offset + length <= view.byteLength)) {
    throw new RangeError(
      `Cannot checksum ${length} bytes at offset ${offset} of a ${view.byteLength}-byte view`,
    );
  }
  return jsRawView(-1, view, offset, length) ^ -1;
}
