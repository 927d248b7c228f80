/**
 * A soak of `ffi/prepared_call.ts`: 10^7 calls through each of three prepared calls to
 * real libc functions, every result checked, under `--stress-compaction` with garbage and a
 * forced (compacting) GC every 10^5 calls, in a child process; then the `fnptr` fallback
 * way; then the control that shows one wrong argument fails the soak. No RDMA device: the
 * functions are libc's `abs`, `atoi` and `strcmp` (see the tool's header).
 *
 * @module
 */
import assert from "node:assert/strict";

const tool = new URL("./tools/prepared_call_soak.ts", import.meta.url).pathname;
const stress = "--v8-flags=--stress-compaction,--expose-gc";
const gcEvery = 100_000;
/** A bound on each child, far above the few seconds it takes (10 s measured on 2 cores). */
const childTimeoutMs = 180_000;

interface SoakResult {
  way: string;
  calls: number;
  perFunction: { abs: number; atoi: number; strcmp: number };
  gcs: number;
  ms: number;
  nsPerCall: number;
}

async function soak(calls: number, env: Record<string, string>) {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--cached-only", "--no-check", stress, tool, String(calls), `${gcEvery}`],
    env,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const timer = setTimeout(() => child.kill("SIGKILL"), childTimeoutMs);
  const out = await child.output().finally(() => clearTimeout(timer));
  const stdout = new TextDecoder().decode(out.stdout);
  const stderr = new TextDecoder().decode(out.stderr);
  return { code: out.code, signal: out.signal, stdout, stderr };
}

function passed(run: Awaited<ReturnType<typeof soak>>, way: string, calls: number): SoakResult {
  assert.equal(
    run.signal,
    null,
    `the soak died of ${run.signal} (a crash in C, or killed after ${childTimeoutMs} ms):\n${run.stderr}`,
  );
  assert.equal(run.code, 0, `the soak failed:\n${run.stderr}`);
  const result = JSON.parse(run.stdout.trim().split("\n").at(-1)!) as SoakResult;
  assert.equal(result.way, way, `the ${way} way was used (libffi.so.8 missing? install libffi8)`);
  assert.equal(result.calls, calls, "every call ran and was checked");
  const { abs, atoi, strcmp } = result.perFunction;
  assert.equal(abs + atoi + strcmp, calls);
  assert.equal(result.gcs, Math.floor(calls / gcEvery), "gc() was exposed and forced");
  console.log(
    `${way}: ${calls} calls (abs ${abs}, atoi ${atoi}, strcmp ${strcmp}), ${result.gcs} forced GCs, ` +
      `${(result.ms / 1000).toFixed(1)} s, ${result.nsPerCall.toFixed(0)} ns per checked call`,
  );
  return result;
}

Deno.test("10^7 libffi prepared calls to each of abs, atoi and strcmp survive --stress-compaction and forced GCs, every result right", async () => {
  const calls = 30_000_000;
  const result = passed(await soak(calls, { RRL_FFI_CALL: "libffi" }), "libffi", calls);
  for (const [fn, n] of Object.entries(result.perFunction)) {
    assert.ok(n >= 10_000_000, `${fn} was called ${n} times`);
  }
});

// The fallback goes through Deno's generic FFI op (~2 us per call here): 10^6 calls to
// each function keep this test at a few seconds; the per-call risk is the same.
Deno.test("the fnptr fallback way survives the same soak, every result right", async () => {
  const calls = 3_000_000;
  passed(await soak(calls, { RRL_FFI_CALL: "fnptr" }), "fnptr", calls);
});

Deno.test("the soak is a real check: one wrong argument to any of the three functions fails it", async (t) => {
  // Calls 150,000 + 0, 1, 2 are abs, atoi and strcmp (after a forced GC); strcmp's
  // operands differ there, so swapping them flips the sign.
  for (const [fn, at] of [["abs", 150_000], ["atoi", 150_001], ["strcmp", 150_002]] as const) {
    await t.step(fn, async () => {
      const run = await soak(300_000, { RRL_SOAK_CORRUPT: String(at) });
      assert.equal(run.signal, null, run.stderr);
      assert.equal(run.code, 1, `the soak passed with a wrong argument to ${fn}`);
      assert.match(run.stderr, new RegExp(`WrongResultError: Call ${at} \\(${fn} through`));
    });
  }
});
