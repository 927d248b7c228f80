/**
 * Seeded, host-side fuzzing of the decoders in {@link ./targets.ts}. Input `i` of a run is
 * drawn from its own generator, seeded with `deriveSeed(seed, i)`, for target
 * `targets[i % targets.length]`: fully random bytes, a valid encoding, or a valid encoding
 * after one to three mutations (bit flips, boundary bytes, field values near their limits,
 * truncation, extension, splicing), its CRC or length prefix then recomputed or left stale.
 * A decoder that throws is a CRASH, one slower than `hangMs` a HANG, an accepted input that
 * does not round-trip a MISMATCH; each failure carries the seed and index that regenerate it.
 *
 * @example
 * ```ts
 * import { runFuzz } from "./fuzz.ts";
 * const report = await runFuzz({ count: 1000, seed: 42 });
 * console.log(report.crashes + report.hangs + report.mismatches); // 0
 * ```
 *
 * @module
 */

import { deriveSeed, Prng } from "../prng.ts";
import { formatSeed } from "../testing/property.ts";
import { createTargets, type FuzzOutcome, type FuzzTarget } from "./targets.ts";

/** Most inputs one run may make. */
export const fuzzInputsMax = 1_000_000_000;
/** Default per-input time bound: a decode slower than this is a HANG. */
export const hangMsDefault = 100;
/** Target inputs between two health checks of a target that has one. */
export const checkEveryInputs = 1000;
/** Failures kept in a report (all are counted). */
export const failuresMax = 20;
const boundaryBytes = [0x00, 0xff, 0x7f, 0x80];
const shiftMax = 7;
/** Runs an input must be slow on to count as a HANG. */
const hangRuns = 3;
const timedOut = Symbol("timed out");

/** Options for {@linkcode runFuzz}. */
export interface FuzzOptions {
  /** Targets, fed round-robin (default: a fresh {@linkcode createTargets}). */
  targets?: readonly FuzzTarget[];
  /** Inputs to make, 1..{@linkcode fuzzInputsMax}. */
  count: number;
  /** Base seed, a u32. */
  seed: number;
  /** Index of the first input (default 0): `{start: i, count: 1}` replays input `i`. */
  start?: number;
  /** Stop early after this long (the report says `complete: false`). */
  timeBudgetMs?: number;
  /** Per-input time bound (default {@linkcode hangMsDefault}). */
  hangMs?: number;
  /** Called every 1000 inputs and at the end with inputs done and the count. */
  onProgress?: (done: number, count: number) => void;
}

/** One input regenerated from (seed, index). */
export interface FuzzInput {
  /** The target it is for. */
  target: FuzzTarget;
  /** Seed of its own generator, `deriveSeed(seed, index)`. */
  inputSeed: number;
  /** How it was made: `random`, `valid`, or the mutations (`field:seq+reseal`). */
  mode: string;
  /** The bytes, placed at `byteOffset` of their buffer (so decoders must honour it). */
  bytes: Uint8Array;
}

/** A CRASH, HANG or MISMATCH with what replays it. */
export interface FuzzFailure {
  /** What went wrong. */
  kind: "crash" | "hang" | "mismatch";
  /** Target name. */
  target: string;
  /** Base seed of the run. */
  seed: number;
  /** Input index: `--replay <seed>:<index>` regenerates it. */
  index: number;
  /** How the input was made. */
  mode: string;
  /** The input, hex. */
  bytesHex: string;
  /** The exception, the time, or the mismatch. */
  error: string;
}

/** Per-target counts. */
export interface FuzzTargetStats {
  /** Inputs fed. */
  inputs: number;
  /** Inputs accepted (and round-tripped). */
  accepted: number;
  /** Refusals by reason name. */
  refusedByReason: Record<string, number>;
  /** Failures of each kind. */
  crashes: number;
  /** Inputs over the time bound. */
  hangs: number;
  /** Accepted inputs that did not round-trip. */
  mismatches: number;
  /** Time spent making and running its inputs, in milliseconds. */
  elapsedMs: number;
}

