import assert from "node:assert/strict";
import { formatSummary, LatencyRecorder, progress } from "../../lib/bench/summary.ts";

/** HDR keeps 3 significant digits: a value is reported within 0.1% (plus 1 ns). */
function near(actual: number, expected: number, what: string) {
  assert.ok(
    Math.abs(actual - expected) <= expected * 1e-3 + 1e-3,
    `${what}: ${actual} is not within 0.1% of ${expected}`,
  );
}

Deno.test("percentiles of 1..1000 µs are the 500th, 900th, 990th and 999th values", () => {
  const recorder = new LatencyRecorder();
  for (let us = 1; us <= 1000; us++) recorder.record(us, 4096);
  const s = recorder.summary(2000);
  assert.equal(s.count, 1000);
  near(s.p50, 500, "p50");
  near(s.p90, 900, "p90");
  near(s.p99, 990, "p99");
  near(s.p999, 999, "p999");
  near(s.max, 1000, "max");
  assert.equal(s.ops_per_s, 500);
  assert.equal(s.mb_per_s, (1000 * 4096) / 1e6 / 2);
});

Deno.test("sub-microsecond latencies keep nanosecond resolution", () => {
  const recorder = new LatencyRecorder();
  for (let i = 0; i < 100; i++) recorder.record(0.25);
  near(recorder.summary(1).p50, 0.25, "p50");
});

Deno.test("a skewed distribution: 99% at 100 µs, 1% at 10 ms", () => {
  const recorder = new LatencyRecorder();
  for (let i = 0; i < 9900; i++) recorder.record(100);
  for (let i = 0; i < 100; i++) recorder.record(10_000);
  const s = recorder.summary(1000);
  near(s.p50, 100, "p50");
  near(s.p99, 100, "p99");
  near(s.p999, 10_000, "p999");
  near(s.max, 10_000, "max");
});

Deno.test("latencies beyond 60 s count as 60 s; bad inputs are refused", () => {
  const recorder = new LatencyRecorder();
  recorder.record(1e12);
  near(recorder.summary(1).max, 60e6, "max");
  assert.throws(() => recorder.record(-1), /latency -1 µs/);
  assert.throws(() => recorder.record(NaN), /latency NaN µs/);
  assert.throws(() => recorder.summary(0), /over 0 ms/);
});

Deno.test("an empty recorder summarizes to zeros; reset forgets everything", () => {
  const recorder = new LatencyRecorder();
  assert.deepEqual(recorder.summary(1), {
    count: 0,
    ops_per_s: 0,
    mb_per_s: 0,
    p50: 0,
    p90: 0,
    p99: 0,
    p999: 0,
    max: 0,
  });
  recorder.record(5, 10);
  recorder.reset();
  assert.equal(recorder.count, 0);
  assert.equal(recorder.bytes, 0);
});

Deno.test("formatSummary prints one line with units", () => {
  const line = formatSummary({
    count: 5000,
    ops_per_s: 3669.4,
    mb_per_s: 15.03,
    p50: 174,
    p90: 300,
    p99: 1512,
    p999: 2000,
    max: 2310,
  });
  assert.equal(
    line,
    "count=5000 ops/s=3669 MB/s=15.0 p50=174.0us p90=300.0us p99=1512.0us p999=2000.0us max=2310.0us",
  );
});

Deno.test("progress is silent when stderr is not a terminal", () => {
  if (Deno.stderr.isTerminal()) return; // a developer's terminal: the bar would draw
  const bar = progress(10, "logs");
  bar.update(5);
  bar.stop();
  bar.stop();
  assert.throws(() => progress(0, "logs"), /progress of 0 items/);
});

Deno.test("pending latencies are recorded in batches: the same summary as record(), bad ones refused", () => {
  const direct = new LatencyRecorder();
  const batched = new LatencyRecorder();
  for (let i = 1; i <= 3000; i++) {
    direct.record(i * 0.75, 4096);
    if (batched.pendingCount >= batched.pending.length) batched.recordPending();
    batched.pending[batched.pendingCount++] = i * 0.75;
    batched.addBytes(4096);
  }
  assert.ok(batched.pendingCount > 0, "some latencies are still pending before the read");
  assert.equal(batched.count, 3000, "count flushes the pending ones");
  assert.deepEqual(batched.summary(1000), direct.summary(1000));
  batched.pending[batched.pendingCount++] = Number.NaN;
  assert.throws(() => batched.recordPending(), RangeError);
  assert.equal(batched.pendingCount, 0, "a refused batch is dropped, not retried");
});
