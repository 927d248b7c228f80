/**
 * Linux x86-64 `errno` values (`errno(3)`, `<asm-generic/errno-base.h>`, `<asm-generic/errno.h>`)
 * and the number→name map used to render verbs failures. Aliases (`EWOULDBLOCK` = `EAGAIN`,
 * `ENOTSUP` = `EOPNOTSUPP`, `EDEADLOCK` = `EDEADLK`) are left out so each number has one name.
 * `tests/unit/abi_test.ts` proves each value against `<errno.h>` with gcc.
 *
 * @example
 * ```ts
 * import { ERRNO, errnoName } from "./errno.ts";
 *
 * errnoName(95); // "EOPNOTSUPP"
 * ERRNO.ENOMEM; // 12
 * ```
 *
 * @module
 */

/** `errno` values by C name, as on Linux x86-64. */
export const ERRNO = {
  EPERM: 1,
  ENOENT: 2,
  ESRCH: 3,
  EINTR: 4,
  EIO: 5,
  ENXIO: 6,
  E2BIG: 7,
  ENOEXEC: 8,
  EBADF: 9,
  ECHILD: 10,
  EAGAIN: 11,
  ENOMEM: 12,
  EACCES: 13,
  EFAULT: 14,
  EBUSY: 16,
  EEXIST: 17,
  EXDEV: 18,
  ENODEV: 19,
  ENOTDIR: 20,
  EISDIR: 21,
  EINVAL: 22,
  ENFILE: 23,
  EMFILE: 24,
  ENOTTY: 25,
  EFBIG: 27,
  ENOSPC: 28,
  ESPIPE: 29,
  EROFS: 30,
  EMLINK: 31,
  EPIPE: 32,
  EDOM: 33,
  ERANGE: 34,
  EDEADLK: 35,
  ENAMETOOLONG: 36,
  ENOLCK: 37,
  ENOSYS: 38,
  ENOTEMPTY: 39,
  ELOOP: 40,
  ENOMSG: 42,
  EIDRM: 43,
  ENODATA: 61,
  ETIME: 62,
  EPROTO: 71,
  EBADMSG: 74,
  EOVERFLOW: 75,
  ENOTSOCK: 88,
  EMSGSIZE: 90,
  EPROTONOSUPPORT: 93,
  EOPNOTSUPP: 95,
  EAFNOSUPPORT: 97,
  EADDRINUSE: 98,
  EADDRNOTAVAIL: 99,
  ENETDOWN: 100,
  ENETUNREACH: 101,
  ECONNABORTED: 103,
  ECONNRESET: 104,
  ENOBUFS: 105,
  EISCONN: 106,
  ENOTCONN: 107,
  ETIMEDOUT: 110,
  ECONNREFUSED: 111,
  EHOSTDOWN: 112,
  EHOSTUNREACH: 113,
  EALREADY: 114,
  EINPROGRESS: 115,
  ESTALE: 116,
  EREMOTEIO: 121,
  EDQUOT: 122,
  ECANCELED: 125,
  EOWNERDEAD: 130,
  ENOTRECOVERABLE: 131,
} as const;

/** A C `errno` name known to {@linkcode ERRNO}. */
export type ErrnoName = keyof typeof ERRNO;

/** `errno` names by value: the inverse of {@linkcode ERRNO}. */
export const errnoNames: ReadonlyMap<number, ErrnoName> = new Map(
  (Object.entries(ERRNO) as [ErrnoName, number][]).map(([name, value]) => [value, name]),
);

/** Returns the C name of an `errno` value, or `"errno <n>"` for one not in the table. */
export function errnoName(errno: number): string {
  return errnoNames.get(errno) ?? `errno ${errno}`;
}
