/**
 * Which file system holds the write cache (`statfs(2)`'s `f_type`), whether a file maps
 * with `MAP_SYNC` (DAX), what to tell a user whose `ibv_reg_mr` failed on it, and the few
 * file-descriptor steps the cache and the backing store share (open, size, lock, allocate,
 * sync the directory).
 *
 * Registering a `MAP_SHARED` file mapping for RDMA takes a long-term pin
 * (`FOLL_LONGTERM`). Linux refuses it for writable page-cache files that need dirty
 * tracking (ext4, xfs, btrfs, 9p, overlayfs, nfs: `EFAULT`, since 6.5) and for fs-DAX
 * mappings (`EOPNOTSUPP`, unless the MR is on-demand paging); it allows shmem (tmpfs,
 * `/dev/shm`), hugetlbfs and device-DAX.
 *
 * @example
 * ```ts
 * import { fileSystemOf, registrationAdvice } from "./fs_kind.ts";
 * const fs = fileSystemOf("/dev/shm");
 * console.log(fs, registrationAdvice(fs));
 * ```
 *
 * @module
 */
import { ERRNO } from "../../ffi/errno.ts";
import {
  errno,
  libc,
  LOCK_EX,
  LOCK_NB,
  MAP_SHARED,
  MAP_SHARED_VALIDATE,
  MAP_SYNC,
  O_CLOEXEC,
  O_DIRECTORY,
  O_RDONLY,
  PROT_READ,
  PROT_WRITE,
  SEEK_END,
  statfsLayout,
} from "../../ffi/libc.ts";
import { verbsError } from "../verbs/errors.ts";

/** `statfs(2)` `f_type` magic numbers (`<linux/magic.h>`) by the name this module reports. */
export const fileSystemMagics: Readonly<Record<string, number>> = Object.freeze({
  tmpfs: 0x01021994,
  hugetlbfs: 0x958458f6,
  ramfs: 0x858458f6,
  ext4: 0xef53, // ext2 and ext3 share it
  xfs: 0x58465342,
  btrfs: 0x9123683e,
  "9p": 0x01021997,
  overlayfs: 0x794c7630,
  nfs: 0x6969,
  fuse: 0x65735546,
  f2fs: 0xf2f52010,
  zfs: 0x2fc12fc1,
});

/** File systems whose `MAP_SHARED` mappings Linux lets RDMA pin long-term. */
export const pinnableFileSystems: readonly string[] = ["tmpfs", "hugetlbfs", "ramfs"];

const namesByMagic = new Map<number, string>(
  Object.entries(fileSystemMagics).map(([name, magic]) => [magic, name]),
);
const fTypeField = statfsLayout.field("f_type");

/** Returns the name for an `f_type` value, or `unknown(0x…)`. */
export function fileSystemName(magic: number): string {
  return namesByMagic.get(magic) ?? `unknown(0x${magic.toString(16)})`;
}

function magicOf(buf: Uint8Array): number {
  const view = new DataView(buf.buffer);
  return Number(BigInt.asUintN(32, fTypeField.getBig(view)));
}

/**
 * Names the file system holding `path` (an existing file or directory) by `statfs(2)`,
 * e.g. `"tmpfs"` for `/dev/shm`; VerbsError naming `statfs` and the errno otherwise.
 */
export function fileSystemOf(path: string): string {
  if (typeof path !== "string" || path.length === 0 || path.includes("\0")) {
    throw new TypeError(`Cannot statfs ${JSON.stringify(path)}: pass a non-empty path`);
  }
  const buf = new Uint8Array(new ArrayBuffer(statfsLayout.size));
  const cPath = new TextEncoder().encode(path + "\0");
  if (libc.symbols.statfs(cPath, buf) !== 0) {
    throw verbsError("statfs", errno(), `${path}: pass an existing file or directory`);
  }
  return fileSystemName(magicOf(buf));
}

/** Names the file system holding the open file `fd` by `fstatfs(2)`. */
export function fileSystemOfFd(fd: number): string {
  const buf = new Uint8Array(new ArrayBuffer(statfsLayout.size));
  if (libc.symbols.fstatfs(fd, buf) !== 0) {
    throw verbsError("fstatfs", errno(), `fd ${fd}: pass an open file descriptor`);
  }
  return fileSystemName(magicOf(buf));
}

/** True when `ptr` is `MAP_FAILED` ((void *) -1) or null. */
export function mapFailed(ptr: Deno.PointerValue): boolean {
  if (ptr === null) return true;
  return BigInt(Deno.UnsafePointer.value(ptr)) === 0xffff_ffff_ffff_ffffn;
}

/** A shared mapping of a file and whether it has `MAP_SYNC` semantics. */
export interface SharedMapping {
  ptr: Deno.PointerObject;
  length: number;
  /** Mapped with `MAP_SHARED_VALIDATE | MAP_SYNC`: a DAX file, stores reach media directly. */
  mapSync: boolean;
}

/**
 * Maps `length` bytes of `fd` read-write and shared: with `MAP_SYNC` when the kernel
 * accepts it (DAX), else plain `MAP_SHARED` (`mmap(2)`; MAP_SYNC fails with `EOPNOTSUPP`
 * on a non-DAX file, `EINVAL` on kernels before 4.15).
 */
