/**
 * A bounded in-memory trace of replication events: preallocated typed-array columns, a
 * fixed capacity, the oldest events overwritten (and counted) when full, timestamps in ns
 * since the trace started (`performance.now()`, monotonic). Recording allocates nothing;
 * when tracing is off a call site costs one property read. Files are JSON lines
 * (`writeJsonl`/`readJsonl`); `lib/trace/format.ts` prints them.
 *
 * @example
 * ```ts
 * import { chainOpcode, Side, trace } from "./trace.ts";
 * import { IBV_WR_OPCODE as O } from "../../ffi/verbs_constants.ts";
 *
 * trace.enable({ capacity: 4096 });
 * const opcode = chainOpcode(O.IBV_WR_RDMA_WRITE, O.IBV_WR_SEND);
 * if (trace.on) trace.post(Side.PRIMARY, opcode, 17, 17, 65536, 18);
 * await trace.writeJsonl("runs/example/trace.jsonl");
 * ```
 *
 * @module
 */
import type { TraceFile, TraceHeader } from "./trace_file.ts";

/** Event kinds, stored as one byte per event. */
export const TraceKind = {
  POST: 1,
  COMPLETION: 2,
  RECORD: 3,
  ACK: 4,
  FAULT: 5,
  RECOVERY: 6,
  SESSION: 7,
} as const;
/** A {@linkcode TraceKind} name, e.g. `"POST"`. */
export type TraceKindName = keyof typeof TraceKind;
/** Every kind name, in code order. */
export const traceKindNames: readonly TraceKindName[] = Object.keys(TraceKind) as TraceKindName[];

/** The `side` field: which process recorded the event. */
export const Side = { PRIMARY: 0, REPLICA: 1 } as const;
/** The `event` field of a SESSION event. */
export const SessionEvent = { START: 1, END: 2, RECONNECT: 3 } as const;

/** Events kept when `enable()` names no capacity. */
export const traceCapacityDefault = 65_536;
/** Largest capacity (41 bytes per event: 168 MiB). */
export const traceCapacityMax = 4 * 1024 * 1024;
/** Names a caller may register per kind (FAULT, RECOVERY). */
export const traceNamesMax = 256;
/** What a FAULT or RECOVERY name looks like. */
export const traceNamePattern = /^[A-Z][A-Z0-9_]{0,31}$/;

/** Storage columns: `side` u8, `code` u16, `aux` u8, `seq`/`a`/`b` f64, `c` u32. */
export type TraceColumn = "side" | "code" | "aux" | "seq" | "a" | "b" | "c";
const S = ["side", "side"] as const;
const Q = ["seq", "seq"] as const;

/**
 * Field layout per kind: `[field, column]`, in JSON order. The recording methods write
 * exactly these columns (the round-trip test proves it); `arg` is the only signed field.
 */
export const traceLayout = {
  POST: [S, ["opcode", "code"], Q, ["wrId", "a"], ["bytes", "b"], ["qpNum", "c"]],
  COMPLETION: [S, ["opcode", "code"], ["status", "aux"], ["wrId", "a"], ["byteLen", "b"], [
    "qpNum",
    "c",
  ]],
  RECORD: [S, ["flags", "code"], Q, ["offset", "a"], ["length", "b"]],
  ACK: [S, ["status", "code"], Q, ["nextSeq", "a"], ["released", "b"]],
  FAULT: [["code", "code"], Q, ["arg", "a"]],
  RECOVERY: [["step", "code"], Q, ["arg", "a"]],
  SESSION: [S, ["event", "code"], ["arg", "a"]],
} as const satisfies Record<TraceKindName, readonly (readonly [string, TraceColumn])[]>;

/** One event of kind `K`: `t` (ns since the trace started), `kind`, then its fields. */
export type TraceEventOf<K extends TraceKindName> =
  & { t: number; kind: K }
  & { [F in (typeof traceLayout)[K][number][0]]: number };
/** Any event, discriminated by `kind`. */
export type TraceEvent = { [K in TraceKindName]: TraceEventOf<K> }[TraceKindName];
/** Registered code names: `names.FAULT["3"] === "ACK_DROPPED"`. */
export type TraceNames = { FAULT: Record<string, string>; RECOVERY: Record<string, string> };

function columns(n: number) {
  return {
    side: new Uint8Array(n),
    code: new Uint16Array(n),
    aux: new Uint8Array(n),
    seq: new Float64Array(n),
    a: new Float64Array(n),
    b: new Float64Array(n),
    c: new Uint32Array(n),
  };
}

