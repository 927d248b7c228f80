/**
 * What every command shares: option parsers that validate command-line values before use,
 * the secret, and running a commander program with the exit-code convention (0 ok,
 * 1 run-time failure, 2 usage error).
 *
 * @module
 */
import { verbsCallCount } from "../lib/verbs/inject.ts";
import { liveResourceLabels } from "../lib/verbs/resource.ts";
import {
  type Command,
  CommanderError,
  InvalidArgumentError,
  Option,
} from "@commander-js/extra-typings";
import { parseFaultPlan, type PrimaryFaults } from "../lib/replication/faults.ts";
import "../lib/trace/codes.ts";
import { trace } from "../lib/trace/trace.ts";
import { type WaitMode, waitModes } from "../lib/replication/poller.ts";

/** Parser for an integer option in [min, max]; names the bounds when the value is wrong. */
export function parseIntOption(min: number, max: number): (value: string) => number {
  return (value: string) => {
    const n = Number(value);
    if (!/^-?\d+$/.test(value.trim()) || !Number.isSafeInteger(n) || n < min || n > max) {
      throw new InvalidArgumentError(`expected an integer from ${min} to ${max}, got '${value}'`);
    }
    return n;
  };
}

/** The shared secret from `--secret` or `RRL_SECRET`; a usage error when missing. */
export function readSecret(option: string | undefined): string {
  const secret = option ?? Deno.env.get("RRL_SECRET");
  if (!secret) {
    throw new RangeError(
      "No shared secret: pass --secret or set RRL_SECRET (the same on both sides, 8+ bytes; " +
        "e.g. export RRL_SECRET=$(openssl rand -hex 16))",
    );
  }
  return secret;
}

/**
 * Parses `args` with `program` and runs `body` with the options: usage errors (bad
 * options, RangeError from validation) exit 2 with the message, run-time errors exit 1
 * with the message (the stack with RRL_DEBUG=1).
 */
// deno-lint-ignore no-explicit-any
export async function runCommand<C extends Command<any, any, any>>(
  program: C,
  args: string[],
  body: (opts: ReturnType<C["opts"]>, program: C) => Promise<number>,
): Promise<number> {
  program.exitOverride().configureOutput({ writeErr: (text) => console.error(text.trimEnd()) });
  // `deno task X -- --opt` forwards the "--": drop it (no argument of ours starts with "-").
  const given = args[0] === "--" ? args.slice(1) : args;
  try {
    program.parse(given, { from: "user" });
  } catch (error) {
    if (error instanceof CommanderError) return error.exitCode === 0 ? 0 : 2;
    throw error;
  }
  const name = program.name();
  try {
    const code = await body(program.opts() as ReturnType<C["opts"]>, program);
    return reportLeaks(name) ? 70 : code;
  } catch (error) {
    const debug = Deno.env.get("RRL_DEBUG");
    const text = debug ? (error as Error).stack : (error as Error).message ?? String(error);
    console.error(`${name}: ${text}`);
    if (reportLeaks(name)) return 70;
    if (error instanceof RangeError) {
      console.error(`${name}: see '${name} --help'`);
      return 2;
    }
    return 1;
  }
}

/**
 * Under verbs fault injection (`RRL_VERBS_FAIL`), every verbs object must be closed by
 * the time the command ends, on the error path too: prints the leaked ones (exit 70). Also
 * prints how many verbs calls the run made (the sweep stops past the last one).
 */
function reportLeaks(name: string): boolean {
  if (!Deno.env.get("RRL_VERBS_FAIL")) return false;
  console.error(`${name}: verbs calls made: ${verbsCallCount()}`);
  const live = liveResourceLabels();
  if (live.length === 0) return false;
  console.error(`${name}: leaked verbs objects: ${live.join(", ")}`);
  return true;
}

/** What {@linkcode primaryRecoveryOptions} returns, typed for commander's option inference. */
export type PrimaryRecoveryOptions = readonly [
  Option<"--reconnect <n>", undefined, 0, number>,
  Option<"--reconnect-for <duration>", undefined, undefined, number>,
  Option<"--reconnect-delay-ms <ms>", undefined, 500, number>,
  Option<"--fault-plan <json>">,
  Option<"--trace <path>">,
];

