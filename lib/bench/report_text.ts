/**
 * The human form of a {@linkcode BenchReport}: one section per measurement, medians with
 * their min-max spread, ratios of medians, and the targets met or missed (and by how much).
 *
 * @module
 */
import type { BenchReport } from "./replication_bench.ts";
import type { ReplicationPoint, SideSummary } from "./report.ts";
import { targetMargin } from "./report.ts";
import type { Spread } from "./repeats.ts";

/** A number with `digits` decimals, or `n/a` when absent. */
function num(v: number | null | undefined, digits = 0): string {
  return typeof v === "number" && Number.isFinite(v) ? v.toFixed(digits) : "n/a";
}

/** A ratio like `0.93x`, or `n/a`. */
function times(v: number | null | undefined): string {
  return typeof v === "number" && Number.isFinite(v) ? `${v.toFixed(2)}x` : "n/a";
}

/** `median [min-max]`. */
function withSpread(v: number | null, s: Spread | null, digits = 0): string {
  return s ? `${num(v, digits)} [${num(s.min, digits)}-${num(s.max, digits)}]` : num(v, digits);
}

function sideLine(name: string, s: SideSummary | null): string {
  if (!s) return `    ${name.padEnd(4)} n/a (absent)`;
  const sp = s.spread;
  return `    ${name.padEnd(4)} ops/s ${withSpread(s.ops_per_s, sp.ops_per_s)}, ` +
    `p50 ${withSpread(s.p50_us, sp.p50_us)} us, p99 ${withSpread(s.p99_us, sp.p99_us)} us, ` +
    `CPU/log primary ${withSpread(s.cpu_us_per_log, sp.cpu_us_per_log)} us, ` +
    `replica ${withSpread(s.replica_cpu_us_per_log, sp.replica_cpu_us_per_log)} us ` +
    `(${s.runs.length} runs, wait ${s.wait ?? "not reported"})`;
}

function pointLines(p: ReplicationPoint): string[] {
  const r = p.ratio;
  return [
    `  ${p.size / 1024} KiB depth ${p.depth} ${p.wait}: ${p.repeats} repeats x ${p.logs} logs ` +
    `(+${p.warmup} warm-up each)`,
    sideLine("ours", p.ours),
    sideLine("C", p.c),
    `    ours/C (ratio of medians): ops/s ${times(r.ops_per_s)}, p50 ${times(r.p50)}, ` +
    `p99 ${times(r.p99)}, CPU/log primary ${times(r.cpu_us_per_log)}, ` +
    `replica ${times(r.replica_cpu_us_per_log)}`,
  ];
}

