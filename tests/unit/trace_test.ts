import assert from "node:assert/strict";
import { IBV_WC_OPCODE as WC, IBV_WR_OPCODE as WR } from "../../ffi/verbs_constants.ts";
import { AckStatus } from "../../lib/log/ack.ts";
import { RecordFlags } from "../../lib/log/record.ts";
import { run } from "../../cmd/trace.ts";
import { formatEvents, parseKinds, parseSeqRange, selectEvents } from "../../lib/trace/format.ts";
import { chainOpcode, SessionEvent, Side, Trace, type TraceEvent } from "../../lib/trace/trace.ts";
import { TraceFileError } from "../../lib/trace/trace_file.ts";

const writeSend = chainOpcode(WR.IBV_WR_RDMA_WRITE, WR.IBV_WR_SEND);

/** One event of each kind around seq 17, a fault and its recovery, inside a session. */
function scenario(t = new Trace()): Trace {
  t.registerName("FAULT", 3, "CRC_FLIP");
  t.registerName("RECOVERY", 1, "SKIP_POSTED");
  t.enable({ capacity: 64 });
  t.session(Side.PRIMARY, SessionEvent.START, 7);
  t.post(Side.PRIMARY, writeSend, 16, 16, 4096, 18);
  t.post(Side.PRIMARY, writeSend, 17, 17, 65536, 18);
  t.record(Side.REPLICA, 0, 17, 131072, 65536);
  t.fault(3, 17, -1);
  t.ack(Side.REPLICA, AckStatus.CRC_MISMATCH, 17, 17, 131072);
  t.completion(Side.PRIMARY, WC.IBV_WC_RECV, 0, 2, 32, 18);
  t.recovery(1, 17, 0);
  t.record(Side.PRIMARY, RecordFlags.SKIP, 17, 131072, 65536);
  t.post(Side.PRIMARY, WR.IBV_WR_SEND, 18, 18, 64, 18);
  t.completion(Side.PRIMARY, WC.IBV_WC_SEND, 5, 99, 0, 18);
  t.session(Side.PRIMARY, SessionEvent.END, 0);
  return t;
}

const withoutTime = (events: TraceEvent[]) => events.map(({ t: _, ...rest }) => rest);

Deno.test("each kind is recorded with its own fields, oldest first, times monotonic", () => {
  const events = scenario().events();
  assert.deepEqual(withoutTime(events).slice(0, 7), [
    { kind: "SESSION", side: 0, event: 1, arg: 7 },
    { kind: "POST", side: 0, opcode: 0x102, seq: 16, wrId: 16, bytes: 4096, qpNum: 18 },
    { kind: "POST", side: 0, opcode: 0x102, seq: 17, wrId: 17, bytes: 65536, qpNum: 18 },
    { kind: "RECORD", side: 1, flags: 0, seq: 17, offset: 131072, length: 65536 },
    { kind: "FAULT", code: 3, seq: 17, arg: -1 },
    { kind: "ACK", side: 1, status: 1, seq: 17, nextSeq: 17, released: 131072 },
    { kind: "COMPLETION", side: 0, opcode: 128, status: 0, wrId: 2, byteLen: 32, qpNum: 18 },
  ]);
  assert.deepEqual(withoutTime(events).slice(7, 8), [{
    kind: "RECOVERY",
    step: 1,
    seq: 17,
    arg: 0,
  }]);
  for (let i = 1; i < events.length; i++) {
    assert.ok(Number.isSafeInteger(events[i].t) && events[i].t >= events[i - 1].t, `event ${i}`);
  }
});

