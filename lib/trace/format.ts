/**
 * Trace events as human-readable lines, a summary, and the selections `deno task trace`
 * offers: a seq range (with the faults, recovery steps and session events in its time
 * span), kinds, and a time window. Opcodes and statuses are named from `verbs.h`'s enums
 * (`ffi/verbs_constants.ts`), ack statuses from docs/protocol.md (`lib/log/ack.ts`).
 *
 * @example
 * ```ts
 * import { formatEvents, formatSummary, selectEvents, summarize } from "./format.ts";
 * import { readTraceFile } from "./trace_file.ts";
 *
 * const file = await readTraceFile("runs/example/trace.jsonl");
 * const shown = selectEvents(file.events, { seq: { from: 17, to: 20 } });
 * console.log(formatSummary(summarize(file, shown.length)).join("\n"));
 * console.log(formatEvents(shown, file.header.names).join("\n"));
 * ```
 *
 * @module
 */
import { IBV_WC_OPCODE, IBV_WC_STATUS, IBV_WR_OPCODE } from "../../ffi/verbs_constants.ts";
import { ackStatusName } from "../log/ack.ts";
import { RecordFlags } from "../log/record.ts";
import {
  SessionEvent,
  type TraceEvent,
  TraceKind,
  type TraceKindName,
  traceKindNames,
  type TraceNames,
} from "./trace.ts";
import type { TraceFile } from "./trace_file.ts";

/** An inclusive range of sequence numbers. */
export interface SeqRange {
  /** The first seq. */
  from: number;
  /** The last seq (≥ from). */
  to: number;
}

/** What {@linkcode selectEvents} keeps; every given criterion must hold. */
export interface EventSelection {
  /** Events whose seq is in the range, plus FAULT/RECOVERY/SESSION events in their span. */
  seq?: SeqRange;
  /** Only these kinds. */
  kinds?: readonly TraceKindName[];
  /** Only events at or after this time, in ms since the trace started. */
  fromMs?: number;
  /** Only events at or before this time, in ms since the trace started. */
  toMs?: number;
}

/** Counts of a trace, for the summary header and `--json`. */
export interface TraceSummary {
  /** Wall clock when the trace started, ISO 8601. */
  started: string;
  /** The ring's size in events. */
  capacity: number;
  /** Events in the file. */
  events: number;
  /** Events overwritten because the ring was full. */
  dropped: number;
  /** Time from the first to the last event, in ns. */
  spanNs: number;
  /** Events per kind, every kind present. */
  byKind: Record<TraceKindName, number>;
  /** Events selected for printing. */
  shown: number;
}

const contextKinds: ReadonlySet<string> = new Set(["FAULT", "RECOVERY", "SESSION"]);
const seqRangePattern = /^(\d{1,16})(?:\.\.(\d{1,16}))?$/;
const sideNames = ["primary", "replica"];

/** Maps each code of a `verbs.h` enum to its C name without `prefix` (and a leading `RDMA_`). */
function namesOf(table: Record<string, number>, prefix: string): Map<number, string> {
  const names = new Map<number, string>();
  for (const [name, code] of Object.entries(table)) {
    if (!names.has(code)) names.set(code, name.slice(prefix.length).replace(/^RDMA_/, ""));
  }
  return names;
}
const wrNames = namesOf(IBV_WR_OPCODE, "IBV_WR_");
const wcNames = namesOf(IBV_WC_OPCODE, "IBV_WC_");
const wcStatusNames = namesOf(IBV_WC_STATUS, "IBV_WC_");
const sessionNames = namesOf(SessionEvent, "");
const flagNames = Object.entries(RecordFlags);

/** Parses `A..B` (or a single seq `A`) into an inclusive range; a RangeError says why not. */
export function parseSeqRange(text: string): SeqRange {
  const match = seqRangePattern.exec(text.trim());
  const from = Number(match?.[1]);
  const to = match?.[2] === undefined ? from : Number(match[2]);
  if (!match || !Number.isSafeInteger(from) || !Number.isSafeInteger(to)) {
    throw new RangeError(`Expected a seq range A..B (e.g. 17..20) or one seq, got '${text}'`);
  }
  if (from > to) throw new RangeError(`The seq range ${text} is empty: ${from} is above ${to}`);
  return { from, to };
}

/** Parses comma-separated kind names (any case: `post,ACK`); a RangeError names an unknown one. */
export function parseKinds(text: string): TraceKindName[] {
  const names = text.split(",").map((name) => name.trim().toUpperCase()).filter((n) => n !== "");
  if (names.length === 0) {
    throw new RangeError(`Expected event kinds (${traceKindNames.join(",")}), got '${text}'`);
  }
  for (const name of names) {
    if (!Object.hasOwn(TraceKind, name)) {
      throw new RangeError(`Unknown event kind '${name}': expected ${traceKindNames.join(", ")}`);
    }
  }
  return [...new Set(names)] as TraceKindName[];
}

/** The events `selection` keeps, in their order (oldest first). */
export function selectEvents(
  events: readonly TraceEvent[],
  selection: EventSelection,
): TraceEvent[] {
  let out = [...events];
  const range = selection.seq;
  if (range) {
    const hit = (e: TraceEvent) => "seq" in e && e.seq >= range.from && e.seq <= range.to;
    let first = Infinity, last = -Infinity;
    for (const e of events) {
      if (hit(e)) [first, last] = [Math.min(first, e.t), Math.max(last, e.t)];
    }
    out = out.filter((e) => hit(e) || (contextKinds.has(e.kind) && e.t >= first && e.t <= last));
  }
  if (selection.kinds) {
    const kinds = new Set<string>(selection.kinds);
    out = out.filter((e) => kinds.has(e.kind));
  }
  // Event times are whole ns; a bound typed in ms (as printed, 6 decimals) is rounded to
  // whole ns, so that 12.345678 ms selects the event at 12345678 ns (x 1e6 can give ...77.99).
  const fromNs = selection.fromMs === undefined ? -Infinity : Math.round(selection.fromMs * 1e6);
  const toNs = selection.toMs === undefined ? Infinity : Math.round(selection.toMs * 1e6);
  return out.filter((e) => e.t >= fromNs && e.t <= toNs);
}

