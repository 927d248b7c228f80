/**
 * A backend wrapper that does each command's work at once but settles it only when
 * released: a stand-in for replication latency that lets a test or lab run choose the
 * order in which completions come back (NVMe completions may post in any order).
 *
 * @module
 */

import type { NvmeBackend, NvmeReadCommand, NvmeWriteCommand } from "./backend.ts";
import type { NvmeStatus } from "./status.ts";

/** A command the {@linkcode GatedBackend} holds. */
export interface HeldCommand {
  /** The command's CID, or -1 for a Flush (whose call carries none). */
  readonly cid: number;
  /** Settles the command with what the inner backend answered. */
  readonly release: () => void;
}

/** Holds every settle of `inner` until {@linkcode GatedBackend.release} is called. */
export class GatedBackend<B extends NvmeBackend = NvmeBackend> implements NvmeBackend {
  /** The backend that does the work, at call time. */
  readonly inner: B;
  /** Commands called and not yet released, in call order. */
  readonly held: HeldCommand[] = [];

  /** Wraps `inner`. */
  constructor(inner: B) {
    this.inner = inner;
  }

  /** Calls the inner write now; settles on release. */
  write(cmd: NvmeWriteCommand): Promise<NvmeStatus> {
    return this.#hold(cmd.cid, () => this.inner.write(cmd));
  }

  /** Calls the inner read now; settles on release. */
  read(cmd: NvmeReadCommand): Promise<NvmeStatus> {
    return this.#hold(cmd.cid, () => this.inner.read(cmd));
  }

  /** Calls the inner flush now; settles on release. */
  flush(): Promise<NvmeStatus> {
    return this.#hold(-1, () => this.inner.flush());
  }

  /** Releases the held command at `index` (0 = oldest) and returns its CID. */
  release(index: number): number {
    if (!Number.isInteger(index) || index < 0 || index >= this.held.length) {
      throw new RangeError(
        `Cannot release held command ${index}: ${this.held.length} are held`,
      );
    }
    const [entry] = this.held.splice(index, 1);
    entry.release();
    return entry.cid;
  }

  #hold(cid: number, call: () => Promise<NvmeStatus>): Promise<NvmeStatus> {
    let done: Promise<NvmeStatus>;
    try {
      done = call();
    } catch (error) {
      done = Promise.reject(error);
    }
    return new Promise((resolve) => this.held.push({ cid, release: () => resolve(done) }));
  }
}
