/**
 * The post/poll hot path allocates nothing per operation and survives GC pressure:
 * measured in child processes with V8 flags, on the lab topology. The verbs-only heap test
 * and its two controls are in the long set: every suite runs the engine allocation test
 * (`engine_alloc_test.ts`), which covers these verbs and the rest of the engine, with its
 * own controls.
 */
import assert from "node:assert/strict";
import { labTopology } from "./support/verbs_pair.ts";
import { longOnly } from "./support/long.ts";

const topology = labTopology();
const tool = new URL("../../lib/bench/hot_path.ts", import.meta.url).pathname;
const ends = [topology.a.device, topology.a.address, topology.b.device, topology.b.address];

async function run(v8Flags: string, args: string[]) {
  const out = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      "--cached-only",
      "--no-check",
      `--v8-flags=${v8Flags}`,
      tool,
      ...ends,
      ...args,
    ],
    stderr: "inherit",
  }).output();
  return { code: out.code, stdout: new TextDecoder().decode(out.stdout) };
}

// A young generation larger than everything the loop could allocate: no collection runs,
// so the growth of the used heap over the loop is exactly what the loop allocated (the
// memory reducer off: its timer-driven full collections are not the loop's doing).
const bigYoung = "--trace-gc,--min-semi-space-size=64,--max-semi-space-size=64,--no-memory-reducer";

function measured(stdout: string) {
  const loop = stdout.slice(stdout.indexOf("@@BEGIN"), stdout.indexOf("@@END"));
  assert.ok(loop.length > 0, "the markers were printed");
  const gcs = loop.split("\n").filter((l) => /Scavenge|Mark-Compact|Mark-sweep|Minor/.test(l));
  const result = JSON.parse(stdout.trim().split("\n").at(-1)!);
  return { gcs, heapBytes: result.heapBytesPerRound * result.rounds };
}

Deno.test(
  "10,000 post_send + post_recv + poll_cq rounds, after a warm-up that lets V8 optimize them, allocate nothing on the JS heap",
  longOnly,
  async () => {
    const { code, stdout } = await run(bigYoung, ["10000", "20000", "0", "--marks"]);
    assert.equal(code, 0);
    const { gcs, heapBytes } = measured(stdout);
    assert.deepEqual(gcs, [], "no GC event inside the measured loop");
    // One boxed number per round would be 160,000 bytes; what remains is the JIT's own.
    assert.ok(heapBytes < 64 * 1024, `the loop allocated ${heapBytes} bytes`);
  },
);

Deno.test(
  "the heap measure is a real check: 1 KiB allocated per round shows as >= 1 KiB per round",
  longOnly,
  async () => {
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", "--cached-only", "--no-check", `--v8-flags=${bigYoung}`, tool, ...ends]
        .concat(["10000", "20000", "0", "--marks"]),
      env: { RRL_HOT_ALLOCATE: "1" },
      stderr: "inherit",
    }).output();
    assert.equal(out.code, 0);
    const { gcs, heapBytes } = measured(new TextDecoder().decode(out.stdout));
    assert.deepEqual(gcs, [], "the young generation held it all");
    assert.ok(heapBytes >= 10000 * 1024, `only ${heapBytes} bytes measured`);
  },
);

Deno.test(
  "the GC count is a real check: a loop that allocates per round does show collections",
  longOnly,
  async () => {
    const out = await new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        "--cached-only",
        "--no-check",
        "--v8-flags=--trace-gc",
        tool,
        ...ends,
        "5000",
        "1000",
        "0",
        "--marks",
      ],
      env: { RRL_HOT_ALLOCATE: "1" },
      stderr: "inherit",
    }).output();
    const stdout = new TextDecoder().decode(out.stdout);
    assert.equal(out.code, 0);
    const loop = stdout.slice(stdout.indexOf("@@BEGIN"), stdout.indexOf("@@END"));
    const gcs = loop.split("\n").filter((l) => /Scavenge|Mark-Compact|Mark-sweep|Minor/.test(l));
    assert.ok(gcs.length > 0, "allocating 1 KiB per round triggers collections inside the loop");
  },
);

// The libffi way (the one the engine uses) in every suite; the fnptr fallback in the long set.
for (const way of ["libffi", "fnptr"]) {
  Deno.test(
    `the ${way} call path survives --stress-compaction with forced GCs every 500 rounds`,
    way === "fnptr" ? longOnly : {},
    async () => {
      const out = await new Deno.Command(Deno.execPath(), {
        args: [
          "run",
          "-A",
          "--cached-only",
          "--no-check",
          "--v8-flags=--stress-compaction,--expose-gc",
          tool,
          ...ends,
          "5000",
          "500",
          "500",
        ],
        env: { RRL_FFI_CALL: way },
        stderr: "inherit",
      }).output();
      assert.equal(out.code, 0, "no crash, every completion and byte checked");
      const result = JSON.parse(new TextDecoder().decode(out.stdout).trim().split("\n").at(-1)!);
      assert.equal(result.way, way);
      assert.equal(result.rounds, 5000);
    },
  );
}