/** The result of {@linkcode runFuzz}. */
export interface FuzzReport {
  /** Base seed. */
  seed: number;
  /** Inputs asked for. */
  count: number;
  /** Inputs fed (less than `count` when the time budget ran out). */
  inputs: number;
  /** False when the time budget stopped the run early. */
  complete: boolean;
  /** Inputs accepted, all targets. */
  accepted: number;
  /** Refusals by reason, per target. */
  refusedByReason: Record<string, Record<string, number>>;
  /** CRASHes, all targets (health checks included). */
  crashes: number;
  /** HANGs, all targets. */
  hangs: number;
  /** MISMATCHes, all targets. */
  mismatches: number;
  /** Per-target counts. */
  targets: Record<string, FuzzTargetStats>;
  /** The first failure, if any. */
  firstFailure?: FuzzFailure;
  /** The first {@linkcode failuresMax} failures. */
  failures: FuzzFailure[];
  /** Wall time of the run, in milliseconds. */
  elapsedMs: number;
}

/** Bytes as lower-case hex. */
export function toHex(bytes: Uint8Array): string {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** Random bytes: empty, an exact size, one off it, or any length up to the maximum. */
function randomBytes(target: FuzzTarget, prng: Prng): Uint8Array {
  const exact = prng.pick(target.sizes);
  const lengths = [0, exact, exact - 1, exact + 1, prng.int(0, target.maxBytes)];
  const length = Math.min(target.maxBytes, Math.max(0, prng.pick(lengths)));
  return prng.fill(new Uint8Array(length));
}

type Mutator = (bytes: Uint8Array, prng: Prng, target: FuzzTarget) => [Uint8Array, string];

const mutators: Mutator[] = [
  (b, prng) => {
    const flips = b.length === 0 ? 0 : prng.int(1, 4);
    for (let i = 0; i < flips; i++) b[prng.int(0, b.length - 1)] ^= 1 << prng.int(0, 7);
    return [b, "bitflip"];
  },
  (b, prng) => {
    const sets = b.length === 0 ? 0 : prng.int(1, 3);
    for (let i = 0; i < sets; i++) b[prng.int(0, b.length - 1)] = prng.pick(boundaryBytes);
    return [b, "boundary"];
  },
  (b, prng, target) => {
    const fits = target.fields.filter((f) => f.offset + f.bytes <= b.length);
    if (fits.length === 0) return [b, "field:none"];
    const field = prng.pick(fits);
    let value = prng.chance(0.8) ? prng.pick(field.interesting) : BigInt(prng.u32());
    for (let i = 0; i < field.bytes; i++, value >>= 8n) b[field.offset + i] = Number(value & 0xffn);
    return [b, `field:${field.name}`];
  },
  (b, prng) => [b.slice(0, prng.int(0, Math.max(0, b.length - 1))), "truncate"],
  (b, prng, target) => {
    const room = Math.max(0, Math.min(64, target.maxBytes - b.length));
    const tail = new Uint8Array(prng.int(0, room));
    if (prng.chance(0.5)) prng.fill(tail);
    const out = new Uint8Array(b.length + tail.length);
    out.set(b);
    out.set(tail, b.length);
    return [out, "extend"];
  },
  (b, prng, target) => {
    const other = target.generate(prng);
    const cut = prng.int(0, Math.min(b.length, other.length));
    const out = new Uint8Array(Math.max(b.length, other.length));
    out.set(b.subarray(0, cut));
    out.set(other.subarray(cut), cut);
    return [out, "splice"];
  },
];

/** A valid encoding (10%), random bytes (20%), or a mutated valid encoding (70%). */
function makeInput(target: FuzzTarget, prng: Prng): [Uint8Array, string] {
  const roll = prng.int(0, 9);
  if (roll < 2) return [randomBytes(target, prng), "random"];
  let bytes = target.generate(prng);
  if (roll === 2) return [bytes, "valid"];
  const names: string[] = [];
  for (let steps = prng.int(1, 3); steps > 0; steps--) {
    const [next, name] = prng.pick(mutators)(bytes, prng, target);
    bytes = next.length > target.maxBytes ? next.slice(0, target.maxBytes) : next;
    names.push(name);
  }
  // Resealing half of the time lets mutations past the CRC or length check to deeper ones.
  if (target.reseal !== undefined && prng.chance(0.5)) {
    target.reseal(bytes);
    names.push("reseal");
  }
  return [bytes, names.join("+")];
}

/** Regenerates input `index` of a run with base `seed` over `targets`, exactly. */
export function fuzzInput(targets: readonly FuzzTarget[], seed: number, index: number): FuzzInput {
  const inputSeed = deriveSeed(seed, index);
  const prng = new Prng(inputSeed);
  const target = targets[index % targets.length];
  const [made, mode] = makeInput(target, prng);
  // Placed after random bytes in its buffer: a decoder must honour byteOffset and offsets.
  const shift = prng.int(0, shiftMax);
  const buffer = new Uint8Array(shift + made.length);
  prng.fill(buffer.subarray(0, shift));
  const bytes = buffer.subarray(shift);
  bytes.set(made);
  return { target, inputSeed, mode, bytes };
}

/** Races `promise` against a timer of `ms`; the timer is always cleared. */
async function withDeadline<T>(promise: Promise<T>, ms: number): Promise<T | typeof timedOut> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const deadline = new Promise<typeof timedOut>((resolve) => {
    timer = setTimeout(() => resolve(timedOut), ms);
  });
  try {
    return await Promise.race([promise, deadline]);
  } finally {
    clearTimeout(timer);
  }
}

