/**
 * Runs a command where Soft-RoCE works: natively or in the lab VM.
 *
 * @module
 */
import { chooseLabMode, insideLabVm, type LabMode } from "./mode.ts";
import { runNative } from "./native.ts";
import { type LabRunOptions, runInVm } from "./vm.ts";

export type { LabRunOptions } from "./vm.ts";

/** Default bound for one lab run, boot included. */
export const labTimeoutMsDefault = 30 * 60 * 1000;

/**
 * Runs `options.argv` in the lab (mode from `mode`, `RRL_LAB_MODE`, or detection) and
 * resolves with its exit code and the mode used.
 */
export async function runInLab(
  options: LabRunOptions,
  mode?: string,
): Promise<{ code: number; mode: LabMode }> {
  if (insideLabVm()) throw new Error("Already inside the lab VM: run the command directly");
  const chosen = chooseLabMode(mode);
  if (chosen === "vm") await warmCaches();
  const code = chosen === "vm" ? await runInVm(options) : await runNative(options);
  return { code, mode: chosen };
}

/**
 * Transpiles and code-caches every project module on the host first: the VM sees the
 * host's Deno cache read-only, and transpiling under emulation costs seconds per process.
 */
async function warmCaches(): Promise<void> {
  const script = new URL("../../scripts/warm_cache.ts", import.meta.url).pathname;
  await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--no-check", script],
    stdin: "null",
    stdout: "null",
    stderr: "null",
  }).output();
}
