/**
 * The benchmark suite, run in the lab: every figure next to a reference measured in the same
 * run on the same devices. perftest's one-way latencies give the protocol's floor; each
 * replication point runs ours and the C reference (`../shared/bench-ref`) interleaved
 * (ours, C, ours, C, ...) in both waits, spinning and event-driven, and reports medians,
 * min-max spreads and ratios of medians; then the latency breakdown of ours, the cache
 * service's commit latency, tracing off/on, the FFI call ways and CRC32C. The report's
 * shape is {@linkcode BenchReport} (documented field by field in the README).
 *
 * @module
 */
import { summarizeBreakdown } from "../trace/breakdown.ts";
import type { Topology } from "../lab/topology.ts";
import { runCLoop } from "./c_loop.ts";
import { type OurCommands, type OursRun, probeOurCommands, runOurs } from "./ours.ts";
import { perftestAnchors, runPerftest } from "./perftest.ts";
import { type ReferenceRun, referenceSource, runReference, type WaitMode } from "./reference.ts";
import {
  bandwidth,
  type BandwidthPoint,
  type CachePoint,
  cachePoint,
  type FloorPoint,
  floors,
  type PerftestEntry,
  perftestEntry,
  type ReplicationPoint,
  replicationPoint,
  reportFormat,
  type RunFigures,
  type Target,
  targets,
} from "./report.ts";
import { interleave, median, ratioOfMedians } from "./repeats.ts";
import {
  type CacheRun,
  cacheRun,
  type CallWayPoint,
  type CrcPoint,
  hotPath,
  machine,
  measureCrc,
} from "./sections.ts";

/** The sections of a bench run, in the order they run. */
export const benchSections = [
  "perftest",
  "replication",
  "breakdown",
  "cache",
  "tracing",
  "callways",
  "crc32c",
] as const;

/** A section of a bench run (`--skip` takes a list of them). */
export type BenchSection = typeof benchSections[number];

/** Ours at one 4 KiB point with `--breakdown` on: the median of each stage. */
export interface BreakdownPoint {
  size: number;
  depth: number;
  wait: string;
  /** Logs stamped on both sides (warm-up included when the commands stamp it). */
  logs: number;
  stages: { name: string; p50_us: number }[];
}

/** The same point with tracing off and on, runs alternating. */
export interface TracingPoint {
  size: number;
  depth: number;
  /** ops/s of each run with tracing off (the default). */
  off: number[];
  /** ops/s of each run with `--trace` on both sides. */
  on: number[];
  /** Median on / median off. */
  ratio: number | null;
}

/** Everything one bench run measured (the `--json` output). */
export interface BenchReport {
  format: string;
  machine: Record<string, string>;
  options: {
    repeats: number;
    logs_4k: number;
    logs_64k: number;
    warmup: number;
    waits: WaitMode[];
    skipped: BenchSection[];
  };
  /** Which contracted options our commands have (`--wait`, `--breakdown`). */
  ours_commands: OurCommands;
  perftest: PerftestEntry[];
  replication: ReplicationPoint[];
  floors: FloorPoint[];
  bandwidth: BandwidthPoint[];
  breakdown: BreakdownPoint[];
  cache: CachePoint[];
  tracing: TracingPoint[];
  call_ways: CallWayPoint[];
  crc32c: CrcPoint[];
  targets: Target[];
  /** What was left out and why. */
  notes: string[];
  /** Runs that failed (the rest of the bench went on without them). */
  failures: string[];
  elapsed_s: number;
}

/** What to measure. */
export interface BenchOptions {
  /** Timed logs per run at 4 KiB. */
  count: number;
  /** Timed logs per run at 64 KiB (fewer: a 64 KiB log is ~4x slower under TCG). */
  countLarge: number;
  /** Logs replicated before timing, the same for ours and C. */
  warmup: number;
  /** Runs of each implementation per point, interleaved. */
  repeats: number;
  points: { size: number; depth: number }[];
  waits: WaitMode[];
  skip: BenchSection[];
  hotRounds: number;
  /** Progress and section lines (stderr). */
  log: (line: string) => void;
}

/** Tracing off/on runs per depth. */
const tracingRuns = 2;
/** Logs per cache run (the cache service is slower than raw replication: ~75 s per 1000). */
const cacheLogsMax = 500;

