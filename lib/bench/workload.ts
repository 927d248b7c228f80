/**
 * The workload generator shared by the primary CLI, the demo, the examples and the bench:
 * a size spec (`4k`, `4k,64k`, `4k:60,64k:40`), an LBA pattern (`seq`, `random`,
 * `hot:PCT`), a seeded plan that yields each op's size and LBA without allocating, and a
 * data filler whose every 4096-byte block is stamped so each log is unique and verifiable.
 *
 * @example
 * ```ts
 * import { DataFiller, parseLbaPattern, parseSizeSpec, plannedOp, WorkloadPlan } from "./workload.ts";
 * const plan = new WorkloadPlan({
 *   sizes: parseSizeSpec("4k:60,64k:40"),
 *   pattern: parseLbaPattern("hot:10"),
 *   lbaBlocks: 262_144, // 1 GiB
 *   seed: 42,
 * });
 * const filler = new DataFiller(42);
 * const ring = new Uint8Array(new ArrayBuffer(1 << 20));
 * const op = plannedOp();
 * plan.next(op);
 * filler.fill(ring, 0, op.bytes, op.seq, op.lba);
 * if (!filler.verifyFill(ring, 0, op.bytes, op.seq, op.lba)) throw new Error("corrupt");
 * ```
 *
 * @module
 */
import { deriveSeed, Prng } from "../prng.ts";
import { blockBytes } from "../block.ts";

/** Smallest write size. */
export const sizeBytesMin = blockBytes;
/** Largest write size (16 MiB). */
export const sizeBytesMax = 16 * 1024 * 1024;
/** Most distinct sizes in one spec. */
export const sizeEntriesMax = 32;
/** Largest weight of one size in a weighted spec. */
export const weightMax = 1_000_000;
/** Largest LBA space, in blocks (stamps hold 48-bit LBAs and sequence numbers). */
export const lbaBlocksMax = 2 ** 48;
/** Bytes of the seeded pattern every fill copies from. */
export const patternBytes = 1024 * 1024;
/** Bytes stamped at the start of every block: seq (u48), lba (u48), block index (u32). */
export const stampBytes = 16;

const patternBlocks = patternBytes / blockBytes;
const sizeExample = "e.g. 4k, 4k,64k,256k or 4k:60,64k:30,256k:10";

/** Sizes to draw from, with their relative weights (all 1 for a uniform mix). */
export interface SizeMix {
  /** Log sizes in bytes, each a multiple of the block size. */
  readonly sizes: readonly number[];
  /** Relative weight of each size, same order as `sizes`. */
  readonly weights: readonly number[];
}

/** Where writes land: in order, uniformly, or mostly inside a hot set at LBA 0. */
export type LbaPattern =
  | { readonly kind: "seq" }
  | { readonly kind: "random" }
  | { readonly kind: "hot"; readonly hotPercent: number; readonly hotWritesPercent: number };

/**
 * Parses a byte count with an optional binary suffix (`4096`, `64k`, `16m`, `1g`, `2t`) for
 * options such as ring sizes and LBA spaces; `what` names the option in the RangeError.
 */
export function parseBytes(token: string, what: string): number {
  const bytes = bytesOf(token.trim(), "kmgt");
  if (!(bytes >= 1)) fail(`${what} '${token}' is not a byte count ≥ 1 with a k, m, g or t suffix`);
  return bytes;
}

/** Parses one write size (`4096`, `4k`, `1m`): a multiple of 4096 in 4k..16m, else RangeError. */
export function parseSize(token: string, spec: string = token): number {
  const where = `Size '${token}' in '${spec}'`;
  const bytes = bytesOf(token, "km");
  if (Number.isNaN(bytes)) {
    fail(`${where} is not bytes with an optional k or m suffix (${sizeExample})`);
  }
  if (bytes < sizeBytesMin || bytes > sizeBytesMax) fail(`${where} is outside 4k..16m`);
  if (bytes % blockBytes !== 0) {
    fail(`${where} is not a multiple of ${blockBytes} bytes: use 4k, 8k, ...`);
  }
  return bytes;
}

/** Digits and one optional suffix from `suffixes` (powers of 1024), or NaN. */
function bytesOf(token: string, suffixes: string): number {
  const match = /^(\d{1,15})([a-z]?)$/i.exec(token);
  const power = match ? (" " + suffixes).indexOf(match[2].toLowerCase() || " ") : -1;
  const bytes = match && power >= 0 ? Number(match[1]) * 1024 ** power : NaN;
  return Number.isSafeInteger(bytes) ? bytes : NaN;
}

