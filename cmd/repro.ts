/**
 * `deno task repro SCENARIO [--seed N]`, `deno task repro --replay RUN_DIR`,
 * `deno task repro --campaign N [--seed S]`: runs scenarios from `scenarios/` in the lab
 * (the VM when this kernel has no rdma_rxe), writes a run folder per run and prints the
 * checker's verdict.
 *
 * @module
 */
import { Command, Option } from "@commander-js/extra-typings";
import { insideLabVm } from "../lib/lab/mode.ts";
import { repoDir } from "../lib/lab/paths.ts";
import { runInLab } from "../lib/lab/runner.ts";
import { formatCampaign, runCampaign } from "../lib/repro/campaign.ts";
import { runScenario, type RunSummary } from "../lib/repro/run.ts";
import { runsDir } from "../lib/repro/run_folder.ts";
import { checkConfig, type Scenario, type ScenarioConfig } from "../lib/repro/scenario.ts";
import { runFuzz } from "../lib/fuzz/fuzz.ts";
import { Prng } from "../lib/prng.ts";
import { checkDenoVersion } from "../lib/version.ts";
import { parseIntOption, runCommand } from "./options.ts";

const scenariosDir = `${repoDir}/scenarios`;
/** Lab time allowed per scenario of a campaign, beyond a fixed allowance. */
const labMsPerScenario = 120_000;
const labMsBase = 600_000;
/** The campaign's host-side fuzzing: decoder inputs per scenario. */
const fuzzInputsPerScenario = 10_000;

