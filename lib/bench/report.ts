/**
 * The bench report (what `deno task bench --json` prints and `.lab/bench/last-report.json`
 * holds) and the pure steps that build it from raw runs: medians and spreads per
 * replication point, ratios of medians, the perftest floor, the bandwidth ratio and the
 * targets of issue 12. Every field is documented in the README's bench section; figures a
 * run did not report are `null`, never 0.
 *
 * @example
 * ```ts
 * import { replicationPoint } from "./report.ts";
 * const run = { ops_per_s: 400, mb_per_s: 1.6, p50_us: 2000, p99_us: 5000 };
 * const point = replicationPoint({
 *   size: 4096,
 *   depth: 1,
 *   wait: "events",
 *   logs: 2000,
 *   warmup: 1000,
 *   ours: [run, run, run],
 *   c: [{ ...run, ops_per_s: 800 }],
 * });
 * console.log(point.ratio.ops_per_s); // 0.5
 * ```
 *
 * @module
 */
import type { PerftestResult } from "./perftest_json.ts";
import { type Figure, ratioOfMedians, type RepeatSummary, summarizeRuns } from "./repeats.ts";

/** Version of the report's shape; bumped when a field changes meaning. */
export const reportFormat = "rrl-bench/2";

/** The figures of one replication run, ours or C. */
export const runFigureKeys = [
  "ops_per_s",
  "mb_per_s",
  "p50_us",
  "p99_us",
  "cpu_us_per_log",
  "replica_cpu_us_per_log",
] as const;

/** A figure of a replication run. */
export type RunFigureKey = typeof runFigureKeys[number];

/** One replication run's figures; the CPU ones may be absent. */
export type RunFigures = Partial<Record<RunFigureKey, Figure>> & {
  /** The wait the implementation reports it used (`null`: it does not say). */
  wait?: string | null;
};

/** One implementation at one point: medians, spreads, the wait it reported, the raw runs. */
export type SideSummary = RepeatSummary<RunFigureKey> & {
  /** The wait every run reported, `mixed` when they differ, `null` when none said. */
  wait: string | null;
  runs: RunFigures[];
};

/** One replication point: ours and C at one size, depth and wait, repeated interleaved. */
export interface ReplicationPoint {
  size: number;
  depth: number;
  /** The wait asked of both implementations. */
  wait: string;
  /** Runs of each implementation (ours, C, ours, C, ...). */
  repeats: number;
  /** Timed logs per run. */
  logs: number;
  /** Warm-up logs per run (the same for both). */
  warmup: number;
  ours: SideSummary;
  /** `null` when the C reference is absent. */
  c: SideSummary | null;
  /** Ours / C, ratios of medians. */
  ratio: {
    ops_per_s: number | null;
    p50: number | null;
    p99: number | null;
    cpu_us_per_log: number | null;
    replica_cpu_us_per_log: number | null;
  };
}

/** The input of {@linkcode replicationPoint}: the raw runs of one point. */
export interface PointRuns {
  size: number;
  depth: number;
  wait: string;
  logs: number;
  warmup: number;
  ours: RunFigures[];
  /** `undefined` when the C reference is absent. */
  c?: RunFigures[];
}

/** Medians, spreads and ratios of one point's runs. */
export function replicationPoint(p: PointRuns): ReplicationPoint {
  const ours = side(p.ours);
  const c = p.c ? side(p.c) : null;
  const r = (key: RunFigureKey) => ratioOfMedians(ours[key], c?.[key] ?? null);
  return {
    size: p.size,
    depth: p.depth,
    wait: p.wait,
    repeats: Math.max(p.ours.length, p.c?.length ?? 0),
    logs: p.logs,
    warmup: p.warmup,
    ours,
    c,
    ratio: {
      ops_per_s: r("ops_per_s"),
      p50: r("p50_us"),
      p99: r("p99_us"),
      cpu_us_per_log: r("cpu_us_per_log"),
      replica_cpu_us_per_log: r("replica_cpu_us_per_log"),
    },
  };
}

function side(runs: RunFigures[]): SideSummary {
  const waits = new Set(runs.map((run) => run.wait ?? null).filter((w) => w !== null));
  const wait = waits.size === 0 ? null : waits.size === 1 ? [...waits][0] : "mixed";
  return { ...summarizeRuns(runs, runFigureKeys), wait, runs };
}

