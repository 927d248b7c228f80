/**
 * The bench's smaller sections, each one measurement: the host cache service's commit
 * latency next to its raw replication latency, one FFI call way (or the same loop in C),
 * the CRC32C backends, and a description of the machine.
 *
 * @module
 */
import { crc32cAt, crc32cBackend, isalBackend, jsBackend } from "../log/crc32c.ts";
import { denoArgv, randomSecret } from "../lab/processes.ts";
import { inNamespace, type Topology } from "../lab/topology.ts";
import { runCache, startReplica } from "../tools/lab.ts";
import { BenchToolError, spawnBounded } from "./perftest.ts";

/** One cache run: commit and replication p50 of the same run, µs. */
export interface CacheRun {
  commit_p50_us: number;
  replication_p50_us: number;
  commit_p99_us: number;
  replication_p99_us: number;
}

/** One way of calling the inline verbs: ns per round and per empty poll. */
export interface CallWayPoint {
  way: string;
  ns_per_round: number;
  ns_per_empty_poll: number;
}

/** CRC32C throughput of one backend at one size (10^6 bytes per second). */
export interface CrcPoint {
  backend: string;
  size: number;
  mb_per_s: number;
}

/** Bound of one cache or hot-path run. */
const sectionTimeoutMs = 300_000;

/**
 * Runs the cache service once (`cmd/cache.ts` against a replica with a write cache) and
 * returns its commit and replication percentiles.
 * @throws {BenchToolError} when it completes fewer writes than asked.
 */
export async function cacheRun(
  topology: Topology,
  o: { size: number; depth: number; count: number },
): Promise<CacheRun> {
  const { size, depth, count } = o;
  const env = { RRL_SECRET: randomSecret() };
  const { a, b } = topology;
  const dir = await Deno.makeTempDir({ dir: "/dev/shm", prefix: "rrl-bench-" });
  try {
    await using replica = await startReplica(b, {
      ring: "16m",
      cache: `${dir}/replica.cache`,
      once: true,
    }, { env });
    const out = await runCache({ from: a, to: b, port: replica.port }, {
      cache: `${dir}/primary.cache`,
      backing: `${dir}/backing.img`,
      ring: "16m",
      capacity: "256m",
      count,
      size: String(size),
      depth,
      flushEvery: 0,
      verify: false,
    }, { env, timeoutMs: sectionTimeoutMs }).catch((error: Error) => {
      throw new BenchToolError(`The cache service failed: ${error.message}`);
    });
    const json = out.report;
    if (out.code !== 0 || json.result.writesOk !== count) {
      throw new BenchToolError(
        `The cache service completed ${json.result.writesOk} of ${count} writes of ${size} B ` +
          `at depth ${depth} (exit ${out.code}): see its messages above`,
      );
    }
    return {
      commit_p50_us: json.result.commitLatency.p50,
      commit_p99_us: json.result.commitLatency.p99,
      replication_p50_us: json.replication.summary.p50,
      replication_p99_us: json.replication.summary.p99,
    };
  } finally {
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

/**
 * Runs `lib/bench/hot_path.ts` with the call way `way` (`RRL_FFI_CALL`) for `rounds` rounds.
 * @throws {BenchToolError} when it fails or prints no JSON line.
 */
export async function hotPath(
  topology: Topology,
  way: string,
  rounds: number,
): Promise<CallWayPoint> {
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
  const out = await spawnBounded(["env", `RRL_FFI_CALL=${way}`, ...argv], sectionTimeoutMs)
    .output;
  let json: { way?: string; nsPerRound?: number; nsPerEmptyPoll?: number } | undefined;
  try {
    json = JSON.parse(out.stdout.trim().split("\n").at(-1) ?? "");
  } catch { /* said below */ }
  if (out.code !== 0 || typeof json?.nsPerRound !== "number") {
    throw new BenchToolError(
      `The hot path with call way ${way} failed (exit ${out.code}):\n${out.stdout}${out.stderr}`,
    );
  }
  return {
    way: json.way ?? way,
    ns_per_round: json.nsPerRound,
    ns_per_empty_poll: json.nsPerEmptyPoll ?? NaN,
  };
}

/** CRC32C throughput of each backend over 64 MiB at 4 KiB and 256 KiB. */
export function measureCrc(): CrcPoint[] {
  const out: CrcPoint[] = [];
  const buffer = new Uint8Array(new ArrayBuffer(1 << 20)).fill(7);
  const address = Number(Deno.UnsafePointer.value(Deno.UnsafePointer.of(buffer)));
  const backends = [["js", jsBackend], ["isal", isalBackend()]] as const;
  for (const [name, backend] of backends) {
    if (!backend) continue;
    for (const size of [4096, 262144]) {
      const total = 64 << 20;
      const t0 = performance.now();
      for (let done = 0; done < total; done += size) backend.updateAt(0, address, 0, size);
      out.push({ backend: name, size, mb_per_s: total / 1e6 / ((performance.now() - t0) / 1000) });
    }
  }
  crc32cAt(address, 0, 4096); // the selected backend, as the replica uses it
  return out;
}

/** The CPU, kernel, lab kind, Deno version and CRC32C backend of this run. */
export function machine(): Record<string, string> {
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
