/**
 * `deno run -A cmd/replica.ts --device rxeb --host 192.0.2.2 [options]`: serves primaries,
 * one session at a time, until SIGINT/SIGTERM (or after one session with `--once`).
 *
 * @module
 */
import { Command, Option } from "@commander-js/extra-typings";
import { AckStatus } from "../lib/log/ack.ts";
import { parseBytes } from "../lib/bench/workload.ts";
import { Replica, type ReplicaStats } from "../lib/replication/replica.ts";
import { ReplicaVerifier } from "../lib/replication/verify.ts";
import { parseFaultPlan, type ReplicaFaults } from "../lib/replication/faults.ts";
import { openReplicaCache } from "../lib/cache/replica_cache.ts";
import { checkDenoVersion } from "../lib/version.ts";
import { trace } from "../lib/trace/trace.ts";
import "../lib/trace/codes.ts";
import { breakdown } from "../lib/trace/breakdown.ts";
import { processCpuUs } from "../lib/clock.ts";
import { emitEvent } from "../lib/tools/events.ts";
import {
  encodeReplicaReport,
  type ReplicaCommandOptions,
  type ReplicaReport,
} from "../lib/tools/replica.ts";
import {
  breakdownOption,
  checkOutputPath,
  parseIntOption,
  readSecret,
  runCommand,
  waitOption,
} from "./options.ts";

/** The command's options; they parse into {@linkcode ReplicaCommandOptions}. */
// The return type is the Command commander-js/extra-typings infers from the options below
// (spelled out it would repeat every option); lib/tools checks it against the tool's type.
// deno-lint-ignore explicit-module-boundary-types
export function replicaProgram() {
  return new Command("replica")
    .description(
      "Serve as the replica: accept a primary's bootstrap on TCP (shared secret), connect an\n" +
        "RC QP, and answer each log (RDMA WRITE of data + SEND of its record) with an ack after\n" +
        "checking sequence, placement and CRC32C. One session at a time.",
    )
    .requiredOption("-d, --device <name>", "RDMA device (e.g. rxeb)")
    .option("--host <address>", "address to bind the control port to", "0.0.0.0")
    .option("-p, --port <port>", "control (TCP) port; 0 picks one", parseIntOption(0, 65535), 18515)
    .option("--secret <secret>", "shared secret (or RRL_SECRET); 8+ bytes")
    .option("--gid-index <n>", "GID index (default: the RoCEv2 IPv4 GID)", parseIntOption(0, 255))
    .option("--ring <size>", "data ring size, e.g. 16m (must equal the primary's)", "16m")
    .option(
      "--slots <n>",
      "posted RECVs = the primary's maximum depth",
      parseIntOption(1, 1024),
      64,
    )
    .option("--max-log <size>", "largest log accepted, e.g. 1m (default min(1m, ring/2))")
    .addOption(waitOption())
    .option(
      "--spin-us <us>",
      "with --wait hybrid: busy-poll this long before sleeping on the completion channel",
      parseIntOption(0, 100000),
      1000,
    )
    .addOption(breakdownOption())
    .option("--once", "exit after the first session ends")
    .option(
      "--retain",
      "keep logs until the primary's RELEASE (a write cache) instead of freeing them once persisted",
    )
    .option(
      "--cache <path>",
      "keep the data ring in this write-cache file (tmpfs/hugetlbfs), persisted before each ack; implies --retain",
    )
    .option(
      "--verify-seed <seed>",
      "check every log's bytes against the workload of this seed",
      parseIntOption(0, 2 ** 32 - 1),
    )
    .option(
      "--slow-us <us>",
      "stall this long per log before the ack (tests credits)",
      parseIntOption(0, 10_000_000),
    )
    .addOption(
      new Option(
        "--fault <seq:STATUS>",
        "answer STATUS (e.g. CRC_MISMATCH) to log SEQ instead of accepting it",
      ),
    )
    .option(
      "--fault-plan <json>",
      'faults to inject, e.g. \'{"replica":{"kill":{"seq":40,"point":"after-persist"}}}\' (docs/protocol.md)',
    )
    .option(
      "--trace <path>",
      "record a trace of posts, completions, acks and faults into this JSONL file",
    )
    .option("--json", "print the final statistics as JSON on stdout")
    .option("--ready-file <path>", "write the bound port here once listening (for scripts)")
    .option("--events", "print JSON event lines on stdout (ready, resumed) for scripts");
}

