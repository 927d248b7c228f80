// The controller and host driver end to end: data paths, out-of-order completion, failing
// backends, the bounds on outstanding commands and CQ space, CID conflicts, host refusals.
import assert from "node:assert/strict";
import type { NvmeBackend } from "../../lib/nvme/backend.ts";
import { NvmOpcode } from "../../lib/nvme/command.ts";
import { NvmeController } from "../../lib/nvme/controller.ts";
import { Cqe, decodeCqe } from "../../lib/nvme/cqe.ts";
import { CqConsumer, QueueFullError } from "../../lib/nvme/cursor.ts";
import { NvmeHost } from "../../lib/nvme/host.ts";
import { GatedBackend } from "../../lib/nvme/gated_backend.ts";
import { MemoryBackend } from "../../lib/nvme/memory_backend.ts";
import { DoorbellError } from "../../lib/nvme/queue.ts";
import { encodeSqe, setSqeIo, Sqe } from "../../lib/nvme/sqe.ts";
import {
  describeStatus,
  type NvmeStatus,
  nvmeStatus,
  statusCode,
  statusDoNotRetry,
  statusSuccess,
} from "../../lib/nvme/status.ts";
import { Prng } from "../../lib/prng.ts";

const block = 4096;
const tick = () => new Promise<void>((resolve) => setTimeout(resolve, 0));

function pattern(blocks: number, seed: number): Uint8Array {
  return new Prng(seed).fill(new Uint8Array(blocks * block));
}

Deno.test("written blocks read back; Flush and Write Zeroes succeed", async () => {
  const backend = new MemoryBackend(256);
  const host = new NvmeHost(new NvmeController({ backend, capacityBlocks: 256, sqDepth: 16 }));
  const data = pattern(4, 1);
  assert.equal((await host.submit({ opcode: NvmOpcode.write, slba: 10 }, data)).status, 0);
  const into = new Uint8Array(4 * block);
  assert.equal((await host.submit({ opcode: NvmOpcode.read, slba: 10 }, into)).status, 0);
  assert.deepEqual(into, data);
  assert.equal((await host.submit({ opcode: NvmOpcode.flush })).status, 0);
  assert.equal((await host.submit({ opcode: NvmOpcode.flush, nsid: 0xffff_ffff })).status, 0);
  const zeroed = await host.submit({ opcode: NvmOpcode.writeZeroes, slba: 11, nlb: 1 });
  assert.equal(zeroed.status, 0);
  const expected = data.slice();
  expected.fill(0, block, 3 * block);
  assert.deepEqual(backend.snapshot(10, 4), expected);
  assert.equal(host.outstanding, 0);
});

Deno.test("completions post in settle order, each carrying the SQ head", async () => {
  const backend = new GatedBackend(new MemoryBackend(64));
  const controller = new NvmeController({ backend, capacityBlocks: 64, sqDepth: 8 });
  const host = new NvmeHost(controller);
  const order: number[] = [];
  const pending = [0, 1, 2].map((i) =>
    host.submit({ opcode: NvmOpcode.write, slba: i }, pattern(1, i)).then((c) => {
      order.push(c.cid);
      return c;
    })
  );
  assert.equal(controller.sq.head, 3, "all three fetched at the doorbell");
  const cids = backend.held.map((h) => h.cid);
  const released = [backend.release(2), backend.release(0), backend.release(0)];
  const done = await Promise.all(pending);
  assert.deepEqual(order, released);
  assert.deepEqual(released, [cids[2], cids[0], cids[1]]);
  for (const completion of done) {
    assert.equal(completion.status, statusSuccess);
    assert.equal(completion.sqHead, 3);
    assert.equal(completion.sqId, 1);
  }
  const first = new Cqe();
  decodeCqe(controller.cq.memory, 0, first);
  assert.equal(first.cid, cids[2], "CQ slot 0 holds the first command to settle");
});

