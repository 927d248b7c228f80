/**
 * rdma-replica-lab: a Deno testbed for RDMA log replication over real verbs
 * (libibverbs through `Deno.dlopen`) on Soft-RoCE.
 *
 * Everything an experiment script needs is exported here.
 *
 * @example Two RC QPs on the lab's Soft-RoCE pair, one RDMA WRITE
 * ```ts ignore
 * import {
 *   CompletionQueue, Context, IBV_ACCESS_FLAGS as A, IBV_WR_OPCODE as O, IBV_SEND_FLAGS as S,
 *   ProtectionDomain, QueuePair, readTopology, sendDescriptor,
 * } from "./mod.ts";
 *
 * const topo = readTopology()!; // written by scripts/softroce-pair.sh up
 * using ctx = Context.open(topo.a.device);
 * using pd = new ProtectionDomain(ctx);
 * using cq = new CompletionQueue(ctx, { entries: 64 });
 * using qp = QueuePair.create(pd, { sendCq: cq, recvCq: cq, maxSendWr: 16, maxRecvWr: 16 });
 * // ... exchange qp.endpoint(gid) with the peer, then:
 * // qp.connect(peerEndpoint, { sgidIndex, access: A.IBV_ACCESS_REMOTE_WRITE });
 * const wr = sendDescriptor();
 * wr.opcode = O.IBV_WR_RDMA_WRITE;
 * wr.flags = S.IBV_SEND_SIGNALED;
 * // wr.addr/length/lkey from an MR, wr.remoteAddr/rkey from the peer
 * qp.sendChain.add(wr);
 * qp.postSend();
 * while (cq.poll() === 0) { }
 * ```
 *
 * @module
 */

// Verbs: the safe layer over libibverbs.
export { Context, listDevices } from "./lib/verbs/context.ts";
export type { DeviceAttributes, PortAttributes, RoceGid } from "./lib/verbs/context.ts";
export { MemoryRegion, type MemoryTarget, ProtectionDomain } from "./lib/verbs/pd.ts";
export { CompletionChannel, CompletionQueue, statusText } from "./lib/verbs/cq.ts";
export { type ConnectOptions, type QpEndpoint, type QpOptions, QueuePair } from "./lib/verbs/qp.ts";
export {
  type RecvDescriptor,
  recvDescriptor,
  type SendDescriptor,
  sendDescriptor,
} from "./lib/verbs/work_requests.ts";
export {
  CompletionError,
  ResourceError,
  UnsupportedError,
  VerbsError,
} from "./lib/verbs/errors.ts";
export { formatGid, gidOfIpv4, ipv4OfGid } from "./lib/verbs/gid.ts";
export { liveResourceLabels } from "./lib/verbs/resource.ts";
export { verbsCallCount } from "./lib/verbs/inject.ts";
export * from "./ffi/verbs_constants.ts";
export { callWay } from "./ffi/prepared_call.ts";

// The log: record and ack codecs, CRC32C, ring arithmetic.
export * from "./lib/log/record.ts";
export * from "./lib/log/ack.ts";
export * from "./lib/log/ring.ts";
export { crc32c, crc32cAt, crc32cBackend } from "./lib/log/crc32c.ts";

// The lab: topology, running commands where Soft-RoCE works.
export { inNamespace, readTopology, type Topology } from "./lib/lab/topology.ts";
export { runInLab } from "./lib/lab/runner.ts";
export { Prng } from "./lib/prng.ts";
