/**
 * The verbs hot path in a loop: per round, post one inline SEND (A) and one RECV (B) and
 * poll both CQs until the completions arrive — `ops.post_send`, `ops.post_recv` and
 * `ops.poll_cq` through `ffi/prepared_call.ts`. Used by `deno task bench` (ns per round
 * for each call way) and by the lab tests that prove the loop allocates nothing and
 * survives GC pressure.
 *
 * Run as a program it prints one JSON line; `--marks` prints `@@BEGIN`/`@@END` around
 * the measured loop (for `--v8-flags=--trace-gc` counting).
 *
 * @module
 */
import { libc } from "../../ffi/libc.ts";
import { callWay } from "../../ffi/prepared_call.ts";
import {
  IBV_ACCESS_FLAGS as A,
  IBV_SEND_FLAGS as S,
  IBV_WR_OPCODE as O,
} from "../../ffi/verbs_constants.ts";
import { InvariantError } from "../assert.ts";
import { Context } from "../verbs/context.ts";
import { CompletionQueue } from "../verbs/cq.ts";
import { ProtectionDomain } from "../verbs/pd.ts";
import { QueuePair } from "../verbs/qp.ts";
import { recvDescriptor, sendDescriptor } from "../verbs/work_requests.ts";

/** Options of {@linkcode runHotPath}. */
export interface HotPathOptions {
  deviceA: string;
  addressA: string;
  deviceB: string;
  addressB: string;
  /** Measured rounds (1..10^7). */
  rounds: number;
  /** Unmeasured rounds first, so V8 optimizes the loop. */
  warmup: number;
  /** Every N rounds: garbage, then `gc()` when exposed (0: never). */
  gcEvery?: number;
  /** Print `@@BEGIN`/`@@END` around the measured rounds. */
  marks?: boolean;
}

/** What one run measured. */
export interface HotPathResult {
  way: string;
  rounds: number;
  nsPerRound: number;
  /** ns per `poll_cq` on an empty CQ (the bare call cost). */
  nsPerEmptyPoll: number;
  /**
   * Growth of V8's used heap over the measured rounds, per round: the bytes each round
   * allocates when no collection ran in between (run with a large young generation).
   */
  heapBytesPerRound: number;
}

const roundsMax = 10_000_000;
const pollSpinMax = 10_000_000;

