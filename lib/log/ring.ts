/**
 * Data ring arithmetic per docs/protocol.md ("Ring placement"). Positions are monotonic
 * byte counters held as JS numbers (safe up to 2^53 - 1); the offset in the ring is
 * `position mod ringBytes`. A log that would straddle the end of the ring starts at offset
 * 0 and the bytes skipped are a gap, accounted as used. Nothing here allocates per call:
 * invariants are checked as `if (broken) throw new InvariantError(...)` rather than with
 * `assert(cond, message)`, whose template message would be built on every call.
 *
 * @example
 * ```ts
 * import { RingCursor } from "./ring.ts";
 * const ring = new RingCursor({ ringBytes: 64 * 1024 });
 * if (ring.canPlace(8192)) {
 *   const start = ring.place(8192);
 *   console.log(ring.offsetOf(start)); // 0
 *   ring.release(start + 8192);
 * }
 * ```
 *
 * @module
 */

import { InvariantError } from "../assert.ts";
import { dataAlignBytes, dataLengthMax, recordBytes } from "./record.ts";
import { blockBytes } from "../block.ts";

/** Smallest data ring, in bytes (64 KiB). */
export const ringBytesMin = 64 * 1024;
/** Largest data ring, in bytes (1 GiB). */
export const ringBytesMax = 1024 * 1024 * 1024;
/** Most slots a metadata ring may have. */
export const metaSlotsMax = 65_536;

/** Throws RangeError unless `ringBytes` is a multiple of 4096 from 64 KiB to 1 GiB. */
export function checkRingBytes(ringBytes: number): void {
  if (
    !Number.isInteger(ringBytes) || ringBytes % dataAlignBytes !== 0 ||
    ringBytes < ringBytesMin || ringBytes > ringBytesMax
  ) {
    throw new RangeError(
      `Cannot use a data ring of ${ringBytes} bytes: pass a multiple of ${blockBytes} from ` +
        `${ringBytesMin} (64 KiB) to ${ringBytesMax} (1 GiB)`,
    );
  }
}

/** Largest log a ring of `ringBytes` takes: half the ring (rounded down to 4096), ≤ 16 MiB. */
export function logBytesLimit(ringBytes: number): number {
  const half = Math.floor(ringBytes / 2 / dataAlignBytes) * dataAlignBytes;
  return Math.min(half, dataLengthMax);
}

/**
 * Throws RangeError unless `length` is a multiple of 4096 from 4096 to
 * {@linkcode logBytesLimit}: a log above half the ring could need more than the whole ring
 * once a gap is added, and would never be placed.
 */
export function checkLogLength(length: number, ringBytes: number): void {
  const limit = logBytesLimit(ringBytes);
  if (
    !Number.isInteger(length) || length % dataAlignBytes !== 0 || length < dataAlignBytes ||
    length > limit
  ) {
    throw new RangeError(
      `Cannot place a log of ${length} bytes in a ${ringBytes}-byte ring: pass a multiple of ` +
        `${blockBytes} from ${blockBytes} to ${limit} (half the ring, 16 MiB at most), or enlarge the ring`,
    );
  }
}

/**
 * Returns the start position of a log of `length` bytes placed at write position
 * `writePos`: `writePos` itself, or the next multiple of `ringBytes` when the log would
 * straddle the end of the ring. The gap is `start - writePos`, the end `start + length`.
 */
export function placementStart(writePos: number, length: number, ringBytes: number): number {
  const offset = writePos % ringBytes;
  return offset + length > ringBytes ? writePos + (ringBytes - offset) : writePos;
}

/** Where a log goes; filled by {@linkcode placement}. */
export interface Placement {
  /** Position of the log's first byte. */
  start: number;
  /** Offset of the log in the ring (`start mod ringBytes`), the record's `dataOffset`. */
  offset: number;
  /** Bytes skipped at the end of the ring before the log (0 when it fits). */
  gapBytes: number;
  /** Position after the log: the next write position. */
  end: number;
}

/** Returns a zeroed {@linkcode Placement} to pass to {@linkcode placement}. */
export function emptyPlacement(): Placement {
  return { start: 0, offset: 0, gapBytes: 0, end: 0 };
}

/** Fills `out` (a new object when omitted) with the placement of a log; see `placementStart`. */
export function placement(
  writePos: number,
  length: number,
  ringBytes: number,
  out: Placement = emptyPlacement(),
): Placement {
  const start = placementStart(writePos, length, ringBytes);
  out.start = start;
  out.offset = start % ringBytes;
  out.gapBytes = start - writePos;
  out.end = start + length;
  return out;
}

/** Options for {@linkcode RingCursor}. */
export interface RingCursorOptions {
  /** Ring size: a multiple of 4096 from 64 KiB to 1 GiB. */
  ringBytes: number;
  /** Initial write and released position, a multiple of 4096 (default 0). */
  startPos?: number;
}

/** Throws the InvariantError of a broken ring invariant (kept out of the hot functions). */
function broken(what: string, ...values: number[]): never {
  throw new InvariantError(`${what}: ${values.join(", ")}`);
}

/**
 * One side's view of a data ring: the write position, the released position and the
 * entries in between (oldest first). Invariants, checked on every change:
 * released ≤ write ≤ released + ringBytes, both multiples of 4096, never decreasing, and no
 * log straddles the end of the ring. Positions live in a Float64Array, not in fields, and
 * `place` returns an offset (below 2^30), so that V8 boxes no double on the hot path.
 */
