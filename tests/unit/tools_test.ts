/**
 * The tool boundary (`lib/tools/`): each command's argv encoder against the command's own
 * parser, each report, event and completion line through its encoder and decoder, the
 * decoders' refusals (`spawn_tool_test.ts` runs `spawnTool` against a stand-in program).
 */
import assert from "node:assert/strict";
import { cacheProgram } from "../../cmd/cache.ts";
import { primaryProgram } from "../../cmd/primary.ts";
import { replicaProgram } from "../../cmd/replica.ts";
import {
  cacheArgv,
  type CacheCommandOptions,
  type CacheReport,
  decodeCacheReport,
  decodeCompletions,
  encodeCacheReport,
  encodeCompletion,
} from "../../lib/tools/cache.ts";
import { ToolOutputError } from "../../lib/tools/decode.ts";
import { decodeEvent, encodeEvent, isEventLine, type ToolEvent } from "../../lib/tools/events.ts";
import {
  decodePrimaryReport,
  encodePrimaryReport,
  primaryArgv,
  type PrimaryCommandOptions,
  type PrimaryReport,
} from "../../lib/tools/primary.ts";
import {
  decodeReplicaReport,
  encodeReplicaReport,
  replicaArgv,
  type ReplicaCommandOptions,
  type ReplicaReport,
} from "../../lib/tools/replica.ts";

/** What a commander program parses `argv` into. */
function parse(program: { opts(): unknown }, argv: string[]): unknown {
  const p = program as ReturnType<typeof replicaProgram>;
  p.exitOverride().configureOutput({ writeErr: () => {} });
  return p.parse(argv, { from: "user" }).opts();
}

const replicaOptions: ReplicaCommandOptions = {
  device: "rxeb",
  host: "192.0.2.2",
  port: 0,
  secret: "s3cret-s3cret",
  gidIndex: 1,
  ring: "4m",
  slots: 80,
  maxLog: "256k",
  wait: "hybrid",
  spinUs: 50,
  breakdown: "/tmp/b.json",
  once: true,
  retain: true,
  cache: "/dev/shm/r.cache",
  verifySeed: 7,
  slowUs: 3000,
  fault: "7:CRC_MISMATCH",
  faultPlan: '{"replica":{"kill":{"seq":40,"point":"after-ack"}}}',
  trace: "/tmp/r.trace.jsonl",
  json: true,
  readyFile: "/tmp/ready",
  events: true,
};

const recovery = {
  reconnect: 3,
  reconnectFor: 30_000,
  reconnectDelayMs: 250,
  faultPlan: '{"primary":{"breakQp":40}}',
  trace: "/tmp/p.trace.jsonl",
};

const primaryOptions: PrimaryCommandOptions = {
  ...recovery,
  device: "rxea",
  host: "192.0.2.2",
  port: 18600,
  secret: "s3cret-s3cret",
  gidIndex: 1,
  count: 300,
  warmup: 10,
  duration: 60,
  size: "4k:60,64k:40",
  depth: 8,
  seed: 9,
  lba: "hot:10",
  lbaSpace: "2g",
  ring: "1m",
  maxLog: "64k",
  ackTimeoutMs: 1500,
  wait: "spin",
  spinUs: 10,
  breakdown: "/tmp/p.json",
  qpTimeout: 12,
  retry: 5,
  rnrRetry: 0,
  json: true,
  events: true,
};

const cacheOptions: CacheCommandOptions = {
  ...recovery,
  device: "rxea",
  host: "192.0.2.2",
  port: 18600,
  secret: "s3cret-s3cret",
  cache: "/dev/shm/p.cache",
  backing: "/dev/shm/b.img",
  capacity: "16m",
  ring: "4m",
  count: 400,
  size: "16k",
  depth: 4,
  flushEvery: 20,
  flushDestage: true,
  seed: 21,
  verify: false,
  drain: false,
  recover: true,
  firstOp: 300,
  completions: "/tmp/completions.log",
  wait: "spin",
  json: true,
};

Deno.test("argv: each command parses its encoder's argv back into the same options", () => {
  assert.deepEqual(parse(replicaProgram(), replicaArgv(replicaOptions)), replicaOptions);
  assert.deepEqual(parse(primaryProgram(), primaryArgv(primaryOptions)), primaryOptions);
  assert.deepEqual(parse(cacheProgram(), cacheArgv(cacheOptions)), cacheOptions);
  const defaults = { ...cacheOptions, verify: true, drain: true };
  assert.deepEqual(parse(cacheProgram(), cacheArgv(defaults)), defaults);
});

