/**
 * The primary side of the engine allocation test: `Primary.stream` with a producer of
 * fixed-size logs whose state is allocated up front. The heap window (see
 * `tests/lab/support/heap_window.ts`) opens in `replicated` when the `warmup`-th log is
 * acked and closes when the `(warmup + logs)`-th is; `tail` more logs follow so the window
 * ends in steady state. Prints the markers, then one JSON line. `RRL_ALLOC_CONTROL=1`
 * allocates 1040 bytes per acked log in `replicated`: the positive control.
 *
 *   alloc_primary.ts --device D --address LOCAL --host REPLICA --port P
 *     [--ring 1m] [--log-bytes 4096] [--depth 16] [--warmup N] [--logs N] [--tail N]
 *     [--timeout-ms MS]
 *
 * @module
 */
import { parseArgs } from "node:util";
import { parseBytes } from "../../../lib/bench/workload.ts";
import {
  type LogProducer,
  Primary,
  type ReplicatedLog,
  type StreamLog,
} from "../../../lib/replication/primary.ts";
import { controlGarbage, HeapWindow } from "../support/heap_window.ts";

if (!import.meta.main) throw new Error("alloc_primary.ts is a program: run it, do not import it");

const { values } = parseArgs({
  args: Deno.args,
  options: {
    device: { type: "string" },
    address: { type: "string" },
    host: { type: "string" },
    port: { type: "string" },
    ring: { type: "string", default: "1m" },
    "log-bytes": { type: "string", default: "4096" },
    depth: { type: "string", default: "16" },
    warmup: { type: "string", default: "2048" },
    logs: { type: "string", default: "4096" },
    tail: { type: "string", default: "64" },
    "timeout-ms": { type: "string", default: "120000" },
  },
});
const secret = Deno.env.get("RRL_SECRET");
if (!values.device || !values.host || !values.port || !secret) {
  console.error(
    "usage: RRL_SECRET=... alloc_primary.ts --device D [--address LOCAL] --host REPLICA --port P [--ring 1m] [--log-bytes 4096] [--depth 16] [--warmup N] [--logs N] [--tail N] [--timeout-ms MS]",
  );
  Deno.exit(2);
}
const ringBytes = parseBytes(values.ring!, "--ring");
const logBytes = parseBytes(values["log-bytes"]!, "--log-bytes");
const warmup = Number(values.warmup);
const logs = Number(values.logs);
const total = warmup + logs + Number(values.tail);
const timeoutMs = Number(values["timeout-ms"]);
if (!(warmup >= 1 && logs >= 1 && total >= warmup + logs && timeoutMs > 0)) {
  console.error("--warmup and --logs must be >= 1, --tail >= 0, --timeout-ms > 0");
  Deno.exit(2);
}
const lbaBlocks = 1 << 18;
const control = Deno.env.get("RRL_ALLOC_CONTROL") === "1";

/** Fixed-size logs, every field preallocated; marks the window from `replicated`. */
class FixedLogs implements LogProducer {
  readonly window = new HeapWindow("primary");
  described = 0;
  replicatedLogs = 0;
  failedLogs = 0;
  inOrder = true;
  lastSeq = 0;
  firstFailure: string | undefined;
  writePosBegin = 0;
  writePosEnd = 0;
  sink: unknown = undefined;
  primary: Primary | undefined;

  next(out: StreamLog): boolean {
    if (this.described === total) return false;
    out.length = logBytes;
    out.lba = (this.described * (logBytes / 4096)) % lbaBlocks;
    out.fua = false;
    this.described++;
    return true;
  }

  fill(ring: Uint8Array, offset: number, length: number): void {
    ring.fill(this.described & 0xff, offset, offset + length);
  }

  replicated(log: ReplicatedLog): void {
    const n = ++this.replicatedLogs;
    if (log.seq !== this.lastSeq + 1) this.inOrder = false;
    this.lastSeq = log.seq;
    if (control) this.sink = controlGarbage(n);
    if (n === warmup) {
      this.writePosBegin = this.primary!.stats().writePos; // before the window: it allocates
      this.window.begin();
    } else if (n === warmup + logs) {
      this.window.end();
      this.writePosEnd = this.primary!.stats().writePos;
    }
  }

  failed(seq: number, error: Error): void {
    this.failedLogs++;
    this.firstFailure ??= `log ${seq}: ${error.message}`;
  }
}

const producer = new FixedLogs();
let timer: ReturnType<typeof setTimeout> | undefined;
const primary = await Primary.connect({
  device: values.device,
  address: values.address,
  host: values.host,
  port: Number(values.port),
  secret,
  ringBytes,
  maxLogBytes: logBytes,
  depth: Number(values.depth),
});
let result;
let digest;
try {
  producer.primary = primary;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () =>
        reject(
          new Error(
            `The stream replicated ${producer.replicatedLogs} of ${total} logs within ${timeoutMs} ms`,
          ),
        ),
      timeoutMs,
    );
  });
  await producer.window.prepare();
  result = await Promise.race([primary.stream(producer), timeout]);
  await Promise.race([producer.window.finish(), timeout]);
  digest = primary.digest();
} finally {
  clearTimeout(timer);
  await primary.close();
}
const heapBytes = producer.window.heapBytes;
console.log(JSON.stringify({
  side: "primary",
  control,
  warmup,
  logs,
  measuredLogs: logs,
  heapBytes,
  turns: producer.window.turns,
  bytesPerLog: heapBytes === undefined ? undefined : heapBytes / logs,
  windowLaps: (producer.writePosEnd - producer.writePosBegin) / ringBytes,
  total,
  result: { ...result, failure: result.failure?.message },
  failedLogs: producer.failedLogs,
  firstFailure: producer.firstFailure,
  inOrder: producer.inOrder,
  digest,
  sinkKept: producer.sink !== undefined,
}));
