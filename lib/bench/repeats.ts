/**
 * Statistics over repeated bench runs: the median of each figure, its min-max spread, and
 * the ratio of two medians. A figure a run did not report (`undefined` or `null`) is left
 * out, never counted as 0; a figure no run reported is `null`.
 *
 * @example
 * ```ts
 * import { ratioOfMedians, summarizeRuns } from "./repeats.ts";
 * const ours = summarizeRuns([{ ops: 440 }, { ops: 452 }, { ops: 431 }], ["ops"]);
 * const c = summarizeRuns([{ ops: 1700 }, { ops: 1762 }, { ops: 1690 }], ["ops"]);
 * console.log(ours.ops, ours.spread.ops, ratioOfMedians(ours.ops, c.ops)); // 440 {min 431, max 452} 0.25
 * ```
 *
 * @module
 */

/** The smallest and largest value of a figure over the repeats. */
export interface Spread {
  min: number;
  max: number;
}

/**
 * The medians of `K` figures over the repeats, and a sibling `spread` with the min-max of
 * each; a figure no run reported is `null` in both.
 */
export type RepeatSummary<K extends string> =
  & { [P in K]: number | null }
  & { spread: { [P in K]: Spread | null } };

/** A figure as a run reports it: a number, or absent. */
export type Figure = number | null | undefined;

/** The present (finite) values among `values`. */
function present(values: readonly Figure[]): number[] {
  return values.filter((v): v is number => typeof v === "number" && Number.isFinite(v));
}

/**
 * The median of the present values (the mean of the two middle ones for an even count);
 * `null` when none is present.
 */
export function median(values: readonly Figure[]): number | null {
  const xs = present(values).sort((x, y) => x - y);
  if (xs.length === 0) return null;
  const mid = xs.length >> 1;
  return xs.length % 2 === 1 ? xs[mid] : (xs[mid - 1] + xs[mid]) / 2;
}

/** The min-max spread of the present values; `null` when none is present. */
export function spread(values: readonly Figure[]): Spread | null {
  const xs = present(values);
  if (xs.length === 0) return null;
  return { min: Math.min(...xs), max: Math.max(...xs) };
}

/**
 * `numerator / denominator` of two medians; `null` when either is absent or the denominator
 * is not positive (a ratio against 0 says nothing).
 */
export function ratioOfMedians(
  numerator: number | null,
  denominator: number | null,
): number | null {
  if (numerator === null || denominator === null || !(denominator > 0)) return null;
  return numerator / denominator;
}

/** Summarizes runs figure by figure: the median of each key and its spread. */
export function summarizeRuns<K extends string>(
  runs: readonly Partial<Record<K, Figure>>[],
  keys: readonly K[],
): RepeatSummary<K> {
  const medians = {} as Record<K, number | null>;
  const spreads = {} as Record<K, Spread | null>;
  for (const key of keys) {
    const values = runs.map((run) => run[key]);
    medians[key] = median(values);
    spreads[key] = spread(values);
  }
  return { ...medians, spread: spreads } as RepeatSummary<K>;
}

/**
 * The order of an interleaved point: `ours, c, ours, c, ...`, `repeats` of each.
 * @throws {RangeError} when `repeats` is not an integer 1..100.
 */
export function interleave<T extends string>(first: T, second: T, repeats: number): T[] {
  if (!Number.isSafeInteger(repeats) || repeats < 1 || repeats > repeatsMax) {
    throw new RangeError(`Repeats must be an integer 1..${repeatsMax}, got ${repeats}`);
  }
  const order: T[] = [];
  for (let i = 0; i < repeats; i++) order.push(first, second);
  return order;
}

/** The most repeats of one point the bench accepts. */
export const repeatsMax = 100;
