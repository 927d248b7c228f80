/**
 * Memory for a data ring: page-aligned, outside V8's heap, registered as one MR. Anonymous
 * here; the write cache maps a file the same way (`lib/cache/`).
 *
 * @module
 */
import {
  errno,
  libc,
  MAP_ANONYMOUS,
  MAP_PRIVATE,
  pageSize,
  PROT_READ,
  PROT_WRITE,
} from "../../ffi/libc.ts";
import { verbsError } from "../verbs/errors.ts";
import { checkRingBytes } from "../log/ring.ts";

/** A mapped region: its address, a byte view over it, and how to unmap it. */
export interface RingMemory extends Disposable {
  /** Start address (page-aligned). */
  readonly address: number;
  /** Length in bytes. */
  readonly length: number;
  /** The bytes (valid until close). */
  readonly bytes: Uint8Array;
  /** Unmaps; the views must not be used afterwards. Idempotent. */
  close(): void;
}

/** Wraps a mapping made elsewhere (e.g. a file) as ring memory; `unmap` runs on close. */
export function mappedMemory(
  ptr: Deno.PointerObject,
  length: number,
  unmap: () => void,
): RingMemory {
  const bytes = new Uint8Array(Deno.UnsafePointerView.getArrayBuffer(ptr, length));
  let closed = false;
  const close = () => {
    if (closed) return;
    closed = true;
    unmap();
  };
  return {
    address: Number(Deno.UnsafePointer.value(ptr)),
    length,
    bytes,
    close,
    [Symbol.dispose]: close,
  };
}

/** Anonymous, zeroed, page-aligned memory of `length` bytes (a valid ring size). */
export function anonymousMemory(length: number): RingMemory {
  checkRingBytes(length);
  if (length % pageSize !== 0) throw new RangeError(`${length} is not a multiple of the page size`);
  const ptr = libc.symbols.mmap(
    null,
    BigInt(length),
    PROT_READ | PROT_WRITE,
    MAP_PRIVATE | MAP_ANONYMOUS,
    -1,
    0n,
  );
  if (
    !ptr || Number(Deno.UnsafePointer.value(ptr)) === -1 ||
    BigInt(Deno.UnsafePointer.value(ptr)) === 0xffff_ffff_ffff_ffffn
  ) {
    throw verbsError("mmap", errno(), `${length} bytes of anonymous memory`);
  }
  return mappedMemory(ptr, length, () => libc.symbols.munmap(ptr, BigInt(length)));
}
