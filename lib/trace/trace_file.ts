/**
 * Trace files: one JSON object per line, a header line first
 * (`{"format":"rrl-trace","version":1,"started":ISO,"capacity":N,"dropped":N,"events":N,
 * "names":{"FAULT":{"3":"ACK_DROPPED"},"RECOVERY":{}}}`), then one line per event in time
 * order (`{"t":12345678,"kind":"POST","side":0,"opcode":258,...}`, the fields of
 * `traceLayout`). The reader validates every line and refuses a malformed, truncated or
 * foreign file with a {@linkcode TraceFileError} naming the line.
 *
 * @example
 * ```ts
 * import { readTraceFile } from "./trace_file.ts";
 * const { header, events } = await readTraceFile("runs/example/trace.jsonl");
 * console.log(header.dropped, events.length);
 * ```
 *
 * @module
 */
import {
  traceCapacityMax,
  type TraceColumn,
  type TraceEvent,
  TraceKind,
  type TraceKindName,
  traceKindNames,
  traceLayout,
  traceNamePattern,
  type TraceNames,
  traceNamesMax,
} from "./trace.ts";

/** Longest line the reader accepts, in characters. */
export const traceLineCharsMax = 4096;
const writeBatchLines = 4096;
const columnMax: Record<TraceColumn, number> = {
  side: 1,
  code: 0xffff,
  aux: 0xff,
  seq: Number.MAX_SAFE_INTEGER,
  a: Number.MAX_SAFE_INTEGER,
  b: Number.MAX_SAFE_INTEGER,
  c: 0xffff_ffff,
};

/** The first line of a trace file. */
export interface TraceHeader {
  /** Always `rrl-trace`: tells a trace from other JSON lines. */
  format: "rrl-trace";
  /** Format version; this reader reads 1. */
  version: 1;
  /** Wall clock when the trace started, ISO 8601. */
  started: string;
  /** The ring's size in events. */
  capacity: number;
  /** Events overwritten because the ring was full. */
  dropped: number;
  /** Event lines that follow. */
  events: number;
  /** Names of FAULT and RECOVERY codes, registered when the trace was written. */
  names: TraceNames;
}

/** A trace as written to or read from a file. */
export interface TraceFile {
  /** The header line. */
  header: TraceHeader;
  /** The events, oldest first. */
  events: TraceEvent[];
}

/** A trace file that is missing, malformed or foreign; the message names the line. */
export class TraceFileError extends Error {
  /** `TraceFileError`. */
  override name = "TraceFileError";
}

/** Writes `file` as JSON lines (header first) to `path`; resolves with the events written. */
export async function writeTraceFile(path: string, file: TraceFile): Promise<number> {
  const out = await Deno.open(path, { write: true, create: true, truncate: true });
  const writer = out.writable.getWriter();
  const encoder = new TextEncoder();
  try {
    await writer.write(encoder.encode(JSON.stringify(file.header) + "\n"));
    for (let k = 0; k < file.events.length; k += writeBatchLines) {
      const lines = file.events.slice(k, k + writeBatchLines).map((e) => JSON.stringify(e));
      await writer.write(encoder.encode(lines.join("\n") + "\n"));
    }
  } finally {
    await writer.close();
  }
  return file.events.length;
}

/** Reads and checks a trace file; a {@linkcode TraceFileError} names the first bad line. */
export async function readTraceFile(path: string): Promise<TraceFile> {
  let header: TraceHeader | undefined, line = 0, t = 0;
  const events: TraceEvent[] = [];
  const where = () => `${path} line ${line}`;
  try {
    for await (const text of readLines(path)) {
      line++;
      if (text.length > traceLineCharsMax) {
        throw new TraceFileError(`${where()}: longer than ${traceLineCharsMax} characters`);
      }
      if (!header) {
        header = checkHeader(parseObject(text, where()), where());
        continue;
      }
      if (events.length === header.events) {
        throw new TraceFileError(`${where()}: more events than the header's ${header.events}`);
      }
      const event = checkEvent(parseObject(text, where()), where());
      if (event.t < t) throw new TraceFileError(`${where()}: time goes back (${event.t} < ${t})`);
      t = event.t;
      events.push(event);
    }
  } catch (error) {
    if (error instanceof TraceFileError) throw error;
    if (error instanceof Deno.errors.NotFound) {
      throw new TraceFileError(`No trace at ${path}: the file does not exist`);
    }
    if (error instanceof TypeError) {
      throw new TraceFileError(`${path}: not UTF-8 text after line ${line} (not a trace file?)`);
    }
    throw new TraceFileError(`Cannot read trace ${path}: ${(error as Error).message}`);
  }
  if (!header) throw new TraceFileError(`${path} is empty: expected an rrl-trace header line`);
  if (events.length !== header.events) {
    throw new TraceFileError(
      `${path} line ${line + 1}: the file ends after ${events.length} of the header's ` +
        `${header.events} events (truncated?)`,
    );
  }
  return { header, events };
}

