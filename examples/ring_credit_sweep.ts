/**
 * How the replica's data ring (its credits) limits throughput: one log size and depth,
 * one CSV row per ring size.
 *
 * The primary writes only into ring space the replica has released (each ack carries the
 * released position), so at most `ring / size` logs fly however deep the queue. On a long
 * link throughput is in-flight bytes / round trip, so a ring below the bandwidth-delay
 * product caps it and logs queue at the primary for credits. Per ring, a fresh replica
 * (`cmd/replica.ts`) in namespace B and the primary (`cmd/primary.ts --json`) in A:
 * `--warmup` logs unmeasured, then `--count` logs of `--size`, `--depth` in flight.
 * `--delay-ms` lengthens the link: netem on A's veth, replacing its root qdisc until the end.
 *
 * ```sh
 * deno task lab -- deno run -A --cached-only --no-check examples/ring_credit_sweep.ts --count 2000
 * # In the TCG lab VM the CPU, not the wire, is the bottleneck and rows differ by noise only:
 * # lengthen the link with --delay-ms 20 to see credits bite.
 * ```
 *
 * The CSV (`--out`, default `runs/ring-<timestamp>.csv`, a row appended per ring):
 * - `ring`, `size` (bytes), `depth`; `ring_logs` = ⌊ring / size⌋, the most logs the ring
 *   lets fly (effective depth min(depth, ring_logs)); `delay_ms` the added delay;
 * - `count` .. `max`: as in `sweep_sizes_depths.ts`; latency includes the credit wait;
 * - `admission_waits`: logs that found no room (credits, or the depth full) and queued,
 *   `waits_per_log` per acked log; both include the warm-up (session counters);
 * - `max_ahead_bytes`: most bytes written beyond the replica's release; = ring means the
 *   primary ran out of credits; `acked < count` or `refused > 0`: the point failed.
 *
 * Expect ops_per_s to grow with the ring up to ring ≈ depth × size, then stay flat, with
 * admission_waits at 0 and max_ahead_bytes stopping at depth × size.
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
  type WorkloadResult,
} from "../mod.ts";
import {
  inNamespace,
  randomSecret,
  readTopology,
  runPrimary,
  startReplica,
  type Topology,
} from "../lab.ts";

const columns = "ring,size,depth,ring_logs,delay_ms,count,ops_per_s,mb_per_s," +
  "p50,p90,p99,p999,max,admission_waits,waits_per_log,max_ahead_bytes,acked,refused";
const depthMax = 1000; // the primary's limit; the replica posts depth + 2 RECVs (≤ 1024)
const ringsMax = 32;
const countMax = 10_000_000;
const delayMsMax = 1000;
const timeoutSMax = 86_400;

const usage = `Usage: examples/ring_credit_sweep.ts [options]

Replicate --count logs of one size and depth per data ring size across the Soft-RoCE
pair; append one CSV row per ring: throughput, latency, the primary's credit waits.

  --rings LIST      data ring sizes, 64k..1g          (default 64k,256k,1m,16m)
  --size SIZE       log size, ≤ half the least ring   (default 16k)
  --depth N         logs in flight, 1..${depthMax}           (default 16)
  --count N         measured logs per point           (default 2000)
  --warmup N        unmeasured logs first, per point  (default 200)
  --delay-ms N      one-way delay A → B (netem), ms   (default 0)
  --qp-timeout N    primary's QP ACK timeout, 4.096 µs × 2^N: below the round trip the
                    transport resends spuriously      (default 14, or 17 with --delay-ms)
  --timeout-s N     bound on one point's primary      (default 300)
  --out PATH        CSV file, appended to             (default runs/ring-<timestamp>.csv)
  -h, --help        this text`;

type Options = NonNullable<ReturnType<typeof parseOptions>>;

function parseOptions(args: string[]) {
  const { values: v } = parseArgs({
    args,
    strict: true,
    options: {
      rings: { type: "string", default: "64k,256k,1m,16m" },
      size: { type: "string", default: "16k" },
      depth: { type: "string", default: "16" },
      count: { type: "string", default: "2000" },
      warmup: { type: "string", default: "200" },
      "delay-ms": { type: "string", default: "0" },
      "qp-timeout": { type: "string" },
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
  const least = Math.min(...rings);
  if (more.length > 0 || size > logBytesLimit(least)) {
    throw new RangeError(`--size '${v.size}': one size, ≤ half the least ring (${least} B)`);
  }
  const delayMs = int(v["delay-ms"], "--delay-ms", 0, delayMsMax);
  const stamp = new Date().toISOString().replace(/[:.]/g, "-");
  return {
    rings,
    size,
    depth: int(v.depth, "--depth", 1, depthMax),
    count: int(v.count, "--count", 1, countMax),
    warmup: int(v.warmup, "--warmup", 0, countMax),
    delayMs,
    qpTimeout: int(v["qp-timeout"] ?? (delayMs > 0 ? "17" : "14"), "--qp-timeout", 0, 31),
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
  const first = await Deno.readTextFile(path).then((text) => text.split("\n")[0], () => "");
  if (first === "") await Deno.writeTextFile(path, `${columns}\n`);
  else if (first !== columns) throw new Error(`${path} holds other columns: pass a new --out`);
}

/** Sets (ms > 0) or removes (0) the netem delay on side A's netdev, in its namespace. */
async function setDelay(topology: Topology, ms: number): Promise<void> {
  const { a } = topology;
  const tc = ms > 0
    ? ["tc", "qdisc", "replace", "dev", a.netdev, "root", "netem", "delay", `${ms}ms`]
    : ["tc", "qdisc", "del", "dev", a.netdev, "root"];
  // netem's default queue of 1000 packets would drop a deep, wide window.
  const argv = inNamespace(a, ms > 0 ? [...tc, "limit", "100000"] : tc);
  const out = await new Deno.Command(argv[0], { args: argv.slice(1), stderr: "piped" }).output();
  if (!out.success) {
    throw new Error(`${argv.join(" ")} failed: ${new TextDecoder().decode(out.stderr).trim()}`);
  }
}

