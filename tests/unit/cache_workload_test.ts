import assert from "node:assert/strict";
import { parseSizeSpec } from "../../lib/bench/workload.ts";
import { AckWitness } from "../../lib/cache/ack_witness.ts";
import { runCacheWorkload } from "../../lib/cache/cache_workload.ts";
import { ExpectedImage } from "../../lib/cache/expected_image.ts";
import { crc32c } from "../../lib/log/crc32c.ts";
import type { NvmeBackend, NvmeReadCommand, NvmeWriteCommand } from "../../lib/nvme/backend.ts";
import { NvmeController } from "../../lib/nvme/controller.ts";
import { MemoryBackend } from "../../lib/nvme/memory_backend.ts";
import { NvmeHost } from "../../lib/nvme/host.ts";
import { GenericStatusCode, type NvmeStatus, nvmeStatus } from "../../lib/nvme/status.ts";

const capacityBlocks = 256;
const count = 200;

type Order = "ack, then complete" | "complete, then ack" | "ack, then fail";

/**
 * Stands in for the cache service (the real one needs a verbs device and runs in
 * tests/lab/cache_test.ts): an in-memory namespace whose "replica ack" of each write
 * reaches the witness the way the replication layer reports it, in the given order
 * relative to the command's completion.
 */
class ReplicatingBackend implements NvmeBackend {
  readonly #memory = new MemoryBackend(capacityBlocks);
  constructor(readonly order: Order, readonly acks: AckWitness) {}

  async write(cmd: NvmeWriteCommand): Promise<NvmeStatus> {
    const log = { lba: cmd.slba, length: cmd.data.length, crc: crc32c(cmd.data) };
    if (this.order === "complete, then ack") {
      setTimeout(() => this.acks.acked(log), 0); // the replica answers later
      return await this.#memory.write(cmd);
    }
    this.acks.acked(log);
    if (this.order === "ack, then fail") {
      return nvmeStatus(0, GenericStatusCode.internalError, { dnr: true });
    }
    await new Promise((r) => setTimeout(r, 0)); // completions come later, out of order
    return await this.#memory.write(cmd);
  }

  read(cmd: NvmeReadCommand): Promise<NvmeStatus> {
    return this.#memory.read(cmd);
  }

  flush(): Promise<NvmeStatus> {
    return this.#memory.flush();
  }
}

function run(order: Order) {
  const acks = new AckWitness();
  const backend = new ReplicatingBackend(order, acks);
  const host = new NvmeHost(new NvmeController({ backend, capacityBlocks, sqDepth: 32 }));
  return runCacheWorkload({
    host,
    service: { drain: () => Promise.resolve() },
    acks,
    image: new ExpectedImage(capacityBlocks, 5),
    count,
    sizes: parseSizeSpec("4k,16k,64k"),
    depth: 8,
    seed: 5,
    flushEvery: 50,
    verify: false,
    drain: false,
    backingPath: "",
  });
}

Deno.test("the cache workload's order check passes writes completed after their ack", async () => {
  const r = await run("ack, then complete");
  assert.equal(r.writesOk, count);
  assert.equal(r.orderViolations, 0, r.firstViolation ?? "");
});

Deno.test("the cache workload's order check catches every write completed before its ack", async () => {
  const r = await run("complete, then ack");
  assert.equal(r.writesOk, count);
  assert.equal(r.orderViolations, count);
  assert.match(r.firstViolation ?? "", /completed with success at .* before the replica's ack/);
});

Deno.test("the cache workload's order check catches a failed write whose data was acked", async () => {
  const r = await run("ack, then fail");
  assert.equal(r.writesFailed, count);
  assert.equal(r.orderViolations, count);
  assert.match(r.firstViolation ?? "", /failed .* although the replica acked its data/);
});
