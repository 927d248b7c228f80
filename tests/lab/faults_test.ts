/**
 * Faults and recovery on rdma_rxe, with the real commands as separate processes: a replica
 * killed (SIGKILL) at a given log, a dropped ack, a QP broken under load, a WRITE with a
 * wrong rkey, a primary killed between post and ack, and a replica restarted from its
 * write cache while the host cache service reconnects and resends.
 */
import assert from "node:assert/strict";
import { randomSecret } from "../../lib/lab/processes.ts";
import { inNamespace } from "../../lib/lab/topology.ts";
import { runCache, runPrimary, startReplica } from "../../lib/tools/lab.ts";
import type { PrimaryCommandOptions, PrimaryReport } from "../../lib/tools/primary.ts";
import type { ReplicaReport } from "../../lib/tools/replica.ts";
import { labTopology } from "./support/verbs_pair.ts";
import { longOnly } from "./support/long.ts";

const topology = labTopology();
const { a, b } = topology;
const env = { RRL_SECRET: randomSecret() };
const timeoutMs = 240_000;

/** cmd/primary.ts in namespace A against `port`; exit code and its report. */
async function primary(
  port: number,
  args: Partial<PrimaryCommandOptions>,
): Promise<{ code: number; json: PrimaryReport }> {
  const out = await runPrimary({ from: a, to: b, port }, {
    ring: "1m",
    size: "4k,16k",
    depth: 8,
    ...args,
  }, { env, timeoutMs });
  return { code: out.code, json: out.report };
}

const replicaArgs = { ring: "1m" };

for (
  const [name, plan] of [
    ["a QP moved to ERR right after posting log 40", { primary: { breakQp: 40 } }],
    ["log 40's RDMA WRITE carrying a wrong rkey", { primary: { badRkey: 40 } }],
  ] as const
) {
  Deno.test(
    `${name}: the session is replaced, unacked logs are resent, every log is replicated once`,
    longOnly,
    async () => {
      await using replica = await startReplica(b, replicaArgs, { env });
      const p = await primary(replica.port, {
        count: 300,
        reconnect: 5,
        reconnectDelayMs: 200,
        faultPlan: JSON.stringify(plan),
      });
      replica.stop();
      const r: ReplicaReport = await replica.report();
      assert.equal(p.code, 0, `the primary failed: ${p.json.result.failure}`);
      assert.equal(p.json.result.acked, 300);
      assert.equal(p.json.result.inOrder, true);
      // The logs in flight at the break are resent, or proven held by the new WELCOME.
      assert.equal(p.json.stats.recoveries, 1, "one recovery: suspend, reconnect, first ack");
      assert.ok(r.sessions >= 2, `a second session replaced the first (${r.sessions})`);
      assert.equal(
        r.accepted,
        300,
        "each log accepted once: resends of held logs were not re-applied",
      );
      assert.deepEqual(r.digest, p.json.digest, "the replica holds exactly what was acked");
    },
  );
}

Deno.test(
  "a dropped ack: the ack timeout replaces the session and the WELCOME proves the log was replicated",
  longOnly,
  async () => {
    await using replica = await startReplica(b, {
      ...replicaArgs,
      faultPlan: JSON.stringify({ replica: { dropAck: 30 } }),
    }, { env });
    const p = await primary(replica.port, {
      count: 120,
      depth: 1,
      ackTimeoutMs: 1500,
      reconnect: 5,
      reconnectDelayMs: 200,
    });
    replica.stop();
    const r: ReplicaReport = await replica.report();
    assert.equal(p.code, 0, `the primary failed: ${p.json.result.failure}`);
    assert.equal(p.json.result.acked, 120);
    assert.ok(r.sessions >= 2, "the silent replica was given up on and reconnected to");
    assert.equal(r.accepted, 120);
    assert.deepEqual(r.digest, p.json.digest);
  },
);

Deno.test(
  "a replica killed after persisting log 50, before its ack: no log it did not ack is reported replicated",
  longOnly,
  async () => {
    await using replica = await startReplica(b, {
      ...replicaArgs,
      faultPlan: JSON.stringify({ replica: { kill: { seq: 50, point: "after-persist" } } }),
    }, { env });
    const p = await primary(replica.port, { count: 300 });
    const died = await replica.report().then(() => "reported", (e) => (e as Error).message);
    assert.match(died, /printed no report/, "the replica died without a report (SIGKILL)");
    assert.equal(p.code, 1, "the primary reports the failure");
    assert.ok(p.json.result.failure, "the session failure is named");
    assert.ok(
      p.json.result.acked >= 1 && p.json.result.acked <= 49,
      `acked ${p.json.result.acked}: only logs before the killed one`,
    );
    assert.equal(p.json.digest.count, p.json.result.acked);
  },
);