Deno.test("a failing backend yields an error status, never success", async (t) => {
  let mode = "reject";
  const backend: NvmeBackend = {
    write(): Promise<NvmeStatus> {
      if (mode === "reject") return Promise.reject(new Error("replica lost"));
      if (mode === "throw") throw new Error("thrown synchronously");
      if (mode === "not-ready") return Promise.resolve(nvmeStatus(0, 0x82));
      if (mode === "ok") return Promise.resolve(statusSuccess);
      const garbage: Record<string, unknown> = {
        string: "0",
        negative: -1,
        fraction: 0.5,
        wide: 0x8000,
        missing: undefined,
      };
      return Promise.resolve(garbage[mode] as NvmeStatus);
    },
    read: () => Promise.resolve(statusSuccess),
    flush: () => Promise.reject("not even an Error"),
  };
  const controller = new NvmeController({ backend, capacityBlocks: 16, sqDepth: 4 });
  const host = new NvmeHost(controller);
  const write = () => host.submit({ opcode: NvmOpcode.write, slba: 0 }, new Uint8Array(block));
  for (const m of ["reject", "throw", "string", "negative", "fraction", "wide", "missing"]) {
    await t.step(`${m} → Internal Error, retry allowed`, async () => {
      mode = m;
      const { status } = await write();
      assert.equal(statusCode(status), 0x06, describeStatus(status));
      assert.equal(statusDoNotRetry(status), false);
    });
  }
  await t.step("a rejected flush → Internal Error", async () => {
    assert.equal(statusCode((await host.submit({ opcode: NvmOpcode.flush })).status), 0x06);
  });
  await t.step(
    "a status from the backend passes through; the controller keeps serving",
    async () => {
      mode = "not-ready";
      assert.equal(statusCode((await write()).status), 0x82);
      mode = "ok";
      assert.equal((await write()).status, statusSuccess);
      assert.equal(controller.counters.backendFailures, 8);
      assert.ok(controller.lastBackendError !== undefined);
    },
  );
});

Deno.test("outstanding commands are bounded; the rest wait in the SQ", async () => {
  const backend = new GatedBackend(new MemoryBackend(64));
  const controller = new NvmeController({
    backend,
    capacityBlocks: 64,
    sqDepth: 8,
    outstandingMax: 2,
  });
  const host = new NvmeHost(controller);
  const all = [0, 1, 2, 3].map((i) => host.submit({ opcode: NvmOpcode.flush, cid: i }));
  assert.equal(controller.outstanding, 2);
  assert.equal(controller.sq.pending, 2);
  for (let released = 1; released <= 4; released++) {
    backend.release(0);
    await tick();
    assert.equal(controller.outstanding, Math.min(2, 4 - released));
  }
  assert.deepEqual((await Promise.all(all)).map((c) => c.cid).sort(), [0, 1, 2, 3]);
});

/** A host with no driver: writes entries itself and reaps the CQ by hand. */
function rawSubmit(controller: NvmeController, sqe: Sqe, data?: Uint8Array): void {
  const slot = controller.sq.tail;
  encodeSqe(controller.sq.memory, controller.sq.slotOffset(slot), sqe);
  controller.sq.attachData(slot, data);
  controller.writeSqTailDoorbell((slot + 1) % controller.sq.depth);
}

function rawReap(controller: NvmeController, consumer: CqConsumer): Cqe[] {
  const out: Cqe[] = [];
  while (consumer.ready(controller.cq.memory)) {
    const cqe = new Cqe();
    decodeCqe(controller.cq.memory, consumer.headOffset, cqe);
    consumer.advance();
    out.push(cqe);
  }
  if (out.length > 0) controller.writeCqHeadDoorbell(consumer.head);
  return out;
}

Deno.test("a full CQ parks completions until the head doorbell moves", async () => {
  const backend = new MemoryBackend(16);
  const controller = new NvmeController({ backend, capacityBlocks: 16, sqDepth: 8, cqDepth: 2 });
  const consumer = new CqConsumer(2);
  const sqe = new Sqe();
  sqe.nsid = 1;
  for (let cid = 0; cid < 3; cid++) {
    sqe.cid = cid;
    rawSubmit(controller, sqe);
  }
  await tick();
  assert.equal(controller.counters.posted, 1, "a 2-entry CQ holds one entry");
  assert.equal(controller.outstanding, 2);
  const seen: number[] = [];
  for (let round = 0; round < 3; round++) {
    seen.push(...rawReap(controller, consumer).map((c) => c.cid));
  }
  assert.deepEqual(seen, [0, 1, 2]);
  assert.equal(controller.outstanding, 0);
});

