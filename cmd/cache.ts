/**
 * `deno run -A cmd/cache.ts --device rxea --host 192.0.2.2 [options]`: the host cache
 * service behind a virtual NVMe controller, driven by a fio-like randwrite + verify
 * workload; every write is replicated before it completes, then de-staged.
 *
 * @module
 */
import { Command } from "@commander-js/extra-typings";
import { formatSummary, progress } from "../lib/bench/summary.ts";
import { parseBytes, parseSizeSpec, readStamp } from "../lib/bench/workload.ts";
import { AckWitness } from "../lib/cache/ack_witness.ts";
import { runCacheWorkload } from "../lib/cache/cache_workload.ts";
import { ExpectedImage } from "../lib/cache/expected_image.ts";
import { HostCacheService } from "../lib/cache/service.ts";
import { NvmeController } from "../lib/nvme/controller.ts";
import { NvmeHost } from "../lib/nvme/host.ts";
import { checkDenoVersion } from "../lib/version.ts";
import {
  parseIntOption,
  primaryRecovery,
  primaryRecoveryOptions,
  readSecret,
  runCommand,
  waitOption,
} from "./options.ts";
import { reconnectWindowMs } from "../lib/replication/primary.ts";
import {
  type CacheCommandOptions,
  type CacheReport,
  encodeCacheReport,
  encodeCompletion,
} from "../lib/tools/cache.ts";
import { blockBytes } from "../lib/block.ts";

/** The command's options; they parse into {@linkcode CacheCommandOptions}. */
// The return type is the Command commander-js/extra-typings infers from the options below
// (spelled out it would repeat every option); lib/tools checks it against the tool's type.
// deno-lint-ignore explicit-module-boundary-types
export function cacheProgram() {
  const recovery = primaryRecoveryOptions();
  return new Command("cache")
    .description(
      "Run the host cache service behind a virtual NVMe controller: each guest Write becomes a " +
        "log in the write cache, is replicated to the replica and completes only after its OK " +
        "ack; logs are de-staged to the backing store. Drives it with writes of mixed sizes at " +
        "overlapping random LBAs and a Flush every N writes, then verifies everything.",
    )
    .requiredOption("-d, --device <name>", "RDMA device (e.g. rxea)")
    .requiredOption("--host <host>", "the replica's control address")
    .option("-p, --port <port>", "the replica's control port", parseIntOption(1, 65535), 18515)
    .option("--secret <secret>", "shared secret (or RRL_SECRET)")
    .option(
      "--cache <path>",
      "the primary's write-cache file (tmpfs or hugetlbfs)",
      "/dev/shm/rrl-primary.cache",
    )
    .option("--backing <path>", "the backing store file or block device", "/tmp/rrl-backing.img")
    .option("--capacity <size>", "namespace size", "64m")
    .option("--ring <size>", "write cache data ring (= the replica's ring)", "16m")
    .option("-n, --count <n>", "writes", parseIntOption(1, 10_000_000), 10_000)
    .option("-s, --size <spec>", "write sizes (uniform or weighted mix)", "4k,16k,64k,256k")
    .option("-q, --depth <n>", "NVMe commands in flight", parseIntOption(1, 1000), 16)
    .option(
      "--flush-every <n>",
      "a Flush after every N writes (0: none)",
      parseIntOption(0, 1_000_000),
      100,
    )
    .option("--flush-destage", "Flush also waits for de-staging")
    .option("--seed <n>", "workload seed", parseIntOption(0, 2 ** 32 - 1), 1)
    .option("--no-verify", "skip the read-back and backing-store comparison")
    .option(
      "--no-drain",
      "leave un-de-staged logs in both write caches at the end (as after a crash)",
    )
    .option(
      "--recover",
      "reopen the write cache left by a killed run (--cache), re-replicate and de-stage what it holds, then run the workload",
    )
    .option(
      "--first-op <n>",
      "number the workload's writes from N (stamped in their data; a restarted run continues a killed one)",
      parseIntOption(0, 2 ** 40),
      0,
    )
    .option(
      "--completions <file>",
      "append a JSON line {op, seq, lba, blocks} for each write before it completes with success (scenario checks)",
    )
    .addOption(waitOption())
    .addOption(recovery[0])
    .addOption(recovery[1])
    .addOption(recovery[2])
    .addOption(recovery[3])
    .addOption(recovery[4])
    .option("--json", "print the result as JSON on stdout");
}

/**
 * Runs the workload; 0 when every write succeeded in order and everything verified, else 1
 * with the first cause of failure on stderr (and as `firstFailure` in the JSON).
 */
