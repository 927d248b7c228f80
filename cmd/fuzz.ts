/**
 * `deno run -A cmd/fuzz.ts --count N --seed S [--target NAME...] [--json]`: seeded fuzzing
 * of every decoder that reads bytes from outside (record, ack, bootstrap frame, NVMe SQE,
 * NVMe controller), then a table per target of inputs, accepted inputs and refusals by
 * reason. Exits 1 on any CRASH, HANG or MISMATCH and prints the command that replays it;
 * `--replay SEED:INDEX` regenerates and runs exactly that one input.
 *
 * @module
 */
import { Command, InvalidArgumentError } from "@commander-js/extra-typings";
import { progress } from "../lib/bench/summary.ts";
import {
  type FuzzFailure,
  fuzzInput,
  fuzzInputsMax,
  type FuzzReport,
  hangMsDefault,
  replayKey,
  runFuzz,
  toHex,
} from "../lib/fuzz/fuzz.ts";
import { createTargets, targetNames } from "../lib/fuzz/targets.ts";
import { formatSeed, propertySeed } from "../lib/testing/property.ts";
import { parseIntOption, runCommand } from "./options.ts";

/** Parses a u32 seed in decimal or 0x hex. */
function parseSeed(value: string): number {
  const n = /^0x[0-9a-f]{1,8}$/i.test(value) ? parseInt(value, 16) : Number(value);
  if (!/^(0x[0-9a-f]{1,8}|\d{1,10})$/i.test(value) || !(n >= 0 && n <= 0xffff_ffff)) {
    throw new InvalidArgumentError(`expected a u32 in decimal or 0x hex, got '${value}'`);
  }
  return n;
}

/** Parses `SEED:INDEX` as printed after a failure. */
function parseReplay(value: string): { seed: number; index: number } {
  const [seed, index, extra] = value.split(":");
  if (index === undefined || extra !== undefined) {
    throw new InvalidArgumentError(`expected SEED:INDEX (e.g. 0x5eedf022:1234), got '${value}'`);
  }
  return { seed: parseSeed(seed), index: parseIntOption(0, 2 ** 32 - 1)(index) };
}

function printTable(report: FuzzReport): void {
  const rows = [["target", "inputs", "accepted", "refused", "crashes", "hangs", "mismatches"]];
  rows[0].push("inputs/s");
  const fed = Object.entries(report.targets).filter(([, s]) => s.inputs > 0);
  for (const [name, s] of fed) {
    const refused = s.inputs - s.accepted - s.crashes - s.hangs - s.mismatches;
    const rate = s.elapsedMs > 0 ? Math.round((s.inputs / s.elapsedMs) * 1000) : 0;
    rows.push(
      [name, s.inputs, s.accepted, refused, s.crashes, s.hangs, s.mismatches, rate].map(String),
    );
  }
  const widths = rows[0].map((_, c) => Math.max(...rows.map((r) => r[c].length)));
  for (const row of rows) {
    console.log(
      row.map((cell, c) => c === 0 ? cell.padEnd(widths[c]) : cell.padStart(widths[c])).join("  "),
    );
  }
  for (const [name] of fed) {
    const reasons = report.refusedByReason[name];
    const sorted = Object.entries(reasons).sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1));
    console.log(`\n${name}: ${sorted.length} refusal reasons`);
    for (const [reason, n] of sorted) console.log(`  ${String(n).padStart(8)}  ${reason}`);
  }
}

function printFailure(f: FuzzFailure, replayArgs: string): void {
  console.log(`${f.kind.toUpperCase()} ${f.target} input ${replayKey(f)} (${f.mode}): ${f.error}`);
  if (f.bytesHex !== "") console.log(`  bytes ${f.bytesHex}`);
  console.log(`  replay: deno run -A cmd/fuzz.ts --replay ${replayKey(f)}${replayArgs}`);
}

/** Runs the fuzzer; resolves with 0 when no input failed, 1 otherwise, 2 on usage errors. */
export function run(args: string[]): Promise<number> {
  const program = new Command("fuzz")
    .description(
      "Feed seeded random and mutated inputs to every decoder of bytes from outside: a\n" +
        "decoder must answer OK or a typed refusal, never throw (CRASH), finish within\n" +
        "--hang-ms (HANG), and an accepted input must re-encode to itself (MISMATCH).",
    )
    .option(
      "-n, --count <n>",
      "inputs, round-robin over the targets",
      parseIntOption(1, fuzzInputsMax),
      100_000,
    )
    .option(
      "--seed <u32>",
      "base seed, decimal or 0x hex (default: RRL_SEED, else random)",
      parseSeed,
    )
    .option("-t, --target <names...>", `targets, in this order (default: ${targetNames.join(" ")})`)
    .option("--time-budget <s>", "stop after this many seconds", parseIntOption(1, 604_800))
    .option(
      "--hang-ms <ms>",
      "an input slower than this is a HANG",
      parseIntOption(1, 60_000),
      hangMsDefault,
    )
    .option(
      "--replay <seed:index>",
      "run only the input that this seed and index make",
      parseReplay,
    )
    .option("--json", "print the report as JSON on stdout");
  return runCommand(program, args, async (opts) => {
    const names = opts.target ?? [...targetNames];
    const targets = createTargets(names);
    const seed = opts.replay?.seed ?? opts.seed ?? propertySeed();
    const start = opts.replay?.index ?? 0;
    const count = opts.replay ? 1 : opts.count;
    const replayArgs = (opts.target ? ` --target ${names.join(" ")}` : "") +
      (opts.hangMs !== hangMsDefault ? ` --hang-ms ${opts.hangMs}` : "");
    if (opts.replay && !opts.json) {
      const input = fuzzInput(createTargets(names), seed, start);
      console.log(
        `fuzz: input ${formatSeed(seed)}:${start} for ${input.target.name} (${input.mode})`,
      );
      console.log(`  bytes ${toHex(input.bytes)}`);
    }
    const bar = opts.replay ? undefined : progress(count, "fuzzing");
    const report = await runFuzz({
      targets,
      seed,
      count,
      start,
      hangMs: opts.hangMs,
      timeBudgetMs: opts.timeBudget === undefined ? undefined : opts.timeBudget * 1000,
      onProgress: (done) => bar?.update(done),
    });
    bar?.stop();
    const failed = report.crashes + report.hangs + report.mismatches;
    if (opts.json) {
      console.log(JSON.stringify(report));
      return failed > 0 ? 1 : 0;
    }
    console.log(
      `fuzz: seed ${formatSeed(seed)}, ${report.inputs} of ${count} inputs in ` +
        `${(report.elapsedMs / 1000).toFixed(1)} s${
          report.complete ? "" : " (time budget reached)"
        }; ` +
        `${report.crashes} crashes, ${report.hangs} hangs, ${report.mismatches} mismatches\n`,
    );
    printTable(report);
    if (failed > 0) {
      console.log(`\n${failed} failures; the first ${report.failures.length}:`);
      for (const f of report.failures) printFailure(f, replayArgs);
      console.log(
        `\nrerun the whole run: deno run -A cmd/fuzz.ts --seed ${
          formatSeed(seed)
        } --count ${count}${replayArgs}`,
      );
    }
    return failed > 0 ? 1 : 0;
  });
}

if (import.meta.main) Deno.exit(await run(Deno.args));
