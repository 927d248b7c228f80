/**
 * The de-stager: applies answered logs, oldest first, to the backing store (positional
 * writes at LBA × 4096 straight from the write cache's data ring), makes them durable
 * (`fdatasync`), records `destagedSeq` in the cache header, then releases their ring space
 * here and at the replica (docs/protocol.md, persistence points 5 to 7).
 *
 * The first failure (a {@linkcode BackingStoreError} from a write or the sync) stops
 * de-staging for good: the failed batch stays queued, `destagedSeq` and the released
 * position stay where they were, so its logs stay in both write caches (a restart on a
 * healthy backing store de-stages them); every waiter, present or later, rejects with it.
 *
 * @module
 */
import { InvariantError } from "../assert.ts";
import type { BackingStore } from "./backing_store.ts";
import type { BlockIndex } from "./block_index.ts";
import type { WriteCache } from "./write_cache.ts";
import { blockBytes } from "../block.ts";

/** One answered log waiting to be de-staged (a refused one is a hole: nothing to write). */
interface Pending {
  seq: number;
  lba: number;
  blocks: number;
  offset: number;
  hole: boolean;
}

/** A caller of `until(seq)`. */
interface Waiter {
  seq: number;
  resolve: () => void;
  reject: (error: Error) => void;
}

/** De-stager counters. */
export interface DestagerStats {
  destagedLogs: number;
  destagedBytes: number;
  batches: number;
  destagedSeq: number;
  pending: number;
}

/**
 * What the de-stager uses of the primary: `Primary` in the service (a structural type, so
 * a unit test can run the de-stager without a verbs device).
 */
export interface ReleasingPrimary {
  /** The logs through `seq` are de-staged: free them here and at the replica. */
  release(seq: number): void;
  /** This side's ring position released so far. */
  readonly ringReleasedPos: number;
  /** The primary's next seq (persisted with destagedSeq). */
  stats(): { nextSeq: number };
}

/** Largest batch between two fdatasync calls. */
const batchLogsMax = 64;

/** Applies answered logs to the backing store in seq order. */
export class Destager {
  readonly #queue: Pending[] = [];
  readonly #waiters: Waiter[] = [];
  readonly #cache: WriteCache;
  readonly #backing: BackingStore;
  readonly #index: BlockIndex;
  readonly #primary: ReleasingPrimary;
  readonly #queueMax: number;
  #destagedSeq: number;
  #running: Promise<void> | undefined;
  #failure: Error | undefined;
  #stopped = false;
  #queuedBytes = 0;
  readonly #keepBytes: number;
  readonly #onFailure: ((error: Error) => void) | undefined;
  readonly stats: DestagerStats;

  /**
   * `queueMax` bounds the logs waiting (the ring bounds them anyway); `keepBytes` of
   * answered logs stay in the write cache (de-staging starts above it, or when a flush,
   * FUA write or drain waits). `onFailure` hears of the failure that stops de-staging.
   */
  constructor(
    o: {
      cache: WriteCache;
      backing: BackingStore;
      index: BlockIndex;
      primary: ReleasingPrimary;
      queueMax: number;
      keepBytes: number;
      onFailure?: (error: Error) => void;
    },
  ) {
    this.#keepBytes = o.keepBytes;
    this.#onFailure = o.onFailure;
    this.#cache = o.cache;
    this.#backing = o.backing;
    this.#index = o.index;
    this.#primary = o.primary;
    this.#queueMax = o.queueMax;
    this.#destagedSeq = o.cache.header.destagedSeq;
    this.stats = {
      destagedLogs: 0,
      destagedBytes: 0,
      batches: 0,
      destagedSeq: this.#destagedSeq,
      pending: 0,
    };
  }

  /** Every log up to this seq is in the backing store. */
  get destagedSeq(): number {
    return this.#destagedSeq;
  }

  /**
   * Queues an answered log (in seq order) and starts de-staging; after a failure it only
   * queues (the log stays in the write cache).
   */
  add(log: Pending): void {
    const last = this.#queue.at(-1)?.seq ?? this.#destagedSeq;
    if (log.seq !== last + 1) {
      throw new InvariantError(`de-stage order: seq ${log.seq} after ${last}`);
    }
    if (this.#queue.length >= this.#queueMax) {
      throw new InvariantError(`de-stage queue full (${this.#queueMax})`);
    }
    this.#queue.push(log);
    this.#queuedBytes += log.blocks * blockBytes;
    this.stats.pending = this.#queue.length;
    this.#kick();
  }

  #kick(): void {
    if (this.#stopped || this.#failure || this.#running || this.#queue.length === 0) return;
    if (this.#queuedBytes <= this.#keepBytes && this.#waiters.length === 0) return;
    this.#running = this.#run().finally(() => {
      this.#running = undefined;
      this.#kick(); // more arrived, or a waiter came while the last batch ran
    });
  }

  /** Resolves when every log up to `seq` is de-staged (rejects if de-staging failed). */
  until(seq: number): Promise<void> {
    if (this.#failure) return Promise.reject(this.#failure);
    if (seq <= this.#destagedSeq) return Promise.resolve();
    return new Promise((resolve, reject) => {
      this.#waiters.push({ seq, resolve, reject });
      this.#kick();
    });
  }

  /** Stops de-staging after the batch in progress; queued logs stay in the write cache. */
  async stop(): Promise<void> {
    this.#stopped = true;
    await this.#running;
  }

  /** The failure that stopped de-staging, if any. */
  get failure(): Error | undefined {
    return this.#failure;
  }

  /** De-stages batches while there is work; never rejects (a failure is kept instead). */
  async #run(): Promise<void> {
    while (this.#queue.length > 0 && !this.#failure && !this.#stopped) {
      if (this.#queuedBytes <= this.#keepBytes && this.#waiters.length === 0) break;
      // Let writes complete between batches: de-staging is background work.
      await new Promise((r) => setTimeout(r, 0));
      try {
        this.#batch(this.#queue.slice(0, batchLogsMax));
      } catch (error) {
        this.#fail(error as Error);
      }
    }
  }

  #fail(error: Error): void {
    this.#failure = error;
    this.#onFailure?.(error);
    for (const waiter of this.#waiters.splice(0)) waiter.reject(error);
  }

  #batch(batch: Pending[]): void {
    const base = this.#cache.data.address;
    for (const log of batch) {
      if (!log.hole) this.#backing.writeFrom(log.lba, base + log.offset, log.blocks * blockBytes);
    }
    this.#backing.sync();
    const last = batch[batch.length - 1].seq;
    // Point 6: the blocks are durable; record it before anything is released (point 7).
    this.#cache.persistHeader({
      destagedSeq: last,
      nextSeq: Math.max(last + 1, this.#primary.stats().nextSeq),
    });
    // Only now does the batch leave the queue: a failure above leaves it queued.
    this.#queue.splice(0, batch.length);
    this.#destagedSeq = last;
    for (const log of batch) {
      this.#queuedBytes -= log.blocks * blockBytes;
      if (!log.hole) {
        this.#index.forget(log.lba, log.blocks, log.seq);
        this.stats.destagedLogs++;
        this.stats.destagedBytes += log.blocks * blockBytes;
      }
    }
    this.stats.batches++;
    this.stats.destagedSeq = last;
    this.stats.pending = this.#queue.length;
    this.#primary.release(last);
    this.#cache.persistHeader({ releasedPos: this.#primary.ringReleasedPos });
    for (let i = this.#waiters.length - 1; i >= 0; i--) {
      if (this.#waiters[i].seq <= last) this.#waiters.splice(i, 1)[0].resolve();
    }
  }
}
