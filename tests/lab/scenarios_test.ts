/**
 * The fast subset of scenarios: every fault kind once, composed into three runs of the real
 * commands on the Soft-RoCE pair (five finer runs in the long set), each followed by the
 * invariant checker. Also proves the run folder holds what a replay and a reader need.
 */
import assert from "node:assert/strict";
import {
  type Fault,
  type FaultKind,
  runScenario,
  type RunSummary,
  type ScenarioConfig,
} from "../../lab.ts";
import { readTraceFile } from "../../lib/trace/trace_file.ts";
import { longOnly } from "./support/long.ts";

function config(count: number, depth: number, faults: Fault[]): ScenarioConfig {
  return {
    topology: "pair",
    workload: { count, sizes: "4k,16k", depth, flushEvery: 40 },
    faults,
  };
}

function assertDurable(s: RunSummary, kinds: FaultKind[]): void {
  const c = s.check!;
  assert.equal(s.verdict, "pass", `${s.reason} (run folder ${s.runDir})`);
  assert.ok(c.logsAcked > 0, "writes were acked");
  assert.equal(c.ackedButLost, 0);
  assert.equal(c.corruptions, 0);
  assert.equal(c.rejectedButAcked, 0);
  assert.equal(c.orderViolations, 0);
  for (const kind of kinds) {
    assert.ok(
      (s.faultsInjected[kind] ?? 0) >= 1,
      `the ${kind} fault fired (${JSON.stringify(s.faultsInjected)})`,
    );
  }
}

// Every suite: three runs that together inject every fault kind once. The long set
// (`deno task test --long`) adds five finer runs after them, one kill point each.
const runs: [string, ScenarioConfig, FaultKind[], "long"?][] = [
  [
    "netem loss, delay, reordering, duplication and corruption, with a stalled replica and a delayed ack",
    config(60, 4, [
      { kind: "netem", loss: 3, delayMs: 1, reorder: 5, duplicate: 1, corrupt: 1 },
      { kind: "replica-stall", seq: 10, ms: 200 },
      { kind: "delay-ack", seq: 30, ms: 200 },
    ]),
    ["netem", "replica-stall", "delay-ack"],
  ],
  [
    "a refused log, a dropped ack, a replica short of RECVs, then the replica killed after its persist point",
    config(150, 8, [
      { kind: "reject", seq: 20, status: "CRC_MISMATCH" },
      { kind: "drop-ack", seq: 30 },
      { kind: "rnr", recvSlots: 2 },
      { kind: "replica-kill", seq: 90, point: "after-persist" },
    ]),
    ["reject", "drop-ack", "rnr", "replica-kill"],
  ],
  [
    "a WRITE with a wrong rkey, a primary killed between post and ack then restarted, the rxe link deleted, and a QP moved to ERR",
    config(150, 4, [
      { kind: "bad-rkey", seq: 20 },
      { kind: "primary-kill", seq: 50 },
      { kind: "link-delete", seq: 80, downMs: 500 },
      { kind: "qp-error", seq: 120 },
    ]),
    ["bad-rkey", "primary-kill", "link-delete", "qp-error"],
  ],
  [
    "a replica killed with data placed before the check, and a refused log",
    config(150, 4, [
      { kind: "reject", seq: 20, status: "CRC_MISMATCH" },
      { kind: "replica-kill", seq: 70, point: "before-check" },
    ]),
    ["reject", "replica-kill"],
    "long",
  ],
  [
    "a replica killed after its persist point before the ack, and a dropped ack",
    config(150, 4, [
      { kind: "drop-ack", seq: 30 },
      { kind: "replica-kill", seq: 90, point: "after-persist" },
    ]),
    ["drop-ack", "replica-kill"],
    "long",
  ],
  [
    "a replica killed after its ack, and a replica short of RECVs",
    config(150, 8, [
      { kind: "rnr", recvSlots: 2 },
      { kind: "replica-kill", seq: 90, point: "after-ack" },
    ]),
    ["rnr", "replica-kill"],
    "long",
  ],
  [
    "a primary killed between post and ack then restarted, and a QP moved to ERR",
    config(150, 4, [
      { kind: "primary-kill", seq: 50 },
      { kind: "qp-error", seq: 110 },
    ]),
    ["primary-kill", "qp-error"],
    "long",
  ],
  [
    "the primary's rxe link deleted under traffic, and a WRITE with a wrong rkey",
    config(150, 4, [
      { kind: "bad-rkey", seq: 20 },
      { kind: "link-delete", seq: 70, downMs: 500 },
    ]),
    ["bad-rkey", "link-delete"],
    "long",
  ],
];

const summaries: RunSummary[] = [];

for (const [name, cfg, kinds, set] of runs) {
  Deno.test(
    `scenario: ${name}: every acked write is durable`,
    set === "long" ? longOnly : {},
    async () => {
      const s = await runScenario({ scenario: "lab-test", seed: 4242, config: cfg, log: () => {} });
      summaries.push(s);
      assertDurable(s, kinds);
      if (kinds.includes("reject")) {
        assert.ok(s.writesFailed >= 1, "the refused log's write failed instead of completing");
      }
      if (kinds.includes("replica-kill") || kinds.includes("primary-kill")) {
        assert.ok(s.recoveryMs.length >= 1, "a recovery time was measured");
      }
      if (kinds.includes("primary-kill")) {
        assert.equal(s.primaries.length, 2, "the primary ran twice");
        assert.equal(s.primaries[0].signal, "SIGKILL");
      }
    },
  );
}

Deno.test("scenario run folders hold the config, versions, logs, a readable merged trace and the summary", async () => {
  assert.ok(summaries.length > 0, "the scenario tests ran first");
  const s = summaries[0];
  const cfg = JSON.parse(await Deno.readTextFile(`${s.runDir}/config.json`));
  assert.equal(cfg.seed, 4242);
  assert.deepEqual(cfg.config, s.config);
  const versions = JSON.parse(await Deno.readTextFile(`${s.runDir}/versions.json`));
  assert.equal(versions.kernel, Deno.osRelease());
  assert.match(versions.deno, /^\d+\.\d+\.\d+/);
  const summary = JSON.parse(await Deno.readTextFile(`${s.runDir}/summary.json`));
  assert.equal(summary.verdict, "pass");
  assert.match(summary.replay, /^deno task repro --replay runs\//);
  const { events } = await readTraceFile(`${s.runDir}/trace.jsonl`);
  assert.ok(events.some((e) => e.kind === "POST"), "primary posts are in the merged trace");
  assert.ok(events.some((e) => e.kind === "ACK" && e.side === 1), "replica acks too");
  assert.ok(events.some((e) => e.kind === "FAULT"), "and the injected faults");
  for (const log of ["primary-1.log", "replica-1.log", "completions.log"]) {
    assert.ok((await Deno.stat(`${s.runDir}/${log}`)).size > 0, `${log} is not empty`);
  }
});