export class RingCursor {
  /** Ring size in bytes. */
  readonly ringBytes: number;
  /** [writePos, releasedPos, end of the last placed log's gap (its start)]. */
  #pos = new Float64Array(3);
  /** End positions of the placed, unreleased entries: a preallocated circular queue. */
  #ends: Float64Array;
  #head = 0;
  #count = 0;

  /** Creates a cursor over an empty ring; RangeError on bad geometry. */
  constructor(options: RingCursorOptions) {
    checkRingBytes(options.ringBytes);
    const startPos = options.startPos ?? 0;
    if (!Number.isSafeInteger(startPos) || startPos < 0 || startPos % dataAlignBytes !== 0) {
      throw new RangeError(
        `Cannot start a ring at position ${startPos}: pass a multiple of ${blockBytes}`,
      );
    }
    this.ringBytes = options.ringBytes;
    this.#pos.fill(startPos);
    // Every entry holds at least 4096 bytes and all of them fit in the ring.
    this.#ends = new Float64Array(options.ringBytes / dataAlignBytes);
  }

  /** Position where the next log (or its gap) begins. */
  get writePos(): number {
    return this.#pos[0];
  }

  /** Position up to which space has been released. */
  get releasedPos(): number {
    return this.#pos[1];
  }

  /** Start position of the last placed log (after its gap). */
  get lastStartPos(): number {
    return this.#pos[2];
  }

  /** Bytes placed and not yet released, gaps included. */
  get usedBytes(): number {
    return this.#pos[0] - this.#pos[1];
  }

  /** Bytes not in use (some may end up as a gap). */
  get freeBytes(): number {
    return this.ringBytes - this.usedBytes;
  }

  /** Entries placed and not yet released. */
  get entryCount(): number {
    return this.#count;
  }

  /** Offset in the ring of position `pos`. */
  offsetOf(pos: number): number {
    return pos % this.ringBytes;
  }

  /** End position a log of `length` bytes would have if placed now (RangeError on bad length). */
  endFor(length: number): number {
    checkLogLength(length, this.ringBytes);
    return placementStart(this.#pos[0], length, this.ringBytes) + length;
  }

  /**
   * Whether a log of `length` bytes fits now: its end (gap included) is within this ring's
   * released space and at most `creditLimitPos` (the peer's `released + ringBytes`).
   */
  canPlace(length: number, creditLimitPos: number = Infinity): boolean {
    const end = this.endFor(length);
    return end <= this.#pos[1] + this.ringBytes && end <= creditLimitPos;
  }

  /**
   * Places a log of `length` bytes (call `canPlace` first) and returns its offset in the
   * ring, the record's `dataOffset`; its start position is then `lastStartPos` and its end
   * `writePos`.
   */
  place(length: number, creditLimitPos: number = Infinity): number {
    const pos = this.#pos;
    const end = this.endFor(length);
    const start = end - length;
    if (!Number.isSafeInteger(end)) {
      broken("ring position (start, end) is beyond 2^53 - 1", start, end);
    }
    if (!this.canPlace(length, creditLimitPos)) {
      broken("no room (length, end): check canPlace first", length, end);
    }
    if (start < pos[0]) {
      broken("log starts behind the write position (start, write)", start, pos[0]);
    }
    const offset = start % this.ringBytes;
    if (offset + length > this.ringBytes) {
      broken("log straddles the ring end (start, length)", start, length);
    }
    if (this.#count >= this.#ends.length) broken("entry queue is full (entries)", this.#count);
    this.#ends[(this.#head + this.#count) % this.#ends.length] = end;
    this.#count++;
    pos[2] = start;
    pos[0] = end;
    this.#check();
    return offset;
  }

  /** Releases the oldest entry (gap included); the in-order, allocation-free release. */
  releaseOldest(): void {
    if (this.#count === 0) {
      broken("nothing to release (released, write)", this.#pos[1], this.#pos[0]);
    }
    this.#pos[1] = this.#ends[this.#head];
    this.#head = (this.#head + 1) % this.#ends.length;
    this.#count--;
    this.#check();
  }

  /** Releases every entry that ends at or before `toPos`, which must be an entry's end. */
  release(toPos: number): void {
    const pos = this.#pos;
    if (toPos < pos[1] || toPos > pos[0]) {
      broken("release (to, released, write) is outside [released, write]", toPos, pos[1], pos[0]);
    }
    while (this.#count > 0 && this.#ends[this.#head] <= toPos) this.releaseOldest();
    if (pos[1] !== toPos) {
      broken("release (to, released) is not at the end of an entry", toPos, pos[1]);
    }
  }

  #check(): void {
    const write = this.#pos[0], released = this.#pos[1];
    if (released > write) broken("released is beyond write (released, write)", released, write);
    if (write > released + this.ringBytes) {
      broken("write laps released (write, released)", write, released);
    }
    if (write % dataAlignBytes !== 0) broken("write position is not 4096-aligned", write);
    if (released % dataAlignBytes !== 0) broken("released position is not 4096-aligned", released);
  }
}

/** Throws RangeError unless `slots` is an integer from 1 to {@linkcode metaSlotsMax}. */
export function checkMetaSlots(slots: number): void {
  if (!Number.isInteger(slots) || slots < 1 || slots > metaSlotsMax) {
    throw new RangeError(`Cannot use ${slots} metadata slots: pass 1 to ${metaSlotsMax}`);
  }
}

/** Byte offset of the 64-byte metadata slot of `seq` in a ring of `slots` slots. */
export function metaSlotOffset(seq: number, slots: number): number {
  return (seq % slots) * recordBytes;
}