Deno.test("argv: options left out take the command's defaults; a value is never read as a flag", () => {
  const argv = primaryArgv({ device: "rxea", host: "h", size: "--json" });
  assert.deepEqual(argv, ["--device=rxea", "--host=h", "--size=--json"]);
  const opts = parse(primaryProgram(), argv) as PrimaryCommandOptions;
  assert.equal(opts.size, "--json");
  assert.equal(opts.json, undefined);
  assert.equal(opts.depth, 16);
  assert.throws(() => primaryArgv({ device: "a", host: "b", count: NaN }), RangeError);
});

const summary = {
  count: 3,
  ops_per_s: 10.5,
  mb_per_s: 0.04,
  p50: 100,
  p90: 110,
  p99: 120,
  p999: 130,
  max: 140,
};
const digest = { count: 3, bytes: 12288, lastSeq: 3, digest: "0a1b2c3d" };

const replicaReport: ReplicaReport = {
  sessions: 1,
  accepted: 3,
  acceptedBytes: 12288,
  skips: 0,
  nops: 1,
  releases: 0,
  recovered: 0,
  refused: { CRC_MISMATCH: 1 },
  nextSeq: 4,
  released: 12288,
  digest,
  sessionActive: false,
  wait: "events",
  cpuUsPerLog: 55.5,
  verify: { checked: 3, mismatches: 1, first: { seq: 2, byte: 17 } },
};

const primaryStats = {
  posted: 3,
  ackedLogs: 3,
  ackedBytes: 12288,
  refused: 0,
  failed: 0,
  resends: 0,
  skips: 0,
  admissionWaits: 2,
  admissionTimeouts: 0,
  maxAheadBytes: 8192,
  suspensions: 0,
  recoveries: 1,
  recoveryMs: [812.5],
  inFlight: 0,
  nextSeq: 4,
  released: 12288,
  writePos: 12288,
  elapsedMs: 300.25,
  summary,
};

const primaryReport: PrimaryReport = {
  config: { ...primaryOptions },
  result: {
    submitted: 3,
    acked: 3,
    refused: 0,
    inOrder: true,
    elapsedMs: 300,
    summary,
    wait: "events",
    cpuUsPerLog: 80,
    mainThreadCpuUsPerLog: 60,
  },
  digest,
  stats: primaryStats,
};

const cacheReport: CacheReport = {
  result: {
    writes: 3,
    writesOk: 2,
    writesFailed: 1,
    flushes: 1,
    orderViolations: 0,
    failures: [{ op: 1, lba: 8, status: 0x4004 }],
    readMismatches: 0,
    backingMismatches: -1,
    commitLatency: summary,
    elapsedMs: 12,
  },
  replication: primaryStats,
  digest,
  stats: {
    writes: 3,
    writesFailed: 1,
    reads: 3,
    readBlocksFromCache: 2,
    readBlocksFromBacking: 1,
    flushes: 1,
    destage: { destagedLogs: 2, destagedBytes: 8192, batches: 1, destagedSeq: 2, pending: 0 },
  },
  imageSha256: "ab".repeat(32),
  destagedSeq: 2,
  firstFailure: "Backing store pwrite failed: ENOSPC",
};

/** The value as JSON sees it (undefined fields dropped). */
const plain = (value: unknown) => JSON.parse(JSON.stringify(value));

Deno.test("reports: each command's report line decodes to what was encoded", () => {
  const r = encodeReplicaReport(replicaReport);
  assert.deepEqual(plain(decodeReplicaReport(r)), plain(replicaReport));
  const p = encodePrimaryReport({ ...primaryReport, config: { ...primaryOptions } });
  assert.ok(!p.includes("s3cret"), "the secret is never printed");
  const { secret: _, ...config } = primaryOptions;
  assert.deepEqual(plain(decodePrimaryReport(p)), plain({ ...primaryReport, config }));
  const c = encodeCacheReport(cacheReport);
  assert.deepEqual(plain(decodeCacheReport(c)), plain(cacheReport));
  // Fields the schema does not declare are not passed on.
  const extra = JSON.stringify({ ...replicaReport, surprise: 1 });
  assert.equal("surprise" in decodeReplicaReport(extra), false);
});

/** Asserts that `decode(line)` refuses with a ToolOutputError at `path` matching `problem`. */
function refuses(decode: (line: string) => unknown, line: string, path: string, problem: RegExp) {
  assert.throws(() => decode(line), (error: unknown) => {
    assert.ok(error instanceof ToolOutputError, String(error));
    assert.equal(error.path, path);
    assert.match(error.message, problem);
    return true;
  });
}

