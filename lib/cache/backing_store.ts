/**
 * The backing store the write cache destages to: a regular file (created and reserved with
 * `posix_fallocate(3)`) or a block device, addressed in 4096-byte blocks by LBA, written
 * with positional `pwrite(2)` and made durable with `fdatasync(2)`.
 *
 * A block device is sized with `lseek(fd, 0, SEEK_END)`. The unit tests exercise regular
 * files only (a block device needs root and a loop device); the block-device path was
 * checked by hand on a loop device.
 *
 * @example
 * ```ts
 * import { BackingStore } from "./backing_store.ts";
 * using store = BackingStore.open({ path: "/tmp/store.img", capacityBlocks: 256, create: true });
 * store.write(7, new Uint8Array(4096).fill(1));
 * store.sync(); // the destage persistence point
 * ```
 *
 * @module
 */
import { ERRNO } from "../../ffi/errno.ts";
import { errno, libc, O_CLOEXEC, O_CREAT, O_RDWR } from "../../ffi/libc.ts";
import { ResourceError } from "../verbs/errors.ts";
import { BackingStoreError } from "./backing_store_error.ts";
import { allocateFile, fileBytesOf, openFd, syncParentDirectory } from "./fs_kind.ts";
import { blockBytes } from "../block.ts";

/** Largest capacity, in blocks (4 PiB), so every byte offset is a safe integer. */
export const capacityBlocksMax = 2 ** 40;
/** Most `pwrite`/`pread` calls one transfer may take (short transfers and EINTR retries). */
export const ioCallsMax = 1024;

/** Options of {@linkcode BackingStore.open}. */
export interface BackingStoreOptions {
  /** A regular file or a block device. */
  path: string;
  /** Blocks the store exposes, 1 to 2^40; the file or device must hold them. */
  capacityBlocks: number;
  /** Create the file if missing and grow a smaller one to the capacity; default false. */
  create?: boolean;
}

/** A block store over a file or a block device; see the module documentation. */
export class BackingStore implements Disposable {
  /** The file or device. */
  readonly path: string;
  /** Blocks addressable: LBAs 0 to `capacityBlocks - 1`. */
  readonly capacityBlocks: number;
  /** What `path` is. */
  readonly kind: "file" | "block-device";
  #fd: number;
  #closed = false;

  private constructor(
    path: string,
    fd: number,
    capacityBlocks: number,
    kind: BackingStore["kind"],
  ) {
    this.path = path;
    this.#fd = fd;
    this.capacityBlocks = capacityBlocks;
    this.kind = kind;
  }

  /**
   * Opens (or with `create`, creates and sizes) a backing store. A file smaller than the
   * capacity is refused unless `create`; a larger one is used up to the capacity.
   */
  static open(options: BackingStoreOptions): BackingStore {
    const { path, capacityBlocks, create = false } = options;
    if (typeof path !== "string" || path.length === 0 || path.includes("\0")) {
      throw new TypeError(`Cannot open backing store ${JSON.stringify(path)}: pass a path`);
    }
    if (
      !Number.isSafeInteger(capacityBlocks) || capacityBlocks < 1 ||
      capacityBlocks > capacityBlocksMax
    ) {
      throw new RangeError(
        `Cannot use a capacity of ${capacityBlocks} blocks: pass an integer from 1 to 2^40`,
      );
    }
    const info = statOrUndefined(path);
    const kind = info?.isBlockDevice ? "block-device" : "file";
    if (info && !info.isFile && !info.isBlockDevice) {
      throw new TypeError(
        `Cannot use ${path} as a backing store: pass a regular file or a block device`,
      );
    }
    if (!info && !create) {
      throw new Deno.errors.NotFound(
        `Cannot open backing store ${path}: no such file; pass create: true`,
      );
    }
    const fd = openFd(path, O_RDWR | O_CLOEXEC | (create && kind === "file" ? O_CREAT : 0));
    if (fd < 0) {
      throw new BackingStoreError({
        call: "open",
        path,
        errno: -fd,
        detail: "check the path and permissions",
      });
    }
    try {
      const want = capacityBlocks * blockBytes;
      const have = fileBytesOf(fd, path);
      if (have < want) {
        if (!create || kind === "block-device") {
          throw new RangeError(
            `Cannot open ${path} with ${capacityBlocks} blocks: it holds ${have} bytes, ` +
              `${want} needed; pass a capacity ≤ ${Math.floor(have / blockBytes)} blocks` +
              (kind === "file" ? " or create: true to grow it" : ""),
          );
        }
        allocateFile(fd, want, path);
        if (!info) syncParentDirectory(path);
      }
      return new BackingStore(path, fd, capacityBlocks, kind);
    } catch (error) {
      libc.symbols.close(fd);
      throw error;
    }
  }