/** Runs the command; 0 when every run passed, 1 when one failed, 3 on a tool failure. */
export function run(args: string[]): Promise<number> {
  const program = new Command("repro")
    .description(
      "Run a scenario (scenarios/NAME.ts) on Soft-RoCE with its faults, check that every " +
        "acked write is durable on the replica or the backing store, and keep a run folder " +
        "(runs/<time>-<scenario>-<seed>/: config, seed, versions, logs, trace, summary.json). " +
        "Every random choice comes from the seed, printed first.",
    )
    .argument("[scenario]", "scenario name (deno task repro --list)")
    .option(
      "--seed <n>",
      "the seed (default: a random one, printed)",
      parseIntOption(0, 2 ** 32 - 1),
    )
    .option("--replay <run-dir>", "rerun a run folder's resolved configuration and seed")
    .option(
      "--campaign <n>",
      "run N randomized scenarios (scenarios/random.ts) and print a table",
      parseIntOption(1, 10_000),
    )
    .option("--list", "list the scenarios")
    .addOption(
      new Option("--mode <mode>", "where to run").choices(["auto", "vm", "native"]).default("auto"),
    )
    .addOption(new Option("--inside", "(set when re-run inside the lab)").hideHelp())
    .option("--json", "print the summary (or the campaign's totals) as JSON on stdout")
    .addHelpText(
      "after",
      `
Examples:
  deno task repro --list
  deno task repro replica-kill --seed 7         one run; its folder and verdict are printed
  deno task trace runs/<run-folder> --seq 40..45 the events around a log
  deno task repro --replay runs/<run-folder>     the same configuration and seed again
  deno task repro --campaign 200 --seed 1       200 random scenarios, then a table

Exit status: 0 every run passed, 1 a run failed (an invariant broke or a process crashed),
2 bad arguments, 3 the tool itself failed.`,
    );
  return runCommand(program, args, async (opts, cmd) => {
    checkDenoVersion();
    const name = cmd.args[0];
    if (opts.list) {
      for (const s of await listScenarios()) console.log(`${s.name.padEnd(18)} ${s.description}`);
      return 0;
    }
    const modes = [name !== undefined, opts.replay !== undefined, opts.campaign !== undefined];
    if (modes.filter(Boolean).length !== 1) {
      throw new RangeError("Name a scenario, or pass --replay RUN_DIR, or --campaign N");
    }
    // Resolve what to run before booting anything: bad input fails fast, on the host.
    const replay = opts.replay ? await readRunConfig(opts.replay) : undefined;
    const scenario = name ? await loadScenario(name) : undefined;
    if (opts.campaign) await loadScenario("random");
    const seed = opts.seed ?? (opts.replay ? undefined : randomSeed());
    if (!opts.inside && seed !== undefined) console.log(`repro: seed ${seed}`);
    const topology = replay?.config.topology ??
      (scenario ? scenario.plan(new Prng(seed!)).topology : "pair");
    if (!insideLabVm() && Deno.env.get("RRL_IN_LAB") !== "native") {
      const self = new URL(import.meta.url).pathname;
      const inner = [...(args[0] === "--" ? args.slice(1) : args), "--inside"];
      if (seed !== undefined && opts.seed === undefined) inner.push("--seed", String(seed));
      const { code } = await runInLab({
        argv: [Deno.execPath(), "run", "-A", "--cached-only", "--no-check", self, ...inner],
        timeoutMs: labMsBase + (opts.campaign ?? 1) * labMsPerScenario,
        topology,
      }, opts.mode === "auto" ? undefined : opts.mode);
      // The campaign's long fuzz run is host-side: here, at host speed, not in the VM.
      if (opts.campaign) return Math.max(code, await campaignFuzz(opts.campaign, seed!));
      return code;
    }
    if (opts.campaign) {
      const result = await runCampaign({
        scenario: await loadScenario("random"),
        count: opts.campaign,
        seed: seed!,
      });
      const dir = `${runsDir}/campaign-${seed}-${opts.campaign}.json`;
      await Deno.writeTextFile(dir, JSON.stringify(result, null, 2) + "\n");
      if (opts.json) console.log(JSON.stringify(result));
      else for (const line of formatCampaign(result)) console.log(line);
      console.log(`repro: campaign totals in ${dir.slice(repoDir.length + 1)}`);
      const fuzz = opts.inside ? 0 : await campaignFuzz(opts.campaign, seed!);
      if (result.toolFailures) return 3;
      return result.failing.length || fuzz ? 1 : 0;
    }
    if (replay) {
      console.log(`repro: replaying ${replay.scenario} with seed ${replay.seed} (${opts.replay})`);
      const summary = await runScenario(replay);
      report(summary, opts.json);
      const before = await readSummary(opts.replay!);
      if (before) {
        const same = before.verdict === summary.verdict &&
          firstKind(before) === firstKind(summary);
        console.log(
          `repro: the original run: ${before.verdict} (${before.reason}); ` +
            (same ? "the replay ended the same way" : "the replay ended DIFFERENTLY"),
        );
      }
      return exitCode(summary);
    }
    const config = scenario!.plan(new Prng(seed!));
    const summary = await runScenario({ scenario: scenario!.name, seed: seed!, config });
    report(summary, opts.json);
    return exitCode(summary);
  });
}

/** Fuzzes the decoders with `fuzzInputsPerScenario` inputs per scenario; 1 on a finding. */
async function campaignFuzz(scenarios: number, seed: number): Promise<number> {
  const r = await runFuzz({ count: scenarios * fuzzInputsPerScenario, seed });
  const findings = r.failures.length;
  console.log(
    `repro: campaign fuzz: ${r.inputs} inputs (seed ${seed}) in ${
      (r.elapsedMs / 1000).toFixed(1)
    } s: ` +
      `${findings} crashes/hangs/mismatches` +
      (findings ? `; first: ${JSON.stringify(r.failures[0])}` : ""),
  );
  return findings ? 1 : 0;
}

