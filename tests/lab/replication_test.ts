/**
 * The replication protocol on rdma_rxe: the primary in namespace A (a test program) and the
 * replica in namespace B (the real `cmd/replica.ts`), separate processes, frames over the
 * veth (or both on one device in loopback mode).
 */
import assert from "node:assert/strict";
import { randomSecret } from "../../lib/lab/processes.ts";
import { labDir } from "../../lib/lab/paths.ts";
import { startPrimary, startReplica } from "../../lib/tools/lab.ts";
import { runTool, scriptTool } from "../../lib/tools/spawn.ts";
import type { PrimaryReport } from "../../lib/tools/primary.ts";
import { labTopology } from "./support/verbs_pair.ts";
import { longOnly } from "./support/long.ts";

const topology = labTopology();
const { a, b } = topology;
const env = { RRL_SECRET: randomSecret() };
const timeoutMs = 180_000;

const primaryScenario = scriptTool("tests/lab/tools/primary_scenario.ts");

async function scenario(name: string, port: number, args: string[] = []) {
  const out = await runTool(primaryScenario, [
    name,
    "--device",
    a.device,
    "--host",
    b.address,
    "--port",
    String(port),
    ...args,
  ], { end: a, env, timeoutMs });
  assert.equal(out.code, 0, `scenario ${name} exited with ${out.code}`);
  // The test program's own report: each test reads the fields of its scenario.
  // deno-lint-ignore no-explicit-any
  return out.report as any;
}

// Depth 32 runs in every suite; depth 1 (the same ring wraps, one log at a time) in the long set.
for (const depth of [1, 32]) {
  Deno.test(
    `depth ${depth}: thousands of mixed-size logs through many ring wraps arrive byte for byte, acked in sequence`,
    depth === 1 ? longOnly : {},
    async () => {
      await using replica = await startReplica(b, {
        ring: "256k",
        slots: 64,
        once: true,
        verifySeed: 7,
      }, { env });
      const count = depth === 1 ? 1000 : 2000; // >= 10 wraps of the 256 KiB ring either way
      const p = await scenario("bulk", replica.port, [
        "--ring",
        "256k",
        "--depth",
        String(depth),
        "--count",
        String(count),
      ]);
      const r = await replica.report();
      assert.equal(p.result.acked, count, "every log acked");
      assert.equal(p.result.refused, 0);
      assert.equal(p.result.failure, undefined);
      assert.ok(p.result.inOrder, "acks resolved in sequence order");
      assert.ok(
        p.stats.writePos / (256 * 1024) >= 10,
        `the ring wrapped ${Math.floor(p.stats.writePos / 262144)} times`,
      );
      assert.equal(r.accepted, count);
      assert.deepEqual(
        r.digest,
        p.digest,
        "the replica's digest of its own bytes equals the primary's",
      );
      assert.equal(r.verify?.checked, count);
      assert.equal(r.verify?.mismatches, 0, "every byte at the replica is what the workload wrote");
    },
  );
}

Deno.test("a stream reports a refused log to its producer, keeps at most its depth in flight and ends on a bad log description", async () => {
  await using replica = await startReplica(b, {
    ring: "256k",
    once: true,
    fault: "7:CRC_MISMATCH",
  }, { env });
  const p = await scenario("stream", replica.port);
  assert.deepEqual(p.seen.failed, ["7:ReplicationError"], "seq 7 refused, reported once");
  assert.deepEqual(
    [p.first.posted, p.first.replicated, p.first.failed, p.first.failure],
    [40, 39, 1, undefined],
  );
  assert.ok(
    p.seen.maxInFlight >= 2 && p.seen.maxInFlight <= 3,
    `at most (and up to) depth 3 in flight, saw ${p.seen.maxInFlight}`,
  );
  assert.equal(p.second.failure, "RangeError", "a 5000-byte log ends the stream");
  assert.match(p.second.message, /5000-byte log/);
  assert.deepEqual([p.second.posted, p.second.replicated], [4, 4], "the four before it");
  assert.deepEqual([p.after.posted, p.after.replicated], [2, 2], "the primary goes on");
  // 39 + 4 + 2 logs, and the refused one's SKIP: every replicated seq once, in order.
  assert.equal(p.seen.replicated.length, 45);
  assert.ok(
    p.seen.replicated.every((s: number, i: number) => i === 0 || s > p.seen.replicated[i - 1]),
  );
  const r = await replica.report();
  assert.equal(r.accepted, 45);
  assert.deepEqual(r.digest, p.digest, "the replica holds exactly what the producer heard acked");
});