Deno.test("a replica restarted empty after a kill: the primary refuses its WELCOME instead of losing acked logs", async () => {
  const first = await startReplica(b, {
    ...replicaArgs,
    faultPlan: JSON.stringify({ replica: { kill: { seq: 50, point: "after-ack" } } }),
  }, { env });
  const port = first.port;
  const run = primary(port, { count: 300, reconnect: 40, reconnectDelayMs: 250 });
  await first.ended();
  await using second = await startReplica(b, { ...replicaArgs, port }, { env });
  const p = await run;
  assert.equal(p.code, 1);
  assert.match(p.json.result.failure ?? "", /state is impossible/);
  assert.ok(p.json.result.acked >= 50, "the logs acked before the kill stay acked");
  second.stop();
});

Deno.test(
  "a primary killed right after posting log 30: the replica ends the session cleanly and holds what arrived",
  longOnly,
  async () => {
    await using replica = await startReplica(b, { ...replicaArgs, once: true }, { env });
    const p = await runPrimary({ from: a, to: b, port: replica.port }, {
      ring: "1m",
      depth: 4,
      count: 200,
      faultPlan: JSON.stringify({ primary: { kill: { seq: 30 } } }),
    }, { env, timeoutMs }).catch((e) => e as Error);
    assert.ok(p instanceof Error, "the primary died without a report");
    const r: ReplicaReport = await replica.report();
    assert.ok(r.accepted >= 29 && r.accepted <= 30, `the replica accepted ${r.accepted}`);
    assert.equal(r.digest.count, r.accepted);
  },
);

