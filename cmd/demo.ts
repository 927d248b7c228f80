/**
 * `deno task demo`: the main job. Brings up the Soft-RoCE pair (natively or in the lab VM),
 * runs the replica and the primary as separate processes in the two namespaces, replicates
 * 10,000 logs of mixed sizes through ring wrap-around, proves the replica holds exactly what
 * was acked, and prints the summary.
 *
 * @module
 */
import { Command, Option } from "@commander-js/extra-typings";
import { formatSummary } from "../lib/bench/summary.ts";
import { runDemo } from "../lib/lab/demo.ts";
import { runCacheDemo } from "../lib/lab/cache_demo.ts";
import { insideLabVm } from "../lib/lab/mode.ts";
import { labTimeoutMsDefault, runInLab } from "../lib/lab/runner.ts";
import { checkDenoVersion } from "../lib/version.ts";
import { parseIntOption, runCommand } from "./options.ts";

/** Runs the demo; resolves with 0 when every proof holds. */
export function run(args: string[]): Promise<number> {
  const program = new Command("demo")
    .description(
      "Replicate logs from a primary in namespace rrl-a (rxea) to a replica in rrl-b (rxeb) " +
        "over Soft-RoCE, then prove the replica holds exactly what was acked. Boots the lab VM " +
        "when this kernel has no rdma_rxe.",
    )
    .option("-n, --count <n>", "logs to replicate", parseIntOption(1, 10_000_000), 10_000)
    .option("-s, --size <spec>", "log sizes (uniform mix)", "4k,16k,64k,256k")
    .option("-q, --depth <n>", "logs in flight", parseIntOption(1, 1000), 16)
    .option("--seed <n>", "workload seed", parseIntOption(0, 2 ** 32 - 1), 1)
    .option("--ring <size>", "data ring size on both sides", "16m")
    .option("--capacity <size>", "the NVMe namespace size", "64m")
    .option("--raw", "replicate raw logs (no NVMe controller, no write cache): the protocol alone")
    .option("--timeout <s>", "bound for the whole demo", parseIntOption(10, 86_400), 1200)
    .addOption(
      new Option("--mode <mode>", "where to run").choices(["auto", "vm", "native"]).default("auto"),
    )
    .option("--json", "print the result as JSON on stdout");
  return runCommand(program, args, async (opts) => {
    checkDenoVersion();
    const inLab = insideLabVm() || Deno.env.get("RRL_IN_LAB") === "native";
    if (!inLab) {
      const self = new URL(import.meta.url).pathname;
      const { code } = await runInLab({
        argv: [Deno.execPath(), "run", "-A", "--cached-only", "--no-check", self, ...args],
        timeoutMs: Math.min(labTimeoutMsDefault, opts.timeout * 1000 + 120_000),
        topology: "pair",
      }, opts.mode === "auto" ? undefined : opts.mode);
      return code;
    }
    if (!opts.raw) return await cacheDemo(opts);
    const result = await runDemo({
      count: opts.count,
      sizes: opts.size,
      depth: opts.depth,
      seed: opts.seed,
      ring: opts.ring,
      timeoutMs: opts.timeout * 1000,
    });
    if (opts.json) {
      console.log(JSON.stringify(result));
      return result.ok ? 0 : 1;
    }
    const { topology: t } = result;
    console.log(
      t.kind === "pair"
        ? `demo: primary in ${t.a.netns} on ${t.a.device} (${t.a.address}) → replica in ${t.b.netns} on ${t.b.device} (${t.b.address}); RoCEv2 frames over the veth`
        : `demo: this kernel's rxe cannot carry traffic between namespaces: loopback topology, both on ${t.a.device}`,
    );
    const r = result.primary.result;
    console.log(`demo: ${formatSummary(r.summary)}`);
    console.log(
      `demo: ${r.acked} logs, ${
        (result.primary.digest.bytes / 1e6).toFixed(1)
      } MB, sizes ${opts.size}, depth ${opts.depth}, seed ${opts.seed}`,
    );
    for (const line of result.proof) console.log(`${line.ok ? "PROVED" : "FAILED"}: ${line.text}`);
    console.log(
      result.ok ? "demo: the replica holds exactly what was acked" : "demo: FAILED (see above)",
    );
    return result.ok ? 0 : 1;
  });
}

async function cacheDemo(
  opts: {
    count: number;
    size: string;
    depth: number;
    seed: number;
    ring: string;
    capacity: string;
    timeout: number;
    json?: true;
  },
): Promise<number> {
  const result = await runCacheDemo({
    count: opts.count,
    sizes: opts.size,
    depth: opts.depth,
    seed: opts.seed,
    ring: opts.ring,
    capacity: opts.capacity,
    timeoutMs: opts.timeout * 1000,
  });
  if (opts.json) {
    console.log(JSON.stringify(result));
    return result.ok ? 0 : 1;
  }
  const t = result.topology;
  console.log(
    t.kind === "pair"
      ? `demo: host cache service + NVMe controller in ${t.a.netns} on ${t.a.device} → replica with its write cache in ${t.b.netns} on ${t.b.device}; RoCEv2 over the veth`
      : `demo: this kernel's rxe cannot carry traffic between namespaces: loopback topology, both on ${t.a.device}`,
  );
  const r = result.host.result;
  console.log(
    `demo: commit latency (NVMe submission → completion): ${formatSummary(r.commitLatency)}`,
  );
  console.log(
    `demo: replication latency (log → OK ack):           ${
      formatSummary(result.host.replication.summary)
    }`,
  );
  for (const line of result.proof) console.log(`${line.ok ? "PROVED" : "FAILED"}: ${line.text}`);
  console.log(
    result.ok
      ? "demo: every acknowledged write is safe: replicated before completion, nothing lost"
      : "demo: FAILED (see above)",
  );
  return result.ok ? 0 : 1;
}

if (import.meta.main) Deno.exit(await run(Deno.args));