/** Runs every section not skipped; a failing run is recorded in `failures` and skipped. */
export async function runBench(topology: Topology, o: BenchOptions): Promise<BenchReport> {
  const started = performance.now();
  const has = (s: BenchSection) => !o.skip.includes(s);
  const report: BenchReport = {
    format: reportFormat,
    machine: machine(),
    options: {
      repeats: o.repeats,
      logs_4k: o.count,
      logs_64k: o.countLarge,
      warmup: o.warmup,
      waits: o.waits,
      skipped: o.skip,
    },
    ours_commands: { wait: false, breakdown: false, v8_flags: [] },
    perftest: [],
    replication: [],
    floors: [],
    bandwidth: [],
    breakdown: [],
    cache: [],
    tracing: [],
    call_ways: [],
    crc32c: [],
    targets: [],
    notes: [],
    failures: [],
    elapsed_s: 0,
  };
  const m = report.machine;
  o.log(`bench: ${m.cpu}; kernel ${m.kernel}; ${m.lab}`);
  const can = await probeOurCommands();
  report.ours_commands = can;
  if (!can.wait) {
    report.notes.push("Our commands have no --wait yet: ours ran with its default wait in both");
  }
  const haveC = referenceSource() !== undefined;
  if (!haveC) report.notes.push("The C reference (../shared/bench-ref) is absent: no C figures");
  const breakdownDepths = has("breakdown") && can.breakdown ? [1, 16] : [];
  if (has("breakdown") && !can.breakdown) {
    report.notes.push("Our commands have no --breakdown yet: no latency breakdown");
  }
  const steps = new Steps(o.log, started, {
    perftest: has("perftest") ? perftestAnchors.length : 0,
    replication: has("replication")
      ? o.points.length * o.waits.length * o.repeats * (haveC ? 2 : 1)
      : 0,
    breakdown: breakdownDepths.length,
    cache: has("cache") ? 2 * o.repeats : 0,
    tracing: has("tracing") ? 2 * tracingRuns * 2 : 0,
    callways: has("callways") ? 3 : 0,
    crc32c: has("crc32c") ? 1 : 0,
  });
  const attempt = async <T>(what: string, fn: () => Promise<T>): Promise<T | undefined> => {
    steps.next(what);
    try {
      return await fn();
    } catch (error) {
      const message = `${what}: ${(error as Error).message}`;
      report.failures.push(message);
      o.log(`bench: FAILED ${message}`);
      return undefined;
    }
  };
  const logsAt = (size: number) => size >= 65536 ? o.countLarge : o.count;

  if (has("perftest")) {
    for (const { tool, size, iterations } of perftestAnchors) {
      const r = await attempt(
        `perftest ${tool} -s ${size}`,
        () => runPerftest(topology, { tool, size, iterations }),
      );
      if (r) report.perftest.push(perftestEntry(r));
    }
  }

  if (has("replication")) {
    for (const { size, depth } of o.points) {
      for (const wait of o.waits) {
        const logs = logsAt(size);
        const where = `${size / 1024} KiB depth ${depth} ${wait}`;
        const ours: RunFigures[] = [];
        const c: RunFigures[] = [];
        const order = interleave("ours", "c", o.repeats);
        for (const [i, who] of order.entries()) {
          const what = `replication ${where}: ${who} (repeat ${(i >> 1) + 1}/${o.repeats})`;
          if (who === "ours") {
            const run = await attempt(
              what,
              () => runOurs(topology, { size, depth, count: logs, warmup: o.warmup, wait, can }),
            );
            if (run) ours.push(oursFigures(run));
          } else if (haveC) {
            const run = await attempt(
              what,
              () => runReference(topology, { size, depth, count: logs, warmup: o.warmup, wait }),
            );
            if (run) c.push(cFigures(run));
          }
        }
        report.replication.push(
          replicationPoint({
            size,
            depth,
            wait,
            logs,
            warmup: o.warmup,
            ours,
            c: haveC ? c : undefined,
          }),
        );
      }
    }
    report.floors = floors(report.perftest, report.replication);
    report.bandwidth = bandwidth(report.perftest, report.replication);
  }

  for (const depth of breakdownDepths) {
    const size = 4096;
    const wait: WaitMode = "events";
    const dir = await Deno.makeTempDir({ prefix: "rrl-bench-breakdown-" });
    const files = { primary: `${dir}/primary.json`, replica: `${dir}/replica.json` };
    const point = await attempt(`breakdown ${size / 1024} KiB depth ${depth} ${wait}`, async () => {
      await runOurs(topology, {
        size,
        depth,
        count: o.count,
        warmup: o.warmup,
        wait,
        can,
        breakdown: files,
      });
      const s = await summarizeBreakdown(files.primary, files.replica);
      const stages = s.stages.map((x) => ({ name: x.name, p50_us: x.p50Us }));
      return { size, depth, wait, logs: s.logs, stages };
    }).finally(() => Deno.remove(dir, { recursive: true }).catch(() => {}));
    if (point) report.breakdown.push(point);
  }

  if (has("cache")) {
    for (const depth of [1, 16]) {
      const size = 4096;
      const logs = Math.min(o.count, cacheLogsMax);
      const runs: CacheRun[] = [];
      for (let i = 0; i < o.repeats; i++) {
        const what = `cache commit ${size / 1024} KiB depth ${depth} (repeat ${
          i + 1
        }/${o.repeats})`;
        const run = await attempt(what, () => cacheRun(topology, { size, depth, count: logs }));
        if (run) runs.push(run);
      }
      report.cache.push(cachePoint({ size, depth, logs }, runs));
    }
  }

  if (has("tracing")) {
    for (const depth of [1, 16]) {
      const point: TracingPoint = { size: 4096, depth, off: [], on: [], ratio: null };
      for (let i = 0; i < tracingRuns * 2; i++) {
        const traced = i % 2 === 1;
        const what = `tracing ${traced ? "on" : "off"} 4 KiB depth ${depth} (run ${(i >> 1) + 1})`;
        const run = await attempt(what, () =>
          runOurs(topology, {
            size: 4096,
            depth,
            count: o.count,
            warmup: o.warmup,
            can,
            traced,
          }));
        if (run) (traced ? point.on : point.off).push(run.summary.ops_per_s);
      }
      point.ratio = ratioOfMedians(median(point.on), median(point.off));
      report.tracing.push(point);
    }
  }

  if (has("callways")) {
    for (const way of ["libffi", "fnptr"]) {
      const r = await attempt(`FFI call way ${way}`, () => hotPath(topology, way, o.hotRounds));
      if (r) report.call_ways.push(r);
    }
    const c = await attempt(
      "FFI call way: the same loop in C",
      () => runCLoop(topology, { rounds: o.hotRounds }),
    );
    if (c) {
      report.call_ways.push({
        way: "c",
        ns_per_round: c.nsPerRound,
        ns_per_empty_poll: c.nsPerEmptyPoll,
      });
    }
  }

  if (has("crc32c")) {
    steps.next("CRC32C backends");
    report.crc32c = measureCrc();
  }
  report.targets = targets(report);
  report.elapsed_s = Math.round((performance.now() - started) / 1000);
  return report;
}