  /**
   * Writes whole blocks `bytes` (a multiple of 4096 bytes) at `lba`; not durable until sync.
   * BackingStoreError naming the LBA and the errno when `pwrite(2)` fails.
   */
  write(lba: number, bytes: Uint8Array): void {
    const blocks = this.#check(lba, bytes.byteLength, "write");
    this.#transfer(
      "pwrite",
      lba,
      blocks,
      (done, left, at) =>
        libc.symbols.pwrite_buffer(this.#fd, bytes.subarray(done), BigInt(left), at),
    );
  }

  /** Writes `length` bytes (whole blocks) at memory `address` (e.g. the data ring) to `lba`. */
  writeFrom(lba: number, address: number, length: number): void {
    if (!Number.isSafeInteger(address) || address <= 0) {
      throw new RangeError(`Cannot write from address ${address}: pass a mapped address`);
    }
    const blocks = this.#check(lba, length, "write");
    this.#transfer(
      "pwrite",
      lba,
      blocks,
      (done, left, at) =>
        libc.symbols.pwrite(
          this.#fd,
          Deno.UnsafePointer.create(BigInt(address + done)),
          BigInt(left),
          at,
        ),
    );
  }

  /** Reads whole blocks at `lba` into `into` (a multiple of 4096 bytes). */
  read(lba: number, into: Uint8Array): void {
    const blocks = this.#check(lba, into.byteLength, "read");
    this.#transfer(
      "pread",
      lba,
      blocks,
      (done, left, at) =>
        libc.symbols.pread_buffer(this.#fd, into.subarray(done), BigInt(left), at),
    );
  }

  /**
   * Persistence point of a destage: `fdatasync(2)`: every write before it is durable.
   * BackingStoreError when it fails (the writes since the last sync may be lost).
   */
  sync(): void {
    this.#checkOpen();
    if (libc.symbols.fdatasync(this.#fd) !== 0) {
      throw new BackingStoreError({
        call: "fdatasync",
        path: this.path,
        errno: errno(),
        detail: "earlier writes may be lost; do not advance destagedSeq, check the device",
      });
    }
  }

  /** Closes the file or device; idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    libc.symbols.close(this.#fd);
  }

  /** Same as {@linkcode close}. */
  [Symbol.dispose](): void {
    this.close();
  }

  /** Validates a transfer of `length` bytes at `lba` and returns its block count. */
  #check(lba: number, length: number, what: string): number {
    this.#checkOpen();
    if (!Number.isSafeInteger(length) || length <= 0 || length % blockBytes !== 0) {
      throw new RangeError(
        `Cannot ${what} ${length} bytes: pass a positive multiple of ${blockBytes}`,
      );
    }
    const blocks = length / blockBytes;
    if (!Number.isSafeInteger(lba) || lba < 0 || lba + blocks > this.capacityBlocks) {
      throw new RangeError(
        `Cannot ${what} ${blocks} blocks at LBA ${lba}: pass lba ≥ 0 with lba + blocks ≤ ` +
          `${this.capacityBlocks} (the capacity of ${this.path})`,
      );
    }
    return blocks;
  }

  /** Calls `step` until all bytes moved: bounded by {@linkcode ioCallsMax}, retries EINTR. */
  #transfer(
    call: "pwrite" | "pread",
    lba: number,
    blocks: number,
    step: (done: number, left: number, at: bigint) => number | bigint,
  ): void {
    const length = blocks * blockBytes;
    let done = 0;
    for (let calls = 0; calls < ioCallsMax && done < length; calls++) {
      const n = Number(step(done, length - done, BigInt(lba * blockBytes + done)));
      if (n > 0) done += n;
      else if (n < 0 && errno() === ERRNO.EINTR) continue;
      else throw ioError(call, n < 0 ? errno() : 0, this.path, lba, blocks, done);
    }
    if (done < length) {
      throw ioError(call, ERRNO.EIO, this.path, lba, blocks, done);
    }
  }

  #checkOpen(): void {
    if (this.#closed) throw new ResourceError(`BackingStore ${this.path} is closed`);
  }
}

function statOrUndefined(path: string): Deno.FileInfo | undefined {
  try {
    return Deno.statSync(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return undefined;
    throw error;
  }
}

const ioAdvice: Record<number, string> = {
  [ERRNO.ENOSPC]: "the file system is full; free space",
  [ERRNO.EIO]: "the device failed; check dmesg and the device",
  [ERRNO.EROFS]: "the file system is read-only; remount it read-write",
  [ERRNO.EFBIG]: "the file would exceed the file size limit; lower the capacity",
  [ERRNO.EDQUOT]: "the disk quota is exhausted; raise it or free space",
};

function ioError(
  call: string,
  code: number,
  path: string,
  lba: number,
  blocks: number,
  done: number,
): BackingStoreError {
  const what = code === 0 ? `${call} moved 0 bytes (end of file); ` : "";
  const advice = ioAdvice[code] ?? "check the device and the file";
  return new BackingStoreError({
    call,
    path,
    errno: code,
    lba,
    detail: `${what}${blocks} blocks, ${done} bytes done: ${advice}`,
  });
}