Deno.test("a wrong CRC, bad offsets, a sequence gap, a repeat and a garbage record get their status; the replica keeps serving", async () => {
  await using replica = await startReplica(b, { ring: "256k", once: true }, { env });
  const p = await scenario("refusals", replica.port);
  const status = Object.fromEntries(
    p.answers.map((x: { name: string; status: string }) => [x.name, x.status]),
  );
  assert.deepEqual(status, {
    "wrong CRC": "CRC_MISMATCH",
    "out-of-bounds offset": "OUT_OF_BOUNDS",
    "misplaced offset": "OUT_OF_BOUNDS",
    "sequence gap": "SEQ_GAP",
    "repeated sequence": "SEQ_DUPLICATE",
    "garbage record": "BAD_RECORD",
    "probe (NOP)": "OK",
  });
  for (const answer of p.answers) {
    assert.equal(answer.nextSeq, p.expectedNextSeq, `${answer.name} changed nothing`);
  }
  assert.deepEqual(
    p.after,
    [4, 5, 6, 7, 8],
    "valid logs after the refusals are accepted in sequence",
  );
  const r = await replica.report();
  assert.equal(r.accepted, 8);
  assert.deepEqual(r.digest, p.digest);
  assert.deepEqual(r.refused, {
    CRC_MISMATCH: 1,
    OUT_OF_BOUNDS: 2,
    SEQ_GAP: 1,
    SEQ_DUPLICATE: 1,
    BAD_RECORD: 1,
  });
});

Deno.test("under a slow replica the primary never has more bytes in flight than the replica released", async () => {
  await using replica = await startReplica(b, {
    ring: "64k",
    slots: 64,
    once: true,
    slowUs: 3000,
  }, { env });
  const p = await scenario("credits", replica.port, [
    "--ring",
    "64k",
    "--depth",
    "32",
    "--count",
    "300",
    "--sizes",
    "16k",
  ]);
  const r = await replica.report();
  assert.equal(p.result.acked, 300);
  assert.ok(
    p.stats.maxAheadBytes <= 65536,
    `at most the ring ahead of the replica (saw ${p.stats.maxAheadBytes})`,
  );
  assert.ok(p.stats.maxAheadBytes >= 49152, "the primary did use the credits it had");
  assert.ok(p.stats.admissionWaits > 0, "logs waited for credits instead of overrunning");
  assert.equal(r.refused.NO_CREDIT ?? 0, 0, "the replica never saw a log beyond its credit");
  assert.equal(r.accepted, 300);
});

Deno.test("bootstrap refusals (wrong secret, wrong version, junk, oversized frame) leave the replica serving", async () => {
  await using replica = await startReplica(b, { ring: "256k", once: true }, { env });
  const p = await scenario("bootstrap", replica.port);
  assert.equal(p.refusals.wrongSecret, "BAD_AUTH");
  assert.equal(p.refusals.wrongVersion.refused, "BAD_VERSION");
  assert.ok(
    p.refusals.junk.closed || p.refusals.junk.refused === "BAD_MESSAGE",
    `junk refused: ${JSON.stringify(p.refusals.junk)}`,
  );
  assert.ok(
    p.refusals.oversized.closed || p.refusals.oversized.refused === "BAD_MESSAGE",
    `oversized frame refused: ${JSON.stringify(p.refusals.oversized)}`,
  );
  assert.deepEqual(p.after, [1, 2, 3, 4, 5], "a correct primary is served afterwards");
  const r = await replica.report();
  assert.equal(r.accepted, 5);
  assert.equal(r.sessions, 1);
});

