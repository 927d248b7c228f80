/**
 * The few libc calls verbs work needs: errno, mmap/msync for file-backed memory, file
 * descriptors for those mappings, positional I/O for the backing store, rlimits and
 * `poll` for completion channels.
 *
 * @module
 */
import { array, struct } from "./layout.ts";

const symbols = {
  __errno_location: { parameters: [], result: "pointer" }, // int *__errno_location(void)
  strerror: { parameters: ["i32"], result: "pointer" }, // char *strerror(int errnum)
  getpagesize: { parameters: [], result: "i32" }, // int getpagesize(void)
  getrlimit: {
    parameters: [
      "i32", // int resource
      "buffer", // struct rlimit *rlim
    ],
    result: "i32",
  },
  mmap: {
    parameters: [
      "pointer", // void *addr
      "usize", // size_t length
      "i32", // int prot
      "i32", // int flags
      "i32", // int fd
      "i64", // off_t offset
    ],
    result: "pointer",
  },
  munmap: { parameters: ["pointer", "usize"], result: "i32" }, // int munmap(void *addr, size_t length)
  msync: { parameters: ["pointer", "usize", "i32"], result: "i32" }, // int msync(void *addr, size_t length, int flags)
  open: { parameters: ["buffer", "i32", "u32"], result: "i32" }, // int open(const char *path, int flags, mode_t mode)
  close: { parameters: ["i32"], result: "i32" }, // int close(int fd)
  ftruncate: { parameters: ["i32", "i64"], result: "i32" }, // int ftruncate(int fd, off_t length)
  fdatasync: { parameters: ["i32"], result: "i32" }, // int fdatasync(int fd)
  pwrite: { parameters: ["i32", "pointer", "usize", "i64"], result: "isize" }, // ssize_t pwrite(int fd, const void *buf, size_t n, off_t off)
  pread: { parameters: ["i32", "pointer", "usize", "i64"], result: "isize" }, // ssize_t pread(int fd, void *buf, size_t n, off_t off)
  poll: {
    parameters: [
      "buffer", // struct pollfd *fds
      "u64", // nfds_t nfds
      "i32", // int timeout (ms)
    ],
    result: "i32",
    nonblocking: true, // waits on Deno's blocking pool; errno is unreliable afterwards
  },
  poll_sync: {
    name: "poll",
    parameters: ["buffer", "u64", "i32"], // struct pollfd *fds, nfds_t nfds, int timeout (ms)
    result: "i32",
  },
  fflush: { parameters: ["pointer"], result: "i32" }, // int fflush(FILE *stream); NULL: every stream
  fcntl: { parameters: ["i32", "i32", "i32"], result: "i32" }, // int fcntl(int fd, int cmd, int arg)
  pwrite_buffer: {
    name: "pwrite",
    parameters: ["i32", "buffer", "usize", "i64"], // int fd, const void *buf, size_t n, off_t off
    result: "isize",
  },
  pread_buffer: {
    name: "pread",
    parameters: ["i32", "buffer", "usize", "i64"], // int fd, void *buf, size_t n, off_t off
    result: "isize",
  },
  lseek: { parameters: ["i32", "i64", "i32"], result: "i64" }, // off_t lseek(int fd, off_t offset, int whence)
  posix_fallocate: { parameters: ["i32", "i64", "i64"], result: "i32" }, // int posix_fallocate(int fd, off_t offset, off_t len): returns the error, not errno
  statfs: { parameters: ["buffer", "buffer"], result: "i32" }, // int statfs(const char *path, struct statfs *buf)
  fstatfs: { parameters: ["i32", "buffer"], result: "i32" }, // int fstatfs(int fd, struct statfs *buf)
  flock: { parameters: ["i32", "i32"], result: "i32" }, // int flock(int fd, int operation)
  clock_gettime: { parameters: ["i32", "buffer"], result: "i32" }, // int clock_gettime(clockid_t clk, struct timespec *tp)
  getrusage: { parameters: ["i32", "buffer"], result: "i32" }, // int getrusage(int who, struct rusage *usage)
} as const satisfies Deno.ForeignLibraryInterface;

