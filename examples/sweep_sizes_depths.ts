/**
 * Sweep of log sizes × queue depths: throughput and commit latency of replication across
 * the Soft-RoCE pair, one CSV row per (size, depth).
 *
 * Per point, a fresh replica (`cmd/replica.ts`) in namespace B and the primary
 * (`cmd/primary.ts --json`) in namespace A, separate processes, frames over the veth: the
 * primary replicates `--warmup` logs unmeasured (V8's JIT), then `--count` logs of one
 * size, `depth` in flight, LBAs sequential. The data ring (`--ring`, 64m) is far above
 * size × depth, so credits never limit a point (`ring_credit_sweep.ts` measures that).
 *
 * Run it where Soft-RoCE works (the lab VM, or natively as root):
 *
 * ```sh
 * deno task lab -- deno run -A --cached-only --no-check examples/sweep_sizes_depths.ts --count 2000
 * ```
 *
 * Reading the CSV (`--out`, default `runs/sweep-<timestamp>.csv`; rows appended as points
 * finish, so an interrupted sweep keeps what it measured):
 * - `size` bytes per log, `depth` logs in flight, `count` measured logs asked for;
 * - `ops_per_s`, `mb_per_s` (10^6 B/s) over the measured logs;
 * - `p50` .. `max`: latency in µs from submission to the replica's OK ack;
 * - `acked`, `refused`: `acked < count` or `refused > 0` means the point did not finish
 *   cleanly (the primary's message above says why); a point that printed nothing has no row.
 *
 * Throughput grows with depth until something saturates (the wire, a CPU); past that,
 * latency grows instead, as Little's law says: depth ≈ ops_per_s × latency. In the TCG
 * lab VM absolute figures are slow; compare points with each other.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { dirname } from "node:path";
import { checkRingBytes, logBytesLimit, parseBytes, parseSizeSpec } from "../mod.ts";
import {
  type PrimaryReport,
  randomSecret,
  readTopology,
  runPrimary,
  startReplica,
  type Topology,
} from "../lab.ts";

const columns = "size,depth,count,ops_per_s,mb_per_s,p50,p90,p99,p999,max,acked,refused";
const depthMax = 1000; // the primary's limit; the replica posts depth + 2 RECVs (≤ 1024)
const listEntriesMax = 32;
const countMax = 10_000_000;
const timeoutSMax = 86_400;

const usage = `Usage: examples/sweep_sizes_depths.ts [options]

Replicate --count logs per (size, depth) across the Soft-RoCE pair (a fresh replica in
namespace B, the primary in namespace A) and append one CSV row per point.

  --sizes LIST      log sizes, multiples of 4k        (default 4k,16k,64k)
  --depths LIST     logs in flight, 1..${depthMax}           (default 1,4,16)
  --count N         measured logs per point           (default 2000)
  --warmup N        unmeasured logs first, per point  (default 200)
  --ring SIZE       data ring on both sides           (default 64m)
  --timeout-s N     bound on one point's primary      (default 300)
  --out PATH        CSV file, appended to             (default runs/sweep-<timestamp>.csv)
  -h, --help        this text`;

interface Options {
  sizes: number[];
  depths: number[];
  count: number;
  warmup: number;
  ring: number;
  timeoutMs: number;
  out: string;
}

function parseOptions(args: string[]): Options | undefined {
  const { values: v } = parseArgs({
    args,
    strict: true,
    options: {
      sizes: { type: "string", default: "4k,16k,64k" },
      depths: { type: "string", default: "1,4,16" },
      count: { type: "string", default: "2000" },
      warmup: { type: "string", default: "200" },
      ring: { type: "string", default: "64m" },
      "timeout-s": { type: "string", default: "300" },
      out: { type: "string" },
      help: { type: "boolean", short: "h" },
    },
  });
  if (v.help) return undefined;
  const ring = parseBytes(v.ring, "--ring");
  checkRingBytes(ring);
  const sizes = [...parseSizeSpec(v.sizes).sizes];
  const tooBig = sizes.find((s) => s > logBytesLimit(ring));
  if (tooBig) {
    throw new RangeError(`--sizes: ${tooBig} B is over half the ${ring}-byte ring: raise --ring`);
  }
  const depths = v.depths.split(",").map((d) => int(d, "--depths", 1, depthMax));
  if (depths.length > listEntriesMax || new Set(depths).size !== depths.length) {
    throw new RangeError(`--depths '${v.depths}': list at most ${listEntriesMax}, each once`);
  }
  const stamp = new Date().toISOString().replace(/[:.]/g, "-");
  return {
    sizes,
    depths,
    count: int(v.count, "--count", 1, countMax),
    warmup: int(v.warmup, "--warmup", 0, countMax),
    ring,
    timeoutMs: int(v["timeout-s"], "--timeout-s", 1, timeoutSMax) * 1000,
    out: v.out ?? `runs/sweep-${stamp}.csv`,
  };
}

function int(text: string, what: string, min: number, max: number): number {
  const n = Number(text.trim());
  if (!/^\d+$/.test(text.trim()) || n < min || n > max) {
    throw new RangeError(`${what} '${text}' is not an integer from ${min} to ${max}`);
  }
  return n;
}

const us = (value: number) => `${value.toFixed(0)} µs`;
const seconds = (t0: number) => `${((performance.now() - t0) / 1000).toFixed(1)} s`;

/** Creates the CSV with its header, or checks the header of the one being appended to. */
async function openCsv(path: string): Promise<void> {
  await Deno.mkdir(dirname(path), { recursive: true });
  const first = await Deno.readTextFile(path).then((text) => text.split("\n")[0], () => "");
  if (first === "") await Deno.writeTextFile(path, `${columns}\n`);
  else if (first !== columns) throw new Error(`${path} holds other columns: pass a new --out`);
}

