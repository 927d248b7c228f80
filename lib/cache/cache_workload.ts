/**
 * A workload like fio's `randwrite` with `verify`, through the virtual NVMe controller:
 * writes of mixed sizes at overlapping random LBAs, `depth` commands in flight, a Flush
 * every N writes. For every write it checks, when it sees the command complete, that the
 * replica's OK ack of its bytes was already handled, as witnessed below the service by
 * the replication layer ({@linkcode AckWitness}), and that no failed write was acked: no
 * command completed with success before its ack, or without one. At the end it
 * drains the de-stager, reads the whole namespace back through the controller, and
 * compares it and the backing store with the image the workload expects.
 *
 * @module
 */
import { LatencyRecorder, type LatencySummary } from "../bench/summary.ts";
import { DataFiller, plannedOp, type SizeMix, WorkloadPlan } from "../bench/workload.ts";
import { deriveSeed } from "../prng.ts";
import type { NvmeHost } from "../nvme/host.ts";
import { statusIsSuccess } from "../nvme/status.ts";
import type { AckWitness } from "./ack_witness.ts";
import type { ExpectedImage } from "./expected_image.ts";
import type { HostCacheService } from "./service.ts";
import { blockBytes } from "../block.ts";

/** Options of {@linkcode runCacheWorkload}. */
export interface CacheWorkloadOptions {
  host: NvmeHost;
  /** The service under test: only drained at the end. */
  service: Pick<HostCacheService, "drain">;
  /** The replica's acks, fed by the replication layer (`onAcked` of the service's options). */
  acks: AckWitness;
  /** The image the workload expects, kept by the service's `onCommit`. */
  image: ExpectedImage;
  count: number;
  sizes: SizeMix;
  /** Commands in flight. */
  depth: number;
  seed: number;
  /** Number of the first op (its stamp); a restarted run continues after the ops before it. */
  firstOp?: number;
  /** A Flush after every N writes (0: none). */
  flushEvery: number;
  /** Read everything back through the controller and compare at the end. */
  verify: boolean;
  /** Also drain the de-stager and compare the backing store (false: leave logs in the caches). */
  drain: boolean;
  backingPath: string;
  onProgress?: (done: number) => void;
}

/** What the run did and proved. */
export interface CacheWorkloadResult {
  writes: number;
  writesOk: number;
  writesFailed: number;
  flushes: number;
  /** Writes that completed with success before their ack (or with none), or failed although acked. */
  orderViolations: number;
  firstViolation?: string;
  /** The failed writes: their op number and NVMe status (at most 100 listed). */
  failures: { op: number; lba: number; status: number }[];
  /** Blocks read back through the controller that differ from the image (-1: not verified). */
  readMismatches: number;
  /** Blocks of the backing store that differ from the image after the final drain (-1: not compared or not drained). */
  backingMismatches: number;
  commitLatency: LatencySummary;
  elapsedMs: number;
}

const readChunkBlocks = 256;

