/**
 * Holds a replica's bootstrap slots with connections that never send a byte (issue 14 item
 * 7), in two phases. Until `--relent-file` exists: every slot it can get, re-opening one as
 * soon as the replica drops one (a primary from this address is refused BUSY). Then, as in
 * the issue: every `--every-ms`, `--sockets` new connections. Writes `--started-file` once
 * it holds a slot, runs until `--stop-file` exists (or `--max-ms`), then prints one JSON
 * line: the CHALLENGEs and REFUSE BUSYs of the first phase and of each round of the second;
 * per CHALLENGE, how long it took and how long the replica let it hold its slot.
 *
 *   hold_slots.ts --host H --port P --sockets N --every-ms MS --started-file F
 *     --relent-file F --stop-file F [--max-ms MS]
 */
import { parseArgs } from "node:util";
import { decodeMessage } from "../../../lib/replication/control_codec.ts";

if (!import.meta.main) throw new Error("hold_slots.ts is a program: run it, do not import it");
const { values } = parseArgs({
  args: Deno.args,
  options: {
    host: { type: "string" },
    port: { type: "string" },
    sockets: { type: "string", default: "10" },
    "every-ms": { type: "string", default: "3500" },
    "started-file": { type: "string" },
    "relent-file": { type: "string" },
    "stop-file": { type: "string" },
    "max-ms": { type: "string", default: "150000" },
  },
});
const hostname = values.host!;
const port = Number(values.port);
const sockets = Number(values.sockets);
const everyMs = Number(values["every-ms"]);
const maxMs = Number(values["max-ms"]);
const frameWaitMs = 5_000; // a first frame takes milliseconds; none by then is "none"
const pollMs = 50;
const busyPauseMs = 250; // after a BUSY in phase 1, unless one of ours is dropped first

const stopped = Promise.withResolvers<null>();
const since = (t0: number) => Math.round(performance.now() - t0);
const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const exists = (path: string) => Deno.stat(path).then(() => true, () => false);

function closeQuietly(conn: Deno.TcpConn): void {
  try {
    conn.close();
  } catch { /* already closed */ }
}

// The first frame's type (REFUSE as its reason), "closed" or "none".
async function firstFrame(conn: Deno.TcpConn): Promise<string> {
  const bytes = new Uint8Array(1100);
  let got = 0;
  const end = () => got < 4 ? Infinity : 4 + new DataView(bytes.buffer).getUint32(0, true);
  while (got < end()) {
    if (got === bytes.length) return "oversized";
    const n = await conn.read(bytes.subarray(got));
    if (n === null) return "closed";
    got += n;
  }
  const decoded = decodeMessage(bytes.subarray(0, end()));
  if (!decoded.ok) return decoded.reason;
  return decoded.value.type === "REFUSE" ? decoded.value.reason : decoded.value.type;
}

// Resolves when the peer closes (or resets) the connection.
async function drain(conn: Deno.TcpConn): Promise<void> {
  const buffer = new Uint8Array(256);
  try {
    while ((await conn.read(buffer)) !== null) { /* a silent client ignores what comes */ }
  } catch { /* a reset is a close */ }
}

/** One silent connection: its first frame, and (for a CHALLENGE) when the replica dropped
 * it, in ms after connecting (null: still open when the holder stopped). */
async function openSilent() {
  const opened = performance.now();
  const conn = await Deno.connect({ hostname, port });
  const timer = setTimeout(() => closeQuietly(conn), frameWaitMs);
  const first = await firstFrame(conn).catch(() => "none");
  clearTimeout(timer);
  const challengeMs = since(opened);
  if (first !== "CHALLENGE") {
    closeQuietly(conn);
    return { first, challengeMs, held: Promise.resolve(null) };
  }
  const closedByReplica = drain(conn).then(() => since(opened));
  const held = Promise.race([closedByReplica, stopped.promise]).finally(() => closeQuietly(conn));
  return { first, challengeMs, held };
}
type Silent = Awaited<ReturnType<typeof openSilent>>;

const started = performance.now();
const over = async () => since(started) >= maxMs || await exists(values["stop-file"]!);
const challengeMs: number[] = [];
const held: Promise<number | null>[] = [];
function tally(opened: Silent[]) {
  const challenges = opened.filter((o) => o.first === "CHALLENGE");
  challengeMs.push(...challenges.map((o) => o.challengeMs));
  held.push(...challenges.map((o) => o.held));
  return {
    challenges: challenges.length,
    busy: opened.filter((o) => o.first === "BUSY").length,
    other: opened.map((o) => o.first).filter((f) => f !== "CHALLENGE" && f !== "BUSY"),
  };
}

// Phase 1: one connection at a time; after a BUSY, the next once one of ours is dropped.
const holding = new Set<Promise<unknown>>();
const phase1: Silent[] = [];
while (!(await exists(values["relent-file"]!)) && !(await over())) {
  const opened = await openSilent();
  phase1.push(opened);
  if (opened.first === "CHALLENGE") {
    const done: Promise<unknown> = opened.held.finally(() => holding.delete(done));
    holding.add(done);
    if (holding.size === 1) await Deno.writeTextFile(values["started-file"]!, "");
  } else {
    await Promise.race([...holding, pause(busyPauseMs)]);
  }
}
const continuous = tally(phase1);

// Phase 2: the attack, `sockets` new connections every `everyMs`.
const rounds: ReturnType<typeof tally>[] = [];
while (!(await over())) {
  const roundStart = performance.now();
  rounds.push(tally(await Promise.all(Array.from({ length: sockets }, openSilent))));
  while (since(roundStart) < everyMs && !(await over())) await pause(pollMs);
}
stopped.resolve(null);
const heldMs = (await Promise.all(held)).filter((ms): ms is number => ms !== null);
const stillOpenAtStop = held.length - heldMs.length;
console.log(JSON.stringify({ continuous, rounds, challengeMs, heldMs, stillOpenAtStop }));