export function mapShared(fd: number, length: number): SharedMapping {
  if (!Number.isSafeInteger(length) || length <= 0) {
    throw new RangeError(`Cannot map ${length} bytes: pass a positive length`);
  }
  const prot = PROT_READ | PROT_WRITE;
  const synced = libc.symbols.mmap(
    null,
    BigInt(length),
    prot,
    MAP_SHARED_VALIDATE | MAP_SYNC,
    fd,
    0n,
  );
  if (!mapFailed(synced)) return { ptr: synced!, length, mapSync: true };
  const code = errno();
  if (code !== ERRNO.EOPNOTSUPP && code !== ERRNO.EINVAL) {
    throw verbsError("mmap", code, `${length} bytes of fd ${fd} with MAP_SYNC`);
  }
  const ptr = libc.symbols.mmap(null, BigInt(length), prot, MAP_SHARED, fd, 0n);
  if (mapFailed(ptr)) {
    throw verbsError(
      "mmap",
      errno(),
      `${length} bytes of fd ${fd} shared; check the file size and the address space limit`,
    );
  }
  return { ptr: ptr!, length, mapSync: false };
}

/**
 * Whether `length` bytes of `fd` map with `MAP_SHARED_VALIDATE | MAP_SYNC`, which succeeds
 * only on a DAX file; probes with a mapping it removes at once.
 */
export function daxCapable(fd: number, length: number): boolean {
  const mapping = mapShared(fd, length);
  libc.symbols.munmap(mapping.ptr, BigInt(length));
  return mapping.mapSync;
}

/**
 * One line to append to a failed `ibv_reg_mr` of a write cache on `fsName` (as returned
 * by {@linkcode fileSystemOf}); `dax` says the file mapped with `MAP_SYNC`.
 */
export function registrationAdvice(fsName: string, options: { dax?: boolean } = {}): string {
  if (options.dax) {
    return `${fsName} is mapped with DAX: Linux refuses long-term pins of fs-DAX mappings ` +
      "(EOPNOTSUPP); register it on demand (IBV_ACCESS_ON_DEMAND) or put the write cache on " +
      "device-DAX, /dev/shm (tmpfs) or hugetlbfs";
  }
  if (pinnableFileSystems.includes(fsName)) {
    return `${fsName} mappings can be pinned for RDMA; if registration still fails, raise ` +
      "the locked memory limit (ulimit -l) or free memory";
  }
  return "put the write cache on /dev/shm (tmpfs), hugetlbfs or device-DAX; " +
    `${fsName} page-cache files cannot be pinned long-term for RDMA (EFAULT on Linux 6.5+)`;
}

/** Opens `path` with `open(2)` flags; returns the fd, or minus the errno (the caller names it). */
export function openFd(path: string, flags: number, mode = 0o644): number {
  const fd = libc.symbols.open(new TextEncoder().encode(path + "\0"), flags, mode);
  return fd >= 0 ? fd : -errno();
}

/** Size of the open file or block device `fd` in bytes, by `lseek(fd, 0, SEEK_END)`. */
export function fileBytesOf(fd: number, path: string): number {
  const end = libc.symbols.lseek(fd, 0n, SEEK_END);
  if (end < 0n) throw verbsError("lseek", errno(), `${path}: cannot learn its size`);
  return Number(end);
}

/**
 * Takes an exclusive `flock(2)` on `fd` without waiting; false when another open file
 * holds it (released when that file closes, also when its process dies).
 */
export function lockExclusive(fd: number, path: string): boolean {
  if (libc.symbols.flock(fd, LOCK_EX | LOCK_NB) === 0) return true;
  const code = errno();
  if (code === ERRNO.EAGAIN) return false;
  throw verbsError("flock", code, `${path}: cannot lock it`);
}

/**
 * Reserves `bytes` for `fd` with `posix_fallocate(3)` so mapped stores never meet a full
 * file system (SIGBUS); falls back to `ftruncate(2)` (sparse) where allocation is not
 * supported.
 */
export function allocateFile(fd: number, bytes: number, path: string): void {
  const code = libc.symbols.posix_fallocate(fd, 0n, BigInt(bytes));
  if (code === 0) return;
  if (code !== ERRNO.EOPNOTSUPP && code !== ERRNO.EINVAL) {
    throw verbsError(
      "posix_fallocate",
      code,
      `${path}: cannot reserve ${bytes} bytes; free space on its file system or ask for less`,
    );
  }
  if (libc.symbols.ftruncate(fd, BigInt(bytes)) !== 0) {
    throw verbsError("ftruncate", errno(), `${path}: cannot size it to ${bytes} bytes`);
  }
}

/** Makes a new directory entry durable: `fdatasync(2)` on the directory holding `path`. */
export function syncParentDirectory(path: string): void {
  const slash = path.lastIndexOf("/");
  const dir = slash < 0 ? "." : slash === 0 ? "/" : path.slice(0, slash);
  const fd = openFd(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) throw verbsError("open", -fd, `directory ${dir} of ${path}`);
  const failed = libc.symbols.fdatasync(fd) !== 0 ? errno() : 0;
  libc.symbols.close(fd);
  if (failed) throw verbsError("fdatasync", failed, `directory ${dir}: the new file may vanish`);
}
