/**
 * perftest (`ib_write_lat`, `ib_send_lat`, `ib_write_bw`, ...) between the two ends of the
 * lab topology: the server in B's namespace on B's device, the client in A's targeting
 * B's address (both on the one device for loopback), each bounded by a timeout; the
 * client's `--out_json` report is decoded into typed numbers (`perftest_json.ts`). Also the
 * bounded-process helpers the other bench tools use.
 *
 * @example
 * ```ts ignore
 * import { readTopology } from "../lab/topology.ts";
 * import { runPerftest } from "./perftest.ts";
 * const r = await runPerftest(readTopology()!, { tool: "ib_send_lat", size: 64, iterations: 1000 });
 * if (r.kind === "latency") console.log(`${r.typicalUs} us typical`);
 * ```
 *
 * @module
 */
import { type Endpoint, inNamespace, type Topology } from "../lab/topology.ts";
import { parsePerftestJson, type PerftestResult, type PerftestTool } from "./perftest_json.ts";

export type {
  PerftestBandwidth,
  PerftestLatency,
  PerftestResult,
  PerftestTool,
} from "./perftest_json.ts";

/**
 * The anchors every bench run measures next to the project: the one-way WRITE latency at
 * both log sizes and the one-way 64-byte SEND (the protocol's floor is their sum), and the
 * WRITE bandwidth at 64 KiB.
 */
export const perftestAnchors: readonly { tool: PerftestTool; size: number; iterations: number }[] =
  [
    { tool: "ib_write_lat", size: 4096, iterations: 2000 },
    { tool: "ib_write_lat", size: 65536, iterations: 500 },
    { tool: "ib_send_lat", size: 64, iterations: 2000 },
    { tool: "ib_write_bw", size: 65536, iterations: 2000 },
  ];

/** Bound of one perftest run (server and client) unless the caller gives one. */
export const perftestTimeoutMsDefault = 60_000;
/** Bound of the wait for the server to listen on its TCP port. */
export const listenTimeoutMs = 10_000;
const listenPollMs = 50;
const killGraceMs = 2_000;

/** Options of {@linkcode runPerftest}. */
export interface PerftestOptions {
  tool: PerftestTool;
  /** Message size in bytes (`-s`), 1..16 MiB. */
  size: number;
  /** Iterations (`-n`), 5..1,000,000. */
  iterations: number;
  /** TCP port of perftest's exchange (`-p`); default 18800 + a per-process counter. */
  port?: number;
  /** GID index (`-x`); default 1, the IPv4-mapped RoCEv2 GID on rxe. */
  gidIndex?: number;
  /** Bound of the whole run in ms (default 60 s). */
  timeoutMs?: number;
}

/** A perftest (or other bench tool) run that failed; the message carries its output. */
export class BenchToolError extends Error {
  override name = "BenchToolError";
}

/**
 * perftest reported infinite or NaN times: its clock calibration failed (seen under TCG,
 * where it measured no CPU frequency). The run itself is fine; running it again helps.
 */
export class PerftestClockError extends BenchToolError {
  override name = "PerftestClockError";
}

/** Runs of a perftest whose clock calibration failed, at most (then the error stands). */
export const perftestAttemptsMax = 3;

/** The outcome of a {@linkcode spawnBounded} process. */
export interface BoundedOutput {
  code: number;
  timedOut: boolean;
  stdout: string;
  stderr: string;
}

/** A running bounded process: its outcome, whether it ended, and a way to stop it. */
export interface BoundedProcess {
  readonly output: Promise<BoundedOutput>;
  readonly exited: () => boolean;
  kill(): void;
}

/**
 * Starts `argv` with piped output; SIGTERM after `timeoutMs`, SIGKILL 2 s later.
 * Never throws for a missing program: it resolves with code 127 and says so.
 */
