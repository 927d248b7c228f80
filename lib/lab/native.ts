/**
 * Runs a lab command on this host, whose kernel has `rdma_rxe`: the same Soft-RoCE
 * topology as in the VM, brought up (and afterwards down) by `scripts/softroce-pair.sh`.
 *
 * @module
 */
import { labEnvironment, type LabRunOptions } from "./vm.ts";
import { pairStateFile, repoDir } from "./paths.ts";

async function pairScript(args: string[], write: (text: string) => void): Promise<number> {
  const out = await new Deno.Command("bash", {
    args: [`${repoDir}/scripts/softroce-pair.sh`, ...args],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
  if (text.trim()) write(text.replace(/^/gm, "lab: "));
  return out.code;
}

/**
 * Brings the topology up unless one is up already, runs `argv` with the lab environment,
 * takes down what it brought up, and resolves with the command's exit code.
 */
export async function runNative(options: LabRunOptions): Promise<number> {
  const write = options.write ??
    ((text: string) => Deno.stdout.writeSync(new TextEncoder().encode(text)));
  if (Deno.uid() !== 0) {
    throw new Error("Native lab runs need root (network namespaces, rxe links): run as root");
  }
  let madePair = false;
  if (options.topology !== "none") {
    let alreadyUp = false;
    try {
      Deno.statSync(pairStateFile);
      alreadyUp = true;
    } catch {
      // none up
    }
    if (alreadyUp) {
      write(`lab: using the Soft-RoCE topology already up (${pairStateFile})\n`);
    } else {
      const args = options.topology === "loopback" ? ["up", "--loopback"] : ["up"];
      let code = await pairScript(args, write);
      madePair = true;
      if (code === 3 && options.topology === "pair") {
        write("lab: falling back to the single-device loopback topology\n");
        await pairScript(["down"], write);
        code = await pairScript(["up", "--loopback"], write);
      }
      if (code !== 0) {
        await pairScript(["down"], write);
        write(`lab: the Soft-RoCE topology did not come up (exit ${code})\n`);
        return 124;
      }
    }
  }
  const env = await labEnvironment({ ...options.env, RRL_IN_LAB: "native" });
  const argv = options.argv.length === 1 ? ["bash", "-c", options.argv[0]] : options.argv;
  const child = new Deno.Command(argv[0], {
    args: argv.slice(1),
    cwd: repoDir,
    env,
    stdin: "null",
  }).spawn();
  const timer = setTimeout(() => {
    write(`lab: timed out after ${options.timeoutMs / 1000} s; killing the command\n`);
    child.kill("SIGKILL");
  }, options.timeoutMs);
  try {
    const status = await child.status;
    return status.signal === "SIGKILL" ? 124 : status.code;
  } finally {
    clearTimeout(timer);
    if (madePair) await pairScript(["down"], write);
  }
}