/** The primary's recovery and fault options, shared by `primary` and `cache`. */
export function primaryRecoveryOptions(): PrimaryRecoveryOptions {
  return [
    new Option(
      "--reconnect <n>",
      "replace a broken session up to N times, resending what was not acked (0: fail)",
    ).argParser(parseIntOption(0, 1000)).default(0),
    new Option(
      "--reconnect-for <duration>",
      "keep replacing a broken session for this long (e.g. 60s, 2m, 500ms), up to --reconnect\n" +
        "attempts (1000 when --reconnect is not given); waits double from --reconnect-delay-ms\n" +
        "up to 5 s, with jitter",
    ).argParser(parseDuration),
    new Option("--reconnect-delay-ms <ms>", "first wait before a reconnect attempt (then doubling)")
      .argParser(parseIntOption(0, 60_000)).default(500),
    new Option(
      "--fault-plan <json>",
      'the primary\'s faults, e.g. \'{"primary":{"breakQp":40}}\' (docs/protocol.md)',
    ),
    new Option(
      "--trace <path>",
      "record a trace of posts, completions, acks and recovery into this JSONL file",
    ),
  ] as const;
}

/** A duration: `500ms`, `60s`, `2m` (or a bare number of seconds), at most one hour. */
export function parseDuration(text: string): number {
  const match = /^(\d+(?:\.\d+)?)(ms|s|m)?$/.exec(text.trim());
  const ms = match ? Number(match[1]) * { ms: 1, s: 1000, m: 60_000 }[match[2] ?? "s"]! : NaN;
  if (!(ms >= 0 && ms <= 3_600_000)) {
    throw new InvalidArgumentError(
      `'${text}' is not a duration up to 1 hour (e.g. 500ms, 60s, 2m)`,
    );
  }
  return Math.round(ms);
}

/** What those options give `Primary.connect`; enables the trace when asked for. */
export function primaryRecovery(opts: {
  reconnect: number;
  reconnectDelayMs: number;
  reconnectFor?: number;
  faultPlan?: string;
  trace?: string;
}): {
  reconnect: { attempts: number; delayMs: number; forMs?: number };
  faults: PrimaryFaults | undefined;
  beforeDeath: (() => void) | undefined;
  /** Writes the trace file (when `--trace` was given). */
  writeTrace: () => Promise<void>;
} {
  const path = opts.trace;
  if (path) trace.enable();
  return {
    reconnect: {
      // A window alone allows as many attempts as fit in it (each waits at least the delay).
      attempts: opts.reconnectFor !== undefined && opts.reconnect === 0 ? 1000 : opts.reconnect,
      delayMs: opts.reconnectDelayMs,
      forMs: opts.reconnectFor,
    },
    faults: opts.faultPlan ? parseFaultPlan(opts.faultPlan).primary : undefined,
    beforeDeath: path ? () => trace.writeJsonlSync(path) : undefined,
    writeTrace: async () => {
      if (path) await trace.writeJsonl(path);
    },
  };
}

/** `--wait`: how the completion loop waits when its CQ is empty. */
export function waitOption(): Option<
  "--wait <mode>",
  undefined,
  WaitMode,
  undefined,
  false,
  WaitMode
> {
  return new Option(
    "--wait <mode>",
    "when the CQ is empty: spin (poll again), events (sleep on the completion channel at " +
      "once) or hybrid (spin --spin-us, then sleep)",
  ).choices(waitModes).default(waitDefault);
}

/** The wait both sides use unless told otherwise (see the README's bench section for why). */
export const waitDefault: WaitMode = "events";

/** `--breakdown`: per-log stage timestamps on CLOCK_MONOTONIC into a JSON file. */
export function breakdownOption(): Option<"--breakdown <file>"> {
  return new Option(
    "--breakdown <file>",
    "write per-log stage timestamps (CLOCK_MONOTONIC) to this JSON file at the end " +
      "(deno task bench joins both sides' files; off by default)",
  );
}

/**
 * Checks that an output file can be created (its folder exists and is a folder) before
 * anything is opened: a RangeError (usage) naming the option otherwise.
 */
export function checkOutputPath(path: string, option: string): void {
  const slash = path.lastIndexOf("/");
  const dir = slash < 0 ? "." : slash === 0 ? "/" : path.slice(0, slash);
  let isDirectory = false;
  try {
    isDirectory = Deno.statSync(dir).isDirectory;
  } catch { /* reported below */ }
  if (!isDirectory) {
    throw new RangeError(`${option} ${path}: the folder ${dir} does not exist: create it first`);
  }
}
