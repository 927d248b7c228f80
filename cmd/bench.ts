/**
 * `deno task bench`: benchmarks in the lab with ratios against references measured in the
 * same run: the replication protocol against the C reference and perftest, the FFI call
 * ways against the same loop in C, CRC32C backends.
 *
 * @module
 */
import { Command, Option } from "@commander-js/extra-typings";
import { type BenchReport, runBench } from "../lib/bench/replication_bench.ts";
import { insideLabVm } from "../lib/lab/mode.ts";
import { labDir } from "../lib/lab/paths.ts";
import { labTimeoutMsDefault, runInLab } from "../lib/lab/runner.ts";
import { readTopology } from "../lib/lab/topology.ts";
import { checkDenoVersion } from "../lib/version.ts";
import { parseIntOption, runCommand } from "./options.ts";

/** Runs the benchmarks; 0 when every measurement ran. */
export function run(args: string[]): Promise<number> {
  const program = new Command("bench")
    .description(
      "Benchmark in the lab (VM or native): replication ops/s and latency percentiles for 4 KiB " +
        "and 64 KiB at depth 1 and 16 next to the C reference and perftest (ib_write_lat, " +
        "ib_send_lat, ib_write_bw) on the same devices in the same run; the FFI call ways next " +
        "to the same verbs loop in C; CRC32C backends. Prints ratios, never bare absolute times.",
    )
    .option("-n, --count <n>", "logs per replication point", parseIntOption(100, 1_000_000), 3000)
    .option(
      "--warmup <n>",
      "logs replicated before each measured point (JIT warm-up)",
      parseIntOption(0, 1_000_000),
      1500,
    )
    .option(
      "--rounds <n>",
      "rounds of the verbs hot loop per call way",
      parseIntOption(1000, 10_000_000),
      20_000,
    )
    .addOption(
      new Option("--mode <mode>", "where to run").choices(["auto", "vm", "native"]).default("auto"),
    )
    .option("--json", "print the whole report as JSON on stdout");
  return runCommand(program, args, async (opts) => {
    checkDenoVersion();
    if (!insideLabVm() && Deno.env.get("RRL_IN_LAB") !== "native") {
      const self = new URL(import.meta.url).pathname;
      const { code } = await runInLab(
        {
          argv: [Deno.execPath(), "run", "-A", "--cached-only", "--no-check", self, ...args],
          timeoutMs: labTimeoutMsDefault,
          topology: "pair",
        },
        opts.mode === "auto" ? undefined : opts.mode,
      );
      return code;
    }
    const topology = readTopology();
    if (!topology) throw new Error("No Soft-RoCE topology is up: run 'deno task bench'");
    const report = await runBench(topology, {
      count: opts.count,
      warmup: opts.warmup,
      points: [{ size: 4096, depth: 1 }, { size: 4096, depth: 16 }, { size: 65536, depth: 1 }, {
        size: 65536,
        depth: 16,
      }],
      hotRounds: opts.rounds,
      log: (line) => console.error(line),
    });
    await Deno.mkdir(`${labDir}/bench`, { recursive: true });
    await Deno.writeTextFile(`${labDir}/bench/last-report.json`, JSON.stringify(report, null, 2));
    if (opts.json) console.log(JSON.stringify(report));
    else printReport(report);
    return 0;
  });
}

