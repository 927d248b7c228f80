/**
 * The lab runner boots a real VM (or runs natively) and never leaves QEMU behind: exit
 * codes pass through, the timeout fires with a clear message, and killing the runner
 * (SIGTERM, SIGINT, even SIGKILL) takes QEMU with it.
 */
import assert from "node:assert/strict";
import { chooseLabMode } from "../../lib/lab/mode.ts";

const cmdLab = new URL("../../cmd/lab.ts", import.meta.url).pathname;
const vm = chooseLabMode() === "vm";

function qemuPids(): Set<number> {
  const out = new Deno.Command("pgrep", { args: ["-x", "qemu-system-x86"], stdout: "piped" })
    .outputSync();
  const text = new TextDecoder().decode(out.stdout).trim();
  return new Set(text ? text.split("\n").map(Number) : []);
}

function lab(args: string[]) {
  return new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", cmdLab, "--topology", "none", ...args],
    stdout: "piped",
    stderr: "piped",
    stdin: "null",
  });
}

async function waitFor(condition: () => boolean, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (condition()) return true;
    await new Promise((r) => setTimeout(r, 100));
  }
  return condition();
}

Deno.test("the lab runner passes the command's exit code and output through", async () => {
  const out = await lab(["--", "echo from-the-lab; exit 7"]).output();
  assert.equal(out.code, 7);
  assert.match(new TextDecoder().decode(out.stdout), /^from-the-lab$/m);
});

Deno.test("the lab runner stops at its timeout with a clear message and exit code 124", async () => {
  const before = qemuPids();
  const out = await lab(["--timeout", vm ? "9" : "2", "--", "sleep 120"]).output();
  assert.equal(out.code, 124);
  assert.match(new TextDecoder().decode(out.stdout), /timed out after \d+ s/);
  assert.ok(await waitFor(() => [...qemuPids()].every((p) => before.has(p)), 5000), "no QEMU left");
});

for (const signal of ["SIGTERM", "SIGINT", "SIGKILL"] as const) {
  Deno.test({
    name: `killing the lab runner with ${signal} leaves no QEMU process behind`,
    ignore: !vm,
    async fn() {
      const before = qemuPids();
      const child = lab(["--", "sleep 120"]).spawn();
      const ours = () => [...qemuPids()].filter((p) => !before.has(p));
      assert.ok(await waitFor(() => ours().length === 1, 20_000), "QEMU started");
      const qemu = ours()[0];
      await new Promise((r) => setTimeout(r, 1500)); // booting, mid-run
      child.kill(signal);
      const status = await child.status;
      assert.notEqual(status.code, 0);
      assert.ok(await waitFor(() => !qemuPids().has(qemu), 5000), `QEMU ${qemu} is gone`);
      await child.stdout.cancel();
      await child.stderr.cancel();
    },
  });
}