/** What came of one input: the target's outcome, or a CRASH or HANG. */
type Verdict = FuzzOutcome | { kind: "crash" | "hang"; error: string };

/** Runs one input once: its outcome (or `timedOut`), or what it threw, and how long it took. */
async function runOnce(
  target: FuzzTarget,
  bytes: Uint8Array,
  hangMs: number,
): Promise<{ outcome?: FuzzOutcome | typeof timedOut; thrown?: string; took: number }> {
  const t0 = performance.now();
  try {
    const result = target.run(bytes);
    const outcome = result instanceof Promise ? await withDeadline(result, hangMs) : result;
    return { outcome, took: performance.now() - t0 };
  } catch (error) {
    return { thrown: describeError(error), took: performance.now() - t0 };
  }
}

/** Runs `bytes` through `target` and judges it: a throw is a CRASH, slowness a HANG. */
async function judge(target: FuzzTarget, bytes: Uint8Array, hangMs: number): Promise<Verdict> {
  const first = await runOnce(target, bytes, hangMs);
  if (first.thrown !== undefined) return { kind: "crash", error: first.thrown };
  if (first.outcome === timedOut) return { kind: "hang", error: `no outcome within ${hangMs} ms` };
  // A stall of the whole process (GC, a busy CPU) makes any input slow once; a decoder
  // that hangs is slow every time, so a HANG must be slow on each of `hangRuns` runs.
  let took = first.took;
  for (let runs = 1; runs < hangRuns && took > hangMs; runs++) {
    took = (await runOnce(target, bytes, hangMs)).took;
  }
  if (took > hangMs) {
    return {
      kind: "hang",
      error: `took ${took.toFixed(1)} ms on each of ${hangRuns} runs (bound ${hangMs} ms)`,
    };
  }
  return first.outcome!;
}

function emptyStats(): FuzzTargetStats {
  return {
    inputs: 0,
    accepted: 0,
    refusedByReason: {},
    crashes: 0,
    hangs: 0,
    mismatches: 0,
    elapsedMs: 0,
  };
}

function describeError(error: unknown): string {
  return error instanceof Error ? `${error.name}: ${error.message}` : `thrown ${String(error)}`;
}

function checkOptions(o: FuzzOptions, targets: readonly FuzzTarget[]): void {
  const names = new Set(targets.map((t) => t.name));
  if (targets.length === 0 || names.size !== targets.length) {
    throw new RangeError("Cannot fuzz: pass at least one target, each name once");
  }
  const start = o.start ?? 0;
  if (!Number.isSafeInteger(o.count) || o.count < 1 || o.count > fuzzInputsMax) {
    throw new RangeError(`Cannot fuzz ${o.count} inputs: pass 1..${fuzzInputsMax}`);
  }
  if (!Number.isSafeInteger(start) || start < 0 || start + o.count > 2 ** 32) {
    throw new RangeError(`Cannot start at input ${start}: pass 0.., with start + count ≤ 2^32`);
  }
  if (!(o.hangMs === undefined || (o.hangMs > 0 && o.hangMs <= 60_000))) {
    throw new RangeError(`Cannot bound an input by ${o.hangMs} ms: pass 1..60000`);
  }
}

