/**
 * The main demo: the replica (with its write cache) in one namespace, the host cache
 * service behind a virtual NVMe controller in the other, a fio-like randwrite + verify
 * workload; then, like a recovery, the replica's write cache is scanned and its retained
 * logs applied to the backing store, and the result must equal the image the workload
 * expects, byte for byte.
 *
 * @module
 */
import { BackingStore } from "../cache/backing_store.ts";
import { sha256OfBlocks } from "../cache/expected_image.ts";
import { WriteCache } from "../cache/write_cache.ts";
import { parseBytes } from "../bench/workload.ts";
import { randomSecret } from "./processes.ts";
import { readTopology, type Topology } from "./topology.ts";
import type { ProofLine } from "./demo.ts";
import type { CacheReport } from "../tools/cache.ts";
import { runCache, startReplica } from "../tools/lab.ts";
import type { ReplicaReport } from "../tools/replica.ts";

/** Options of {@linkcode runCacheDemo}. */
export interface CacheDemoOptions {
  count: number;
  sizes: string;
  depth: number;
  seed: number;
  ring: string;
  capacity: string;
  timeoutMs: number;
}

/** What the demo measured and proved. */
export interface CacheDemoResult {
  topology: Topology;
  host: CacheReport;
  replica: ReplicaReport;
  retained: {
    destagedSeq: number;
    logs: number;
    firstSeq: number;
    lastSeq: number;
    refused: number;
  };
  backingSha256: string;
  proof: ProofLine[];
  ok: boolean;
}

/** Runs the demo; throws when a side cannot run at all. */
export async function runCacheDemo(o: CacheDemoOptions): Promise<CacheDemoResult> {
  const topology = readTopology();
  if (!topology) throw new Error("No Soft-RoCE topology is up: run the demo with 'deno task demo'");
  const { a, b } = topology;
  const dir = (await exists("/dev/shm")) ? "/dev/shm" : await Deno.makeTempDir();
  const paths = {
    replicaCache: `${dir}/rrl-demo-replica.cache`,
    hostCache: `${dir}/rrl-demo-primary.cache`,
    backing: `${dir}/rrl-demo-backing.img`,
  };
  for (const p of Object.values(paths)) await Deno.remove(p).catch(() => {});
  const env = { RRL_SECRET: randomSecret() };
  await using replica = await startReplica(b, {
    ring: o.ring,
    slots: Math.max(64, o.depth + 2),
    once: true,
    cache: paths.replicaCache,
  }, { env });
  const host = await runCache({ from: a, to: b, port: replica.port }, {
    count: o.count,
    size: o.sizes,
    depth: o.depth,
    seed: o.seed,
    ring: o.ring,
    capacity: o.capacity,
    cache: paths.hostCache,
    backing: paths.backing,
    flushEvery: 100,
    drain: false,
  }, { env, timeoutMs: o.timeoutMs });
  const replicaStats = await replica.report();
  const blocks = parseBytes(o.capacity, "--capacity") / 4096;
  const { retained, backingSha256 } = await recoverFromReplica(paths, blocks);
  const proof = prove(o, host.report, replicaStats, retained, backingSha256);
  return {
    topology,
    host: host.report,
    replica: replicaStats,
    retained,
    backingSha256,
    proof,
    ok: proof.every((p) => p.ok),
  };
}

/** Scans the replica's write cache and applies its retained logs, in seq order, to the backing store. */
async function recoverFromReplica(
  paths: { replicaCache: string; backing: string },
  blocks: number,
) {
  using cache = WriteCache.open({ path: paths.replicaCache, role: "replica" });
  const scan = cache.scan();
  using backing = BackingStore.open({ path: paths.backing, capacityBlocks: blocks });
  for (const log of scan.logs) {
    if (log.flags !== 0) continue; // a SKIP: no data
    backing.writeFrom(log.lba, cache.data.address + log.dataOffset, log.dataLength);
  }
  backing.sync();
  const backingSha256 = await sha256OfBlocks(
    blocks,
    (lba, n, into) => backing.read(lba, into.subarray(0, n * 4096)),
  );
  return {
    retained: {
      destagedSeq: scan.destagedSeq,
      logs: scan.logs.length,
      firstSeq: scan.logs[0]?.seq ?? 0,
      lastSeq: scan.logs.at(-1)?.seq ?? scan.destagedSeq,
      refused: scan.refused.length,
    },
    backingSha256,
  };
}

function prove(
  o: CacheDemoOptions,
  host: CacheReport,
  replica: ReplicaReport,
  retained: CacheDemoResult["retained"],
  backingSha256: string,
): ProofLine[] {
  const r = host.result;
  const d = host.digest;
  const wraps = Math.floor(host.replication.writePos / parseBytes(o.ring, "--ring"));
  return [
    {
      ok: r.writesOk === o.count && r.writesFailed === 0,
      text:
        `${r.writesOk} of ${o.count} NVMe writes completed with success, ${r.flushes} flushes, through ${wraps} wraps of a ${o.ring} ring`,
    },
    {
      ok: r.orderViolations === 0,
      text:
        `no command completed before its replica's ack (timeline of ${r.writes} writes): ${r.orderViolations} violations`,
    },
    {
      ok: r.readMismatches === 0,
      text:
        `reads through the controller (write cache first, backing store second) equal the expected image: ${r.readMismatches} mismatched blocks`,
    },
    {
      ok: replica.accepted === d.count && replica.digest.digest === d.digest,
      text:
        `the replica accepted exactly the ${d.count} acked logs: digest primary ${d.digest}, replica ${replica.digest.digest}`,
    },
    {
      ok: retained.refused === 0 && retained.lastSeq === d.lastSeq &&
        (retained.logs === 0 || retained.firstSeq === retained.destagedSeq + 1),
      text:
        `the replica's write cache holds every acked log not yet de-staged: seqs ${retained.firstSeq}..${retained.lastSeq} (${retained.logs} logs, data CRC32C checked; de-staged through ${retained.destagedSeq}; the primary de-staged through ${host.destagedSeq})`,
    },
    {
      ok: backingSha256 === host.imageSha256,
      text:
        `backing store + the replica's retained logs, applied in order, equal the expected image byte for byte: SHA-256 ${
          backingSha256.slice(0, 16)
        }… ${backingSha256 === host.imageSha256 ? "=" : "≠"} ${
          String(host.imageSha256).slice(0, 16)
        }…`,
    },
  ];
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch {
    return false;
  }
}
