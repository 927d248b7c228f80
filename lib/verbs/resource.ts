/**
 * Lifetime bookkeeping shared by every verbs object: idempotent close, refusal to be used
 * after close, and parents that refuse to close while children live.
 *
 * @module
 */
import { ResourceError } from "./errors.ts";

const liveResources = new Set<Resource>();

/** Base of every verbs object: tracks its parent and live children. */
export abstract class Resource {
  readonly #children = new Set<Resource>();
  readonly #parents: Resource[];
  #closed = false;
  /** What it is, for messages: `PD on rxea`, `MR 64 MiB`. */
  abstract readonly label: string;

  /** `parents` are the objects this one must not outlive (a QP has a PD and CQs). */
  protected constructor(parents: Resource[]) {
    for (const parent of parents) parent.assertOpen();
    this.#parents = parents;
    for (const parent of parents) parent.#children.add(this);
    liveResources.add(this);
  }

  /** True once closed. */
  get closed(): boolean {
    return this.#closed;
  }

  /** Throws {@linkcode ResourceError} when used after close. */
  assertOpen(): void {
    if (this.#closed) {
      throw new ResourceError(`${this.label} is closed: it cannot be used any more`);
    }
  }

  /**
   * Destroys the object. Idempotent. Throws, leaving everything as it was, when children
   * are still open (it names them) or when the destroy verb fails.
   */
  close(): void {
    if (this.#closed) return;
    if (this.#children.size > 0) {
      const names = [...this.#children].map((c) => c.label).join(", ");
      throw new ResourceError(`Cannot close ${this.label}: close its children first (${names})`);
    }
    this.destroy();
    this.#closed = true;
    for (const parent of this.#parents) parent.#children.delete(this);
    liveResources.delete(this);
  }

  /** `using` support. */
  [Symbol.dispose](): void {
    this.close();
  }

  /** Calls the destroy verb; throws a VerbsError on failure. */
  protected abstract destroy(): void;
}

/** Labels of every verbs object this process has not closed (leak checks in tests). */
export function liveResourceLabels(): string[] {
  return [...liveResources].map((r) => r.label);
}