export function run(args: string[]): Promise<number> {
  return runCommand(cacheProgram(), args, async (parsed) => {
    const opts: CacheCommandOptions = parsed;
    checkDenoVersion();
    const capacityBytes = parseBytes(opts.capacity, "--capacity");
    if (capacityBytes % blockBytes !== 0) {
      throw new RangeError(`--capacity must be a multiple of ${blockBytes}, got ${capacityBytes}`);
    }
    const sizes = parseSizeSpec(opts.size);
    const image = new ExpectedImage(capacityBytes / blockBytes, opts.seed);
    const { writeTrace, ...recover } = primaryRecovery(opts);
    // While a session is replaced, writes wait: let them wait for the whole reconnect window.
    using completions = opts.completions ? openCompletionLog(opts.completions) : undefined;
    const reconnectWindow = reconnectWindowMs(recover.reconnect);
    // The replica's acks as the replication layer sees them: the workload's order check.
    const acks = new AckWitness();
    await using service = await HostCacheService.open({
      device: opts.device,
      host: opts.host,
      port: opts.port,
      secret: readSecret(opts.secret),
      cachePath: opts.cache,
      backingPath: opts.backing,
      capacityBlocks: capacityBytes / blockBytes,
      ringBytes: parseBytes(opts.ring, "--ring"),
      maxLogBytes: Math.max(...sizes.sizes),
      depth: opts.depth,
      wait: opts.wait,
      flushDestage: opts.flushDestage ?? false,
      onCommit: (lba, data, seq) => {
        image.commit(lba, data);
        completions?.add(lba, data, seq);
      },
      recover: opts.recover ?? false,
      onAcked: acks.acked,
      ...recover,
      admissionTimeoutMs: 10_000 + reconnectWindow,
    });
    const controller = new NvmeController({
      backend: service,
      capacityBlocks: capacityBytes / blockBytes,
      sqDepth: Math.max(64, opts.depth * 2),
      mdtsBytes: 1 << 20,
    });
    const host = new NvmeHost(controller);
    const bar = progress(opts.count, "writing");
    const result = await runCacheWorkload({
      host,
      service,
      acks,
      image,
      count: opts.count,
      sizes,
      depth: opts.depth,
      seed: opts.seed,
      firstOp: opts.firstOp,
      flushEvery: opts.flushEvery,
      verify: opts.verify,
      drain: opts.drain,
      backingPath: opts.backing,
      onProgress: (done) => done % 100 === 0 && bar.update(done),
    });
    bar.stop();
    const replication = service.primary.stats();
    const digest = service.primary.digest();
    const stats = service.stats();
    const imageSha256 = opts.verify ? await image.sha256() : undefined;
    const destagedSeq = stats.destage.destagedSeq;
    // A drain that cannot finish (de-staging failed) is reported, not thrown: the summary still prints.
    const closeError = await service.close({ drain: opts.drain }).then(
      () => undefined,
      (error: Error) => error,
    );
    await writeTrace();
    const firstFailure = (service.firstFailure ?? closeError)?.message;
    if (firstFailure) console.error(`cache: first failure: ${firstFailure}`);
    if (opts.json) {
      const report: CacheReport = {
        result,
        replication,
        digest,
        stats,
        imageSha256,
        destagedSeq,
        firstFailure,
      };
      console.log(encodeCacheReport(report));
    } else {
      console.log(
        `cache: ${result.writesOk} writes ok, ${result.writesFailed} failed, ${result.flushes} flushes in ${
          (result.elapsedMs / 1000).toFixed(1)
        } s`,
      );
      console.log(
        `cache: commit latency (submission to completion): ${formatSummary(result.commitLatency)}`,
      );
      console.log(
        `cache: replication latency (log to OK ack):        ${formatSummary(replication.summary)}`,
      );
      console.log(
        `cache: completed before their ack: ${result.orderViolations}; read-back mismatches ${result.readMismatches}; backing-store mismatches ${result.backingMismatches}`,
      );
      console.log(
        `cache: de-staged ${stats.destage.destagedLogs} logs in ${stats.destage.batches} batches; credit waits ${replication.admissionWaits}`,
      );
    }
    const ok = !closeError && result.writesFailed === 0 && result.orderViolations === 0 &&
      (!opts.verify ||
        (result.readMismatches === 0 && (!opts.drain || result.backingMismatches === 0)));
    return ok ? 0 : 1;
  });
}

/**
 * The completion log of a scenario: one line per write, written (to the page cache, which
 * outlives a SIGKILL) before the write completes, so it holds every write the guest saw
 * complete.
 */
function openCompletionLog(path: string): Disposable & {
  add(lba: number, data: Uint8Array, seq: number): void;
} {
  const file = Deno.openSync(path, { append: true, create: true });
  const encoder = new TextEncoder();
  const stamp = { seq: 0, lba: 0, block: 0 };
  return {
    add(lba, data, seq) {
      const op = readStamp(data, 0, stamp).seq;
      const line = encodeCompletion({ op, seq, lba, blocks: data.length / blockBytes });
      const bytes = encoder.encode(line);
      for (let at = 0; at < bytes.length;) at += file.writeSync(bytes.subarray(at));
    },
    [Symbol.dispose]: () => file.close(),
  };
}

if (import.meta.main) Deno.exit(await run(Deno.args));
