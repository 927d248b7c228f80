/**
 * perftest's `--out_json` reports, captured from real runs in the lab VM (perftest 4.5,
 * rxea -> rxeb over the namespace pair), decode into the numbers perftest printed.
 */
import assert from "node:assert/strict";
import {
  parsePerftestJson,
  parsePerftestSections,
  PerftestJsonError,
} from "../../lib/bench/perftest_json.ts";
import { BenchToolError, PerftestClockError, reportError } from "../../lib/bench/perftest.ts";

const dir = new URL("./testdata/perftest/", import.meta.url);
const sample = (name: string) => Deno.readTextFileSync(new URL(`${name}.out_json.txt`, dir));

Deno.test("ib_write_lat -s 4096: the one-way latencies of the text table", () => {
  const r = parsePerftestJson("ib_write_lat", sample("ib_write_lat-4096"));
  // The same run's text table: 4096 500 217.80 2736.22 293.89 397.77 280.57 1917.25 2736.22
  assert.deepEqual(r, {
    kind: "latency",
    tool: "ib_write_lat",
    bytes: 4096,
    iterations: 500,
    minUs: 217.80,
    maxUs: 2736.22,
    typicalUs: 293.89,
    avgUs: 397.77,
    stdevUs: 280.57,
    p99Us: 1917.25,
    p999Us: 2736.22,
  });
});

Deno.test("ib_write_lat -s 65536 and ib_send_lat -s 64 decode, 99.9th percentile included", () => {
  const big = parsePerftestJson("ib_write_lat", sample("ib_write_lat-65536"));
  assert.equal(big.kind, "latency");
  if (big.kind !== "latency") return;
  assert.deepEqual([big.bytes, big.iterations, big.typicalUs, big.p999Us], [
    65536,
    300,
    4049.27,
    7861.15,
  ]);
  const send = parsePerftestJson("ib_send_lat", sample("ib_send_lat-64"));
  assert.equal(send.kind, "latency");
  if (send.kind !== "latency") return;
  assert.deepEqual([send.bytes, send.typicalUs, send.p99Us, send.p999Us], [
    64,
    123.59,
    809.13,
    1415.60,
  ]);
  // The server side of the same run writes its own report (RX_depth instead of TX_depth).
  const server = parsePerftestJson("ib_send_lat", sample("ib_send_lat-64.server"));
  assert.equal(server.kind === "latency" && server.typicalUs, 126.17);
});

Deno.test("ib_write_bw -s 65536: average and peak in perftest's MB (2^20 bytes)", () => {
  assert.deepEqual(parsePerftestJson("ib_write_bw", sample("ib_write_bw-65536")), {
    kind: "bandwidth",
    tool: "ib_write_bw",
    bytes: 65536,
    iterations: 500,
    peakMBps: 22.33,
    avgMBps: 22.33,
    msgRateMpps: 0.000357,
  });
});

Deno.test("the sections keep quoted and unquoted values and keys with spaces", () => {
  const root = parsePerftestSections(sample("ib_write_lat-4096"));
  const info = root.test_info;
  assert.equal(typeof info, "object");
  if (typeof info !== "object") return;
  assert.equal(info.Device, "rxea");
  assert.equal(info.TX_depth, "1");
  assert.equal(info.Link_type, "Ethernet");
});

Deno.test("a report of another test is refused, naming both tests", () => {
  assert.throws(
    () => parsePerftestJson("ib_write_lat", sample("ib_send_lat-64")),
    (e: unknown) =>
      e instanceof PerftestJsonError && /Send_Latency_Test/.test(e.message) &&
      /RDMA_Write_Latency_Test/.test(e.message),
  );
});

Deno.test("a missing, empty or non-numeric field is refused with its name", () => {
  const text = sample("ib_write_lat-4096");
  for (
    const [broken, field] of [
      [text.replace(/^t_typical: .*$/m, ""), "t_typical"],
      [text.replace(/^t_typical: .*$/m, "t_typical: ,"), "t_typical"],
      [text.replace(/^percentile_99\.9: .*$/m, "percentile_99.9: fast,"), "percentile_99.9"],
      [text.replace(/^t_min: .*$/m, "t_min: -1,"), "t_min"],
    ] as const
  ) {
    assert.throws(
      () => parsePerftestJson("ib_write_lat", broken),
      (e: unknown) => e instanceof PerftestJsonError && e.message.includes(`results.${field}`),
    );
  }
});

Deno.test("broken structure is refused: empty, unbalanced, garbage lines", () => {
  const text = sample("ib_write_bw-65536");
  const cases = [
    ["", /empty/],
    [text.replace(/}\s*$/, ""), /ends inside/],
    [text + "}\n", /unmatched/],
    [text.replace("results: {", "results {"), /Cannot read line/],
    [text + "{\n}\n", /second top-level/],
  ] as const;
  for (const [broken, message] of cases) {
    assert.throws(
      () => parsePerftestJson("ib_write_bw", broken),
      (e: unknown) => e instanceof PerftestJsonError && message.test(e.message),
    );
  }
});

Deno.test("a report with infinite times is perftest's clock failing (run again), others are not", () => {
  // What ib_send_lat wrote in the lab VM once (2026-12-03): every time `inf`, stdev `-nan`.
  const clock = "results: {\nMsgSize: 64,\nn_iterations: 200,\nt_min: inf,\nt_max: inf,\n" +
    "t_typical: inf,\nt_avg: inf,\nt_stdev: -nan,\n}";
  assert.ok(reportError("ib_send_lat", clock) instanceof PerftestClockError);
  const bad = "results: {\nMsgSize: 64,\nt_min: -3.5,\n}";
  const other = reportError("ib_send_lat", bad);
  assert.ok(other instanceof BenchToolError && !(other instanceof PerftestClockError));
});
