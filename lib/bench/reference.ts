/**
 * The native C reference of the replication protocol (`../shared/bench-ref`, next to the
 * repository, never copied into it): compiled at bench time into `.lab/bench/`, run as a
 * replica in B's namespace and a primary in A's (like its `guest_pair.sh`), with the same
 * warm-up as ours (`-w`) and, when asked, completion-channel waits on both sides (`-e`). The
 * primary's `RESULT` line is parsed into the shape of {@linkcode LatencySummary} plus its CPU
 * per log, and the replica's `replica: served N logs, ...` line into the replica's CPU per
 * log. When the folder is absent every function resolves with `undefined` and says
 * "bench-ref not present".
 *
 * @example
 * ```ts ignore
 * import { readTopology } from "../lab/topology.ts";
 * import { runReference } from "./reference.ts";
 * const ref = await runReference(readTopology()!, {
 *   size: 4096,
 *   depth: 1,
 *   count: 5000,
 *   warmup: 1000,
 *   wait: "events",
 * });
 * if (ref) console.log(`C: ${ref.ops_per_s} ops/s, ${ref.cpu_us_per_log} CPU us per log`);
 * ```
 *
 * @module
 */
import { repoDir } from "../lab/paths.ts";
import { inNamespace, type Topology } from "../lab/topology.ts";
import { benchBinDir, buildC } from "./c_loop.ts";
import { BenchToolError, type BoundedOutput, spawnBounded, waitForListener } from "./perftest.ts";
import type { LatencySummary } from "./summary.ts";
import { blockBytes } from "../block.ts";

/** Where the shared reference lives: `../shared/bench-ref` next to the repository. */
export const benchRefDir = `${repoDir}/../shared/bench-ref`;
/** Bound of one reference run (replica and primary) unless the caller gives one. */
export const referenceTimeoutMsDefault = 120_000;
/** How long the replica may take to exit after the primary closed. */
export const replicaExitTimeoutMs = 10_000;
const depthMax = 256; // MAX_DEPTH of ref_replicate.c
const countMax = 10_000_000;
const ringMbMax = 1024;

/** How a side waits for completions: spinning on `poll_cq`, or sleeping on a channel. */
export type WaitMode = "spin" | "events";
/** The wait modes, in the order the bench runs them. */
export const waitModes: readonly WaitMode[] = ["spin", "events"];

/** Options of {@linkcode runReference}. */
export interface ReferenceOptions {
  /** Bytes per log: a multiple of 4096, at most a quarter of the ring. */
  size: number;
  /** Logs in flight, 1..256. */
  depth: number;
  /** Logs to replicate and time, 1..10^7. */
  count: number;
  /** Logs replicated before the timed ones (`-w`), 0..10^7; default 0. */
  warmup?: number;
  /** `events`: completion channels on both sides (`-e`); default `spin`. */
  wait?: WaitMode;
  /** Data ring of each side in MiB (default 64, as `guest_pair.sh`). */
  ringMb?: number;
  /** TCP port of the exchange; default 18700 + a per-process counter. */
  port?: number;
  /** Skip the WRITE of this log: the replica must report a CRC mismatch. */
  skipSeq?: number;
  /** Bound of the run in ms (default 120 s). */
  timeoutMs?: number;
}

/** The primary's `RESULT` line; latencies in µs, MB/s in 10^6 bytes per second. */
export interface ReferenceResult extends LatencySummary {
  impl: string;
  size: number;
  depth: number;
  mismatches: number;
  /** The primary's process CPU time over the timed logs / timed logs, µs. */
  cpu_us_per_log: number;
  /** CRC32C implementation: `isal` (libisal2's crc32_iscsi, like ours) or `table`. */
  crc: string;
  wait: WaitMode;
  warmup: number;
}

/** The replica's last line: `replica: served N logs, M crc mismatches, cpu_us_per_log=X`. */
export interface ReferenceReplicaLine {
  /** Logs served, warm-up included. */
  served: number;
  mismatches: number;
  /** The replica's process CPU time from its first log to its end / logs served, µs. */
  cpuUsPerLog: number;
}

/** A whole reference run: the primary's result and what the replica reported. */
export interface ReferenceRun extends ReferenceResult {
  /** The replica's CPU µs per log, or `undefined` when it printed no summary line. */
  replica_cpu_us_per_log?: number;
  /** Logs the replica served (warm-up included), when it said. */
  replica_served?: number;
}

