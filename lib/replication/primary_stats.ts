/**
 * The primary's counters and its latency histogram (submission to OK ack).
 *
 * @module
 */
import { LatencyRecorder, type LatencySummary } from "../bench/summary.ts";

/** A snapshot of {@linkcode PrimaryStats}. */
export interface PrimaryStatsValue {
  /** Logs posted for the first time. */
  posted: number;
  /** Logs acknowledged OK. */
  ackedLogs: number;
  /** Bytes of the logs acknowledged OK. */
  ackedBytes: number;
  /** Logs the replica refused. */
  refused: number;
  /** Logs failed when the primary stopped (its final failure). */
  failed: number;
  /** Logs posted again after a refusal or a new session. */
  resends: number;
  /** SKIP records posted (holes left by failed logs). */
  skips: number;
  /** Logs that waited for ring space or credits before being posted. */
  admissionWaits: number;
  /** Logs that gave up waiting for ring space (BackpressureError). */
  admissionTimeouts: number;
  /** Most bytes ever written ahead of the replica's released position. */
  maxAheadBytes: number;
  /** Sessions that broke and were suspended. */
  suspensions: number;
  /** Resumed sessions and their fault-to-first-ack times (ms, the last 1000). */
  recoveries: number;
  /** Fault-to-first-ack time of each resumed session, ms. */
  recoveryMs: number[];
  /** Logs posted and not yet answered. */
  inFlight: number;
  /** The sequence number of the next log. */
  nextSeq: number;
  /** The replica's released position (credits) and this side's write position. */
  released: number;
  /** This side's write position in the ring. */
  writePos: number;
  /** Since the primary started, in ms. */
  elapsedMs: number;
  /** Ops/s, MB/s and latency percentiles (µs) of the acked logs. */
  summary: LatencySummary;
}

/** Counters fed by the engine. */
export class PrimaryStats {
  posted = 0;
  refused = 0;
  failed = 0;
  resends = 0;
  skips = 0;
  admissionWaits = 0;
  /** Logs that waited longer than the admission timeout for room and failed. */
  admissionTimeouts = 0;
  /** Most bytes ever placed beyond the replica's released position (≤ ringBytes). */
  maxAheadBytes = 0;
  /** Sessions that broke (and were resumed, or not). */
  suspensions = 0;
  readonly #recoveryMs: number[] = [];
  #recoveries = 0;
  readonly #started = performance.now();
  readonly #latency = new LatencyRecorder();

  /** A session was resumed: `ms` from the fault to the first new ack (last 1000 kept). */
  recovered(ms: number): void {
    this.#recoveries++;
    if (this.#recoveryMs.length >= 1000) this.#recoveryMs.shift();
    this.#recoveryMs.push(ms);
  }

  /**
   * Counts an acked log; its latency goes to `latency.pending` (written by the caller, see
   * {@linkcode LatencyRecorder.pending}): no number is passed, none is boxed.
   */
  acked(length: number): void {
    this.#latency.addBytes(length);
  }

  /** The latency histogram (its `pending` buffer is written per acked log). */
  get latency(): LatencyRecorder {
    return this.#latency;
  }

  /** A snapshot; `engine` supplies the live positions. */
  value(
    engine: { inFlight: number; nextSeq: number; released: number; ring: { writePos: number } },
  ): PrimaryStatsValue {
    const elapsedMs = Math.max(performance.now() - this.#started, 0.001);
    return {
      posted: this.posted,
      ackedLogs: this.#latency.count,
      ackedBytes: this.#latency.bytes,
      refused: this.refused,
      failed: this.failed,
      resends: this.resends,
      skips: this.skips,
      admissionWaits: this.admissionWaits,
      admissionTimeouts: this.admissionTimeouts,
      maxAheadBytes: this.maxAheadBytes,
      suspensions: this.suspensions,
      recoveries: this.#recoveries,
      recoveryMs: [...this.#recoveryMs],
      inFlight: engine.inFlight,
      nextSeq: engine.nextSeq,
      released: engine.released,
      writePos: engine.ring.writePos,
      elapsedMs,
      summary: this.#latency.summary(elapsedMs),
    };
  }
}