/** Runs the loop; throws InvariantError if any completion or byte is wrong. */
export function runHotPath(o: HotPathOptions): HotPathResult {
  if (!Number.isInteger(o.rounds) || o.rounds < 1 || o.rounds > roundsMax) {
    throw new RangeError(`rounds must be 1..${roundsMax}, got ${o.rounds}`);
  }
  using ctxA = Context.open(o.deviceA);
  using ctxB = o.deviceB === o.deviceA ? undefined : Context.open(o.deviceB);
  const ctxOfB = ctxB ?? ctxA;
  const gidA = ctxA.roceV2Gid(1, o.addressA);
  const gidB = ctxOfB.roceV2Gid(1, o.addressB);
  if (!gidA || !gidB) {
    throw new Error(
      `No RoCEv2 GID for ${o.addressA} on ${o.deviceA} or ${o.addressB} on ${o.deviceB}`,
    );
  }
  using pdA = new ProtectionDomain(ctxA);
  using pdB = ctxB ? new ProtectionDomain(ctxB) : undefined;
  const pdOfB = pdB ?? pdA;
  using cqA = new CompletionQueue(ctxA, { entries: 64, pollBatch: 16 });
  using cqB = new CompletionQueue(ctxOfB, { entries: 64, pollBatch: 16 });
  using empty = new CompletionQueue(ctxA, { entries: 16, pollBatch: 16 });
  using qpA = QueuePair.create(pdA, {
    sendCq: cqA,
    recvCq: cqA,
    maxSendWr: 16,
    maxRecvWr: 16,
    maxInlineData: 64,
  });
  using qpB = QueuePair.create(pdOfB, {
    sendCq: cqB,
    recvCq: cqB,
    maxSendWr: 16,
    maxRecvWr: 16,
    maxInlineData: 64,
  });
  const buffer = new ArrayBuffer(4096);
  const bytes = new Uint8Array(buffer);
  using mrB = pdOfB.register(buffer, A.IBV_ACCESS_LOCAL_WRITE);
  const source = new ArrayBuffer(64);
  const sourceWords = new Uint32Array(source);
  const access = A.IBV_ACCESS_LOCAL_WRITE;
  qpA.connect(qpB.endpoint(gidB.gid), { sgidIndex: gidA.index, access, rnrRetry: 6 });
  qpB.connect(qpA.endpoint(gidA.gid), { sgidIndex: gidB.index, access, rnrRetry: 6 });

  const send = sendDescriptor();
  send.opcode = O.IBV_WR_SEND;
  send.flags = S.IBV_SEND_SIGNALED | S.IBV_SEND_INLINE;
  send.addr = Number(Deno.UnsafePointer.value(Deno.UnsafePointer.of(source)));
  send.length = 64;
  const recv = recvDescriptor();
  recv.addr = mrB.address;
  recv.length = 64;
  recv.lkey = mrB.lkey;
  const words = new Uint32Array(buffer, 0, 16);

  // RRL_HOT_ALLOCATE=1: allocate per round, the control that proves the GC check can fail.
  const allocate = Deno.env.get("RRL_HOT_ALLOCATE") === "1";
  let sink: unknown = undefined;
  const round = (i: number) => {
    if (allocate) sink = new Array(128).fill(i);
    recv.wrId = i;
    qpB.recvChain.add(recv);
    qpB.postRecv();
    sourceWords[0] = i;
    send.wrId = i;
    qpA.sendChain.add(send);
    qpA.postSend();
    awaitOne(cqA, i);
    awaitOne(cqB, i);
    if (words[0] !== i) throw new InvariantError(`round ${i}: received ${words[0]}`);
  };
  // deno-lint-ignore no-explicit-any
  const gc = (globalThis as any).gc as (() => void) | undefined;
  let garbage: unknown[] = [];
  for (let i = 0; i < o.warmup; i++) round(i);
  // V8's --trace-gc lines go through C stdio, buffered on a pipe: flush it before each
  // marker so a GC inside the loop is printed between the markers.
  if (o.marks) {
    libc.symbols.fflush(null);
    console.log("@@BEGIN");
  }
  const heap0 = Deno.memoryUsage().heapUsed;
  const t0 = performance.now();
  for (let i = 0; i < o.rounds; i++) {
    round(o.warmup + i);
    if (o.gcEvery && i % o.gcEvery === 0) {
      garbage = Array.from({ length: 64 }, (_, k) => new Uint8Array(64 + k));
      gc?.();
    }
  }
  const t1 = performance.now();
  const heap1 = Deno.memoryUsage().heapUsed;
  if (o.marks) {
    libc.symbols.fflush(null);
    console.log("@@END");
  }
  const emptyPolls = Math.min(o.rounds, 100_000);
  const t2 = performance.now();
  for (let i = 0; i < emptyPolls; i++) {
    if (empty.poll() !== 0) throw new InvariantError("empty CQ had a completion");
  }
  const t3 = performance.now();
  if (garbage.length < 0 || bytes.length !== 4096 || sink === null) {
    throw new InvariantError("unreachable");
  }
  return {
    way: callWay,
    rounds: o.rounds,
    nsPerRound: ((t1 - t0) * 1e6) / o.rounds,
    nsPerEmptyPoll: ((t3 - t2) * 1e6) / emptyPolls,
    heapBytesPerRound: (heap1 - heap0) / o.rounds,
  };
}

function awaitOne(cq: CompletionQueue, wrId: number): void {
  for (let spin = 0; spin < pollSpinMax; spin++) {
    const n = cq.poll();
    if (n === 0) continue;
    if (n !== 1 || cq.status(0) !== 0 || cq.wrId(0) !== wrId) {
      throw new InvariantError(
        `round ${wrId}: ${n} completions, status ${cq.status(0)}, wr_id ${cq.wrId(0)}`,
      );
    }
    return;
  }
  throw new InvariantError(`round ${wrId}: no completion after ${pollSpinMax} polls`);
}

if (import.meta.main) {
  const [deviceA, addressA, deviceB, addressB, rounds = "20000", warmup = "5000", gcEvery = "0"] =
    Deno.args;
  if (!addressB) {
    console.error(
      "usage: hot_path.ts DEVICE_A ADDRESS_A DEVICE_B ADDRESS_B [ROUNDS] [WARMUP] [GC_EVERY] [--marks]",
    );
    Deno.exit(2);
  }
  const result = runHotPath({
    deviceA,
    addressA,
    deviceB,
    addressB,
    rounds: Number(rounds),
    warmup: Number(warmup),
    gcEvery: Number(gcEvery),
    marks: Deno.args.includes("--marks"),
  });
  console.log(JSON.stringify(result));
}
