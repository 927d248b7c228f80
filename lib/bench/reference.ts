/**
 * The native C reference of the replication protocol (`../shared/bench-ref`, next to the
 * repository, never copied into it): compiled at bench time into `.lab/bench/`, run as a
 * replica in B's namespace and a primary in A's (like its `guest_pair.sh`), its `RESULT`
 * line parsed into the same shape as {@linkcode LatencySummary}. When the folder is
 * absent every function resolves with `undefined` and says "bench-ref not present".
 *
 * @example
 * ```ts ignore
 * import { readTopology } from "../lab/topology.ts";
 * import { runReference } from "./reference.ts";
 * const ref = await runReference(readTopology()!, { size: 4096, depth: 1, count: 5000 });
 * if (ref) console.log(`C reference: ${ref.ops_per_s} ops/s, p50 ${ref.p50} us`);
 * ```
 *
 * @module
 */
import { repoDir } from "../lab/paths.ts";
import { inNamespace, type Topology } from "../lab/topology.ts";
import { benchBinDir, buildC } from "./c_loop.ts";
import { BenchToolError, type BoundedOutput, spawnBounded, waitForListener } from "./perftest.ts";
import type { LatencySummary } from "./summary.ts";

/** Where the shared reference lives: `../shared/bench-ref` next to the repository. */
export const benchRefDir = `${repoDir}/../shared/bench-ref`;
/** Bound of one reference run (replica and primary) unless the caller gives one. */
export const referenceTimeoutMsDefault = 120_000;
/** How long the replica may take to exit after the primary closed. */
export const replicaExitTimeoutMs = 10_000;
const depthMax = 256; // MAX_DEPTH of ref_replicate.c
const countMax = 10_000_000;
const ringMbMax = 1024;

/** Options of {@linkcode runReference}. */
export interface ReferenceOptions {
  /** Bytes per log: a multiple of 4096, at most a quarter of the ring. */
  size: number;
  /** Logs in flight, 1..256. */
  depth: number;
  /** Logs to replicate, 1..10^7. */
  count: number;
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
  return await buildC({ source, output: `${benchBinDir}/ref_replicate`, libs: ["-libverbs"] });
}

let portCounter = 0;

/**
 * Runs the reference on the topology: the replica on B (it exits when the primary
 * closes), the primary on A; resolves with the parsed `RESULT` line (a primary that
 * reports mismatches still resolves: check `mismatches`). Leftover processes are killed.
 */
export async function runReference(
  topology: Topology,
  o: ReferenceOptions,
): Promise<ReferenceResult | undefined> {
  const ringMb = o.ringMb ?? 64;
  const port = o.port ?? 18700 + (portCounter++ % 100);
  const timeoutMs = o.timeoutMs ?? referenceTimeoutMsDefault;
  checkInt("ringMb", ringMb, 1, ringMbMax);
  checkInt("size", o.size, 4096, (ringMb << 20) / 4);
  if (o.size % 4096 !== 0) {
    throw new RangeError(`Reference size ${o.size} is not a multiple of 4096`);
  }
  checkInt("depth", o.depth, 1, depthMax);
  checkInt("count", o.count, 1, countMax);
  checkInt("port", port, 1024, 65535);
  if (o.skipSeq !== undefined) checkInt("skipSeq", o.skipSeq, 0, o.count - 1);
  const program = await buildReference();
  if (!program) return undefined;
  const { a, b } = topology;
  const common = ["-r", `${ringMb}`, "-p", `${port}`, "-x", "1"];
  const replica = spawnBounded(
    inNamespace(b, [program, "replica", "-d", b.device, ...common]),
    timeoutMs,
  );
  let primary: BoundedOutput | undefined;
  try {
    if (await waitForListener(b, port, replica)) {
      const skip = o.skipSeq === undefined ? [] : ["-k", `${o.skipSeq}`];
      const run = [...common, "-s", `${o.size}`, "-n", `${o.count}`, "-q", `${o.depth}`, ...skip];
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
    `(${a.device} -> ${b.device} ${b.address}:${port})`;
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
  return parseReferenceResult(line);
}

/** Parses `RESULT impl=c size=4096 ... mismatches=0` into a checked result. */
export function parseReferenceResult(line: string): ReferenceResult {
  const fields: Record<string, string> = {};
  for (const pair of line.trim().replace(/^RESULT\s+/, "").split(/\s+/)) {
    const eq = pair.indexOf("=");
    if (eq > 0) fields[pair.slice(0, eq)] = pair.slice(eq + 1);
  }
  const num = (key: string) => {
    const value = Number(fields[key]);
    if (fields[key] === undefined || !Number.isFinite(value)) {
      throw new BenchToolError(`The reference's RESULT line lacks a number for ${key}: '${line}'`);
    }
    return value;
  };
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
  };
}

function checkInt(name: string, value: number, min: number, max: number): void {
  if (!Number.isSafeInteger(value) || value < min || value > max) {
    throw new RangeError(`Reference ${name} must be an integer ${min}..${max}, got ${value}`);
  }
}
