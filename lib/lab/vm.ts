/**
 * The lab VM: QEMU (TCG) boots the Debian kernel `scripts/setup.sh` fetched, over the
 * host's root shared read-only through virtio-9p with a tmpfs overlay, the repository
 * shared read-write at its own path. `scripts/lab-guest.sh` brings the Soft-RoCE pair up,
 * runs the command and powers off; its output streams here over the serial console.
 *
 * @module
 */
import { labKernel } from "./mode.ts";
import { labDir, repoDir } from "./paths.ts";

/** How to run one command in the lab. */
export interface LabRunOptions {
  /** The command; a single element runs through `bash -c`. */
  argv: string[];
  /** Wall-clock bound for the whole run, boot included. */
  timeoutMs: number;
  /** Soft-RoCE topology to bring up first. */
  topology: "pair" | "loopback" | "none";
  /** Extra environment for the command. */
  env?: Record<string, string>;
  /** Guest memory (default 2048 MiB, `RRL_LAB_MEMORY_MB`). */
  memoryMb?: number;
  /** Guest CPUs (default 2, `RRL_LAB_CPUS`). */
  cpus?: number;
  /** Where output goes (default: this process's stdout). */
  write?: (text: string) => void;
}

const exitMarker = /@@RRL-LAB-EXIT (\d+)@@/;
const startMarker = "@@RRL-LAB-START@@";
const kernelNoise = /^\[\s*\d+\.\d+\] reboot: Power down$/;
const memoryMbMax = 16384;
const cpusMax = 8;

