/**
 * Drives a primary with a seeded workload: `depth` logs in flight, each filled straight
 * into the data ring by {@linkcode DataFiller}, for a count or a duration; records every
 * acked log's latency and counts refusals.
 *
 * @module
 */
import type { Primary } from "../replication/primary.ts";
import { ReplicationError } from "../replication/errors.ts";
import { LatencyRecorder, type LatencySummary } from "./summary.ts";
import { DataFiller, plannedOp, WorkloadPlan } from "./workload.ts";

/** Options of {@linkcode runWorkload}. */
export interface RunWorkloadOptions {
  plan: WorkloadPlan;
  filler: DataFiller;
  /** Logs to write (stops earlier at `durationMs`). */
  count: number;
  /** Wall-clock bound in ms (Infinity: only the count). */
  durationMs: number;
  /** Logs in flight (≤ the primary's depth). */
  depth: number;
  /** Called with the number of finished logs, at most every `progressEvery`. */
  onProgress?: (done: number) => void;
  progressEvery?: number;
}

/** What a run did. */
export interface WorkloadResult {
  submitted: number;
  acked: number;
  refused: number;
  /** Acks arrived in submission order (each seq above the one before). */
  inOrder: boolean;
  elapsedMs: number;
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
  const latency = new LatencyRecorder();
  const op = plannedOp();
  const started = performance.now();
  const deadline = started + o.durationMs;
  const progressEvery = o.progressEvery ?? 100;
  let submitted = 0;
  let acked = 0;
  let refused = 0;
  let lastSeq = 0;
  let inOrder = true;
  let failure: string | undefined;

  const worker = async () => {
    while (submitted < o.count && failure === undefined && performance.now() < deadline) {
      o.plan.next(op);
      const { seq: opIndex, bytes, lba } = op;
      submitted++;
      try {
        const log = await primary.replicate(
          (ring, offset, length) => o.filler.fill(ring, offset, length, opIndex, lba),
          { lba, length: bytes },
        );
        if (log.seq <= lastSeq) inOrder = false;
        lastSeq = log.seq;
        acked++;
        latency.record(log.latencyUs, log.length);
      } catch (error) {
        if (error instanceof ReplicationError) refused++;
        else failure ??= (error as Error).message;
      }
      const done = acked + refused;
      if (o.onProgress && done % progressEvery === 0) o.onProgress(done);
    }
  };
  await Promise.all(Array.from({ length: o.depth }, worker));
  const elapsedMs = performance.now() - started;
  o.onProgress?.(acked + refused);
  return {
    submitted,
    acked,
    refused,
    inOrder,
    elapsedMs,
    summary: latency.summary(Math.max(elapsedMs, 0.001)),
    failure,
  };
}