function printReport(r: BenchReport): void {
  const f = (v: number, digits = 0) => v.toFixed(digits);
  const ratio = (
    ours: number,
    ref: number | undefined,
  ) => (ref ? `${(ours / ref).toFixed(2)}x` : "n/a");
  console.log(
    `\n== machine: ${r.machine.cpu}, kernel ${r.machine.kernel}, ${r.machine.lab}, Deno ${r.machine.deno}`,
  );
  console.log("\n== perftest on the same devices (anchors)");
  for (const p of r.perftest) {
    console.log(
      p.kind === "latency"
        ? `  ${p.tool} -s ${p.bytes}: typical ${f(p.typicalUs, 1)} us, avg ${
          f(p.avgUs, 1)
        } us, p99 ${f(p.p99Us, 1)} us`
        : `  ${p.tool} -s ${p.bytes}: ${f(p.avgMBps, 1)} MB/s (perftest MB = 2^20 B)`,
    );
  }
  const writeLat = r.perftest.find((p) => p.tool === "ib_write_lat");
  const sendLat = r.perftest.find((p) => p.tool === "ib_send_lat");
  const writeBw = r.perftest.find((p) => p.tool === "ib_write_bw");
  console.log("\n== replication: ours (Deno, FFI) vs the C reference, same run");
  console.log(
    "  size   depth |   ops/s  C ops/s  ratio |  MB/s  | p50 us  C p50   ratio |  p90   p99   p99.9    max (us)",
  );
  for (const p of r.replication) {
    const o = p.ours;
    console.log(
      `  ${String(p.size).padStart(5)} ${String(p.depth).padStart(6)} | ${
        f(o.ops_per_s).padStart(7)
      } ${f(p.reference?.ops_per_s ?? 0).padStart(8)} ${
        ratio(o.ops_per_s, p.reference?.ops_per_s).padStart(6)
      } |` +
        ` ${f(o.mb_per_s, 1).padStart(5)}  | ${f(o.p50).padStart(6)} ${
          f(p.reference?.p50 ?? 0).padStart(6)
        } ${ratio(o.p50, p.reference?.p50).padStart(7)} |` +
        ` ${f(o.p90)} ${f(o.p99)} ${f(o.p999)} ${f(o.max)}`,
    );
  }
  const qd1 = r.replication.find((p) => p.size === 4096 && p.depth === 1);
  if (qd1 && writeLat?.kind === "latency" && sendLat?.kind === "latency") {
    const floor = writeLat.typicalUs / 2 + sendLat.typicalUs;
    console.log(
      `  4 KiB depth 1 p50 vs perftest floor (WRITE one-way + SEND round trip = ${
        f(floor, 1)
      } us): ${ratio(qd1.ours.p50, floor)}`,
    );
  }
  const bw = r.replication.find((p) => p.size === 65536 && p.depth === 16);
  if (bw && writeBw?.kind === "bandwidth") {
    console.log(
      `  64 KiB depth 16 MB/s vs ib_write_bw: ${
        ratio(bw.ours.mb_per_s, writeBw.avgMBps * 1.048576)
      }`,
    );
  }
  console.log(
    "\n== host cache service: commit latency (NVMe submission to completion) vs replication (log to ack), same run",
  );
  console.log("  size   depth | commit p50    p99 | repl. p50    p99 (us) | commit/repl. p50");
  for (const p of r.cache) {
    console.log(
      `  ${String(p.size).padStart(5)} ${String(p.depth).padStart(6)} | ${
        f(p.commit.p50).padStart(10)
      } ${f(p.commit.p99).padStart(6)} | ${f(p.replication.p50).padStart(9)} ${
        f(p.replication.p99).padStart(6)
      } | ${ratio(p.commit.p50, p.replication.p50)}`,
    );
  }
  console.log(
    "\n== tracing: the same point with --trace off (default) and on, runs alternating, same run",
  );
  for (const p of r.tracing) {
    const mid = (xs: number[]) => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)];
    const runs = (xs: number[]) => xs.map((x) => f(x)).join(", ");
    console.log(
      `  ${String(p.size).padStart(5)} B depth ${String(p.depth).padStart(2)}: off ${
        runs(p.off)
      } ops/s, on ${runs(p.on)} ops/s; on/off ${
        ratio(mid(p.on), mid(p.off))
      } (off records nothing: one property read per call site)`,
    );
  }
  console.log(
    "\n== FFI call ways: one round = post_send + post_recv + poll_cq until both complete",
  );
  const c = r.callWays.find((w) => w.way === "c");
  for (const w of r.callWays) {
    console.log(
      `  ${w.way.padEnd(7)} ${f(w.nsPerRound).padStart(9)} ns/round (${
        ratio(w.nsPerRound, c?.nsPerRound)
      } of C)  ` +
        `${f(w.nsPerEmptyPoll).padStart(6)} ns per empty poll_cq (${
          ratio(w.nsPerEmptyPoll, c?.nsPerEmptyPoll)
        } of C)`,
    );
  }
  console.log(
    "  chosen: libffi's ffi_call (a dlopen symbol, so a fast call) with a prepared cif; fnptr = Deno.UnsafeFnPointer",
  );
  console.log("\n== CRC32C");
  for (const x of r.crc32c) {
    console.log(`  ${x.backend.padEnd(5)} ${String(x.size).padStart(6)} B: ${f(x.mbPerSec)} MB/s`);
  }
}

if (import.meta.main) Deno.exit(await run(Deno.args));
