/**
 * A small seeded pseudo-random generator for property tests, fuzzers and fault campaigns.
 *
 * The generator is sfc32 (Chris Doty-Humphrey's Small Fast Counting generator, 128-bit
 * state) seeded from a u32 through splitmix32, so one seed always yields one sequence on
 * every platform. It is not cryptographic.
 *
 * @example
 * ```ts
 * import { Prng } from "./prng.ts";
 * const prng = new Prng(42);
 * const length = prng.int(1, 4096);
 * const bytes = new Uint8Array(length);
 * prng.fill(bytes);
 * ```
 *
 * @module
 */

const u32Range = 0x1_0000_0000;
/** Rejection-sampling attempts before giving up; never reached in practice (p < 2^-64). */
const rejectionAttemptsMax = 64;
/** sfc32 rounds discarded after seeding so nearby seeds diverge. */
const warmUpRounds = 12;

/** Returns the splitmix32 successor state and output of `state` (both u32). */
function splitmix32(state: number): number {
  let z = (state + 0x9e3779b9) | 0;
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
  return (z ^ (z >>> 16)) >>> 0;
}

/** Checks that `seed` is a u32 and says what to pass instead. */
function checkSeed(seed: number): void {
  if (!Number.isInteger(seed) || seed < 0 || seed >= u32Range) {
    throw new RangeError(`Cannot seed the generator with ${seed}: pass an integer 0..2^32-1`);
  }
}

/** Deterministic sfc32 generator: the same seed gives the same sequence everywhere. */
export class Prng {
  /** The u32 seed this generator was created with, for replay messages. */
  readonly seed: number;
  #a: number;
  #b: number;
  #c: number;
  #d = 1;

  /** Creates a generator from a u32 `seed` (RangeError otherwise). */
  constructor(seed: number) {
    checkSeed(seed);
    this.seed = seed;
    this.#a = splitmix32(seed);
    this.#b = splitmix32(this.#a);
    this.#c = splitmix32(this.#b);
    for (let i = 0; i < warmUpRounds; i++) this.u32();
  }

  /** Returns the next uniformly distributed u32. */
  u32(): number {
    const a = this.#a, b = this.#b, c = this.#c, d = this.#d;
    const t = (((a + b) | 0) + d) | 0;
    this.#d = (d + 1) | 0;
    this.#a = b ^ (b >>> 9);
    this.#b = (c + (c << 3)) | 0;
    this.#c = (((c << 21) | (c >>> 11)) + t) | 0;
    return t >>> 0;
  }

  /** Returns a uniform float in [0, 1) with 53 random bits. */
  float(): number {
    const hi = this.u32() >>> 5; // 27 bits
    const lo = this.u32() >>> 6; // 26 bits
    return (hi * 0x400_0000 + lo) / 2 ** 53;
  }

  /** Returns a uniform integer in [min, maxInclusive]: safe integers, min ≤ max, span ≤ 2^53. */
  int(min: number, maxInclusive: number): number {
    if (
      !Number.isSafeInteger(min) || !Number.isSafeInteger(maxInclusive) || min > maxInclusive ||
      maxInclusive - min + 1 > 2 ** 53
    ) {
      throw new RangeError(
        `Cannot draw an integer from [${min}, ${maxInclusive}]: pass safe integers, min ≤ max, ` +
          "at most 2^53 values",
      );
    }
    const span = maxInclusive - min + 1;
    if (span <= u32Range) return min + this.#below32(span);
    return min + this.#below53(span);
  }

  /** Returns true with probability `p` (0 ≤ p ≤ 1). */
  chance(p: number): boolean {
    if (!(p >= 0 && p <= 1)) throw new RangeError(`Cannot use probability ${p}: pass 0..1`);
    return this.float() < p;
  }

  /** Returns a uniformly chosen element of a non-empty `array`. */
  pick<T>(array: readonly T[]): T {
    if (array.length === 0) throw new RangeError("Cannot pick from an empty array");
    return array[this.#below32(array.length)];
  }

  /** Fills `bytes` with random bytes and returns it. */
  fill(bytes: Uint8Array): Uint8Array {
    let i = 0;
    for (; i + 4 <= bytes.length; i += 4) {
      const v = this.u32();
      bytes[i] = v;
      bytes[i + 1] = v >>> 8;
      bytes[i + 2] = v >>> 16;
      bytes[i + 3] = v >>> 24;
    }
    if (i < bytes.length) {
      let v = this.u32();
      for (; i < bytes.length; i++, v >>>= 8) bytes[i] = v;
    }
    return bytes;
  }

  /** Uniform integer in [0, span) for 1 ≤ span ≤ 2^32, by rejection (no modulo bias). */
  #below32(span: number): number {
    const limit = u32Range - (u32Range % span);
    for (let i = 0; i < rejectionAttemptsMax; i++) {
      const v = this.u32();
      if (v < limit) return v % span;
    }
    throw new Error("Prng rejection sampling did not converge: the generator is broken");
  }

  /** Uniform integer in [0, span) for 2^32 < span ≤ 2^53, by rejection. */
  #below53(span: number): number {
    const range = 2 ** 53;
    const limit = range - (range % span);
    for (let i = 0; i < rejectionAttemptsMax; i++) {
      const v = (this.u32() >>> 11) * u32Range + this.u32();
      if (v < limit) return v % span;
    }
    throw new Error("Prng rejection sampling did not converge: the generator is broken");
  }
}

/** Derives the seed of run `index` from a base seed, so each run can be replayed alone. */
export function deriveSeed(baseSeed: number, index: number): number {
  checkSeed(baseSeed);
  if (index === 0) return baseSeed;
  return splitmix32((baseSeed ^ Math.imul(index, 0x27d4eb2d)) >>> 0);
}
