import assert from "node:assert/strict";
import { fuzzInput, type FuzzReport, replayKey, runFuzz, toHex } from "../../lib/fuzz/fuzz.ts";
import { ackTarget, createTargets, recordTarget, targetNames } from "../../lib/fuzz/targets.ts";
import { AckStatus, decodeAck } from "../../lib/log/ack.ts";
import { decodeRecord, RecordReason } from "../../lib/log/record.ts";
import { formatSeed, propertySeed } from "../../lib/testing/property.ts";

const totalInputs = 100_000;

/** What to paste to replay a run, and its first failure, for assertion messages. */
function replayHint(report: FuzzReport): string {
  const first = report.firstFailure;
  const input = first === undefined
    ? ""
    : `; first failure ${first.kind} in ${first.target}: ${first.error}; ` +
      `replay it with deno run -A cmd/fuzz.ts --replay ${replayKey(first)}`;
  return `seed ${formatSeed(report.seed)} (RRL_SEED=${formatSeed(report.seed)} deno test -A ` +
    `tests/unit/fuzz_test.ts)${input}`;
}

Deno.test("100,000 fuzzed inputs: no decoder crashes, hangs or mismatches", async (t) => {
  const report = await runFuzz({ count: totalInputs, seed: propertySeed(0x5eed_f022) });
  const hint = replayHint(report);
  if (report.crashes + report.hangs + report.mismatches > 0) console.error(`fuzz: ${hint}`);

  await t.step("every input ran and none failed", () => {
    assert.equal(report.inputs, totalInputs, hint);
    assert.ok(report.complete, hint);
    assert.equal(report.crashes, 0, hint);
    assert.equal(report.hangs, 0, hint);
    assert.equal(report.mismatches, 0, hint);
  });

  await t.step("every target saw accepted and refused inputs", () => {
    assert.deepEqual(Object.keys(report.targets), [...targetNames]);
    for (const [name, stats] of Object.entries(report.targets)) {
      assert.equal(stats.inputs, totalInputs / targetNames.length, `${name}: ${hint}`);
      assert.ok(stats.accepted > 0, `${name} accepted nothing: ${hint}`);
      assert.ok(stats.inputs - stats.accepted > 0, `${name} refused nothing: ${hint}`);
    }
  });

  await t.step("each decoder reached many distinct refusal reasons", () => {
    const reasons = (name: string) => Object.keys(report.refusedByReason[name]);
    const recordRefusals = Object.keys(RecordReason).length - 1;
    assert.ok(reasons("record").length >= 14, `record: ${reasons("record")} of ${recordRefusals}`);
    assert.equal(reasons("ack").length, 5, `ack: ${reasons("ack")}`);
    const control = reasons("control");
    assert.ok(control.length >= 20, `control: ${control}`);
    for (const head of ["BAD_LENGTH", "BAD_MAGIC", "BAD_VERSION", "BAD_TYPE", "BAD_FIELD"]) {
      assert.ok(control.some((r) => r.startsWith(head)), `control never refused ${head}`);
    }
    assert.deepEqual(reasons("sqe"), ["entry-out-of-bounds"]);
    assert.ok(reasons("nvme").length >= 5, `nvme: ${reasons("nvme")}`);
  });
});

Deno.test("the same seed and count make the same inputs and the same counts", async () => {
  const run = () => runFuzz({ count: 3000, seed: 0x0123_4567 });
  const [a, b] = [await run(), await run()];
  assert.deepEqual(a.refusedByReason, b.refusedByReason);
  for (const name of targetNames) assert.equal(a.targets[name].accepted, b.targets[name].accepted);
  const targets = createTargets();
  for (const index of [0, 1, 4, 1234, 2999]) {
    const [x, y] = [fuzzInput(targets, 7, index), fuzzInput(targets, 7, index)];
    assert.equal(toHex(x.bytes), toHex(y.bytes));
    assert.equal(x.mode, y.mode);
  }
});

Deno.test("a decoder that throws on some bytes is a CRASH that replays from seed and index", async () => {
  const broken: typeof decodeRecord = (view, offset, out, limits) => {
    if (view.byteLength > offset + 7 && view.getUint8(offset + 7) === 0xff) {
      throw new TypeError("broken: flags 0xff..");
    }
    return decodeRecord(view, offset, out, limits);
  };
  const targets = () => [recordTarget(broken), ackTarget()];
  const seed = 0x0bad_5eed;
  const report = await runFuzz({ targets: targets(), count: 4000, seed });
  assert.ok(report.crashes > 0, "the harness missed every throw");
  assert.equal(report.hangs + report.mismatches, 0);
  const first = report.firstFailure!;
  assert.equal(first.kind, "crash");
  assert.equal(first.target, "record");
  assert.equal(first.seed, seed);
  assert.match(first.error, /TypeError: broken/);
  const input = fuzzInput(targets(), first.seed, first.index);
  assert.equal(toHex(input.bytes), first.bytesHex);
  assert.throws(() => input.target.run(input.bytes), /broken/);
  const replay = await runFuzz({ targets: targets(), seed, start: first.index, count: 1 });
  assert.equal(replay.crashes, 1);
  assert.deepEqual(replay.firstFailure, first);
});

Deno.test("a decoder whose accepted value does not round-trip is a MISMATCH", async () => {
  const lying: typeof decodeAck = (view, offset, out) => {
    const reason = decodeAck(view, offset, out);
    if (reason === 0 && out.status === AckStatus.SEQ_GAP) out.seq ^= 1;
    return reason;
  };
  const report = await runFuzz({ targets: [ackTarget(lying)], count: 500, seed: 1 });
  assert.ok(report.mismatches > 0);
  assert.equal(report.crashes + report.hangs, 0);
  assert.equal(report.firstFailure?.kind, "mismatch");
  assert.match(report.firstFailure!.error, /disagrees|re-encode/);
});

Deno.test("a decoder slower than the bound is a HANG", async () => {
  const slow: typeof decodeAck = (view, offset, out) => {
    if (view.byteLength === 0) {
      for (const until = performance.now() + 20; performance.now() < until;);
    }
    return decodeAck(view, offset, out);
  };
  const report = await runFuzz({ targets: [ackTarget(slow)], count: 300, seed: 2, hangMs: 10 });
  const hangs = report.failures.filter((f) => f.kind === "hang");
  assert.ok(hangs.some((f) => f.bytesHex === ""), JSON.stringify(report.failures));
  assert.equal(report.crashes + report.mismatches, 0);
});

Deno.test("cmd/fuzz.ts exits 0 on a clean run, 2 on an unknown target", async () => {
  const { run } = await import("../../cmd/fuzz.ts");
  const log = console.log;
  console.log = () => {};
  try {
    assert.equal(await run(["--count", "500", "--seed", "0x2a", "--json"]), 0);
    assert.equal(await run(["--replay", "0x2a:17"]), 0);
  } finally {
    console.log = log;
  }
  const error = console.error;
  console.error = () => {};
  try {
    assert.equal(await run(["--target", "nope"]), 2);
  } finally {
    console.error = error;
  }
});
