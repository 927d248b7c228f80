/**
 * A stream of logs pulled from a {@linkcode LogProducer}: the primary's allocation-free way
 * to replicate many logs. Whenever there is room (depth, credits, ring) the stream asks
 * the producer for the next log, lets it fill the bytes straight into the data ring and
 * posts it, all inside the completion handler's turn: no promise, closure or result object
 * per log, and no trip through the event loop between an ack and the next post.
 *
 * @module
 */
import { LbaFlags } from "../log/record.ts";
import type { LogSink, ReplicatedLog } from "./flight.ts";
import type { PrimaryEngine } from "./primary_engine.ts";
import { blockBytes } from "../block.ts";

/** Describes one log of a stream (the producer writes it; reused). */
export interface StreamLog {
  /** Bytes: a multiple of 4096 up to the primary's largest log. */
  length: number;
  /** Logical block address of the first 4096-byte block. */
  lba: number;
  /** Force unit access. */
  fua: boolean;
}

/** A pull-driven source of logs. */
export interface LogProducer {
  /** Describes the next log in `out` and returns true, or false when the stream has no more. */
  next(out: StreamLog): boolean;
  /** Writes the log's bytes into `ring` at `offset` (once per log, right before it is posted). */
  fill(ring: Uint8Array, offset: number, length: number): void;
  /** The log was replicated (its OK ack). `log` is a reused object: copy what you keep. */
  replicated(log: ReplicatedLog): void;
  /** The replica refused the log, or the session failed with it in flight. */
  failed(seq: number, error: Error): void;
}

/** What a stream did. */
export interface StreamResult {
  /** Logs posted. */
  posted: number;
  /** Logs replicated (OK acks). */
  replicated: number;
  /** Logs refused or failed. */
  failed: number;
  /** Why the stream ended early: the primary failed, or the producer described a bad log. */
  failure?: Error;
}

/** One active stream of a primary. */
export class LogStream implements LogSink {
  readonly #producer: LogProducer;
  readonly #engine: PrimaryEngine;
  readonly #maxLogBytes: number;
  readonly #depth: number;
  readonly #log: StreamLog = { length: 0, lba: 0, fua: false };
  readonly #done = Promise.withResolvers<StreamResult>();
  #pending = false;
  /** The pending log's wait for room was counted. */
  #waitCounted = false;
  #ended = false;
  #settled = false;
  #outstanding = 0;
  #posted = 0;
  #replicated = 0;
  #failed = 0;
  #failure: Error | undefined;

  /** A stream of `producer`'s logs into `engine`, at most `depth` in flight; `pump()` starts it. */
  constructor(
    producer: LogProducer,
    engine: PrimaryEngine,
    limits: { maxLogBytes: number; depth: number },
  ) {
    this.#producer = producer;
    this.#engine = engine;
    this.#maxLogBytes = limits.maxLogBytes;
    this.#depth = limits.depth;
  }

  /** Resolves when the producer has no more and every posted log was answered. */
  get done(): Promise<StreamResult> {
    return this.#done.promise;
  }

  /** Whether logs are still to come or in flight. */
  get active(): boolean {
    return !this.#settled;
  }

  /** Posts the producer's logs while there is room (`blocked`: promise callers go first). */
  pump(blocked: boolean): void {
    const engine = this.#engine;
    const log = this.#log;
    while (!this.#ended && !blocked && this.#outstanding < this.#depth) {
      if (!this.#pending) {
        if (!this.#producer.next(log)) {
          this.#ended = true;
          break;
        }
        const bad = this.#checkLog(log);
        if (bad) {
          this.abort(bad);
          break;
        }
        this.#pending = true;
      }
      if (!engine.canPost(log.length)) {
        if (!this.#waitCounted) engine.countAdmissionWait();
        this.#waitCounted = true;
        break;
      }
      this.#waitCounted = false;
      const entry = engine.takeLog();
      entry.sink = this;
      this.#pending = false;
      this.#outstanding++;
      this.#posted++;
      const flags = log.fua ? LbaFlags.FUA : 0;
      entry.submitted = performance.now();
      engine.postLog(entry, this.#producer, log.length, log.lba, flags);
    }
    this.#settleIfDone();
  }

  /** Ends the stream: nothing more is pulled; it settles once the logs in flight are answered. */
  abort(error: Error): void {
    this.#failure ??= error;
    this.#ended = true;
    this.#pending = false;
    this.#settleIfDone();
  }

  /** The engine's report: `log` was replicated. */
  replicated(log: ReplicatedLog): void {
    this.#outstanding--;
    this.#replicated++;
    this.#producer.replicated(log);
    this.#settleIfDone();
  }

  /** The engine's report: log `seq` was refused or failed. */
  failed(seq: number, error: Error): void {
    this.#outstanding--;
    this.#failed++;
    this.#producer.failed(seq, error);
    this.#settleIfDone();
  }

  #checkLog(log: StreamLog): RangeError | undefined {
    const { length, lba } = log;
    if (
      !Number.isInteger(length) || length < blockBytes || length % blockBytes !== 0 ||
      length > this.#maxLogBytes
    ) {
      return new RangeError(
        `The producer described a ${length}-byte log: a log is a multiple of ${blockBytes} bytes up to ${this.#maxLogBytes}`,
      );
    }
    if (!Number.isSafeInteger(lba) || lba < 0) {
      return new RangeError(`The producer described lba ${lba}: pass a non-negative integer`);
    }
    return undefined;
  }

  #settleIfDone(): void {
    if (this.#settled || !this.#ended || this.#outstanding > 0) return;
    this.#settled = true;
    this.#engine.settled++; // the awaiting caller needs a turn
    this.#done.resolve({
      posted: this.#posted,
      replicated: this.#replicated,
      failed: this.#failed,
      failure: this.#failure,
    });
  }
}
