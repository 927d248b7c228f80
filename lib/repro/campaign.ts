/**
 * Campaigns: N randomized scenarios, each with its own seed derived from the campaign's,
 * run one after another; then one table of what was injected and what was proved.
 *
 * @module
 */
import { deriveSeed, Prng } from "../prng.ts";
import { runScenario, type RunSummary } from "./run.ts";
import { faultKinds, type Scenario } from "./scenario.ts";

/** The campaign's totals (also written as campaign.json). */
export interface CampaignResult {
  seed: number;
  scenarios: number;
  faultsInjected: Record<string, number>;
  logsAcked: number;
  ackedButLost: number;
  corruptions: number;
  /** Invariant breaks other than the two above and crashed processes. */
  otherFailures: number;
  toolFailures: number;
  writesFailed: number;
  recoveryMs: { count: number; p50: number; p90: number; p99: number; max: number };
  failing: { seed: number; verdict: string; reason: string; replay: string }[];
  elapsedMs: number;
}

/** Runs `count` scenarios drawn by `scenario.plan` with seeds derived from `seed`. */
export async function runCampaign(o: {
  scenario: Scenario;
  count: number;
  seed: number;
  log?: (line: string) => void;
}): Promise<CampaignResult> {
  const log = o.log ?? ((line: string) => console.log(line));
  const started = performance.now();
  const runs: RunSummary[] = [];
  for (let i = 0; i < o.count; i++) {
    const seed = deriveSeed(o.seed, i);
    const config = o.scenario.plan(new Prng(seed));
    const s = await runScenario({ scenario: o.scenario.name, seed, config, log });
    runs.push(s);
    const kinds = config.faults.map((f) =>
      f.kind === "replica-kill" ? `replica-kill@${f.point}` : f.kind
    ).join("+") || "none";
    log(
      `campaign: ${i + 1}/${o.count} seed ${seed} ${kinds}: ${s.verdict} ` +
        `(${s.check?.logsAcked ?? 0} acked, ${(s.durationMs / 1000).toFixed(1)} s)` +
        (s.verdict === "pass" ? "" : ` ${s.reason}`),
    );
  }
  return summarize(o.seed, runs, performance.now() - started);
}

/** The totals of finished runs. */
export function summarize(seed: number, runs: RunSummary[], elapsedMs: number): CampaignResult {
  const faults: Record<string, number> = {};
  for (const kind of faultKinds) faults[kind] = 0;
  const recovery: number[] = [];
  const result: CampaignResult = {
    seed,
    scenarios: runs.length,
    faultsInjected: faults,
    logsAcked: 0,
    ackedButLost: 0,
    corruptions: 0,
    otherFailures: 0,
    toolFailures: 0,
    writesFailed: 0,
    recoveryMs: { count: 0, p50: 0, p90: 0, p99: 0, max: 0 },
    failing: [],
    elapsedMs: Math.round(elapsedMs),
  };
  for (const r of runs) {
    for (const [kind, n] of Object.entries(r.faultsInjected)) faults[kind] += n ?? 0;
    for (const f of r.config.faults) {
      if (f.kind === "replica-kill" && r.faultsInjected["replica-kill"]) {
        faults[`replica-kill@${f.point}`] = (faults[`replica-kill@${f.point}`] ?? 0) + 1;
      }
    }
    recovery.push(...r.recoveryMs);
    result.writesFailed += r.writesFailed;
    if (r.verdict === "tool-failure") result.toolFailures++;
    const c = r.check;
    if (c) {
      result.logsAcked += c.logsAcked;
      result.ackedButLost += c.ackedButLost;
      result.corruptions += c.corruptions;
    }
    if (r.verdict === "fail" && (!c || (c.ackedButLost === 0 && c.corruptions === 0))) {
      result.otherFailures++;
    }
    if (r.verdict !== "pass") {
      result.failing.push({ seed: r.seed, verdict: r.verdict, reason: r.reason, replay: r.replay });
    }
  }
  recovery.sort((x, y) => x - y);
  const at = (p: number) =>
    recovery[Math.min(recovery.length - 1, Math.floor(p * recovery.length))];
  if (recovery.length) {
    result.recoveryMs = {
      count: recovery.length,
      p50: at(0.5),
      p90: at(0.9),
      p99: at(0.99),
      max: recovery[recovery.length - 1],
    };
  }
  return result;
}

/** The table printed at the end of a campaign. */
export function formatCampaign(r: CampaignResult): string[] {
  const faults = Object.entries(r.faultsInjected).filter(([, n]) => n > 0)
    .map(([kind, n]) => `${kind} ${n}`).join(", ") || "none";
  const rec = r.recoveryMs;
  const rows: [string, string][] = [
    ["campaign seed", String(r.seed)],
    ["scenarios", String(r.scenarios)],
    ["faults injected", faults],
    ["logs acked", String(r.logsAcked)],
    ["acked-but-lost (must be 0)", String(r.ackedButLost)],
    ["corruptions (must be 0)", String(r.corruptions)],
    ["other failures (must be 0)", String(r.otherFailures)],
    ["tool failures (must be 0)", String(r.toolFailures)],
    ["writes failed (not acked)", String(r.writesFailed)],
    [
      "recovery ms (fault to first new ack)",
      rec.count
        ? `p50 ${rec.p50}, p90 ${rec.p90}, p99 ${rec.p99}, max ${rec.max} (n=${rec.count})`
        : "none",
    ],
    ["failing seeds", r.failing.map((f) => f.seed).join(", ") || "none"],
    ["wall clock", `${(r.elapsedMs / 60_000).toFixed(1)} min`],
  ];
  const width = Math.max(...rows.map(([k]) => k.length));
  return [
    ...rows.map(([k, v]) => `| ${k.padEnd(width)} | ${v} |`),
    ...r.failing.map((f) => `failing: seed ${f.seed} ${f.verdict}: ${f.reason}; ${f.replay}`),
  ];
}
