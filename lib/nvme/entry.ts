/**
 * Bounds checks shared by the queue entry codecs ({@link ./sqe.ts}, {@link ./cqe.ts}).
 *
 * @module
 */

/**
 * Why a decoder refused its input. Every bit pattern of a whole entry decodes (reserved
 * and unsupported values are the controller's to answer with a status, not the codec's to
 * refuse), so the only malformed input is an entry that does not lie inside the view.
 */
export type EntryRefusal =
  /** The offset is not a non-negative integer. */
  | "offset-invalid"
  /** The entry would run past the end of the view. */
  | "entry-out-of-bounds";

/** Returns why `entryBytes` at `offset` cannot be read from or written to `view`, if so. */
export function entryRefusal(
  view: DataView,
  offset: number,
  entryBytes: number,
): EntryRefusal | undefined {
  if (!Number.isSafeInteger(offset) || offset < 0) return "offset-invalid";
  if (offset + entryBytes > view.byteLength) return "entry-out-of-bounds";
  return undefined;
}

/** Throws RangeError naming `what` unless an entry fits at `offset` (encoders' misuse). */
export function checkEntryFits(
  view: DataView,
  offset: number,
  entryBytes: number,
  what: string,
): void {
  const refusal = entryRefusal(view, offset, entryBytes);
  if (refusal !== undefined) {
    throw new RangeError(
      `Cannot encode ${what} at offset ${offset} of a ${view.byteLength}-byte view: ` +
        `${refusal} (pass an integer offset with ${entryBytes} bytes after it)`,
    );
  }
}

/** Throws RangeError naming `field` unless `value` is an integer in 0..`max`. */
export function checkUint(value: number, max: number, field: string): void {
  if (!Number.isInteger(value) || value < 0 || value > max) {
    throw new RangeError(`Cannot encode ${field} = ${value}: pass an integer 0..${max}`);
  }
}