/** Runs the workload to its end. */
export async function runCacheWorkload(o: CacheWorkloadOptions): Promise<CacheWorkloadResult> {
  const blocks = o.image.blocks;
  const firstOp = o.firstOp ?? 0;
  const plan = new WorkloadPlan({
    sizes: o.sizes,
    pattern: { kind: "random" },
    lbaBlocks: blocks,
    seed: firstOp === 0 ? o.seed : deriveSeed(o.seed, firstOp),
  });
  const filler = new DataFiller(o.seed);
  const largest = Math.max(...o.sizes.sizes);
  const latency = new LatencyRecorder();
  const op = plannedOp();
  const result = {
    writes: 0,
    writesOk: 0,
    writesFailed: 0,
    flushes: 0,
    orderViolations: 0,
    firstViolation: undefined as string | undefined,
    failures: [] as { op: number; lba: number; status: number }[],
  };
  const started = performance.now();
  let submitted = 0;
  const worker = async () => {
    const buffer = new Uint8Array(new ArrayBuffer(largest)); // valid until the command completes
    while (submitted < o.count) {
      plan.next(op);
      const { bytes, lba } = op;
      const seq = op.seq + firstOp;
      submitted++;
      const data = buffer.subarray(0, bytes);
      filler.fill(data, 0, bytes, seq, lba);
      const t0 = performance.now();
      const cqe = await o.host.submit(
        { opcode: 0x01, nsid: 1, slba: lba, nlb: bytes / blockBytes - 1 },
        data,
      );
      const completedAt = performance.now();
      // Now, as the completion is seen: was the replica's ack of these bytes handled?
      const acked = o.acks.take(lba, data);
      result.writes++;
      if (statusIsSuccess(cqe.status)) {
        result.writesOk++;
        latency.record((completedAt - t0) * 1000, bytes);
        if (!acked) {
          result.orderViolations++;
          result.firstViolation ??= `write ${seq} (LBA ${lba}) completed with success at ${
            completedAt.toFixed(3)
          } ms before the replica's ack of its data (or without one)`;
        }
      } else {
        result.writesFailed++;
        if (result.failures.length < 100) {
          result.failures.push({ op: seq, lba, status: cqe.status });
        }
        if (acked) {
          result.orderViolations++;
          result.firstViolation ??=
            `write ${seq} failed (status ${cqe.status}) although the replica acked its data`;
        }
      }
      if (o.flushEvery > 0 && result.writes % o.flushEvery === 0) {
        result.flushes++;
        await o.host.submit({ opcode: 0x00, nsid: 1 });
      }
      o.onProgress?.(result.writes);
    }
  };
  await Promise.all(Array.from({ length: o.depth }, worker));
  const elapsedMs = performance.now() - started;
  let readMismatches = -1;
  let backingMismatches = -1;
  if (o.verify) {
    // Read back first, while the write cache still holds recent logs (both read paths).
    readMismatches = await compareByReads(o.host, o.image);
    // A drain that fails (de-staging stopped) leaves -1: the service's firstFailure says why.
    if (o.drain && await o.service.drain().then(() => true, () => false)) {
      backingMismatches = await compareFile(o.backingPath, o.image);
    }
  }
  return {
    ...result,
    readMismatches,
    backingMismatches,
    commitLatency: latency.summary(Math.max(elapsedMs, 0.001)),
    elapsedMs,
  };
}

async function compareByReads(host: NvmeHost, image: ExpectedImage): Promise<number> {
  const into = new Uint8Array(new ArrayBuffer(readChunkBlocks * blockBytes));
  const want = new Uint8Array(new ArrayBuffer(readChunkBlocks * blockBytes));
  let bad = 0;
  for (let lba = 0; lba < image.blocks; lba += readChunkBlocks) {
    const n = Math.min(readChunkBlocks, image.blocks - lba);
    const cqe = await host.submit(
      { opcode: 0x02, nsid: 1, slba: lba, nlb: n - 1 },
      into.subarray(0, n * blockBytes),
    );
    if (!statusIsSuccess(cqe.status)) return Infinity;
    for (let k = 0; k < n; k++) image.block(lba + k, want, k * blockBytes);
    bad += mismatchedBlocks(into.subarray(0, n * blockBytes), want.subarray(0, n * blockBytes));
  }
  return bad;
}

async function compareFile(path: string, image: ExpectedImage): Promise<number> {
  using file = await Deno.open(path);
  const chunk = new Uint8Array(readChunkBlocks * blockBytes);
  const want = new Uint8Array(readChunkBlocks * blockBytes);
  let bad = 0;
  for (let lba = 0; lba < image.blocks; lba += readChunkBlocks) {
    const n = Math.min(readChunkBlocks, image.blocks - lba);
    const length = n * blockBytes;
    let got = 0;
    while (got < length) {
      const read = await file.read(chunk.subarray(got, length));
      if (read === null) break;
      got += read;
    }
    for (let k = 0; k < n; k++) image.block(lba + k, want, k * blockBytes);
    bad += mismatchedBlocks(chunk.subarray(0, length), want.subarray(0, length)) +
      (length - got) / blockBytes;
  }
  return bad;
}

function mismatchedBlocks(a: Uint8Array, b: Uint8Array): number {
  const wa = new Uint32Array(a.buffer, a.byteOffset, a.length / 4);
  const wb = new Uint32Array(b.buffer, b.byteOffset, b.length / 4);
  let bad = 0;
  for (let block = 0; block < wa.length; block += 1024) {
    for (let i = block; i < block + 1024; i++) {
      if (wa[i] !== wb[i]) {
        bad++;
        break;
      }
    }
  }
  return bad;
}
