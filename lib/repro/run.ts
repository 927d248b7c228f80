/**
 * Runs one scenario where Soft-RoCE works (inside the lab VM or natively): the replica
 * (`cmd/replica.ts` with a persistent write cache) in namespace B, the host cache service
 * (`cmd/cache.ts`) in namespace A, the scenario's faults at their logs, the restarts the
 * faults call for; then the invariant checker, and a run folder with everything needed to
 * understand and replay the run.
 *
 * @module
 */
import { trace, type TraceEvent, type TraceNames } from "../trace/trace.ts";
import { FaultCode } from "../trace/codes.ts";
import { formatEvents } from "../trace/format.ts";
import { parseBytes } from "../bench/workload.ts";
import { randomSecret } from "../lab/processes.ts";
import { repoDir } from "../lab/paths.ts";
import { type Endpoint, inNamespace, readTopology, type Topology } from "../lab/topology.ts";
import { decodeCompletions } from "../tools/cache.ts";
import type { CacheReport } from "../tools/cache.ts";
import { type ReplicaProcess, startCache, startReplica } from "../tools/lab.ts";
import type { ToolEnd, ToolProcess } from "../tools/spawn.ts";
import type { FaultPlan } from "../replication/faults.ts";
import { type CheckResult, checkRun, type Violation, violationsListed } from "./check.ts";
import { readTraceFile } from "../trace/trace_file.ts";
import { AckStatus } from "../log/ack.ts";
import {
  describeViolation,
  exists,
  makeRunDir,
  mergeTraces,
  rejectedSeqs,
  runText,
  sleep,
  versions,
  writeJson,
} from "./run_folder.ts";
import {
  checkConfig,
  type Fault,
  type FaultKind,
  netemArgs,
  type ScenarioConfig,
} from "./scenario.ts";

/** The whole run is killed after this long. */
const runTimeoutMs = 300_000;
const pollMs = 25;
/** A replica that does not exit within this long of SIGTERM is killed. */
const stopTimeoutMs = 15_000;
/** The cache command keeps reconnecting this long (waits doubling from 250 ms up to 5 s). */
const reconnectForMs = 30_000;
const reconnectDelayMs = 250;

/** What `summary.json` holds. */
export interface RunSummary {
  scenario: string;
  seed: number;
  /** `pass`, `fail` (an invariant broke or a process crashed) or `tool-failure`. */
  verdict: "pass" | "fail" | "tool-failure";
  /** Why, in one line. */
  reason: string;
  runDir: string;
  replay: string;
  config: ScenarioConfig;
  check?: CheckResult;
  /** Planned faults that fired, by kind. */
  faultsInjected: Partial<Record<FaultKind, number>>;
  /** Fault to first new ack, ms, one per recovery. */
  recoveryMs: number[];
  /** Writes that completed with an error (allowed: not acked). */
  writesFailed: number;
  primaries: { phase: number; code: number; signal: string | null }[];
  replicas: { generation: number; code: number; signal: string | null }[];
  durationMs: number;
}

/** A child process with its output in the run folder (`replica-N` or `primary-N`). */
type Child = ToolProcess<unknown>;

/** The final check, with the failover check's violations (found first) ahead of its own. */
function combine(interim: CheckResult | undefined, final: CheckResult): CheckResult {
  if (!interim) return final;
  const violations = [
    ...interim.violations.map((v) => ({ ...v, detail: `at the primary's death: ${v.detail}` })),
    ...final.violations,
  ].slice(0, violationsListed);
  return {
    ...final,
    verdict: interim.verdict === "fail" ? "fail" : final.verdict,
    ackedButLost: interim.ackedButLost + final.ackedButLost,
    corruptions: interim.corruptions + final.corruptions,
    rejectedButAcked: interim.rejectedButAcked + final.rejectedButAcked,
    orderViolations: interim.orderViolations + final.orderViolations,
    violations,
  };
}

