/**
 * Our three commands started in the lab's namespaces, through {@linkcode spawnTool}: a
 * replica on its endpoint's device and address (port 0 unless given: the `ready` event
 * says which), and a primary or the host cache service pointed at it.
 *
 * @example
 * ```ts ignore
 * import { randomSecret } from "../lab/processes.ts";
 * import { readTopology } from "../lab/topology.ts";
 * import { runPrimary, startReplica } from "./lab.ts";
 * const { a, b } = readTopology()!;
 * const env = { RRL_SECRET: randomSecret() };
 * await using replica = await startReplica(b, { once: true }, { env });
 * const p = await runPrimary({ from: a, to: b, port: replica.port }, { count: 100 }, { env });
 * console.log(p.report.result.acked, (await replica.report()).accepted);
 * ```
 *
 * @module
 */
import type { Endpoint } from "../lab/topology.ts";
import { type CacheCommandOptions, type CacheReport, cacheTool } from "./cache.ts";
import { type PrimaryCommandOptions, type PrimaryReport, primaryTool } from "./primary.ts";
import { type ReplicaCommandOptions, type ReplicaReport, replicaTool } from "./replica.ts";
import { runTool, type SpawnOptions, spawnTool, type ToolProcess } from "./spawn.ts";

/** Spawn options without the namespace (the endpoint gives it). */
export type LabSpawnOptions = Omit<SpawnOptions, "end" | "ready">;

/** A primary side: its namespace, the replica's endpoint and control port. */
export interface Link {
  from: Endpoint;
  to: Endpoint;
  port: number;
}

/** A started replica: its port (from its `ready` event), events and report. */
export type ReplicaProcess = ToolProcess<ReplicaReport>;

/**
 * Starts `cmd/replica.ts` in `end`'s namespace on its device and address, with `--json
 * --events` (and `--port 0` unless `args` gives one); resolves once it is listening.
 */
export function startReplica(
  end: Endpoint,
  args: Partial<ReplicaCommandOptions>,
  options: LabSpawnOptions,
): Promise<ReplicaProcess> {
  return spawnTool(
    replicaTool,
    { device: end.device, host: end.address, port: 0, ...args, json: true, events: true },
    { ...options, end, ready: true },
  );
}

function primaryArgs(link: Link) {
  return { device: link.from.device, host: link.to.address, port: link.port };
}

/** Starts `cmd/primary.ts --json --events` in `link.from`'s namespace against the replica. */
export function startPrimary(
  link: Link,
  args: Partial<PrimaryCommandOptions>,
  options: LabSpawnOptions,
): Promise<ToolProcess<PrimaryReport>> {
  return spawnTool(primaryTool, { ...primaryArgs(link), ...args, json: true, events: true }, {
    ...options,
    end: link.from,
  });
}

/** Runs `cmd/primary.ts` to its end; its exit code and report (`ToolOutputError` without one). */
export function runPrimary(
  link: Link,
  args: Partial<PrimaryCommandOptions>,
  options: LabSpawnOptions,
): Promise<{ code: number; report: PrimaryReport }> {
  return runTool(primaryTool, { ...primaryArgs(link), ...args, json: true, events: true }, {
    ...options,
    end: link.from,
  });
}

/** Starts `cmd/cache.ts --json` in `link.from`'s namespace against the replica. */
export function startCache(
  link: Link,
  args: Partial<CacheCommandOptions>,
  options: LabSpawnOptions,
): Promise<ToolProcess<CacheReport>> {
  return spawnTool(cacheTool, { ...primaryArgs(link), ...args, json: true }, {
    ...options,
    end: link.from,
  });
}

/** Runs `cmd/cache.ts` to its end; its exit code and report (`ToolOutputError` without one). */
export function runCache(
  link: Link,
  args: Partial<CacheCommandOptions>,
  options: LabSpawnOptions,
): Promise<{ code: number; report: CacheReport }> {
  return runTool(cacheTool, { ...primaryArgs(link), ...args, json: true }, {
    ...options,
    end: link.from,
  });
}