/** One point: a fresh replica with a `ring`-byte ring in B, the primary in A. */
async function measure(
  topology: Topology,
  o: Options,
  ring: number,
): Promise<{ code: number; result: WorkloadResult; stats: PrimaryStatsValue }> {
  const env = { RRL_SECRET: randomSecret() };
  const { a, b } = topology;
  const shared = { ring: String(ring), maxLog: String(o.size) };
  await using replica = await startReplica(b, {
    ...shared,
    slots: Math.max(64, o.depth + 2),
    once: true,
  }, { env });
  const out = await runPrimary({ from: a, to: b, port: replica.port }, {
    ...shared,
    size: String(o.size),
    depth: o.depth,
    count: o.count,
    warmup: o.warmup,
    qpTimeout: o.qpTimeout,
    lba: "seq",
  }, { env, timeoutMs: o.timeoutMs });
  return { code: out.code, result: out.report.result, stats: out.report.stats };
}

async function sweep(topology: Topology, o: Options): Promise<number> {
  let failed = 0;
  for (const [i, ring] of o.rings.entries()) {
    const label = `[${i + 1}/${o.rings.length}] ring ${kib(ring)}`;
    const t0 = performance.now();
    try {
      const { code, result: r, stats } = await measure(topology, o, ring);
      const s = r.summary;
      const waitsPerLog = stats.admissionWaits / Math.max(1, stats.ackedLogs);
      const point = [ring, o.size, o.depth, Math.floor(ring / o.size), o.delayMs, o.count];
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
  return failed;
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
  if (o.delayMs > 0 && topology.kind !== "pair") {
    console.error("ring sweep: --delay-ms needs the namespace pair (loopback has no wire)");
    return 1;
  }
  await openCsv(o.out);
  console.log(
    `ring sweep: ${o.rings.length} ring(s), ${kib(o.size)} logs, depth ${o.depth}, delay ` +
      `${o.delayMs} ms, on the ${topology.kind} ${topology.a.device} → ${topology.b.device}` +
      (Deno.env.get("RRL_IN_LAB") === "vm" ? " (TCG lab VM: compare points, not absolutes)" : ""),
  );
  if (o.delayMs > 0) await setDelay(topology, o.delayMs);
  let failed = 0;
  try {
    failed = await sweep(topology, o);
  } finally {
    if (o.delayMs > 0) await setDelay(topology, 0);
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
