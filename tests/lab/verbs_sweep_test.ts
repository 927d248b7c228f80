/**
 * The verbs error-path sweep (librpma's technique, issue 14): every control-path verbs call
 * of the primary and of the replica fails once (ENOMEM) at its Nth call, and each hot-path
 * verb (post_send, post_recv, poll_cq, req_notify_cq, get_cq_event) fails once at its first
 * call, halfway through a run and at its last call. Each run must end in a typed error naming the verb and
 * the errno, or in a recovery; never a crash, a hang or a verbs object left open, and the
 * primary never counts a log acked that the replica did not accept. Both sides are
 * long-lived processes (`tests/lab/tools/verbs_sweep_side.ts`) that re-plan the failure in
 * process, so the sweep pays Deno's start-up twice, not once per call. Prints the table.
 */
import assert from "node:assert/strict";
import { denoArgv, randomSecret } from "../../lib/lab/processes.ts";
import { type Endpoint, inNamespace } from "../../lib/lab/topology.ts";
import { countedVerbs } from "../../lib/verbs/inject.ts";
import { labTopology } from "./support/verbs_pair.ts";

const { a, b } = labTopology();
const env = { RRL_SECRET: randomSecret() };
const logs = 16;
/** The hot-path verbs the injection counts apart (every counted kind but the control path). */
const hotVerbs = countedVerbs.filter((v) => v !== "control");
/** How long a side may take to exit once its stdin closed. */
const exitWaitMs = 15_000;
/** The sweep's bound on control-path calls per side (a run makes ~20). */
const controlCallsMax = 64;

// deno-lint-ignore no-explicit-any
type Json = any;

/** A sweep side: one JSON command per line in, one JSON answer per line out. */
class SideProcess implements AsyncDisposable {
  readonly #child: Deno.ChildProcess;
  readonly #writer: WritableStreamDefaultWriter<Uint8Array>;
  readonly #lines: AsyncIterator<string>;
  readonly #who: string;

  constructor(who: string, end: Endpoint) {
    this.#who = who;
    const argv = inNamespace(
      end,
      denoArgv("tests/lab/tools/verbs_sweep_side.ts", [
        "--device",
        end.device,
        "--host",
        who === "replica" ? end.address : b.address,
      ]),
    );
    this.#child = new Deno.Command(argv[0], {
      args: argv.slice(1),
      env,
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    this.#writer = this.#child.stdin.getWriter();
    this.#lines = this.#child.stdout.pipeThrough(new TextDecoderStream()).pipeThrough(
      new TransformStream<string, string>({
        start() {},
        transform(chunk, controller) {
          for (const line of chunk.split("\n")) if (line) controller.enqueue(line);
        },
      }),
    )[Symbol.asyncIterator]();
    this.#drain(this.#child.stderr);
  }

  /** The side's last messages, shown when a check fails. */
  stderr = "";

  /** Reads the messages so the pipe never fills. */
  async #drain(stream: ReadableStream<Uint8Array>) {
    for await (const text of stream.pipeThrough(new TextDecoderStream())) {
      this.stderr = (this.stderr + text).slice(-20_000);
    }
  }

  async ask(command: Json): Promise<Json> {
    await this.#writer.write(new TextEncoder().encode(JSON.stringify(command) + "\n"));
    const next = await this.#lines.next();
    assert.ok(
      !next.done,
      `the ${this.#who} side died (crash?) on ${JSON.stringify(command)}:\n${this.stderr}`,
    );
    return JSON.parse(next.value);
  }

  /** Ends the side: stdin closes, it must exit 0 within `exitWaitMs` (else it is killed). */
  async [Symbol.asyncDispose]() {
    await this.#writer.close().catch(() => {});
    const timer = setTimeout(() => this.#child.kill("SIGKILL"), exitWaitMs);
    const status = await this.#child.status.finally(() => clearTimeout(timer));
    assert.equal(status.code, 0, `the ${this.#who} side exited cleanly:\n${this.stderr}`);
  }
}

interface Row {
  side: string;
  call: string;
  errno: string;
  outcome: string;
}

/** Names the verb and errno an error or log line carries ("" when none). */
function named(text: string): string {
  const m = /(ibv_\w+|fcntl|mmap)\b[^\n]*?\b(E[A-Z]+)\b/.exec(text);
  return m ? `${m[1]} ${m[2]}` : "";
}

Deno.test("verbs error-path sweep: every control-path call of both sides and every hot-path verb fails once; each run ends in a typed error naming the verb or in a recovery, with nothing leaked, no crash, no hang, nothing acked that the replica lacks", async () => {
  const replica = new SideProcess("replica", b);
  const primary = new SideProcess("primary", a);
  const swept = await sweep(replica, primary).then(() => undefined, (error) => error);
  // Both sides end either way; a failure of the sweep itself is the one reported.
  const ended = await Promise.allSettled([
    primary[Symbol.asyncDispose](),
    replica[Symbol.asyncDispose](),
  ]);
  for (const e of ended) if (e.status === "rejected") console.log(`sweep: ${e.reason}`);
  if (swept) throw swept;
  for (const e of ended) if (e.status === "rejected") throw e.reason;
});

