/**
 * Seeded property runs that print how to replay a failure.
 *
 * Every run gets its own u32 seed derived from a base seed. The base seed comes from
 * `RRL_SEED` (decimal or `0x` hex) or is drawn at random; `RRL_RUNS` overrides the number
 * of runs. A failing run reports its own seed, so `RRL_SEED=<seed> RRL_RUNS=1` replays
 * exactly that case.
 *
 * @example
 * ```ts
 * import { forAllSeeds } from "./property.ts";
 * Deno.test("int stays in range", () => {
 *   forAllSeeds("int in range", (prng) => {
 *     const v = prng.int(-3, 3);
 *     if (v < -3 || v > 3) throw new Error(`out of range: ${v}`);
 *   }, { runs: 1000 });
 * });
 * ```
 *
 * @module
 */

import { deriveSeed, Prng } from "../prng.ts";

/** Upper bound on runs per property, so a typo in `RRL_RUNS` cannot hang a test. */
export const propertyRunsMax = 10_000_000;

/** Options for {@linkcode forAllSeeds}. */
export interface PropertyOptions {
  /** Runs when `RRL_RUNS` is unset (default 100). */
  runs?: number;
  /** Base seed when `RRL_SEED` is unset (default: random); `RRL_SEED` wins, for replays. */
  seed?: number;
}

/** Reads an environment variable, or undefined when unset or not permitted. */
function readEnv(name: string): string | undefined {
  try {
    return Deno.env.get(name);
  } catch {
    return undefined;
  }
}

/** Parses a u32 written in decimal or `0x` hex; RangeError naming `source` otherwise. */
function parseU32(text: string, source: string): number {
  const value = /^0x[0-9a-f]{1,8}$/i.test(text)
    ? parseInt(text.slice(2), 16)
    : /^[0-9]{1,10}$/.test(text)
    ? parseInt(text, 10)
    : NaN;
  if (!(value >= 0 && value <= 0xffff_ffff)) {
    throw new RangeError(`Cannot use ${source}=${text}: pass a u32 in decimal or 0x hex`);
  }
  return value;
}

/** Returns the base seed: `RRL_SEED` when set, else `fallback`, else a fresh random u32. */
export function propertySeed(fallback?: number): number {
  const text = readEnv("RRL_SEED");
  if (text !== undefined && text !== "") return parseU32(text, "RRL_SEED");
  return fallback ?? crypto.getRandomValues(new Uint32Array(1))[0];
}

/** Formats a seed the way `RRL_SEED` accepts it. */
export function formatSeed(seed: number): string {
  return `0x${seed.toString(16).padStart(8, "0")}`;
}

/** Returns the number of runs: `RRL_RUNS` when set, else `defaultRuns`. */
function propertyRuns(defaultRuns: number): number {
  const text = readEnv("RRL_RUNS");
  const runs = text !== undefined && text !== "" ? parseU32(text, "RRL_RUNS") : defaultRuns;
  if (!Number.isInteger(runs) || runs < 1 || runs > propertyRunsMax) {
    throw new RangeError(`Cannot run a property ${runs} times: pass 1..${propertyRunsMax}`);
  }
  return runs;
}

/**
 * Runs `fn` once per derived seed and, on the first failure, throws an Error whose message
 * names the property, the run, the seed and the command line that replays it (the original
 * error is its `cause`).
 */
export function forAllSeeds(
  name: string,
  fn: (prng: Prng, run: number) => void,
  options: PropertyOptions = {},
): void {
  const baseSeed = propertySeed(options.seed);
  const runs = propertyRuns(options.runs ?? 100);
  for (let run = 0; run < runs; run++) {
    const seed = deriveSeed(baseSeed, run);
    try {
      fn(new Prng(seed), run);
    } catch (cause) {
      const detail = cause instanceof Error ? cause.message : String(cause);
      const replay = `RRL_SEED=${formatSeed(seed)} RRL_RUNS=1`;
      console.error(`property "${name}" failed: replay with ${replay}`);
      throw new Error(
        `Property "${name}" failed at run ${run} of ${runs} (base seed ${
          formatSeed(baseSeed)
        }): ${detail}. Replay with ${replay} deno test -A`,
        { cause },
      );
    }
  }
}