/** Parses a size spec: one size, a uniform mix `a,b,c`, or a weighted mix `a:60,b:40`. */
export function parseSizeSpec(spec: string): SizeMix {
  if (spec.trim() === "") fail(`The size spec is empty: pass one (${sizeExample})`);
  const tokens = spec.split(",").map((t) => t.trim());
  const n = tokens.length;
  if (n > sizeEntriesMax) fail(`Size spec '${spec}' has ${n} entries: at most ${sizeEntriesMax}`);
  const weighted = tokens.filter((t) => t.includes(":")).length;
  if (weighted !== 0 && weighted !== n) {
    fail(`Size spec '${spec}' mixes weighted and unweighted entries: weight every size or none`);
  }
  const sizes: number[] = [];
  const weights: number[] = [];
  for (const token of tokens) {
    if (token === "") fail(`Size spec '${spec}' has an empty entry: separate sizes by one comma`);
    const [sizeToken, weightToken, extra] = token.split(":");
    if (extra !== undefined) fail(`Entry '${token}' in '${spec}' has two ':': write SIZE:WEIGHT`);
    const size = parseSize(sizeToken.trim(), spec);
    if (sizes.includes(size)) fail(`Size '${sizeToken}' appears twice in '${spec}': list it once`);
    const weight = weightToken === undefined ? 1 : Number(weightToken);
    if (!(Number.isInteger(weight) && weight >= 1 && weight <= weightMax)) {
      fail(`Weight '${weightToken}' of '${token}' in '${spec}' is not an integer 1..${weightMax}`);
    }
    sizes.push(size);
    weights.push(weight);
  }
  return { sizes, weights };
}

/** Parses `seq`, `random` or `hot:PCT[:WRITES]` (PCT% of the space gets WRITES%, default 90). */
export function parseLbaPattern(spec: string): LbaPattern {
  const text = spec.trim();
  if (text === "seq" || text === "random") return { kind: text };
  const match = /^hot:([^:]*)(?::([^:]*))?$/.exec(text);
  if (!match) fail(`Unknown LBA pattern '${spec}': use seq, random or hot:PCT[:WRITES_PCT]`);
  const percent = (token: string | undefined, what: string) => {
    const value = token === undefined ? 90 : Number(token);
    if (token?.trim() === "" || !(value > 0 && value < 100)) {
      fail(`The ${what} '${token}' in '${spec}' is not a percentage above 0 and below 100`);
    }
    return value;
  };
  return {
    kind: "hot",
    hotPercent: percent(match[1], "hot-set size"),
    hotWritesPercent: percent(match[2], "share of writes"),
  };
}

/** One planned write, filled in place by {@linkcode WorkloadPlan.next}. */
export interface PlannedOp {
  /** Sequence number: 0 for the first op of the plan. */
  seq: number;
  /** Bytes to write (a multiple of 4096). */
  bytes: number;
  /** First logical block. */
  lba: number;
}

/** A zeroed {@linkcode PlannedOp} to reuse across {@linkcode WorkloadPlan.next} calls. */
export function plannedOp(): PlannedOp {
  return { seq: 0, bytes: 0, lba: 0 };
}

/** Options of {@linkcode WorkloadPlan}. */
export interface WorkloadOptions {
  /** The log sizes to draw from. */
  sizes: SizeMix;
  /** Where the writes land. */
  pattern: LbaPattern;
  /** LBA space in 4096-byte blocks (at least the largest size, at most 2^48). */
  lbaBlocks: number;
  /** u32 seed: one seed, one sequence of ops. */
  seed: number;
}

/** A seeded, allocation-free sequence of writes (size and LBA per op). */
export class WorkloadPlan {
  /** The options the plan was built from. */
  readonly options: Readonly<WorkloadOptions>;
  #prng: Prng;
  #blocks: number[];
  #cumulative: number[];
  #hotBlocks: number;
  #hotChance: number;
  #cursor = 0;
  #seq = 0;

