/**
 * Latency and throughput summaries (an HDR histogram from `hdr-histogram-js`) and a
 * progress bar (`cli-progress`) that only draws on a terminal.
 *
 * @example
 * ```ts
 * import { formatSummary, LatencyRecorder } from "./summary.ts";
 * const recorder = new LatencyRecorder();
 * const t0 = performance.now();
 * for (let i = 0; i < 1000; i++) recorder.record(150 + (i % 50), 4096);
 * console.log(formatSummary(recorder.summary(performance.now() - t0)));
 * ```
 *
 * @module
 */
import cliProgress from "cli-progress";
import * as hdr from "hdr-histogram-js";

/** Latencies a {@linkcode LatencyRecorder} buffers before feeding its histogram. */
export const pendingLatenciesMax = 1024;

/** Largest latency the histogram resolves (60 s); longer ones count as 60 s. */
export const latencyUsMax = 60_000_000;

/** What a run measured; latencies in microseconds, MB/s in 10^6 bytes per second. */
export interface LatencySummary {
  /** Latencies recorded (acked logs). */
  count: number;
  /** Logs per second over the run. */
  ops_per_s: number;
  /** Payload MB (10^6 bytes) per second over the run. */
  mb_per_s: number;
  /** Median latency, µs. */
  p50: number;
  /** 90th percentile latency, µs. */
  p90: number;
  /** 99th percentile latency, µs. */
  p99: number;
  /** 99.9th percentile latency, µs. */
  p999: number;
  /** Largest latency, µs. */
  max: number;
}

/**
 * Records latencies (µs) and bytes per op into an HDR histogram with 3 significant
 * digits and 1 ns resolution; `record` allocates nothing.
 */
export class LatencyRecorder {
  #histogram: hdr.Histogram;
  #bytes = 0;

  /** Builds the histogram once (a few hundred KiB of counters, no auto-resize). */
  constructor() {
    this.#histogram = hdr.build({
      lowestDiscernibleValue: 1,
      highestTrackableValue: latencyUsMax * 1000,
      numberOfSignificantValueDigits: 3,
      autoResize: false,
      useWebAssembly: false,
    });
  }

  /** Records one op: its latency in µs (negative or NaN throws) and the bytes it moved. */
  record(latencyUs: number, bytes = 0): void {
    if (!(latencyUs >= 0)) {
      throw new RangeError(`Cannot record latency ${latencyUs} µs: pass a number ≥ 0`);
    }
    this.#recordNow(latencyUs);
    this.#bytes += bytes;
  }

  /**
   * Latencies (µs) waiting to be recorded, for hot paths: write `pending[pendingCount++]`
   * (and {@linkcode addBytes}), then call {@linkcode recordPending} once `pendingCount`
   * reaches `pending.length`. A typed-array store boxes nothing in any tier of V8, where a
   * latency passed as an argument to a call V8 did not inline is a heap number per op; the
   * histogram is then fed in a loop that V8 optimizes fully. Reads flush it first.
   */
  readonly pending = new Float64Array(pendingLatenciesMax);
  /** Entries of `pending` in use. */
  pendingCount = 0;

  /** Adds bytes moved (the pending ops' payload). */
  addBytes(bytes: number): void {
    this.#bytes += bytes;
  }

  /** Records the pending latencies (a negative or NaN one throws) and empties the buffer. */
  recordPending(): void {
    const n = this.pendingCount;
    this.pendingCount = 0;
    for (let i = 0; i < n; i++) {
      const latencyUs = this.pending[i];
      if (!(latencyUs >= 0)) {
        throw new RangeError(`Cannot record latency ${latencyUs} µs: pass a number ≥ 0`);
      }
      this.#recordNow(latencyUs);
    }
  }

  #recordNow(latencyUs: number): void {
    const ns = Math.round(latencyUs * 1000);
    this.#histogram.recordValue(ns < 1 ? 1 : ns > latencyUsMax * 1000 ? latencyUsMax * 1000 : ns);
  }

  /** Ops recorded so far. */
  get count(): number {
    this.recordPending();
    return this.#histogram.totalCount;
  }

  /** Bytes recorded so far. */
  get bytes(): number {
    return this.#bytes;
  }

  /** The summary over `elapsedMs` of wall time (the rates' denominator; must be > 0). */
  summary(elapsedMs: number): LatencySummary {
    if (!(elapsedMs > 0) || !Number.isFinite(elapsedMs)) {
      throw new RangeError(`Cannot summarize over ${elapsedMs} ms: pass the run's wall time > 0`);
    }
    this.recordPending();
    const h = this.#histogram;
    // A percentile is its bucket's upper edge: never report one above the maximum.
    const us = (percentile: number) =>
      Math.min(h.getValueAtPercentile(percentile), h.maxValue) / 1000;
    const count = h.totalCount;
    return {
      count,
      ops_per_s: count / (elapsedMs / 1000),
      mb_per_s: this.#bytes / 1e6 / (elapsedMs / 1000),
      p50: count ? us(50) : 0,
      p90: count ? us(90) : 0,
      p99: count ? us(99) : 0,
      p999: count ? us(99.9) : 0,
      max: count ? h.maxValue / 1000 : 0,
    };
  }

  /** Forgets every recorded op. */
  reset(): void {
    this.pendingCount = 0;
    this.#histogram.reset();
    this.#bytes = 0;
  }
}

/** One line like `count=5000 ops/s=3669 MB/s=15.0 p50=174.0us ... max=2310.0us`. */
export function formatSummary(s: LatencySummary): string {
  const us = (v: number) => `${v.toFixed(1)}us`;
  return `count=${s.count} ops/s=${s.ops_per_s.toFixed(0)} MB/s=${s.mb_per_s.toFixed(1)} ` +
    `p50=${us(s.p50)} p90=${us(s.p90)} p99=${us(s.p99)} p999=${us(s.p999)} max=${us(s.max)}`;
}

/** A progress display: {@linkcode progress} returns one. */
export interface Progress {
  /** Sets the number of finished items. */
  update(done: number): void;
  /** Stops the bar and ends its line; idempotent. */
  stop(): void;
}

/**
 * A progress bar on stderr for `total` items, drawn only when stderr is a terminal; on a
 * pipe, a file or CI it prints nothing at all.
 */
export function progress(total: number, label: string): Progress {
  if (!Number.isSafeInteger(total) || total < 1) {
    throw new RangeError(`Cannot show progress of ${total} items: pass an integer ≥ 1`);
  }
  if (!Deno.stderr.isTerminal()) return { update() {}, stop() {} };
  const bar = new cliProgress.SingleBar({
    format: `${label} [{bar}] {percentage}% {value}/{total} eta {eta}s`,
    hideCursor: true,
    fps: 5,
  }, cliProgress.Presets.shades_classic);
  bar.start(total, 0);
  let stopped = false;
  return {
    update(done: number) {
      if (!stopped) bar.update(done);
    },
    stop() {
      if (!stopped) bar.stop();
      stopped = true;
    },
  };
}
