/**
 * Our side of a bench point: `cmd/replica.ts --once` on B and `cmd/primary.ts` on A as
 * separate processes, like a user runs them, read back through their `--json` reports
 * (decoded and checked by `lib/tools/`). Figures a command does not report are
 * `undefined`, never 0.
 *
 * @example
 * ```ts ignore
 * import { readTopology } from "../lab/topology.ts";
 * import { probeOurCommands, runOurs } from "./ours.ts";
 * const topology = readTopology()!;
 * const can = await probeOurCommands();
 * const run = await runOurs(topology, { size: 4096, depth: 1, count: 2000, warmup: 1000, can });
 * console.log(run.summary.ops_per_s, run.cpuUsPerLog ?? "n/a");
 * ```
 *
 * @module
 */
import { hotPathV8Flags, randomSecret } from "../lab/processes.ts";
import type { Topology } from "../lab/topology.ts";
import { runPrimary, startReplica } from "../tools/lab.ts";
import type { WaitMode } from "./reference.ts";
import { BenchToolError } from "./perftest.ts";
import type { LatencySummary } from "./summary.ts";

/** Bound of one of our primary runs (warm-up included). */
export const oursTimeoutMs = 300_000;
/** How long the replica may take to exit on its own after the primary ended. */
export const oursReplicaExitMs = 15_000;
const countMax = 10_000_000;

/** Which of the contracted options our commands have. */
export interface OurCommands {
  /** `--wait <spin|events>` on both `cmd/primary.ts` and `cmd/replica.ts`. */
  wait: boolean;
  /** `--breakdown FILE` on both commands. */
  breakdown: boolean;
  /** The V8 flags both commands ran with ({@linkcode hotPathV8Flags}). */
  v8_flags: readonly string[];
}

/** Options of {@linkcode runOurs}. */
export interface OursOptions {
  size: number;
  depth: number;
  /** Timed logs. */
  count: number;
  /** Logs replicated before the timed ones (`--warmup`). */
  warmup: number;
  /** What the commands accept: from {@linkcode probeOurCommands}. */
  can: OurCommands;
  /** `--wait` of both sides; ignored (and said in `wait`) when the commands lack it. */
  wait?: WaitMode;
  /** `--trace` on both sides into temporary files (removed after). */
  traced?: boolean;
  /** `--breakdown` files of the primary and the replica (kept for the caller). */
  breakdown?: { primary: string; replica: string };
}

/** What one run of ours reported. */
export interface OursRun {
  summary: LatencySummary;
  /** The wait the primary reports using, or `undefined` when it does not say. */
  wait?: string;
  /** The primary's process CPU µs over the timed logs / timed logs. */
  cpuUsPerLog?: number;
  /** The replica's process CPU µs from its first session to its end / logs served. */
  replicaCpuUsPerLog?: number;
}

/**
 * What our commands accept: `--wait` and `--breakdown` are part of both commands' typed
 * options (`lib/tools/primary.ts`, `lib/tools/replica.ts`), so `deno check` proves them;
 * nothing needs probing any more. Kept async for callers.
 */
export function probeOurCommands(): Promise<OurCommands> {
  return Promise.resolve({ wait: true, breakdown: true, v8_flags: hotPathV8Flags });
}

/**
 * Replicates `count` logs (after `warmup`) with our commands and returns the primary's
 * summary plus the CPU figures both sides report.
 * @throws {BenchToolError} when a side fails or acks fewer logs than asked.
 */
export async function runOurs(topology: Topology, o: OursOptions): Promise<OursRun> {
  checkInt("size", o.size, 4096, 64 << 20);
  checkInt("depth", o.depth, 1, 1000);
  checkInt("count", o.count, 1, countMax);
  checkInt("warmup", o.warmup, 0, countMax);
  if (o.breakdown && !o.can.breakdown) {
    throw new BenchToolError("Our commands have no --breakdown option yet: cannot run a breakdown");
  }
  const env = { RRL_SECRET: randomSecret() };
  const { a, b } = topology;
  const traceDir = o.traced ? await Deno.makeTempDir({ prefix: "rrl-bench-trace-" }) : undefined;
  const perSide = (side: "primary" | "replica") => ({
    wait: o.wait && o.can.wait ? o.wait : undefined,
    trace: traceDir ? `${traceDir}/${side}.trace.jsonl` : undefined,
    breakdown: o.breakdown?.[side],
  });
  try {
    await using replica = await startReplica(b, {
      ring: "64m",
      slots: Math.max(64, o.depth + 2),
      once: true,
      ...perSide("replica"),
    }, { env });
    const out = await runPrimary({ from: a, to: b, port: replica.port }, {
      count: o.count,
      size: String(o.size),
      depth: o.depth,
      ring: "64m",
      lba: "seq",
      warmup: o.warmup,
      ...perSide("primary"),
    }, { env, timeoutMs: oursTimeoutMs }).catch((error: Error) => {
      throw new BenchToolError(`Our primary failed: ${error.message}`);
    });
    const result = out.report.result;
    if (out.code !== 0 || result.acked !== o.count) {
      throw new BenchToolError(
        `Our primary acked ${result.acked} of ${o.count} logs of ${o.size} B at depth ` +
          `${o.depth} (exit ${out.code}): ${result.failure ?? "see its messages above"}`,
      );
    }
    const bound = setTimeout(() => replica.stop(), oursReplicaExitMs);
    const report = await replica.report().catch(() => undefined).finally(() => clearTimeout(bound));
    return {
      summary: result.summary,
      wait: result.wait,
      cpuUsPerLog: figure(result.cpuUsPerLog),
      replicaCpuUsPerLog: figure(report?.cpuUsPerLog),
    };
  } finally {
    if (traceDir) await Deno.remove(traceDir, { recursive: true }).catch(() => {});
  }
}

/** A reported figure: a finite number ≥ 0, else `undefined` (absent, never 0). */
function figure(value: unknown): number | undefined {
  return typeof value === "number" && Number.isFinite(value) && value >= 0 ? value : undefined;
}

function checkInt(name: string, value: number, min: number, max: number): void {
  if (!Number.isSafeInteger(value) || value < min || value > max) {
    throw new RangeError(`Our bench run's ${name} must be an integer ${min}..${max}, got ${value}`);
  }
}
