/**
 * The replica's optional end-to-end check of a workload's bytes: each log written by
 * {@linkcode DataFiller} carries its op number in its first block's stamp, so the
 * replica recomputes the exact bytes from the seed alone (into a scratch buffer) and
 * compares them word by word with what landed in its ring.
 *
 * @module
 */
import { DataFiller, readStamp } from "../bench/workload.ts";
import type { AcceptedLog } from "./replica_state.ts";

/** What the verifier saw. */
export interface VerifyValue {
  checked: number;
  mismatches: number;
  /** The first mismatch: log seq and byte offset within it. */
  first?: { seq: number; byte: number };
}

const scratchBytesMax = 16 << 20;

/** Checks accepted logs against the workload of one seed. */
export class ReplicaVerifier {
  readonly #filler: DataFiller;
  readonly #scratch = new Uint8Array(new ArrayBuffer(scratchBytesMax));
  readonly #scratchWords = new Uint32Array(this.#scratch.buffer);
  readonly #stamp = { seq: 0, lba: 0, block: 0 };
  #checked = 0;
  #mismatches = 0;
  #first: VerifyValue["first"];

  /** `seed`: the primary's workload seed. */
  constructor(seed: number) {
    this.#filler = new DataFiller(seed);
  }

  /** Checks one log in the ring; returns true when every byte is as the workload wrote it. */
  check(log: AcceptedLog): boolean {
    this.#checked++;
    const stamp = readStamp(log.ring, log.offset, this.#stamp);
    let bad = stamp.lba === log.lba && stamp.block === 0 ? -1 : 0;
    if (bad === -1) {
      this.#filler.fill(this.#scratch, 0, log.length, stamp.seq, log.lba);
      const words = new Uint32Array(
        log.ring.buffer,
        log.ring.byteOffset + log.offset,
        log.length / 4,
      );
      const expected = this.#scratchWords;
      for (let i = 0; i < words.length; i++) {
        if (words[i] !== expected[i]) {
          bad = i * 4;
          break;
        }
      }
    }
    if (bad === -1) return true;
    this.#mismatches++;
    this.#first ??= { seq: log.seq, byte: bad };
    return false;
  }

  /** Counts so far. */
  value(): VerifyValue {
    return { checked: this.#checked, mismatches: this.#mismatches, first: this.#first };
  }
}
