/**
 * `deno task trace RUN_DIR [--seq A..B] [--kind POST,ACK] [--from MS --to MS] [--json]`:
 * reads RUN_DIR/trace.jsonl (or the file named), checks every line, and prints a summary
 * then one line per selected event.
 *
 * @module
 */
import { Command, InvalidArgumentError } from "@commander-js/extra-typings";
import {
  type EventSelection,
  formatEvents,
  formatSummary,
  parseKinds,
  parseSeqRange,
  selectEvents,
  summarize,
} from "../lib/trace/format.ts";
import { readTraceFile } from "../lib/trace/trace_file.ts";
import { runCommand } from "./options.ts";

/** Largest `--from`/`--to`: 2^53 ns, the largest timestamp a trace holds. */
const timeMsMax = 9_007_199_254;
/** Lines per console write. */
const printBatchLines = 1000;

/** Wraps a lib parser so its RangeError becomes a commander usage error (exit 2). */
function option<T>(parse: (text: string) => T): (text: string) => T {
  return (text) => {
    try {
      return parse(text);
    } catch (error) {
      if (error instanceof RangeError) throw new InvalidArgumentError(error.message);
      throw error;
    }
  };
}

function parseMs(text: string): number {
  const ms = Number(text);
  if (!/^\d{1,10}(\.\d{1,6})?$/.test(text.trim()) || ms > timeMsMax) {
    throw new RangeError(
      `expected ms since the trace started, 0 to ${timeMsMax} (e.g. 12.5), got '${text}'`,
    );
  }
  return ms;
}

/** RUN_DIR/trace.jsonl when `target` is a directory, else `target` itself. */
async function tracePath(target: string): Promise<string> {
  try {
    const info = await Deno.stat(target);
    return info.isDirectory ? `${target.replace(/\/+$/, "")}/trace.jsonl` : target;
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
    throw new Error(`No run directory or trace file at ${target}`);
  }
}

/** Prints the trace; resolves with 0, 1 when the file cannot be read, 2 on usage errors. */
export function run(args: string[]): Promise<number> {
  const program = new Command("trace")
    .description(
      "Print a replication trace (RUN_DIR/trace.jsonl, or the file named): a summary\n" +
        "(events, dropped, span, counts by kind), then one line per event, oldest first,\n" +
        "with ns timestamps since the trace started. Every line of the file is checked.",
    )
    .argument("<run>", "run directory holding trace.jsonl, or a trace file")
    .option(
      "--seq <A..B>",
      "events with seq A..B (or one seq), plus FAULT/RECOVERY/SESSION in their time span",
      option(parseSeqRange),
    )
    .option("--kind <kinds>", "only these kinds, e.g. POST,ACK", option(parseKinds))
    .option("--from <ms>", "only events at or after this time (ms)", option(parseMs))
    .option("--to <ms>", "only events at or before this time (ms)", option(parseMs))
    .option("--json", "print {file, summary, events} as JSON on stdout");
  return runCommand(program, args, async (opts, program) => {
    if (opts.from !== undefined && opts.to !== undefined && opts.from > opts.to) {
      throw new RangeError(`--from ${opts.from} is after --to ${opts.to}: nothing to show`);
    }
    const selection: EventSelection = {
      seq: opts.seq,
      kinds: opts.kind,
      fromMs: opts.from,
      toMs: opts.to,
    };
    const path = await tracePath(program.processedArgs[0]);
    const file = await readTraceFile(path);
    const shown = selectEvents(file.events, selection);
    const summary = summarize(file, shown.length);
    if (opts.json) {
      console.log(JSON.stringify({ file: path, summary, names: file.header.names, events: shown }));
      return 0;
    }
    console.log(formatSummary(summary, selection).join("\n"));
    const lines = formatEvents(shown, file.header.names);
    for (let k = 0; k < lines.length; k += printBatchLines) {
      console.log(lines.slice(k, k + printBatchLines).join("\n"));
    }
    return 0;
  });
}

if (import.meta.main) Deno.exit(await run(Deno.args));
