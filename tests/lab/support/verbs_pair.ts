/**
 * Test fixture: two connected RC QPs with registered buffers, on the two devices of the
 * namespace pair (frames cross the veth) or both on one device (loopback).
 *
 * @module
 */
import { IBV_ACCESS_FLAGS as A } from "../../../ffi/verbs_constants.ts";
import { readTopology, type Topology } from "../../../lib/lab/topology.ts";
import { Context } from "../../../lib/verbs/context.ts";
import { CompletionChannel, CompletionQueue } from "../../../lib/verbs/cq.ts";
import { type MemoryRegion, ProtectionDomain } from "../../../lib/verbs/pd.ts";
import { QueuePair } from "../../../lib/verbs/qp.ts";

/** The topology the lab brought up; fails (never skips) when there is none. */
export function labTopology(): Topology {
  const topology = readTopology();
  if (!topology) {
    throw new Error(
      "No Soft-RoCE topology is up: run the lab tests with 'deno task test' or 'deno task lab'",
    );
  }
  return topology;
}

/** One side: context, PD, CQs, QP, and a registered buffer. */
export interface Side {
  ctx: Context;
  pd: ProtectionDomain;
  channel: CompletionChannel;
  sendCq: CompletionQueue;
  recvCq: CompletionQueue;
  qp: QueuePair;
  buffer: ArrayBuffer;
  bytes: Uint8Array;
  mr: MemoryRegion;
  gidIndex: number;
}

/** Both sides, connected; dispose to tear down in order. */
export interface Pair extends Disposable {
  a: Side;
  b: Side;
}

const access = A.IBV_ACCESS_LOCAL_WRITE | A.IBV_ACCESS_REMOTE_WRITE | A.IBV_ACCESS_REMOTE_READ;

function openSide(device: string, address: string, bufferBytes: number): Side {
  const ctx = Context.open(device);
  const gid = ctx.roceV2Gid(1, address);
  if (!gid) throw new Error(`${device} has no RoCEv2 GID for ${address}`);
  const pd = new ProtectionDomain(ctx);
  const channel = new CompletionChannel(ctx);
  const sendCq = new CompletionQueue(ctx, { entries: 256 });
  const recvCq = new CompletionQueue(ctx, { entries: 256, channel });
  const qp = QueuePair.create(pd, {
    sendCq,
    recvCq,
    maxSendWr: 64,
    maxRecvWr: 64,
    maxInlineData: 64,
  });
  const buffer = new ArrayBuffer(bufferBytes);
  const mr = pd.register(buffer, access);
  return {
    ctx,
    pd,
    channel,
    sendCq,
    recvCq,
    qp,
    buffer,
    bytes: new Uint8Array(buffer),
    mr,
    gidIndex: gid.index,
  };
}

function closeSide(side: Side) {
  for (const r of [side.qp, side.mr, side.sendCq, side.recvCq, side.channel, side.pd, side.ctx]) {
    r.close();
  }
}

/** Opens both sides on `kind` of topology and connects them (RTS). */
export function openPair(
  kind: "pair" | "loopback",
  options: { bufferBytes?: number; connect?: boolean } = {},
): Pair {
  const topology = labTopology();
  const bufferBytes = options.bufferBytes ?? 1 << 20;
  const a = openSide(topology.a.device, topology.a.address, bufferBytes);
  const bEnd = kind === "pair" && topology.kind === "pair" ? topology.b : topology.a;
  if (kind === "pair" && topology.kind !== "pair") {
    throw new Error("The pair tests need the namespace pair, but the lab is in loopback mode");
  }
  const b = openSide(bEnd.device, bEnd.address, bufferBytes);
  if (options.connect !== false) connect(a, b);
  return {
    a,
    b,
    [Symbol.dispose]() {
      closeSide(a);
      closeSide(b);
    },
  };
}

/** Connects two sides' QPs to each other. */
export function connect(a: Side, b: Side): void {
  const gidA = a.ctx.queryGid(1, a.gidIndex);
  const gidB = b.ctx.queryGid(1, b.gidIndex);
  a.qp.connect(b.qp.endpoint(gidB), {
    sgidIndex: a.gidIndex,
    access,
    timeout: 12,
    retryCount: 3,
    rnrRetry: 3,
  });
  b.qp.connect(a.qp.endpoint(gidA), {
    sgidIndex: b.gidIndex,
    access,
    timeout: 12,
    retryCount: 3,
    rnrRetry: 3,
  });
}

/** Polls `cq` until `count` completions arrived or `timeoutMs` passed; returns how many. */
export function pollUntil(
  cq: CompletionQueue,
  count: number,
  timeoutMs = 5000,
  onCompletion?: (i: number) => void,
): number {
  let got = 0;
  const deadline = performance.now() + timeoutMs;
  while (got < count && performance.now() < deadline) {
    const n = cq.poll();
    for (let i = 0; i < n; i++) onCompletion?.(i);
    got += n;
  }
  return got;
}
