/**
 * `deno run -A cmd/primary.ts --device rxea --host 192.0.2.2 [options]`: connects to a
 * replica and replicates a seeded workload, then prints ops/s, MB/s and latency
 * percentiles (and the digest of every acked log).
 *
 * @module
 */
import { Command } from "@commander-js/extra-typings";
import { runWorkload } from "../lib/bench/run_workload.ts";
import { formatSummary, progress } from "../lib/bench/summary.ts";
import {
  DataFiller,
  parseBytes,
  parseLbaPattern,
  parseSizeSpec,
  WorkloadPlan,
} from "../lib/bench/workload.ts";
import { Primary } from "../lib/replication/primary.ts";
import { checkDenoVersion } from "../lib/version.ts";
import { breakdown } from "../lib/trace/breakdown.ts";
import { processCpuUs, threadCpuUs } from "../lib/clock.ts";
import { emitEvent } from "../lib/tools/events.ts";
import {
  encodePrimaryReport,
  type PrimaryCommandOptions,
  type PrimaryReport,
} from "../lib/tools/primary.ts";
import {
  breakdownOption,
  checkOutputPath,
  parseIntOption,
  primaryRecovery,
  primaryRecoveryOptions,
  readSecret,
  runCommand,
  waitOption,
} from "./options.ts";
import { blockBytes } from "../lib/block.ts";

/** The command's options; they parse into {@linkcode PrimaryCommandOptions}. */
// The return type is the Command commander-js/extra-typings infers from the options below
// (spelled out it would repeat every option); lib/tools checks it against the tool's type.
// deno-lint-ignore explicit-module-boundary-types
export function primaryProgram() {
  const recovery = primaryRecoveryOptions();
  return new Command("primary")
    .description(
      "Replicate a seeded workload to a replica: per log, an RDMA WRITE of the data into the\n" +
        "replica's ring and an RDMA SEND of its record, chained; a log counts when its OK ack\n" +
        "arrives. Prints ops/s, MB/s and latency p50/p90/p99/p99.9/max (HDR histogram).",
    )
    .requiredOption("-d, --device <name>", "RDMA device (e.g. rxea)")
    .requiredOption("--host <host>", "the replica's control address (host name or IP)")
    .option("-p, --port <port>", "the replica's control port", parseIntOption(1, 65535), 18515)
    .option("--secret <secret>", "shared secret (or RRL_SECRET); 8+ bytes")
    .option("--gid-index <n>", "GID index (default: the RoCEv2 IPv4 GID)", parseIntOption(0, 255))
    .option(
      "-n, --count <n>",
      "logs to replicate (measured)",
      parseIntOption(1, 100_000_000),
      10_000,
    )
    .option(
      "--warmup <n>",
      "logs replicated first and not measured (JIT warm-up)",
      parseIntOption(0, 10_000_000),
      0,
    )
    .option(
      "--duration <s>",
      "stop after this many seconds (whichever comes first)",
      parseIntOption(1, 86_400),
    )
    .option("-s, --size <spec>", "log sizes: 4k, 4k,64k (uniform) or 4k:60,64k:40 (weighted)", "4k")
    .option("-q, --depth <n>", "logs in flight", parseIntOption(1, 1000), 16)
    .option("--seed <n>", "workload seed (sizes, LBAs, bytes)", parseIntOption(0, 2 ** 32 - 1), 1)
    .option("--lba <pattern>", "LBA pattern: seq, random or hot:PCT[:WRITES_PCT]", "random")
    .option("--lba-space <size>", "LBA space, e.g. 1g (4096-byte blocks)", "1g")
    .option("--ring <size>", "data ring size (must equal the replica's)", "16m")
    .option("--max-log <size>", "largest log (default min(1m, ring/2))")
    .option(
      "--ack-timeout-ms <ms>",
      "a log not acked in this time ends the session",
      parseIntOption(10, 600_000),
      5000,
    )
    .addOption(waitOption())
    .option(
      "--spin-us <us>",
      "with --wait hybrid: busy-poll this long before sleeping on the completion channel",
      parseIntOption(0, 100_000),
      1000,
    )
    .addOption(breakdownOption())
    .option(
      "--qp-timeout <n>",
      "QP ACK timeout exponent (4.096 us * 2^n)",
      parseIntOption(0, 31),
      14,
    )
    .option("--retry <n>", "QP transport retries", parseIntOption(0, 7), 7)
    .option("--rnr-retry <n>", "QP RNR retries (7 = forever is refused)", parseIntOption(0, 6), 6)
    .addOption(recovery[0])
    .addOption(recovery[1])
    .addOption(recovery[2])
    .addOption(recovery[3])
    .addOption(recovery[4])
    .option("--json", "print the result as JSON on stdout")
    .option("--events", "print JSON event lines on stdout (busy-retry) for scripts");
}

