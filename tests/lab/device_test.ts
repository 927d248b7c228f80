/**
 * Foundation check, run in each namespace of the pair: the namespace's Soft-RoCE device
 * opens through Deno.dlopen("libibverbs.so.1"), its port is ACTIVE on Ethernet, and its
 * RoCEv2 GID is the IPv4-mapped address of the namespace's netdev.
 */
import assert from "node:assert/strict";
import { inNamespace } from "../../lib/lab/topology.ts";
import { labTopology } from "./support/verbs_pair.ts";

const topology = labTopology();
const ends = topology.kind === "pair" ? [topology.a, topology.b] : [topology.a];

for (const end of ends) {
  Deno.test(`${end.device} in ${end.netns ?? "the initial namespace"} is ACTIVE with GID ::ffff:${end.address}`, async () => {
    const argv = inNamespace(end, [
      Deno.execPath(),
      "run",
      "-A",
      "--cached-only",
      "--no-check",
      new URL("./tools/probe_device.ts", import.meta.url).pathname,
      end.device,
      end.netdev,
    ]);
    const out = await new Deno.Command(argv[0], { args: argv.slice(1), stderr: "inherit" })
      .output();
    assert.equal(out.code, 0, "the probe ran");
    const probe = JSON.parse(new TextDecoder().decode(out.stdout));
    assert.ok(
      probe.devices.includes(end.device),
      `libibverbs lists ${end.device}: ${probe.devices}`,
    );
    assert.equal(probe.state, "ACTIVE");
    assert.equal(probe.linkLayer, "Ethernet");
    assert.ok(probe.maxQp > 0, "ibv_query_device answered");
    assert.ok(probe.hasNetdev, `${end.netdev} is in this namespace (saw ${probe.netdevs})`);
    assert.deepEqual(
      probe.roceV2?.address,
      end.address,
      "the RoCEv2 GID is the netdev's IPv4 address",
    );
    if (topology.kind === "pair") {
      const other = end === topology.a ? topology.b.netdev : topology.a.netdev;
      assert.ok(!probe.netdevs.includes(other), `${other} is not visible from ${end.netns}`);
    }
  });
}
