/**
 * The latency breakdown: stamps kept per seq in bounded columns, files that round-trip,
 * two sides joined by seq into stage medians, malformed files refused.
 */
import assert from "node:assert/strict";
import { Breakdown, readBreakdown, Stamp, summarizeBreakdown } from "../../lib/trace/breakdown.ts";

async function writeSides(rowsP: number[][], rowsR: number[][]) {
  const dir = await Deno.makeTempDir({ prefix: "rrl-breakdown-" });
  const p = `${dir}/p.json`, r = `${dir}/r.json`;
  await Deno.writeTextFile(p, JSON.stringify({ version: 1, side: "primary", rows: rowsP }));
  await Deno.writeTextFile(r, JSON.stringify({ version: 1, side: "replica", rows: rowsR }));
  return { dir, p, r };
}

Deno.test("stages are the differences of the two sides' stamps, joined by seq; the median of each", async () => {
  // seq, prepare, posted, acked | seq, recv, checked, ackPosted
  const primary = [[1, 5, 15, 105], [2, 1000, 1020, 1150], [3, 2000, 2030, 2200], [9, 1, 2, 3]];
  const replica = [[1, 35, 45, 65], [2, 1050, 1070, 1100], [3, 2070, 2100, 2150]];
  const { dir, p, r } = await writeSides(primary, replica);
  try {
    const s = await summarizeBreakdown(p, r);
    assert.equal(s.logs, 3, "seq 9 has no replica row: left out");
    const byName = Object.fromEntries(s.stages.map((x) => [x.name, x.p50Us]));
    assert.deepEqual(byName, {
      prepare: 20, // 10, 20, 30
      "to-replica": 30, // 20, 30, 40
      check: 20, // 10, 20, 30
      "ack-post": 30, // 20, 30, 50
      "ack-return": 50, // 40, 50, 50
      total: 150, // 100, 150, 200
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a side's file is refused when it is the other side's, another version, or has a bad row", async () => {
  const { dir, p, r } = await writeSides([[1, 0, 1, 2]], [[1, 0, 1, 2]]);
  try {
    await assert.rejects(readBreakdown(r, "primary"), /not a version-1 primary breakdown/);
    await Deno.writeTextFile(p, JSON.stringify({ version: 1, side: "primary", rows: [[1, 2]] }));
    await assert.rejects(readBreakdown(p, "primary"), /malformed row/);
    await Deno.writeTextFile(p, "{");
    await assert.rejects(readBreakdown(p, "primary"), /Cannot read the primary's breakdown/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a breakdown keeps the last `capacity` logs, and stamps of a reused slot start afresh", () => {
  const b = new Breakdown();
  assert.throws(() => b.enable("primary", 0), RangeError);
  b.enable("primary", 4);
  for (let seq = 1; seq <= 6; seq++) {
    b.stamp(Stamp.PREPARE, seq, seq);
    if (seq !== 6) b.stamp(Stamp.POSTED, seq, seq + 0.5);
  }
  const rows = b.file().rows;
  assert.deepEqual(rows.map((row) => row[0]), [3, 4, 5, 6], "the oldest two were overwritten");
  const six = rows.at(-1)!;
  assert.ok(six[1] > 0, "seq 6 has its PREPARE stamp");
  assert.equal(six[2], 0, "seq 6 did not inherit seq 2's POSTED stamp");
  assert.ok(Math.abs(rows[0][2] - rows[0][1] - 500) < 1e-6, "stamps are µs (0.5 ms apart)");
});
