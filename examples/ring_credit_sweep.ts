/**
 * How the replica's data ring (its credits) limits throughput: one log size and depth,
 * one CSV row per ring size.
 *
 * The primary may only write into ring space the replica has released (each ack carries
 * the released position), so at most `ring / size` logs are in flight however deep the
 * queue: once `ring < depth × size`, the ring and not the depth sets throughput, and logs
 * wait at the primary for credits. Per ring size, a fresh replica (`cmd/replica.ts`) in
 * namespace B and the primary (`cmd/primary.ts --json`) in namespace A, separate processes:
 * `--warmup` logs unmeasured, then `--count` logs of `--size` with `--depth` in flight.
 *
 * Run it where Soft-RoCE works (the lab VM, or natively as root):
 *
 * ```sh
 * deno task lab -- deno run -A --cached-only --no-check examples/ring_credit_sweep.ts --count 2000
 * ```
 *
 * Reading the CSV (`--out`, default `runs/ring-<timestamp>.csv`; rows appended as points
 * finish):
 * - `ring`, `size` bytes; `depth` logs in flight asked; `ring_logs` = ⌊ring / size⌋, the
 *   most logs the ring lets fly (the effective depth is min(depth, ring_logs));
 * - `count`, `ops_per_s`, `mb_per_s`, `p50` .. `max` (µs): as in `sweep_sizes_depths.ts`;
 * - `admission_waits`: logs that found no room (no credits, or the depth full) and queued
 *   at the primary; `waits_per_log` = that / logs acked. Both count the warm-up too
 *   (the primary's session counters);
 * - `max_ahead_bytes`: most bytes ever written beyond the replica's release (≤ ring); equal
 *   to the ring means the primary ran out of credits;
 * - `acked`, `refused`: `acked < count` or `refused > 0` means the point failed.
 *
 * Expect ops_per_s to rise with the ring up to `ring ≈ depth × size`, then stay flat while
 * admission_waits fall to about 0 and max_ahead_bytes stops at about depth × size.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { dirname } from "node:path";
import {
  checkRingBytes,
  logBytesLimit,
  parseBytes,
  parseSizeSpec,
  type PrimaryStatsValue,
  randomSecret,
  readTopology,
  runTool,
  startReplica,
  type Topology,
  type WorkloadResult,
} from "../mod.ts";

const columns = "ring,size,depth,ring_logs,count,ops_per_s,mb_per_s,p50,p90,p99,p999,max," +
  "admission_waits,waits_per_log,max_ahead_bytes,acked,refused";
const depthMax = 1000; // the primary's limit; the replica posts depth + 2 RECVs (≤ 1024)
const ringsMax = 32;
const countMax = 10_000_000;
const timeoutSMax = 86_400;

const usage = `Usage: examples/ring_credit_sweep.ts [options]

Replicate --count logs of one size and depth per data ring size across the Soft-RoCE
pair and append one CSV row per ring: throughput, latency and the primary's credit waits.

  --rings LIST      data ring sizes, 64k..1g          (default 64k,256k,1m,16m)
  --size SIZE       log size, ≤ half the least ring   (default 16k)
  --depth N         logs in flight, 1..${depthMax}           (default 16)
  --count N         measured logs per point           (default 2000)
  --warmup N        unmeasured logs first, per point  (default 200)
  --timeout-s N     bound on one point's primary      (default 300)
  --out PATH        CSV file, appended to             (default runs/ring-<timestamp>.csv)
  -h, --help        this text`;

/** What `cmd/primary.ts --json` prints as its last line (the parts used here). */
interface PrimaryReport {
  result: WorkloadResult;
  stats: PrimaryStatsValue;
}

interface Options {
  rings: number[];
  size: number;
  depth: number;
  count: number;
  warmup: number;
  timeoutMs: number;
  out: string;
}

function parseOptions(args: string[]): Options | undefined {
  const { values: v } = parseArgs({
    args,
    strict: true,
    options: {
      rings: { type: "string", default: "64k,256k,1m,16m" },
      size: { type: "string", default: "16k" },
      depth: { type: "string", default: "16" },
      count: { type: "string", default: "2000" },
      warmup: { type: "string", default: "200" },
      "timeout-s": { type: "string", default: "300" },
      out: { type: "string" },
      help: { type: "boolean", short: "h" },
    },
  });
  if (v.help) return undefined;
  const rings = v.rings.split(",").map((r) => parseBytes(r, "--rings"));
  rings.forEach(checkRingBytes);
  if (rings.length > ringsMax || new Set(rings).size !== rings.length) {
    throw new RangeError(`--rings '${v.rings}': list at most ${ringsMax} sizes, each once`);
  }
  const [size, ...more] = parseSizeSpec(v.size).sizes;
  const smallest = Math.min(...rings);
  if (more.length > 0 || size > logBytesLimit(smallest)) {
    throw new RangeError(`--size '${v.size}': one size, ≤ half the smallest ring (${smallest} B)`);
  }
  const stamp = new Date().toISOString().replace(/[:.]/g, "-");
  return {
    rings,
    size,
    depth: int(v.depth, "--depth", 1, depthMax),
    count: int(v.count, "--count", 1, countMax),
    warmup: int(v.warmup, "--warmup", 0, countMax),
    timeoutMs: int(v["timeout-s"], "--timeout-s", 1, timeoutSMax) * 1000,
    out: v.out ?? `runs/ring-${stamp}.csv`,
  };
}

