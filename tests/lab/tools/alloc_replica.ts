/**
 * The replica side of the engine allocation test: `Replica.listen` with a persistence hook
 * that opens a heap window when log `warmup + 1` is accepted and closes it at log
 * `warmup + logs`; prints the markers (see `tests/lab/support/heap_window.ts`) and, after
 * the session ended, one JSON line. `RRL_ALLOC_CONTROL=1` allocates 1040 bytes per log in
 * the hook: the positive control.
 *
 *   alloc_replica.ts --device D --host ADDRESS --ready-file PATH
 *     [--ring 1m] [--warmup N] [--logs N] [--tail N] [--timeout-ms MS]
 *
 * @module
 */
import { parseArgs } from "node:util";
import { parseBytes } from "../../../lib/bench/workload.ts";
import { Replica } from "../../../lib/replication/replica.ts";
import { controlGarbage, HeapWindow } from "../support/heap_window.ts";

if (!import.meta.main) throw new Error("alloc_replica.ts is a program: run it, do not import it");

const { values } = parseArgs({
  args: Deno.args,
  options: {
    device: { type: "string" },
    host: { type: "string" },
    "ready-file": { type: "string" },
    ring: { type: "string", default: "1m" },
    warmup: { type: "string", default: "2048" },
    logs: { type: "string", default: "4096" },
    tail: { type: "string", default: "64" },
    "timeout-ms": { type: "string", default: "120000" },
  },
});
const secret = Deno.env.get("RRL_SECRET");
if (!values.device || !values.host || !values["ready-file"] || !secret) {
  console.error(
    "usage: RRL_SECRET=... alloc_replica.ts --device D --host ADDRESS --ready-file PATH [--ring 1m] [--warmup N] [--logs N] [--tail N] [--timeout-ms MS]",
  );
  Deno.exit(2);
}
const warmup = Number(values.warmup);
const logs = Number(values.logs);
const total = warmup + logs + Number(values.tail);
const timeoutMs = Number(values["timeout-ms"]);
const first = warmup + 1;
const last = warmup + logs;
if (!(warmup >= 1 && logs >= 2 && total >= last && timeoutMs > 0)) {
  console.error("--warmup must be >= 1, --logs >= 2, --tail >= 0, --timeout-ms > 0");
  Deno.exit(2);
}

const control = Deno.env.get("RRL_ALLOC_CONTROL") === "1";
const window = new HeapWindow("replica");
const allArrived = Promise.withResolvers<void>();
let sink: unknown = undefined;
let persisted = 0;

await window.prepare();
const replica = await Replica.listen({
  device: values.device,
  address: values.host,
  hostname: values.host,
  port: 0,
  secret,
  ringBytes: parseBytes(values.ring!, "--ring"),
  persist: (log) => {
    if (control) sink = controlGarbage(log.seq);
    persisted++;
    if (log.seq === first) window.begin();
    else if (log.seq === last) window.end();
    if (log.seq === total) allArrived.resolve();
    return true;
  },
});
let timer: ReturnType<typeof setTimeout> | undefined;
try {
  await Deno.writeTextFile(values["ready-file"], `${replica.port}\n`);
  // One timer bounds the whole run; nothing polls during the window.
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () =>
        reject(
          new Error(
            `The replica persisted ${persisted} of ${total} logs within ${timeoutMs} ms`,
          ),
        ),
      timeoutMs,
    );
  });
  await Promise.race([allArrived.promise, timeout]);
  await Promise.race([window.finish(), timeout]);
  await Promise.race([replica.sessionEnded(), timeout]);
} finally {
  clearTimeout(timer);
  await replica.close();
}
const stats = replica.stats();
const heapBytes = window.heapBytes;
const measuredLogs = last - first;
console.log(JSON.stringify({
  side: "replica",
  control,
  warmup,
  logs,
  measuredLogs,
  heapBytes,
  turns: window.turns,
  bytesPerLog: heapBytes === undefined ? undefined : heapBytes / measuredLogs,
  accepted: stats.accepted,
  refused: stats.refused,
  digest: stats.digest,
  sinkKept: sink !== undefined,
}));
