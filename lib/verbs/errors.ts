/**
 * Errors of the verbs boundary: a failed verb ({@linkcode VerbsError}), a verb the kernel
 * or device does not support ({@linkcode UnsupportedError}) and a failed work completion
 * ({@linkcode CompletionError}).
 *
 * @module
 */
import { ERRNO, errnoName } from "../../ffi/errno.ts";
import { strerror } from "../../ffi/libc.ts";

/** A verb failed: names the verb, the errno (name and text) and the arguments that matter. */
export class VerbsError extends Error {
  /** The error's name, for messages and `instanceof`-free checks. */
  override name = "VerbsError";
  /** The verb, e.g. `ibv_reg_mr`. */
  readonly verb: string;
  /** The errno value (0 when the verb gave none). */
  readonly errno: number;
  /** The errno's name, e.g. `ENOMEM`. */
  readonly errnoName: string;

  /** `detail` says which arguments and, where known, what to do. */
  constructor(verb: string, errno: number, detail = "") {
    const text = errno ? `${errnoName(errno)} (${strerror(errno)})` : "failed (no errno)";
    super(`${verb} failed: ${text}${detail ? `: ${detail}` : ""}`);
    this.verb = verb;
    this.errno = errno;
    this.errnoName = errno ? errnoName(errno) : "";
  }
}

/** The kernel or device does not support this verb or capability (`EOPNOTSUPP`). */
export class UnsupportedError extends VerbsError {
  /** The error's name, for messages and `instanceof`-free checks. */
  override name = "UnsupportedError";
}

/** Makes the right error type for a failed verb. */
export function verbsError(verb: string, errno: number, detail = ""): VerbsError {
  return errno === ERRNO.EOPNOTSUPP || errno === ERRNO.ENOSYS
    ? new UnsupportedError(verb, errno, detail)
    : new VerbsError(verb, errno, detail);
}

/** A work completion with a status other than `IBV_WC_SUCCESS`. */
export class CompletionError extends Error {
  /** The error's name, for messages and `instanceof`-free checks. */
  override name = "CompletionError";
  /** `enum ibv_wc_status` value. */
  readonly status: number;
  /** `ibv_wc_status_str(status)`, e.g. `remote access error`. */
  readonly statusText: string;
  /** The device's vendor error code. */
  readonly vendorErr: number;
  /** The work request id. */
  readonly wrId: number;
  /** The QP number the completion belongs to. */
  readonly qpNum: number;

  /** Builds the error from the completion's fields. */
  constructor(
    fields: { status: number; statusText: string; vendorErr: number; wrId: number; qpNum: number },
    context = "",
  ) {
    super(
      `Work completion failed: ${fields.statusText} (status ${fields.status}, vendor error ` +
        `0x${fields.vendorErr.toString(16)}, wr_id ${fields.wrId}, QP ${fields.qpNum})` +
        (context ? `: ${context}` : ""),
    );
    this.status = fields.status;
    this.statusText = fields.statusText;
    this.vendorErr = fields.vendorErr;
    this.wrId = fields.wrId;
    this.qpNum = fields.qpNum;
  }
}

/** Use of a verbs object after `close()`, or closing a parent with live children. */
export class ResourceError extends Error {
  /** The error's name, for messages and `instanceof`-free checks. */
  override name = "ResourceError";
}

/** Formats a byte count for messages: `64 MiB`, `4 KiB`, `100 B`. */
export function formatBytes(bytes: number): string {
  if (!Number.isFinite(bytes)) return "unlimited";
  for (const [unit, size] of [["GiB", 2 ** 30], ["MiB", 2 ** 20], ["KiB", 2 ** 10]] as const) {
    if (bytes >= size && bytes % (size / 1024) === 0) {
      return `${+(bytes / size).toFixed(2)} ${unit}`;
    }
  }
  return `${bytes} B`;
}
