/**
 * The bench report's statistics: medians, spreads and ratios of repeated runs, absent
 * figures left out (never 0), the C reference's output lines, the floor, and the targets.
 */
import assert from "node:assert/strict";
import { parseReferenceReplicaLine, parseReferenceResult } from "../../lib/bench/reference.ts";
import { BenchToolError } from "../../lib/bench/perftest.ts";
import {
  interleave,
  median,
  ratioOfMedians,
  spread,
  summarizeRuns,
} from "../../lib/bench/repeats.ts";
import {
  bandwidth,
  cachePoint,
  floors,
  type PerftestEntry,
  replicationPoint,
  type RunFigures,
  targetMargin,
  targets,
} from "../../lib/bench/report.ts";

// Real lines of the C reference from one lab run (4 KiB depth 1, spin, 500 warm-up logs).
const resultLine = "RESULT impl=c size=4096 depth=1 count=1000 ops_per_s=1304 mb_per_s=5.3 " +
  "p50_us=592.8 p90_us=1195.1 p99_us=3333.7 p999_us=5050.2 max_us=6412.4 mismatches=0 " +
  "cpu_us_per_log=373.45 crc=isal wait=spin warmup=500";
const replicaLine = "replica: served 1500 logs, 0 crc mismatches, cpu_us_per_log=590.60";

Deno.test("median of odd and even counts; absent values are left out, not zero", () => {
  assert.equal(median([3, 1, 2]), 2);
  assert.equal(median([4, 1, 3, 2]), 2.5);
  assert.equal(median([5, undefined, null, 1, 3]), 3);
  assert.equal(median([undefined, null]), null);
  assert.equal(median([NaN, 7]), 7);
  assert.deepEqual(spread([5, undefined, 1, 3]), { min: 1, max: 5 });
  assert.equal(spread([]), null);
});

Deno.test("ratio of medians is null when a side is absent or the denominator is not positive", () => {
  assert.equal(ratioOfMedians(3, 2), 1.5);
  assert.equal(ratioOfMedians(null, 2), null);
  assert.equal(ratioOfMedians(3, null), null);
  assert.equal(ratioOfMedians(3, 0), null);
});

Deno.test("summarizeRuns gives each figure's median and a sibling spread", () => {
  const s = summarizeRuns([{ a: 1, b: 10 }, { a: 3 }, { a: 2, b: 30 }], ["a", "b"] as const);
  assert.deepEqual(s, {
    a: 2,
    b: 20,
    spread: { a: { min: 1, max: 3 }, b: { min: 10, max: 30 } },
  });
});

Deno.test("interleave alternates ours and C and refuses a bad repeat count", () => {
  assert.deepEqual(interleave("ours", "c", 3), ["ours", "c", "ours", "c", "ours", "c"]);
  assert.throws(() => interleave("ours", "c", 0), RangeError);
  assert.throws(() => interleave("ours", "c", 1.5), RangeError);
});

Deno.test("the C reference's RESULT line parses with CPU per log, crc, wait and warm-up", () => {
  const r = parseReferenceResult(resultLine);
  assert.equal(r.ops_per_s, 1304);
  assert.equal(r.p50, 592.8);
  assert.equal(r.cpu_us_per_log, 373.45);
  assert.equal(r.crc, "isal");
  assert.equal(r.wait, "spin");
  assert.equal(r.warmup, 500);
  assert.equal(r.count, 1000);
});

Deno.test("an older RESULT line (no cpu_us_per_log, no wait) is refused, saying to update", () => {
  const old = resultLine.replace(/ cpu_us_per_log=.*$/, "");
  assert.throws(
    () => parseReferenceResult(old),
    (e: unknown) => e instanceof BenchToolError && /update \.\.\/shared\/bench-ref/.test(e.message),
  );
  assert.throws(
    () => parseReferenceResult(resultLine.replace("wait=spin", "wait=nap")),
    BenchToolError,
  );
});

Deno.test("the replica's line gives logs served (warm-up included) and CPU per log", () => {
  const stderr = `some warning\n${replicaLine}\n`;
  assert.deepEqual(parseReferenceReplicaLine(stderr), {
    served: 1500,
    mismatches: 0,
    cpuUsPerLog: 590.6,
  });
  assert.equal(parseReferenceReplicaLine("replica killed\n"), undefined);
  assert.throws(
    () => parseReferenceReplicaLine("replica: served many logs"),
    BenchToolError,
  );
});

const ours = (ops: number, p50: number, cpu?: number): RunFigures => ({
  ops_per_s: ops,
  mb_per_s: ops * 4096 / 1e6,
  p50_us: p50,
  p99_us: p50 * 3,
  cpu_us_per_log: cpu,
  replica_cpu_us_per_log: undefined,
  wait: "events",
});

