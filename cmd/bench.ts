/**
 * `deno task bench`: benchmarks in the lab with ratios against references measured in the
 * same run: the replication protocol against the C reference (both waits, interleaved
 * repeats) and perftest's one-way latencies, the latency breakdown of ours, the cache
 * service, tracing off/on, the FFI call ways against the same verbs loop in C, CRC32C.
 *
 * @module
 */
import { Command, InvalidArgumentError, Option } from "@commander-js/extra-typings";
import { type BenchSection, benchSections, runBench } from "../lib/bench/replication_bench.ts";
import { type WaitMode, waitModes } from "../lib/bench/reference.ts";
import { repeatsMax } from "../lib/bench/repeats.ts";
import { formatReport } from "../lib/bench/report_text.ts";
import { insideLabVm } from "../lib/lab/mode.ts";
import { labDir } from "../lib/lab/paths.ts";
import { labTimeoutMsDefault, runInLab } from "../lib/lab/runner.ts";
import { readTopology } from "../lib/lab/topology.ts";
import { checkDenoVersion } from "../lib/version.ts";
import { parseIntOption, runCommand } from "./options.ts";

/** Set for the run inside the lab when the outer process prints the JSON from `--out`. */
const innerEnv = "RRL_BENCH_INNER";

/** Parser of a comma-separated list of `allowed` words (each once). */
function parseList<T extends string>(allowed: readonly T[]): (value: string) => T[] {
  return (value: string) => {
    const items = value.split(",").map((x) => x.trim()).filter((x) => x !== "");
    const wrong = items.filter((x) => !allowed.includes(x as T));
    if (wrong.length > 0 || new Set(items).size !== items.length) {
      throw new InvalidArgumentError(
        `expected a comma-separated list of distinct ${allowed.join(", ")}; got '${value}'`,
      );
    }
    return items as T[];
  };
}

/** Runs the benchmarks; 0 when every measurement ran, 1 when one failed, 2 on usage errors. */
export function run(args: string[]): Promise<number> {
  const program = new Command("bench")
    .description(
      "Benchmark in the lab (VM or native): replication of 4 KiB and 64 KiB logs at depth 1 and " +
        "16, ours vs the C reference (../shared/bench-ref) in both waits (spin, events), " +
        "repeated and interleaved (ours, C, ours, C, ...): medians, min-max spreads, ratios of " +
        "medians, CPU per log on both sides; perftest's one-way latencies and the protocol's " +
        "floor; the latency breakdown of ours; the cache service; tracing off/on; the FFI call " +
        "ways vs the same verbs loop in C; CRC32C; the targets of issue 12 met or missed. " +
        "Progress goes to stderr. In the TCG lab VM read the ratios, not the absolute times.",
    )
    .option("-n, --count <n>", "timed logs per 4 KiB run", parseIntOption(100, 1_000_000), 2000)
    .option(
      "--count-64k <n>",
      "timed logs per 64 KiB run (fewer: each is ~4x slower)",
      parseIntOption(50, 1_000_000),
      500,
    )
    .option(
      "--warmup <n>",
      "logs replicated before each timed run, ours and C alike (JIT warm-up)",
      parseIntOption(0, 1_000_000),
      1000,
    )
    .option(
      "--repeats <n>",
      "runs of each implementation per point, interleaved",
      parseIntOption(1, repeatsMax),
      3,
    )
    .option(
      "--waits <list>",
      `waits to compare, comma-separated: ${waitModes.join(", ")}`,
      parseList(waitModes),
      [...waitModes] as WaitMode[],
    )
    .option(
      "--skip <list>",
      `sections to leave out, comma-separated: ${benchSections.join(", ")}`,
      parseList(benchSections),
      [] as BenchSection[],
    )
    .option("--tracing", "also run the tracing off/on section (about 3 more minutes in the VM)")
    .option(
      "--rounds <n>",
      "rounds of the verbs hot loop per call way",
      parseIntOption(1000, 10_000_000),
      20_000,
    )
    .addOption(
      new Option("--mode <mode>", "where to run").choices(["auto", "vm", "native"]).default("auto"),
    )
    .option("--json", "print the whole report as JSON on stdout (the text report goes to stderr)")
    .option("--out <file>", "also write the JSON report to this file");
  return runCommand(program, args, async (opts) => {
    checkDenoVersion();
    if (opts.waits.length === 0) {
      throw new RangeError("--waits is empty: name spin, events or both");
    }
    if (!insideLabVm() && Deno.env.get("RRL_IN_LAB") !== "native") {
      return await runOutside(args, opts);
    }
    const topology = readTopology();
    if (!topology) throw new Error("No Soft-RoCE topology is up: run 'deno task bench'");
    const report = await runBench(topology, {
      count: opts.count,
      countLarge: opts.count64k,
      warmup: opts.warmup,
      repeats: opts.repeats,
      points: [
        { size: 4096, depth: 1 },
        { size: 4096, depth: 16 },
        { size: 65536, depth: 1 },
        { size: 65536, depth: 16 },
      ],
      waits: opts.waits,
      // Tracing off/on is opt-in: it added ~3 of the ~27 minutes of a default run in the VM.
      skip: opts.tracing ? opts.skip : [...new Set<BenchSection>([...opts.skip, "tracing"])],
      hotRounds: opts.rounds,
      log: (line) => console.error(line),
    });
    const json = JSON.stringify(report, null, 2);
    await Deno.mkdir(`${labDir}/bench`, { recursive: true });
    await Deno.writeTextFile(`${labDir}/bench/last-report.json`, json);
    if (opts.out) await Deno.writeTextFile(opts.out, json);
    if (Deno.env.get(innerEnv) === "1") {
      console.error(formatReport(report)); // the outer process prints the JSON from --out
    } else if (opts.json) {
      console.error(formatReport(report));
      console.log(JSON.stringify(report));
    } else console.log(formatReport(report));
    return report.failures.length > 0 ? 1 : 0;
  });
}

/**
 * From the host: runs this command in the lab. With `--json`, everything the lab prints goes
 * to stderr and the report comes back through a file, so stdout holds the JSON alone.
 */
async function runOutside(
  args: string[],
  opts: { json?: true; mode: string; out?: string },
): Promise<number> {
  const self = new URL(import.meta.url).pathname;
  const mode = opts.mode === "auto" ? undefined : opts.mode;
  const argv = [Deno.execPath(), "run", "-A", "--cached-only", "--no-check", self, ...args];
  if (!opts.json) {
    const { code } = await runInLab(
      { argv, timeoutMs: labTimeoutMsDefault, topology: "pair" },
      mode,
    );
    return code;
  }
  await Deno.mkdir(`${labDir}/bench`, { recursive: true });
  const out = `${labDir}/bench/report-${Deno.pid}.json`;
  await Deno.remove(out).catch(() => {});
  const encoder = new TextEncoder();
  try {
    const { code } = await runInLab({
      argv: [...argv, "--out", out],
      timeoutMs: labTimeoutMsDefault,
      topology: "pair",
      env: { [innerEnv]: "1" },
      write: (text) => Deno.stderr.writeSync(encoder.encode(text)),
    }, mode);
    let json: string;
    try {
      json = await Deno.readTextFile(out);
    } catch {
      console.error(`bench: the lab run wrote no report (exit ${code}); see the messages above`);
      return code === 0 ? 1 : code;
    }
    if (opts.out) await Deno.writeTextFile(opts.out, json);
    console.log(JSON.stringify(JSON.parse(json)));
    return code;
  } finally {
    await Deno.remove(out).catch(() => {});
  }
}

if (import.meta.main) Deno.exit(await run(Deno.args));
