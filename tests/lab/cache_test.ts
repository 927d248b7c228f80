/**
 * The host cache service on rdma_rxe: a virtual NVMe controller in namespace A whose
 * writes are replicated to a replica (with its own write cache) in namespace B before they
 * complete, then de-staged.
 */
import assert from "node:assert/strict";
import { randomSecret } from "../../lib/lab/processes.ts";
import type { CacheCommandOptions, CacheReport } from "../../lib/tools/cache.ts";
import { runCache, startReplica } from "../../lib/tools/lab.ts";
import type { ReplicaCommandOptions, ReplicaReport } from "../../lib/tools/replica.ts";
import {
  GenericStatusCode,
  MediaStatusCode,
  nvmeStatus,
  StatusCodeType,
} from "../../lib/nvme/status.ts";
import { checkRun } from "../../lib/repro/check.ts";
import { longOnly } from "./support/long.ts";
import { labTopology } from "./support/verbs_pair.ts";

const topology = labTopology();
const { a, b } = topology;
const env = { RRL_SECRET: randomSecret() };
let run = 0;

async function cacheRun(
  replicaArgs: Partial<ReplicaCommandOptions>,
  hostArgs: Partial<CacheCommandOptions>,
): Promise<{ code: number; host: CacheReport; replica: ReplicaReport }> {
  const dir = await Deno.makeTempDir({ dir: "/dev/shm", prefix: "rrl-cache-test-" });
  try {
    await using replica = await startReplica(b, {
      once: true,
      cache: `${dir}/replica.cache`,
      ...replicaArgs,
    }, { env });
    const out = await runCache({ from: a, to: b, port: replica.port }, {
      cache: `${dir}/primary.cache`,
      backing: `${dir}/backing-${run++}.img`,
      ...hostArgs,
    }, { env, timeoutMs: 240_000 });
    return { code: out.code, host: out.report, replica: await replica.report() };
  } finally {
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

Deno.test("random writes, reads and flushes match the expected image; no command completes before its ack", async () => {
  const { code, host, replica } = await cacheRun({ ring: "4m" }, {
    ring: "4m",
    capacity: "16m",
    count: 1500,
    size: "4k:50,16k:30,64k:20",
    depth: 16,
    flushEvery: 50,
    seed: 11,
  });
  const r = host.result;
  assert.equal(code, 0);
  assert.equal(r.writesOk, 1500);
  assert.equal(r.flushes, 30);
  assert.equal(r.orderViolations, 0, r.firstViolation ?? "");
  assert.equal(r.readMismatches, 0, "reads (cache first, backing second) see the newest data");
  assert.equal(
    r.backingMismatches,
    0,
    "after draining, the backing store equals the image byte for byte",
  );
  assert.ok(
    host.stats.readBlocksFromCache > 0 && host.stats.readBlocksFromBacking > 0,
    "both read paths were used",
  );
  assert.equal(host.stats.destage.destagedLogs, 1500);
  assert.equal(replica.accepted, 1500);
  assert.deepEqual(replica.digest, host.digest, "the replica holds what was acked");
});

Deno.test("a full cache makes writes wait (backpressure in stats) and never overwrites un-de-staged logs", async () => {
  const { code, host } = await cacheRun({ ring: "256k" }, {
    ring: "256k",
    capacity: "8m",
    count: 400,
    size: "64k",
    depth: 16,
    flushEvery: 0,
    seed: 12,
  });
  assert.equal(code, 0);
  assert.equal(host.result.writesOk, 400);
  assert.ok(
    host.replication.admissionWaits > 0,
    `writes waited for room (${host.replication.admissionWaits})`,
  );
  assert.ok(
    host.replication.maxAheadBytes <= 262144,
    "never more than the ring ahead of the replica's release",
  );
  assert.equal(host.replication.admissionTimeouts, 0);
  assert.equal(host.result.readMismatches, 0, "nothing un-de-staged was overwritten");
  assert.equal(host.result.backingMismatches, 0);
});

Deno.test(
  "a replica answering CRC_MISMATCH fails that write with an error status; nothing reports success",
  longOnly,
  async () => {
    const { code, host, replica } = await cacheRun({ ring: "4m", fault: "7:CRC_MISMATCH" }, {
      ring: "4m",
      capacity: "8m",
      count: 60,
      size: "16k",
      depth: 4,
      flushEvery: 20,
      seed: 13,
    });
    const r = host.result;
    assert.equal(code, 1, "the run reports the failure");
    assert.equal(r.writesFailed, 1);
    assert.equal(r.writesOk, 59);
    assert.equal(
      r.failures[0].status,
      nvmeStatus(0, GenericStatusCode.dataTransferError, { dnr: true }),
      "Data Transfer Error, do not retry",
    );
    assert.equal(r.orderViolations, 0, "the failed write has no ack and did not report success");
    assert.equal(
      r.readMismatches,
      0,
      "the failed write is nowhere: reads match the image without it",
    );
    assert.equal(r.backingMismatches, 0);
    assert.equal(replica.refused.CRC_MISMATCH, 1);
    assert.equal(replica.accepted, 59);
    assert.deepEqual(replica.digest, host.digest);
  },
);

async function sh(argv: string[]): Promise<void> {
  const out = await new Deno.Command(argv[0], { args: argv.slice(1), stderr: "piped" }).output();
  if (!out.success) {
    throw new Error(`${argv.join(" ")}: ${new TextDecoder().decode(out.stderr).trim()}`);
  }
}

Deno.test("a backing store that fills up fails later writes with Write Fault and names ENOSPC; acked writes stay safe and a restart on a healthy store de-stages them", async () => {
  const dir = await Deno.makeTempDir({ dir: "/dev/shm", prefix: "rrl-cache-test-" });
  const small = `${dir}/small`;
  await Deno.mkdir(small);
  await sh(["mount", "-t", "tmpfs", "-o", "size=512k", "tmpfs", small]);
  try {
    // Sparse and larger than its file system: de-staging fills it (ENOSPC), writes do not.
    const backing = `${small}/backing.img`;
    await Deno.writeFile(backing, new Uint8Array());
    await Deno.truncate(backing, 16 << 20);
    const seed = 14;
    const completions = `${dir}/completions.log`;
    const host = (more: Partial<CacheCommandOptions>, port: number) =>
      runCache({ from: a, to: b, port }, {
        cache: `${dir}/primary.cache`,
        backing,
        ring: "4m",
        capacity: "16m",
        size: "16k",
        depth: 8,
        flushEvery: 0,
        seed,
        completions,
        ...more,
      }, { env, timeoutMs: 240_000 });
    const replicaArgs = { once: true, ring: "4m", cache: `${dir}/replica.cache` };

    // Run 1: de-staging starts at half the ring (2 MiB) and fails in the 512 KiB file system.
    let first: Awaited<ReturnType<typeof host>>;
    let replicaStats: ReplicaReport;
    {
      await using replica = await startReplica(b, replicaArgs, { env });
      first = await host({ count: 300 }, replica.port);
      replicaStats = await replica.report();
    }
    const h = first.report;
    const r = h.result;
    assert.equal(first.code, 1, "the run reports the failure");
    assert.match(
      h.firstFailure ?? "",
      /^Backing store pwrite failed: ENOSPC \(.*\) at LBA \d+ of .*\/small\/backing\.img/,
      "the first cause names the call, the errno, the LBA and the file",
    );
    assert.ok(r.writesOk > 0 && r.writesFailed > 0, `${r.writesOk} ok, ${r.writesFailed} failed`);
    assert.equal(r.writesOk + r.writesFailed, 300, "every write completed: none hung");
    const writeFault = nvmeStatus(
      StatusCodeType.mediaAndDataIntegrity,
      MediaStatusCode.writeFault,
      { dnr: true },
    );
    for (const f of r.failures) assert.equal(f.status, writeFault, `op ${f.op}: Write Fault, DNR`);
    assert.equal(r.orderViolations, 0, r.firstViolation ?? "");
    assert.equal(r.readMismatches, 0, "every acked write reads back (from the write cache)");
    assert.equal(r.backingMismatches, -1, "the final drain failed: not compared");
    assert.ok(h.stats.destage.destagedSeq < h.digest.lastSeq, "acked logs are not de-staged");
    assert.equal(replicaStats.accepted, r.writesOk);
    assert.deepEqual(replicaStats.digest, h.digest, "the replica holds every acked write");
    const safe = await checkRun({
      seed,
      capacityBlocks: 4096,
      issued: [{ first: 0, count: 300 }],
      completions: await Deno.readTextFile(completions),
      backingPath: backing,
      replicaCache: { path: `${dir}/replica.cache`, ringBytes: 4 << 20 },
      rejectedSeqs: new Set(),
      cleanEnd: false,
    });
    assert.equal(safe.logsAcked, r.writesOk);
    assert.equal(safe.verdict, "pass", JSON.stringify(safe.violations));

    // Run 2: the same file on a grown file system; the restart de-stages what was left.
    await sh(["mount", "-o", "remount,size=64m", small]);
    let second: Awaited<ReturnType<typeof host>>;
    {
      await using replica = await startReplica(b, replicaArgs, { env });
      second = await host({ recover: true, verify: false, firstOp: 300, count: 1 }, replica.port);
      await replica.report();
    }
    const h2 = second.report;
    assert.equal(second.code, 0, h2.firstFailure ?? "");
    assert.equal(h2.firstFailure, undefined, "the restart de-staged everything (drain at close)");
    const final = await checkRun({
      seed,
      capacityBlocks: 4096,
      issued: [{ first: 0, count: 300 }, { first: 300, count: 1 }],
      completions: await Deno.readTextFile(completions),
      backingPath: backing,
      rejectedSeqs: new Set(),
      cleanEnd: true,
    });
    assert.equal(final.logsAcked, r.writesOk + 1);
    assert.equal(final.backingMismatches, 0, JSON.stringify(final.violations));
    assert.equal(final.verdict, "pass", JSON.stringify(final.violations));
  } finally {
    await sh(["umount", small]).catch(() => {});
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
});
