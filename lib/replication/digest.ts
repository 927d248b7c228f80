/**
 * A running digest of replicated logs: both sides feed it (seq, lba, length, CRC32C of the
 * data as each side computed it from its own bytes), in seq order; equal digests mean the
 * replica accepted exactly the logs the primary saw acked, with the same bytes (to the
 * strength of CRC32C per log). Bounded (fixed state) and allocation-free per log.
 *
 * @module
 */
import { jsBackend } from "../log/crc32c.ts";

/** The digest's value. */
export interface DigestValue {
  /** Logs fed. */
  count: number;
  /** Data bytes fed. */
  bytes: number;
  /** Highest seq fed (0 for none). */
  lastSeq: number;
  /** CRC32C over the 24-byte tuples, as 8 hex digits. */
  digest: string;
}

/** Accumulates (seq, lba, length, crc) tuples. */
export class LogDigest {
  readonly #tuple = new Uint8Array(24);
  readonly #view = new DataView(this.#tuple.buffer);
  #crc = 0;
  #count = 0;
  #bytes = 0;
  #lastSeq = 0;

  /** Feeds one log; `crc` as a u32 or as its int32 bits (`crc | 0`, never boxed). */
  add(seq: number, lba: number, length: number, crc: number): void {
    const v = this.#view;
    v.setInt32(0, seq | 0, true);
    v.setInt32(4, (seq / 0x1_0000_0000) | 0, true);
    v.setInt32(8, lba | 0, true);
    v.setInt32(12, (lba / 0x1_0000_0000) | 0, true);
    v.setInt32(16, length | 0, true);
    v.setInt32(20, crc | 0, true);
    // 24 bytes: the table loop beats an FFI call, and the CRC is the same on either side.
    this.#crc = jsBackend.update(this.#crc, this.#tuple);
    this.#count++;
    this.#bytes += length;
    this.#lastSeq = seq;
  }

  /** The current value. */
  value(): DigestValue {
    return {
      count: this.#count,
      bytes: this.#bytes,
      lastSeq: this.#lastSeq,
      digest: this.#crc.toString(16).padStart(8, "0"),
    };
  }
}
