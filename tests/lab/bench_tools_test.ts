/**
 * The bench's reference tools run on the lab topology and parse into sane numbers:
 * perftest, the shared C reference of the protocol (when ../shared/bench-ref exists) and
 * the C hot loop. Short runs: this executes in CI in the TCG lab VM.
 */
import assert from "node:assert/strict";
import { runCLoop } from "../../lib/bench/c_loop.ts";
import { formatPerftest, runPerftest } from "../../lib/bench/perftest.ts";
import { referenceSource, runReference } from "../../lib/bench/reference.ts";
import { labTopology } from "./support/verbs_pair.ts";

const topology = labTopology();

function sane(what: string, value: number) {
  assert.ok(Number.isFinite(value) && value > 0, `${what} is positive and finite: ${value}`);
}

Deno.test("ib_send_lat -s 64 -n 200 runs between the ends and parses its latency row", async () => {
  const r = await runPerftest(topology, {
    tool: "ib_send_lat",
    size: 64,
    iterations: 200,
    timeoutMs: 30_000,
  });
  console.log(formatPerftest(r));
  assert.equal(r.kind, "latency");
  if (r.kind !== "latency") return;
  assert.equal(r.bytes, 64);
  assert.equal(r.iterations, 200);
  for (const key of ["minUs", "typicalUs", "avgUs", "maxUs", "p99Us"] as const) sane(key, r[key]);
  assert.ok(r.minUs <= r.typicalUs && r.typicalUs <= r.maxUs, "min <= typical <= max");
});

Deno.test({
  name: "the C reference replicates 300 x 4 KiB at depth 1 with no mismatch",
  ignore: referenceSource() === undefined,
  fn: async () => {
    const r = await runReference(topology, {
      size: 4096,
      depth: 1,
      count: 300,
      ringMb: 16,
      timeoutMs: 60_000,
    });
    assert.ok(r, "the reference ran");
    console.log(JSON.stringify(r));
    assert.equal(r.impl, "c");
    assert.deepEqual([r.size, r.depth, r.count, r.mismatches], [4096, 1, 300, 0]);
    for (const key of ["ops_per_s", "mb_per_s", "p50", "p99", "max"] as const) sane(key, r[key]);
    assert.ok(r.p50 <= r.p99 && r.p99 <= r.max, "p50 <= p99 <= max");
  },
});

Deno.test("the C hot loop runs 2000 rounds and reports ns per round and per empty poll", async () => {
  const r = await runCLoop(topology, { rounds: 2000, warmup: 200, timeoutMs: 60_000 });
  console.log(JSON.stringify(r));
  assert.equal(r.way, "c");
  assert.equal(r.rounds, 2000);
  sane("nsPerRound", r.nsPerRound);
  sane("nsPerEmptyPoll", r.nsPerEmptyPoll);
  assert.ok(r.nsPerEmptyPoll < r.nsPerRound, "an empty poll costs less than a round");
});
