/**
 * A witness of the replica's acks for the cache workload's order check, fed by the
 * replication layer (`PrimaryOptions.onAcked`) underneath the cache service: the OK acks
 * handled so far, keyed by the log's content (LBA, length, CRC32C of its data as the
 * primary sent it and the replica checked it). The workload computes the same key from
 * its own buffer when it sees a command complete, so the check does not rest on anything
 * the service under test records or reports about itself.
 *
 * Every workload block carries a stamp (op, LBA), so two writes never share a key.
 *
 * @example
 * ```ts
 * import { AckWitness } from "./ack_witness.ts";
 * import { crc32c } from "../log/crc32c.ts";
 * const acks = new AckWitness();
 * const data = new Uint8Array(4096).fill(7);
 * acks.acked({ lba: 3, length: 4096, crc: crc32c(data) }); // from the primary's ack handling
 * console.log(acks.take(3, data)); // true: the replica acked this write's bytes
 * ```
 *
 * @module
 */
import { crc32c } from "../log/crc32c.ts";

/** The replica's OK acks seen below the service, by content; see the module documentation. */
export class AckWitness {
  /**
   * Bounded by the logs in flight: each write's ack is taken when the write completes;
   * only the logs a restart recovered (at most a ring's worth) stay.
   */
  readonly #untaken = new Map<string, number>();

  /** Pass as `onAcked` (called in ack handling: never throws). */
  readonly acked = (log: { lba: number; length: number; crc: number }): void => {
    const key = keyOf(log.lba, log.length, log.crc);
    this.#untaken.set(key, (this.#untaken.get(key) ?? 0) + 1);
  };

  /**
   * Takes the ack of a write of `data` at `lba`: true when the replica's OK ack of these
   * bytes at this LBA was handled (and not taken before), false when none was seen.
   */
  take(lba: number, data: Uint8Array): boolean {
    const key = keyOf(lba, data.length, crc32c(data));
    const n = this.#untaken.get(key) ?? 0;
    if (n === 0) return false;
    if (n === 1) this.#untaken.delete(key);
    else this.#untaken.set(key, n - 1);
    return true;
  }
}

function keyOf(lba: number, length: number, crc: number): string {
  return `${lba}:${length}:${crc >>> 0}`;
}