/** The name of a POST opcode: `SEND`, or `WRITE+SEND` for a `chainOpcode` pair. */
export function postOpcodeName(code: number): string {
  const name = (op: number) => wrNames.get(op) ?? `WR(${op})`;
  return code > 0xff ? `${name((code >> 8) - 1)}+${name(code & 0xff)}` : name(code);
}

/** The name of an `IBV_WC_*` opcode (`RECV`, `WRITE`) and of a status (`WR_FLUSH_ERR`). */
export function completionNames(opcode: number, status: number): [string, string] {
  return [
    wcNames.get(opcode) ?? `WC(${opcode})`,
    wcStatusNames.get(status) ?? `STATUS(${status})`,
  ];
}

/** `RecordFlags` as names: `LOG` for none, `SKIP`, `NOP`, `RELEASE`, unknown bits in hex. */
export function recordFlagsName(flags: number): string {
  if (flags === 0) return "LOG";
  const names = flagNames.filter(([, bit]) => (flags & bit) !== 0).map(([name]) => name);
  const unknown = flags & ~flagNames.reduce((all, [, bit]) => all | bit, 0);
  return [...names, ...(unknown ? [`0x${unknown.toString(16)}`] : [])].join("|");
}

function details(e: TraceEvent, names: TraceNames): string {
  const named = (table: Record<string, string>, what: string, code: number) =>
    table[String(code)] ?? `${what}(${code})`;
  switch (e.kind) {
    case "POST":
      return `${postOpcodeName(e.opcode)} seq ${e.seq} wr ${e.wrId} ${e.bytes} B qp ${e.qpNum}`;
    case "COMPLETION": {
      const [opcode, status] = completionNames(e.opcode, e.status);
      return `${opcode} ${status} wr ${e.wrId} ${e.byteLen} B qp ${e.qpNum}`;
    }
    case "RECORD":
      return `${recordFlagsName(e.flags)} seq ${e.seq} offset ${e.offset} length ${e.length}`;
    case "ACK":
      return `${ackStatusName(e.status)} seq ${e.seq} next ${e.nextSeq} released ${e.released}`;
    case "FAULT":
      return `${named(names.FAULT, "FAULT", e.code)} seq ${e.seq} arg ${e.arg}`;
    case "RECOVERY":
      return `${named(names.RECOVERY, "STEP", e.step)} seq ${e.seq} arg ${e.arg}`;
    case "SESSION":
      return `${sessionNames.get(e.event) ?? `EVENT(${e.event})`} arg ${e.arg}`;
  }
}

/** One line: `+12.345678 ms  primary  POST       WRITE+SEND seq 17 wr 17 65536 B qp 18`. */
export function formatEvent(
  e: TraceEvent,
  names: TraceNames,
  options: { timeWidth?: number } = {},
): string {
  const time = `+${(e.t / 1e6).toFixed(6)} ms`.padStart(options.timeWidth ?? 0);
  const side = "side" in e ? sideNames[e.side] ?? `side ${e.side}` : "-";
  return `${time}  ${side.padEnd(7)}  ${e.kind.padEnd(10)} ${details(e, names)}`;
}

/** One line per event, times right-aligned. */
export function formatEvents(events: readonly TraceEvent[], names: TraceNames): string[] {
  const width = events.length ? `+${(events.at(-1)!.t / 1e6).toFixed(6)} ms`.length : 0;
  return events.map((e) => formatEvent(e, names, { timeWidth: width }));
}

/** Counts the file's events by kind; `shown` is how many were selected. */
export function summarize(file: TraceFile, shown = file.events.length): TraceSummary {
  const { header, events } = file;
  const byKind = Object.fromEntries(traceKindNames.map((kind) => [kind, 0])) as Record<
    TraceKindName,
    number
  >;
  for (const e of events) byKind[e.kind]++;
  const spanNs = events.length ? events.at(-1)!.t - events[0].t : 0;
  const { started, capacity, dropped } = header;
  return { started, capacity, events: events.length, dropped, spanNs, byKind, shown };
}

/** The summary header: totals, counts by kind, and what the selection shows. */
export function formatSummary(s: TraceSummary, selection: EventSelection = {}): string[] {
  const lines = [
    `trace: ${s.events} events, ${s.dropped} dropped, span ${(s.spanNs / 1e6).toFixed(6)} ms, ` +
    `capacity ${s.capacity}, started ${s.started}`,
    `by kind: ${traceKindNames.map((kind) => `${kind} ${s.byKind[kind]}`).join(", ")}`,
  ];
  if (s.dropped > 0) {
    lines.push(`note: the oldest ${s.dropped} events were overwritten; raise the capacity`);
  }
  const criteria = [
    selection.seq &&
    `seq ${selection.seq.from}..${selection.seq.to} with FAULT/RECOVERY/SESSION in its span`,
    selection.kinds && `kinds ${selection.kinds.join(",")}`,
    selection.fromMs !== undefined && `from ${selection.fromMs} ms`,
    selection.toMs !== undefined && `to ${selection.toMs} ms`,
  ].filter((c) => c);
  if (criteria.length) lines.push(`shown: ${s.shown} of ${s.events} (${criteria.join(", ")})`);
  return lines;
}
