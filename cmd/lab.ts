/**
 * `deno task lab -- CMD...`: runs CMD where Soft-RoCE works (natively or in the lab VM),
 * with the namespace pair up, from the repository directory.
 *
 * @module
 */
import { Command, InvalidArgumentError, Option } from "@commander-js/extra-typings";
import { labTimeoutMsDefault, runInLab } from "../lib/lab/runner.ts";
import { parseIntOption } from "./options.ts";

/** Runs the command; resolves with its exit code (2 for usage errors). */
export async function run(args: string[]): Promise<number> {
  const program = new Command("lab")
    .description(
      "Run a command where Soft-RoCE works: natively when this kernel has rdma_rxe, else in a\n" +
        "QEMU lab VM booted over this machine's root (see README: 'How the lab VM works').\n" +
        "The Soft-RoCE pair is up first (namespaces rrl-a/rrl-b, devices rxea/rxeb);\n" +
        "the command runs in the repository directory and its exit code is returned.",
    )
    .argument("<command...>", "the command; one quoted argument runs through bash -c")
    .addOption(
      new Option("--mode <mode>", "where to run (or RRL_LAB_MODE)").choices([
        "auto",
        "vm",
        "native",
      ])
        .default("auto"),
    )
    .addOption(
      new Option("--topology <kind>", "Soft-RoCE topology to bring up")
        .choices(["pair", "loopback", "none"]).default("pair"),
    )
    .option(
      "--timeout <seconds>",
      "bound for the whole run, boot included (or RRL_LAB_TIMEOUT_S)",
      parseIntOption(1, 24 * 3600),
    )
    .passThroughOptions()
    .exitOverride()
    .configureOutput({ writeErr: (text) => console.error(text.trimEnd()) });
  try {
    // `deno task lab -- --topology loopback CMD` passes the `--` through: drop it.
    program.parse(args[0] === "--" ? args.slice(1) : args, { from: "user" });
  } catch (error) {
    return (error as { exitCode?: number }).exitCode === 0 ? 0 : 2;
  }
  const opts = program.opts();
  const envTimeout = Deno.env.get("RRL_LAB_TIMEOUT_S");
  let timeoutMs = labTimeoutMsDefault;
  try {
    if (opts.timeout !== undefined) timeoutMs = opts.timeout * 1000;
    else if (envTimeout) timeoutMs = parseIntOption(1, 24 * 3600)(envTimeout) * 1000;
  } catch (error) {
    if (error instanceof InvalidArgumentError) {
      console.error(`lab: RRL_LAB_TIMEOUT_S: ${error.message}`);
      return 2;
    }
    throw error;
  }
  const { code } = await runInLab({
    argv: program.processedArgs[0],
    timeoutMs,
    topology: opts.topology,
  }, opts.mode === "auto" ? undefined : opts.mode);
  return code;
}

if (import.meta.main) Deno.exit(await run(Deno.args));
