/**
 * Cost of a trace call site: `deno bench bench/trace_bench.ts`.
 *
 * Every iteration runs the same small loop body 1000 times (a stand-in for the hot path's
 * own work); divide the time per iteration by 1000 for ns per event. The baseline has no
 * call site; "disabled" adds `if (trace.on) trace.post(...)` with tracing off (should equal
 * the baseline: one property read); "enabled" records every event into a 65,536-event ring
 * (wrapping); "performance.now() alone" shows how much of that is the timestamp. Deno prints
 * the CPU and runtime it ran on.
 *
 * @module
 */
import { chainOpcode, Side, trace } from "../lib/trace/trace.ts";

const eventsPerIteration = 1000;
const group = `trace call site, ${eventsPerIteration} events per iteration`;
const opcode = chainOpcode(0, 2);
const work = new Float64Array(eventsPerIteration);

/** The loop body every case shares: a little arithmetic on a typed array. */
function body(i: number): void {
  work[i] = work[i] * 0.5 + i;
}

Deno.bench("no call site", { group, baseline: true }, () => {
  for (let i = 0; i < eventsPerIteration; i++) body(i);
});

Deno.bench("disabled call site", { group }, () => {
  trace.disable();
  for (let i = 0; i < eventsPerIteration; i++) {
    body(i);
    if (trace.on) trace.post(Side.PRIMARY, opcode, i, i, 65536, 18);
  }
});

/** The timestamp alone: most of an enabled record's cost. */
Deno.bench("performance.now() alone", { group }, () => {
  for (let i = 0; i < eventsPerIteration; i++) {
    body(i);
    work[i] += performance.now();
  }
});

Deno.bench("enabled record (POST)", { group }, (b) => {
  if (!trace.on) trace.enable({ capacity: 65_536 });
  b.start();
  for (let i = 0; i < eventsPerIteration; i++) {
    body(i);
    if (trace.on) trace.post(Side.PRIMARY, opcode, i, i, 65536, 18);
  }
  b.end();
});

Deno.bench("enabled record (ACK, 5 fields)", { group }, (b) => {
  if (!trace.on) trace.enable({ capacity: 65_536 });
  b.start();
  for (let i = 0; i < eventsPerIteration; i++) {
    body(i);
    if (trace.on) trace.ack(Side.PRIMARY, 0, i, i + 1, i * 4096);
  }
  b.end();
});
