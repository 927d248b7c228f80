/**
 * The boundary of `cmd/primary.ts`: the options it parses into, the only argv encoder for
 * them, the report it prints with `--json` and its validated decoder.
 *
 * @module
 */
import type { LatencySummary } from "../bench/summary.ts";
import type { WorkloadResult } from "../bench/run_workload.ts";
import type { DigestValue } from "../replication/digest.ts";
import { type WaitMode, waitModes } from "../replication/poller.ts";
import type { PrimaryStatsValue } from "../replication/primary_stats.ts";
import { encodeArgv, type FlagTable } from "./argv.ts";
import {
  arr,
  bool,
  decodeJsonLine,
  int,
  num,
  obj,
  oneOf,
  opt,
  type Schema,
  str,
} from "./decode.ts";
import { digestSchema } from "./replica.ts";
import type { ToolSpec } from "./spawn.ts";

/** The reconnect and fault options `cmd/primary.ts` and `cmd/cache.ts` share. */
export interface RecoveryOptions {
  reconnect: number;
  /** Milliseconds (the command line takes a duration: `30s`, `500ms`). */
  reconnectFor?: number;
  reconnectDelayMs: number;
  faultPlan?: string;
  trace?: string;
}

/** Their flags. */
export const recoveryFlags = {
  reconnect: "--reconnect",
  reconnectFor: { flag: "--reconnect-for", unit: "ms" },
  reconnectDelayMs: "--reconnect-delay-ms",
  faultPlan: "--fault-plan",
  trace: "--trace",
} as const satisfies FlagTable<RecoveryOptions>;

/** What `cmd/primary.ts` parses its argv into (its defaults applied). */
export interface PrimaryCommandOptions extends RecoveryOptions {
  device: string;
  host: string;
  port: number;
  secret?: string;
  gidIndex?: number;
  count: number;
  warmup: number;
  duration?: number;
  size: string;
  depth: number;
  seed: number;
  lba: string;
  lbaSpace: string;
  ring: string;
  maxLog?: string;
  ackTimeoutMs: number;
  wait: WaitMode;
  spinUs: number;
  breakdown?: string;
  qpTimeout: number;
  retry: number;
  rnrRetry: number;
  json?: boolean;
  events?: boolean;
}

/** What a caller passes: where the replica is, and any options whose defaults it does not want. */
export type PrimaryArgs =
  & Pick<PrimaryCommandOptions, "device" | "host">
  & Partial<PrimaryCommandOptions>;

const flags = {
  device: "--device",
  host: "--host",
  port: "--port",
  secret: "--secret",
  gidIndex: "--gid-index",
  count: "--count",
  warmup: "--warmup",
  duration: "--duration",
  size: "--size",
  depth: "--depth",
  seed: "--seed",
  lba: "--lba",
  lbaSpace: "--lba-space",
  ring: "--ring",
  maxLog: "--max-log",
  ackTimeoutMs: "--ack-timeout-ms",
  wait: "--wait",
  spinUs: "--spin-us",
  breakdown: "--breakdown",
  qpTimeout: "--qp-timeout",
  retry: "--retry",
  rnrRetry: "--rnr-retry",
  ...recoveryFlags,
  json: "--json",
  events: "--events",
} as const satisfies FlagTable<PrimaryCommandOptions>;

/** The argv of `cmd/primary.ts` for `args`. */
export function primaryArgv(args: PrimaryArgs): string[] {
  return encodeArgv(flags, args);
}

/** The workload's result as the primary reports it. */
export interface PrimaryResult extends WorkloadResult {
  wait: WaitMode;
  /** Process CPU µs over the timed logs / acked logs. */
  cpuUsPerLog?: number;
  /** The main thread's share (the rest: V8's compiler and GC threads, Deno's runtime). */
  mainThreadCpuUsPerLog?: number;
}

/** What `cmd/primary.ts --json` prints when it ends. */
export interface PrimaryReport {
  /** The options it ran with, without the secret. */
  config: Omit<PrimaryCommandOptions, "secret">;
  result: PrimaryResult;
  digest: DigestValue;
  stats: PrimaryStatsValue;
}

/** Ops/s, MB/s and latency percentiles (µs). */
export const summarySchema: Schema<LatencySummary> = obj({
  count: int,
  ops_per_s: num,
  mb_per_s: num,
  p50: num,
  p90: num,
  p99: num,
  p999: num,
  max: num,
});

/** The recovery options as a report echoes them. */
export const recoverySchema = {
  reconnect: int,
  reconnectFor: opt(int),
  reconnectDelayMs: int,
  faultPlan: opt(str),
  trace: opt(str),
};

const configSchema: Schema<PrimaryReport["config"]> = obj({
  ...recoverySchema,
  device: str,
  host: str,
  port: int,
  gidIndex: opt(int),
  count: int,
  warmup: int,
  duration: opt(int),
  size: str,
  depth: int,
  seed: int,
  lba: str,
  lbaSpace: str,
  ring: str,
  maxLog: opt(str),
  ackTimeoutMs: int,
  wait: oneOf(waitModes),
  spinUs: int,
  breakdown: opt(str),
  qpTimeout: int,
  retry: int,
  rnrRetry: int,
  json: opt(bool),
  events: opt(bool),
});

/** The primary's counters and latency summary. */
export const primaryStatsSchema: Schema<PrimaryStatsValue> = obj({
  posted: int,
  ackedLogs: int,
  ackedBytes: int,
  refused: int,
  failed: int,
  resends: int,
  skips: int,
  admissionWaits: int,
  admissionTimeouts: int,
  maxAheadBytes: int,
  suspensions: int,
  recoveries: int,
  recoveryMs: arr(num, 1000),
  inFlight: int,
  nextSeq: int,
  released: int,
  writePos: int,
  elapsedMs: num,
  summary: summarySchema,
});

const reportSchema: Schema<PrimaryReport> = obj({
  config: configSchema,
  result: obj({
    submitted: int,
    acked: int,
    refused: int,
    inOrder: bool,
    elapsedMs: num,
    summary: summarySchema,
    failure: opt(str),
    wait: oneOf(waitModes),
    cpuUsPerLog: opt(num),
    mainThreadCpuUsPerLog: opt(num),
  }),
  digest: digestSchema,
  stats: primaryStatsSchema,
});

/** The report line (no newline); the secret is never in it. */
export function encodePrimaryReport(report: PrimaryReport): string {
  return JSON.stringify({ ...report, config: { ...report.config, secret: undefined } });
}

/** Decodes a report line; a `ToolOutputError` naming the bad field otherwise. */
export function decodePrimaryReport(line: string): PrimaryReport {
  return decodeJsonLine(reportSchema, line, "primary");
}

/** `cmd/primary.ts` for {@linkcode spawnTool}. */
export const primaryTool: ToolSpec<PrimaryArgs, PrimaryReport> = {
  name: "primary",
  file: "cmd/primary.ts",
  encode: primaryArgv,
  decodeReport: decodePrimaryReport,
};
