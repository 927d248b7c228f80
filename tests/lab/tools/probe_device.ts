/**
 * Run inside a namespace (`ip netns exec NS deno run -A probe_device.ts DEVICE NETDEV`):
 * opens the device through Deno.dlopen("libibverbs.so.1"), queries device and port and
 * prints JSON, plus which netdevs this namespace sees.
 */
import { Context, listDevices } from "../../../lib/verbs/context.ts";

if (!import.meta.main) throw new Error("probe_device.ts is a program: run it, do not import it");

const [device, netdev] = Deno.args;
using ctx = Context.open(device);
const port = ctx.queryPort(1);
const attr = ctx.queryDevice();
const roce = ctx.roceV2Gid(1);
const netdevs = [...Deno.readDirSync("/sys/class/net")].map((e) => e.name).sort();
console.log(JSON.stringify({
  devices: listDevices(),
  device,
  state: port.stateName,
  linkLayer: port.linkLayerName,
  activeMtu: port.activeMtu,
  gidTableLength: port.gidTableLength,
  maxQp: attr.maxQp,
  roceV2: roce ? { index: roce.index, address: roce.address } : null,
  netdevs,
  hasNetdev: netdevs.includes(netdev),
}));
