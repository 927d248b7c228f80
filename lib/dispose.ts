/**
 * Opening several resources in sequence: each one goes on a `DisposableStack` as it is
 * opened; if a later step fails, what was opened so far closes newest first and the
 * error that stopped the opening is the one rethrown. A close failure during that cleanup
 * never replaces it: it is attached to it as `suppressed` (the name `SuppressedError` uses).
 *
 * (A bare `using stack` would throw a `SuppressedError` whose `error` is the close failure,
 * hiding the cause behind it; callers that test `instanceof VerbsError` would miss it.)
 *
 * @example
 * ```ts ignore
 * const side = openInOrder((stack) => {
 *   const ctx = stack.use(Context.open("rxea"));
 *   const pd = stack.use(new ProtectionDomain(ctx));
 *   return new Side(ctx, pd); // from here on the Side closes them
 * });
 * ```
 *
 * @module
 */

/** An error that close failures during its cleanup were attached to. */
export interface WithSuppressed {
  /** What failed while cleaning up after this error (a `SuppressedError` if several did). */
  suppressed?: unknown;
}

/**
 * Runs `open`, which puts each resource it opens on `stack`. If `open` throws, the stack is
 * disposed (newest first) and the original error rethrown. On success nothing is closed:
 * what the stack holds belongs to what `open` returned.
 */
export function openInOrder<T>(open: (stack: DisposableStack) => T): T {
  const stack = new DisposableStack();
  try {
    return open(stack);
  } catch (error) {
    throw disposeAfter(stack, error);
  }
}

/** {@linkcode openInOrder} for async steps and async closes (`AsyncDisposableStack`). */
export async function openInOrderAsync<T>(
  open: (stack: AsyncDisposableStack) => Promise<T>,
): Promise<T> {
  const stack = new AsyncDisposableStack();
  try {
    return await open(stack);
  } catch (error) {
    try {
      await stack.disposeAsync();
    } catch (cleanup) {
      attachSuppressed(error, cleanup);
    }
    throw error;
  }
}

/**
 * Disposes `stack` after `error` stopped an opening and returns `error` (to throw), with a
 * close failure attached as `suppressed`.
 */
export function disposeAfter(stack: DisposableStack, error: unknown): unknown {
  try {
    stack.dispose();
  } catch (cleanup) {
    attachSuppressed(error, cleanup);
  }
  return error;
}

/**
 * Closes `resource` after `error` stopped its construction (a verbs object whose later
 * setup failed) and returns `error` (to throw), with a close failure attached.
 */
export function closeAfter(resource: Disposable, error: unknown): unknown {
  const stack = new DisposableStack();
  stack.use(resource);
  return disposeAfter(stack, error);
}

/** Attaches `cleanup` to `error` as `suppressed` (after any attached before). */
function attachSuppressed(error: unknown, cleanup: unknown): void {
  if (typeof error !== "object" || error === null || !Object.isExtensible(error)) return;
  const target = error as WithSuppressed;
  target.suppressed = target.suppressed === undefined
    ? cleanup
    : new SuppressedError(cleanup, target.suppressed, "Several closes failed");
}
