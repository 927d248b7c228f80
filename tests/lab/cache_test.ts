/**
 * The host cache service on rdma_rxe: a virtual NVMe controller in namespace A whose
 * writes are replicated to a replica (with its own write cache) in namespace B before they
 * complete, then de-staged.
 */
import assert from "node:assert/strict";
import { randomSecret, runTool, startReplica } from "../../lib/lab/processes.ts";
import { GenericStatusCode, nvmeStatus } from "../../lib/nvme/status.ts";
import { labTopology } from "./support/verbs_pair.ts";

const topology = labTopology();
const { a, b } = topology;
const env = { RRL_SECRET: randomSecret() };
let run = 0;

async function cacheRun(
  replicaArgs: string[],
  hostArgs: string[],
  // deno-lint-ignore no-explicit-any
): Promise<{ code: number; host: any; replica: any }> {
  const dir = await Deno.makeTempDir({ dir: "/dev/shm", prefix: "rrl-cache-test-" });
  try {
    await using replica = await startReplica(b, [
      "--once",
      "--json",
      "--cache",
      `${dir}/replica.cache`,
      ...replicaArgs,
    ], env);
    const out = await runTool(a, "cmd/cache.ts", [
      "--device",
      a.device,
      "--host",
      b.address,
      "--port",
      String(replica.port),
      "--cache",
      `${dir}/primary.cache`,
      "--backing",
      `${dir}/backing-${run++}.img`,
      "--json",
      ...hostArgs,
    ], { env, timeoutMs: 240_000 });
    return { code: out.code, host: out.json, replica: await replica.result() };
  } finally {
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

Deno.test("random writes, reads and flushes match the expected image; no command completes before its ack", async () => {
  const { code, host, replica } = await cacheRun(["--ring", "4m"], [
    "--ring",
    "4m",
    "--capacity",
    "16m",
    "-n",
    "1500",
    "-s",
    "4k:50,16k:30,64k:20",
    "-q",
    "16",
    "--flush-every",
    "50",
    "--seed",
    "11",
  ]);
  const r = host.result;
  assert.equal(code, 0);
  assert.equal(r.writesOk, 1500);
  assert.equal(r.flushes, 30);
  assert.equal(r.orderViolations, 0, r.firstViolation);
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
  const { code, host } = await cacheRun(["--ring", "256k"], [
    "--ring",
    "256k",
    "--capacity",
    "8m",
    "-n",
    "400",
    "-s",
    "64k",
    "-q",
    "16",
    "--flush-every",
    "0",
    "--seed",
    "12",
  ]);
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

Deno.test("a replica answering CRC_MISMATCH fails that write with an error status; nothing reports success", async () => {
  const { code, host, replica } = await cacheRun(["--ring", "4m", "--fault", "7:CRC_MISMATCH"], [
    "--ring",
    "4m",
    "--capacity",
    "8m",
    "-n",
    "60",
    "-s",
    "16k",
    "-q",
    "4",
    "--flush-every",
    "20",
    "--seed",
    "13",
  ]);
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
});
