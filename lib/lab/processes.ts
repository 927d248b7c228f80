/**
 * How our processes are started: `deno run` of a project file with the hot-path V8 flags,
 * and a secret per run. `lib/tools/` starts our commands with these (`spawnTool`).
 *
 * @module
 */
import { repoDir } from "./paths.ts";

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

/** A random hex secret for one run. */
export function randomSecret(): string {
  return [...crypto.getRandomValues(new Uint8Array(16))].map((b) => b.toString(16).padStart(2, "0"))
    .join("");
}
