/**
 * `deno task test`: the whole suite. Host-side tests first (`tests/unit`), then the tests
 * that need a verbs device (`tests/lab`) on Soft-RoCE, natively or in the lab VM. Prints
 * how many tests ran in each run and ends with one line of totals.
 *
 * @module
 */
import { Command, Option } from "@commander-js/extra-typings";
import { labDir, readEnvFile, repoDir } from "../lib/lab/paths.ts";
import { labKernel } from "../lib/lab/mode.ts";
import { labTimeoutMsDefault, runInLab } from "../lib/lab/runner.ts";
import { countJunit, formatCounts, type TestCounts } from "../lib/testing/junit.ts";
import { checkDenoVersion } from "../lib/version.ts";

const resultsDir = `${labDir}/results`;

/** Runs the suite; resolves with 0 when every test passed and the lab ran at least one. */
export async function run(args: string[]): Promise<number> {
  const program = new Command("test")
    .description(
      "Run the whole test suite: tests/unit on this host, then tests/lab on Soft-RoCE\n" +
        "(natively when this kernel has rdma_rxe, else in the lab VM). The last line\n" +
        "is the total over both runs: 'N passed, N failed[, N skipped]'.",
    )
    .option("--host-only", "run tests/unit only")
    .option("--lab-only", "run tests/lab only")
    .option(
      "--long",
      "also run the long lab set (tests marked longOnly: deeper fault and example runs that\n" +
        "the default suite skips to stay under 20 minutes)",
    )
    .option("--filter <pattern>", "only tests whose name matches (deno test --filter)")
    .addOption(
      new Option("--mode <mode>", "lab mode").choices(["auto", "vm", "native"]).default("auto"),
    )
    .exitOverride()
    .configureOutput({ writeErr: (text) => console.error(text.trimEnd()) });
  try {
    // `deno task test -- --host-only` forwards the "--": drop it.
    program.parse(args[0] === "--" ? args.slice(1) : args, { from: "user" });
  } catch (error) {
    return (error as { exitCode?: number }).exitCode === 0 ? 0 : 2;
  }
  const opts = program.opts();
  checkDenoVersion();
  await Deno.mkdir(resultsDir, { recursive: true });
  const filter = opts.filter ? [`--filter=${opts.filter}`] : [];
  const total: TestCounts = { passed: 0, failed: 0, skipped: 0, steps: 0 };
  let labRan = 0;

  if (!opts.labOnly) {
    const junit = `${resultsDir}/host.xml`;
    await Deno.remove(junit).catch(() => {});
    console.log("== host: tests/unit");
    const status = await new Deno.Command(Deno.execPath(), {
      args: ["test", "-A", `--junit-path=${junit}`, ...filter, "tests/unit"],
      cwd: repoDir,
      stdin: "null",
    }).spawn().status;
    const counts = readCounts(junit, status.code, "host");
    console.log(
      `host: ${counts.passed + counts.failed + counts.skipped} tests: ${formatCounts(counts)}`,
    );
    add(total, counts);
  }

  if (!opts.hostOnly) {
    console.log("== lab: tests/lab (type check on the host first)");
    const check = await new Deno.Command(Deno.execPath(), {
      args: ["check", "tests/lab"],
      cwd: repoDir,
      stdin: "null",
    }).spawn().status;
    const junit = `${resultsDir}/lab.xml`;
    const topologyFile = `${resultsDir}/lab-topology.env`;
    await Deno.remove(junit).catch(() => {});
    await Deno.remove(topologyFile).catch(() => {});
    let counts: TestCounts;
    let mode = "not run";
    if (!check.success) {
      counts = { passed: 0, failed: 1, skipped: 0, steps: 0 };
      console.log("lab: tests/lab does not type-check; the lab run was not started");
    } else {
      const long = opts.long ? "RRL_TEST_LONG=1 " : "";
      const script = [
        `cp "\${RRL_PAIR_STATE:-/run/rrl-pair.env}" ${topologyFile} 2>/dev/null || true`,
        `${long}exec deno test -A --cached-only --no-check --junit-path=${junit} ${
          filter.map(shellQuote).join(" ")
        } tests/lab`,
      ].join("; ");
      const result = await runInLab({
        argv: [script],
        timeoutMs: labTimeoutMsDefault,
        topology: "pair",
      }, opts.mode === "auto" ? undefined : opts.mode);
      mode = result.mode;
      counts = readCounts(junit, result.code, "lab");
    }
    labRan = counts.passed + counts.failed;
    const where = mode === "vm" ? "in the lab VM" : mode === "native" ? "natively" : "";
    const kernel = mode === "vm" ? labKernel()?.version : Deno.osRelease();
    const topology = readEnvFile(topologyFile)?.TOPOLOGY ?? "unknown";
    console.log(
      `lab: ${labRan} tests ran ${where} (kernel ${kernel}, topology ${topology}): ${
        formatCounts(counts)
      }`,
    );
    if (labRan === 0) {
      console.log("lab: no test ran on a verbs device: that is a failure, not a pass");
      counts.failed++;
    }
    add(total, counts);
  }

  console.log(formatCounts(total));
  return total.failed === 0 ? 0 : 1;
}

function add(total: TestCounts, counts: TestCounts) {
  total.passed += counts.passed;
  total.failed += counts.failed;
  total.skipped += counts.skipped;
  total.steps += counts.steps;
}

/** Counts from the JUnit report; a run that failed without reporting a failure counts one. */
function readCounts(junit: string, code: number, label: string): TestCounts {
  let counts: TestCounts = { passed: 0, failed: 0, skipped: 0, steps: 0 };
  try {
    counts = countJunit(Deno.readTextFileSync(junit));
  } catch {
    console.log(`${label}: no test report (${junit}); the run ended with exit code ${code}`);
  }
  if (code !== 0 && counts.failed === 0) {
    console.log(
      `${label}: the run failed (exit code ${code}) without a failing test: counted as one failure`,
    );
    counts.failed = 1;
  }
  return counts;
}

/** `text` as one single-quoted shell word. */
function shellQuote(text: string): string {
  return `'${text.replaceAll("'", `'\\''`)}'`;
}

if (import.meta.main) Deno.exit(await run(Deno.args));
