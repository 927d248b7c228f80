/**
 * rdma-replica-lab: a Deno testbed for RDMA log replication over real verbs
 * (libibverbs through `Deno.dlopen`) on Soft-RoCE.
 *
 * Everything an experiment script needs to replicate and measure is exported here; the lab
 * plumbing (the Soft-RoCE topology, the VM runner, child processes, scenario runs) is in
 * `lab.ts`.
 *
 * @example Replicate logs to a replica (run under `deno task lab -- deno run -A script.ts`)
 * ```ts ignore
 * import { blockBytes, Primary } from "./mod.ts";
 * import { readTopology } from "./lab.ts";
 *
 * const topo = readTopology()!; // the Soft-RoCE pair the lab brought up
 * // The replica runs in the other namespace: `cmd/replica.ts --device rxeb --host 192.0.2.2`.
 * await using primary = await Primary.connect({
 *   device: topo.a.device, host: topo.b.address, secret: Deno.env.get("RRL_SECRET")!, depth: 16,
 * });
 * const log = await primary.replicate(new Uint8Array(blockBytes), { lba: 0 }); // resolves on the OK ack
 * console.log(log.seq, log.latencyUs, primary.stats().summary, primary.digest());
 * ```
 *
 * @example The verbs layer directly
 * ```ts ignore
 * import { CompletionQueue, Context, ProtectionDomain, QueuePair } from "./mod.ts";
 * using ctx = Context.open("rxea");
 * using pd = new ProtectionDomain(ctx);
 * using cq = new CompletionQueue(ctx, { entries: 64 });
 * using qp = QueuePair.create(pd, { sendCq: cq, recvCq: cq, maxSendWr: 16, maxRecvWr: 16 });
 * ```
 *
 * @module
 */

// The protocol's block size.
export { blockBytes } from "./lib/block.ts";

// Verbs: the safe layer over libibverbs.
export { Context, listDevices } from "./lib/verbs/context.ts";
export type { DeviceAttributes, PortAttributes, RoceGid } from "./lib/verbs/context.ts";
export { MemoryRegion, type MemoryTarget, ProtectionDomain } from "./lib/verbs/pd.ts";
export { CompletionChannel, CompletionQueue, type CqOptions, statusText } from "./lib/verbs/cq.ts";
export { type ConnectOptions, type QpEndpoint, type QpOptions, QueuePair } from "./lib/verbs/qp.ts";
export {
  Chain,
  RecvChain,
  type RecvDescriptor,
  recvDescriptor,
  SendChain,
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
export type {
  brand,
  ChannelPtr,
  ContextPtr,
  CqPtr,
  Handle,
  MrPtr,
  PdPtr,
  QpPtr,
} from "./lib/verbs/handles.ts";
export { liveResourceLabels, Resource } from "./lib/verbs/resource.ts";
export { verbsCallCount } from "./lib/verbs/inject.ts";
export {
  IBV_ACCESS_FLAGS,
  IBV_LINK_LAYER,
  IBV_MIG_STATE,
  IBV_MTU,
  IBV_PORT_STATE,
  IBV_QP_ATTR_MASK,
  IBV_QP_STATE,
  IBV_QP_TYPE,
  IBV_SEND_FLAGS,
  IBV_WC_FLAGS,
  IBV_WC_OPCODE,
  IBV_WC_STATUS,
  IBV_WR_OPCODE,
  verbsConstants,
} from "./ffi/verbs_constants.ts";
export { type CallWay, callWay } from "./ffi/prepared_call.ts";

// The log: record and ack codecs, CRC32C, ring arithmetic.
export {
  dataAlignBytes,
  dataLengthMax,
  decodeRecord,
  defaultRecordLimits,
  emptyRecord,
  encodeRecord,
  LbaFlags,
  type LogRecord,
  type ParsedRecord,
  parseRecord,
  readU64Safe,
  recordBytes,
  recordCrcCoveredBytes,
  RecordFlags,
  type RecordLimits,
  recordLimits,
  recordMagic,
  RecordReason,
  recordReasonName,
  recordVersion,
  sealRecord,
  writeU64Safe,
} from "./lib/log/record.ts";
export {
  type Ack,
  ackBytes,
  ackMagic,
  AckReason,
  ackReasonName,
  AckStatus,
  ackStatusName,
  ackVersion,
  decodeAck,
  emptyAck,
  encodeAck,
  parseAck,
  type ParsedAck,
} from "./lib/log/ack.ts";
export {
  checkLogLength,
  checkMetaSlots,
  checkRingBytes,
  emptyPlacement,
  logBytesLimit,
  metaSlotOffset,
  metaSlotsMax,
  type Placement,
  placement,
  placementStart,
  ringBytesMax,
  ringBytesMin,
  RingCursor,
  type RingCursorOptions,
} from "./lib/log/ring.ts";
export { crc32c, crc32cAt, crc32cBackend, type Crc32cBackendName } from "./lib/log/crc32c.ts";

// Replication: primary and replica over one RC QP.
export {
  type LogFiller,
  type LogOptions,
  type LogProducer,
  type LogSource,
  Primary,
  type PrimaryOptions,
  type StreamLog,
  type StreamResult,
} from "./lib/replication/primary.ts";
export type { PlacedLog, PrimaryHooks } from "./lib/replication/primary_engine.ts";
export type { SideOptions } from "./lib/replication/side.ts";
export type { KillPoint, PrimaryFaults, ReplicaFaults } from "./lib/replication/faults.ts";
export { type WaitMode, waitModes } from "./lib/replication/poller.ts";
export { type BreakdownSummary, summarizeBreakdown } from "./lib/trace/breakdown.ts";
export type { ReplicatedLog } from "./lib/replication/flight.ts";
export { Replica, type ReplicaOptions, type ReplicaStats } from "./lib/replication/replica.ts";
export type {
  AcceptedLog,
  PersistHook,
  ReplicaCounters,
  ReplicaResume,
} from "./lib/replication/replica_state.ts";
export type { PrimaryStatsValue } from "./lib/replication/primary_stats.ts";
export { type DigestValue, LogDigest } from "./lib/replication/digest.ts";
export {
  BackpressureError,
  ProtocolError,
  ReplicationError,
  SessionError,
} from "./lib/replication/errors.ts";
export { BootstrapError, type BootstrapErrorReason } from "./lib/replication/bootstrap.ts";
export { type RefuseReason, refuseReasons } from "./lib/replication/control_messages.ts";
export { anonymousMemory, type RingMemory } from "./lib/replication/ring_memory.ts";

// Workloads and measurements.
export {
  DataFiller,
  type LbaPattern,
  parseBytes,
  parseLbaPattern,
  parseSizeSpec,
  type PlannedOp,
  type SizeMix,
  type WorkloadOptions,
  WorkloadPlan,
} from "./lib/bench/workload.ts";
export {
  runWorkload,
  type RunWorkloadOptions,
  type WorkloadResult,
} from "./lib/bench/run_workload.ts";
export { formatSummary, LatencyRecorder, type LatencySummary } from "./lib/bench/summary.ts";
export { Prng } from "./lib/prng.ts";
