/**
 * Admission of logs into the primary's engine: a log is posted at once when depth,
 * credits and ring space allow, else it waits in a bounded FIFO and is posted by the ack
 * handler when room opens (nobody can take its place in between); a log that waits longer
 * than the admission timeout fails with a BackpressureError.
 *
 * @module
 */
import { BackpressureError } from "./errors.ts";
import { Entry, type ReplicatedLog } from "./flight.ts";
import type { LogSource } from "./primary.ts";
import type { PrimaryEngine } from "./primary_engine.ts";
import type { PrimaryStats } from "./primary_stats.ts";

/** Logs waiting for room, at most. */
export const waitersMax = 4096;

interface Waiter {
  source: LogSource;
  length: number;
  lba: number;
  lbaFlags: number;
  submitted: number;
  entry: Entry;
}

/** The waiting queue of one primary. */
export class Admission {
  readonly #waiters: Waiter[] = [];

  /** `timeoutMs` bounds a log's wait; `retain` only words the error. */
  constructor(
    readonly engine: PrimaryEngine,
    readonly stats: PrimaryStats,
    readonly timeoutMs: number,
    readonly retain: boolean,
  ) {}

  /** Logs waiting now. */
  get waiting(): number {
    return this.#waiters.length;
  }

  /** Posts the log now or queues it; the promise settles with its ack. */
  submit(source: LogSource, length: number, lba: number, lbaFlags: number): Promise<ReplicatedLog> {
    const submitted = performance.now();
    if (this.#waiters.length === 0 && this.engine.canPost(length)) {
      const entry = this.engine.takeLog();
      const promise = promiseFor(entry);
      entry.submitted = submitted;
      this.engine.postLog(entry, source, length, lba, lbaFlags);
      return promise;
    }
    if (this.#waiters.length >= waitersMax) {
      return Promise.reject(
        new RangeError(`${waitersMax} logs are already waiting for room: await earlier ones`),
      );
    }
    this.stats.admissionWaits++;
    const entry = new Entry();
    const promise = promiseFor(entry);
    this.#waiters.push({ source, length, lba, lbaFlags, submitted, entry });
    return promise;
  }

  /** Posts waiting logs, oldest first, while there is room. */
  admit(): void {
    while (this.#waiters.length > 0 && this.engine.canPost(this.#waiters[0].length)) {
      const w = this.#waiters.shift()!;
      const entry = this.engine.takeLog();
      entry.resolve = w.entry.resolve;
      entry.reject = w.entry.reject;
      entry.submitted = w.submitted;
      this.engine.postLog(entry, w.source, w.length, w.lba, w.lbaFlags);
    }
  }

  /** Fails the logs that waited longer than the timeout (`clock[0]`: now, ms). */
  expire(clock: Float64Array): void {
    const now = clock[0];
    while (this.#waiters.length > 0 && now - this.#waiters[0].submitted > this.timeoutMs) {
      const w = this.#waiters.shift()!;
      this.stats.admissionTimeouts++;
      const s = this.stats.value(this.engine);
      w.entry.reject?.(
        new BackpressureError(
          `No room for a ${w.length}-byte log for ${this.timeoutMs} ms: ${s.inFlight} records in flight, ` +
            `ring ${s.writePos - s.released} B ahead of the replica's release` +
            (this.engine.suspended ? " (the session is broken and not resumed yet)" : "") +
            (this.retain ? " (retain mode: is the de-stager releasing logs?)" : ""),
        ),
      );
    }
  }

  /** Fails every waiting log with `error`. */
  failAll(error: Error): void {
    for (const w of this.#waiters.splice(0)) w.entry.reject?.(error);
  }
}

function promiseFor(entry: Entry): Promise<ReplicatedLog> {
  return new Promise<ReplicatedLog>((resolve, reject) => {
    entry.resolve = resolve;
    entry.reject = reject;
  });
}
