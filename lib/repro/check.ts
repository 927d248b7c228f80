/**
 * The invariant checker run after every scenario. From the completion log (every write the
 * guest saw complete), the backing store and the replica's persistent write cache, it
 * proves: every completed write is durable, byte for byte, on the replica's ring or in the
 * backing store, newest last (the failover image); no block holds bytes no write wrote;
 * nothing the replica rejected completed; completions came in log order, each once; and,
 * after a clean end, the backing store alone equals the image the workload expects.
 *
 * Every block a workload writes carries a stamp (op, LBA, block index) and bytes derived
 * from the seed, so a block of any image names the write it came from and can be checked
 * without a copy of the data.
 *
 * @module
 */
import { DataFiller, readStamp } from "../bench/workload.ts";
import { RecordFlags } from "../log/record.ts";
import { WriteCache } from "../cache/write_cache.ts";
import { type Completion, decodeCompletions } from "../tools/cache.ts";

const blockBytes = 4096;
/** Violations listed in a result (all are counted). */
export const violationsListed = 20;

export type { Completion };

/** One broken invariant. */
export interface Violation {
  kind:
    | "acked-but-lost"
    | "corruption"
    | "rejected-but-acked"
    | "out-of-order"
    | "completed-twice"
    | "backing-mismatch"
    | "bad-input";
  /** The block (LBA) concerned, when a block is. */
  lba?: number;
  /** The log (seq) concerned, when known. */
  seq?: number;
  /** The write (op) concerned, when known. */
  op?: number;
  detail: string;
}

/** The checker's verdict and counts. */
export interface CheckResult {
  verdict: "pass" | "fail";
  /** Writes completed with success (= logs acked to the guest). */
  logsAcked: number;
  /** Blocks whose newest completed write is missing from the failover image. */
  ackedButLost: number;
  /** Blocks holding bytes no write of the run wrote. */
  corruptions: number;
  rejectedButAcked: number;
  orderViolations: number;
  /** Blocks of the backing store that differ from the expected image (clean end only, else -1). */
  backingMismatches: number;
  /** Logs read from the replica's write cache. */
  replicaLogs: number;
  /** The first {@linkcode violationsListed} violations. */
  violations: Violation[];
}

/** What the checker reads. */
export interface CheckInput {
  /** The workload's seed (its data filler). */
  seed: number;
  capacityBlocks: number;
  /** The op numbers each primary run issued: `[first, first + count)`. */
  issued: { first: number; count: number }[];
  /** The completion log's text (`cmd/cache.ts --completions`, see `lib/tools/cache.ts`). */
  completions: string;
  backingPath: string;
  /** The replica's write cache and its ring size; absent: the backing store alone. */
  replicaCache?: { path: string; ringBytes: number };
  /** Seqs the replica answered with a non-OK status. */
  rejectedSeqs: ReadonlySet<number>;
  /** The run ended cleanly (drained): compare the backing store alone too. */
  cleanEnd: boolean;
}

/**
 * Decodes a completion log; each malformed line is a `bad-input` violation, a torn last
 * line (a kill mid-write) is not an error.
 */
export function parseCompletions(text: string, out: Violation[]): Completion[] {
  const log = decodeCompletions(text);
  for (const bad of log.malformed) {
    out.push({ kind: "bad-input", detail: `completion log line ${bad.line}: ${bad.detail}` });
  }
  return log.completions;
}

/** Runs every check; see the module documentation. */
export async function checkRun(input: CheckInput): Promise<CheckResult> {
  const violations: Violation[] = [];
  const counts = { lost: 0, corrupt: 0, rejected: 0, order: 0, backing: -1 };
  const note = (v: Violation) => {
    if (violations.length < violationsListed) violations.push(v);
  };
  const completions = parseCompletions(input.completions, violations);
  const blocks = input.capacityBlocks;
  // Newest completed op per block (completions are in seq order, checked below).
  const lastOp = new Float64Array(blocks).fill(-1);
  const lastSeq = new Float64Array(blocks).fill(-1);
  const completedOps = new Set<number>();
  let previousSeq = 0;
  for (const c of completions) {
    if (c.lba + c.blocks > blocks || c.blocks < 1) {
      note({ kind: "bad-input", seq: c.seq, op: c.op, detail: `write outside the namespace` });
      continue;
    }
    if (completedOps.has(c.op)) {
      counts.order++;
      note({ kind: "completed-twice", op: c.op, seq: c.seq, detail: `op ${c.op} completed twice` });
    }
    if (c.seq <= previousSeq) {
      counts.order++;
      note({
        kind: "out-of-order",
        op: c.op,
        seq: c.seq,
        detail: `log ${c.seq} completed after log ${previousSeq}`,
      });
    }
    if (input.rejectedSeqs.has(c.seq)) {
      counts.rejected++;
      note({
        kind: "rejected-but-acked",
        op: c.op,
        seq: c.seq,
        lba: c.lba,
        detail: `log ${c.seq} was rejected by the replica yet its write completed with success`,
      });
    }
    previousSeq = Math.max(previousSeq, c.seq);
    completedOps.add(c.op);
    for (let b = c.lba; b < c.lba + c.blocks; b++) {
      lastOp[b] = c.op;
      lastSeq[b] = c.seq;
    }
  }
  const image = new Uint8Array(blocks * blockBytes);
  await readInto(input.backingPath, image);
  const judge = blockJudge(input, lastOp, lastSeq, completedOps);
  if (input.cleanEnd) {
    counts.backing = 0;
    for (let b = 0; b < blocks; b++) {
      const v = judge(image, b);
      if (v) {
        counts.backing++;
        note({ ...v, kind: "backing-mismatch", detail: `backing store: ${v.detail}` });
      }
    }
  }
  const replicaLogs = input.replicaCache ? overlayReplica(input.replicaCache, image) : 0;
  for (let b = 0; b < blocks; b++) {
    const v = judge(image, b);
    if (!v) continue;
    if (v.kind === "corruption") counts.corrupt++;
    else counts.lost++;
    note(v);
  }
  const bad = counts.lost + counts.corrupt + counts.rejected + counts.order +
    Math.max(0, counts.backing) + violations.filter((v) => v.kind === "bad-input").length;
  return {
    verdict: bad === 0 ? "pass" : "fail",
    logsAcked: completions.length,
    ackedButLost: counts.lost,
    corruptions: counts.corrupt,
    rejectedButAcked: counts.rejected,
    orderViolations: counts.order,
    backingMismatches: counts.backing,
    replicaLogs,
    violations,
  };
}

