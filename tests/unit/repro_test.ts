/**
 * The invariant checker on real files (a backing store, a replica write cache, a
 * completion log) built from stamped workload data, with every kind of violation planted
 * by hand; scenario configs and their seeds; the refusals read from a trace.
 */
import assert from "node:assert/strict";
import { DataFiller } from "../../lib/bench/workload.ts";
import { WriteCache } from "../../lib/cache/write_cache.ts";
import { crc32c } from "../../lib/log/crc32c.ts";
import { emptyRecord } from "../../lib/log/record.ts";
import { AckStatus } from "../../lib/log/ack.ts";
import { Prng } from "../../lib/prng.ts";
import { checkRun, parseCompletions, type Violation } from "../../lib/repro/check.ts";
import { rejectedSeqs } from "../../lib/repro/run_folder.ts";
import { checkConfig, type ScenarioConfig } from "../../lib/repro/scenario.ts";
import { encodeCompletion } from "../../lib/tools/cache.ts";
import type { TraceEvent } from "../../lib/trace/trace.ts";
import random from "../../scenarios/random.ts";

const seed = 77;
const blocks = 64;
const ringBytes = 256 * 1024;

/** A write of the workload: op, log seq, first LBA, blocks. */
type Write = [op: number, seq: number, lba: number, blocks: number];

/** A backing store holding `writes` applied in order; returns its path. */
function backing(dir: string, writes: Write[]): string {
  const filler = new DataFiller(seed);
  const image = new Uint8Array(blocks * 4096);
  for (const [op, , lba, n] of writes) filler.fill(image, lba * 4096, n * 4096, op, lba);
  const path = `${dir}/backing.img`;
  Deno.writeFileSync(path, image);
  return path;
}

function completions(writes: Write[]): string {
  return writes.map(([op, seq, lba, blocks]) => encodeCompletion({ op, seq, lba, blocks })).join(
    "",
  );
}

async function check(
  dir: string,
  stored: Write[],
  completed: Write[],
  options: { rejected?: number[]; replica?: string; issued?: number } = {},
) {
  return await checkRun({
    seed,
    capacityBlocks: blocks,
    issued: [{ first: 0, count: options.issued ?? 100 }],
    completions: completions(completed),
    backingPath: backing(dir, stored),
    replicaCache: options.replica ? { path: options.replica, ringBytes } : undefined,
    rejectedSeqs: new Set(options.rejected ?? []),
    cleanEnd: false,
  });
}

const writes: Write[] = [[0, 1, 0, 4], [1, 2, 8, 2], [2, 3, 2, 4], [3, 4, 20, 1]];

Deno.test("checker: every completed write in the backing store, newest last: pass", async () => {
  const dir = Deno.makeTempDirSync();
  const r = await check(dir, writes, writes);
  assert.equal(r.verdict, "pass", JSON.stringify(r.violations));
  assert.equal(r.logsAcked, 4);
});

Deno.test("checker: a completed write missing, or under an older one, is acked-but-lost", async () => {
  const dir = Deno.makeTempDirSync();
  const missing = await check(dir, writes.filter(([op]) => op !== 3), writes);
  assert.equal(missing.verdict, "fail");
  assert.equal(missing.ackedButLost, 1);
  assert.deepEqual(
    {
      kind: missing.violations[0].kind,
      lba: missing.violations[0].lba,
      op: missing.violations[0].op,
    },
    { kind: "acked-but-lost", lba: 20, op: 3 },
  );
  // Op 2 overwrote LBAs 2-3 of op 0; a store holding op 0 there lost op 2.
  const stale = await check(dir, [writes[2], writes[0], writes[1], writes[3]], writes);
  assert.equal(stale.ackedButLost, 2);
  assert.match(stale.violations[0].detail, /holds op 0 but op 2/);
});

Deno.test("checker: a newer write that never completed may be there; a flipped byte is a corruption", async () => {
  const dir = Deno.makeTempDirSync();
  const inFlight: Write = [5, 6, 20, 1]; // issued after op 3, never completed
  assert.equal((await check(dir, [...writes, inFlight], writes)).verdict, "pass");
  const path = backing(dir, writes);
  const bytes = Deno.readFileSync(path);
  bytes[8 * 4096 + 100] ^= 1;
  Deno.writeFileSync(`${dir}/flipped.img`, bytes);
  const r = await checkRun({
    seed,
    capacityBlocks: blocks,
    issued: [{ first: 0, count: 100 }],
    completions: completions(writes),
    backingPath: `${dir}/flipped.img`,
    rejectedSeqs: new Set(),
    cleanEnd: false,
  });
  assert.equal(r.corruptions, 1);
  assert.equal(r.violations[0].lba, 8);
  // Bytes of an op the run never issued are a corruption too.
  assert.equal((await check(dir, writes, writes, { issued: 3 })).corruptions, 1);
});

