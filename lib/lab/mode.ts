/**
 * Decides where verbs work runs: natively (the host kernel has `rdma_rxe`) or in the
 * QEMU lab VM.
 *
 * @module
 */
import { labDir, readEnvFile } from "./paths.ts";

/** Where lab commands run. */
export type LabMode = "native" | "vm";

/** True when this process already runs inside the lab VM. */
export function insideLabVm(): boolean {
  return Deno.env.get("RRL_IN_LAB") === "vm";
}

/** True when the running kernel has `rdma_rxe` loaded or can load it. */
export function nativeRxeAvailable(): boolean {
  try {
    Deno.statSync("/sys/module/rdma_rxe");
    return true;
  } catch {
    // not loaded: can it be?
  }
  try {
    const out = new Deno.Command("modprobe", { args: ["-n", "-q", "rdma_rxe"], stderr: "null" })
      .outputSync();
    return out.success;
  } catch {
    return false;
  }
}

/**
 * Picks the lab mode: `RRL_LAB_MODE` (or `forced`) when it says `vm` or `native`,
 * otherwise native where the kernel has `rdma_rxe` and the VM elsewhere.
 */
export function chooseLabMode(forced?: string): LabMode {
  const wanted = forced ?? Deno.env.get("RRL_LAB_MODE") ?? "auto";
  if (wanted === "vm" || wanted === "native") return wanted;
  if (wanted !== "auto") {
    throw new RangeError(`Unknown lab mode '${wanted}': use auto, vm or native`);
  }
  return nativeRxeAvailable() ? "native" : "vm";
}

/** The lab kernel `scripts/setup.sh` fetched: version, suite, netns support. */
export interface LabKernel {
  version: string;
  suite: string;
  netnsRxe: boolean;
}

/** Reads `.lab/kernel.env`, or `undefined` when setup has not fetched a kernel. */
export function labKernel(): LabKernel | undefined {
  const env = readEnvFile(`${labDir}/kernel.env`);
  if (!env?.KERNEL_VERSION) return undefined;
  return {
    version: env.KERNEL_VERSION,
    suite: env.KERNEL_SUITE ?? "unknown",
    netnsRxe: env.KERNEL_NETNS_RXE === "yes",
  };
}