/** Runs the workload; resolves with 0 when every log was acked, 1 otherwise, 2 on usage errors. */
export function run(args: string[]): Promise<number> {
  return runCommand(primaryProgram(), args, async (parsed) => {
    const opts: PrimaryCommandOptions = parsed;
    checkDenoVersion();
    const sizes = parseSizeSpec(opts.size);
    const plan = new WorkloadPlan({
      sizes,
      pattern: parseLbaPattern(opts.lba),
      lbaBlocks: parseBytes(opts.lbaSpace, "--lba-space") / blockBytes,
      seed: opts.seed,
    });
    const ringBytes = parseBytes(opts.ring, "--ring");
    const largest = Math.max(...sizes.sizes);
    const maxLogBytes = opts.maxLog
      ? parseBytes(opts.maxLog, "--max-log")
      : Math.max(largest, Math.min(1 << 20, ringBytes / 2));
    if (opts.trace) checkOutputPath(opts.trace, "--trace");
    if (opts.breakdown) checkOutputPath(opts.breakdown, "--breakdown");
    if (largest > maxLogBytes) {
      throw new RangeError(
        `--size ${opts.size} has ${largest}-byte logs, above --max-log ${maxLogBytes}: raise --max-log`,
      );
    }
    const { writeTrace, ...recover } = primaryRecovery(opts);
    if (opts.breakdown) breakdown.enable("primary");
    await using primary = await Primary.connect({
      device: opts.device,
      gidIndex: opts.gidIndex,
      host: opts.host,
      port: opts.port,
      secret: readSecret(opts.secret),
      ringBytes,
      maxLogBytes,
      depth: opts.depth,
      ackTimeoutMs: opts.ackTimeoutMs,
      wait: opts.wait,
      spinUs: opts.spinUs,
      qpTimeout: opts.qpTimeout,
      retryCount: opts.retry,
      rnrRetry: opts.rnrRetry,
      onBusyRetry: opts.events
        ? (attempt, delayMs) => emitEvent({ event: "busy-retry", attempt, delayMs })
        : undefined,
      ...recover,
    });
    const filler = new DataFiller(opts.seed);
    if (opts.warmup > 0) {
      const warm = await runWorkload(primary, {
        plan,
        filler,
        count: opts.warmup,
        durationMs: Infinity,
        depth: opts.depth,
      });
      if (warm.failure || warm.refused > 0) {
        throw new Error(`The warm-up failed: ${warm.failure ?? `${warm.refused} refused`}`);
      }
    }
    const bar = progress(opts.count, "replicating");
    const cpuBefore = processCpuUs();
    const threadBefore = threadCpuUs();
    const workload = await runWorkload(primary, {
      plan,
      filler,
      count: opts.count,
      durationMs: opts.duration ? opts.duration * 1000 : Infinity,
      depth: opts.depth,
      onProgress: (done) => bar.update(done),
    });
    const cpuUs = processCpuUs() - cpuBefore;
    const threadUs = threadCpuUs() - threadBefore;
    bar.stop();
    const result: PrimaryReport["result"] = {
      ...workload,
      wait: opts.wait,
      cpuUsPerLog: workload.acked > 0 ? cpuUs / workload.acked : undefined,
      /** The main thread's share (the rest: V8's compiler and GC threads, Deno's runtime). */
      mainThreadCpuUsPerLog: workload.acked > 0 ? threadUs / workload.acked : undefined,
    };
    await writeTrace();
    if (opts.breakdown) breakdown.writeSync(opts.breakdown);
    const digest = primary.digest();
    const stats = primary.stats();
    if (opts.json) {
      console.log(encodePrimaryReport({ config: opts, result, digest, stats }));
    } else {
      console.log(
        `primary: ${result.acked} acked, ${result.refused} refused of ${result.submitted} in ${
          (result.elapsedMs / 1000).toFixed(2)
        } s` +
          (result.failure ? `; session failed: ${result.failure}` : ""),
      );
      console.log(`primary: ${formatSummary(result.summary)}`);
      console.log(
        `primary: digest ${digest.digest} over ${digest.count} logs (last seq ${digest.lastSeq}); resends ${stats.resends}, credit waits ${stats.admissionWaits}`,
      );
    }
    return result.failure || result.refused > 0 || !result.inOrder ? 1 : 0;
  });
}

if (import.meta.main) Deno.exit(await run(Deno.args));
