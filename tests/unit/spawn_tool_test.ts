/**
 * `spawnTool` against a stand-in for our commands (`tests/unit/tools/fake_tool.ts`): the
 * ready handshake, its bound, the run bound, the stop, and refused output.
 */
import assert from "node:assert/strict";
import { ToolOutputError } from "../../lib/tools/decode.ts";
import { scriptTool, spawnTool } from "../../lib/tools/spawn.ts";

const fake = scriptTool("tests/unit/tools/fake_tool.ts");
const here = { netns: undefined, device: "none", netdev: "lo", address: "127.0.0.1" };
const env = {};

Deno.test("spawnTool: the ready handshake gives the port and events; a stop gives the report", async () => {
  await using tool = await spawnTool(fake, ["serve"], { end: here, env, ready: true });
  assert.equal(tool.port, 4321);
  assert.deepEqual(tool.events.map((e) => e.event), ["resumed", "ready"]);
  assert.equal(tool.exited, false);
  tool.stop();
  assert.deepEqual(await tool.report(), { answer: 42 });
  assert.equal((await tool.ended()).code, 0);
});

Deno.test("spawnTool: a tool that exits or stays silent before ready is refused in bounded time", async () => {
  await assert.rejects(
    spawnTool(fake, ["exit"], { end: here, env, ready: true }),
    /exited before its ready event/,
  );
  const t0 = performance.now();
  await assert.rejects(
    spawnTool(fake, ["silent"], { end: here, env, ready: true, readyTimeoutMs: 1500 }),
    /no ready event within 1.5 s/,
  );
  assert.ok(performance.now() - t0 < 10_000);
});

Deno.test("spawnTool: the run bound kills a hung tool; it has no report", async () => {
  const tool = await spawnTool(fake, ["silent"], { end: here, env, timeoutMs: 1500 });
  const end = await tool.ended();
  assert.equal(end.signal, "SIGKILL");
  assert.match(end.error?.message ?? "", /printed no report \(exit code 137, SIGKILL\)/);
  await assert.rejects(tool.report(), ToolOutputError);
});

Deno.test("spawnTool: an overlong last line or a malformed event line refuses the report", async () => {
  const long = await spawnTool(fake, ["long"], { end: here, env });
  await assert.rejects(long.report(), /line: longer than/);
  const badEvent = await spawnTool(fake, ["bad-event"], { end: here, env });
  await assert.rejects(badEvent.report(), /ready\.port: expected an integer/);
  assert.deepEqual(badEvent.events, []);
});