let saidMissing = false;

/** The reference's source path, or `undefined` (saying "bench-ref not present" once). */
export function referenceSource(): string | undefined {
  const source = `${benchRefDir}/ref_replicate.c`;
  try {
    if (Deno.statSync(source).isFile) return source;
  } catch { /* absent: said below */ }
  if (!saidMissing) console.error(`bench-ref not present (${source}): no C reference`);
  saidMissing = true;
  return undefined;
}

/** Compiles the reference into `.lab/bench/ref_replicate` when the source is newer. */
export async function buildReference(): Promise<string | undefined> {
  const source = referenceSource();
  if (!source) return undefined;
  // -ldl: dlopen of libisal2 lives in libdl before glibc 2.34 (an empty stub after).
  const libs = ["-libverbs", "-ldl"];
  return await buildC({ source, output: `${benchBinDir}/ref_replicate`, libs });
}

let portCounter = 0;

/**
 * Runs the reference on the topology: the replica on B (it exits when the primary
 * closes), the primary on A, both with `-e` when `wait` is `events`; resolves with the
 * parsed `RESULT` line and the replica's CPU per log (a primary that reports mismatches
 * still resolves: check `mismatches`). Leftover processes are killed.
 */
export async function runReference(
  topology: Topology,
  o: ReferenceOptions,
): Promise<ReferenceRun | undefined> {
  const ringMb = o.ringMb ?? 64;
  const warmup = o.warmup ?? 0;
  const wait = o.wait ?? "spin";
  const port = o.port ?? 18700 + (portCounter++ % 100);
  const timeoutMs = o.timeoutMs ?? referenceTimeoutMsDefault;
  checkInt("ringMb", ringMb, 1, ringMbMax);
  checkInt("size", o.size, blockBytes, (ringMb << 20) / 4);
  if (o.size % blockBytes !== 0) {
    throw new RangeError(`Reference size ${o.size} is not a multiple of ${blockBytes}`);
  }
  checkInt("depth", o.depth, 1, depthMax);
  checkInt("count", o.count, 1, countMax);
  checkInt("warmup", warmup, 0, countMax);
  if (!waitModes.includes(wait)) {
    throw new RangeError(`Reference wait must be one of ${waitModes.join(", ")}, got '${wait}'`);
  }
  checkInt("port", port, 1024, 65535);
  if (o.skipSeq !== undefined) checkInt("skipSeq", o.skipSeq, 0, o.count - 1);
  const program = await buildReference();
  if (!program) return undefined;
  const { a, b } = topology;
  const common = [
    "-r",
    `${ringMb}`,
    "-p",
    `${port}`,
    "-x",
    "1",
    ...(wait === "events" ? ["-e"] : []),
  ];
  const replica = spawnBounded(
    inNamespace(b, [program, "replica", "-d", b.device, ...common]),
    timeoutMs,
  );
  let primary: BoundedOutput | undefined;
  try {
    if (await waitForListener(b, port, replica)) {
      const skip = o.skipSeq === undefined ? [] : ["-k", `${o.skipSeq}`];
      const run = [
        ...common,
        ...["-s", `${o.size}`, "-n", `${o.count}`, "-q", `${o.depth}`, "-w", `${warmup}`],
        ...skip,
      ];
      const argv = inNamespace(a, [program, "primary", "-d", a.device, "-a", b.address, ...run]);
      primary = await spawnBounded(argv, timeoutMs).output;
    }
  } finally {
    const closed = primary?.code === 0 || primary?.code === 2;
    const bound = setTimeout(() => replica.kill(), closed ? replicaExitTimeoutMs : 0);
    await replica.output.finally(() => clearTimeout(bound));
  }
  const served = await replica.output;
  const what = `ref_replicate size=${o.size} depth=${o.depth} count=${o.count} ` +
    `warmup=${warmup} wait=${wait} (${a.device} -> ${b.device} ${b.address}:${port})`;
  const replicaText = `-- replica (exit ${served.code}${served.timedOut ? ", timed out" : ""}):\n` +
    `${served.stdout}${served.stderr}`;
  if (!primary) throw new BenchToolError(`${what}: the replica never listened\n${replicaText}`);
  const line = primary.stdout.split("\n").find((l) => l.startsWith("RESULT "));
  if (!line || (primary.code !== 0 && primary.code !== 2)) {
    throw new BenchToolError(
      `${what} failed: primary exit ${primary.code}${primary.timedOut ? " (timed out)" : ""}\n` +
        `-- primary:\n${primary.stdout}${primary.stderr}\n${replicaText}`,
    );
  }
  const result = parseReferenceResult(line);
  if (result.wait !== wait || result.warmup !== warmup) {
    throw new BenchToolError(
      `${what}: the primary reports wait=${result.wait} warmup=${result.warmup}: ` +
        `rebuild .lab/bench/ref_replicate from an up-to-date ../shared/bench-ref`,
    );
  }
  const replicaLine = parseReferenceReplicaLine(served.stderr);
  return {
    ...result,
    replica_cpu_us_per_log: replicaLine?.cpuUsPerLog,
    replica_served: replicaLine?.served,
  };
}