/** One point: a fresh replica in B, the primary in A; the primary's report. */
async function measure(
  topology: Topology,
  o: Options,
  size: number,
  depth: number,
): Promise<{ code: number; report: PrimaryReport }> {
  const env = { RRL_SECRET: randomSecret() };
  const { a, b } = topology;
  const shared = { ring: String(o.ring), maxLog: String(size) };
  await using replica = await startReplica(b, {
    ...shared,
    slots: Math.max(64, depth + 2),
    once: true,
  }, { env });
  return await runPrimary({ from: a, to: b, port: replica.port }, {
    ...shared,
    size: String(size),
    depth,
    count: o.count,
    warmup: o.warmup,
    lba: "seq",
  }, { env, timeoutMs: o.timeoutMs });
}

async function main(args: string[]): Promise<number> {
  let o: Options | undefined;
  try {
    o = parseOptions(args);
  } catch (error) {
    console.error(`sweep: ${(error as Error).message} (see --help)`);
    return 2;
  }
  if (!o) {
    console.log(usage);
    return 0;
  }
  const topology = readTopology();
  if (!topology) {
    console.error("sweep: no Soft-RoCE topology is up: run this under 'deno task lab -- ...'");
    return 1;
  }
  await openCsv(o.out);
  const total = o.sizes.length * o.depths.length;
  console.log(
    `sweep: ${total} point(s) on the ${topology.kind} ${topology.a.device} → ${topology.b.device}` +
      (Deno.env.get("RRL_IN_LAB") === "vm" ? " (TCG lab VM: compare points, not absolutes)" : ""),
  );
  let done = 0;
  let failed = 0;
  for (const size of o.sizes) {
    for (const depth of o.depths) {
      const label = `[${++done}/${total}] size ${size / 1024}k depth ${depth}`;
      const t0 = performance.now();
      try {
        const { code, report: { result: r } } = await measure(topology, o, size, depth);
        const s = r.summary;
        const rates = [s.ops_per_s.toFixed(1), s.mb_per_s.toFixed(2)];
        const latency = [s.p50, s.p90, s.p99, s.p999, s.max].map((us) => us.toFixed(1));
        const row = [size, depth, o.count, ...rates, ...latency, r.acked, r.refused];
        await Deno.writeTextFile(o.out, `${row.join(",")}\n`, { append: true });
        if (code !== 0) failed++;
        const failure = code === 0 ? "" : `; FAILED (exit ${code}) ${r.failure ?? ""}`;
        console.log(
          `${label}: ${r.acked}/${o.count} acked, ${s.ops_per_s.toFixed(0)} ops/s, ` +
            `${s.mb_per_s.toFixed(1)} MB/s, p50 ${us(s.p50)}, p99 ${us(s.p99)}, ` +
            `${seconds(t0)}${failure}`,
        );
      } catch (error) {
        failed++;
        const timedOut = performance.now() - t0 >= o.timeoutMs;
        const why = timedOut ? "timed out (--timeout-s)" : (error as Error).message;
        console.log(`${label}: FAILED after ${seconds(t0)}, no row: ${why}`);
      }
    }
  }
  console.log(`sweep: ${total - failed} of ${total} points clean; CSV: ${o.out}`);
  return failed === 0 ? 0 : 1;
}

if (import.meta.main) {
  try {
    Deno.exit(await main(Deno.args));
  } catch (error) {
    console.error(`sweep: ${(error as Error).message}`);
    Deno.exit(1);
  }
}
