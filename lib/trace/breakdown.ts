/**
 * The latency breakdown of each log, on one clock (`CLOCK_MONOTONIC`, shared by the
 * primary and the replica of a lab run): the primary stamps when it starts preparing a
 * log (fill + CRC32C), when the chain is posted and when the ack is polled; the replica
 * stamps when it polls the record's RECV, when the record is checked and persisted, and
 * when its ack is posted. Each side keeps the last `capacity` logs in preallocated columns
 * (off by default: a call site then costs one property read) and writes them to a JSON
 * file; {@linkcode summarizeBreakdown} joins the two files by seq and reports the median
 * of each stage.
 *
 * | stage | from | to |
 * |---|---|---|
 * | prepare | primary starts the log | chain posted (fill, CRC32C, record, post_send) |
 * | to-replica | chain posted | replica polled the RECV (WRITE + SEND on the wire, rxe) |
 * | check | RECV polled | record checked, CRC32C of the data, persisted |
 * | ack-post | checked | ack SEND posted (RECV re-post, ack encode, post_send) |
 * | ack-return | ack posted | primary polled the ack |
 * | total | primary starts the log | primary polled the ack |
 *
 * @example
 * ```ts
 * import { breakdown, Stamp } from "./breakdown.ts";
 * breakdown.enable("primary", 1024);
 * if (breakdown.on) breakdown.stamp(Stamp.PREPARE, 1, performance.now());
 * ```
 *
 * @module
 */
import { monotonicOffsetUs } from "../clock.ts";

/** The stamps: three per side. */
export const Stamp = {
  /** Primary: it starts preparing the log. */
  PREPARE: 0,
  /** Primary: the WRITE + SEND chain is posted. */
  POSTED: 1,
  /** Primary: the ack is polled. */
  ACKED: 2,
  /** Replica: the record's RECV is polled. */
  RECV: 0,
  /** Replica: the record is checked and persisted. */
  CHECKED: 1,
  /** Replica: the ack SEND is posted. */
  ACK_POSTED: 2,
} as const;

/** Which process recorded a breakdown file. */
export type BreakdownSide = "primary" | "replica";

const stampsPerSide = 3;
/** Largest number of logs a side keeps. */
export const breakdownCapacityMax = 1 << 20;
/** Logs kept when `enable()` names no capacity. */
export const breakdownCapacityDefault = 1 << 16;
const formatVersion = 1;

/** One side's file: rows of [seq, stamp0, stamp1, stamp2] in µs of CLOCK_MONOTONIC. */
export interface BreakdownFile {
  version: number;
  side: BreakdownSide;
  rows: number[][];
}

/** The median of each stage over the logs both sides stamped. */
export interface BreakdownSummary {
  /** Logs joined (stamped completely on both sides). */
  logs: number;
  /** Each stage, in pipeline order, with its median duration in µs. */
  stages: { name: string; p50Us: number }[];
}

/** Per-log stamps of one process (a singleton: {@linkcode breakdown}). */
export class Breakdown {
  /** Whether stamps are recorded; set by `enable()`. */
  on = false;
  #side: BreakdownSide = "primary";
  #capacity = 0;
  #seqs = new Float64Array(0);
  #stamps = new Float64Array(0);
  #offsetUs = 0;

  /** Starts recording the last `capacity` logs of `side` (allocates the columns once). */
  enable(side: BreakdownSide, capacity: number = breakdownCapacityDefault): void {
    if (!Number.isInteger(capacity) || capacity < 1 || capacity > breakdownCapacityMax) {
      throw new RangeError(`A breakdown keeps 1..${breakdownCapacityMax} logs, got ${capacity}`);
    }
    this.#side = side;
    this.#capacity = capacity;
    this.#seqs = new Float64Array(capacity).fill(-1);
    this.#stamps = new Float64Array(capacity * stampsPerSide);
    this.#offsetUs = monotonicOffsetUs();
    this.on = true;
  }

  /** Records stamp `which` of log `seq` at `nowMs` (a `performance.now()` reading). */
  stamp(which: number, seq: number, nowMs: number): void {
    const slot = seq % this.#capacity;
    if (this.#seqs[slot] !== seq) {
      this.#seqs[slot] = seq;
      this.#stamps.fill(0, slot * stampsPerSide, (slot + 1) * stampsPerSide);
    }
    this.#stamps[slot * stampsPerSide + which] = nowMs * 1000 + this.#offsetUs;
  }

  /** The recorded rows, oldest seq first. */
  file(): BreakdownFile {
    const rows: number[][] = [];
    for (let slot = 0; slot < this.#capacity; slot++) {
      const seq = this.#seqs[slot];
      if (seq < 0) continue;
      const at = slot * stampsPerSide;
      rows.push([seq, ...this.#stamps.subarray(at, at + stampsPerSide)]);
    }
    rows.sort((x, y) => x[0] - y[0]);
    return { version: formatVersion, side: this.#side, rows };
  }

  /** Writes the rows as JSON (a process about to exit uses this). */
  writeSync(path: string): void {
    Deno.writeTextFileSync(path, JSON.stringify(this.file()));
  }
}

/** This process's breakdown. */
export const breakdown: Breakdown = new Breakdown();

/** Reads and validates one side's file. */
export async function readBreakdown(path: string, side: BreakdownSide): Promise<BreakdownFile> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(await Deno.readTextFile(path));
  } catch (error) {
    throw new Error(`Cannot read the ${side}'s breakdown ${path}: ${(error as Error).message}`);
  }
  const f = parsed as Partial<BreakdownFile>;
  if (f?.version !== formatVersion || f.side !== side || !Array.isArray(f.rows)) {
    throw new Error(
      `${path} is not a version-${formatVersion} ${side} breakdown (run with --breakdown FILE)`,
    );
  }
  for (const row of f.rows) {
    if (
      !Array.isArray(row) || row.length !== 1 + stampsPerSide ||
      !row.every((v) => typeof v === "number" && Number.isFinite(v) && v >= 0)
    ) {
      throw new Error(`${path} has a malformed row: ${JSON.stringify(row).slice(0, 80)}`);
    }
  }
  return f as BreakdownFile;
}

/** Joins a primary's and a replica's files by seq; the median of each stage. */
export async function summarizeBreakdown(
  primaryFile: string,
  replicaFile: string,
): Promise<BreakdownSummary> {
  const primary = await readBreakdown(primaryFile, "primary");
  const replica = await readBreakdown(replicaFile, "replica");
  const bySeq = new Map<number, number[]>();
  for (const row of replica.rows) bySeq.set(row[0], row);
  const names = ["prepare", "to-replica", "check", "ack-post", "ack-return", "total"];
  const columns: number[][] = names.map(() => []);
  for (const p of primary.rows) {
    const r = bySeq.get(p[0]);
    if (!r || p.slice(1).includes(0) || r.slice(1).includes(0)) continue;
    const [, prepare, posted, acked] = p;
    const [, recv, checked, ackPosted] = r;
    const stages = [
      posted - prepare,
      recv - posted,
      checked - recv,
      ackPosted - checked,
      acked - ackPosted,
      acked - prepare,
    ];
    stages.forEach((v, i) => columns[i].push(v));
  }
  const median = (xs: number[]) => {
    if (xs.length === 0) return NaN;
    const s = [...xs].sort((x, y) => x - y);
    return s[Math.floor((s.length - 1) / 2)];
  };
  return {
    logs: columns[0].length,
    stages: names.map((name, i) => ({ name, p50Us: median(columns[i]) })),
  };
}
