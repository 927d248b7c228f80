/**
 * Scenarios: a topology, a workload through the host cache service, faults at logical
 * points (the Nth log) and the checks to run after. A scenario module under `scenarios/`
 * default-exports {@linkcode defineScenario}`({...})`; its `plan(prng)` draws every random
 * choice from the run's seed, so a seed (or the resolved config written to the run folder)
 * replays the same run.
 *
 * @example
 * ```ts
 * import { defineScenario } from "./scenario.ts";
 * export default defineScenario({
 *   name: "kill-after-persist",
 *   description: "The replica dies after persisting a log, before its ack",
 *   plan: (prng) => ({
 *     topology: "pair",
 *     workload: { count: 200, sizes: "4k,16k", depth: 4, flushEvery: 50 },
 *     faults: [{ kind: "replica-kill", seq: prng.int(20, 150), point: "after-persist" }],
 *   }),
 * });
 * ```
 *
 * @module
 */
import type { Prng } from "../prng.ts";
import { parseSizeSpec } from "../bench/workload.ts";
import { AckStatus } from "../log/ack.ts";

/** Where a replica kill happens relative to its log. */
export const killPoints = ["before-check", "after-persist", "after-ack"] as const;
/** A {@linkcode killPoints} member. */
export type KillPointName = typeof killPoints[number];

/** The network impairment `tc netem` applies to the primary's veth (percentages, ms). */
export interface NetemFault {
  kind: "netem";
  loss?: number;
  delayMs?: number;
  jitterMs?: number;
  reorder?: number;
  duplicate?: number;
  corrupt?: number;
}

/** One fault; `seq` is the log (the Nth log of the run) it triggers at. */
export type Fault =
  | NetemFault
  | { kind: "replica-kill"; seq: number; point: KillPointName }
  | { kind: "replica-stall"; seq: number; ms: number }
  | { kind: "drop-ack"; seq: number }
  | { kind: "delay-ack"; seq: number; ms: number }
  | { kind: "reject"; seq: number; status: string }
  | { kind: "primary-kill"; seq: number }
  | { kind: "qp-error"; seq: number }
  | { kind: "bad-rkey"; seq: number }
  | { kind: "rnr"; recvSlots: number }
  | { kind: "link-delete"; seq: number; downMs: number };

/** A {@linkcode Fault}'s kind. */
export type FaultKind = Fault["kind"];
/** Every fault kind, in table order. */
export const faultKinds: readonly FaultKind[] = [
  "netem",
  "replica-kill",
  "replica-stall",
  "drop-ack",
  "delay-ack",
  "reject",
  "primary-kill",
  "qp-error",
  "bad-rkey",
  "rnr",
  "link-delete",
];

/** What the host cache service is driven with (cmd/cache.ts options). */
export interface Workload {
  /** NVMe writes. */
  count: number;
  /** Write sizes, e.g. `4k,16k,64k` (a multiple of 4 KiB each). */
  sizes: string;
  /** Commands in flight. */
  depth: number;
  /** A Flush after every N writes (0: none). */
  flushEvery: number;
  /** Namespace size, e.g. `16m`. */
  capacity?: string;
  /** Write cache data ring on both sides, e.g. `4m`. */
  ring?: string;
}

/** The resolved configuration of one run (written to its folder as is). */
export interface ScenarioConfig {
  topology: "pair" | "loopback";
  workload: Workload;
  faults: Fault[];
}

/** A scenario module's default export. */
export interface Scenario {
  /** Lower-case words with dashes; names the run folder. */
  name: string;
  description: string;
  /** Resolves the configuration: every random choice comes from `prng`. */
  plan(prng: Prng): ScenarioConfig;
}

const countMax = 1_000_000;
const seqMax = 1_000_000;
const msMax = 60_000;

/** Checks a scenario's fields and returns it (a module's default export). */
export function defineScenario(scenario: Scenario): Scenario {
  if (!/^[a-z0-9][a-z0-9-]{0,47}$/.test(scenario.name)) {
    throw new RangeError(
      `A scenario name is 1-48 lower-case letters, digits and dashes, got '${scenario.name}'`,
    );
  }
  if (typeof scenario.plan !== "function") {
    throw new TypeError(`Scenario ${scenario.name} has no plan(prng) function`);
  }
  return scenario;
}

function int(value: unknown, min: number, max: number, where: string): number {
  if (!Number.isSafeInteger(value) || (value as number) < min || (value as number) > max) {
    throw new RangeError(
      `${where} must be an integer ${min}..${max}, got ${JSON.stringify(value)}`,
    );
  }
  return value as number;
}