async function sweep(replica: SideProcess, primary: SideProcess) {
  const rows: Row[] = [];

  /** One run: replica listens with `rPlan`, the primary runs with `pPlan`, replica closes. */
  async function once(rPlan: string | null, pPlan: string | null, reconnect: number) {
    const listen = await replica.ask({ op: "listen", plan: rPlan });
    if (!listen.ok) {
      assert.deepEqual(listen.leaked, [], `replica ${rPlan}: nothing left open`);
      return { listen, run: undefined, close: undefined };
    }
    const run = await primary.ask({
      op: "run",
      plan: pPlan,
      port: listen.port,
      count: logs,
      reconnect,
    });
    const close = await replica.ask({ op: "close" });
    const where = `replica ${rPlan}, primary ${pPlan}`;
    assert.notEqual(run.errorName, "hang", `${where}: the primary's run ended`);
    assert.notEqual(close.errorName, "hang", `${where}: the replica closed`);
    assert.ok(close.ok, `${where}: the replica closed: ${close.error}`);
    assert.deepEqual(run.leaked, [], `${where}: the primary left nothing open`);
    assert.deepEqual(close.leaked, [], `${where}: the replica left nothing open`);
    assert.ok(
      run.acked <= close.accepted,
      `${where}: ${run.acked} acked, ${close.accepted} accepted`,
    );
    if (run.ok) assert.equal(run.acked, logs, `${where}: a run that succeeds is whole`);
    return { listen, run, close };
  }

  // A clean run counts each side's calls of every kind.
  const clean = await once("count", "count", 0);
  assert.ok(clean.run?.ok, `the clean run succeeded: ${clean.run?.error}`);
  const counts: Record<string, Json> = { primary: clean.run!.calls, replica: clean.close!.calls };
  for (const side of ["primary", "replica"]) {
    assert.ok(counts[side].control >= 8, `the ${side}'s control calls were counted`);
    assert.ok(counts[side].control < controlCallsMax, `fewer than ${controlCallsMax} calls`);
  }

  for (const side of ["primary", "replica"] as const) {
    const plans: [string, string, number][] = [];
    for (let n = 1; n <= counts[side].control; n++) plans.push([`${n}:ENOMEM`, `call ${n}`, 0]);
    for (const verb of hotVerbs) {
      const calls = counts[side][verb];
      for (const n of new Set([1, Math.ceil(calls / 2), calls])) {
        if (n <= calls) plans.push([`${verb}@${n}:ENOMEM`, `${verb} #${n} of ${calls}`, 2]);
      }
    }
    for (const [plan, call, reconnect] of plans) {
      const r = side === "primary"
        ? await once(null, plan, reconnect)
        : await once(plan, null, reconnect);
      const own = side === "primary"
        ? r.run!.error ?? ""
        : [r.listen.error ?? "", ...(r.close?.sessionFailures ?? [])].join("\n");
      const calls = side === "primary" ? r.run!.calls : (r.close ?? r.listen).calls;
      const verb = plan.includes("@") ? plan.split("@")[0] : "control";
      const n = Number(/(\d+):/.exec(plan)![1]);
      let outcome: string;
      if (calls[verb] < n) {
        // Control-path calls are the same every run; hot-path counts move with timing
        // (how many polls, arms and events a run needs), so a late N may not come.
        assert.notEqual(verb, "control", `${side} ${plan} was reached`);
        assert.ok(r.run?.ok, `${side} ${plan}: nothing failed, so the run must succeed`);
        outcome = `not reached (this run made ${calls[verb]} calls)`;
      } else if (side === "primary" ? r.run!.ok : r.listen.ok && r.run!.ok) {
        outcome = "recovered: every log acked";
        if (side === "replica") {
          assert.ok(named(own), `${side} ${plan}: the replica logged the failed verb:\n${own}`);
        }
      } else {
        const name = named(own);
        assert.ok(name, `${side} ${plan}: the error names the verb and errno:\n${own}`);
        assert.match(name, /ENOMEM/, `${side} ${plan}: the injected errno`);
        outcome = `typed error: ${name}` +
          (side === "replica" && r.run ? `; primary: ${r.run.errorName ?? "ok"}` : "");
      }
      rows.push({ side, call, errno: "ENOMEM", outcome });
      console.log(`sweep: ${side} ${call}: ${outcome}`);
    }
  }

  console.log(`verbs error-path sweep: ${rows.length} runs, 1 clean run`);
  console.log("| side | call | errno | outcome |\n|---|---|---|---|");
  for (const r of rows) console.log(`| ${r.side} | ${r.call} | ${r.errno} | ${r.outcome} |`);
  for (const verb of ["ibv_open_device", "ibv_alloc_pd", "ibv_reg_mr", "ibv_create_cq"]) {
    for (const side of ["primary", "replica"]) {
      assert.ok(
        rows.some((r) => r.side === side && r.outcome.includes(verb)),
        `${side}: ${verb} was among the failed calls`,
      );
    }
  }
  for (const verb of ["ibv_create_qp", "ibv_modify_qp"]) {
    assert.ok(rows.some((r) => r.outcome.includes(verb)), `${verb} was among the failed calls`);
  }
  for (const verb of hotVerbs) {
    for (const side of ["primary", "replica"]) {
      assert.ok(
        rows.some((r) =>
          r.side === side && r.call.startsWith(verb) && !r.outcome.startsWith("not reached")
        ),
        `${side}: ${verb} failed at least once`,
      );
    }
  }
}
