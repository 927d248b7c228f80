/**
 * Drives a primary with a seeded workload through its allocation-free stream: `depth` logs
 * in flight, each filled straight into the data ring by {@linkcode DataFiller}, for a count
 * or a duration; records every acked log's latency and counts refusals.
 *
 * @module
 */
import type { LogProducer, Primary, ReplicatedLog, StreamLog } from "../replication/primary.ts";
import { ReplicationError } from "../replication/errors.ts";
import { LatencyRecorder, type LatencySummary } from "./summary.ts";
import { type DataFiller, plannedOp, type WorkloadPlan } from "./workload.ts";

/** Options of {@linkcode runWorkload}. */
export interface RunWorkloadOptions {
  /** What each log is: its size and LBA, drawn from the seeded plan. */
  plan: WorkloadPlan;
  /** Fills each log's bytes in the data ring, stamped and seeded. */
  filler: DataFiller;
  /** Logs to write (stops earlier at `durationMs`). */
  count: number;
  /** Wall-clock bound in ms (Infinity: only the count). */
  durationMs: number;
  /** Logs in flight (≤ the primary's depth). */
  depth: number;
  /** Called with the number of finished logs, at most every `progressEvery`. */
  onProgress?: (done: number) => void;
  /** Finished logs between two `onProgress` calls (default: a small fraction of `count`). */
  progressEvery?: number;
}

/** What a run did. */
export interface WorkloadResult {
  /** Logs handed to the primary. */
  submitted: number;
  /** Logs the replica acknowledged OK. */
  acked: number;
  /** Logs the replica refused (a status other than OK). */
  refused: number;
  /** Acks arrived in submission order (each seq above the one before). */
  inOrder: boolean;
  /** From the first submission to the last answer, in ms. */
  elapsedMs: number;
  /** Throughput and latency percentiles of the acked logs. */
  summary: LatencySummary;
  /** The session's failure, if it ended early. */
  failure?: string;
}

const countMax = 100_000_000;

/** Runs the workload; resolves when every submitted log has been answered. */
export async function runWorkload(
  primary: Primary,
  o: RunWorkloadOptions,
): Promise<WorkloadResult> {
  if (!Number.isSafeInteger(o.count) || o.count < 1 || o.count > countMax) {
    throw new RangeError(`count must be 1..${countMax}, got ${o.count}`);
  }
  if (!Number.isInteger(o.depth) || o.depth < 1 || o.depth > primary.depth) {
    throw new RangeError(`depth must be 1..${primary.depth} (the primary's), got ${o.depth}`);
  }
  const producer = new WorkloadProducer(o);
  const result = await primary.stream(producer, { depth: o.depth });
  const elapsedMs = performance.now() - producer.started;
  o.onProgress?.(producer.acked + producer.refused);
  return {
    submitted: producer.submitted,
    acked: producer.acked,
    refused: producer.refused,
    inOrder: producer.inOrder,
    elapsedMs,
    summary: producer.latency.summary(Math.max(elapsedMs, 0.001)),
    failure: producer.failure ?? result.failure?.message,
  };
}

/**
 * The workload as a {@linkcode LogProducer}: the plan describes each log, the filler
 * writes it into the ring, acks feed the histogram. At most `depth` logs are in flight
 * (the primary's own depth bounds it too). Allocates nothing per log.
 */
class WorkloadProducer implements LogProducer {
  readonly latency = new LatencyRecorder();
  readonly started = performance.now();
  readonly #o: RunWorkloadOptions;
  readonly #op = plannedOp();
  readonly #deadline: number;
  readonly #progressEvery: number;
  submitted = 0;
  acked = 0;
  refused = 0;
  inOrder = true;
  failure: string | undefined;
  #lastSeq = 0;

  constructor(o: RunWorkloadOptions) {
    this.#o = o;
    this.#deadline = this.started + o.durationMs;
    this.#progressEvery = o.progressEvery ?? 100;
  }

  next(out: StreamLog): boolean {
    const o = this.#o;
    if (this.submitted >= o.count || this.failure !== undefined) return false;
    if (o.durationMs !== Infinity && performance.now() >= this.#deadline) return false;
    o.plan.next(this.#op);
    out.length = this.#op.bytes;
    out.lba = this.#op.lba;
    out.fua = false;
    this.submitted++;
    return true;
  }

  fill(ring: Uint8Array, offset: number, length: number): void {
    this.#o.filler.fill(ring, offset, length, this.#op.seq, this.#op.lba);
  }

  replicated(log: ReplicatedLog): void {
    if (log.seq <= this.#lastSeq) this.inOrder = false;
    this.#lastSeq = log.seq;
    this.acked++;
    // Through the pending buffer: a latency passed as an argument is boxed per log.
    const latency = this.latency;
    if (latency.pendingCount >= latency.pending.length) latency.recordPending();
    latency.pending[latency.pendingCount++] = log.latencyUs;
    latency.addBytes(log.length);
    this.#progress();
  }

  failed(_seq: number, error: Error): void {
    if (error instanceof ReplicationError) this.refused++;
    else this.failure ??= error.message;
    this.#progress();
  }

  #progress(): void {
    const done = this.acked + this.refused;
    if (this.#o.onProgress && done % this.#progressEvery === 0) this.#o.onProgress(done);
  }
}
