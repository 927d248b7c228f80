/**
 * The ABI proof: generates a C program from the TypeScript layouts and constants, compiles
 * it with gcc against `<infiniband/verbs.h>`, and compares every number the C compiler
 * reports with the one the TypeScript side computed. Needs gcc and libibverbs-dev, not an
 * RDMA device; the program is never linked against libibverbs.
 *
 * @module
 */

import assert from "node:assert/strict";
import { ERRNO } from "../../ffi/errno.ts";
import { type Layout, struct } from "../../ffi/layout.ts";
import { verbsConstants } from "../../ffi/verbs_constants.ts";
import { ibvContext, ibvContextOps, ibvWc, verbsLayouts } from "../../ffi/verbs_types.ts";

/** One number both sides must agree on: `expr` is the C expression, `ts` the TS value. */
interface Check {
  readonly subject: string;
  readonly member: string;
  readonly what: string;
  readonly expr: string;
  readonly ts: number;
}

/** A check whose C value differs from the TS value (`c` is null if C never printed it). */
interface Mismatch {
  readonly check: Check;
  readonly c: number | null;
}

function layoutChecks(layout: Layout): Check[] {
  const subject = `${layout.kind} ${layout.name}`;
  const checks: Check[] = [
    { subject, member: "", what: "sizeof", expr: `sizeof(${subject})`, ts: layout.size },
    { subject, member: "", what: "alignof", expr: `_Alignof(${subject})`, ts: layout.align },
  ];
  for (const m of layout.members) {
    const lvalue = `((${subject} *)0)->${m.path}`;
    const member = m.path;
    checks.push(
      { subject, member, what: "offsetof", expr: `offsetof(${subject}, ${m.path})`, ts: m.offset },
      { subject, member, what: "sizeof", expr: `sizeof(${lvalue})`, ts: m.size },
      { subject, member, what: "alignof", expr: `__alignof__(${lvalue})`, ts: m.align },
    );
  }
  return checks;
}

function valueChecks(subject: string, values: Readonly<Record<string, number>>): Check[] {
  return Object.entries(values).map(([name, ts]) => ({
    subject,
    member: name,
    what: "value",
    expr: name,
    ts,
  }));
}

function allChecks(): Check[] {
  return [
    ...verbsLayouts.flatMap((layout) => layoutChecks(layout)),
    ...Object.entries(verbsConstants).flatMap(([group, values]) => valueChecks(group, values)),
    ...valueChecks("errno", ERRNO),
  ];
}

function program(checks: readonly Check[]): string {
  const lines = checks.map((c) => `  printf("%lld\\n", (long long)(${c.expr}));`);
  return [
    "#include <errno.h>",
    "#include <stddef.h>",
    "#include <stdio.h>",
    "#include <infiniband/verbs.h>",
    "",
    "int main(void) {",
    ...lines,
    "  return 0;",
    "}",
    "",
  ].join("\n");
}