/** The file's lines without their `\n`; a line over the limit is yielded as soon as seen. */
async function* readLines(path: string): AsyncGenerator<string> {
  const file = await Deno.open(path);
  let rest = "";
  const decoder = new TextDecoderStream("utf-8", { fatal: true });
  for await (const chunk of file.readable.pipeThrough(decoder)) {
    const parts = (rest + chunk).split("\n");
    rest = parts.pop()!;
    yield* parts;
    if (rest.length > traceLineCharsMax) yield rest;
  }
  if (rest !== "") yield rest;
}

function parseObject(text: string, where: string): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new TraceFileError(`${where}: not JSON (${JSON.stringify(text.slice(0, 40))})`);
  }
  if (!isObject(value)) throw new TraceFileError(`${where}: not a JSON object`);
  return value;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function checkKeys(v: Record<string, unknown>, keys: readonly string[], where: string): void {
  for (const key of keys) {
    if (!Object.hasOwn(v, key)) throw new TraceFileError(`${where}: missing field '${key}'`);
  }
  const extra = Object.keys(v).find((key) => !keys.includes(key));
  if (extra !== undefined) throw new TraceFileError(`${where}: unexpected field '${extra}'`);
}

function checkInt(v: unknown, min: number, max: number, what: string): number {
  if (typeof v !== "number" || !Number.isInteger(v) || v < min || v > max) {
    throw new TraceFileError(`${what} must be an integer from ${min} to ${max}, got ${v}`);
  }
  return v;
}

function checkHeader(v: Record<string, unknown>, where: string): TraceHeader {
  if (v.format !== "rrl-trace") {
    throw new TraceFileError(
      `${where}: not an rrl-trace header (format ${JSON.stringify(v.format)})`,
    );
  }
  if (v.version !== 1) {
    throw new TraceFileError(`${where}: trace version ${v.version}; this reader reads version 1`);
  }
  checkKeys(v, ["format", "version", "started", "capacity", "dropped", "events", "names"], where);
  if (typeof v.started !== "string" || Number.isNaN(Date.parse(v.started))) {
    throw new TraceFileError(`${where}: 'started' must be an ISO 8601 time, got ${v.started}`);
  }
  const at = (field: string) => `${where}: '${field}'`;
  const capacity = checkInt(v.capacity, 1, traceCapacityMax, at("capacity"));
  checkInt(v.dropped, 0, Number.MAX_SAFE_INTEGER, at("dropped"));
  checkInt(v.events, 0, capacity, at("events"));
  if (v.dropped !== 0 && v.events !== capacity) {
    throw new TraceFileError(`${where}: ${v.dropped} dropped but only ${v.events} events kept`);
  }
  const names = v.names as Record<string, Record<string, unknown>>;
  if (!isObject(names)) throw new TraceFileError(`${at("names")} must be an object`);
  checkKeys(names, ["FAULT", "RECOVERY"], `${where}: names`);
  for (const [kind, map] of Object.entries(names)) {
    if (!isObject(map) || Object.keys(map).length > traceNamesMax) {
      throw new TraceFileError(`${where}: names.${kind} must map at most 256 codes to names`);
    }
    const entries = Object.entries(map);
    for (const [code, name] of entries) {
      checkInt(/^\d{1,5}$/.test(code) ? Number(code) : NaN, 0, 0xffff, `${where}: a ${kind} code`);
      if (typeof name !== "string" || !traceNamePattern.test(name)) {
        throw new TraceFileError(`${where}: ${kind} ${code} has an invalid name ${name}`);
      }
    }
  }
  return v as unknown as TraceHeader;
}

function checkEvent(v: Record<string, unknown>, where: string): TraceEvent {
  const kind = v.kind;
  if (typeof kind !== "string" || !Object.hasOwn(TraceKind, kind)) {
    throw new TraceFileError(
      `${where}: unknown kind ${JSON.stringify(kind)} (expected ${traceKindNames.join(", ")})`,
    );
  }
  const layout = traceLayout[kind as TraceKindName];
  checkKeys(v, ["t", "kind", ...layout.map(([field]) => field)], where);
  checkInt(v.t, 0, Number.MAX_SAFE_INTEGER, `${where}: 't'`);
  for (const [field, column] of layout) {
    const min = field === "arg" ? -Number.MAX_SAFE_INTEGER : 0;
    checkInt(v[field], min, columnMax[column], `${where}: ${kind} '${field}'`);
  }
  return v as TraceEvent;
}
