/**
 * The lab plumbing of rdma-replica-lab, apart from the public API in `mod.ts`: the
 * Soft-RoCE topology the lab brought up, running a command where Soft-RoCE works (natively
 * or in the QEMU lab VM), starting the real commands as child processes, and reproducing
 * bugs with scenarios, runs, the invariant checker and campaigns.
 *
 * @example Start a replica in namespace B and run a tool in namespace A
 * ```ts ignore
 * import { randomSecret, readTopology, startReplica } from "./lab.ts";
 *
 * const topo = readTopology()!;
 * const env = { RRL_SECRET: randomSecret() };
 * await using replica = await startReplica(topo.b, ["--ring", "16m", "--once", "--json"], env);
 * ```
 *
 * @module
 */

// The topology and running commands where Soft-RoCE works.
export { type Endpoint, inNamespace, readTopology, type Topology } from "./lib/lab/topology.ts";
export type { LabMode } from "./lib/lab/mode.ts";
export { type LabRunOptions, runInLab } from "./lib/lab/runner.ts";
export { randomSecret } from "./lib/lab/processes.ts";

// The commands as child processes: typed options, argv, reports and events (lib/tools/).
export {
  type Link,
  type ReplicaProcess,
  runCache,
  runPrimary,
  startCache,
  startPrimary,
  startReplica,
} from "./lib/tools/lab.ts";
export { runTool, spawnTool, type ToolEnd, type ToolProcess } from "./lib/tools/spawn.ts";
export type { PrimaryCommandOptions, PrimaryReport } from "./lib/tools/primary.ts";
export type { ReplicaCommandOptions, ReplicaReport } from "./lib/tools/replica.ts";
export type { CacheCommandOptions, CacheReport } from "./lib/tools/cache.ts";

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