/** libc, loaded once. */
export const libc: Deno.DynamicLibrary<typeof symbols> = Deno.dlopen(
  Deno.env.get("RRL_LIBC") ?? "libc.so.6",
  symbols,
);

// errno is thread-local: this is the JS thread's, where every synchronous call runs.
const errnoCell = new Int32Array(
  Deno.UnsafePointerView.getArrayBuffer(libc.symbols.__errno_location()!, 4),
);

/**
 * The JS thread's `errno`. Read it by a synchronous call right after the failing
 * synchronous call: a `nonblocking` call runs on another thread.
 */
export function errno(): number {
  return errnoCell[0];
}

/** Sets the JS thread's `errno` (fault injection makes a verb look as if it failed). */
export function setErrno(value: number): void {
  errnoCell[0] = value;
}

/** libc's message for an errno value. */
export function strerror(code: number): string {
  const ptr = libc.symbols.strerror(code);
  return ptr ? Deno.UnsafePointerView.getCString(ptr) : `errno ${code}`;
}

/** The page size (4096 on x86-64). */
export const pageSize: number = libc.symbols.getpagesize();

/** `RLIMIT_MEMLOCK` in bytes (`Infinity` when unlimited): what `ulimit -l` caps. */
export function lockedMemoryLimit(): number {
  const buf = new BigUint64Array(new ArrayBuffer(16));
  const RLIMIT_MEMLOCK = 8;
  if (libc.symbols.getrlimit(RLIMIT_MEMLOCK, buf) !== 0) return NaN;
  return buf[0] === 0xffff_ffff_ffff_ffffn ? Infinity : Number(buf[0]);
}

/** mmap/msync/open constants for Linux x86-64. */
export const PROT_READ = 1, PROT_WRITE = 2;
/** mmap flags. */
export const MAP_SHARED = 0x01,
  MAP_PRIVATE = 0x02,
  MAP_ANONYMOUS = 0x20,
  MAP_SHARED_VALIDATE = 0x03,
  MAP_SYNC = 0x80000,
  MAP_POPULATE = 0x8000;
/** msync flags. */
export const MS_SYNC = 4;
/** open flags. */
export const O_RDONLY = 0, O_RDWR = 2, O_CREAT = 0o100, O_CLOEXEC = 0o2000000;
/** fcntl commands and flags. */
export const F_GETFL = 3, F_SETFL = 4, O_NONBLOCK = 0o4000;
/** poll events. */
export const POLLIN = 0x001;
/** More open flags (`<fcntl.h>`, x86-64). */
export const O_EXCL = 0o200, O_TRUNC = 0o1000, O_DIRECTORY = 0o200000;
/** lseek whence. */
export const SEEK_END = 2;
/** `clock_gettime(2)` clocks (`linux/time.h`). */
export const CLOCK_MONOTONIC = 1;
/** `getrusage(2)`: the calling process, or the calling thread. */
export const RUSAGE_SELF = 0, RUSAGE_THREAD = 1;
/** flock operations. */
export const LOCK_EX = 2, LOCK_NB = 4;
/** `struct statfs` (`<sys/vfs.h>`, x86-64 glibc): `f_type` is the file system's magic number. */
export const statfsLayout = struct("statfs", [
  ["f_type", "i64"],
  ["f_bsize", "i64"],
  ["f_blocks", "u64"],
  ["f_bfree", "u64"],
  ["f_bavail", "u64"],
  ["f_files", "u64"],
  ["f_ffree", "u64"],
  ["f_fsid", array("i32", 2)],
  ["f_namelen", "i64"],
  ["f_frsize", "i64"],
  ["f_flags", "i64"],
  ["f_spare", array("i64", 4)],
]);