/** Quotes a string for bash. */
export function shellQuote(value: string): string {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(value) ? value : `'${value.replaceAll("'", `'\\''`)}'`;
}

/** The environment a lab command gets: Deno's cache and binary, HOME, and every RRL_*. */
export async function labEnvironment(
  extra: Record<string, string> = {},
): Promise<Record<string, string>> {
  const denoBinDir = Deno.execPath().replace(/\/[^/]+$/, "");
  const env: Record<string, string> = {
    DENO_DIR: Deno.env.get("DENO_DIR") ?? await denoDir(),
    HOME: Deno.env.get("HOME") ?? "/root",
    PATH: `${denoBinDir}:${Deno.env.get("PATH") ?? "/usr/bin:/bin"}`,
    RRL_DENO: Deno.execPath(),
  };
  if (!Deno.stdout.isTerminal()) env.NO_COLOR = "1";
  for (const [key, value] of Object.entries(Deno.env.toObject())) {
    if (key.startsWith("RRL_") && key !== "RRL_LAB_MODE") env[key] = value;
  }
  return { ...env, ...extra };
}

async function denoDir(): Promise<string> {
  const out = await new Deno.Command(Deno.execPath(), { args: ["info", "--json"], stderr: "null" })
    .output();
  const info = JSON.parse(new TextDecoder().decode(out.stdout)) as { denoDir?: string };
  if (!info.denoDir) throw new Error("Cannot find Deno's cache folder (deno info --json)");
  return info.denoDir;
}

function boundedInt(name: string, value: number, max: number): number {
  if (!Number.isInteger(value) || value < 1 || value > max) {
    throw new RangeError(`${name} must be an integer from 1 to ${max}, got ${value}`);
  }
  return value;
}

/**
 * Boots the lab VM, runs `argv` in the repository directory and resolves with its exit
 * code (124 on timeout, 125 when the VM failed before the command ran). QEMU never
 * outlives this call: it is killed on timeout, on SIGINT/SIGTERM/SIGHUP, and by the
 * kernel (parent-death signal) if this process dies.
 */
export async function runInVm(options: LabRunOptions): Promise<number> {
  const write = options.write ?? ((text: string) => Deno.stdout.writeSync(encoder.encode(text)));
  const deadline = performance.now() + options.timeoutMs;
  for (let attempt = 1;; attempt++) {
    const timeoutMs = Math.max(1000, deadline - performance.now());
    const { code, started } = await bootOnce({ ...options, timeoutMs }, write);
    // A boot that died before the command started (a rare TCG kernel oops while the kernel
    // patches its own code) is retried; the command itself never runs twice.
    if (started || code === 124 || code === 130 || attempt >= bootAttemptsMax) return code;
    write(
      `lab: the VM died while booting (attempt ${attempt} of ${bootAttemptsMax}); booting again\n`,
    );
  }
}

const bootAttemptsMax = 3;

async function bootOnce(
  options: LabRunOptions,
  write: (text: string) => void,
): Promise<{ code: number; started: boolean }> {
  const kernel = labKernel();
  const kernelDir = kernel && `${labDir}/kernel/${kernel.version}`;
  const initrd = kernel && `${labDir}/initramfs-${kernel.version}.cpio.gz`;
  if (!kernel || !exists(`${kernelDir}/vmlinuz`) || !exists(initrd!)) {
    throw new Error("No lab kernel or initramfs in .lab/: run 'deno task setup' first");
  }
  if (!/^[A-Za-z0-9._/+-]+$/.test(repoDir)) {
    throw new Error(
      `The repository path '${repoDir}' has characters the lab VM cannot pass on the kernel ` +
        "command line: clone it to a path of letters, digits and . _ / + - only",
    );
  }
  const memoryMb = boundedInt(
    "RRL_LAB_MEMORY_MB",
    options.memoryMb ?? Number(Deno.env.get("RRL_LAB_MEMORY_MB") ?? 2048),
    memoryMbMax,
  );
  const cpus = boundedInt(
    "RRL_LAB_CPUS",
    options.cpus ?? Number(Deno.env.get("RRL_LAB_CPUS") ?? 2),
    cpusMax,
  );
  const runDir = await prepareRunDir(options);
  const qemu = new Deno.Command("setpriv", {
    args: [
      "--pdeathsig",
      "KILL",
      "--",
      "qemu-system-x86_64",
      ...qemuArgs({
        kernel: `${kernelDir}/vmlinuz`,
        initrd: initrd!,
        runDir,
        memoryMb,
        cpus,
      }),
    ],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();

  let exitCode: number | undefined;
  let started = false;
  let stopReason: string | undefined;
  const kill = (reason: string) => {
    stopReason ??= reason;
    try {
      qemu.kill("SIGKILL");
    } catch {
      // already gone
    }
  };
  const timer = setTimeout(() => kill("timeout"), options.timeoutMs);
  const signals: Deno.Signal[] = ["SIGINT", "SIGTERM", "SIGHUP"];
  const onSignal = () => kill("signal");
  for (const signal of signals) Deno.addSignalListener(signal, onSignal);
  const bootedAt = performance.now();
  try {
    const [, , status] = await Promise.all([
      pump(qemu.stdout, (line) => {
        const match = exitMarker.exec(line);
        if (match) exitCode = Number(match[1]);
        else if (line.startsWith(startMarker)) started = true;
        else if (!kernelNoise.test(line.trimEnd())) write(line);
      }),
      pump(qemu.stderr, (line) => write(`qemu: ${line}`)),
      qemu.status,
    ]);
    const seconds = ((performance.now() - bootedAt) / 1000).toFixed(1);
    if (stopReason === "timeout") {
      write(
        `lab: timed out after ${Math.round(options.timeoutMs / 1000)} s; the VM was killed ` +
          "(raise the bound with --timeout or RRL_LAB_TIMEOUT_S)\n",
      );
      return { code: 124, started };
    }
    if (stopReason === "signal") {
      write("lab: interrupted; the VM was killed\n");
      return { code: 130, started };
    }
    exitCode ??= readExitFile(runDir);
    if (exitCode === undefined) {
      write(
        `lab: the VM stopped after ${seconds} s without reporting an exit code ` +
          `(QEMU exit ${status.code}; kernel panic or QEMU failure, see above)\n`,
      );
      return { code: 125, started };
    }
    return { code: exitCode, started };
  } finally {
    clearTimeout(timer);
    for (const signal of signals) Deno.removeSignalListener(signal, onSignal);
    kill("done");
    await Deno.remove(runDir, { recursive: true }).catch(() => {});
  }
}

const encoder = new TextEncoder();

function exists(path: string): boolean {
  try {
    Deno.statSync(path);
    return true;
  } catch {
    return false;
  }
}

function readExitFile(runDir: string): number | undefined {
  try {
    const code = Number(Deno.readTextFileSync(`${runDir}/exit`).trim());
    return Number.isInteger(code) ? code : undefined;
  } catch {
    return undefined;
  }
}

const staleRunDirMs = 24 * 3600 * 1000;

async function prepareRunDir(options: LabRunOptions): Promise<string> {
  await Deno.mkdir(`${labDir}/vm`, { recursive: true });
  // A runner killed with SIGKILL cannot remove its folder; sweep day-old ones.
  for await (const entry of Deno.readDir(`${labDir}/vm`)) {
    const path = `${labDir}/vm/${entry.name}`;
    const mtime = (await Deno.stat(path)).mtime?.getTime() ?? Date.now();
    if (Date.now() - mtime > staleRunDirMs) {
      await Deno.remove(path, { recursive: true }).catch(() => {});
    }
  }
  const runDir = await Deno.makeTempDir({ dir: `${labDir}/vm`, prefix: "run-" });
  const env = await labEnvironment({
    ...options.env,
    RRL_IN_LAB: "vm",
    RRL_LAB_PAIR: options.topology,
  });
  const envText = Object.entries(env).map(([k, v]) => `export ${k}=${shellQuote(v)}\n`).join("");
  const command = options.argv.length === 1
    ? `exec bash -c ${shellQuote(options.argv[0])}\n`
    : `exec ${options.argv.map(shellQuote).join(" ")}\n`;
  await Deno.writeTextFile(`${runDir}/env`, envText);
  await Deno.writeTextFile(`${runDir}/cmd.sh`, command);
  return runDir;
}

function qemuArgs(
  o: { kernel: string; initrd: string; runDir: string; memoryMb: number; cpus: number },
) {
  const fsPath = (path: string) => path.replaceAll(",", ",,");
  return [
    ...[
      "-accel",
      Deno.env.get("RRL_QEMU_ACCEL") ?? "tcg,thread=multi",
      "-cpu",
      "max",
      "-smp",
      String(o.cpus),
      "-m",
      String(o.memoryMb),
    ],
    ...["-nodefaults", "-no-user-config", "-no-reboot", "-display", "none", "-monitor", "none"],
    ...["-chardev", "file,id=s0,path=/dev/stdout", "-serial", "chardev:s0"],
    ...["-kernel", o.kernel, "-initrd", o.initrd],
    "-append",
    `console=ttyS0 quiet loglevel=3 panic=-1 mitigations=off maxcpus=1 ${kernelArgs()} rrl_repo=${repoDir} rrl_run=${o.runDir}`,
    ...["-fsdev", "local,id=fs0,path=/,security_model=none,readonly=on,multidevs=remap"],
    ...["-device", "virtio-9p-pci,fsdev=fs0,mount_tag=hostroot"],
    ...["-fsdev", `local,id=fs1,path=${fsPath(repoDir)},security_model=none,multidevs=remap`],
    ...["-device", "virtio-9p-pci,fsdev=fs1,mount_tag=rrlrepo"],
  ];
}

/** Extra kernel parameters (`RRL_KERNEL_ARGS`), validated: no spaces inside one. */
function kernelArgs(): string {
  const extra = Deno.env.get("RRL_KERNEL_ARGS") ?? "";
  if (!/^[A-Za-z0-9_.,=:/ -]*$/.test(extra)) {
    throw new RangeError(`RRL_KERNEL_ARGS has unsupported characters: '${extra}'`);
  }
  return extra.trim();
}

/** Reads a stream to its end, handing over whole lines (a trailing partial line too). */
async function pump(stream: ReadableStream<Uint8Array>, onLine: (line: string) => void) {
  const decoder = new TextDecoder();
  let pending = "";
  for await (const chunk of stream) {
    pending += decoder.decode(chunk, { stream: true }).replaceAll("\r", "");
    let newline: number;
    while ((newline = pending.indexOf("\n")) >= 0) {
      onLine(pending.slice(0, newline + 1));
      pending = pending.slice(newline + 1);
    }
  }
  if (pending) onLine(pending + "\n");
}