Deno.test("a full ring overwrites the oldest, counts them dropped and keeps order", async (t) => {
  const trace = new Trace();
  await t.step("exactly full: nothing dropped", () => {
    trace.enable({ capacity: 8 });
    for (let seq = 1; seq <= 8; seq++) trace.post(0, 2, seq, seq, 64, 1);
    assert.equal(trace.dropped, 0);
    assert.deepEqual(trace.events().map((e) => "seq" in e && e.seq), [1, 2, 3, 4, 5, 6, 7, 8]);
  });
  await t.step("20 into 8: the last 8 kept in order, 12 dropped", () => {
    trace.enable({ capacity: 8 });
    for (let seq = 1; seq <= 20; seq++) trace.post(0, 2, seq, seq, 64, 1);
    assert.equal(trace.count, 8);
    assert.equal(trace.dropped, 12);
    assert.deepEqual(trace.events().map((e) => "seq" in e && e.seq), [
      13,
      14,
      15,
      16,
      17,
      18,
      19,
      20,
    ]);
    assert.equal(trace.snapshot().header.dropped, 12);
  });
  await t.step("disabled records nothing; clear forgets", () => {
    trace.disable();
    trace.post(0, 2, 99, 99, 64, 1);
    const last = trace.events().at(-1)!;
    assert.equal("seq" in last && last.seq, 20);
    trace.clear();
    assert.deepEqual([trace.count, trace.dropped], [0, 0]);
  });
  await t.step("capacity and names are checked", () => {
    assert.throws(() => trace.enable({ capacity: 0 }), RangeError);
    assert.throws(() => trace.enable({ capacity: 4 * 1024 * 1024 + 1 }), /1 to 4194304/);
    trace.registerName("FAULT", 1, "ACK_DROPPED");
    trace.registerName("FAULT", 1, "ACK_DROPPED");
    assert.throws(() => trace.registerName("FAULT", 1, "OTHER"), /already named ACK_DROPPED/);
    assert.throws(() => trace.registerName("RECOVERY", 2, "lower case"), RangeError);
    assert.throws(() => trace.registerName("RECOVERY", 70000, "BIG"), RangeError);
  });
});

/**
 * The child run with --trace-gc. V8 prints GC lines through C stdio, which is fully
 * buffered on a pipe while console.log is not: each marker flushes stdio first, so every
 * GC line lands between the markers it happened between. Only optimized code is free of
 * allocation (the interpreter boxes doubles): the warm-up calls get `burst` optimized, and
 * synchronous recompilation keeps that from depending on a background thread's schedule.
 */
const child = `
import { trace } from ${JSON.stringify(new URL("../../lib/trace/trace.ts", import.meta.url).href)};
const libc = Deno.dlopen("libc.so.6", { fflush: { parameters: ["pointer"], result: "i32" } });
const mark = (text) => { libc.symbols.fflush(null); console.log(text); };
trace.enable({ capacity: 65536 });
function burst(n) {
  for (let i = 0; i < n; i++) {
    if (trace.on) trace.post(0, 0x102, i, i, 65536, 18);
    if (trace.on) trace.completion(0, 128, 0, i & 15, 32, 18);
    if (trace.on) trace.record(1, 0, i, i * 4096, 4096);
    if (trace.on) trace.ack(1, 0, i, i + 1, i * 4096);
    if (trace.on) trace.fault(3, i, -1);
    if (trace.on) trace.recovery(1, i, 0);
    if (trace.on) trace.session(0, 1, i);
  }
}
let sink;
function allocate(n) { for (let i = 0; i < n; i++) sink = { i, j: [i] }; }
for (let k = 0; k < 40; k++) { burst(1000); allocate(1000); }
mark("@@RECORD"); burst(142858); mark("@@END");
mark("@@CONTROL"); allocate(200000); mark("@@END");
if (trace.dropped === 0 || sink.i !== 199999) throw new Error("the ring did not wrap");
`;

Deno.test("recording allocates nothing: 1,000,000 events after warm-up, no scavenge", async () => {
  const out = await new Deno.Command(Deno.execPath(), {
    args: [
      "eval",
      "--v8-flags=--trace-gc,--max-semi-space-size=1,--no-concurrent-recompilation",
      child,
    ],
    stderr: "inherit",
  }).output();
  assert.equal(out.code, 0);
  const stdout = new TextDecoder().decode(out.stdout);
  const gcsBetween = (mark: string) =>
    stdout.slice(stdout.indexOf(mark), stdout.indexOf("@@END", stdout.indexOf(mark)))
      .split("\n").filter((l) => /Scavenge|Mark-Compact|Mark-sweep|Minor/.test(l));
  assert.ok(stdout.includes("@@RECORD") && stdout.includes("@@CONTROL"), "markers printed");
  assert.deepEqual(gcsBetween("@@RECORD"), [], "no GC while recording");
  assert.ok(gcsBetween("@@CONTROL").length > 0, "the control loop that allocates is seen");
});