/**
 * The event ring. Use the module's {@linkcode trace}; guard every call site with
 * `if (trace.on)`. Numbers are stored as their column's type (u8/u16/u32 wrap, f64 as is):
 * pass integers in range; `readJsonl` refuses anything else.
 */
export class Trace {
  /** Whether events are recorded; set by `enable()`/`disable()`. */
  readonly on: boolean = false;
  #capacity = 0;
  #head = 0;
  #total = 0;
  #t0 = 0;
  #started = 0;
  #time = new Float64Array(0);
  #kind = new Uint8Array(0);
  #cols = columns(0);
  readonly #names = { FAULT: new Map<number, string>(), RECOVERY: new Map<number, string>() };

  /** Starts a new trace (allocating the ring when the capacity changes) and turns it on. */
  enable(options: { capacity?: number } = {}): void {
    const capacity = options.capacity ?? traceCapacityDefault;
    if (!Number.isInteger(capacity) || capacity < 1 || capacity > traceCapacityMax) {
      throw new RangeError(`Trace capacity must be 1 to ${traceCapacityMax}, got ${capacity}`);
    }
    if (capacity !== this.#capacity) {
      this.#time = new Float64Array(capacity);
      this.#kind = new Uint8Array(capacity);
      this.#cols = columns(capacity);
      this.#capacity = capacity;
    }
    this.clear();
    (this as { on: boolean }).on = true;
  }

  /** Stops recording; the events stay readable. */
  disable(): void {
    (this as { on: boolean }).on = false;
  }

  /** Forgets every event and the dropped count, and restarts the clock. */
  clear(): void {
    this.#head = 0;
    this.#total = 0;
    this.#t0 = performance.now();
    this.#started = Date.now();
  }

