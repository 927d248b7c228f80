/**
 * The benchmark suite, run in the lab: every figure next to a reference measured in the same
 * run on the same devices — perftest's `ib_write_lat`/`ib_send_lat`/`ib_write_bw`, the C
 * reference of the protocol (`../shared/bench-ref`, when present), and the same verbs loop
 * in C for the FFI call ways.
 *
 * @module
 */
import { crc32cAt, crc32cBackend, isalBackend, jsBackend } from "../log/crc32c.ts";
import { randomSecret, runTool, startReplica } from "../lab/processes.ts";
import type { Topology } from "../lab/topology.ts";
import { runCLoop } from "./c_loop.ts";
import { perftestAnchors, type PerftestResult, runPerftest } from "./perftest.ts";
import { type ReferenceResult, runReference } from "./reference.ts";
import type { LatencySummary } from "./summary.ts";
import { denoArgv } from "../lab/processes.ts";
import { inNamespace } from "../lab/topology.ts";

/** One replication measurement: size, depth, and what our primary and the C one did. */
export interface ReplicationPoint {
  size: number;
  depth: number;
  ours: LatencySummary;
  reference?: ReferenceResult;
}

/** One way of calling the inline verbs. */
export interface CallWayPoint {
  way: string;
  nsPerRound: number;
  nsPerEmptyPoll: number;
}

/** The host cache service: commit latency next to the raw replication latency, same run. */
export interface CachePoint {
  size: number;
  depth: number;
  /** NVMe submission to completion (the guest's view). */
  commit: LatencySummary;
  /** Log posted to OK ack, inside the same run. */
  replication: LatencySummary;
}

/** The same replication point with tracing off and on, alternating runs. */
export interface TracingPoint {
  size: number;
  depth: number;
  /** ops/s of each run with tracing off (the default). */
  off: number[];
  /** ops/s of each run with `--trace` on both sides. */
  on: number[];
}

/** Everything one bench run measured. */
export interface BenchReport {
  machine: Record<string, string>;
  perftest: PerftestResult[];
  replication: ReplicationPoint[];
  cache: CachePoint[];
  tracing: TracingPoint[];
  callWays: CallWayPoint[];
  crc32c: { backend: string; size: number; mbPerSec: number }[];
}

/** What to measure. */
export interface BenchOptions {
  count: number;
  /** Logs replicated before measuring ours (V8's JIT warms up; slow under TCG). */
  warmup: number;
  points: { size: number; depth: number }[];
  hotRounds: number;
  log: (line: string) => void;
}

/** Runs every measurement on `topology`; sections whose tool is missing are left out with a line. */
export async function runBench(topology: Topology, o: BenchOptions): Promise<BenchReport> {
  const report: BenchReport = {
    machine: machine(),
    perftest: [],
    replication: [],
    cache: [],
    tracing: [],
    callWays: [],
    crc32c: [],
  };
  o.log(`bench: ${report.machine.cpu}; kernel ${report.machine.kernel}; ${report.machine.lab}`);
  for (const anchor of perftestAnchors) {
    report.perftest.push(
      await runPerftest(topology, { tool: anchor.tool, size: anchor.size, iterations: 2000 }),
    );
  }
  for (const point of o.points) {
    const ours = await replicate(topology, point.size, point.depth, o.count, o.warmup);
    const reference = await runReference(topology, {
      size: point.size,
      depth: point.depth,
      count: o.count,
    });
    report.replication.push({ ...point, ours, reference });
    o.log(`bench: replication ${point.size} B depth ${point.depth} done`);
  }
  for (const depth of [1, 16]) {
    report.cache.push(await cacheCommit(topology, 4096, depth, Math.min(o.count, 1000)));
    o.log(`bench: cache commit 4096 B depth ${depth} done`);
  }
  for (const depth of [1, 16]) {
    const point: TracingPoint = { size: 4096, depth, off: [], on: [] };
    for (let run = 0; run < tracingRuns; run++) {
      point.off.push((await replicate(topology, 4096, depth, o.count, o.warmup)).ops_per_s);
      point.on.push((await replicate(topology, 4096, depth, o.count, o.warmup, true)).ops_per_s);
    }
    report.tracing.push(point);
    o.log(`bench: tracing off/on 4096 B depth ${depth} done`);
  }
  for (const way of ["libffi", "fnptr"]) {
    report.callWays.push(await hotPath(topology, way, o.hotRounds));
  }
  const c = await runCLoop(topology, { rounds: o.hotRounds });
  report.callWays.push({ way: "c", nsPerRound: c.nsPerRound, nsPerEmptyPoll: c.nsPerEmptyPoll });
  report.crc32c = measureCrc();
  return report;
}

/** Alternating off/on runs per tracing point. */
const tracingRuns = 2;

