/**
 * One side of the verbs error-path sweep, serving many runs in one process so the sweep
 * pays Deno's start-up once per side, not once per failed call. Reads one JSON command per
 * stdin line, answers one JSON line on stdout per command; messages go to stderr.
 *
 *   verbs_sweep_side.ts --device D --host ADDRESS (RRL_SECRET in the environment)
 *
 * Commands (`plan` is an `RRL_VERBS_FAIL` text, see lib/verbs/inject.ts; null: none):
 * - `{"op":"listen","plan":P}`: a fresh `Replica.listen` on an ephemeral port;
 *   answers `{ok, port}` or `{ok:false, error, errorName}` with the leak check.
 * - `{"op":"close"}`: closes that replica; answers its `accepted` count, the session
 *   failures it logged, the verbs calls counted since `listen` and the objects left open.
 * - `{"op":"run","plan":P,"port":N,"count":N,"reconnect":N}`: `Primary.connect` to that
 *   port, replicates `count` 4 KiB logs four at a time, closes; answers `{ok, acked}` or the
 *   error, with the calls counted and the leak check.
 *
 * Every command is bounded by `opTimeoutMs`: a run that does not end is answered `hang`.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { Primary } from "../../../lib/replication/primary.ts";
import { Replica } from "../../../lib/replication/replica.ts";
import { planVerbsFailure, verbsCallCounts } from "../../../lib/verbs/inject.ts";
import { liveResourceLabels } from "../../../lib/verbs/resource.ts";

if (!import.meta.main) {
  throw new Error("verbs_sweep_side.ts is a program: run it, do not import it");
}

const { values } = parseArgs({
  args: Deno.args,
  options: { device: { type: "string" }, host: { type: "string" } },
});
const secret = Deno.env.get("RRL_SECRET");
if (!values.device || !values.host || !secret) {
  console.error("usage: RRL_SECRET=... verbs_sweep_side.ts --device D --host ADDRESS");
  Deno.exit(2);
}
const device = values.device;
const host = values.host;

const opTimeoutMs = 30_000;
const ringBytes = 1 << 20;
const countMax = 1000;
const lineBytesMax = 4096;

interface Command {
  op: "listen" | "close" | "run";
  plan?: string | null;
  port?: number;
  count?: number;
  reconnect?: number;
}

let replica: Replica | undefined;
let sessionFailures: string[] = [];

function failure(error: unknown) {
  const e = error as Error;
  return { ok: false, errorName: e?.name ?? typeof error, error: e?.message ?? String(error) };
}

function bounded<T>(work: Promise<T>): Promise<T | "hang"> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const hang = new Promise<"hang">((resolve) => {
    timer = setTimeout(() => resolve("hang"), opTimeoutMs);
  });
  return Promise.race([work, hang]).finally(() => clearTimeout(timer));
}

async function listen(plan: string | undefined) {
  planVerbsFailure(plan);
  sessionFailures = [];
  try {
    replica = await Replica.listen({
      device,
      address: host,
      hostname: host,
      port: 0,
      secret: secret!,
      ringBytes,
      wait: "events",
      log: (line) => {
        console.error(line);
        if (/session failed|cannot connect|failed/.test(line)) sessionFailures.push(line);
      },
    });
    return { ok: true, port: replica.port };
  } catch (error) {
    replica = undefined;
    return { ...failure(error), calls: verbsCallCounts(), leaked: liveResourceLabels() };
  }
}

async function close() {
  const r = replica;
  replica = undefined;
  const accepted = r?.stats().accepted ?? 0;
  let closeError: ReturnType<typeof failure> | undefined;
  try {
    await r?.close();
  } catch (error) {
    closeError = failure(error);
  }
  return {
    ok: closeError === undefined,
    ...closeError,
    accepted,
    sessionFailures,
    calls: verbsCallCounts(),
    leaked: liveResourceLabels(),
  };
}

async function run(c: Command) {
  const count = c.count ?? 0;
  if (!Number.isInteger(count) || count < 1 || count > countMax || !c.port) {
    return { ok: false, errorName: "RangeError", error: `bad run command ${JSON.stringify(c)}` };
  }
  planVerbsFailure(c.plan ?? undefined);
  let acked = 0;
  let result: Record<string, unknown> = { ok: true };
  try {
    await using primary = await Primary.connect({
      device,
      host,
      port: c.port,
      secret: secret!,
      ringBytes,
      depth: 4,
      wait: "events",
      reconnect: { attempts: c.reconnect ?? 0, delayMs: 50 },
      log: (line) => console.error(line),
    });
    const data = new Uint8Array(4096);
    for (let i = 0; i < count; i += 4) {
      const batch = [];
      for (let j = i; j < Math.min(count, i + 4); j++) {
        data[0] = j;
        batch.push(primary.replicate(data, { lba: j }).then(() => acked++));
      }
      await Promise.all(batch);
    }
  } catch (error) {
    result = failure(error);
  }
  return { ...result, acked, calls: verbsCallCounts(), leaked: liveResourceLabels() };
}

async function handle(c: Command): Promise<unknown> {
  const plan = c.plan ?? undefined;
  if (c.op === "listen") return await listen(plan);
  if (c.op === "close") return await close();
  if (c.op === "run") return await run(c);
  return { ok: false, errorName: "RangeError", error: `unknown op ${JSON.stringify(c.op)}` };
}

const encoder = new TextEncoder();
let pending = "";
for await (const chunk of Deno.stdin.readable.pipeThrough(new TextDecoderStream())) {
  pending += chunk;
  if (pending.length > lineBytesMax) {
    throw new RangeError(`a command line passed ${lineBytesMax} B`);
  }
  for (let nl = pending.indexOf("\n"); nl >= 0; nl = pending.indexOf("\n")) {
    const line = pending.slice(0, nl);
    pending = pending.slice(nl + 1);
    const c = JSON.parse(line) as Command;
    const answer = await bounded(handle(c));
    const out = answer === "hang" ? { ok: false, errorName: "hang", error: "no answer" } : answer;
    await Deno.stdout.write(encoder.encode(JSON.stringify({ op: c.op, ...out as object }) + "\n"));
  }
}
// Stdin ended: leave even if a run that hung still holds timers (the sweep reported it).
await replica?.close();
Deno.exit(0);
