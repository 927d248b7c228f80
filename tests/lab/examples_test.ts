/**
 * The experiment scripts in `examples/` run end to end on the lab's Soft-RoCE pair with
 * tiny parameters and leave a CSV with their header and one clean row per point.
 */
import assert from "node:assert/strict";
import { denoArgv } from "../../lib/lab/processes.ts";
import { labTopology } from "./support/verbs_pair.ts";
import { longOnly } from "./support/long.ts";

const exampleTimeoutMs = 120_000; // a safety net: each point is bounded by --timeout-s
const tiny = ["--count", "200", "--warmup", "50", "--timeout-s", "60"];

labTopology(); // fails, never skips, when no topology is up

/** Runs an example to its end; returns its CSV header and rows of named cells. */
async function runExample(file: string, args: string[]) {
  const dir = await Deno.makeTempDir({ prefix: "rrl-examples-" });
  try {
    const out = `${dir}/points.csv`;
    const argv = denoArgv(file, [...args, ...tiny, "--out", out]);
    const child = new Deno.Command(argv[0], { args: argv.slice(1), stdin: "null" }).spawn();
    const timer = setTimeout(() => child.kill("SIGKILL"), exampleTimeoutMs);
    const status = await child.status.finally(() => clearTimeout(timer));
    assert.equal(status.code, 0, `${file} exited with ${status.code}`);
    const [header, ...lines] = (await Deno.readTextFile(out)).trimEnd().split("\n");
    const names = header.split(",");
    const rows = lines.map((line) =>
      Object.fromEntries(line.split(",").map((cell, i) => [names[i], Number(cell)]))
    );
    return { header, rows };
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

function assertClean(row: Record<string, number>): void {
  assert.ok(row.ops_per_s > 0, `ops_per_s ${row.ops_per_s}`);
  assert.equal(row.count, 200);
  assert.equal(row.acked, 200);
  assert.equal(row.refused, 0);
  assert.ok(row.p50 > 0 && row.p50 <= row.p99, `p50 ${row.p50} µs, p99 ${row.p99} µs`);
}

// One point each: a point costs 10-30 s in the TCG lab VM, mostly starting two Deno processes.

Deno.test(
  "sweep_sizes_depths writes its header and one clean row per (size, depth)",
  longOnly,
  async () => {
    const { header, rows } = await runExample("examples/sweep_sizes_depths.ts", [
      ...["--sizes", "16k", "--depths", "4"],
    ]);
    assert.equal(header, "size,depth,count,ops_per_s,mb_per_s,p50,p90,p99,p999,max,acked,refused");
    assert.deepEqual(rows.map((r) => [r.size, r.depth]), [[16384, 4]]);
    rows.forEach(assertClean);
  },
);

Deno.test(
  "ring_credit_sweep: a ring holding fewer logs than the depth runs out of credits",
  longOnly,
  async () => {
    const { header, rows } = await runExample("examples/ring_credit_sweep.ts", [
      ...["--rings", "64k", "--size", "16k", "--depth", "8"],
    ]);
    assert.equal(
      header,
      "ring,size,depth,ring_logs,delay_ms,count,ops_per_s,mb_per_s,p50,p90,p99,p999,max," +
        "admission_waits,waits_per_log,max_ahead_bytes,acked,refused",
    );
    assert.deepEqual(rows.map((r) => [r.ring, r.ring_logs]), [[65536, 4]]);
    rows.forEach(assertClean);
    assert.ok(rows[0].admission_waits > 0, "logs waited for credits: 8 in flight, room for 4");
    assert.equal(rows[0].max_ahead_bytes, 65536, "the primary filled the ring, never more");
  },
);