/** The whole report as lines of text. */
export function formatReport(r: BenchReport): string {
  const out: string[] = [];
  const m = r.machine;
  out.push(`\n== machine: ${m.cpu}, kernel ${m.kernel}, ${m.lab}, Deno ${m.deno}`);
  out.push(
    `   ${r.options.repeats} repeats per point, interleaved (ours, C, ours, C, ...); ` +
      `${r.options.logs_4k} logs per 4 KiB run, ${r.options.logs_64k} per 64 KiB run, ` +
      `${r.options.warmup} warm-up logs before each (ours and C alike); ${r.elapsed_s} s in all`,
  );
  if (r.options.skipped.length) out.push(`   skipped: ${r.options.skipped.join(", ")}`);

  out.push("\n== perftest on the same devices (latencies are one way: half the round trip)");
  for (const p of r.perftest) {
    out.push(
      "typical_us" in p
        ? `  ${p.tool} -s ${p.bytes}: typical ${num(p.typical_us, 1)} us, avg ${
          num(p.avg_us, 1)
        } us, p99 ${num(p.p99_us, 1)} us`
        : `  ${p.tool} -s ${p.bytes}: ${num(p.avg_mb_per_s, 1)} MB/s (perftest MB = 2^20 B)`,
    );
  }

  out.push("\n== replication: ours (Deno, FFI) vs the C reference; median [min-max] over repeats");
  for (const p of r.replication) out.push(...pointLines(p));

  if (r.floors.length) {
    out.push(
      "\n== depth-1 p50 vs the protocol's floor (ib_write_lat -s SIZE + ib_send_lat -s 64, typical)",
    );
    for (const f of r.floors) {
      out.push(
        `  ${f.size / 1024} KiB ${f.wait}: floor ${num(f.write_lat_us, 1)} + ${
          num(f.send_lat_us, 1)
        } = ${num(f.floor_us, 1)} us; ours ${times(f.ours_p50_ratio)}, C ${times(f.c_p50_ratio)}`,
      );
    }
  }
  for (const b of r.bandwidth) {
    out.push(
      `  64 KiB depth 16 ${b.wait}: ours ${num(b.ours_mb_per_s, 1)} MB/s, C ${
        num(b.c_mb_per_s, 1)
      } MB/s vs ib_write_bw ${num(b.ib_write_bw_mb_per_s, 1)} MB/s (10^6 B): ours ${
        times(b.ours_ratio)
      }, C ${times(b.c_ratio)}`,
    );
  }

  if (r.breakdown.length) {
    out.push("\n== latency breakdown of ours (CLOCK_MONOTONIC on both sides; median per stage)");
    for (const b of r.breakdown) {
      const stages = b.stages.map((s) => `${s.name} ${num(s.p50_us, 1)}`).join(", ");
      out.push(`  ${b.size / 1024} KiB depth ${b.depth} ${b.wait} (${b.logs} logs): ${stages} us`);
    }
  }

  if (r.cache.length) {
    out.push(
      "\n== host cache service: commit latency (NVMe submission to completion) vs replication " +
        "(log to ack), same runs",
    );
    for (const c of r.cache) {
      out.push(
        `  ${c.size / 1024} KiB depth ${c.depth} (${c.repeats} runs x ${c.logs} logs): commit p50 ${
          withSpread(c.commit_p50_us, c.spread.commit_p50_us)
        } us, replication p50 ${
          withSpread(c.replication_p50_us, c.spread.replication_p50_us)
        } us; commit/replication ${times(c.ratio)}`,
      );
    }
  }

  if (r.tracing.length) {
    out.push("\n== tracing: the same point with --trace off (default) and on, runs alternating");
    for (const t of r.tracing) {
      out.push(
        `  ${t.size / 1024} KiB depth ${t.depth}: off ${t.off.map((x) => num(x)).join(", ")} ` +
          `ops/s, on ${t.on.map((x) => num(x)).join(", ")} ops/s; on/off ${times(t.ratio)}`,
      );
    }
  }

  if (r.call_ways.length) {
    out.push("\n== FFI call ways: one round = post_send + post_recv + poll_cq until both complete");
    const c = r.call_ways.find((w) => w.way === "c");
    for (const w of r.call_ways) {
      out.push(
        `  ${w.way.padEnd(7)} ${num(w.ns_per_round).padStart(9)} ns/round (${
          times(c ? w.ns_per_round / c.ns_per_round : null)
        } of C)  ${num(w.ns_per_empty_poll).padStart(6)} ns per empty poll_cq (${
          times(c ? w.ns_per_empty_poll / c.ns_per_empty_poll : null)
        } of C)`,
      );
    }
  }

  if (r.crc32c.length) {
    out.push("\n== CRC32C");
    for (const x of r.crc32c) {
      out.push(`  ${x.backend.padEnd(5)} ${String(x.size).padStart(6)} B: ${num(x.mb_per_s)} MB/s`);
    }
  }

  out.push("\n== targets (issue 12 section 2; ratios of medians)");
  const met = r.targets.filter((t) => t.met === true).length;
  const missed = r.targets.filter((t) => t.met === false).length;
  for (const t of r.targets) {
    out.push(
      `  ${t.met === true ? "met   " : t.met === false ? "MISSED" : "n/a   "} ${t.name}: ${
        times(t.value)
      } (limit ${t.op} ${t.limit.toFixed(2)}x) ${t.met === true ? "" : targetMargin(t)}`.trimEnd(),
    );
  }
  out.push(
    `  ${met} met, ${missed} missed, ${r.targets.length - met - missed} not measured`,
  );
  for (const note of r.notes) out.push(`note: ${note}`);
  for (const failure of r.failures) out.push(`FAILED: ${failure.split("\n")[0]}`);
  return out.join("\n");
}
