/**
 * A primary-side test program, run in the pair's namespace A against a replica process in
 * namespace B; prints one JSON line for the test to assert on.
 *
 *   primary_scenario.ts bulk|stream|refusals|credits|bootstrap|retain --device D --host H --port P
 *     [--ring R] [--depth Q] [--count N] [--sizes SPEC] [--seed S]
 */
import { parseArgs } from "node:util";
import { runWorkload } from "../../../lib/bench/run_workload.ts";
import {
  DataFiller,
  parseBytes,
  parseLbaPattern,
  parseSizeSpec,
  WorkloadPlan,
} from "../../../lib/bench/workload.ts";
import { emptyRecord, encodeRecord, recordBytes, RecordFlags } from "../../../lib/log/record.ts";
import { placementStart } from "../../../lib/log/ring.ts";
import { ackStatusName } from "../../../lib/log/ack.ts";
import { connectBootstrap } from "../../../lib/replication/bootstrap.ts";
import { decodeMessage, encodeMessage } from "../../../lib/replication/control_codec.ts";
import { type LogProducer, Primary, type StreamLog } from "../../../lib/replication/primary.ts";
import { Prng } from "../../../lib/prng.ts";

if (!import.meta.main) {
  throw new Error("primary_scenario.ts is a program: run it, do not import it");
}
const { positionals, values } = parseArgs({
  args: Deno.args,
  allowPositionals: true,
  options: {
    device: { type: "string" },
    host: { type: "string" },
    port: { type: "string" },
    ring: { type: "string", default: "256k" },
    depth: { type: "string", default: "16" },
    count: { type: "string", default: "1000" },
    sizes: { type: "string", default: "4k,16k,64k" },
    seed: { type: "string", default: "7" },
  },
});
const secret = Deno.env.get("RRL_SECRET")!;
const base = {
  device: values.device!,
  host: values.host!,
  port: Number(values.port),
  secret,
  ringBytes: parseBytes(values.ring!, "--ring"),
  depth: Number(values.depth),
  log: () => {},
};
const seed = Number(values.seed);

async function bulk() {
  const sizes = parseSizeSpec(values.sizes!);
  await using primary = await Primary.connect({ ...base, maxLogBytes: Math.max(...sizes.sizes) });
  const result = await runWorkload(primary, {
    plan: new WorkloadPlan({ sizes, pattern: parseLbaPattern("random"), lbaBlocks: 1 << 18, seed }),
    filler: new DataFiller(seed),
    count: Number(values.count),
    durationMs: Infinity,
    depth: base.depth,
  });
  return { result, digest: primary.digest(), stats: primary.stats() };
}

async function refusals() {
  await using primary = await Primary.connect({ ...base, maxLogBytes: 16384 });
  const data = new Uint8Array(8192).fill(0x5a);
  for (let i = 0; i < 3; i++) await primary.replicate(data, { lba: i });
  const ringBytes = base.ringBytes;
  const craft = (patch: (r: ReturnType<typeof emptyRecord>) => void) => {
    const s = primary.stats();
    const r = emptyRecord();
    r.seq = s.nextSeq;
    r.dataOffset = placementStart(s.writePos, 4096, ringBytes) % ringBytes;
    r.dataLength = 4096;
    r.dataCrc = 0x12345678;
    patch(r);
    const bytes = new Uint8Array(recordBytes);
    encodeRecord(new DataView(bytes.buffer), 0, r);
    return bytes;
  };
  const cases: [string, Uint8Array][] = [
    ["wrong CRC", craft(() => {})],
    ["out-of-bounds offset", craft((r) => (r.dataOffset = ringBytes))],
    ["misplaced offset", craft((r) => (r.dataOffset = (r.dataOffset + 8192) % ringBytes))],
    ["sequence gap", craft((r) => (r.seq += 3))],
    ["repeated sequence", craft((r) => (r.seq -= 1))],
    ["garbage record", new Prng(seed).fill(new Uint8Array(recordBytes))],
    [
      "probe (NOP)",
      craft((r) =>
        Object.assign(r, {
          flags: RecordFlags.NOP,
          seq: 0,
          dataLength: 0,
          dataOffset: 0,
          dataCrc: 0,
        })
      ),
    ],
  ];
  const answers = [];
  for (const [name, bytes] of cases) {
    const ack = await primary.sendRawRecord(bytes);
    answers.push({
      name,
      status: ackStatusName(ack.status),
      seq: ack.seq,
      nextSeq: ack.nextSeq,
      released: ack.released,
    });
  }
  const after = [];
  for (let i = 0; i < 5; i++) after.push((await primary.replicate(data, { lba: 100 + i })).seq);
  return { answers, after, expectedNextSeq: 4, digest: primary.digest() };
}