Deno.test("checker: a rejected log that completed, a write completed twice or out of order", async () => {
  const dir = Deno.makeTempDirSync();
  const rejected = await check(dir, writes, writes, { rejected: [2] });
  assert.equal(rejected.rejectedButAcked, 1);
  assert.equal(rejected.violations[0].kind, "rejected-but-acked");
  const twice = await check(dir, writes, [...writes, writes[3]]);
  const kinds = twice.violations.map((v: Violation) => v.kind);
  assert.ok(kinds.includes("completed-twice") && kinds.includes("out-of-order"), kinds.join());
});

Deno.test("checker: the replica's write cache completes the failover image; without it the write is lost", async () => {
  const dir = Deno.makeTempDirSync({ dir: "/dev/shm" });
  const path = `${dir}/replica.cache`;
  {
    using cache = WriteCache.create({
      path,
      role: "replica",
      dataBytes: ringBytes,
      metaSlots: ringBytes / 4096,
    });
    // Logs 1-4 held by the replica (not de-staged): the backing store has only op 0.
    let offset = 0;
    for (const [op, seq, lba, n] of writes) {
      const length = n * 4096;
      new DataFiller(seed).fill(cache.data.bytes, offset, length, op, lba);
      const bytes = cache.data.bytes.subarray(offset, offset + length);
      cache.persistData(offset, length);
      cache.writeRecord(seq, {
        ...emptyRecord(),
        seq,
        dataOffset: offset,
        dataLength: length,
        dataCrc: crc32c(bytes),
        lba,
      });
      cache.persistRecord(seq);
      offset += length;
    }
  }
  const withReplica = await check(dir, [writes[0]], writes, { replica: path });
  assert.equal(withReplica.verdict, "pass", JSON.stringify(withReplica.violations));
  assert.equal(withReplica.replicaLogs, 4);
  assert.equal((await check(dir, [writes[0]], writes)).verdict, "fail");
  Deno.removeSync(dir, { recursive: true });
});

Deno.test("completion log: a torn last line is ignored, a malformed one before it is reported", () => {
  const out: Violation[] = [];
  const text = completions([[1, 1, 0, 1], [2, 2, 4, 1], [3, 3, 8, 1]]);
  assert.equal(parseCompletions(text.slice(0, -10), out).length, 2);
  assert.equal(out.length, 0);
  parseCompletions(`${completions([[1, 1, 0, 1]])}xx\n${completions([[2, 2, 4, 1]])}`, out);
  assert.equal(out[0].kind, "bad-input");
  assert.match(out[0].detail, /line 2/);
});

Deno.test("rejected logs: a refusal of the log itself, not SEQ_GAP, and not one later accepted", () => {
  const ev = (kind: "RECORD" | "ACK", seq: number, x: number) =>
    (kind === "RECORD"
      ? { t: 0, kind, side: 1, flags: x, seq, offset: 0, length: 4096 }
      : { t: 0, kind, side: 1, status: x, seq, nextSeq: 0, released: 0 }) as TraceEvent;
  const events = [
    ev("RECORD", 20, 0),
    ev("ACK", 20, AckStatus.CRC_MISMATCH),
    ev("RECORD", 21, 0),
    ev("ACK", 21, AckStatus.SEQ_GAP),
    ev("RECORD", 20, 1), // the SKIP of 20: a hole, still rejected
    ev("ACK", 20, AckStatus.OK),
    ev("RECORD", 30, 0),
    ev("ACK", 30, AckStatus.PERSIST_FAILED),
    ev("RECORD", 30, 0), // resent to a restarted replica, accepted
    ev("ACK", 30, AckStatus.OK),
  ];
  assert.deepEqual([...rejectedSeqs(events)], [20]);
});

Deno.test("scenario configs: the same seed plans the same run; bad fields are named", () => {
  for (let s = 0; s < 200; s++) {
    const a = checkConfig(random.plan(new Prng(s)));
    assert.deepEqual(random.plan(new Prng(s)), a);
  }
  const good: ScenarioConfig = {
    topology: "pair",
    workload: { count: 100, sizes: "4k", depth: 4, flushEvery: 0 },
    faults: [{ kind: "replica-kill", seq: 50, point: "after-ack" }],
  };
  checkConfig(good);
  const bad = (patch: (c: ScenarioConfig) => void, message: RegExp) => {
    const c = structuredClone(good);
    patch(c);
    assert.throws(() => checkConfig(c), message);
  };
  bad((c) => (c.workload.count = 0), /workload.count/);
  bad((c) => c.faults.push({ kind: "replica-kill", seq: 2, point: "after-ack" }), /one per kind/);
  bad((c) => (c.faults[0] = { kind: "replica-kill", seq: 500, point: "after-ack" }), /seq/);
  bad((c) => c.faults.push({ kind: "primary-kill", seq: 3 }), /two scenarios/);
  bad((c) => c.faults.push({ kind: "netem", loss: 50 }), /loss/);
  bad((c) => {
    c.topology = "loopback";
    c.faults = [{ kind: "netem", loss: 1 }];
  }, /netem needs the pair topology/);
});
