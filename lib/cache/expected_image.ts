/**
 * The image a workload expects its namespace to hold, without a copy of the data: for each
 * block, which write (op number and first LBA, read from the block's stamp) last committed
 * it; expected bytes are regenerated from the workload's seed when checked.
 *
 * @module
 */
import { DataFiller, readStamp } from "../bench/workload.ts";
import { blockBytes } from "../block.ts";

/** Per-block record of the last committed write; unwritten blocks are zeros. */
export class ExpectedImage {
  readonly blocks: number;
  readonly #op: Float64Array;
  readonly #opLba: Float64Array;
  readonly #filler: DataFiller;
  readonly #stamp = { seq: 0, lba: 0, block: 0 };

  /** `blocks` of namespace, data from `DataFiller(seed)`. */
  constructor(blocks: number, seed: number) {
    if (!Number.isInteger(blocks) || blocks < 1 || blocks > 1 << 22) {
      throw new RangeError(`An expected image covers 1..${1 << 22} blocks, got ${blocks}`);
    }
    this.blocks = blocks;
    this.#op = new Float64Array(blocks).fill(-1);
    this.#opLba = new Float64Array(blocks);
    this.#filler = new DataFiller(seed);
  }

  /** A write of `data` at `lba` committed (call in commit order). */
  commit(lba: number, data: Uint8Array): void {
    for (let k = 0; k < data.length / blockBytes; k++) {
      const stamp = readStamp(data, k * blockBytes, this.#stamp);
      this.#op[lba + k] = stamp.seq;
      this.#opLba[lba + k] = stamp.lba - stamp.block;
    }
  }

  /** Writes the expected bytes of block `lba` into `into` at `offset`. */
  block(lba: number, into: Uint8Array, offset: number): void {
    const op = this.#op[lba];
    if (op < 0) into.fill(0, offset, offset + blockBytes);
    else this.#filler.fillBlock(into, offset, op, this.#opLba[lba], lba - this.#opLba[lba]);
  }

  /** Blocks written at least once. */
  writtenBlocks(): number {
    let n = 0;
    for (let i = 0; i < this.blocks; i++) if (this.#op[i] >= 0) n++;
    return n;
  }

  /** SHA-256 of the whole expected image (see {@linkcode sha256OfBlocks}). */
  sha256(): Promise<string> {
    return sha256OfBlocks(this.blocks, (lba, n, into) => {
      for (let k = 0; k < n; k++) this.block(lba + k, into, k * blockBytes);
    });
  }
}

/**
 * SHA-256 over the SHA-256 of each 1 MiB chunk of `blocks` 4096-byte blocks, as hex:
 * `read(lba, n, into)` fills `n` blocks from `lba`. The same function hashes an expected
 * image and a backing store, so equal hashes mean equal bytes.
 */
export async function sha256OfBlocks(
  blocks: number,
  read: (lba: number, n: number, into: Uint8Array) => void | Promise<void>,
): Promise<string> {
  const chunkBlocks = 256;
  const chunk = new Uint8Array(chunkBlocks * blockBytes);
  const parts = new Uint8Array(Math.ceil(blocks / chunkBlocks) * 32);
  for (let lba = 0, i = 0; lba < blocks; lba += chunkBlocks, i++) {
    const n = Math.min(chunkBlocks, blocks - lba);
    await read(lba, n, chunk);
    parts.set(
      new Uint8Array(await crypto.subtle.digest("SHA-256", chunk.subarray(0, n * blockBytes))),
      i * 32,
    );
  }
  const all = new Uint8Array(await crypto.subtle.digest("SHA-256", parts));
  return [...all].map((b) => b.toString(16).padStart(2, "0")).join("");
}