async function credits() {
  const sizes = parseSizeSpec(values.sizes!);
  await using primary = await Primary.connect({ ...base, maxLogBytes: Math.max(...sizes.sizes) });
  const result = await runWorkload(primary, {
    plan: new WorkloadPlan({ sizes, pattern: parseLbaPattern("seq"), lbaBlocks: 1 << 18, seed }),
    filler: new DataFiller(seed),
    count: Number(values.count),
    durationMs: Infinity,
    depth: base.depth,
  });
  return { result, stats: primary.stats(), ringBytes: base.ringBytes };
}

async function rawExchange(send: (conn: Deno.TcpConn, challenge: Uint8Array) => Promise<void>) {
  const conn = await Deno.connect({ hostname: base.host, port: base.port });
  try {
    const challenge = await readFrame(conn);
    await send(conn, challenge);
    const answer = await readFrame(conn).catch((e) => e as Error);
    if (answer instanceof Error) return { closed: true, detail: answer.message };
    const decoded = decodeMessage(answer);
    return decoded.ok && decoded.value.type === "REFUSE"
      ? { refused: decoded.value.reason, text: decoded.value.text }
      : { unexpected: decoded.ok ? decoded.value.type : decoded.reason };
  } finally {
    conn.close();
  }
}

async function readFrame(conn: Deno.TcpConn): Promise<Uint8Array> {
  const head = new Uint8Array(4);
  await readExactly(conn, head);
  const length = new DataView(head.buffer).getUint32(0, true);
  if (length > 1024) throw new Error(`frame of ${length} B`);
  const frame = new Uint8Array(4 + length);
  frame.set(head);
  await readExactly(conn, frame.subarray(4));
  return frame;
}

async function readExactly(conn: Deno.TcpConn, into: Uint8Array) {
  for (let got = 0; got < into.length;) {
    const n = await conn.read(into.subarray(got));
    if (n === null) throw new Error("connection closed");
    got += n;
  }
}

async function bootstrap() {
  const refusals: Record<string, unknown> = {};
  const hello = (nonceSeed: number) =>
    encodeMessage({
      type: "HELLO",
      nonce: new Prng(nonceSeed).fill(new Uint8Array(32)),
      mac: new Uint8Array(32),
      endpoint: { qpn: 77, psn: 5, gid: new Uint8Array(16), mtu: 3 },
      ringBytes: base.ringBytes,
      maxLogBytes: 65536,
      depth: 4,
    });
  try {
    await connectBootstrap({
      hostname: base.host,
      port: base.port,
      secret: "not-the-secret",
      ringBytes: base.ringBytes,
      maxLogBytes: 65536,
      depth: 4,
      endpoint: { qpn: 77, psn: 5, gid: new Uint8Array(16), mtu: 3 },
      connectAttempts: 1,
    });
    refusals.wrongSecret = "accepted!";
  } catch (error) {
    refusals.wrongSecret = (error as { reason?: string }).reason;
  }
  refusals.wrongVersion = await rawExchange(async (conn) => {
    const frame = hello(1);
    new DataView(frame.buffer).setUint16(8, 2, true); // version 2
    await conn.write(frame);
  });
  refusals.junk = await rawExchange(async (conn) => {
    await conn.write(new TextEncoder().encode("GET / HTTP/1.1\r\nHost: replica\r\n\r\n"));
  });
  refusals.oversized = await rawExchange(async (conn) => {
    await conn.write(new Uint8Array([0xff, 0xff, 0xff, 0xff, 1, 2, 3, 4]));
  });
  await using primary = await Primary.connect({ ...base, maxLogBytes: 16384 });
  const data = new Uint8Array(4096).fill(1);
  const after = [];
  for (let i = 0; i < 5; i++) after.push((await primary.replicate(data, { lba: i })).seq);
  return { refusals, after };
}

