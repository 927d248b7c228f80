/**
 * Invariant checks that stop loudly (TigerBeetle's TIGER_STYLE).
 *
 * @module
 */

/** Thrown when an invariant that must hold does not: a bug, never an input error. */
export class InvariantError extends Error {
  override name = "InvariantError";
}

/** Throws {@linkcode InvariantError} with `message` unless `condition` holds. */
export function assert(condition: unknown, message: string): asserts condition {
  if (!condition) throw new InvariantError(message);
}