/** Adds the logs restarted replicas lost (one violation per restart) to a check. */
function withResumes(
  check: CheckResult,
  lost: { violations: Violation[]; logs: number },
): CheckResult {
  if (lost.logs === 0) return check;
  return {
    ...check,
    verdict: "fail",
    ackedButLost: check.ackedButLost + lost.logs,
    violations: [...lost.violations, ...check.violations].slice(0, violationsListed),
  };
}

/** Runs `config` (resolved from `scenario` with `seed`) and returns its summary. */
export async function runScenario(
  o: { scenario: string; seed: number; config: ScenarioConfig; log?: (line: string) => void },
): Promise<RunSummary> {
  const log = o.log ?? ((line: string) => console.log(line));
  const config = checkConfig(o.config);
  const topology = readTopology();
  if (!topology) {
    throw new Error(
      "No Soft-RoCE topology is up: run through `deno task repro` (it boots the lab)",
    );
  }
  if (topology.kind !== config.topology) {
    throw new Error(
      `The scenario needs the ${config.topology} topology but the lab brought up ${topology.kind}`,
    );
  }
  const runDir = await makeRunDir(o.scenario, o.seed);
  const replay = `deno task repro --replay ${runDir.slice(repoDir.length + 1)}`;
  await writeJson(`${runDir}/config.json`, { scenario: o.scenario, seed: o.seed, config });
  await writeJson(`${runDir}/versions.json`, await versions());
  const run = new Run(o.scenario, o.seed, config, topology, runDir, log);
  const started = performance.now();
  let summary: RunSummary;
  try {
    summary = await run.execute(replay);
  } catch (error) {
    summary = run.toolFailure(replay, (error as Error).message);
  } finally {
    await run.cleanup();
  }
  summary.durationMs = Math.round(performance.now() - started);
  await writeJson(`${runDir}/summary.json`, summary);
  return summary;
}

class Run {
  readonly #tag = `rrl-repro-${Deno.pid}-${Date.now().toString(36)}`;
  readonly #env = { RRL_SECRET: randomSecret() };
  readonly #primaryCache = `/dev/shm/${this.#tag}-primary.cache`;
  readonly #replicaCache = `/dev/shm/${this.#tag}-replica.cache`;
  readonly #backing = `/dev/shm/${this.#tag}-backing.img`;
  readonly #signal: string;
  readonly #children: Child[] = [];
  /** Replica generation N is `#replicaProcesses[N - 1]`. */
  readonly #replicaProcesses: ReplicaProcess[] = [];
  /** How each primary phase ended (its report gives failed writes and recovery times). */
  readonly #primaryEnds: ToolEnd<CacheReport>[] = [];
  readonly #faults = new Map<FaultKind, Fault>();
  readonly #injected: Partial<Record<FaultKind, number>> = {};
  readonly #recoveryMs: number[] = [];
  readonly #primaries: RunSummary["primaries"] = [];
  readonly #replicas: RunSummary["replicas"] = [];
  readonly #issued: { first: number; count: number }[] = [];
  #linkDown = false;
  #port = 0;
  #replicaGeneration = 0;
  /** The check at the primary's death (primary-kill), before its restart. */
  #interim: CheckResult | undefined;

  constructor(
    readonly scenario: string,
    readonly seed: number,
    readonly config: ScenarioConfig,
    readonly topology: Topology,
    readonly runDir: string,
    readonly log: (line: string) => void,
  ) {
    for (const f of config.faults) this.#faults.set(f.kind, f);
    this.#signal = `/dev/shm/${this.#tag}-signal`;
  }