Deno.test("writeJsonl then readJsonl gives back the header, names and events", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const trace = scenario();
    for (let seq = 1; seq <= 60; seq++) trace.post(0, 2, seq, seq, 64, 1);
    assert.equal(await trace.writeJsonl(`${dir}/trace.jsonl`), 64);
    const back = await trace.readJsonl(`${dir}/trace.jsonl`);
    assert.deepEqual(back, trace.snapshot());
    assert.equal(back.header.dropped, 12 + 60 - 64);
    assert.deepEqual(back.header.names, {
      FAULT: { 3: "CRC_FLIP" },
      RECOVERY: { 1: "SKIP_POSTED" },
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a malformed, truncated or foreign file is refused with the line named", async (t) => {
  const dir = await Deno.makeTempDir();
  const header = { ...scenario().snapshot().header, events: 2 };
  const post = { t: 10, kind: "POST", side: 0, opcode: 2, seq: 1, wrId: 1, bytes: 64, qpNum: 1 };
  const json = (...lines: unknown[]) => lines.map((l) => JSON.stringify(l)).join("\n") + "\n";
  const cases: [string, string | Uint8Array, RegExp][] = [
    ["empty", "", /is empty/],
    [
      "foreign JSON lines",
      json({ level: "info", msg: "x" }, post),
      /line 1: not an rrl-trace header/,
    ],
    ["another version", json({ ...header, version: 2 }), /line 1: trace version 2/],
    ["not JSON", json(header, post).replace(/\n$/, "\n{oops\n"), /line 3: not JSON/],
    ["unknown kind", json(header, post, { ...post, kind: "NOPE" }), /line 3: unknown kind "NOPE"/],
    [
      "missing field",
      json(header, { ...post, qpNum: undefined }, post),
      /line 2: missing field 'qpNum'/,
    ],
    ["extra field", json(header, post, { ...post, extra: 1 }), /line 3: unexpected field 'extra'/],
    [
      "side out of range",
      json(header, { ...post, side: 2 }, post),
      /line 2: POST 'side' must be an integer from 0 to 1/,
    ],
    ["time goes back", json(header, post, { ...post, t: 9 }), /line 3: time goes back/],
    ["truncated", json(header, post), /line 3: the file ends after 1 of the header's 2 events/],
    ["too many events", json(header, post, post, post), /line 4: more events than/],
    ["overlong line", json(header) + "x".repeat(5000), /line 2: longer than 4096/],
    ["binary", new Uint8Array([0xff, 0xfe, 0x00, 0x81, 10]), /not UTF-8 text/],
  ];
  try {
    for (const [name, content, message] of cases) {
      await t.step(name, async () => {
        const path = `${dir}/${name.replaceAll(" ", "_")}.jsonl`;
        if (typeof content === "string") await Deno.writeTextFile(path, content);
        else await Deno.writeFile(path, content);
        await assert.rejects(new Trace().readJsonl(path), (e: Error) => {
          assert.ok(e instanceof TraceFileError, `${e}`);
          assert.match(e.message, message);
          return true;
        });
      });
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("every kind is formatted with its names", () => {
  const { header, events } = scenario().snapshot();
  const lines = formatEvents(events, header.names).map((l) =>
    l.replace(/^ *\+\d+\.\d{6} ms {2}/, "")
  );
  assert.deepEqual(lines, [
    "primary  SESSION    START arg 7",
    "primary  POST       WRITE+SEND seq 16 wr 16 4096 B qp 18",
    "primary  POST       WRITE+SEND seq 17 wr 17 65536 B qp 18",
    "replica  RECORD     LOG seq 17 offset 131072 length 65536",
    "-        FAULT      CRC_FLIP seq 17 arg -1",
    "replica  ACK        CRC_MISMATCH seq 17 next 17 released 131072",
    "primary  COMPLETION RECV SUCCESS wr 2 32 B qp 18",
    "-        RECOVERY   SKIP_POSTED seq 17 arg 0",
    "primary  RECORD     SKIP seq 17 offset 131072 length 65536",
    "primary  POST       SEND seq 18 wr 18 64 B qp 18",
    "primary  COMPLETION SEND WR_FLUSH_ERR wr 99 0 B qp 18",
    "primary  SESSION    END arg 0",
  ]);
  const unnamed = formatEvents(events, { FAULT: {}, RECOVERY: {} }).join("\n");
  assert.match(unnamed, /FAULT\(3\) seq 17/);
  assert.match(formatEvents(events.slice(0, 1), header.names)[0], /^\+\d+\.\d{6} ms {2}primary/);
});

Deno.test("selection: a seq range brings the faults, recovery and sessions in its span", () => {
  const events = scenario().events();
  const kinds = (s: TraceEvent[]) => s.map((e) => e.kind + ("seq" in e ? e.seq : ""));
  assert.deepEqual(kinds(selectEvents(events, { seq: parseSeqRange("17..17") })), [
    "POST17",
    "RECORD17",
    "FAULT17",
    "ACK17",
    "RECOVERY17",
    "RECORD17",
  ]);
  assert.deepEqual(kinds(selectEvents(events, { seq: parseSeqRange("16..18") })).length, 8);
  assert.deepEqual(kinds(selectEvents(events, { kinds: parseKinds("session") })), [
    "SESSION",
    "SESSION",
  ]);
  const [first, last] = [events[1].t / 1e6, events[2].t / 1e6];
  assert.equal(selectEvents(events, { fromMs: first, toMs: last }).length, 2);
  // Bounds typed in ms land on whole ns: x 1e6 alone misses these events (found flaky).
  for (const t of [8_460_211_553, 1_052_687_935, 4_270_887_172]) {
    const at = [{ ...events[1], t }];
    assert.equal(selectEvents(at, { fromMs: t / 1e6, toMs: t / 1e6 }).length, 1, `${t} ns`);
  }
  assert.deepEqual(selectEvents(events, { seq: { from: 500, to: 600 } }), []);
  assert.throws(() => parseSeqRange("9..3"), /empty/);
  assert.throws(() => parseSeqRange("a..b"), /A\.\.B/);
  assert.throws(() => parseKinds("POST,BOGUS"), /Unknown event kind 'BOGUS'/);
});

/** Runs cmd/trace.ts's `run` with console output captured. */
async function cli(args: string[]): Promise<{ code: number; out: string; err: string }> {
  const [log, error] = [console.log, console.error];
  let out = "", err = "";
  console.log = (...a: unknown[]) => void (out += a.join(" ") + "\n");
  console.error = (...a: unknown[]) => void (err += a.join(" ") + "\n");
  try {
    return { code: await run(args), out, err };
  } finally {
    [console.log, console.error] = [log, error];
  }
}

Deno.test("deno task trace prints summary and selected lines; usage errors exit 2", async (t) => {
  const dir = await Deno.makeTempDir();
  try {
    await scenario().writeJsonl(`${dir}/trace.jsonl`);
    await t.step("whole trace from the run directory", async () => {
      const { code, out } = await cli([dir]);
      assert.equal(code, 0);
      assert.match(out, /^trace: 12 events, 0 dropped, span \d+\.\d{6} ms, capacity 64/);
      assert.match(
        out,
        /by kind: POST 3, COMPLETION 2, RECORD 2, ACK 1, FAULT 1, RECOVERY 1, SESSION 2/,
      );
      assert.equal(out.trim().split("\n").length, 2 + 12);
    });
    await t.step("--seq and --kind on the file itself", async () => {
      const { code, out } = await cli([
        `${dir}/trace.jsonl`,
        "--seq",
        "17..17",
        "--kind",
        "FAULT,ACK",
      ]);
      assert.equal(code, 0);
      assert.match(out, /shown: 2 of 12 \(seq 17\.\.17 with .*, kinds FAULT,ACK\)/);
      assert.match(out, /FAULT {6}CRC_FLIP seq 17 arg -1\n.*ACK {8}CRC_MISMATCH seq 17/);
    });
    await t.step("--json", async () => {
      const { code, out } = await cli([dir, "--json", "--kind", "post"]);
      assert.equal(code, 0);
      const doc = JSON.parse(out);
      assert.equal(doc.summary.shown, 3);
      assert.deepEqual(doc.events.map((e: { seq: number }) => e.seq), [16, 17, 18]);
    });
    await t.step("usage errors exit 2 with the reason", async () => {
      for (
        const args of [[dir, "--seq", "5..1"], [dir, "--kind", "NOPE"], [dir, "--from", "-1"], [
          dir,
          "--from",
          "5",
          "--to",
          "1",
        ], []]
      ) {
        const { code, err } = await cli(args);
        assert.equal(code, 2, `${args.join(" ")}: ${err}`);
        assert.ok(err.length > 0);
      }
    });
    await t.step("a missing or malformed file exits 1 naming it", async () => {
      assert.match((await cli([`${dir}/none`])).err, /No run directory or trace file at/);
      await Deno.writeTextFile(`${dir}/bad.jsonl`, "{}\n");
      const { code, err } = await cli([`${dir}/bad.jsonl`]);
      assert.equal(code, 1);
      assert.match(err, /bad\.jsonl line 1: not an rrl-trace header/);
    });
    await t.step("as a program: exit code and output", async () => {
      const tool = new URL("../../cmd/trace.ts", import.meta.url).pathname;
      const out = await new Deno.Command(Deno.execPath(), {
        args: ["run", "-A", "--cached-only", tool, dir, "--seq", "18"],
      }).output();
      assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
      assert.match(new TextDecoder().decode(out.stdout), /POST {7}SEND seq 18 wr 18 64 B qp 18/);
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
