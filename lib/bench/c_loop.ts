/**
 * The "same loop in C" reference of the FFI benchmark: `bench/c/hot_loop.c` runs the loop
 * of `hot_path.ts` (inline SEND on QP A, RECV on QP B, poll both CQs, check the word)
 * through plain libibverbs. It is compiled at bench time into `.lab/bench/hot_loop`
 * (ignored by git) and prints one JSON line, parsed here. Also the compile helper the
 * other C tools share.
 *
 * @example
 * ```ts ignore
 * import { readTopology } from "../lab/topology.ts";
 * import { runCLoop } from "./c_loop.ts";
 * const c = await runCLoop(readTopology()!, { rounds: 20_000 });
 * console.log(`C: ${c.nsPerRound} ns/round, ${c.nsPerEmptyPoll} ns/empty poll`);
 * ```
 *
 * @module
 */
import { labDir, repoDir } from "../lab/paths.ts";
import type { Topology } from "../lab/topology.ts";
import type { HotPathResult } from "./hot_path.ts";
import { BenchToolError, findOnPath, spawnBounded } from "./perftest.ts";

/** Where bench-time binaries go (inside `.lab/`, ignored by git). */
export const benchBinDir = `${labDir}/bench`;
/** The C source of the loop. */
export const hotLoopSource = `${repoDir}/bench/c/hot_loop.c`;
/** Bound of one gcc run. */
export const compileTimeoutMs = 120_000;
/** Bound of one C loop run unless the caller gives one. */
export const cLoopTimeoutMsDefault = 120_000;
const roundsMax = 10_000_000;

/** Options of {@linkcode buildC}. */
export interface BuildCOptions {
  /** Absolute path of the `.c` file. */
  source: string;
  /** Absolute path of the program to write. */
  output: string;
  /** Extra gcc arguments after the source, e.g. `["-libverbs"]`. */
  libs?: string[];
}

/**
 * Compiles `source` with `gcc -O2` into `output` when the output is missing or older than
 * the source; resolves with `output`. Writes a temporary file and renames it, so
 * concurrent builds never run a half-written program.
 */
export async function buildC(o: BuildCOptions): Promise<string> {
  const mtime = (path: string) => {
    try {
      return Deno.statSync(path).mtime?.getTime() ?? 0;
    } catch (error) {
      if (error instanceof Deno.errors.NotFound) return undefined;
      throw error;
    }
  };
  const sourceTime = mtime(o.source);
  if (sourceTime === undefined) throw new BenchToolError(`Cannot compile ${o.source}: not found`);
  const outputTime = mtime(o.output);
  if (outputTime !== undefined && outputTime >= sourceTime) return o.output;
  if (!findOnPath("gcc")) {
    throw new BenchToolError(
      `Cannot compile ${o.source}: gcc not found (apt-get install gcc libibverbs-dev)`,
    );
  }
  Deno.mkdirSync(o.output.slice(0, o.output.lastIndexOf("/")), { recursive: true });
  const temporary = `${o.output}.tmp${Deno.pid}`;
  const argv = ["gcc", "-O2", "-Wall", "-o", temporary, o.source, ...(o.libs ?? [])];
  const out = await spawnBounded(argv, compileTimeoutMs).output;
  if (out.code !== 0) {
    await Deno.remove(temporary).catch(() => {});
    const hint = /verbs\.h/.test(out.stderr) ? " (install libibverbs-dev)" : "";
    throw new BenchToolError(
      `Cannot compile ${o.source}: gcc exit ${out.code}${out.timedOut ? " (timed out)" : ""}` +
        `${hint}\n${out.stdout}${out.stderr}`,
    );
  }
  await Deno.rename(temporary, o.output);
  return o.output;
}

/** Compiles `bench/c/hot_loop.c` into `.lab/bench/hot_loop` when needed. */
export function buildCLoop(): Promise<string> {
  return buildC({ source: hotLoopSource, output: `${benchBinDir}/hot_loop`, libs: ["-libverbs"] });
}

/** Options of {@linkcode runCLoop}. */
export interface CLoopOptions {
  /** Measured rounds (1..10^7). */
  rounds: number;
  /** Unmeasured rounds first (default 10% of rounds, at most 5000). */
  warmup?: number;
  /** Bound of the run in ms (default 120 s). */
  timeoutMs?: number;
}

/**
 * Builds and runs the C loop on the topology's two devices (one process in the initial
 * namespace, like `hot_path.ts`; RDMA devices are visible from every namespace).
 */
export async function runCLoop(topology: Topology, o: CLoopOptions): Promise<HotPathResult> {
  const warmup = o.warmup ?? Math.min(5000, Math.floor(o.rounds / 10));
  for (const [name, value] of [["rounds", o.rounds], ["warmup", warmup]] as const) {
    if (!Number.isSafeInteger(value) || value < (name === "rounds" ? 1 : 0) || value > roundsMax) {
      throw new RangeError(`C loop ${name} must be an integer up to ${roundsMax}, got ${value}`);
    }
  }
  const program = await buildCLoop();
  const { a, b } = topology;
  const argv = [program, a.device, a.address, b.device, b.address, `${o.rounds}`, `${warmup}`];
  const out = await spawnBounded(argv, o.timeoutMs ?? cLoopTimeoutMsDefault).output;
  if (out.code !== 0) {
    throw new BenchToolError(
      `The C loop failed: exit ${out.code}${out.timedOut ? " (timed out)" : ""}\n` +
        `${out.stdout}${out.stderr}`,
    );
  }
  return parseCLoopOutput(out.stdout);
}

/** Parses the C loop's JSON line into a checked {@linkcode HotPathResult}. */
export function parseCLoopOutput(stdout: string): HotPathResult {
  const line = stdout.trim().split("\n").at(-1) ?? "";
  let value: Record<string, unknown>;
  try {
    value = JSON.parse(line);
  } catch {
    throw new BenchToolError(`The C loop printed no JSON line: '${line}'`);
  }
  const { way, rounds, nsPerRound, nsPerEmptyPoll } = value;
  const positive = (v: unknown) => typeof v === "number" && Number.isFinite(v) && v > 0;
  if (way !== "c" || !positive(rounds) || !positive(nsPerRound) || !positive(nsPerEmptyPoll)) {
    throw new BenchToolError(`The C loop printed an unexpected result: '${line}'`);
  }
  return value as unknown as HotPathResult;
}
