/**
 * Calling a control-path verb: fault injection first, then the call, then errno read at
 * once (same thread, nothing in between) into a typed error.
 *
 * @module
 */
import { errno } from "../../ffi/libc.ts";
import { verbsError } from "./errors.ts";
import { injectedErrno } from "./inject.ts";

/** Calls a verb returning a pointer (NULL + errno on failure). */
export function callPointer(
  verb: string,
  detail: (errno: number) => string,
  fn: () => Deno.PointerValue,
): Deno.PointerObject {
  const injected = injectedErrno();
  const ptr = injected ? null : fn();
  if (ptr === null) {
    const code = injected || errno();
    throw verbsError(verb, code, detail(code));
  }
  return ptr;
}

/**
 * Calls a verb returning `int`: 0 on success; rdma-core returns either the errno value
 * itself or -1 with errno set.
 */
export function callInt(verb: string, detail: (errno: number) => string, fn: () => number): void {
  const injected = injectedErrno();
  const rc = injected ? injected : fn();
  if (rc !== 0) {
    const code = rc > 0 ? rc : errno();
    throw verbsError(verb, code, detail(code));
  }
}

/** Calls a destroy verb (never injected: a skipped destroy would be a leak). */
export function callDestroy(verb: string, detail: () => string, fn: () => number): void {
  const rc = fn();
  if (rc !== 0) {
    const code = rc > 0 ? rc : errno();
    throw verbsError(verb, code, detail());
  }
}