/** Compiles and runs the probe; returns the C value of each check's expression. */
async function cValues(checks: readonly Check[]): Promise<Map<string, number>> {
  const dir = await Deno.makeTempDir({ prefix: "abi_test_" });
  try {
    const source = `${dir}/probe.c`;
    const binary = `${dir}/probe`;
    await Deno.writeTextFile(source, program(checks));
    const gcc = await gccOutput(["-std=gnu11", "-Wall", "-Werror", "-o", binary, source]);
    const stderr = new TextDecoder().decode(gcc.stderr);
    if (/infiniband\/[\w.]+: No such file/.test(stderr)) {
      assert.fail(
        "Cannot compile the ABI probe: <infiniband/verbs.h> not found; install libibverbs-dev " +
          "(apt-get install libibverbs-dev)",
      );
    }
    assert.ok(
      gcc.success,
      `gcc rejected the generated probe (does a layout name a member verbs.h lacks?):\n${
        stderr.split("\n").slice(0, 40).join("\n")
      }`,
    );
    const run = await new Deno.Command(binary, { stdout: "piped", stderr: "inherit" }).output();
    assert.ok(run.success, `The ABI probe exited with code ${run.code}`);
    const out = new TextDecoder().decode(run.stdout).trimEnd().split("\n").map(Number);
    assert.equal(out.length, checks.length, "The ABI probe printed one line per check");
    return new Map(checks.map((check, i) => [check.expr, out[i]]));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

async function gccOutput(args: string[]): Promise<Deno.CommandOutput> {
  try {
    return await new Deno.Command("gcc", { args, stdout: "piped", stderr: "piped" }).output();
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) {
      assert.fail("Cannot compile the ABI probe: gcc not found; install gcc (apt-get install gcc)");
    }
    throw error;
  }
}

function compare(checks: readonly Check[], c: ReadonlyMap<string, number>): Mismatch[] {
  return checks
    .map((check) => ({ check, c: c.get(check.expr) ?? null }))
    .filter((m) => m.c !== m.check.ts);
}

function table(mismatches: readonly Mismatch[]): string {
  const rows = [
    ["type", "member", "check", "C", "TS"],
    ...mismatches.map(({ check, c }) => [
      check.subject,
      check.member || "-",
      check.what,
      c === null ? "missing" : String(c),
      String(check.ts),
    ]),
  ];
  const widths = rows[0].map((_, i) => Math.max(...rows.map((row) => row[i].length)));
  return rows.map((row) => row.map((cell, i) => cell.padEnd(widths[i])).join("  ")).join("\n");
}

function assertNoMismatch(checks: readonly Check[], c: ReadonlyMap<string, number>): void {
  const mismatches = compare(checks, c);
  if (mismatches.length > 0) {
    assert.fail(`${mismatches.length} ABI mismatch(es) against verbs.h:\n${table(mismatches)}`);
  }
}

/** The same struct with one field dropped, to prove the comparison sees the shift. */
function without(layout: Layout, dropped: string): Layout {
  return struct(layout.name, layout.fields.filter(([name]) => name !== dropped));
}

Deno.test("TS layouts, verbs constants and errno values match verbs.h as compiled by gcc", async (t) => {
  const checks = allChecks();
  let c = new Map<string, number>();
  const compiled = await t.step(
    "gcc compiles and runs the probe generated from the TS side",
    async () => {
      c = await cValues(checks);
    },
  );
  const steps: [string, (check: Check) => boolean][] = [
    ["struct sizes, alignments, member offsets and sizes match", (k) => k.what !== "value"],
    ["verbs.h enum constants match", (k) => k.what === "value" && k.subject !== "errno"],
    ["errno values match <errno.h>", (k) => k.subject === "errno"],
  ];
  for (const [name, select] of steps) {
    await t.step({ name, ignore: !compiled, fn: () => assertNoMismatch(checks.filter(select), c) });
  }
  await t.step({
    name: "the inline verbs' slots are among the proven members",
    ignore: !compiled,
    fn: () => {
      for (const slot of ["post_send", "post_recv", "poll_cq", "req_notify_cq"] as const) {
        const expr = `offsetof(struct ibv_context, ops.${slot})`;
        const check = checks.find((k) => k.expr === expr);
        assert.ok(check !== undefined, `ibv_context.ops.${slot} is declared`);
        assert.equal(c.get(expr), ibvContext.offsetOf(`ops.${slot}`));
      }
    },
  });
  await t.step({
    name: "a layout with a wrong offset is reported in the mismatch table",
    ignore: !compiled,
    fn: () => {
      const ops = compare(layoutChecks(without(ibvContextOps, "_compat_cq_event")), c);
      assert.ok(ops.length > 0 && ops.every((m) => m.c !== null), table(ops));
      const shifted = ops.map((m) => `${m.check.member}:${m.check.what}`);
      assert.ok(shifted.includes("post_send:offsetof"), table(ops));
      assert.ok(shifted.includes(":sizeof"), table(ops));
      assert.ok(!shifted.includes("poll_cq:offsetof"), "poll_cq precedes the dropped slot");
      const wc = compare(layoutChecks(without(ibvWc, "")), c); // forgot the anonymous union
      assert.ok(wc.some((m) => m.check.member === "qp_num"), table(wc));
      assert.match(table(wc), /struct ibv_wc\s+qp_num\s+offsetof\s+28\s+24/);
    },
  });
});