Deno.test("silent connections held from the primary's namespace do not keep a real primary out", async () => {
  // Not --once: the replica must outlive the primary until the holder has stopped.
  await using replica = await startReplica(b, { ring: "1m" }, { env });
  await Deno.mkdir(labDir, { recursive: true });
  const dir = await Deno.makeTempDir({ dir: labDir, prefix: "hold-slots-" });
  const [startedFile, relentFile, stopFile] = ["started", "relent", "stop"].map((f) =>
    `${dir}/${f}`
  );
  // Until the primary reports a BUSY retry, the holder re-takes each slot the replica frees;
  // then it re-opens 10 silent sockets every 3.5 s. Before the fix they took all 8 slots for
  // 5 s (the control timeout), leaving no gap, and the primary gave up at its first BUSY.
  const holder = runTool(scriptTool("tests/lab/tools/hold_slots.ts"), [
    ...["--host", b.address, "--port", String(replica.port), "--sockets", "10"],
    ...["--every-ms", "3500", "--started-file", startedFile, "--relent-file", relentFile],
    ...["--stop-file", stopFile],
  ], { end: a, env, timeoutMs });
  let primary: { code: number; report?: PrimaryReport; retries: number };
  try {
    for (const t0 = performance.now(); !(await Deno.stat(startedFile).catch(() => null));) {
      assert.ok(performance.now() - t0 < 60_000, "the slot holder did not start within 60 s");
      await Promise.race([holder, new Promise((r) => setTimeout(r, 100))]);
    }
    let relented = false;
    const run = await startPrimary(
      { from: a, to: b, port: replica.port },
      { ring: "1m", size: "4k", depth: 8, count: 200 },
      {
        env,
        timeoutMs,
        onEvent: (event) => {
          if (relented || event.event !== "busy-retry") return;
          relented = true;
          Deno.writeTextFileSync(relentFile, "");
        },
      },
    );
    const end = await run.ended();
    const retries = run.events.filter((e) => e.event === "busy-retry").length;
    primary = { code: end.code, report: end.report, retries };
  } finally {
    await Deno.writeTextFile(stopFile, "");
  }
  type Tally = { challenges: number; busy: number; other: string[] };
  const h = (await holder).report as {
    continuous: Tally;
    rounds: Tally[];
    challengeMs: number[];
    heldMs: number[];
  };
  await Deno.remove(dir, { recursive: true });
  const retries = primary.retries;
  const range = (ms: number[]) => `${Math.min(...ms)}..${Math.max(...ms)} ms`;
  console.log(
    `hold-slots: held continuously ${JSON.stringify(h.continuous)}, then ${h.rounds.length} ` +
      `rounds ${JSON.stringify(h.rounds)}; CHALLENGE after ${range(h.challengeMs)}; slots ` +
      `held ${range(h.heldMs)}; the primary retried BUSY ${retries} times`,
  );
  assert.equal(primary.code, 0, "the primary failed (see its messages above)");
  assert.equal(primary.report?.result.acked, 200);
  for (const tally of [h.continuous, ...h.rounds]) {
    assert.deepEqual(tally.other, [], "every connection got a CHALLENGE or a REFUSE BUSY");
  }
  for (const round of h.rounds) {
    assert.ok(round.challenges <= 2, `one address holds at most 2 slots: ${JSON.stringify(round)}`);
  }
  for (const ms of h.heldMs) {
    assert.ok(ms >= 1800 && ms < 4500, `a silent socket held its slot ${ms} ms, not about 2 s`);
  }
  replica.stop();
  const r = await replica.report();
  assert.equal(r.accepted, 200);
  assert.equal(r.sessions, 1);
});

Deno.test("a retaining replica frees space only on RELEASE; a full ring fails a write in bounded time", async () => {
  await using replica = await startReplica(b, { ring: "64k", retain: true, once: true }, { env });
  const p = await scenario("retain", replica.port, ["--ring", "64k"]);
  assert.deepEqual(p.first, [1, 2, 3, 4]);
  assert.equal(p.blocked, "BackpressureError", "the fifth log found no room and failed");
  assert.ok(
    p.waitedMs >= 1400 && p.waitedMs < 5000,
    `it failed after the admission timeout (${p.waitedMs} ms)`,
  );
  assert.equal(p.afterRelease, 5, "after RELEASE through seq 2 the next log fits");
  assert.equal(p.badRelease, "BAD_RELEASE");
  assert.equal(p.stats.admissionTimeouts, 1);
  const r = await replica.report();
  assert.equal(r.accepted, 5);
  assert.ok(r.releases >= 2, `the replica saw the RELEASE records (${r.releases})`);
  assert.equal(r.refused.BAD_RELEASE, 1);
});