Deno.test("a CID already outstanding completes with Command ID Conflict", async () => {
  const backend = new GatedBackend(new MemoryBackend(16));
  const controller = new NvmeController({ backend, capacityBlocks: 16, sqDepth: 8 });
  const consumer = new CqConsumer(8);
  const sqe = new Sqe();
  sqe.opcode = NvmOpcode.write;
  sqe.nsid = 1;
  sqe.cid = 5;
  setSqeIo(sqe, { slba: 0, nlb: 0 });
  rawSubmit(controller, sqe, pattern(1, 5));
  rawSubmit(controller, sqe, pattern(1, 6));
  await tick();
  const [conflict] = rawReap(controller, consumer);
  assert.equal(conflict.cid, 5);
  assert.equal(statusCode(conflict.status), 0x03);
  assert.equal(statusDoNotRetry(conflict.status), false);
  assert.equal(backend.held.length, 1, "the conflicting command never reached the backend");
  backend.release(0);
  await tick();
  const [first] = rawReap(controller, consumer);
  assert.deepEqual([first.cid, first.status], [5, statusSuccess]);
  assert.deepEqual(backend.inner.snapshot(0, 1), pattern(1, 5));
  rawSubmit(controller, sqe, pattern(1, 7)); // CID 5 is free again
  backend.release(0);
  await tick();
  assert.equal(rawReap(controller, consumer)[0].status, statusSuccess);
});

Deno.test("the host refuses what it cannot submit", async (t) => {
  const backend = new GatedBackend(new MemoryBackend(16));
  const controller = new NvmeController({ backend, capacityBlocks: 16, sqDepth: 4 });
  await t.step("a full SQ", async () => {
    const host = new NvmeHost(controller);
    const held = [0, 1, 2].map(() => host.submit({ opcode: NvmOpcode.flush }));
    await assert.rejects(host.submit({ opcode: NvmOpcode.flush }), QueueFullError);
    while (backend.held.length > 0) backend.release(0);
    await Promise.all(held);
    const again = host.submit({ opcode: NvmOpcode.flush, cid: 2 });
    backend.release(0);
    assert.equal((await again).cid, 2, "an SQ slot is free again");
  });
  await t.step("no free CID, a CID in use, a buffer of no whole blocks", async () => {
    const c2 = new NvmeController({ backend, capacityBlocks: 16, sqDepth: 8 });
    const host = new NvmeHost(c2, { outstandingMax: 2 });
    const held = [host.submit({ opcode: NvmOpcode.flush, cid: 1 })];
    await assert.rejects(host.submit({ opcode: NvmOpcode.flush, cid: 1 }), RangeError);
    held.push(host.submit({ opcode: NvmOpcode.flush }));
    await assert.rejects(host.submit({ opcode: NvmOpcode.flush }), QueueFullError);
    await assert.rejects(
      host.submit({ opcode: NvmOpcode.write }, new Uint8Array(100)),
      RangeError,
    );
    while (backend.held.length > 0) backend.release(0);
    await Promise.all(held);
  });
});

Deno.test("a bad doorbell write is refused and the controller keeps serving", async () => {
  const backend = new MemoryBackend(16);
  const controller = new NvmeController({ backend, capacityBlocks: 16, sqDepth: 4 });
  const host = new NvmeHost(controller);
  assert.throws(() => controller.writeSqTailDoorbell(4), DoorbellError);
  assert.throws(() => controller.writeSqTailDoorbell(3.5), DoorbellError);
  assert.throws(() => controller.writeCqHeadDoorbell(1), DoorbellError);
  assert.equal((await host.submit({ opcode: NvmOpcode.flush })).status, statusSuccess);
});