function percent(value: unknown, max: number, where: string): void {
  if (value === undefined) return;
  if (typeof value !== "number" || !(value >= 0 && value <= max)) {
    throw new RangeError(`${where} must be a percentage 0..${max}, got ${JSON.stringify(value)}`);
  }
}

/**
 * Validates a resolved configuration (from a module's plan or a run folder's config.json):
 * every field in range, at most one fault of each kind, faults at logs the workload makes.
 */
export function checkConfig(config: ScenarioConfig): ScenarioConfig {
  if (config === null || typeof config !== "object") {
    throw new RangeError("A scenario config is an object {topology, workload, faults}");
  }
  if (config.topology !== "pair" && config.topology !== "loopback") {
    throw new RangeError(`topology must be 'pair' or 'loopback', got '${config.topology}'`);
  }
  const w = config.workload;
  if (w === null || typeof w !== "object") throw new RangeError("workload is missing");
  int(w.count, 1, countMax, "workload.count");
  int(w.depth, 1, 256, "workload.depth");
  int(w.flushEvery, 0, countMax, "workload.flushEvery");
  parseSizeSpec(w.sizes);
  if (!Array.isArray(config.faults) || config.faults.length > faultKinds.length) {
    throw new RangeError(`faults must be a list of at most ${faultKinds.length} faults`);
  }
  const seen = new Set<string>();
  for (const [i, f] of config.faults.entries()) {
    const where = `faults[${i}]`;
    if (!faultKinds.includes(f?.kind)) {
      throw new RangeError(
        `${where}.kind must be one of ${faultKinds.join(", ")}, got '${f?.kind}'`,
      );
    }
    if (seen.has(f.kind)) {
      throw new RangeError(`${where}: a second '${f.kind}' fault; one per kind`);
    }
    seen.add(f.kind);
    if ("seq" in f) int(f.seq, 1, Math.min(seqMax, w.count), `${where}.seq (a log of the run)`);
    checkFault(f, where, config.topology);
  }
  const kill = config.faults.find((f) => f.kind === "replica-kill");
  const primaryKill = config.faults.find((f) => f.kind === "primary-kill");
  if (kill && primaryKill) {
    throw new RangeError("A replica kill and a primary kill in one run: use two scenarios");
  }
  return config;
}

function checkFault(f: Fault, where: string, topology: string): void {
  switch (f.kind) {
    case "netem":
      if (topology !== "pair") throw new RangeError(`${where}: netem needs the pair topology`);
      percent(f.loss, 20, `${where}.loss`);
      percent(f.reorder, 50, `${where}.reorder`);
      percent(f.duplicate, 20, `${where}.duplicate`);
      percent(f.corrupt, 20, `${where}.corrupt`);
      if (f.delayMs !== undefined) int(f.delayMs, 0, 1000, `${where}.delayMs`);
      if (f.jitterMs !== undefined) int(f.jitterMs, 0, f.delayMs ?? 0, `${where}.jitterMs`);
      if (f.reorder && !f.delayMs) throw new RangeError(`${where}: reorder needs a delayMs`);
      return;
    case "replica-kill":
      if (!killPoints.includes(f.point)) {
        throw new RangeError(`${where}.point must be one of ${killPoints.join(", ")}`);
      }
      return;
    case "replica-stall":
    case "delay-ack":
      int(f.ms, 0, msMax, `${where}.ms`);
      return;
    case "reject": {
      const status = AckStatus[f.status as keyof typeof AckStatus];
      if (status === undefined || status === AckStatus.OK) {
        const names = Object.keys(AckStatus).filter((n) => n !== "OK").join(", ");
        throw new RangeError(`${where}.status must be one of ${names}, got '${f.status}'`);
      }
      return;
    }
    case "rnr":
      int(f.recvSlots, 1, 64, `${where}.recvSlots`);
      return;
    case "link-delete":
      if (topology !== "pair") {
        throw new RangeError(`${where}: link-delete needs the pair topology`);
      }
      int(f.downMs, 0, msMax, `${where}.downMs`);
      return;
  }
}

/** The `tc netem` arguments of a netem fault. */
export function netemArgs(f: NetemFault): string[] {
  const args: string[] = [];
  if (f.delayMs) args.push("delay", `${f.delayMs}ms`, ...(f.jitterMs ? [`${f.jitterMs}ms`] : []));
  if (f.loss) args.push("loss", `${f.loss}%`);
  if (f.reorder) args.push("reorder", `${f.reorder}%`);
  if (f.duplicate) args.push("duplicate", `${f.duplicate}%`);
  if (f.corrupt) args.push("corrupt", `${f.corrupt}%`);
  return args;
}