/** Judges block `b` of an image: undefined when it holds what the run allows there. */
function blockJudge(
  input: CheckInput,
  lastOp: Float64Array,
  lastSeq: Float64Array,
  completedOps: Set<number>,
): (image: Uint8Array, b: number) => Violation | undefined {
  const filler = new DataFiller(input.seed);
  const stamp = { seq: 0, lba: 0, block: 0 };
  const scratch = new Uint8Array(blockBytes);
  const sameBlock = (image: Uint8Array, at: number, op: number, k: number) => {
    filler.fillBlock(scratch, 0, op, at / blockBytes - k, k);
    for (let i = 0; i < blockBytes; i++) if (image[at + i] !== scratch[i]) return false;
    return true;
  };
  const issued = (op: number) => input.issued.some((r) => op >= r.first && op < r.first + r.count);
  return (image, b) => {
    const at = b * blockBytes;
    const want = lastOp[b];
    const seq = lastSeq[b] >= 0 ? lastSeq[b] : undefined;
    const wanted = want >= 0 ? `op ${want} (log ${seq}) completed there` : "";
    if (isZero(image, at)) {
      return want < 0 ? undefined : {
        kind: "acked-but-lost",
        lba: b,
        seq,
        op: want,
        detail: `LBA ${b} holds zeros but ${wanted}`,
      };
    }
    const s = readStamp(image, at, stamp);
    const op = s.seq;
    if (s.lba !== b || s.block > s.lba || !issued(op) || !sameBlock(image, at, op, s.block)) {
      return {
        kind: "corruption",
        lba: b,
        seq,
        op,
        detail:
          `LBA ${b} holds bytes no write of this run wrote there (stamp op ${op}, LBA ${s.lba})`,
      };
    }
    if (want < 0 || op === want) return undefined;
    // An older completed write, or one issued before the newest completed: the newest is lost.
    if (completedOps.has(op) || op < want) {
      return {
        kind: "acked-but-lost",
        lba: b,
        seq,
        op: want,
        detail: `LBA ${b} holds op ${op} but ${wanted} later`,
      };
    }
    return undefined; // a newer write that never completed (in flight at a failure): allowed
  };
}

/** Applies the replica's trusted logs, in seq order, over `image`; returns how many. */
function overlayReplica(cache: { path: string; ringBytes: number }, image: Uint8Array): number {
  using wc = WriteCache.open({
    path: cache.path,
    role: "replica",
    dataBytes: cache.ringBytes,
    metaSlots: cache.ringBytes / blockBytes,
  });
  const scan = wc.scan();
  const ring = wc.data.bytes;
  for (const log of scan.logs) {
    if (log.flags === RecordFlags.SKIP) continue;
    const end = log.lba * blockBytes + log.dataLength;
    if (end > image.length) continue; // outside the namespace: the record check refuses it
    image.set(ring.subarray(log.dataOffset, log.dataOffset + log.dataLength), log.lba * blockBytes);
  }
  return scan.logs.length;
}

async function readInto(path: string, into: Uint8Array): Promise<void> {
  using file = await Deno.open(path);
  let got = 0;
  while (got < into.length) {
    const n = await file.read(into.subarray(got));
    if (n === null) break;
    got += n;
  }
  into.fill(0, got);
}

function isZero(image: Uint8Array, at: number): boolean {
  const words = new Uint32Array(image.buffer, image.byteOffset + at, blockBytes / 4);
  for (let i = 0; i < words.length; i++) if (words[i] !== 0) return false;
  return true;
}
