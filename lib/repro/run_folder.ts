/**
 * The run folder's files: the merged trace, versions, naming, and the small helpers the
 * runner uses to read and write them.
 *
 * @module
 */
import { readTraceFile, writeTraceFile } from "../trace/trace_file.ts";
import type { TraceEvent, TraceNames } from "../trace/trace.ts";
import { AckStatus } from "../log/ack.ts";
import { repoDir } from "../lab/paths.ts";
import type { CheckResult } from "./check.ts";

/** Where run folders go. */
export const runsDir = `${repoDir}/runs`;

/** Merges the run's per-process traces into `trace.jsonl`, on one time axis. */
export async function mergeTraces(
  runDir: string,
): Promise<{ events: TraceEvent[]; names: TraceNames }> {
  const files = [];
  for await (const entry of Deno.readDir(runDir)) {
    if (entry.name.endsWith(".trace.jsonl")) files.push(`${runDir}/${entry.name}`);
  }
  const traces = [];
  for (const path of files.sort()) {
    try {
      traces.push(await readTraceFile(path));
    } catch {
      // a process killed while writing its trace: the others still tell the story
    }
  }
  const origin = Math.min(...traces.map((t) => Date.parse(t.header.started)));
  const names: TraceNames = { FAULT: {}, RECOVERY: {} };
  const events: TraceEvent[] = [];
  let dropped = 0, capacity = 0;
  for (const t of traces) {
    const shift = (Date.parse(t.header.started) - origin) * 1e6;
    Object.assign(names.FAULT, t.header.names.FAULT);
    Object.assign(names.RECOVERY, t.header.names.RECOVERY);
    dropped += t.header.dropped;
    capacity += t.header.capacity;
    for (const e of t.events) events.push({ ...e, t: e.t + shift });
  }
  events.sort((x, y) => x.t - y.t);
  await writeTraceFile(`${runDir}/trace.jsonl`, {
    header: {
      format: "rrl-trace",
      version: 1,
      started: new Date(Number.isFinite(origin) ? origin : Date.now()).toISOString(),
      capacity: Math.max(1, capacity),
      dropped,
      events: events.length,
      names,
    },
    events,
  });
  return { events, names };
}

/**
 * The logs the replica refused for good: a refusal of the log itself (CRC, bounds, record,
 * persist, credit), not a transient SEQ_GAP (posted behind a refused log, re-posted) or a
 * SEQ_DUPLICATE (already held), and no OK for a later copy of the same log.
 */
export function rejectedSeqs(events: readonly TraceEvent[]): Set<number> {
  const rejected = new Set<number>();
  const lastFlags = new Map<number, number>();
  for (const e of events) {
    if (!("side" in e) || e.side !== 1) continue;
    if (e.kind === "RECORD") lastFlags.set(e.seq, e.flags);
    if (e.kind !== "ACK" || lastFlags.get(e.seq) !== 0) continue; // SKIPs are holes, not logs
    if (e.status === AckStatus.OK) rejected.delete(e.seq);
    else if (e.status !== AckStatus.SEQ_GAP && e.status !== AckStatus.SEQ_DUPLICATE) {
      rejected.add(e.seq);
    }
  }
  return rejected;
}

export function describeViolation(check: CheckResult): string {
  const v = check.violations[0];
  const counts = `acked-but-lost ${check.ackedButLost}, corruptions ${check.corruptions}, ` +
    `rejected-but-acked ${check.rejectedButAcked}, order ${check.orderViolations}`;
  return v ? `${v.kind}: ${v.detail} (${counts})` : counts;
}

export async function makeRunDir(scenario: string, seed: number): Promise<string> {
  const time = new Date().toISOString().replace(/[-:]/g, "").replace("T", "-").slice(0, 15);
  await Deno.mkdir(runsDir, { recursive: true });
  for (let n = 1; n < 1000; n++) {
    const dir = `${runsDir}/${time}-${scenario}-${seed}${n > 1 ? `-${n}` : ""}`;
    try {
      await Deno.mkdir(dir);
      return dir;
    } catch (error) {
      if (!(error instanceof Deno.errors.AlreadyExists)) throw error;
    }
  }
  throw new Error(`Cannot create a run folder under ${runsDir}: too many runs this second`);
}

/** Kernel, rdma-core, Deno and the project's commit. */
export async function versions(): Promise<Record<string, string>> {
  const dpkg = (name: string) => runText(["dpkg-query", "-W", "-f=${Version}", name]);
  return {
    kernel: Deno.osRelease(),
    rdmaCore: (await dpkg("libibverbs1")) || "unknown",
    deno: Deno.version.deno,
    commit: (await runText(["git", "-C", repoDir, "rev-parse", "HEAD"])) || "unknown",
    dirty: (await runText(["git", "-C", repoDir, "status", "--porcelain", "--untracked-files=no"]))
      ? "yes"
      : "no",
  };
}

export async function runText(argv: string[]): Promise<string> {
  try {
    const out = await new Deno.Command(argv[0], {
      args: argv.slice(1),
      stdout: "piped",
      stderr: "null",
    })
      .output();
    return out.success ? new TextDecoder().decode(out.stdout).trim() : "";
  } catch {
    return "";
  }
}

export async function exists(path: string): Promise<boolean> {
  return await Deno.stat(path).then(() => true, () => false);
}

export async function writeJson(path: string, value: unknown): Promise<void> {
  await Deno.writeTextFile(path, JSON.stringify(value, null, 2) + "\n");
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