Deno.test("a replication point: medians, spreads and ratios; a figure ours lacks is null", () => {
  const p = replicationPoint({
    size: 4096,
    depth: 1,
    wait: "events",
    logs: 2000,
    warmup: 1000,
    ours: [ours(400, 2000), ours(460, 1800), ours(420, 2200)],
    c: [
      { ...ours(800, 1000, 200), replica_cpu_us_per_log: 210 },
      { ...ours(840, 900, 190), replica_cpu_us_per_log: 220 },
      { ...ours(820, 1100, 210), replica_cpu_us_per_log: 200 },
    ],
  });
  assert.equal(p.repeats, 3);
  assert.equal(p.ours.ops_per_s, 420);
  assert.deepEqual(p.ours.spread.ops_per_s, { min: 400, max: 460 });
  assert.equal(p.ours.cpu_us_per_log, null);
  assert.equal(p.ours.spread.cpu_us_per_log, null);
  assert.equal(p.ours.wait, "events");
  assert.equal(p.c?.cpu_us_per_log, 200);
  assert.equal(p.ratio.ops_per_s, 420 / 820);
  assert.equal(p.ratio.p50, 2000 / 1000);
  assert.equal(p.ratio.cpu_us_per_log, null);
  assert.equal(p.ratio.replica_cpu_us_per_log, null);
  const noC = replicationPoint({ ...p, ours: p.ours.runs, c: undefined });
  assert.equal(noC.c, null);
  assert.equal(noC.ratio.p50, null);
});

Deno.test("mixed waits reported by the runs of one side say 'mixed'", () => {
  const p = replicationPoint({
    size: 4096,
    depth: 1,
    wait: "spin",
    logs: 100,
    warmup: 0,
    ours: [{ ...ours(1, 1), wait: "spin" }, { ...ours(1, 1), wait: "events" }],
  });
  assert.equal(p.ours.wait, "mixed");
});

const perftest: PerftestEntry[] = [
  {
    tool: "ib_write_lat",
    bytes: 4096,
    iterations: 500,
    typical_us: 293.89,
    avg_us: 397.77,
    min_us: 217.8,
    max_us: 2736.22,
    p99_us: 1917.25,
    p999_us: 2736.22,
  },
  {
    tool: "ib_send_lat",
    bytes: 64,
    iterations: 500,
    typical_us: 123.59,
    avg_us: 195.69,
    min_us: 93.53,
    max_us: 1415.6,
    p99_us: 809.13,
    p999_us: 1415.6,
  },
  {
    tool: "ib_write_bw",
    bytes: 65536,
    iterations: 500,
    avg_mb_per_s: 22.33,
    peak_mb_per_s: 22.33,
    msg_rate_mpps: 0.000357,
  },
];

Deno.test("the floor is WRITE one way + SEND one way (perftest typical), depth 1 only", () => {
  const point = (depth: number, size = 4096) =>
    replicationPoint({
      size,
      depth,
      wait: "spin",
      logs: 1,
      warmup: 0,
      ours: [ours(1, 834.96)],
      c: [ours(1, 417.48)],
    });
  const f = floors(perftest, [point(1), point(16), point(1, 65536)]);
  assert.equal(f.length, 1, "no 64 KiB ib_write_lat anchor: no 64 KiB floor; depth 16 has none");
  assert.equal(f[0].floor_us, 293.89 + 123.59);
  assert.ok(Math.abs(f[0].ours_p50_ratio! - 2) < 1e-9);
  assert.ok(Math.abs(f[0].c_p50_ratio! - 1) < 1e-9);
});

Deno.test("64 KiB depth 16 MB/s is compared with ib_write_bw converted to 10^6 bytes", () => {
  const p = replicationPoint({
    size: 65536,
    depth: 16,
    wait: "events",
    logs: 1,
    warmup: 0,
    ours: [{ mb_per_s: 22.33 * 1.048576 * 0.9 }],
  });
  const b = bandwidth(perftest, [p]);
  assert.equal(b.length, 1);
  assert.ok(Math.abs(b[0].ours_ratio! - 0.9) < 1e-9);
  assert.equal(b[0].c_ratio, null);
});

Deno.test("targets: met, missed and not measured, with the margin said", () => {
  const point = replicationPoint({
    size: 4096,
    depth: 16,
    wait: "events",
    logs: 1,
    warmup: 0,
    ours: [{ ...ours(950, 1380, 260), replica_cpu_us_per_log: 100 }],
    c: [{ ...ours(1000, 1200, 200), replica_cpu_us_per_log: 100 }],
  });
  const cache = cachePoint({ size: 4096, depth: 1, logs: 10 }, [
    { commit_p50_us: 110, replication_p50_us: 100 },
  ]);
  const list = targets({ replication: [point], cache: [cache], bandwidth: [] });
  const byName = (part: string) => list.find((t) => t.name.startsWith(part))!;
  assert.equal(byName("p50").met, false);
  assert.ok(Math.abs(byName("p50").value! - 1.15) < 1e-9);
  assert.match(targetMargin(byName("p50")), /^missed: 0\.05x over \(5% above the limit\)$/);
  assert.equal(byName("ops/s").met, true);
  assert.equal(byName("primary CPU").met, false);
  assert.match(targetMargin(byName("primary CPU")), /missed: 0\.05x over \(4% above/);
  assert.equal(byName("replica CPU").met, true);
  assert.equal(byName("commit").met, true);
  assert.equal(list.length, 5, "spin points have no CPU targets; no bandwidth point here");
  const unmeasured = targets({
    replication: [{ ...point, ratio: { ...point.ratio, cpu_us_per_log: null } }],
    cache: [],
    bandwidth: [],
  });
  const cpu = unmeasured.find((t) => t.name.startsWith("primary CPU"))!;
  assert.equal(cpu.met, null);
  assert.equal(targetMargin(cpu), "not measured");
});