function oursFigures(run: OursRun): RunFigures {
  return {
    ops_per_s: run.summary.ops_per_s,
    mb_per_s: run.summary.mb_per_s,
    p50_us: run.summary.p50,
    p99_us: run.summary.p99,
    cpu_us_per_log: run.cpuUsPerLog,
    replica_cpu_us_per_log: run.replicaCpuUsPerLog,
    wait: run.wait ?? null,
  };
}

function cFigures(run: ReferenceRun): RunFigures {
  return {
    ops_per_s: run.ops_per_s,
    mb_per_s: run.mb_per_s,
    p50_us: run.p50,
    p99_us: run.p99,
    cpu_us_per_log: run.cpu_us_per_log,
    replica_cpu_us_per_log: run.replica_cpu_us_per_log,
    wait: run.wait,
  };
}

/** Progress lines: `bench: [12/63 4m05s] replication 4 KiB depth 16 spin: c (repeat 2/3)`. */
class Steps {
  #done = 0;
  #total: number;

  constructor(
    private readonly log: (line: string) => void,
    private readonly started: number,
    counts: Record<BenchSection, number>,
  ) {
    this.#total = Object.values(counts).reduce((x, y) => x + y, 0);
  }

  next(what: string): void {
    this.#done++;
    const s = Math.round((performance.now() - this.started) / 1000);
    const clock = `${Math.floor(s / 60)}m${String(s % 60).padStart(2, "0")}s`;
    this.log(`bench: [${this.#done}/${this.#total} ${clock}] ${what}`);
  }
}
