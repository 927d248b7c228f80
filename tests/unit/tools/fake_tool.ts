/**
 * A stand-in for our commands in `tools_test.ts`: prints event lines and a report the way
 * they do, or misbehaves in one named way.
 *
 * `fake_tool.ts MODE`: `serve` (ready, then a report at SIGTERM), `exit` (exit 3 before
 * ready), `silent` (never ready, never exits), `long` (a 2 MiB line after the report),
 * `bad-event` (a malformed event line, then a report).
 */
import { encodeEvent } from "../../../lib/tools/events.ts";

const report = JSON.stringify({ answer: 42 });
const mode = Deno.args[0];
if (mode === "serve") {
  console.log(encodeEvent({ event: "resumed", releasedSeq: 3, retainedLogs: 2, throughSeq: 5 }));
  const stop = new Promise<void>((resolve) => Deno.addSignalListener("SIGTERM", resolve));
  console.log(encodeEvent({ event: "ready", port: 4321 }));
  await stop;
  console.log(report);
  Deno.exit(0);
} else if (mode === "exit") {
  Deno.exit(3);
} else if (mode === "silent") {
  setInterval(() => {}, 1000);
} else if (mode === "long") {
  console.log(report);
  console.log("x".repeat(2 << 20));
} else if (mode === "bad-event") {
  console.log('{"rrl":"event","event":"ready","port":"nine"}');
  console.log(report);
}
