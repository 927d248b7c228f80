/**
 * The boundary of `cmd/replica.ts`: the options it parses into, the only argv encoder for
 * them, the report it prints with `--json` and its validated decoder. The command and the
 * processes that start it both use these types, so `deno check` holds both ends together.
 *
 * @module
 */
import type { WaitMode } from "../replication/poller.ts";
import type { ReplicaStats } from "../replication/replica.ts";
import type { VerifyValue } from "../replication/verify.ts";
import { encodeArgv, type FlagTable } from "./argv.ts";
import {
  bool,
  decodeJsonLine,
  int,
  num,
  obj,
  oneOf,
  opt,
  rec,
  type Schema,
  str,
} from "./decode.ts";
import type { ToolSpec } from "./spawn.ts";
import { waitModes } from "../replication/poller.ts";

/** What `cmd/replica.ts` parses its argv into (its defaults applied). */
export interface ReplicaCommandOptions {
  device: string;
  host: string;
  port: number;
  secret?: string;
  gidIndex?: number;
  ring: string;
  slots: number;
  maxLog?: string;
  wait: WaitMode;
  spinUs: number;
  breakdown?: string;
  once?: boolean;
  retain?: boolean;
  cache?: string;
  verifySeed?: number;
  slowUs?: number;
  fault?: string;
  faultPlan?: string;
  trace?: string;
  json?: boolean;
  readyFile?: string;
  events?: boolean;
}

/** What a caller passes: the device, and any options whose defaults it does not want. */
export type ReplicaArgs = Pick<ReplicaCommandOptions, "device"> & Partial<ReplicaCommandOptions>;

const flags = {
  device: "--device",
  host: "--host",
  port: "--port",
  secret: "--secret",
  gidIndex: "--gid-index",
  ring: "--ring",
  slots: "--slots",
  maxLog: "--max-log",
  wait: "--wait",
  spinUs: "--spin-us",
  breakdown: "--breakdown",
  once: "--once",
  retain: "--retain",
  cache: "--cache",
  verifySeed: "--verify-seed",
  slowUs: "--slow-us",
  fault: "--fault",
  faultPlan: "--fault-plan",
  trace: "--trace",
  json: "--json",
  readyFile: "--ready-file",
  events: "--events",
} as const satisfies FlagTable<ReplicaCommandOptions>;

/** The argv of `cmd/replica.ts` for `args`. */
export function replicaArgv(args: ReplicaArgs): string[] {
  return encodeArgv(flags, args);
}

/** What `cmd/replica.ts --json` prints when it ends: its statistics and figures. */
export interface ReplicaReport extends ReplicaStats {
  wait: WaitMode;
  /** Process CPU µs from listening to the end / logs served (absent when none). */
  cpuUsPerLog?: number;
  /** With `--verify-seed`: what the verifier saw. */
  verify?: VerifyValue;
}

/** The digest of acked logs, as both sides report it. */
export const digestSchema = obj({ count: int, bytes: int, lastSeq: int, digest: str });

const reportSchema: Schema<ReplicaReport> = obj({
  sessions: int,
  accepted: int,
  acceptedBytes: int,
  skips: int,
  nops: int,
  releases: int,
  recovered: int,
  refused: rec(int),
  nextSeq: int,
  released: num,
  digest: digestSchema,
  sessionActive: bool,
  wait: oneOf(waitModes),
  cpuUsPerLog: opt(num),
  verify: opt(obj({
    checked: int,
    mismatches: int,
    first: opt(obj({ seq: int, byte: int })),
  })),
});

/** The report line (no newline). */
export function encodeReplicaReport(report: ReplicaReport): string {
  return JSON.stringify(report);
}

/** Decodes a report line; a `ToolOutputError` naming the bad field otherwise. */
export function decodeReplicaReport(line: string): ReplicaReport {
  return decodeJsonLine(reportSchema, line, "replica");
}

/** `cmd/replica.ts` for {@linkcode spawnTool}. */
export const replicaTool: ToolSpec<ReplicaArgs, ReplicaReport> = {
  name: "replica",
  file: "cmd/replica.ts",
  encode: replicaArgv,
  decodeReport: decodeReplicaReport,
};