/** Serves; resolves with 0 after a clean stop, 1 on failure, 2 on usage errors. */
export function run(args: string[]): Promise<number> {
  return runCommand(replicaProgram(), args, async (parsed) => {
    const opts: ReplicaCommandOptions = parsed;
    checkDenoVersion();
    const secret = readSecret(opts.secret);
    const plan = opts.faultPlan ? parseFaultPlan(opts.faultPlan) : {};
    const faults: ReplicaFaults = { ...plan.replica };
    if (opts.fault) {
      const f = parseFault(opts.fault);
      faults.status = { seq: f.seq, status: f.name };
    }
    const verifier = opts.verifySeed !== undefined
      ? new ReplicaVerifier(opts.verifySeed)
      : undefined;
    const slowUs = opts.slowUs ?? 0;
    using cacheHooks = opts.cache
      ? openReplicaCache({ path: opts.cache, dataBytes: parseBytes(opts.ring, "--ring") })
      : undefined;
    if (cacheHooks?.resume) {
      const r = cacheHooks.resume;
      console.error(
        `replica: resuming the write cache: released through seq ${r.releasedSeq}, ${r.logs.length} retained log(s)`,
      );
      if (opts.events) {
        emitEvent({
          event: "resumed",
          releasedSeq: r.releasedSeq,
          retainedLogs: r.logs.length,
          throughSeq: r.logs.at(-1)?.seq ?? r.releasedSeq,
        });
      }
    }
    const tracePath = opts.trace;
    if (tracePath) checkOutputPath(tracePath, "--trace");
    if (opts.breakdown) checkOutputPath(opts.breakdown, "--breakdown");
    if (tracePath) trace.enable();
    if (opts.breakdown) breakdown.enable("replica");
    const replica = await Replica.listen({
      memory: cacheHooks?.cache.data,
      onRelease: cacheHooks?.onRelease,
      device: opts.device,
      gidIndex: opts.gidIndex,
      hostname: opts.host,
      port: opts.port,
      secret,
      ringBytes: parseBytes(opts.ring, "--ring"),
      metaSlots: opts.slots,
      maxLogBytes: opts.maxLog ? parseBytes(opts.maxLog, "--max-log") : undefined,
      wait: opts.wait,
      spinUs: opts.spinUs,
      retain: (opts.retain ?? false) || cacheHooks !== undefined,
      faults,
      beforeDeath: tracePath ? () => trace.writeJsonlSync(tracePath) : undefined,
      resume: cacheHooks?.resume,
      persist: verifier || slowUs || cacheHooks
        ? (log) => {
          if (!log.skip) verifier?.check(log);
          if (slowUs) stall(slowUs);
          return cacheHooks ? cacheHooks.persist(log) : true;
        }
        : undefined,
    });
    const cpuAtListen = processCpuUs();
    const stop = Promise.withResolvers<void>();
    const onSignal = () => stop.resolve();
    Deno.addSignalListener("SIGINT", onSignal);
    Deno.addSignalListener("SIGTERM", onSignal);
    // Ready only once a SIGTERM would be handled: a caller may stop it right away.
    if (opts.readyFile) await Deno.writeTextFile(opts.readyFile, `${replica.port}\n`);
    if (opts.events) emitEvent({ event: "ready", port: replica.port });
    try {
      if (opts.once) {
        await Promise.race([stop.promise, replica.firstSessionEnded()]);
      } else {
        await stop.promise;
      }
    } finally {
      Deno.removeSignalListener("SIGINT", onSignal);
      Deno.removeSignalListener("SIGTERM", onSignal);
      await replica.close();
      if (tracePath) await trace.writeJsonl(tracePath);
      if (opts.breakdown) breakdown.writeSync(opts.breakdown);
    }
    const stats = replica.stats();
    const served = stats.accepted + stats.skips;
    const cpuUsPerLog = served > 0 ? (processCpuUs() - cpuAtListen) / served : undefined;
    const report: ReplicaReport = {
      ...stats,
      wait: opts.wait,
      cpuUsPerLog,
      verify: verifier?.value(),
    };
    if (opts.json) console.log(encodeReplicaReport(report));
    else console.error(describe(stats, verifier));
    return verifier && verifier.value().mismatches > 0 ? 1 : 0;
  });
}

function stall(us: number): void {
  const until = performance.now() + us / 1000;
  while (performance.now() < until) { /* a stalled replica: spin */ }
}

function parseFault(spec: string): { seq: number; name: string } {
  const match = /^(\d+):([A-Z_]+)$/.exec(spec);
  const status = match ? AckStatus[match[2] as keyof typeof AckStatus] : undefined;
  if (!match || status === undefined || status === AckStatus.OK) {
    const names = Object.keys(AckStatus).filter((n) => n !== "OK").join(", ");
    throw new RangeError(`--fault '${spec}' is not SEQ:STATUS with STATUS one of ${names}`);
  }
  return { seq: Number(match[1]), name: match[2] };
}

function describe(s: ReplicaStats, verifier?: ReplicaVerifier): string {
  const refused = Object.entries(s.refused).map(([k, v]) => `${k} ${v}`).join(", ") || "none";
  const verify = verifier
    ? `, verified ${verifier.value().checked} (mismatches ${verifier.value().mismatches})`
    : "";
  return `replica: ${s.sessions} session(s), ${s.accepted} logs (${s.acceptedBytes} B) accepted, ` +
    `refused: ${refused}${verify}; next seq ${s.nextSeq}; digest ${s.digest.digest} over ${s.digest.count} logs`;
}

if (import.meta.main) Deno.exit(await run(Deno.args));