/**
 * Finds and parses the replica's summary line in its stderr; `undefined` when there is none
 * (a replica killed before it could print).
 * @throws {BenchToolError} when the line is there but a number is not.
 */
export function parseReferenceReplicaLine(stderr: string): ReferenceReplicaLine | undefined {
  const line = stderr.split("\n").findLast((l) => l.startsWith("replica: served "));
  if (line === undefined) return undefined;
  const match =
    /^replica: served (\d+) logs, (\d+) crc mismatches, cpu_us_per_log=(\d+(?:\.\d+)?)\s*$/
      .exec(line);
  if (!match) {
    throw new BenchToolError(
      `Cannot read the reference replica's line '${line}': expected ` +
        `'replica: served N logs, M crc mismatches, cpu_us_per_log=X' (update ../shared/bench-ref)`,
    );
  }
  return { served: Number(match[1]), mismatches: Number(match[2]), cpuUsPerLog: Number(match[3]) };
}

/**
 * Parses `RESULT impl=c size=4096 ... mismatches=0 cpu_us_per_log=.. crc=isal wait=spin
 * warmup=500` into a checked result.
 * @throws {BenchToolError} when a field is missing or not what it should be (an older
 * reference lacks `cpu_us_per_log`, `crc`, `wait` and `warmup`).
 */
export function parseReferenceResult(line: string): ReferenceResult {
  const fields: Record<string, string> = {};
  for (const pair of line.trim().replace(/^RESULT\s+/, "").split(/\s+/)) {
    const eq = pair.indexOf("=");
    if (eq > 0) fields[pair.slice(0, eq)] = pair.slice(eq + 1);
  }
  const num = (key: string) => {
    const value = Number(fields[key]);
    if (fields[key] === undefined || !Number.isFinite(value) || value < 0) {
      throw new BenchToolError(
        `The reference's RESULT line lacks a number ≥ 0 for ${key}: '${line}' ` +
          `(an older ref_replicate.c? update ../shared/bench-ref)`,
      );
    }
    return value;
  };
  const wait = fields.wait;
  if (wait !== "spin" && wait !== "events") {
    throw new BenchToolError(
      `The reference's RESULT line has wait='${wait ?? ""}', expected spin or events: '${line}' ` +
        `(an older ref_replicate.c? update ../shared/bench-ref)`,
    );
  }
  if (!fields.crc) {
    throw new BenchToolError(`The reference's RESULT line lacks crc=: '${line}'`);
  }
  return {
    impl: fields.impl ?? "c",
    size: num("size"),
    depth: num("depth"),
    count: num("count"),
    ops_per_s: num("ops_per_s"),
    mb_per_s: num("mb_per_s"),
    p50: num("p50_us"),
    p90: num("p90_us"),
    p99: num("p99_us"),
    p999: num("p999_us"),
    max: num("max_us"),
    mismatches: num("mismatches"),
    cpu_us_per_log: num("cpu_us_per_log"),
    crc: fields.crc,
    wait,
    warmup: num("warmup"),
  };
}

function checkInt(name: string, value: number, min: number, max: number): void {
  if (!Number.isSafeInteger(value) || value < min || value > max) {
    throw new RangeError(`Reference ${name} must be an integer ${min}..${max}, got ${value}`);
  }
}