function report(s: RunSummary, json?: true): void {
  if (json) {
    console.log(JSON.stringify(s));
    return;
  }
  const faults = Object.entries(s.faultsInjected).map(([k, n]) => `${k} ${n}`).join(", ") || "none";
  const c = s.check;
  console.log(`repro: ${s.scenario} seed ${s.seed}: faults injected: ${faults}`);
  if (c) {
    console.log(
      `repro: ${c.logsAcked} writes acked, acked-but-lost ${c.ackedButLost}, corruptions ${c.corruptions}, ` +
        `rejected-but-acked ${c.rejectedButAcked}, order ${c.orderViolations}, ` +
        `backing mismatches ${c.backingMismatches < 0 ? "not compared" : c.backingMismatches}, ` +
        `replica logs ${c.replicaLogs}; writes failed ${s.writesFailed}; recovery ms ${
          s.recoveryMs.join(", ") || "none"
        }`,
    );
  }
  console.log(`repro: VERDICT ${s.verdict.toUpperCase()}: ${s.reason}`);
  console.log(
    `repro: run folder ${s.runDir.slice(repoDir.length + 1)} (deno task trace ${
      s.runDir.slice(repoDir.length + 1)
    })`,
  );
  if (s.verdict !== "pass") console.log(`repro: replay with: ${s.replay}`);
}

function exitCode(s: RunSummary): number {
  return s.verdict === "pass" ? 0 : s.verdict === "fail" ? 1 : 3;
}

function firstKind(s: RunSummary): string {
  return s.check?.violations[0]?.kind ?? s.reason.split(":")[0];
}

function randomSeed(): number {
  return crypto.getRandomValues(new Uint32Array(1))[0];
}

/** Imports `scenarios/<name>.ts` (dashes become underscores) and checks its export. */
async function loadScenario(name: string): Promise<Scenario> {
  if (!/^[a-z0-9][a-z0-9_-]{0,47}$/.test(name)) {
    throw new RangeError(`'${name}' is not a scenario name: see deno task repro --list`);
  }
  const path = `${scenariosDir}/${name.replaceAll("-", "_")}.ts`;
  try {
    await Deno.stat(path);
  } catch {
    const names = (await listScenarios()).map((s) => s.name).join(", ");
    throw new RangeError(`No scenario '${name}' (${path}); there are: ${names}`);
  }
  const module = await import(`file://${path}`);
  const s = module.default as Scenario;
  if (!s || typeof s.plan !== "function" || typeof s.name !== "string") {
    throw new TypeError(`${path} does not default-export defineScenario({...})`);
  }
  return s;
}

async function listScenarios(): Promise<Scenario[]> {
  const list: Scenario[] = [];
  for await (const entry of Deno.readDir(scenariosDir)) {
    if (entry.isFile && entry.name.endsWith(".ts")) {
      list.push((await import(`file://${scenariosDir}/${entry.name}`)).default as Scenario);
    }
  }
  return list.sort((x, y) => x.name.localeCompare(y.name));
}

/** A run folder's config.json, validated. */
async function readRunConfig(
  dir: string,
): Promise<{ scenario: string; seed: number; config: ScenarioConfig }> {
  const path = `${dir.replace(/\/+$/, "")}/config.json`;
  let raw: { scenario?: unknown; seed?: unknown; config?: unknown };
  try {
    raw = JSON.parse(await Deno.readTextFile(path));
  } catch (error) {
    throw new RangeError(
      `Cannot read ${path} (${
        (error as Error).message
      }): pass a run folder written by deno task repro`,
    );
  }
  if (typeof raw.scenario !== "string" || !/^[a-z0-9][a-z0-9-]{0,47}$/.test(raw.scenario)) {
    throw new RangeError(`${path}: scenario must be a scenario name`);
  }
  if (
    !Number.isSafeInteger(raw.seed) || (raw.seed as number) < 0 || (raw.seed as number) >= 2 ** 32
  ) {
    throw new RangeError(`${path}: seed must be an integer 0..2^32-1`);
  }
  return {
    scenario: raw.scenario,
    seed: raw.seed as number,
    config: checkConfig(raw.config as ScenarioConfig),
  };
}

async function readSummary(dir: string): Promise<RunSummary | undefined> {
  try {
    return JSON.parse(await Deno.readTextFile(`${dir.replace(/\/+$/, "")}/summary.json`));
  } catch {
    return undefined;
  }
}

if (import.meta.main) Deno.exit(await run(Deno.args));