function int(text: string, what: string, min: number, max: number): number {
  const n = Number(text.trim());
  if (!/^\d+$/.test(text.trim()) || n < min || n > max) {
    throw new RangeError(`${what} '${text}' is not an integer from ${min} to ${max}`);
  }
  return n;
}

const kib = (bytes: number) => bytes % 2 ** 20 ? `${bytes / 1024}k` : `${bytes / 2 ** 20}m`;
const seconds = (t0: number) => `${((performance.now() - t0) / 1000).toFixed(1)} s`;

/** Creates the CSV with its header, or checks the header of the one being appended to. */
async function openCsv(path: string): Promise<void> {
  await Deno.mkdir(dirname(path), { recursive: true });
  const text = await Deno.readTextFile(path).catch((error) => {
    if (error instanceof Deno.errors.NotFound) return "";
    throw error;
  });
  if (text === "") await Deno.writeTextFile(path, `${columns}\n`);
  else if (text.split("\n")[0] !== columns) {
    throw new RangeError(`${path} holds other columns: pass a new --out`);
  }
}

/** One point: a fresh replica with a `ring`-byte ring in B, the primary in A. */
async function measure(
  topology: Topology,
  o: Options,
  ring: number,
): Promise<{ code: number; report: PrimaryReport }> {
  const env = { RRL_SECRET: randomSecret() };
  const { a, b } = topology;
  const shared = ["--ring", String(ring), "--max-log", String(o.size)];
  await using replica = await startReplica(b, [
    ...shared,
    ...["--slots", String(Math.max(64, o.depth + 2)), "--once", "--json"],
  ], env);
  const out = await runTool(a, "cmd/primary.ts", [
    ...["--device", a.device, "--host", b.address, "--port", String(replica.port)],
    ...shared,
    ...["-s", String(o.size), "-q", String(o.depth), "-n", String(o.count)],
    ...["--warmup", String(o.warmup), "--lba", "seq", "--json", ...(Deno.env.get("QPT") ? ["--qp-timeout", Deno.env.get("QPT")!] : [])],
  ], { env, timeoutMs: o.timeoutMs });
  return { code: out.code, report: out.json as unknown as PrimaryReport };
}

async function main(args: string[]): Promise<number> {
  let o: Options | undefined;
  try {
    o = parseOptions(args);
  } catch (error) {
    console.error(`ring sweep: ${(error as Error).message} (see --help)`);
    return 2;
  }
  if (!o) {
    console.log(usage);
    return 0;
  }
  const topology = readTopology();
  if (!topology) {
    console.error("ring sweep: no Soft-RoCE topology is up: run it under 'deno task lab -- ...'");
    return 1;
  }
  await openCsv(o.out);
  console.log(
    `ring sweep: ${o.rings.length} rings, ${o.size} B logs, depth ${o.depth}, on the ` +
      `${topology.kind} ${topology.a.device} → ${topology.b.device}` +
      (Deno.env.get("RRL_IN_LAB") === "vm" ? " (TCG lab VM: compare points, not absolutes)" : ""),
  );
  let failed = 0;
  for (const [i, ring] of o.rings.entries()) {
    const label = `[${i + 1}/${o.rings.length}] ring ${kib(ring)}`;
    const t0 = performance.now();
    try {
      const { code, report: { result: r, stats } } = await measure(topology, o, ring);
      const s = r.summary;
      const waitsPerLog = stats.admissionWaits / Math.max(1, stats.ackedLogs);
      const point = [ring, o.size, o.depth, Math.floor(ring / o.size), o.count];
      const rates = [s.ops_per_s.toFixed(1), s.mb_per_s.toFixed(2)];
      const latency = [s.p50, s.p90, s.p99, s.p999, s.max].map((us) => us.toFixed(1));
      const credits = [stats.admissionWaits, waitsPerLog.toFixed(3), stats.maxAheadBytes];
      const row = [...point, ...rates, ...latency, ...credits, r.acked, r.refused];
      await Deno.writeTextFile(o.out, `${row.join(",")}\n`, { append: true });
      if (code !== 0) failed++;
      const failure = code === 0 ? "" : `; FAILED (exit ${code}) ${r.failure ?? ""}`;
      console.log(
        `${label}: ${s.ops_per_s.toFixed(0)} ops/s, p50 ${s.p50.toFixed(0)} µs, ` +
          `${stats.admissionWaits} credit waits, at most ${stats.maxAheadBytes} B ahead, ` +
          `${seconds(t0)}${failure}`,
      );
    } catch (error) {
      failed++;
      const timedOut = performance.now() - t0 >= o.timeoutMs;
      const why = timedOut ? "timed out (--timeout-s)" : (error as Error).message;
      console.log(`${label}: FAILED after ${seconds(t0)}, no row: ${why}`);
    }
  }
  console.log(`ring sweep: ${o.rings.length - failed} of ${o.rings.length} clean; CSV: ${o.out}`);
  return failed === 0 ? 0 : 1;
}

if (import.meta.main) {
  try {
    Deno.exit(await main(Deno.args));
  } catch (error) {
    console.error(`ring sweep: ${(error as Error).message}`);
    Deno.exit(1);
  }
}
