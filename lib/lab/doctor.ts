/**
 * What this machine has for RDMA work, each finding with what to do about it.
 *
 * @module
 */
import { lockedMemoryLimit } from "../../ffi/libc.ts";
import { callWay } from "../../ffi/prepared_call.ts";
import { crc32cBackend } from "../log/crc32c.ts";
import { Context, listDevices } from "../verbs/context.ts";
import { formatBytes } from "../verbs/errors.ts";
import { denoVersionPinned } from "../version.ts";
import { chooseLabMode, insideLabVm, labKernel, nativeRxeAvailable } from "./mode.ts";
import { readTopology } from "./topology.ts";

/** One line of the report. */
export interface Finding {
  topic: string;
  ok: boolean;
  detail: string;
  /** What to do, when not ok. */
  fix?: string;
}

function run(argv: string[]): { ok: boolean; out: string } {
  try {
    const out = new Deno.Command(argv[0], { args: argv.slice(1), stderr: "null", stdin: "null" })
      .outputSync();
    return { ok: out.success, out: new TextDecoder().decode(out.stdout).trim() };
  } catch {
    return { ok: false, out: "" };
  }
}

function packageVersion(name: string): string {
  const r = run(["dpkg-query", "-W", "-f=${Version}", name]);
  return r.ok && r.out ? r.out : "not installed";
}

/** Collects the findings (fast: no VM boot). */
export function diagnose(): Finding[] {
  const findings: Finding[] = [];
  const deno = Deno.version.deno;
  findings.push({
    topic: "deno",
    ok:
      deno.split(".").slice(0, 2).join(".") === denoVersionPinned.split(".").slice(0, 2).join("."),
    detail: `${deno} (tested with ${denoVersionPinned})`,
    fix: `run the tasks as 'npx --yes deno@${denoVersionPinned} task ...'`,
  });

  const verbs = packageVersion("libibverbs1");
  const providers = packageVersion("ibverbs-providers");
  let rxeProvider = false;
  try {
    rxeProvider = [...Deno.readDirSync("/usr/lib/x86_64-linux-gnu/libibverbs")].some((e) =>
      e.name.startsWith("librxe-")
    );
  } catch {
    // no provider folder
  }
  findings.push({
    topic: "libibverbs",
    ok: verbs !== "not installed" && rxeProvider,
    detail: `libibverbs1 ${verbs}, ibverbs-providers ${providers}, rxe provider ${
      rxeProvider ? "present" : "missing"
    }`,
    fix: "deno task setup (or apt-get install libibverbs1 ibverbs-providers rdma-core)",
  });

  let devices: string[] = [];
  try {
    devices = listDevices();
  } catch (error) {
    findings.push({
      topic: "devices",
      ok: false,
      detail: (error as Error).message,
      fix: "deno task setup",
    });
  }
  const native = nativeRxeAvailable();
  for (const name of devices) findings.push(describeDevice(name));
  if (devices.length === 0) {
    findings.push({
      topic: "devices",
      ok: !native,
      detail: native
        ? "no verbs device yet"
        : "no verbs device (expected: this kernel has no RDMA)",
      fix: native ? "sudo scripts/softroce-pair.sh up" : undefined,
    });
  }

  const kernel = labKernel();
  const mode = insideLabVm() ? "inside the lab VM" : chooseLabMode();
  findings.push({
    topic: "rdma_rxe",
    ok: native || kernel !== undefined,
    detail: native
      ? `loadable natively on ${Deno.osRelease()}${
        insideLabVm() ? " (this is the lab VM)" : ""
      }; lab mode: ${mode}`
      : kernel
      ? `not in this kernel (${Deno.osRelease()}); the lab VM runs ${kernel.version} from ${kernel.suite}` +
        (kernel.netnsRxe
          ? " (namespace pairs work)"
          : " (no namespace pairs before Linux 7.1: loopback only)")
      : `not in this kernel (${Deno.osRelease()}) and no lab VM kernel fetched yet`,
    fix: "deno task setup (fetches a Debian kernel with rdma_rxe for the lab VM)",
  });

  const memlock = lockedMemoryLimit();
  const root = Deno.uid() === 0;
  findings.push({
    topic: "memlock",
    ok: memlock === Infinity || memlock >= 256 * 2 ** 20 || root,
    detail: `ulimit -l is ${formatBytes(memlock)}` +
      (root ? " (root: CAP_IPC_LOCK lifts it for registrations)" : ""),
    fix: "raise it: ulimit -l unlimited (or memlock in /etc/security/limits.conf)",
  });

  const topology = readTopology();
  if (topology?.kind === "pair") {
    for (const end of [topology.a, topology.b]) {
      const ss = run(["ip", "netns", "exec", end.netns!, "ss", "-Huln", "sport = :4791"]);
      findings.push({
        topic: "pair",
        ok: ss.ok && ss.out.length > 0,
        detail: `${end.device} in ${end.netns}: ${
          ss.out ? "UDP 4791 listening" : "no UDP 4791 socket"
        }`,
        fix:
          "this kernel's rxe carries no traffic across namespaces (needs Linux 7.1+): use --loopback",
      });
    }
  } else if (topology?.kind === "loopback") {
    findings.push({
      topic: "pair",
      ok: true,
      detail: `loopback topology: ${topology.a.device} on ${topology.a.netdev}`,
    });
  }
  findings.push({
    topic: "crc32c",
    ok: crc32cBackend() === "isal",
    detail: crc32cBackend(),
    fix: "apt-get install libisal2",
  });
  findings.push({
    topic: "ffi calls",
    ok: callWay === "libffi",
    detail: callWay,
    fix: "apt-get install libffi8",
  });
  return findings;
}

function describeDevice(name: string): Finding {
  try {
    using ctx = Context.open(name);
    const port = ctx.queryPort(1);
    const gids = ctx.listGids(1).map((g) => `${g.index} ${g.gid} (${g.type})`).join(", ");
    const roce = ctx.roceV2Gid(1);
    return {
      topic: "devices",
      ok: port.stateName === "ACTIVE" && roce !== undefined,
      detail: `${name}: port 1 ${port.stateName}, ${port.linkLayerName}, active MTU ${
        256 << (port.activeMtu - 1)
      }; GIDs ${gids || "none"}`,
      fix: roce
        ? "bring the netdev up"
        : "give the netdev under the device an IPv4 address (RoCEv2 GID)",
    };
  } catch (error) {
    return { topic: "devices", ok: false, detail: `${name}: ${(error as Error).message}` };
  }
}
