/**
 * Reconnect bounds: `--reconnect-for` durations, and the window a waiting write is given
 * (doubling waits, capped, plus each attempt's own time, or the time window).
 */
import assert from "node:assert/strict";
import { parseDuration } from "../../cmd/options.ts";
import { reconnectWindowMs } from "../../lib/replication/primary.ts";

Deno.test("--reconnect-for takes ms, s, m or bare seconds up to one hour, and names what was wrong", () => {
  assert.equal(parseDuration("500ms"), 500);
  assert.equal(parseDuration("60s"), 60_000);
  assert.equal(parseDuration("2m"), 120_000);
  assert.equal(parseDuration("1.5"), 1500);
  for (const bad of ["", "2h", "-1s", "61m", "ten", "1e3"]) {
    assert.throws(() => parseDuration(bad), /is not a duration up to 1 hour/, bad);
  }
});

Deno.test("the reconnect window: waits double from the delay up to 5 s, each attempt adds 1 s, a time window caps it", () => {
  assert.equal(reconnectWindowMs(undefined), 0);
  assert.equal(reconnectWindowMs({ attempts: 0, delayMs: 500 }), 0);
  // 500, 1000, 2000, 4000, 5000 (capped), each plus 1000 for the attempt itself.
  assert.equal(reconnectWindowMs({ attempts: 5, delayMs: 500 }), 17_500);
  assert.equal(reconnectWindowMs({ attempts: 1000, delayMs: 250, forMs: 60_000 }), 61_000);
  assert.equal(reconnectWindowMs({ attempts: 2, delayMs: 100, maxDelayMs: 150 }), 2250);
});
