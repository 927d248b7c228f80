/**
 * The replication demo: the replica (`cmd/replica.ts`) in one namespace of the Soft-RoCE
 * pair and the primary (`cmd/primary.ts`) in the other, as separate processes; then the
 * proof that the replica holds exactly what was acked.
 *
 * @module
 */
import { randomSecret } from "./processes.ts";
import { readTopology, type Topology } from "./topology.ts";
import { runPrimary, startReplica } from "../tools/lab.ts";
import type { PrimaryReport } from "../tools/primary.ts";
import type { ReplicaReport } from "../tools/replica.ts";

/** Options of {@linkcode runDemo}. */
export interface DemoOptions {
  count: number;
  sizes: string;
  depth: number;
  seed: number;
  ring: string;
  /** Bound for the whole run. */
  timeoutMs: number;
}

/** One line of the proof. */
export interface ProofLine {
  ok: boolean;
  text: string;
}

/** What the demo measured and proved. */
export interface DemoResult {
  topology: Topology;
  primary: PrimaryReport;
  replica: ReplicaReport;
  proof: ProofLine[];
  ok: boolean;
}

/** Runs both sides and checks the result; throws when a side cannot run at all. */
export async function runDemo(o: DemoOptions): Promise<DemoResult> {
  const topology = readTopology();
  if (!topology) throw new Error("No Soft-RoCE topology is up: run the demo with 'deno task demo'");
  const env = { RRL_SECRET: randomSecret() };
  const { a, b } = topology;
  await using replica = await startReplica(b, {
    ring: o.ring,
    slots: Math.max(64, o.depth + 2),
    once: true,
    verifySeed: o.seed,
  }, { env });
  const primary = await runPrimary({ from: a, to: b, port: replica.port }, {
    count: o.count,
    size: o.sizes,
    depth: o.depth,
    seed: o.seed,
    ring: o.ring,
    lba: "hot:10",
  }, { env, timeoutMs: o.timeoutMs });
  const replicaStats = await replica.report();
  const proof = prove(o, primary.report, replicaStats);
  return {
    topology,
    primary: primary.report,
    replica: replicaStats,
    proof,
    ok: proof.every((p) => p.ok),
  };
}

function prove(o: DemoOptions, primary: PrimaryReport, replica: ReplicaReport): ProofLine[] {
  const r = primary.result;
  const d = primary.digest;
  const ringBytes = primary.stats.writePos;
  const wraps = Math.floor(primary.stats.writePos / parseRing(o.ring));
  return [
    {
      ok: r.acked === o.count && !r.failure,
      text: `${r.acked} of ${o.count} logs acked${
        r.failure ? ` (session failed: ${r.failure})` : ""
      }`,
    },
    { ok: r.refused === 0, text: `${r.refused} refused by the replica` },
    { ok: r.inOrder, text: `acks arrived in sequence: ${r.inOrder ? "yes" : "NO"}` },
    {
      ok: wraps >= 2,
      text: `the data ring wrapped ${wraps} times (${ringBytes} B through a ${o.ring} ring)`,
    },
    {
      ok: replica.accepted === d.count && replica.digest.lastSeq === d.lastSeq,
      text:
        `the replica accepted ${replica.accepted} logs up to seq ${replica.digest.lastSeq}; the primary saw ${d.count} acked up to seq ${d.lastSeq}`,
    },
    {
      ok: replica.digest.digest === d.digest && replica.digest.bytes === d.bytes,
      text:
        `digest of every acked log (seq, LBA, length, CRC32C of its bytes, each side over its own bytes): primary ${d.digest}, replica ${replica.digest.digest}`,
    },
    {
      ok: replica.verify?.checked === replica.accepted && replica.verify?.mismatches === 0,
      text:
        `the replica compared every byte of all ${replica.verify?.checked} logs with the workload: ${replica.verify?.mismatches} mismatches`,
    },
  ];
}

function parseRing(spec: string): number {
  const match = /^(\d+)([kmg]?)$/i.exec(spec.trim());
  if (!match) return Infinity;
  return Number(match[1]) *
    ({ "": 1, k: 1024, m: 1 << 20, g: 1 << 30 }[match[2].toLowerCase()] ?? 1);
}
