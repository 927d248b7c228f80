/**
 * The boundary of `cmd/cache.ts`: the options it parses into, the only argv encoder for
 * them, the report it prints with `--json` and its decoder, and the completion log it
 * writes with `--completions` (one JSON line per write completed with success, read back
 * by the scenario checker) with its encoder and decoder.
 *
 * @module
 */
import type { CacheWorkloadResult } from "../cache/cache_workload.ts";
import type { HostCacheStats } from "../cache/service.ts";
import type { DigestValue } from "../replication/digest.ts";
import type { WaitMode } from "../replication/poller.ts";
import type { PrimaryStatsValue } from "../replication/primary_stats.ts";
import { encodeArgv, type FlagTable } from "./argv.ts";
import {
  arr,
  decodeJsonLine,
  int,
  nat,
  num,
  obj,
  opt,
  type Schema,
  str,
  ToolOutputError,
} from "./decode.ts";
import {
  primaryStatsSchema,
  recoveryFlags,
  type RecoveryOptions,
  summarySchema,
} from "./primary.ts";
import { digestSchema } from "./replica.ts";
import type { ToolSpec } from "./spawn.ts";

/** What `cmd/cache.ts` parses its argv into (its defaults applied). */
export interface CacheCommandOptions extends RecoveryOptions {
  device: string;
  host: string;
  port: number;
  secret?: string;
  cache: string;
  backing: string;
  capacity: string;
  ring: string;
  count: number;
  size: string;
  depth: number;
  flushEvery: number;
  flushDestage?: boolean;
  seed: number;
  /** `--no-verify` makes it false. */
  verify: boolean;
  /** `--no-drain` makes it false. */
  drain: boolean;
  recover?: boolean;
  firstOp: number;
  completions?: string;
  wait: WaitMode;
  json?: boolean;
}

/** What a caller passes: where the replica is, and any options whose defaults it does not want. */
export type CacheArgs = Pick<CacheCommandOptions, "device" | "host"> & Partial<CacheCommandOptions>;

const flags = {
  device: "--device",
  host: "--host",
  port: "--port",
  secret: "--secret",
  cache: "--cache",
  backing: "--backing",
  capacity: "--capacity",
  ring: "--ring",
  count: "--count",
  size: "--size",
  depth: "--depth",
  flushEvery: "--flush-every",
  flushDestage: "--flush-destage",
  seed: "--seed",
  verify: { whenFalse: "--no-verify" },
  drain: { whenFalse: "--no-drain" },
  recover: "--recover",
  firstOp: "--first-op",
  completions: "--completions",
  wait: "--wait",
  ...recoveryFlags,
  json: "--json",
} as const satisfies FlagTable<CacheCommandOptions>;

/** The argv of `cmd/cache.ts` for `args`. */
export function cacheArgv(args: CacheArgs): string[] {
  return encodeArgv(flags, args);
}

/** What `cmd/cache.ts --json` prints when it ends. */
export interface CacheReport {
  result: CacheWorkloadResult;
  /** The replication layer's counters and latency. */
  replication: PrimaryStatsValue;
  digest: DigestValue;
  stats: HostCacheStats;
  /** SHA-256 of the expected image (absent with `--no-verify`). */
  imageSha256?: string;
  destagedSeq: number;
  /** The first cause of failure, when the run failed. */
  firstFailure?: string;
}

const reportSchema: Schema<CacheReport> = obj({
  result: obj({
    writes: int,
    writesOk: int,
    writesFailed: int,
    flushes: int,
    orderViolations: int,
    firstViolation: opt(str),
    failures: arr(obj({ op: int, lba: int, status: int }), 100),
    readMismatches: int,
    backingMismatches: int,
    commitLatency: summarySchema,
    elapsedMs: num,
  }),
  replication: primaryStatsSchema,
  digest: digestSchema,
  stats: obj({
    writes: int,
    writesFailed: int,
    reads: int,
    readBlocksFromCache: int,
    readBlocksFromBacking: int,
    flushes: int,
    destage: obj({
      destagedLogs: int,
      destagedBytes: int,
      batches: int,
      destagedSeq: int,
      pending: int,
    }),
  }),
  imageSha256: opt(str),
  destagedSeq: int,
  firstFailure: opt(str),
});

/** The report line (no newline). */
export function encodeCacheReport(report: CacheReport): string {
  return JSON.stringify(report);
}

/** Decodes a report line; a `ToolOutputError` naming the bad field otherwise. */
export function decodeCacheReport(line: string): CacheReport {
  return decodeJsonLine(reportSchema, line, "cache");
}

/** `cmd/cache.ts` for {@linkcode spawnTool}. */
export const cacheTool: ToolSpec<CacheArgs, CacheReport> = {
  name: "cache",
  file: "cmd/cache.ts",
  encode: cacheArgv,
  decodeReport: decodeCacheReport,
};

/** One write completed with success: its op (stamp), log seq, first LBA and blocks. */
export interface Completion {
  op: number;
  seq: number;
  lba: number;
  blocks: number;
}

/** Largest completion log line accepted. */
const completionCharsMax = 160;
const completionSchema: Schema<Completion> = obj({ op: nat, seq: nat, lba: nat, blocks: nat });

/** The completion log line of `c`, with its newline. */
export function encodeCompletion(c: Completion): string {
  return `${JSON.stringify({ op: c.op, seq: c.seq, lba: c.lba, blocks: c.blocks })}\n`;
}

/** A completion log: its valid lines, and each malformed line with why. */
export interface CompletionLog {
  completions: Completion[];
  malformed: { line: number; detail: string }[];
}

/**
 * Decodes a completion log. A last line without its newline (the writer was killed while
 * writing it) is not a completion and not an error: the write had not completed.
 */
export function decodeCompletions(text: string): CompletionLog {
  const lines = text.split("\n");
  const log: CompletionLog = { completions: [], malformed: [] };
  for (const [i, line] of lines.entries()) {
    if (i === lines.length - 1) break; // "" after the last newline, or a torn line
    try {
      if (line.length > completionCharsMax) {
        throw new ToolOutputError("cache", "line", `longer than ${completionCharsMax} characters`);
      }
      log.completions.push(decodeJsonLine(completionSchema, line, "cache"));
    } catch (error) {
      if (!(error instanceof ToolOutputError)) throw error;
      log.malformed.push({ line: i + 1, detail: `${error.message}: ${line.slice(0, 80)}` });
    }
  }
  return log;
}
