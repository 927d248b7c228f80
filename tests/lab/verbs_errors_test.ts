/**
 * Error paths of the verbs layer on rdma_rxe: remote access errors, posting in RESET,
 * missing devices, the locked-memory limit, and resource lifetimes.
 */
import assert from "node:assert/strict";
import {
  IBV_ACCESS_FLAGS as A,
  IBV_SEND_FLAGS as S,
  IBV_WC_STATUS,
  IBV_WR_OPCODE as O,
} from "../../ffi/verbs_constants.ts";
import { Context } from "../../lib/verbs/context.ts";
import { CompletionQueue } from "../../lib/verbs/cq.ts";
import { ResourceError, VerbsError } from "../../lib/verbs/errors.ts";
import { ProtectionDomain } from "../../lib/verbs/pd.ts";
import { QueuePair } from "../../lib/verbs/qp.ts";
import { liveResourceLabels } from "../../lib/verbs/resource.ts";
import { BootstrapError } from "../../lib/replication/bootstrap.ts";
import { Replica } from "../../lib/replication/replica.ts";
import type { WithSuppressed } from "../../lib/dispose.ts";
import { sendDescriptor } from "../../lib/verbs/work_requests.ts";
import { labTopology, openPair, pollUntil } from "./support/verbs_pair.ts";

const topology = labTopology();
const device = topology.a.device;

Deno.test("a WRITE with a wrong rkey completes with a remote access error and the QP goes to ERR", () => {
  using pair = openPair(topology.kind);
  const { a, b } = pair;
  const send = sendDescriptor();
  Object.assign(send, {
    wrId: 7,
    opcode: O.IBV_WR_RDMA_WRITE,
    flags: S.IBV_SEND_SIGNALED,
    addr: a.mr.address,
    length: 4096,
    lkey: a.mr.lkey,
    remoteAddr: b.mr.address,
    rkey: (b.mr.rkey ^ 0x5a5a00) >>> 0,
  });
  a.qp.sendChain.add(send);
  a.qp.postSend();
  let error;
  assert.equal(
    pollUntil(a.sendCq, 1, 10_000, (i) => (error = a.sendCq.completionError(i, "wrong rkey"))),
    1,
  );
  assert.equal(error!.status, IBV_WC_STATUS.IBV_WC_REM_ACCESS_ERR);
  assert.equal(error!.statusText, "remote access error");
  assert.equal(error!.wrId, 7);
  assert.equal(error!.qpNum, a.qp.qpn);
  assert.match(error!.message, /remote access error .*vendor error/);
  assert.equal(a.qp.state(), "ERR");
});

Deno.test("posting on a QP in RESET throws a VerbsError naming ibv_post_send", () => {
  using pair = openPair(topology.kind, { connect: false });
  assert.equal(pair.a.qp.state(), "RESET");
  const send = sendDescriptor();
  Object.assign(send, {
    wrId: 1,
    opcode: O.IBV_WR_SEND,
    flags: S.IBV_SEND_SIGNALED,
    addr: pair.a.mr.address,
    length: 64,
    lkey: pair.a.mr.lkey,
  });
  pair.a.qp.sendChain.add(send);
  assert.throws(() => pair.a.qp.postSend(), (e: unknown) => {
    assert.ok(e instanceof VerbsError);
    assert.equal(e.verb, "ibv_post_send");
    assert.ok(e.errnoName.length > 0, "an errno name");
    assert.match(e.message, /QP \d+ on \w+, 1 work request/);
    return true;
  });
  assert.equal(pair.a.qp.sendChain.length, 0, "the chain is emptied after a failed post");
});

Deno.test("opening a missing device names the devices that exist", () => {
  assert.throws(() => Context.open("rxe-missing"), (e: unknown) => {
    assert.match(
      (e as Error).message,
      new RegExp(`No RDMA device 'rxe-missing': devices here: .*${device}`),
    );
    return true;
  });
});

Deno.test("registering beyond the locked-memory limit says to raise ulimit -l", async () => {
  // Root has CAP_IPC_LOCK, which bypasses RLIMIT_MEMLOCK: drop it for the child.
  const script = new URL("./tools/reg_mr_child.ts", import.meta.url).pathname;
  const out = await new Deno.Command("bash", {
    args: [
      "-c",
      `ulimit -l 64 && exec setpriv --bounding-set -ipc_lock --inh-caps -ipc_lock ` +
      `"${Deno.execPath()}" run -A --cached-only --no-check ${script} ${device} ${4 << 20}`,
    ],
    stderr: "inherit",
  }).output();
  assert.equal(out.code, 0);
  const result = JSON.parse(new TextDecoder().decode(out.stdout));
  assert.equal(result.ok, false, "4 MiB cannot be pinned under a 64 KiB limit");
  assert.equal(result.verb, "ibv_reg_mr");
  assert.equal(result.errno, "ENOMEM");
  assert.match(
    result.message,
    /registering 4 MiB at 0x[0-9a-f]+ \(locked memory limit is 64 KiB; raise ulimit -l\)/,
  );
});