Deno.test("a replica killed and restarted at once from its write cache: a primary reconnecting for 60 s (doubling waits, jitter) outlasts the restart and every log is replicated once", async () => {
  const dir = await Deno.makeTempDir({ dir: "/dev/shm", prefix: "rrl-fault-test-" });
  try {
    const cacheArgs = { ring: "1m", cache: `${dir}/replica.cache` };
    const first = await startReplica(b, {
      ...cacheArgs,
      faultPlan: JSON.stringify({ replica: { kill: { seq: 30, point: "after-persist" } } }),
    }, { env });
    const port = first.port;
    // A replica with a cache retains every log until a RELEASE, which cmd/primary.ts never
    // sends: the run must fit in its ring (60 x 4 KiB in 1 MiB).
    const run = primary(port, { count: 60, size: "4k", reconnectFor: 60_000 });
    await first.ended();
    // Restarted at once: its Deno start alone takes seconds in the lab VM.
    const restarted = performance.now();
    await using second = await startReplica(b, { ...cacheArgs, port, once: true }, { env });
    const restartMs = performance.now() - restarted;
    const p = await run;
    console.log(
      `replica back after ${Math.round(restartMs)} ms; primary: ${p.json.result.failure ?? "ok"}`,
    );
    assert.equal(p.code, 0, `the primary failed: ${p.json.result.failure}`);
    assert.equal(p.json.result.acked, 60);
    const r: ReplicaReport = await second.report();
    assert.equal(r.nextSeq, 61, "the restarted replica holds every log");
    assert.ok(r.accepted >= 30 && r.accepted <= 31, `it accepted the rest (${r.accepted})`);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("host cache service: the replica is killed at log 100 and restarted from its write cache; the service reconnects, resends, and every write completes correctly", async () => {
  const dir = await Deno.makeTempDir({ dir: "/dev/shm", prefix: "rrl-fault-test-" });
  try {
    const cacheArgs = { ring: "4m", cache: `${dir}/replica.cache` };
    const first = await startReplica(b, {
      ...cacheArgs,
      faultPlan: JSON.stringify({ replica: { kill: { seq: 100, point: "after-persist" } } }),
    }, { env });
    const port = first.port;
    const run = runCache({ from: a, to: b, port }, {
      cache: `${dir}/primary.cache`,
      backing: `${dir}/backing.img`,
      ring: "4m",
      capacity: "16m",
      count: 400,
      size: "4k:50,16k:30,64k:20",
      depth: 8,
      flushEvery: 50,
      seed: 21,
      reconnectFor: 60_000,
      reconnectDelayMs: 250,
    }, { env, timeoutMs });
    await first.ended();
    await using second = await startReplica(b, { ...cacheArgs, port, once: true }, { env });
    const out = await run;
    const host = out.report;
    const r: ReplicaReport = await second.report();
    assert.equal(out.code, 0, `the host run failed: ${JSON.stringify(host.result.failures)}`);
    assert.equal(host.result.writesOk, 400);
    assert.equal(host.result.orderViolations, 0, "no write completed before its ack");
    assert.equal(host.result.readMismatches, 0);
    assert.equal(host.result.backingMismatches, 0, "the backing store equals the image");
    assert.ok(host.replication.resends > 0, "the logs the dead replica never acked were resent");
    assert.ok(
      r.accepted >= 300 && r.accepted <= 301,
      `the restarted replica accepted ${r.accepted}`,
    );
  } finally {
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
});

/** Runs `argv` in `end`'s namespace; throws with its stderr when it fails. */
async function sh(end: typeof a, argv: string[]): Promise<string> {
  const full = inNamespace(end, argv);
  const out = await new Deno.Command(full[0], { args: full.slice(1), stdin: "null" }).output();
  const text = new TextDecoder().decode(out.stdout);
  if (!out.success) {
    throw new Error(`${argv.join(" ")}: ${new TextDecoder().decode(out.stderr).trim()}`);
  }
  return text;
}

/** One of rxe's hardware counters of `end`'s device (`rdma statistic show link DEV/1`). */
async function rxeCounter(end: typeof a, name: string): Promise<number> {
  const text = await sh(end, ["rdma", "statistic", "show", "link", `${end.device}/1`]);
  const match = new RegExp(`\\s${name} (\\d+)`).exec(text);
  if (!match) throw new Error(`rdma statistic has no counter ${name}: ${text}`);
  return Number(match[1]);
}

Deno.test({
  name:
    "netem loss 3%, duplication 1%, corruption 1% and reordering on the primary's link: rxe retransmits, every log arrives intact",
  ignore: topology.kind !== "pair" || longOnly.ignore,
  async fn() {
    await sh(a, ["modprobe", "sch_netem"]).catch(() => ""); // built in on some kernels
    await using replica = await startReplica(b, replicaArgs, { env });
    const before = await rxeCounter(a, "completer_retry_err");
    await sh(a, [
      "tc",
      "qdisc",
      "add",
      "dev",
      a.netdev,
      "root",
      "netem",
      "delay",
      "1ms",
      "loss",
      "3%",
      "duplicate",
      "1%",
      "corrupt",
      "1%",
      "reorder",
      "10%",
    ]);
    try {
      const p = await primary(replica.port, { count: 300, qpTimeout: 12 });
      replica.stop();
      const r: ReplicaReport = await replica.report();
      assert.equal(p.code, 0, `the primary failed: ${p.json.result.failure}`);
      assert.equal(p.json.result.acked, 300);
      assert.equal(r.accepted, 300);
      assert.deepEqual(r.refused, {}, "no corrupted log got past rxe's ICRC and our CRC32C");
      assert.deepEqual(r.digest, p.json.digest);
      const after = await rxeCounter(a, "completer_retry_err");
      assert.ok(after > before, `rxe retransmitted (completer_retry_err ${before} -> ${after})`);
    } finally {
      await sh(a, ["tc", "qdisc", "del", "dev", a.netdev, "root"]);
    }
  },
});

// Each RNR test has one outcome it must reach: a check that passed on either outcome could
// not fail.
Deno.test("a replica short of RECVs and stalled: rxe sends RNR NAKs and a primary without RNR retries fails with the RNR error, in bounded time, nothing unaccepted counted acked", async () => {
  await using replica = await startReplica(b, {
    ...replicaArgs,
    faultPlan: JSON.stringify({ replica: { recvSlots: 2, stall: { seq: 1, ms: 3000 } } }),
  }, { env });
  const before = await rxeCounter(a, "rcvd_rnr_err");
  const p = await primary(replica.port, { count: 40, size: "4k", rnrRetry: 0 });
  const after = await rxeCounter(a, "rcvd_rnr_err");
  replica.stop();
  const r: ReplicaReport = await replica.report();
  assert.ok(after > before, `the primary's QP received RNR NAKs (${before} -> ${after})`);
  assert.equal(p.code, 1, "the primary failed");
  assert.match(p.json.result.failure ?? "", /RNR/);
  assert.ok(p.json.result.acked <= r.accepted);
});

Deno.test(
  "a replica posting 2 RECVs for a primary 8 deep: rxe sends RNR NAKs, and with reconnect every log is replicated once (retried by rxe or resent on a new session)",
  longOnly,
  async () => {
    await using replica = await startReplica(b, {
      ...replicaArgs,
      faultPlan: JSON.stringify({ replica: { recvSlots: 2 } }),
    }, { env });
    const before = await rxeCounter(a, "rcvd_rnr_err");
    const p = await primary(replica.port, { count: 200, size: "4k", reconnect: 3 });
    const after = await rxeCounter(a, "rcvd_rnr_err");
    replica.stop();
    const r: ReplicaReport = await replica.report();
    assert.ok(after > before, `the primary's QP received RNR NAKs (${before} -> ${after})`);
    assert.equal(p.code, 0, `the primary failed: ${p.json.result.failure}`);
    assert.equal(p.json.result.acked, 200);
    assert.equal(r.accepted, 200);
    assert.deepEqual(r.digest, p.json.digest);
  },
);