async function replicate(
  topology: Topology,
  size: number,
  depth: number,
  count: number,
  warmup: number,
  traced = false,
): Promise<LatencySummary> {
  const env = { RRL_SECRET: randomSecret() };
  const { a, b } = topology;
  const trace = (side: string) =>
    traced ? ["--trace", `/dev/shm/rrl-bench-${Deno.pid}-${side}.trace.jsonl`] : [];
  await using replica = await startReplica(b, [
    "--ring",
    "64m",
    "--slots",
    String(Math.max(64, depth + 2)),
    "--once",
    "--json",
    ...trace("replica"),
  ], env);
  const out = await runTool(a, "cmd/primary.ts", [
    "--device",
    a.device,
    "--host",
    b.address,
    "--port",
    String(replica.port),
    "-n",
    String(count),
    "-s",
    String(size),
    "-q",
    String(depth),
    "--ring",
    "64m",
    "--lba",
    "seq",
    "--warmup",
    String(warmup),
    "--json",
    ...trace("primary"),
  ], { env, timeoutMs: 300_000 });
  for (const side of traced ? ["replica", "primary"] : []) {
    await Deno.remove(`/dev/shm/rrl-bench-${Deno.pid}-${side}.trace.jsonl`).catch(() => {});
  }
  // deno-lint-ignore no-explicit-any
  const result = (out.json as any).result;
  if (out.code !== 0 || result.acked !== count) {
    throw new Error(
      `Our primary acked ${result?.acked} of ${count} (exit ${out.code}): ${result?.failure ?? ""}`,
    );
  }
  return result.summary;
}

async function cacheCommit(
  topology: Topology,
  size: number,
  depth: number,
  count: number,
): Promise<CachePoint> {
  const env = { RRL_SECRET: randomSecret() };
  const { a, b } = topology;
  const dir = await Deno.makeTempDir({ dir: "/dev/shm", prefix: "rrl-bench-" });
  try {
    await using replica = await startReplica(b, [
      "--ring",
      "16m",
      "--cache",
      `${dir}/replica.cache`,
      "--once",
      "--json",
    ], env);
    const out = await runTool(a, "cmd/cache.ts", [
      "--device",
      a.device,
      "--host",
      b.address,
      "--port",
      String(replica.port),
      "--cache",
      `${dir}/primary.cache`,
      "--backing",
      `${dir}/backing.img`,
      "--ring",
      "16m",
      "--capacity",
      "256m",
      "-n",
      String(count),
      "-s",
      String(size),
      "-q",
      String(depth),
      "--flush-every",
      "0",
      "--no-verify",
      "--json",
    ], { env, timeoutMs: 300_000 });
    // deno-lint-ignore no-explicit-any
    const json = out.json as any;
    if (out.code !== 0 || json.result.writesOk !== count) {
      throw new Error(`The cache service completed ${json.result?.writesOk} of ${count} writes`);
    }
    return {
      size,
      depth,
      commit: json.result.commitLatency,
      replication: json.replication.summary,
    };
  } finally {
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

async function hotPath(topology: Topology, way: string, rounds: number): Promise<CallWayPoint> {
  const argv = inNamespace(
    topology.a,
    denoArgv("lib/bench/hot_path.ts", [
      topology.a.device,
      topology.a.address,
      topology.b.device,
      topology.b.address,
      String(rounds),
      "5000",
      "0",
    ]),
  );
  const out = await new Deno.Command(argv[0], {
    args: argv.slice(1),
    env: { RRL_FFI_CALL: way },
    stdin: "null",
  }).output();
  const json = JSON.parse(new TextDecoder().decode(out.stdout).trim().split("\n").at(-1)!);
  return { way: json.way, nsPerRound: json.nsPerRound, nsPerEmptyPoll: json.nsPerEmptyPoll };
}

function measureCrc(): BenchReport["crc32c"] {
  const out: BenchReport["crc32c"] = [];
  const buffer = new Uint8Array(new ArrayBuffer(1 << 20)).fill(7);
  const address = Number(Deno.UnsafePointer.value(Deno.UnsafePointer.of(buffer)));
  const backends = [["js", jsBackend], ["isal", isalBackend()]] as const;
  for (const [name, backend] of backends) {
    if (!backend) continue;
    for (const size of [4096, 262144]) {
      const total = 64 << 20;
      const t0 = performance.now();
      for (let done = 0; done < total; done += size) backend.updateAt(0, address, 0, size);
      out.push({ backend: name, size, mbPerSec: total / 1e6 / ((performance.now() - t0) / 1000) });
    }
  }
  crc32cAt(address, 0, 4096); // the selected backend, as the replica uses it
  return out;
}

function machine(): Record<string, string> {
  const cpuinfo = Deno.readTextFileSync("/proc/cpuinfo");
  const cpu = /model name\s*:\s*(.*)/.exec(cpuinfo)?.[1] ?? "unknown CPU";
  const cpus = (cpuinfo.match(/^processor\s*:/gm) ?? []).length;
  const lab = Deno.env.get("RRL_IN_LAB") === "vm"
    ? "QEMU TCG lab VM (ratios only; absolute times are slow)"
    : "native";
  return {
    cpu: `${cpu} x${cpus}`,
    kernel: Deno.osRelease(),
    lab,
    deno: Deno.version.deno,
    crc32c: crc32cBackend(),
  };
}
