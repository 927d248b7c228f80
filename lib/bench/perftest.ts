/**
 * perftest (`ib_write_lat`, `ib_send_lat`, `ib_write_bw`, ...) between the two ends of the
 * lab topology: the server in B's namespace on B's device, the client in A's targeting
 * B's address (both on the one device for loopback), each bounded by a timeout; the
 * result table is parsed into typed numbers. Also the bounded-process helpers the other
 * bench tools use.
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

/** The perftest programs this module runs. */
export type PerftestTool =
  | "ib_write_lat"
  | "ib_send_lat"
  | "ib_read_lat"
  | "ib_write_bw"
  | "ib_send_bw"
  | "ib_read_bw";

/** The three anchors every bench run measures next to the project. */
export const perftestAnchors: readonly { tool: PerftestTool; size: number }[] = [
  { tool: "ib_write_lat", size: 4096 },
  { tool: "ib_send_lat", size: 64 },
  { tool: "ib_write_bw", size: 65536 },
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

/** A latency test's row (`*_lat`), in microseconds. */
export interface PerftestLatency {
  kind: "latency";
  tool: PerftestTool;
  bytes: number;
  iterations: number;
  minUs: number;
  maxUs: number;
  typicalUs: number;
  avgUs: number;
  stdevUs: number;
  p99Us: number;
  p999Us: number;
}

/** A bandwidth test's row (`*_bw`); perftest's MB/sec are 2^20 bytes per second. */
export interface PerftestBandwidth {
  kind: "bandwidth";
  tool: PerftestTool;
  bytes: number;
  iterations: number;
  peakMBps: number;
  avgMBps: number;
  msgRateMpps: number;
}

/** What one perftest run measured. */
export type PerftestResult = PerftestLatency | PerftestBandwidth;

/** A perftest (or other bench tool) run that failed; the message carries its output. */
export class BenchToolError extends Error {
  override name = "BenchToolError";
}

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

/** Runs one perftest between the topology's ends and parses its result row. */
export async function runPerftest(
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
  const server = spawnBounded(inNamespace(b, [tool, "-d", b.device, ...common]), timeoutMs);
  let client: BoundedOutput | undefined;
  try {
    if (await waitForListener(b, port, server)) {
      const argv = inNamespace(a, [tool, "-d", a.device, ...common, b.address]);
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
  try {
    return parsePerftestOutput(tool, client.stdout);
  } catch (error) {
    throw new BenchToolError(`${what}: ${(error as Error).message}\n${client.stdout}`);
  }
}

const columnNames: Record<string, string> = {
  "#bytes": "bytes",
  "#iterations": "iterations",
  "t_min[usec]": "minUs",
  "t_max[usec]": "maxUs",
  "t_typical[usec]": "typicalUs",
  "t_avg[usec]": "avgUs",
  "t_stdev[usec]": "stdevUs",
  "99% percentile[usec]": "p99Us",
  "99.9% percentile[usec]": "p999Us",
  "BW peak[MB/sec]": "peakMBps",
  "BW average[MB/sec]": "avgMBps",
  "MsgRate[Mpps]": "msgRateMpps",
};

/** Parses perftest's result table (the `#bytes` header and the row under it). */
export function parsePerftestOutput(tool: PerftestTool, text: string): PerftestResult {
  const lines = text.split("\n");
  const at = lines.findIndex((line) => line.trim().startsWith("#bytes"));
  if (at < 0 || at + 1 >= lines.length) throw new Error("no result table ('#bytes' header)");
  const header = lines[at].match(/#bytes|#iterations|[^\s\[][^\[]*?\[[^\]]*\]/g) ?? [];
  const values = lines[at + 1].trim().split(/\s+/).map(Number);
  if (header.length !== values.length || values.some((v) => !Number.isFinite(v))) {
    throw new Error(`cannot read the result row '${lines[at + 1].trim()}' under '${lines[at]}'`);
  }
  const row: Record<string, number> = {};
  header.forEach((name, i) => {
    const key = columnNames[name.trim()];
    if (key) row[key] = values[i];
  });
  const need = (keys: string[]) => {
    const missing = keys.filter((k) => row[k] === undefined);
    if (missing.length > 0) throw new Error(`the result table lacks ${missing.join(", ")}`);
  };
  if (tool.endsWith("_lat")) {
    need(["bytes", "iterations", "minUs", "maxUs", "typicalUs", "avgUs"]);
    const { bytes, iterations, minUs, maxUs, typicalUs, avgUs } = row;
    const { stdevUs = NaN, p99Us = NaN, p999Us = NaN } = row;
    const latency = { bytes, iterations, minUs, maxUs, typicalUs, avgUs, stdevUs, p99Us, p999Us };
    return { kind: "latency", tool, ...latency };
  }
  need(["bytes", "iterations", "peakMBps", "avgMBps"]);
  const { bytes, iterations, peakMBps, avgMBps, msgRateMpps = NaN } = row;
  return { kind: "bandwidth", tool, bytes, iterations, peakMBps, avgMBps, msgRateMpps };
}

/** One line: `ib_send_lat 64 B: 70.35 us typical, 101.24 us avg` or `... 41.29 MB/s`. */
export function formatPerftest(r: PerftestResult): string {
  return r.kind === "latency"
    ? `${r.tool} ${r.bytes} B: ${r.typicalUs} us typical, ${r.avgUs} us avg, p99 ${r.p99Us} us`
    : `${r.tool} ${r.bytes} B: ${r.avgMBps} MB/s (2^20 B) avg, ${r.peakMBps} peak`;
}

function checkInt(name: string, value: number, min: number, max: number): void {
  if (!Number.isSafeInteger(value) || value < min || value > max) {
    throw new RangeError(`perftest ${name} must be an integer ${min}..${max}, got ${value}`);
  }
}