  /** Validates the options (RangeError saying what to pass) and seeds the plan. */
  constructor(options: WorkloadOptions) {
    const { sizes, lbaBlocks } = options;
    if (sizes.sizes.length === 0 || sizes.sizes.length !== sizes.weights.length) {
      throw new RangeError("The size mix is empty or has a weight per size missing: parse a spec");
    }
    this.#blocks = sizes.sizes.map((s) => s / blockBytes);
    const largest = Math.max(...this.#blocks);
    if (!Number.isSafeInteger(lbaBlocks) || lbaBlocks < largest || lbaBlocks > lbaBlocksMax) {
      throw new RangeError(
        `An LBA space of ${lbaBlocks} blocks cannot hold the largest write (${largest} blocks): ` +
          `pass an integer from ${largest} to 2^48`,
      );
    }
    this.options = options;
    this.#prng = new Prng(options.seed);
    let sum = 0;
    this.#cumulative = sizes.weights.map((w) => (sum += w));
    const p = options.pattern;
    this.#hotBlocks = p.kind === "hot"
      ? Math.min(lbaBlocks, Math.max(largest, Math.round((lbaBlocks * p.hotPercent) / 100)))
      : lbaBlocks;
    this.#hotChance = p.kind === "hot" ? p.hotWritesPercent / 100 : 0;
  }

  /** How many ops {@linkcode next} has produced. */
  get produced(): number {
    return this.#seq;
  }

  /** Writes the next op into `out` (no allocation) and returns it. */
  next(out: PlannedOp): PlannedOp {
    const prng = this.#prng;
    const cumulative = this.#cumulative;
    let pick = 0;
    if (cumulative.length > 1) {
      const r = prng.int(0, cumulative[cumulative.length - 1] - 1);
      while (r >= cumulative[pick]) pick++;
    }
    const blocks = this.#blocks[pick];
    const space = this.options.lbaBlocks;
    const kind = this.options.pattern.kind;
    let lba: number;
    if (kind === "seq") {
      if (this.#cursor + blocks > space) this.#cursor = 0;
      lba = this.#cursor;
      this.#cursor += blocks;
    } else if (kind === "random") {
      lba = prng.int(0, space - blocks);
    } else if (prng.chance(this.#hotChance)) {
      lba = prng.int(0, this.#hotBlocks - blocks);
    } else {
      const coldFirst = this.#hotBlocks <= space - blocks ? this.#hotBlocks : 0;
      lba = prng.int(coldFirst, space - blocks);
    }
    out.seq = this.#seq++;
    out.bytes = blocks * blockBytes;
    out.lba = lba;
    return out;
  }
}

/**
 * Fills logs from a seeded 1 MiB pattern: block k of a log is pattern block
 * (start + k) mod 256, where start is a hash of (seed, seq, lba), and its first 16 bytes
 * are the stamp (seq u48, lba + k u48, k u32, little-endian).
 */
export class DataFiller {
  /** The seed of the pattern. */
  readonly seed: number;
  #pattern: Uint8Array;
  #blocks: Uint8Array[];
  #mix: number;
  #stamp = new Uint8Array(stampBytes);

  /** Builds the pattern once (a few ms); fills then copy it, no per-byte PRNG. */
  constructor(seed: number) {
    this.seed = seed;
    this.#pattern = new Prng(deriveSeed(seed, 1)).fill(new Uint8Array(patternBytes));
    this.#blocks = Array.from(
      { length: patternBlocks },
      (_, k) => this.#pattern.subarray(k * blockBytes, (k + 1) * blockBytes),
    );
    this.#mix = mix32(seed ^ 0x5bd1e995);
  }

  /** Fills `bytes[offset, offset + length)` for log `seq` at `lba`; allocation-free. */
  fill(bytes: Uint8Array, offset: number, length: number, seq: number, lba: number): void {
    checkSpan(bytes, offset, length, seq, lba);
    const start = this.#startBlock(seq, lba);
    for (let k = 0, at = offset; k < length / blockBytes; k++, at += blockBytes) {
      bytes.set(this.#blocks[(start + k) % patternBlocks], at);
      writeStamp(bytes, at, seq, lba + k, k);
    }
  }

  /** Writes block `k` of log `seq` at `lba` (what {@linkcode fill} puts there) at `offset`. */
  fillBlock(bytes: Uint8Array, offset: number, seq: number, lba: number, k: number): void {
    checkSpan(bytes, offset, blockBytes, seq, lba + k);
    bytes.set(this.#blocks[(this.#startBlock(seq, lba) + k) % patternBlocks], offset);
    writeStamp(bytes, offset, seq, lba + k, k);
  }

  /** True when `bytes[offset, offset + length)` is exactly what {@linkcode fill} wrote. */
  verifyFill(bytes: Uint8Array, offset: number, length: number, seq: number, lba: number): boolean {
    return this.findMismatch(bytes, offset, length, seq, lba) === -1;
  }

  /** Index in `bytes` of the first byte that differs from the fill, or -1 when none does. */
  findMismatch(
    bytes: Uint8Array,
    offset: number,
    length: number,
    seq: number,
    lba: number,
  ): number {
    checkSpan(bytes, offset, length, seq, lba);
    const start = this.#startBlock(seq, lba);
    const stamp = this.#stamp;
    for (let k = 0, at = offset; k < length / blockBytes; k++, at += blockBytes) {
      writeStamp(stamp, 0, seq, lba + k, k);
      const block = this.#blocks[(start + k) % patternBlocks];
      for (let i = 0; i < blockBytes; i++) {
        if (bytes[at + i] !== (i < stampBytes ? stamp[i] : block[i])) return at + i;
      }
    }
    return -1;
  }

  #startBlock(seq: number, lba: number): number {
    let h = this.#mix ^ Math.imul(seq >>> 0, 0x9e3779b1) ^ Math.imul(lba >>> 0, 0x85ebca6b);
    h ^= Math.imul(Math.floor(seq / 2 ** 32) ^ Math.floor(lba / 2 ** 32), 0xc2b2ae35);
    return mix32(h) % patternBlocks;
  }
}

/** The stamp at the start of a filled block. */
export interface Stamp {
  seq: number;
  lba: number;
  /** The block's index within its log. */
  block: number;
}

/** Reads the stamp at `bytes[at]` into `out` (allocation-free when given) and returns it. */
export function readStamp(bytes: Uint8Array, at: number, out?: Stamp): Stamp {
  if (!Number.isSafeInteger(at) || at < 0 || at + stampBytes > bytes.length) {
    fail(`Cannot read a stamp at ${at} of a ${bytes.length}-byte buffer: pass an offset that fits`);
  }
  const stamp = out ?? { seq: 0, lba: 0, block: 0 };
  stamp.seq = getU32(bytes, at) + (bytes[at + 4] | (bytes[at + 5] << 8)) * 2 ** 32;
  stamp.lba = getU32(bytes, at + 6) + (bytes[at + 10] | (bytes[at + 11] << 8)) * 2 ** 32;
  stamp.block = getU32(bytes, at + 12);
  return stamp;
}

function checkSpan(bytes: Uint8Array, offset: number, length: number, seq: number, lba: number) {
  if (
    !Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 ||
    length < blockBytes || length % blockBytes !== 0 || offset + length > bytes.length
  ) {
    throw new RangeError(
      `Cannot fill ${length} bytes at ${offset} of a ${bytes.length}-byte buffer: ` +
        `pass a multiple of ${blockBytes} that fits`,
    );
  }
  const last = lba + length / blockBytes;
  if (
    !Number.isSafeInteger(seq) || seq < 0 || seq >= 2 ** 48 || !Number.isSafeInteger(lba) ||
    lba < 0 || last > 2 ** 48
  ) {
    throw new RangeError(`Cannot stamp seq ${seq} at LBA ${lba}: both must be integers 0..2^48-1`);
  }
}

function mix32(x: number): number {
  x = Math.imul(x ^ (x >>> 16), 0x7feb352d);
  x = Math.imul(x ^ (x >>> 15), 0x846ca68b);
  return (x ^ (x >>> 16)) >>> 0;
}

function writeStamp(bytes: Uint8Array, at: number, seq: number, lba: number, k: number): void {
  putU48(bytes, at, seq);
  putU48(bytes, at + 6, lba);
  putU32(bytes, at + 12, k);
}

function putU32(bytes: Uint8Array, at: number, value: number): void {
  bytes[at] = value;
  bytes[at + 1] = value >>> 8;
  bytes[at + 2] = value >>> 16;
  bytes[at + 3] = value >>> 24;
}

function getU32(bytes: Uint8Array, at: number): number {
  return (bytes[at] | (bytes[at + 1] << 8) | (bytes[at + 2] << 16) | (bytes[at + 3] << 24)) >>> 0;
}

function putU48(bytes: Uint8Array, at: number, value: number): void {
  const lo = value >>> 0;
  putU32(bytes, at, lo);
  const hi = (value - lo) / 2 ** 32;
  bytes[at + 4] = hi;
  bytes[at + 5] = hi >>> 8;
}

function fail(message: string): never {
  throw new RangeError(message);
}