export function spawnBounded(argv: string[], timeoutMs: number): BoundedProcess {
  let child: Deno.ChildProcess;
  try {
    child = new Deno.Command(argv[0], {
      args: argv.slice(1),
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
  } catch (error) {
    const stderr = `cannot start ${argv[0]}: ${(error as Error).message}`;
    const output = Promise.resolve({ code: 127, timedOut: false, stdout: "", stderr });
    return { output, exited: () => true, kill() {} };
  }
  let done = false;
  let timedOut = false;
  const signal = (sig: Deno.Signal) => {
    try {
      if (!done) child.kill(sig);
    } catch { /* it ended meanwhile */ }
  };
  let killTimer: ReturnType<typeof setTimeout> | undefined;
  const kill = () => {
    signal("SIGTERM");
    killTimer ??= setTimeout(() => signal("SIGKILL"), killGraceMs);
  };
  const timer = setTimeout(() => {
    timedOut = true;
    kill();
  }, timeoutMs);
  const output = child.output().then((out) => {
    done = true;
    clearTimeout(timer);
    clearTimeout(killTimer);
    const text = new TextDecoder();
    return {
      code: out.code,
      timedOut,
      stdout: text.decode(out.stdout),
      stderr: text.decode(out.stderr),
    };
  });
  return { output, exited: () => done, kill };
}

/** Waits until something listens on TCP `port` in `end`'s namespace, or `server` ended. */
export async function waitForListener(
  end: Endpoint,
  port: number,
  server: BoundedProcess,
): Promise<boolean> {
  const deadline = Date.now() + listenTimeoutMs;
  while (Date.now() < deadline && !server.exited()) {
    const argv = inNamespace(end, ["ss", "-Htln", `sport = :${port}`]);
    const probe = await spawnBounded(argv, 5_000).output;
    if (probe.code === 0 && probe.stdout.trim() !== "") return true;
    await new Promise((resolve) => setTimeout(resolve, listenPollMs));
  }
  return false;
}

/** The absolute path of `program` on PATH, or `undefined`. */
export function findOnPath(program: string): string | undefined {
  for (const dir of (Deno.env.get("PATH") ?? "/usr/bin:/bin").split(":")) {
    try {
      const path = `${dir}/${program}`;
      if (Deno.statSync(path).isFile) return path;
    } catch { /* not in this folder */ }
  }
  return undefined;
}

let portCounter = 0;

/**
 * Runs one perftest between the topology's ends and decodes the client's `--out_json`
 * report (written to a temporary file, then removed).
 */
export async function runPerftest(
  topology: Topology,
  options: PerftestOptions,
): Promise<PerftestResult> {
  for (let attempt = 1;; attempt++) {
    try {
      return await runPerftestOnce(topology, options);
    } catch (error) {
      if (!(error instanceof PerftestClockError) || attempt >= perftestAttemptsMax) throw error;
    }
  }
}

/**
 * The error for a perftest report that did not decode: a {@linkcode PerftestClockError}
 * (worth another run) when it holds infinite or NaN times, else a BenchToolError.
 */
export function reportError(message: string, report: string): BenchToolError {
  if (/:\s*(-?inf|-?nan)\s*,/.test(report)) {
    return new PerftestClockError(
      `${message}\nperftest's clock calibration failed (infinite times); it runs ` +
        `${perftestAttemptsMax} times at most`,
    );
  }
  return new BenchToolError(message);
}

async function runPerftestOnce(
  topology: Topology,
  options: PerftestOptions,
): Promise<PerftestResult> {
  const { tool, size, iterations, gidIndex = 1 } = options;
  const port = options.port ?? 18800 + (portCounter++ % 100);
  const timeoutMs = options.timeoutMs ?? perftestTimeoutMsDefault;
  checkInt("size", size, 1, 16 * 1024 * 1024);
  checkInt("iterations", iterations, 5, 1_000_000);
  checkInt("port", port, 1024, 65535);
  checkInt("timeoutMs", timeoutMs, 1000, 3_600_000);
  if (!findOnPath(tool)) {
    throw new BenchToolError(
      `${tool} not found on PATH: install perftest (apt-get install perftest)`,
    );
  }
  const common = [
    "-F",
    "-x",
    `${gidIndex}`,
    "-s",
    `${size}`,
    "-n",
    `${iterations}`,
    "-p",
    `${port}`,
  ];
  const { a, b } = topology;
  const dir = await Deno.makeTempDir({ prefix: "rrl-perftest-" });
  const jsonFile = `${dir}/client.json`;
  try {
    const server = spawnBounded(inNamespace(b, [tool, "-d", b.device, ...common]), timeoutMs);
    let client: BoundedOutput | undefined;
    try {
      if (await waitForListener(b, port, server)) {
        const json = ["--out_json", `--out_json_file=${jsonFile}`];
        const argv = inNamespace(a, [tool, "-d", a.device, ...common, ...json, b.address]);
        client = await spawnBounded(argv, timeoutMs).output;
      }
    } finally {
      if (!client || client.code !== 0) server.kill();
    }
    const served = await server.output;
    const what =
      `${tool} -s ${size} -n ${iterations} (${a.device} -> ${b.device} ${b.address}:${port})`;
    if (!client) {
      throw new BenchToolError(
        `${what}: the server never listened (exit ${served.code}${
          served.timedOut ? ", timed out" : ""
        }); its output:\n${served.stdout}${served.stderr}`,
      );
    }
    if (client.code !== 0) {
      throw new BenchToolError(
        `${what} failed: client exit ${client.code}${client.timedOut ? " (timed out)" : ""}\n` +
          `-- client output:\n${client.stdout}${client.stderr}\n` +
          `-- server output:\n${served.stdout}${served.stderr}`,
      );
    }
    let text: string;
    try {
      text = await Deno.readTextFile(jsonFile);
    } catch (error) {
      throw new BenchToolError(
        `${what} wrote no --out_json report (${(error as Error).message}): perftest 4.5 or ` +
          `later is needed (apt-get install perftest)\n${client.stdout}`,
      );
    }
    try {
      return parsePerftestJson(tool, text);
    } catch (error) {
      throw reportError(`${what}: ${(error as Error).message}\n${text}`, text);
    }
  } finally {
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

/** One line: `ib_send_lat 64 B: 70.35 us typical (one way), ...` or `... 41.29 MB/s`. */
export function formatPerftest(r: PerftestResult): string {
  return r.kind === "latency"
    ? `${r.tool} ${r.bytes} B: ${r.typicalUs} us typical (one way), ${r.avgUs} us avg, ` +
      `p99 ${r.p99Us} us`
    : `${r.tool} ${r.bytes} B: ${r.avgMBps} MB/s (2^20 B) avg, ${r.peakMBps} peak`;
}

function checkInt(name: string, value: number, min: number, max: number): void {
  if (!Number.isSafeInteger(value) || value < min || value > max) {
    throw new RangeError(`perftest ${name} must be an integer ${min}..${max}, got ${value}`);
  }
}
