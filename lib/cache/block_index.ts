/**
 * Where the newest acknowledged copy of each 4096-byte block lives: in the write cache's
 * data ring (the seq of its log and its offset in the ring) or, when absent, in the
 * backing store. Two typed arrays sized to the namespace: bounded, allocation-free.
 *
 * @module
 */
import { blockBytes } from "../block.ts";

/** Largest namespace the index covers: 2^22 blocks (16 GiB). */
export const indexBlocksMax = 1 << 22;

/** LBA → (seq, ring offset) of the block's newest cached copy. */
export class BlockIndex {
  readonly #seq: Float64Array;
  readonly #offset: Float64Array;
  /** Namespace size in blocks. */
  readonly blocks: number;

  /** An empty index for `blocks` blocks (1..2^22). */
  constructor(blocks: number) {
    if (!Number.isInteger(blocks) || blocks < 1 || blocks > indexBlocksMax) {
      throw new RangeError(
        `The cache indexes 1..${indexBlocksMax} blocks (16 GiB), got ${blocks}: use a smaller namespace`,
      );
    }
    this.blocks = blocks;
    this.#seq = new Float64Array(blocks);
    this.#offset = new Float64Array(blocks);
  }

  /** Log `seq` (at `offset` in the ring) now holds blocks [lba, lba + count). */
  update(lba: number, count: number, seq: number, offset: number): void {
    this.#check(lba, count);
    for (let k = 0; k < count; k++) {
      this.#seq[lba + k] = seq;
      this.#offset[lba + k] = offset + k * blockBytes;
    }
  }

  /** Log `seq` left the ring (de-staged): its blocks are in the backing store now. */
  forget(lba: number, count: number, seq: number): void {
    this.#check(lba, count);
    for (let k = 0; k < count; k++) {
      if (this.#seq[lba + k] === seq) this.#seq[lba + k] = 0;
    }
  }

  /** The ring offset of block `lba`'s newest cached copy, or -1 when it is not cached. */
  offsetOf(lba: number): number {
    return this.#seq[lba] > 0 ? this.#offset[lba] : -1;
  }

  /** Blocks currently served from the cache. */
  cachedBlocks(): number {
    let n = 0;
    for (let i = 0; i < this.blocks; i++) if (this.#seq[i] > 0) n++;
    return n;
  }

  #check(lba: number, count: number): void {
    if (
      !Number.isSafeInteger(lba) || !Number.isSafeInteger(count) || lba < 0 || count < 1 ||
      lba + count > this.blocks
    ) {
      throw new RangeError(
        `Blocks ${lba}..${lba + count - 1} are outside the namespace of ${this.blocks} blocks`,
      );
    }
  }
}