async function retain() {
  // 64 KiB ring, 16 KiB logs: four fill it; the fifth must wait for a RELEASE.
  await using primary = await Primary.connect({
    ...base,
    maxLogBytes: 16384,
    retain: true,
    admissionTimeoutMs: 1500,
  });
  const data = new Uint8Array(16384).fill(3);
  const first = [];
  for (let i = 0; i < 4; i++) first.push((await primary.replicate(data, { lba: i * 4 })).seq);
  const t0 = performance.now();
  const blocked = await primary.replicate(data, { lba: 99 }).then(
    () => "accepted!",
    (e) => (e as Error).name,
  );
  const waitedMs = Math.round(performance.now() - t0);
  primary.release(2);
  const afterRelease = (await primary.replicate(data, { lba: 100 })).seq;
  const s = primary.stats();
  const bad = emptyRecord();
  Object.assign(bad, { flags: RecordFlags.RELEASE, seq: s.nextSeq + 5 });
  const raw = new Uint8Array(recordBytes);
  encodeRecord(new DataView(raw.buffer), 0, bad);
  const badRelease = ackStatusName((await primary.sendRawRecord(raw)).status);
  primary.release(primary.answeredSeq);
  await new Promise((r) => setTimeout(r, 200));
  return { first, blocked, waitedMs, afterRelease, badRelease, stats: primary.stats() };
}

/**
 * The stream API's edges: a log the replica refuses (its `--fault`) is reported to the
 * producer's `failed` and the others are replicated; at most `depth` logs are in flight; a
 * producer that describes a bad log ends the stream with a RangeError after the logs before
 * it were answered.
 */
async function stream() {
  await using primary = await Primary.connect({ ...base, maxLogBytes: 8192 });
  const block = new Uint8Array(4096).fill(9);
  const seen = { replicated: [] as number[], failed: [] as string[], maxInFlight: 0 };
  let described = 0;
  let answered = 0;
  let limited = true; // the first stream runs at depth 3: measure it
  const make = (total: number, badAt: number): LogProducer => ({
    next(out: StreamLog) {
      if (described >= total) return false;
      described++;
      out.length = described === badAt ? 5000 : 4096;
      out.lba = described;
      out.fua = false;
      const inFlight = described - answered; // this stream's logs posted or about to be
      if (limited && inFlight > seen.maxInFlight) seen.maxInFlight = inFlight;
      return true;
    },
    fill(ring, offset, length) {
      ring.set(block.subarray(0, Math.min(length, 4096)), offset);
    },
    replicated(log) {
      answered++;
      seen.replicated.push(log.seq);
    },
    failed(seq, error) {
      answered++;
      seen.failed.push(`${seq}:${error.name}`);
    },
  });
  const first = await primary.stream(make(40, 0), { depth: 3 });
  described = 0;
  answered = 0;
  limited = false;
  const second = await primary.stream(make(10, 5));
  described = 0;
  answered = 0;
  const after = await primary.stream(make(2, 0));
  return {
    first: { ...first, failure: first.failure?.name },
    second: { ...second, failure: second.failure?.name, message: second.failure?.message },
    after: { ...after, failure: after.failure?.name },
    seen,
    digest: primary.digest(),
  };
}

const scenarios: Record<string, () => Promise<unknown>> = {
  bulk,
  stream,
  refusals,
  credits,
  bootstrap,
  retain,
};
const scenario = scenarios[positionals[0]];
if (!scenario) {
  console.error(
    `usage: primary_scenario.ts ${Object.keys(scenarios).join("|")} --device D --host H --port P`,
  );
  Deno.exit(2);
}
console.log(JSON.stringify(await scenario()));
