/**
 * Starting the replication commands as separate processes in the topology's namespaces:
 * a replica that reports its port through a ready file, and one-shot tools whose last
 * stdout line is JSON. Used by the demo and the lab tests.
 *
 * @module
 */
import { labDir, repoDir } from "./paths.ts";
import { type Endpoint, inNamespace } from "./topology.ts";

const readyWaitMs = 60_000;
const stopTimeoutMs = 10_000;

/**
 * V8 flags our hot-path processes run with: TurboFan takes a function after 300 calls
 * instead of 3000, and 50 calls after its last inline-cache change instead of 500. Under
 * TCG V8 otherwise keeps the hot path in Maglev (whose FFI calls take the slow path) for
 * thousands of logs. Measured on the lab VM (4 KiB, depth 1, events, 6 interleaved runs
 * each, medians): 282 vs 234 ops/s, p50 2646 vs 3533 us. V8 reads flags only at start-up
 * (`node:v8`'s `setFlagsFromString` does not change tier-up afterwards): scripts that import
 * the library pass them with `--v8-flags=` or `DENO_V8_FLAGS`.
 */
export const hotPathV8Flags: readonly string[] = [
  "--invocation-count-for-turbofan=300",
  "--minimum-invocations-after-ic-update=50",
];

/** `deno run` of a project file, cached only (the lab has no registry), with {@linkcode hotPathV8Flags}. */
export function denoArgv(file: string, args: string[]): string[] {
  return [
    Deno.execPath(),
    "run",
    "-A",
    "--cached-only",
    "--no-check",
    `--v8-flags=${hotPathV8Flags.join(",")}`,
    `${repoDir}/${file}`,
    ...args,
  ];
}

/** A replica process: its control port, and how to wait for or stop it. */
export interface ReplicaProcess extends AsyncDisposable {
  port: number;
  /** Waits for it to exit and returns its JSON report (it must run with --json). */
  result(): Promise<Record<string, unknown>>;
  /** SIGTERM (the replica closes cleanly and reports). */
  stop(): void;
}

/** Starts `cmd/replica.ts` in `end`'s namespace with `args` (+ --port 0, --ready-file). */
export async function startReplica(
  end: Endpoint,
  args: string[],
  env: Record<string, string>,
): Promise<ReplicaProcess> {
  await Deno.mkdir(labDir, { recursive: true });
  const readyFile = await Deno.makeTempFile({ dir: labDir, prefix: "replica-ready-" });
  const argv = inNamespace(
    end,
    denoArgv("cmd/replica.ts", [
      "--device",
      end.device,
      "--host",
      end.address,
      "--port",
      "0",
      "--ready-file",
      readyFile,
      ...args,
    ]),
  );
  const child = new Deno.Command(argv[0], {
    args: argv.slice(1),
    env,
    stdout: "piped",
    stdin: "null",
  }).spawn();
  const output = child.output();
  let exited = false;
  output.then(() => (exited = true), () => (exited = true));
  try {
    const deadline = performance.now() + readyWaitMs;
    let port = 0;
    while (!port && performance.now() < deadline) {
      const text = await Deno.readTextFile(readyFile).catch(() => "");
      if (/^\d+\n$/.test(text)) port = Number(text);
      else if (exited) {
        throw new Error("The replica exited before it was ready (see its messages above)");
      } else await new Promise((r) => setTimeout(r, 50));
    }
    if (!port) throw new Error(`The replica was not ready within ${readyWaitMs / 1000} s`);
    const stop = () => {
      try {
        child.kill("SIGTERM");
      } catch {
        // gone already
      }
    };
    return {
      port,
      stop,
      result: async () => lastJson((await output).stdout, "replica", (await output).code),
      async [Symbol.asyncDispose]() {
        stop();
        // Bounded: a replica that does not exit within 10 s of SIGTERM is killed.
        const timer = setTimeout(() => {
          try {
            child.kill("SIGKILL");
          } catch {
            // gone already
          }
        }, stopTimeoutMs);
        await output.catch(() => {});
        clearTimeout(timer);
      },
    };
  } catch (error) {
    child.kill("SIGKILL");
    await output.catch(() => {});
    throw error;
  } finally {
    await Deno.remove(readyFile).catch(() => {});
  }
}

/** Runs a project file in `end`'s namespace to its end; returns its exit code and JSON. */
export async function runTool(
  end: Endpoint,
  file: string,
  args: string[],
  options: { env: Record<string, string>; timeoutMs: number },
): Promise<{ code: number; json: Record<string, unknown> }> {
  const argv = inNamespace(end, denoArgv(file, args));
  const child = new Deno.Command(argv[0], {
    args: argv.slice(1),
    env: options.env,
    stdout: "piped",
    stdin: "null",
  })
    .spawn();
  const timer = setTimeout(() => child.kill("SIGKILL"), options.timeoutMs);
  const out = await child.output().finally(() => clearTimeout(timer));
  return { code: out.code, json: lastJson(out.stdout, file, out.code) };
}

/** The last stdout line, parsed as JSON; the error names who printed nothing. */
export function lastJson(stdout: Uint8Array, who: string, code: number): Record<string, unknown> {
  const line = new TextDecoder().decode(stdout).trim().split("\n").at(-1) ?? "";
  try {
    return JSON.parse(line);
  } catch {
    throw new Error(`${who} printed no JSON result (exit code ${code}); see its messages above`);
  }
}

/** A random hex secret for one run. */
export function randomSecret(): string {
  return [...crypto.getRandomValues(new Uint8Array(16))].map((b) => b.toString(16).padStart(2, "0"))
    .join("");
}
