/**
 * rdma-replica-lab: a Deno testbed for RDMA log replication over real verbs
 * (libibverbs through `Deno.dlopen`) on Soft-RoCE.
 *
 * Everything an experiment script needs is exported here.
 *
 * @example Replicate logs to a replica (run under `deno task lab -- deno run -A script.ts`)
 * ```ts ignore
 * import { Primary, readTopology } from "./mod.ts";
 *
 * const topo = readTopology()!; // the Soft-RoCE pair the lab brought up
 * // The replica runs in the other namespace: `cmd/replica.ts --device rxeb --host 192.0.2.2`.
 * await using primary = await Primary.connect({
 *   device: topo.a.device, host: topo.b.address, secret: Deno.env.get("RRL_SECRET")!, depth: 16,
 * });
 * const log = await primary.replicate(new Uint8Array(4096), { lba: 0 }); // resolves on the OK ack
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
export { type WaitMode, waitModes } from "./lib/replication/poller.ts";
export { type BreakdownSummary, summarizeBreakdown } from "./lib/trace/breakdown.ts";
export type { ReplicatedLog } from "./lib/replication/flight.ts";
export { Replica, type ReplicaOptions, type ReplicaStats } from "./lib/replication/replica.ts";
export type { AcceptedLog, PersistHook } from "./lib/replication/replica_state.ts";
export type { PrimaryStatsValue } from "./lib/replication/primary_stats.ts";
export type { DigestValue } from "./lib/replication/digest.ts";
export {
  BackpressureError,
  ProtocolError,
  ReplicationError,
  SessionError,
} from "./lib/replication/errors.ts";
export { BootstrapError } from "./lib/replication/bootstrap.ts";
export { anonymousMemory, type RingMemory } from "./lib/replication/ring_memory.ts";

// Workloads and measurements.
export {
  DataFiller,
  parseBytes,
  parseLbaPattern,
  parseSizeSpec,
  WorkloadPlan,
} from "./lib/bench/workload.ts";
export { runWorkload, type WorkloadResult } from "./lib/bench/run_workload.ts";
export { formatSummary, LatencyRecorder, type LatencySummary } from "./lib/bench/summary.ts";

// The lab: topology, running commands where Soft-RoCE works.
export { inNamespace, readTopology, type Topology } from "./lib/lab/topology.ts";
export { runInLab } from "./lib/lab/runner.ts";
export { randomSecret } from "./lib/lab/processes.ts";
export {
  type Link,
  type ReplicaProcess,
  runCache,
  runPrimary,
  startCache,
  startPrimary,
  startReplica,
} from "./lib/tools/lab.ts";
export type { ToolEnd, ToolProcess } from "./lib/tools/spawn.ts";
export type { PrimaryCommandOptions, PrimaryReport } from "./lib/tools/primary.ts";
export type { ReplicaCommandOptions, ReplicaReport } from "./lib/tools/replica.ts";
export type { CacheCommandOptions, CacheReport } from "./lib/tools/cache.ts";
export { Prng } from "./lib/prng.ts";

// Reproducing bugs: scenarios, runs, the invariant checker, campaigns.
export {
  checkConfig,
  defineScenario,
  type Fault,
  type FaultKind,
  faultKinds,
  killPoints,
  type Scenario,
  type ScenarioConfig,
  type Workload,
} from "./lib/repro/scenario.ts";
export { runScenario, type RunSummary } from "./lib/repro/run.ts";
export { type CheckResult, checkRun, type Violation } from "./lib/repro/check.ts";
export { type CampaignResult, formatCampaign, runCampaign } from "./lib/repro/campaign.ts";
