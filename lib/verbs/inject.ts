/**
 * Verbs error-path fault injection (librpma's technique). `RRL_VERBS_FAIL=[VERB@]N:ERRNO`
 * makes one verbs call of this process fail with that errno, without calling the verb:
 * - `N:ERRNO` (or `control@N:ERRNO`): the Nth control-path call, counted from 1 over open,
 *   query, alloc, register, create and modify;
 * - `ibv_post_send@N:ERRNO`, and likewise `ibv_post_recv`, `ibv_poll_cq`,
 *   `ibv_req_notify_cq`, `ibv_get_cq_event`: the Nth call of that hot-path verb, each
 *   counted apart;
 * - `count`: nothing fails, every count is kept (a clean run that tells a sweep how many
 *   calls of each kind there are).
 *
 * Destroy verbs are not injected (a skipped destroy would be a leak the sweep could not
 * tell from a real one). With no plan, a hot-path verb pays one read of {@linkcode armed}.
 * In-process sweeps re-plan with {@linkcode planVerbsFailure}.
 *
 * @module
 */
import { ERRNO, type ErrnoName } from "../../ffi/errno.ts";
import { setErrno } from "../../ffi/libc.ts";

/** Kinds of counted calls: the control path, then each hot-path verb. */
export const countedVerbs = [
  "control",
  "ibv_post_send",
  "ibv_post_recv",
  "ibv_poll_cq",
  "ibv_req_notify_cq",
  "ibv_get_cq_event",
] as const;
/** One kind of counted call. */
export type CountedVerb = typeof countedVerbs[number];

/** Indexes into the counters, for the hot path (no string compare there). */
export const HOT = {
  POST_SEND: 1,
  POST_RECV: 2,
  POLL_CQ: 3,
  REQ_NOTIFY_CQ: 4,
  GET_CQ_EVENT: 5,
} as const;

interface Plan {
  verb: number;
  at: number;
  errno: number;
}

/** Largest N a plan takes (a bound on the counters, far above any run's calls). */
const atMax = 2 ** 31 - 1;

function parsePlan(text: string | undefined): Plan | undefined {
  if (!text) return undefined;
  if (text === "count") return { verb: 0, at: 0, errno: 0 };
  const match = /^(?:([a-z_]+)@)?(\d+):([A-Z0-9]+)$/.exec(text);
  const verb = countedVerbs.indexOf((match?.[1] ?? "control") as CountedVerb);
  const errno = match && ERRNO[match[3] as ErrnoName];
  const at = Number(match?.[2]);
  if (!match || verb < 0 || !errno || !(at >= 1 && at <= atMax)) {
    throw new RangeError(
      `RRL_VERBS_FAIL='${text}' is not [VERB@]N:ERRNO or 'count' (e.g. 3:ENOMEM, ` +
        `ibv_post_send@5:EIO; VERB one of ${countedVerbs.join(", ")}; N from 1)`,
    );
  }
  return { verb, at, errno };
}

let plan = parsePlan(Deno.env.get("RRL_VERBS_FAIL"));
const calls = new Float64Array(countedVerbs.length);
/** True while a plan is set: hot-path verbs then count their calls (read, never assign). */
export let armed = plan !== undefined;

/**
 * Replaces the plan (text as in `RRL_VERBS_FAIL`; undefined or "" turns injection off)
 * and zeroes every counter. For sweeps that run many plans in one process.
 */
export function planVerbsFailure(text: string | undefined): void {
  plan = parsePlan(text);
  armed = plan !== undefined;
  calls.fill(0);
}

function injected(verb: number): number {
  const n = ++calls[verb];
  if (plan !== undefined && plan.verb === verb && n === plan.at) {
    setErrno(plan.errno);
    return plan.errno;
  }
  return 0;
}

/**
 * Counts one control-path verbs call; returns the errno to fail it with (and sets the
 * thread's errno), or 0 to make the real call.
 */
export function injectedErrno(): number {
  return injected(0);
}

/** Like {@linkcode injectedErrno} for a hot-path verb (`HOT.*`); call it only when {@linkcode armed}. */
export function injectedHotErrno(verb: number): number {
  return injected(verb);
}

/** How many control-path verbs calls this process made (the sweep's upper bound for N). */
export function verbsCallCount(): number {
  return calls[0];
}

/** Calls of every counted kind since the process started or the last plan. */
export function verbsCallCounts(): Record<CountedVerb, number> {
  return Object.fromEntries(countedVerbs.map((v, i) => [v, calls[i]])) as Record<
    CountedVerb,
    number
  >;
}

/** True when a failure was planned and has been injected. */
export function faultInjected(): boolean {
  return plan !== undefined && plan.at > 0 && calls[plan.verb] >= plan.at;
}
