/**
 * The error of the backing store's file I/O: a failed `open(2)`, `pwrite(2)`, `pread(2)` or
 * `fdatasync(2)` on the file or block device the write cache de-stages to. It names the
 * call, the file, the LBA (when a transfer failed) and the errno.
 *
 * @module
 */
import { errnoName } from "../../ffi/errno.ts";
import { strerror } from "../../ffi/libc.ts";

/** What failed, for {@linkcode BackingStoreError}. */
export interface BackingStoreFailure {
  /** The system call, e.g. `pwrite`. */
  call: string;
  /** The backing store's path. */
  path: string;
  /** The errno value (0: the call gave none, e.g. a 0-byte transfer at the end of the file). */
  errno: number;
  /** First LBA of the failed transfer; absent for calls on the whole file. */
  lba?: number;
  /** What else to say: the transfer's size, what to do. */
  detail?: string;
}

/** A backing-store call failed; see the module documentation. */
export class BackingStoreError extends Error {
  override name = "BackingStoreError";
  /** The system call, e.g. `pwrite`. */
  readonly call: string;
  /** The backing store's path. */
  readonly path: string;
  /** First LBA of the failed transfer, if a transfer failed. */
  readonly lba: number | undefined;
  /** The errno value (0 when the call gave none). */
  readonly errno: number;
  /** The errno's name, e.g. `ENOSPC` (empty when the call gave none). */
  readonly errnoName: string;

  /** Builds the message from `failure`. */
  constructor(failure: BackingStoreFailure) {
    const { call, path, errno, lba, detail } = failure;
    const text = errno ? `${errnoName(errno)} (${strerror(errno)})` : "failed (no errno)";
    const where = lba === undefined ? path : `LBA ${lba} of ${path}`;
    super(`Backing store ${call} failed: ${text} at ${where}${detail ? `: ${detail}` : ""}`);
    this.call = call;
    this.path = path;
    this.lba = lba;
    this.errno = errno;
    this.errnoName = errno ? errnoName(errno) : "";
  }
}