/** A perftest anchor as the report holds it (latencies one way, MB = 2^20 bytes). */
export type PerftestEntry =
  | {
    tool: string;
    bytes: number;
    iterations: number;
    typical_us: number;
    avg_us: number;
    min_us: number;
    max_us: number;
    p99_us: number;
    p999_us: number;
  }
  | {
    tool: string;
    bytes: number;
    iterations: number;
    avg_mb_per_s: number;
    peak_mb_per_s: number;
    msg_rate_mpps: number;
  };

/** perftest's result in the report's naming. */
export function perftestEntry(r: PerftestResult): PerftestEntry {
  const { tool, bytes, iterations } = r;
  return r.kind === "latency"
    ? {
      tool,
      bytes,
      iterations,
      typical_us: r.typicalUs,
      avg_us: r.avgUs,
      min_us: r.minUs,
      max_us: r.maxUs,
      p99_us: r.p99Us,
      p999_us: r.p999Us,
    }
    : {
      tool,
      bytes,
      iterations,
      avg_mb_per_s: r.avgMBps,
      peak_mb_per_s: r.peakMBps,
      msg_rate_mpps: r.msgRateMpps,
    };
}

/**
 * The protocol's floor at one size: the WRITE one way plus the ack SEND one way (the record
 * SEND rides behind the WRITE), from perftest's typical latencies, and each depth-1 p50
 * relative to it.
 */
export interface FloorPoint {
  size: number;
  wait: string;
  write_lat_us: number;
  send_lat_us: number;
  floor_us: number;
  ours_p50_ratio: number | null;
  c_p50_ratio: number | null;
}

/** Floors for every depth-1 point whose size has an `ib_write_lat` anchor. */
export function floors(perftest: PerftestEntry[], points: ReplicationPoint[]): FloorPoint[] {
  const typical = (tool: string, bytes: number) => {
    const entry = perftest.find((p) => p.tool === tool && p.bytes === bytes);
    return entry && "typical_us" in entry ? entry.typical_us : undefined;
  };
  const send = typical("ib_send_lat", 64);
  const out: FloorPoint[] = [];
  for (const p of points.filter((p) => p.depth === 1)) {
    const write = typical("ib_write_lat", p.size);
    if (write === undefined || send === undefined) continue;
    const floor = write + send;
    out.push({
      size: p.size,
      wait: p.wait,
      write_lat_us: write,
      send_lat_us: send,
      floor_us: floor,
      ours_p50_ratio: ratioOfMedians(p.ours.p50_us, floor),
      c_p50_ratio: ratioOfMedians(p.c?.p50_us ?? null, floor),
    });
  }
  return out;
}

/** The 64 KiB depth-16 throughput against `ib_write_bw -s 65536` (converted to 10^6 B/s). */
export interface BandwidthPoint {
  size: number;
  depth: number;
  wait: string;
  ours_mb_per_s: number | null;
  c_mb_per_s: number | null;
  /** perftest's average, converted from 2^20 to 10^6 bytes per second. */
  ib_write_bw_mb_per_s: number;
  ours_ratio: number | null;
  c_ratio: number | null;
}

/** One bandwidth point per wait for the 64 KiB depth-16 points. */
export function bandwidth(perftest: PerftestEntry[], points: ReplicationPoint[]): BandwidthPoint[] {
  const bw = perftest.find((p) => p.tool === "ib_write_bw" && p.bytes === 65536);
  if (!bw || !("avg_mb_per_s" in bw)) return [];
  const anchor = bw.avg_mb_per_s * 1.048576;
  return points.filter((p) => p.size === 65536 && p.depth === 16).map((p) => ({
    size: p.size,
    depth: p.depth,
    wait: p.wait,
    ours_mb_per_s: p.ours.mb_per_s,
    c_mb_per_s: p.c?.mb_per_s ?? null,
    ib_write_bw_mb_per_s: anchor,
    ours_ratio: ratioOfMedians(p.ours.mb_per_s, anchor),
    c_ratio: ratioOfMedians(p.c?.mb_per_s ?? null, anchor),
  }));
}