/** `report` as JSON with `patch` applied to a copy. */
function patched<T>(report: T, patch: (copy: Record<string, never>) => void): string {
  const copy = plain(report);
  patch(copy);
  return JSON.stringify(copy);
}

Deno.test("reports: bad JSON, a missing field, a wrong type or value is refused by name", () => {
  refuses(decodeReplicaReport, "{not json", "line", /not JSON/);
  refuses(decodeReplicaReport, "[1, 2]", "", /expected an object, got an array/);
  refuses(
    decodeReplicaReport,
    patched(replicaReport, (r) => delete r.digest),
    "digest",
    /missing/,
  );
  refuses(
    decodeReplicaReport,
    patched(replicaReport, (r) => (r.accepted = "3" as never)),
    "accepted",
    /expected an integer, got a string/,
  );
  refuses(
    decodeReplicaReport,
    patched(replicaReport, (r) => (r.wait = "fast" as never)),
    "wait",
    /spin\|events\|hybrid/,
  );
  refuses(
    decodePrimaryReport,
    patched(primaryReport, (r) => ((r.result as Record<string, unknown>).acked = null)),
    "result.acked",
    /got null/,
  );
  refuses(
    decodePrimaryReport,
    patched(primaryReport, (r) => ((r.stats as { recoveryMs: unknown[] }).recoveryMs[0] = "x")),
    "stats.recoveryMs[0]",
    /expected a number/,
  );
  refuses(
    decodeCacheReport,
    patched(cacheReport, (r) => ((r.result as Record<string, unknown>).failures = {})),
    "result.failures",
    /expected an array/,
  );
  refuses(
    decodeCacheReport,
    patched(cacheReport, (r) => ((r.digest as Record<string, unknown>).digest = 7)),
    "digest.digest",
    /expected a string/,
  );
});

Deno.test("events: each event's line decodes to it; other lines are not events; bad ones are refused", () => {
  const events: ToolEvent[] = [
    { event: "ready", port: 18515 },
    { event: "resumed", releasedSeq: 40, retainedLogs: 12, throughSeq: 52 },
    { event: "busy-retry", attempt: 2, delayMs: 180 },
  ];
  for (const event of events) {
    const line = encodeEvent(event);
    assert.ok(isEventLine(line), line);
    assert.deepEqual(decodeEvent(line, "replica"), event);
  }
  assert.equal(isEventLine(encodeReplicaReport(replicaReport)), false);
  const bad = (line: string, path: string, problem: RegExp) =>
    refuses((l) => decodeEvent(l, "replica"), line, path, problem);
  bad('{"rrl":"event","event":"ready"', "event", /not JSON/);
  bad('{"rrl":"event","event":"bye"}', "event", /ready\|resumed\|busy-retry/);
  bad('{"rrl":"event","event":"ready","port":"1"}', "ready.port", /expected an integer/);
  bad('{"rrl":"event","event":"resumed","releasedSeq":1}', "resumed.retainedLogs", /missing/);
});

Deno.test("completion log: lines decode to the completions; torn last line ignored; malformed ones named", () => {
  const list = [
    { op: 0, seq: 1, lba: 0, blocks: 4 },
    { op: 1, seq: 2, lba: 4096, blocks: 1 },
  ];
  const text = list.map(encodeCompletion).join("");
  assert.deepEqual(decodeCompletions(text), { completions: list, malformed: [] });
  const torn = text + encodeCompletion({ op: 2, seq: 3, lba: 8, blocks: 1 }).slice(0, 12);
  assert.deepEqual(decodeCompletions(torn), { completions: list, malformed: [] });
  const bad = [
    "0 1 0 4",
    '{"op":1,"seq":2,"lba":-1,"blocks":1}',
    '{"op":1,"seq":2,"blocks":1}',
    `{"op":1,"seq":2,"lba":0,"blocks":1,"pad":"${"x".repeat(200)}"}`,
  ];
  const log = decodeCompletions(`${text}${bad.join("\n")}\n${encodeCompletion(list[0])}`);
  assert.deepEqual(log.completions, [...list, list[0]]);
  assert.deepEqual(log.malformed.map((m) => m.line), [3, 4, 5, 6]);
  assert.match(log.malformed[0].detail, /not JSON/);
  assert.match(log.malformed[1].detail, /lba: expected an integer ≥ 0/);
  assert.match(log.malformed[2].detail, /lba: .*missing/);
  assert.match(log.malformed[3].detail, /longer than/);
});
