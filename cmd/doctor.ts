/**
 * `deno task doctor [--lab] [--json]`: reports, in a few lines, what this machine has for
 * RDMA work and what to do about each problem. `--lab` runs the same report inside the
 * lab (VM or native), with the Soft-RoCE pair up.
 *
 * @module
 */
import { Command } from "@commander-js/extra-typings";
import { diagnose } from "../lib/lab/doctor.ts";
import { labTimeoutMsDefault, runInLab } from "../lib/lab/runner.ts";

/** Prints the report; resolves with 0 when nothing needs fixing, else 1 (2: usage). */
export async function run(args: string[]): Promise<number> {
  const program = new Command("doctor")
    .description(
      "Report what this machine has for RDMA work: Deno, libibverbs and its rxe provider,\n" +
        "verbs devices with ports and GIDs, whether rdma_rxe runs natively or in the lab VM,\n" +
        "the locked-memory limit, and (with a pair up) rxe's UDP 4791 socket per namespace.",
    )
    .option("--lab", "run the report inside the lab, with the Soft-RoCE pair up")
    .option("--json", "print the findings as JSON")
    .exitOverride()
    .configureOutput({ writeErr: (text) => console.error(text.trimEnd()) });
  try {
    program.parse(args, { from: "user" });
  } catch (error) {
    return (error as { exitCode?: number }).exitCode === 0 ? 0 : 2;
  }
  const opts = program.opts();
  if (opts.lab) {
    const self = new URL(import.meta.url).pathname;
    const argv = [
      Deno.execPath(),
      "run",
      "-A",
      "--cached-only",
      self,
      ...(opts.json ? ["--json"] : []),
    ];
    const { code } = await runInLab({ argv, timeoutMs: labTimeoutMsDefault, topology: "pair" });
    return code;
  }
  const findings = diagnose();
  if (opts.json) {
    console.log(JSON.stringify(findings, null, 2));
  } else {
    for (const f of findings) {
      console.log(`${f.ok ? "ok  " : "FIX "} ${f.topic.padEnd(10)} ${f.detail}`);
      if (!f.ok && f.fix) console.log(`     ${"".padEnd(10)} -> ${f.fix}`);
    }
  }
  return findings.every((f) => f.ok) ? 0 : 1;
}

if (import.meta.main) Deno.exit(await run(Deno.args));