/** Feeds `count` seeded inputs to the targets and counts what each decoder made of them. */
export async function runFuzz(options: FuzzOptions): Promise<FuzzReport> {
  const targets = options.targets ?? createTargets();
  checkOptions(options, targets);
  const { count, seed, onProgress } = options;
  const hangMs = options.hangMs ?? hangMsDefault;
  const budgetMs = options.timeBudgetMs ?? Infinity;
  const start = options.start ?? 0;
  const began = performance.now();
  const stats: Record<string, FuzzTargetStats> = Object.fromEntries(
    targets.map((t) => [t.name, emptyStats()]),
  );
  const failures: FuzzFailure[] = [];
  const fail = (f: FuzzFailure) => {
    stats[f.target][f.kind === "crash" ? "crashes" : f.kind === "hang" ? "hangs" : "mismatches"]++;
    if (failures.length < failuresMax) failures.push(f);
  };
  const check = async (target: FuzzTarget, index: number) => {
    const failure = { target: target.name, seed, index, mode: "health check", bytesHex: "" };
    try {
      const problem = await withDeadline(target.check!(), 10 * hangMs);
      if (problem === timedOut) fail({ ...failure, kind: "hang", error: "check did not finish" });
      else if (problem !== undefined) fail({ ...failure, kind: "crash", error: problem });
    } catch (error) {
      fail({ ...failure, kind: "crash", error: `check threw ${describeError(error)}` });
    }
  };
  let index = start;
  for (; index < start + count; index++) {
    if (performance.now() - began > budgetMs) break;
    const t0 = performance.now();
    let input: FuzzInput;
    try {
      input = fuzzInput(targets, seed, index);
    } catch (cause) {
      // A generator that throws is a bug of the fuzz target, not of the decoder: stop loudly.
      const where = `${targets[index % targets.length].name} input ${replayKey({ seed, index })}`;
      throw new Error(`Cannot generate ${where}: ${describeError(cause)}`, { cause });
    }
    const { target, mode, bytes } = input;
    const s = stats[target.name];
    s.inputs++;
    const verdict = await judge(target, bytes, hangMs);
    if (verdict.kind === "accepted") s.accepted++;
    else if (verdict.kind === "refused") {
      s.refusedByReason[verdict.reason] = (s.refusedByReason[verdict.reason] ?? 0) + 1;
    } else fail({ target: target.name, seed, index, mode, bytesHex: toHex(bytes), ...verdict });
    if (target.check !== undefined && s.inputs % checkEveryInputs === 0) await check(target, index);
    s.elapsedMs += performance.now() - t0;
    if (onProgress !== undefined && (index - start + 1) % 1000 === 0) {
      onProgress(index - start + 1, count);
      await new Promise((resolve) => setTimeout(resolve, 0)); // let a progress bar draw
    }
  }
  for (const t of targets) if (t.check !== undefined) await check(t, index - 1);
  onProgress?.(index - start, count);
  const sum = (key: "accepted" | "crashes" | "hangs" | "mismatches") =>
    Object.values(stats).reduce((n, s) => n + s[key], 0);
  return {
    seed,
    count,
    inputs: index - start,
    complete: index === start + count,
    accepted: sum("accepted"),
    refusedByReason: Object.fromEntries(
      targets.map((t) => [t.name, stats[t.name].refusedByReason]),
    ),
    crashes: sum("crashes"),
    hangs: sum("hangs"),
    mismatches: sum("mismatches"),
    targets: stats,
    firstFailure: failures[0],
    failures,
    elapsedMs: performance.now() - began,
  };
}

/** `seed:index` as `--replay` takes it. */
export function replayKey(failure: Pick<FuzzFailure, "seed" | "index">): string {
  return `${formatSeed(failure.seed)}:${failure.index}`;
}