  get #a(): Endpoint {
    return this.topology.a;
  }

  get #b(): Endpoint {
    return this.topology.b;
  }

  async execute(replay: string): Promise<RunSummary> {
    const deadline = performance.now() + runTimeoutMs;
    const w = this.config.workload;
    trace.enable({ capacity: 4096 });
    await this.#clearNetem();
    const netem = this.#faults.get("netem");
    if (netem?.kind === "netem") {
      await this.#sh(this.#a, [
        "tc",
        "qdisc",
        "replace",
        "dev",
        this.#a.netdev,
        "root",
        "netem",
        ...netemArgs(netem),
      ]);
      this.#fired("netem");
      trace.fault(FaultCode.NETEM, 0, netem.loss ?? 0);
    }
    let replica = await this.#startReplica(this.#replicaPlan(0));
    let phase = 1;
    let primary = await this.#startPrimary(phase, 0, w.count, false);
    let replicaKilledAt = 0;
    let linkDone = false;
    for (;;) {
      if (performance.now() > deadline) {
        throw new Error(`the run did not end within ${runTimeoutMs / 1000} s (see the logs)`);
      }
      const link = this.#faults.get("link-delete");
      if (link?.kind === "link-delete" && !linkDone && (await exists(this.#signal))) {
        linkDone = true;
        await this.#deleteLink(link.seq, link.downMs);
      }
      if (replica.exited && !primary.exited) {
        const s = await replica.ended();
        this.#replicas.push({
          generation: this.#replicas.length + 1,
          code: s.code,
          signal: s.signal,
        });
        const kill = this.#faults.get("replica-kill");
        if (kill?.kind !== "replica-kill" || s.signal !== "SIGKILL" || replicaKilledAt) {
          primary.kill();
          await primary.ended();
          return this.#finish(
            replay,
            `the replica exited unexpectedly (code ${s.code}, ${s.signal})`,
          );
        }
        replicaKilledAt = performance.now();
        this.#fired("replica-kill");
        replica = await this.#startReplica(this.#replicaPlan(kill.seq));
        continue;
      }
      if (primary.exited) {
        const s = await primary.ended();
        this.#primaryEnds.push(s);
        this.#primaries.push({ phase, code: s.code, signal: s.signal });
        const kill = this.#faults.get("primary-kill");
        if (kill?.kind === "primary-kill" && s.signal === "SIGKILL" && phase === 1) {
          this.#fired("primary-kill");
          // The failover point: were the primary gone for good, would every acked write
          // be on the replica or in the backing store? (The replica is stopped to read its
          // cache, then restarted from it: a replica restart too.)
          await this.#stopReplica(replica);
          this.#interim = (await this.#check(false)).check;
          replica = await this.#startReplica(this.#replicaPlan(kill.seq));
          // Recovery time counts from the restart: the inspection pause is not part of it.
          const killedAt = performance.now();
          const done = await this.#completedWrites();
          phase = 2;
          primary = await this.#startPrimary(phase, w.count, Math.max(1, w.count - done), true);
          this.#watchFirstCompletion(done, killedAt, primary);
          continue;
        }
        if (s.signal || (s.code !== 0 && s.code !== 1)) {
          return this.#finish(replay, `the primary crashed (exit code ${s.code}, ${s.signal})`);
        }
        break;
      }
      await Promise.race([primary.ended(), replica.ended(), sleep(pollMs)]);
    }
    return await this.#finish(replay, "");
  }

  /** Stops the replica, collects results and traces, runs the checker. */
  async #finish(replay: string, crash: string): Promise<RunSummary> {
    const replica = this.#replicaProcesses.at(-1);
    if (replica && !replica.exited) {
      const s = await this.#stopReplica(replica);
      if (!crash && (s.signal || s.code !== 0)) {
        crash = `the replica failed at the end (exit code ${s.code}, ${s.signal})`;
      }
    }
    let writesFailed = 0;
    for (const { report } of this.#primaryEnds) {
      writesFailed += report?.result.writesFailed ?? 0;
      for (const ms of report?.replication.recoveryMs ?? []) this.#recoveryMs.push(Math.round(ms));
    }
    await this.#clearNetem();
    await this.#restoreLink();
    trace.writeJsonlSync(`${this.runDir}/runner.trace.jsonl`);
    trace.disable();
    const last = this.#primaries.at(-1);
    const final = await this.#check(!crash && last?.code === 0);
    const merged = final.merged;
    this.#countTraceFaults(merged.events);
    const check = withResumes(combine(this.#interim, final.check), await this.#resumes());
    const verdict = crash || check.verdict === "fail" ? "fail" : "pass";
    const reason = crash ||
      (check.verdict === "fail"
        ? describeViolation(check)
        : `${check.logsAcked} acked writes durable`);
    if (verdict === "fail") {
      await this.#keepEvidence();
      this.#explain(check, merged, replay);
    }
    return {
      scenario: this.scenario,
      seed: this.seed,
      verdict,
      reason,
      runDir: this.runDir,
      replay,
      config: this.config,
      check,
      faultsInjected: this.#injected,
      recoveryMs: this.#recoveryMs,
      writesFailed,
      primaries: this.#primaries,
      replicas: this.#replicas,
      durationMs: 0,
    };
  }

  /**
   * Every restarted replica must resume at least through the last log it acked before its
   * death (its trace, written as it died, against its `resumed` event): a replica that
   * acked a log and could not trust it after a restart lost it.
   */
  async #resumes(): Promise<{ violations: Violation[]; logs: number }> {
    const found: Violation[] = [];
    let logs = 0;
    for (let g = 2; g <= this.#replicaGeneration; g++) {
      const resumedEvent = this.#replicaProcesses[g - 1]?.events.find((e) => e.event === "resumed");
      let acked = 0;
      try {
        const before = await readTraceFile(`${this.runDir}/replica-${g - 1}.trace.jsonl`);
        for (const e of before.events) {
          if (e.kind === "ACK" && e.side === 1 && e.status === AckStatus.OK) {
            acked = Math.max(acked, e.seq);
          }
        }
      } catch {
        continue; // no trace from that replica: nothing to compare with
      }
      const resumed = resumedEvent?.event === "resumed" ? resumedEvent.throughSeq : 0;
      if (resumed < acked) {
        logs += acked - resumed;
        found.push({
          kind: "acked-but-lost",
          seq: resumed + 1,
          detail: `replica ${g} resumed through log ${resumed} from its write cache, but replica ${
            g - 1
          } had acked through log ${acked}`,
        });
      }
    }
    return { violations: found, logs };
  }

  /** SIGTERM (the replica closes cleanly and reports), SIGKILL after 15 s. */
  async #stopReplica(replica: Child): Promise<ToolEnd<unknown>> {
    replica.stop();
    const timer = setTimeout(() => replica.kill(), stopTimeoutMs);
    const s = await replica.ended();
    clearTimeout(timer);
    this.#replicas.push({ generation: this.#replicas.length + 1, code: s.code, signal: s.signal });
    return s;
  }

  /** The invariant checker over the completions, backing store and replica cache now. */
  async #check(cleanEnd: boolean) {
    const merged = await mergeTraces(this.runDir);
    const w = this.config.workload;
    const check = await checkRun({
      seed: this.seed,
      capacityBlocks: parseBytes(w.capacity ?? "16m", "capacity") / 4096,
      issued: this.#issued,
      completions: await this.#completions(),
      backingPath: this.#backing,
      replicaCache: { path: this.#replicaCache, ringBytes: parseBytes(w.ring ?? "4m", "ring") },
      rejectedSeqs: rejectedSeqs(merged.events),
      cleanEnd,
    });
    return { check, merged };
  }

  toolFailure(replay: string, message: string): RunSummary {
    return {
      scenario: this.scenario,
      seed: this.seed,
      verdict: "tool-failure",
      reason: message,
      runDir: this.runDir,
      replay,
      config: this.config,
      faultsInjected: this.#injected,
      recoveryMs: this.#recoveryMs,
      writesFailed: 0,
      primaries: this.#primaries,
      replicas: this.#replicas,
      durationMs: 0,
    };
  }

  /** Kills what is left, removes netem, restores the link and the /dev/shm files. */
  async cleanup(): Promise<void> {
    for (const c of this.#children) {
      c.kill();
      await c.ended().catch(() => {});
    }
    await this.#clearNetem().catch(() => {});
    await this.#restoreLink().catch(() => {});
    trace.disable();
    for (const f of [this.#primaryCache, this.#replicaCache, this.#backing, this.#signal]) {
      await Deno.remove(f).catch(() => {});
    }
  }

  #fired(kind: FaultKind): void {
    this.#injected[kind] = (this.#injected[kind] ?? 0) + 1;
  }

  /** Faults the processes inject themselves, counted from their FAULT events. */
  #countTraceFaults(events: TraceEvent[]): void {
    const byCode: Partial<Record<number, FaultKind>> = {
      [FaultCode.REPLICA_STALL]: "replica-stall",
      [FaultCode.DROP_ACK]: "drop-ack",
      [FaultCode.DELAY_ACK]: "delay-ack",
      [FaultCode.STATUS]: "reject",
      [FaultCode.FEW_RECVS]: "rnr",
      [FaultCode.BREAK_QP]: "qp-error",
      [FaultCode.BAD_RKEY]: "bad-rkey",
    };
    const seen = new Set<FaultKind>();
    for (const e of events) {
      const kind = e.kind === "FAULT" ? byCode[e.code] : undefined;
      if (kind && this.#faults.has(kind) && !seen.has(kind)) {
        seen.add(kind);
        this.#fired(kind);
      }
    }
  }

  #replicaPlan(afterSeq: number): FaultPlan {
    const r: NonNullable<FaultPlan["replica"]> = {};
    for (const f of this.config.faults) {
      if ("seq" in f && f.seq <= afterSeq) continue; // already happened before a restart
      if (f.kind === "replica-kill") r.kill = { seq: f.seq, point: f.point };
      if (f.kind === "replica-stall") r.stall = { seq: f.seq, ms: f.ms };
      if (f.kind === "drop-ack") r.dropAck = f.seq;
      if (f.kind === "delay-ack") r.delayAck = { seq: f.seq, ms: f.ms };
      if (f.kind === "reject") r.status = { seq: f.seq, status: f.status };
      if (f.kind === "rnr") r.recvSlots = f.recvSlots;
      if (f.kind === "link-delete") r.signalAt = { seq: f.seq, file: this.#signal };
    }
    return { replica: r };
  }

  #primaryPlan(phase: number): FaultPlan {
    const p: NonNullable<FaultPlan["primary"]> = {};
    const killSeq = this.#faults.get("primary-kill");
    const after = phase > 1 && killSeq && "seq" in killSeq ? killSeq.seq : 0;
    for (const f of this.config.faults) {
      if ("seq" in f && f.seq <= after) continue;
      if (f.kind === "primary-kill" && phase === 1) p.kill = { seq: f.seq };
      if (f.kind === "qp-error") p.breakQp = f.seq;
      if (f.kind === "bad-rkey") p.badRkey = f.seq;
    }
    return { primary: p };
  }

  async #startReplica(plan: FaultPlan): Promise<ReplicaProcess> {
    const generation = ++this.#replicaGeneration;
    const w = this.config.workload;
    const name = `replica-${generation}`;
    try {
      const replica = await startReplica(this.#b, {
        port: this.#port,
        ring: w.ring ?? "4m",
        cache: this.#replicaCache,
        trace: `${this.runDir}/${name}.trace.jsonl`,
        faultPlan: JSON.stringify(plan),
      }, { ...this.#output(name), timeoutMs: runTimeoutMs });
      this.#port = replica.port;
      this.#children.push(replica);
      this.#replicaProcesses.push(replica);
      return replica;
    } catch (error) {
      throw new Error(
        `replica ${generation} did not start listening (see ${name}.log): ${
          (error as Error).message
        }`,
      );
    }
  }

  async #startPrimary(
    phase: number,
    firstOp: number,
    count: number,
    recover: boolean,
  ): Promise<ToolProcess<CacheReport>> {
    const w = this.config.workload;
    this.#issued.push({ first: firstOp, count });
    const link = { from: this.#a, to: this.#b, port: this.#port };
    const primary = await startCache(link, {
      cache: this.#primaryCache,
      backing: this.#backing,
      capacity: w.capacity ?? "16m",
      ring: w.ring ?? "4m",
      count,
      size: w.sizes,
      depth: w.depth,
      flushEvery: w.flushEvery,
      seed: this.seed,
      firstOp,
      completions: `${this.runDir}/completions.log`,
      reconnectFor: reconnectForMs,
      reconnectDelayMs,
      faultPlan: JSON.stringify(this.#primaryPlan(phase)),
      trace: `${this.runDir}/primary-${phase}.trace.jsonl`,
      ...(recover ? { recover: true, verify: false } : {}),
    }, { ...this.#output(`primary-${phase}`), timeoutMs: runTimeoutMs });
    this.#children.push(primary);
    return primary;
  }

  /** Where a child's stdout and stderr go in the run folder, and its environment. */
  #output(name: string) {
    return {
      env: this.#env,
      stdoutFile: `${this.runDir}/${name}.out`,
      stderrFile: `${this.runDir}/${name}.log`,
    };
  }

  /** Recovery time of a restarted primary: its death to its first new completion. */
  #watchFirstCompletion(before: number, killedAt: number, primary: Child): void {
    const watch = async () => {
      while (!primary.exited) {
        if ((await this.#completedWrites()) > before) {
          this.#recoveryMs.push(Math.round(performance.now() - killedAt));
          return;
        }
        await sleep(pollMs);
      }
    };
    watch().catch(() => {});
  }

  async #completions(): Promise<string> {
    return await Deno.readTextFile(`${this.runDir}/completions.log`).catch(() => "");
  }

  /** Writes the completion log holds so far. */
  async #completedWrites(): Promise<number> {
    return decodeCompletions(await this.#completions()).completions.length;
  }

  async #deleteLink(seq: number, downMs: number): Promise<void> {
    const a = this.#a;
    this.log(`repro: deleting ${a.device} after log ${seq}, re-adding it ${downMs} ms later`);
    trace.fault(FaultCode.LINK_DELETE, seq, downMs);
    this.#linkDown = true;
    await this.#sh(a, ["rdma", "link", "delete", a.device]);
    this.#fired("link-delete");
    await sleep(downMs);
    await this.#restoreLink();
  }

  async #restoreLink(): Promise<void> {
    if (!this.#linkDown) return;
    const a = this.#a;
    await this.#sh(a, ["rdma", "link", "add", a.device, "type", "rxe", "netdev", a.netdev]);
    this.#linkDown = false;
  }

  async #clearNetem(): Promise<void> {
    if (this.topology.kind !== "pair") return;
    const out = await runText(inNamespace(this.#a, ["tc", "qdisc", "show", "dev", this.#a.netdev]));
    if (out.includes("netem")) {
      await this.#sh(this.#a, ["tc", "qdisc", "del", "dev", this.#a.netdev, "root"]);
    }
  }

  async #sh(end: Endpoint, argv: string[]): Promise<void> {
    const full = inNamespace(end, argv);
    const out = await new Deno.Command(full[0], {
      args: full.slice(1),
      stdout: "piped",
      stderr: "piped",
    })
      .output();
    if (!out.success) {
      throw new Error(`${argv.join(" ")} failed: ${new TextDecoder().decode(out.stderr).trim()}`);
    }
  }

  /** Copies the caches and the backing store into the run folder (failed runs only). */
  async #keepEvidence(): Promise<void> {
    for (
      const [from, to] of [
        [this.#replicaCache, "replica.cache"],
        [this.#primaryCache, "primary.cache"],
        [this.#backing, "backing.img"],
      ]
    ) {
      await Deno.copyFile(from, `${this.runDir}/${to}`).catch(() => {});
    }
  }

  /** Prints the first violation, its trace excerpt and the replay command. */
  #explain(
    check: CheckResult,
    merged: { events: TraceEvent[]; names: TraceNames },
    replay: string,
  ) {
    const v = check.violations[0];
    if (v) {
      this.log(`repro: FIRST VIOLATION: ${v.kind}: ${v.detail}`);
      if (v.seq !== undefined) {
        const near = merged.events.filter((e) => "seq" in e && Math.abs(e.seq - v.seq!) <= 1);
        this.log(`repro: trace around log ${v.seq} (${near.length} events):`);
        for (const line of formatEvents(near.slice(0, 40), merged.names)) this.log(`  ${line}`);
      }
    }
    this.log(`repro: replay with: ${replay}`);
  }
}
