/**
 * Verbs error-path fault injection (librpma's technique): `RRL_VERBS_FAIL=N:ERRNO` makes
 * the Nth control-path verbs call of this process (counted from 1: open, query, alloc,
 * register, create, modify) fail with that errno, without calling the verb. Destroy
 * verbs are not counted (a skipped destroy would be a leak the sweep could not tell from
 * a real one), nor are the inline hot-path verbs.
 *
 * @module
 */
import { ERRNO, type ErrnoName } from "../../ffi/errno.ts";
import { setErrno } from "../../ffi/libc.ts";

interface Plan {
  at: number;
  errno: number;
}

function parsePlan(text: string | undefined): Plan | undefined {
  if (!text) return undefined;
  const match = /^(\d+):([A-Z0-9]+)$/.exec(text);
  const errno = match && ERRNO[match[2] as ErrnoName];
  if (!match || !errno || Number(match[1]) < 1) {
    throw new RangeError(`RRL_VERBS_FAIL='${text}' is not N:ERRNO (e.g. 3:ENOMEM, N from 1)`);
  }
  return { at: Number(match[1]), errno };
}

const plan = parsePlan(Deno.env.get("RRL_VERBS_FAIL"));
let calls = 0;

/**
 * Counts one control-path verbs call; returns the errno to fail it with (and sets the
 * thread's errno), or 0 to make the real call.
 */
export function injectedErrno(): number {
  calls++;
  if (plan && calls === plan.at) {
    setErrno(plan.errno);
    return plan.errno;
  }
  return 0;
}

/** How many control-path verbs calls this process made (the sweep's upper bound for N). */
export function verbsCallCount(): number {
  return calls;
}

/** True when a failure was planned and has been injected. */
export function faultInjected(): boolean {
  return plan !== undefined && calls >= plan.at;
}