  /** Events the ring holds (at most its capacity). */
  get count(): number {
    return Math.min(this.#total, this.#capacity);
  }

  /** Events overwritten since the trace started. */
  get dropped(): number {
    return Math.max(0, this.#total - this.#capacity);
  }

  /** The ring's size in events (0 before the first `enable()`). */
  get capacity(): number {
    return this.#capacity;
  }

  #slot(kind: number): number {
    const i = this.#head;
    this.#head = i + 1 === this.#capacity ? 0 : i + 1;
    this.#total++;
    this.#time[i] = Math.round((performance.now() - this.#t0) * 1e6);
    this.#kind[i] = kind;
    return i;
  }

  /** A posted send chain (`ibv_post_send(3)`); `opcode`: `IBV_WR_*` or {@linkcode chainOpcode}. */
  post(
    side: number,
    opcode: number,
    seq: number,
    wrId: number,
    bytes: number,
    qpNum: number,
  ): void {
    if (!this.on) return;
    const c = this.#cols;
    const i = this.#slot(TraceKind.POST);
    c.side[i] = side;
    c.code[i] = opcode;
    c.seq[i] = seq;
    c.a[i] = wrId;
    c.b[i] = bytes;
    c.c[i] = qpNum;
  }

  /** A work completion (`ibv_poll_cq(3)`): raw `IBV_WC_*` opcode and status. */
  completion(
    side: number,
    opcode: number,
    status: number,
    wrId: number,
    byteLen: number,
    qpNum: number,
  ): void {
    if (!this.on) return;
    const c = this.#cols;
    const i = this.#slot(TraceKind.COMPLETION);
    c.side[i] = side;
    c.code[i] = opcode;
    c.aux[i] = status;
    c.a[i] = wrId;
    c.b[i] = byteLen;
    c.c[i] = qpNum;
  }

  /** A log record sent (primary) or received (replica); `flags` are `RecordFlags` bits. */
  record(side: number, flags: number, seq: number, offset: number, length: number): void {
    if (!this.on) return;
    const c = this.#cols;
    const i = this.#slot(TraceKind.RECORD);
    c.side[i] = side;
    c.code[i] = flags;
    c.seq[i] = seq;
    c.a[i] = offset;
    c.b[i] = length;
  }

  /** An ack sent (replica) or received (primary); `status` is an `AckStatus`. */
  ack(side: number, status: number, seq: number, nextSeq: number, released: number): void {
    if (!this.on) return;
    const c = this.#cols;
    const i = this.#slot(TraceKind.ACK);
    c.side[i] = side;
    c.code[i] = status;
    c.seq[i] = seq;
    c.a[i] = nextSeq;
    c.b[i] = released;
  }

  /** An injected or detected fault; `code` named by `registerName("FAULT", ...)`. */
  fault(code: number, seq: number, arg: number): void {
    if (!this.on) return;
    const c = this.#cols;
    const i = this.#slot(TraceKind.FAULT);
    c.code[i] = code;
    c.seq[i] = seq;
    c.a[i] = arg;
  }

  /** A recovery step; `step` named by `registerName("RECOVERY", ...)`. */
  recovery(step: number, seq: number, arg: number): void {
    if (!this.on) return;
    const c = this.#cols;
    const i = this.#slot(TraceKind.RECOVERY);
    c.code[i] = step;
    c.seq[i] = seq;
    c.a[i] = arg;
  }

  /** A session start, end or reconnect ({@linkcode SessionEvent}). */
  session(side: number, event: number, arg: number): void {
    if (!this.on) return;
    const c = this.#cols;
    const i = this.#slot(TraceKind.SESSION);
    c.side[i] = side;
    c.code[i] = event;
    c.a[i] = arg;
  }

  /**
   * Names a FAULT or RECOVERY code (0..65535; `NAME_LIKE_THIS`, at most 32 characters).
   * Registering the same pair again is a no-op; another name for a named code throws.
   */
  registerName(kind: "FAULT" | "RECOVERY", code: number, name: string): void {
    const names = this.#names[kind];
    if (!Number.isInteger(code) || code < 0 || code > 0xffff) {
      throw new RangeError(`${kind} code must be 0 to 65535, got ${code}`);
    }
    if (!traceNamePattern.test(name)) {
      throw new RangeError(`${kind} name must match ${traceNamePattern}, got '${name}'`);
    }
    const known = names.get(code);
    if (known === name) return;
    if (known !== undefined) {
      throw new RangeError(`${kind} code ${code} is already named ${known}, not ${name}`);
    }
    if (names.size >= traceNamesMax) {
      throw new RangeError(`Cannot name ${kind} ${code}: ${traceNamesMax} names already`);
    }
    names.set(code, name);
  }

  /** The events, oldest first, as new objects; only those `filter` keeps when given. */
  events(filter?: (event: TraceEvent) => boolean): TraceEvent[] {
    const out: TraceEvent[] = [];
    const first = this.#total > this.#capacity ? this.#head : 0;
    for (let k = 0, n = this.count; k < n; k++) {
      const i = (first + k) % this.#capacity;
      const kind = traceKindNames[this.#kind[i] - 1];
      const e: Record<string, number | string> = { t: this.#time[i], kind };
      for (const [field, column] of traceLayout[kind]) e[field] = this.#cols[column][i];
      if (!filter || filter(e as TraceEvent)) out.push(e as TraceEvent);
    }
    return out;
  }

  /** The header and every event, as `writeJsonl` writes them. */
  snapshot(): TraceFile {
    const names = (kind: "FAULT" | "RECOVERY") =>
      Object.fromEntries([...this.#names[kind]].map(([code, name]) => [String(code), name]));
    const events = this.events();
    const header: TraceHeader = {
      format: "rrl-trace",
      version: 1,
      started: new Date(this.#started).toISOString(),
      capacity: this.#capacity,
      dropped: this.dropped,
      events: events.length,
      names: { FAULT: names("FAULT"), RECOVERY: names("RECOVERY") },
    };
    return { header, events };
  }

  /** Writes the trace synchronously (before a fault kills the process); returns the count. */
  writeJsonlSync(path: string): number {
    if (this.#capacity === 0) throw new RangeError("No trace to write: call trace.enable() first");
    const file = this.snapshot();
    const lines = [JSON.stringify(file.header), ...file.events.map((e) => JSON.stringify(e))];
    Deno.writeTextFileSync(path, lines.join("\n") + "\n");
    return file.events.length;
  }

  /** Writes the header line, then a line per event (`trace_file.ts`); resolves with the count. */
  async writeJsonl(path: string): Promise<number> {
    if (this.#capacity === 0) throw new RangeError("No trace to write: call trace.enable() first");
    const { writeTraceFile } = await import("./trace_file.ts");
    return await writeTraceFile(path, this.snapshot());
  }

  /**
   * Loads a file written by `writeJsonl`, checking every line; a `TraceFileError` names
   * the line. The file code is imported on first use: recording needs none of it.
   */
  async readJsonl(path: string): Promise<TraceFile> {
    const { readTraceFile } = await import("./trace_file.ts");
    return await readTraceFile(path);
  }
}

/** The process's trace: `if (trace.on) trace.post(...)`. */
export const trace: Trace = new Trace();

/**
 * Bit layout of a chained POST opcode: the last work request's `IBV_WR_*` in bits 0..7,
 * the one before it + 1 in bits 8..15 (so a single WR is its raw opcode).
 */
export function chainOpcode(first: number, then: number): number {
  return ((first + 1) << 8) | then;
}
