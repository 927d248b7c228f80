/**
 * The bench's reference tools run on the lab topology and parse into sane numbers:
 * perftest (through its --out_json report), the shared C reference of the protocol (when
 * ../shared/bench-ref exists) in both waits with a warm-up, the C hot loop, and a short
 * bench point of ours and C interleaved. Short runs: this executes in CI in the TCG lab VM.
 */
import assert from "node:assert/strict";
import { runCLoop } from "../../lib/bench/c_loop.ts";
import { formatPerftest, runPerftest } from "../../lib/bench/perftest.ts";
import { referenceSource, runReference } from "../../lib/bench/reference.ts";
import { benchSections, runBench } from "../../lib/bench/replication_bench.ts";
import { formatReport } from "../../lib/bench/report_text.ts";
import { longOnly } from "./support/long.ts";
import { labTopology } from "./support/verbs_pair.ts";

const topology = labTopology();

function sane(what: string, value: number) {
  assert.ok(Number.isFinite(value) && value > 0, `${what} is positive and finite: ${value}`);
}

Deno.test("ib_send_lat -s 64 -n 200 runs between the ends and its JSON report decodes", async () => {
  const r = await runPerftest(topology, {
    tool: "ib_send_lat",
    size: 64,
    iterations: 200,
    timeoutMs: 30_000,
  });
  console.log(formatPerftest(r));
  assert.equal(r.kind, "latency");
  if (r.kind !== "latency") return;
  assert.equal(r.bytes, 64);
  assert.equal(r.iterations, 200);
  for (const key of ["minUs", "typicalUs", "avgUs", "maxUs", "p99Us"] as const) sane(key, r[key]);
  assert.ok(r.minUs <= r.typicalUs && r.typicalUs <= r.maxUs, "min <= typical <= max");
});

Deno.test("ib_write_bw -s 65536 -n 200 reports a bandwidth in its JSON report", async () => {
  const r = await runPerftest(topology, {
    tool: "ib_write_bw",
    size: 65536,
    iterations: 200,
    timeoutMs: 30_000,
  });
  console.log(formatPerftest(r));
  assert.equal(r.kind, "bandwidth");
  if (r.kind !== "bandwidth") return;
  assert.equal(r.bytes, 65536);
  sane("avgMBps", r.avgMBps);
  assert.ok(r.avgMBps <= r.peakMBps * 1.001, "average <= peak");
});

Deno.test({
  name: "the C reference replicates 300 x 4 KiB after 100 warm-up logs, spinning and on events",
  ignore: referenceSource() === undefined,
  fn: async (t) => {
    for (const wait of ["spin", "events"] as const) {
      await t.step(`wait ${wait}`, async () => {
        const r = await runReference(topology, {
          size: 4096,
          depth: 1,
          count: 300,
          warmup: 100,
          wait,
          ringMb: 16,
          timeoutMs: 60_000,
        });
        assert.ok(r, "the reference ran");
        console.log(JSON.stringify(r));
        assert.equal(r.impl, "c");
        assert.deepEqual([r.size, r.depth, r.count, r.mismatches], [4096, 1, 300, 0]);
        assert.deepEqual([r.wait, r.warmup, r.crc], [wait, 100, "isal"]);
        for (const key of ["ops_per_s", "mb_per_s", "p50", "p99", "max"] as const) {
          sane(key, r[key]);
        }
        assert.ok(r.p50 <= r.p99 && r.p99 <= r.max, "p50 <= p99 <= max");
        sane("cpu_us_per_log", r.cpu_us_per_log);
        assert.equal(r.replica_served, 400, "the replica served the warm-up and the timed logs");
        sane("replica_cpu_us_per_log", r.replica_cpu_us_per_log ?? NaN);
      });
    }
  },
});

Deno.test({
  name: "a bench point runs ours and C interleaved and reports medians, spreads and ratios",
  // Long set: ~2 minutes of Deno starts under TCG; `deno task bench` runs the same code.
  ignore: referenceSource() === undefined || longOnly.ignore,
  fn: async () => {
    const lines: string[] = [];
    const report = await runBench(topology, {
      count: 40,
      countLarge: 20,
      warmup: 10,
      repeats: 2,
      points: [{ size: 4096, depth: 16 }],
      waits: ["events"],
      skip: benchSections.filter((s) => s !== "replication" && s !== "breakdown"),
      hotRounds: 1000,
      log: (line) => {
        lines.push(line);
        console.log(line);
      },
    });
    console.log(formatReport(report));
    assert.deepEqual(report.failures, []);
    const order = lines.filter((l) => l.includes("replication 4 KiB depth 16 events"))
      .map((l) => / (ours|c) \(repeat/.exec(l)?.[1]);
    assert.deepEqual(order, ["ours", "c", "ours", "c"], "ours and C alternate");
    assert.match(lines.at(-1) ?? "", /^bench: \[\d+\/\d+ \d+m\d\ds\] /, "progress lines");
    const [p] = report.replication;
    assert.deepEqual([p.size, p.depth, p.wait, p.repeats, p.logs, p.warmup], [
      4096,
      16,
      "events",
      2,
      40,
      10,
    ]);
    assert.equal(p.ours.runs.length, 2);
    assert.equal(p.c?.runs.length, 2);
    assert.equal(p.c?.wait, "events");
    for (const side of [p.ours, p.c!]) {
      sane("ops_per_s", side.ops_per_s ?? NaN);
      const s = side.spread.ops_per_s!;
      assert.ok(s.min <= side.ops_per_s! && side.ops_per_s! <= s.max, "median within spread");
    }
    sane("ratio.p50", p.ratio.p50 ?? NaN);
    sane("C replica CPU/log", p.c?.replica_cpu_us_per_log ?? NaN);
    if (report.ours_commands.wait) {
      assert.equal(p.ours.wait, "events", "ours reports the wait it was asked for");
      sane("ours CPU/log", p.ours.cpu_us_per_log ?? NaN);
      sane("ours replica CPU/log", p.ours.replica_cpu_us_per_log ?? NaN);
    } else {
      assert.equal(p.ours.cpu_us_per_log, null, "absent, not 0, until ours reports it");
    }
    if (report.ours_commands.breakdown) {
      assert.equal(report.breakdown.length, 2);
      const names = report.breakdown[0].stages.map((s) => s.name);
      assert.deepEqual(names, [
        "prepare",
        "to-replica",
        "check",
        "ack-post",
        "ack-return",
        "total",
      ]);
      assert.ok(report.breakdown[0].logs > 0);
    }
    assert.ok(report.targets.some((t) => t.name === "p50 ours/C 4 KiB depth 16 events"));
    assert.doesNotThrow(() => JSON.parse(JSON.stringify(report)));
  },
});

Deno.test("the C hot loop runs 2000 rounds and reports ns per round and per empty poll", async () => {
  const r = await runCLoop(topology, { rounds: 2000, warmup: 200, timeoutMs: 60_000 });
  console.log(JSON.stringify(r));
  assert.equal(r.way, "c");
  assert.equal(r.rounds, 2000);
  sane("nsPerRound", r.nsPerRound);
  sane("nsPerEmptyPoll", r.nsPerEmptyPoll);
  assert.ok(r.nsPerEmptyPoll < r.nsPerRound, "an empty poll costs less than a round");
});