/** The host cache service at one depth: medians over the repeats, and their ratio. */
export interface CachePoint {
  size: number;
  depth: number;
  repeats: number;
  logs: number;
  /** NVMe submission to completion (the guest's view), median of the runs' p50. */
  commit_p50_us: number | null;
  /** Log posted to OK ack inside the same runs, median of the runs' p50. */
  replication_p50_us: number | null;
  /** commit_p50_us / replication_p50_us. */
  ratio: number | null;
  spread: {
    commit_p50_us: { min: number; max: number } | null;
    replication_p50_us: { min: number; max: number } | null;
  };
}

/** Medians of the cache runs (`commit_p50_us` and `replication_p50_us` of each run). */
export function cachePoint(
  p: { size: number; depth: number; logs: number },
  runs: { commit_p50_us: number; replication_p50_us: number }[],
): CachePoint {
  const s = summarizeRuns(runs, ["commit_p50_us", "replication_p50_us"] as const);
  return {
    ...p,
    repeats: runs.length,
    commit_p50_us: s.commit_p50_us,
    replication_p50_us: s.replication_p50_us,
    ratio: ratioOfMedians(s.commit_p50_us, s.replication_p50_us),
    spread: s.spread,
  };
}

/** One target of issue 12 section 2. */
export interface Target {
  name: string;
  /** The measured ratio; `null` when a figure it needs was not measured. */
  value: number | null;
  limit: number;
  /** `<=`: the value must not exceed the limit; `>=`: it must reach it. */
  op: "<=" | ">=";
  /** `null` when the value is `null` (not measured: neither met nor missed). */
  met: boolean | null;
}

/** Everything the targets are computed from. */
export interface TargetInputs {
  replication: ReplicationPoint[];
  cache: CachePoint[];
  bandwidth: BandwidthPoint[];
}

/** The limits of issue 12 section 2. */
export const targetLimits = {
  p50Ratio: 1.10,
  opsRatio: 0.95,
  cpuRatio: 1.25,
  commitRatio: 1.15,
  bandwidthRatio: 0.85,
} as const;

/**
 * The targets: per replication point p50 ≤ 1.10x C and ops/s ≥ 0.95x C (every wait);
 * events-mode CPU per log ≤ 1.25x C on the primary and on the replica; commit p50 ≤ 1.15x
 * replication p50 per cache depth; 64 KiB depth-16 MB/s ≥ 0.85x `ib_write_bw`.
 */
export function targets(r: TargetInputs): Target[] {
  const out: Target[] = [];
  const add = (name: string, value: number | null, op: "<=" | ">=", limit: number) =>
    out.push({
      name,
      value,
      limit,
      op,
      met: value === null ? null : op === "<=" ? value <= limit : value >= limit,
    });
  const label = (p: { size: number; depth: number; wait?: string }) =>
    `${p.size / 1024} KiB depth ${p.depth}${p.wait ? ` ${p.wait}` : ""}`;
  for (const p of r.replication) {
    add(`p50 ours/C ${label(p)}`, p.ratio.p50, "<=", targetLimits.p50Ratio);
    add(`ops/s ours/C ${label(p)}`, p.ratio.ops_per_s, ">=", targetLimits.opsRatio);
  }
  for (const p of r.replication.filter((p) => p.wait === "events")) {
    add(`primary CPU/log ours/C ${label(p)}`, p.ratio.cpu_us_per_log, "<=", targetLimits.cpuRatio);
    add(
      `replica CPU/log ours/C ${label(p)}`,
      p.ratio.replica_cpu_us_per_log,
      "<=",
      targetLimits.cpuRatio,
    );
  }
  for (const p of r.cache) {
    add(`commit/replication p50 ${label(p)}`, p.ratio, "<=", targetLimits.commitRatio);
  }
  for (const p of r.bandwidth) {
    add(`MB/s ours/ib_write_bw ${label(p)}`, p.ours_ratio, ">=", targetLimits.bandwidthRatio);
  }
  return out;
}

/** How far a target is from its limit: `+0.27x over`, `0.05x short`, or `met`. */
export function targetMargin(t: Target): string {
  if (t.value === null) return "not measured";
  if (t.met) return "met";
  const by = Math.abs(t.value - t.limit);
  const pct = (by / t.limit) * 100;
  return t.op === "<="
    ? `missed: ${by.toFixed(2)}x over (${pct.toFixed(0)}% above the limit)`
    : `missed: ${by.toFixed(2)}x short (${pct.toFixed(0)}% below the limit)`;
}