Deno.test("resources: parents refuse to close before children, close is idempotent, use after close throws", () => {
  const before = liveResourceLabels().length;
  const ctx = Context.open(device);
  const pd = new ProtectionDomain(ctx);
  const cq = new CompletionQueue(ctx, { entries: 16 });
  const mr = pd.register(new ArrayBuffer(8192), A.IBV_ACCESS_LOCAL_WRITE);
  const qp = QueuePair.create(pd, { sendCq: cq, recvCq: cq, maxSendWr: 4, maxRecvWr: 4 });
  assert.throws(
    () => pd.close(),
    (e: unknown) => e instanceof ResourceError && /MR 8 KiB .*QP \d+/.test(e.message),
  );
  assert.throws(
    () => cq.close(),
    (e: unknown) => e instanceof ResourceError && /QP/.test(e.message),
  );
  assert.throws(() => ctx.close(), ResourceError);
  qp.close();
  qp.close();
  assert.throws(
    () => qp.state(),
    (e: unknown) => e instanceof ResourceError && /is closed/.test(e.message),
  );
  mr.close();
  cq.close();
  pd.close();
  ctx.close();
  assert.throws(() => ctx.queryPort(1), ResourceError);
  assert.equal(liveResourceLabels().length, before, "nothing leaked");
});

Deno.test("Replica.listen failing after it registered its ring rethrows that error and closes the MR, ring, PD and context", async () => {
  const before = liveResourceLabels();
  using taken = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const error = await Replica.listen({
    device,
    hostname: "127.0.0.1",
    port: taken.addr.port,
    secret: "0123456789abcdef",
    ringBytes: 64 * 1024,
    log: () => {},
  }).then((replica) => replica.close(), (e: unknown) => e);
  // The bind error itself, not "close its children first" from the cleanup.
  assert.ok(
    error instanceof BootstrapError && /Address already in use/.test(error.message),
    `expected the bind error, got ${error}`,
  );
  assert.equal((error as WithSuppressed).suppressed, undefined, "a close failed in the cleanup");
  assert.deepEqual(liveResourceLabels(), before, "nothing of the replica left open");
});

Deno.test("a QP whose setup fails after ibv_create_qp is destroyed, so its PD and CQ close", () => {
  using ctx = Context.open(device);
  using pd = new ProtectionDomain(ctx);
  using cq = new CompletionQueue(ctx, { entries: 16 });
  assert.throws(
    () => QueuePair.create(pd, { sendCq: cq, recvCq: cq, maxSendWr: 4, maxRecvWr: 4, chainMax: 0 }),
    (e: unknown) => e instanceof RangeError && /chain holds/.test(e.message),
  );
  // `using` closes cq, pd and ctx at the end: each would throw were the QP still alive.
});

// A capability rxe may lack: on-demand paging. Probed once, in a child process (a broken
// ODP path can corrupt memory); the test is skipped with the reason printed.
const odp = (() => {
  const out = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      "--cached-only",
      "--no-check",
      new URL("./tools/odp_probe.ts", import.meta.url).pathname,
      topology.kind,
    ],
    stderr: "inherit",
  }).outputSync();
  const line = new TextDecoder().decode(out.stdout).trim().split("\n").at(-1) ?? "";
  return out.success
    ? JSON.parse(line) as { supported: boolean; reason: string }
    : { supported: false, reason: `the probe crashed (exit ${out.code}): ODP is unusable here` };
})();
if (!odp.supported) console.log(`skipping the ODP test on ${device}: ${odp.reason}`);

Deno.test({
  name:
    "an on-demand-paging MR receives an RDMA WRITE at an unaligned offset (skipped where ODP is unusable)",
  ignore: !odp.supported,
  async fn() {
    const out = await new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        "--cached-only",
        "--no-check",
        new URL("./tools/odp_probe.ts", import.meta.url).pathname,
        topology.kind,
      ],
    }).output();
    assert.equal(JSON.parse(new TextDecoder().decode(out.stdout)).supported, true);
  },
});
