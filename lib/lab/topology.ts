/**
 * The Soft-RoCE topology a test or experiment runs on, as `scripts/softroce-pair.sh up`
 * recorded it.
 *
 * @module
 */
import { pairStateFile, readEnvFile } from "./paths.ts";

/** One end of the topology: the namespace to run in (none for loopback), device, address. */
export interface Endpoint {
  /** Network namespace (`ip netns exec NS ...`), or `undefined` in the initial namespace. */
  netns: string | undefined;
  /** The rxe device name, e.g. `rxea`. */
  device: string;
  /** The netdev the device sits on. */
  netdev: string;
  /** The IPv4 address of that netdev. */
  address: string;
}

/** A namespace pair (two devices) or the single-device loopback. */
export interface Topology {
  kind: "pair" | "loopback";
  /** Side A: the primary by convention. */
  a: Endpoint;
  /** Side B: the replica by convention (the same device as A for loopback). */
  b: Endpoint;
}

/**
 * Reads the topology that is up, or `undefined` when none is.
 *
 * @example
 * ```ts
 * const topo = readTopology();
 * if (topo) console.log(topo.kind, topo.a.device, topo.b.address);
 * ```
 */
export function readTopology(path: string = pairStateFile): Topology | undefined {
  const env = readEnvFile(path);
  if (!env) return undefined;
  const need = ["TOPOLOGY", "NS_A", "NS_B", "IF_A", "IF_B", "DEV_A", "DEV_B", "ADDR_A", "ADDR_B"];
  const missing = need.filter((key) => !env[key]);
  if (missing.length > 0) {
    throw new Error(
      `Cannot read ${path}: ${missing.join(", ")} missing (run softroce-pair.sh up again)`,
    );
  }
  if (env.TOPOLOGY === "loopback") {
    const end = { netns: undefined, device: env.DEV_A, netdev: env.IF_A, address: env.ADDR_A };
    return { kind: "loopback", a: end, b: { ...end } };
  }
  if (env.TOPOLOGY !== "pair") throw new Error(`Unknown topology '${env.TOPOLOGY}' in ${path}`);
  return {
    kind: "pair",
    a: { netns: env.NS_A, device: env.DEV_A, netdev: env.IF_A, address: env.ADDR_A },
    b: { netns: env.NS_B, device: env.DEV_B, netdev: env.IF_B, address: env.ADDR_B },
  };
}

/** Prefixes `argv` with `ip netns exec NS` when the endpoint lives in a namespace. */
export function inNamespace(end: Endpoint, argv: string[]): string[] {
  return end.netns ? ["ip", "netns", "exec", end.netns, ...argv] : argv;
}
