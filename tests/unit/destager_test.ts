import assert from "node:assert/strict";
import { BackingStore } from "../../lib/cache/backing_store.ts";
import { BackingStoreError } from "../../lib/cache/backing_store_error.ts";
import { BlockIndex } from "../../lib/cache/block_index.ts";
import { Destager, type ReleasingPrimary } from "../../lib/cache/destager.ts";
import { WriteCache } from "../../lib/cache/write_cache.ts";
import { blockBytes } from "../../lib/block.ts";

const blocks = 128;
const dataBytes = blocks * blockBytes;

function sh(cmd: string, args: string[]): void {
  const out = new Deno.Command(cmd, { args, stdout: "null", stderr: "piped" }).outputSync();
  if (!out.success) {
    throw new Error(`${cmd} ${args.join(" ")}: ${new TextDecoder().decode(out.stderr)}`);
  }
}

/**
 * The de-stager's view of the primary. A real Primary needs a verbs device (a connected
 * replica), so this unit test uses a minimal object with the three members the de-stager
 * uses; the lab test (tests/lab/cache_test.ts) runs it with a real Primary.
 */
function releasingPrimary(): ReleasingPrimary & { released: number[] } {
  const released: number[] = [];
  return {
    released,
    release: (seq) => void released.push(seq),
    get ringReleasedPos() {
      return (released.at(-1) ?? 0) * blockBytes;
    },
    stats: () => ({ nextSeq: 100 }),
  };
}

/** Log `seq` (one block at `lba`) in the ring at (seq - 1) × 4096, bytes = seq. */
function putLog(cache: WriteCache, index: BlockIndex, seq: number, lba: number) {
  const offset = (seq - 1) * blockBytes;
  cache.data.bytes.fill(seq, offset, offset + blockBytes);
  index.update(lba, 1, seq, offset);
  return { seq, lba, blocks: 1, offset, hole: false };
}

Deno.test({
  name:
    "a failing backing store stops de-staging with a BackingStoreError; the failed batch stays queued and a restart de-stages it",
  // A real failing file system: a 64 KiB tmpfs (mounting needs root).
  ignore: Deno.uid() !== 0,
  fn: async (t) => {
    const dir = Deno.makeTempDirSync({ prefix: "rrl-destage-" });
    const mountDir = `${dir}/small`;
    Deno.mkdirSync(mountDir);
    sh("mount", ["-t", "tmpfs", "-o", "size=64k", "tmpfs", mountDir]);
    try {
      // Sparse (larger than the file system), so blocks are allocated by the writes.
      const backingPath = `${mountDir}/backing.img`;
      Deno.writeFileSync(backingPath, new Uint8Array());
      Deno.truncateSync(backingPath, blocks * blockBytes);
      const cachePath = `${dir}/primary.cache`;
      let cache = WriteCache.create({
        path: cachePath,
        role: "primary",
        dataBytes,
        metaSlots: blocks,
      });
      let backing = BackingStore.open({ path: backingPath, capacityBlocks: blocks });
      const index = new BlockIndex(blocks);
      const primary = releasingPrimary();
      const open = () =>
        new Destager({ cache, backing, index, primary, queueMax: blocks, keepBytes: 0 });
      let destager = open();

      await t.step("8 blocks de-stage on the healthy file system", async () => {
        for (let seq = 1; seq <= 8; seq++) destager.add(putLog(cache, index, seq, seq - 1));
        await destager.until(8);
        assert.equal(destager.destagedSeq, 8);
        assert.deepEqual(primary.released, [8]);
      });

      let failure: BackingStoreError | undefined;
      await t.step("the next batch fills the file system: ENOSPC at an LBA", async () => {
        // 72 logs: a batch of 64, and 8 that stay queued behind it.
        for (let seq = 9; seq <= 80; seq++) destager.add(putLog(cache, index, seq, seq - 1));
        failure = await destager.until(80).then(
          () => assert.fail("until(80) resolved on a full file system"),
          (error) => error,
        );
        assert.ok(failure instanceof BackingStoreError, `a BackingStoreError, got ${failure}`);
        assert.equal(failure.call, "pwrite");
        assert.equal(failure.path, backingPath);
        assert.equal(failure.errnoName, "ENOSPC");
        // 16 pages fit: LBAs 0..15; the write of LBA 16 finds no room.
        assert.equal(failure.lba, 16);
        assert.match(failure.message, /pwrite failed: ENOSPC .* at LBA 16 of .*backing\.img/);
      });

      await t.step("nothing past the failure is released or forgotten", async () => {
        // A timer fires: no endless microtask loop holds the event loop.
        await new Promise((r) => setTimeout(r, 20));
        assert.equal(destager.failure, failure);
        assert.equal(destager.destagedSeq, 8);
        assert.equal(destager.stats.destagedSeq, 8);
        assert.equal(destager.stats.pending, 72, "the failed batch is still queued");
        assert.equal(cache.header.destagedSeq, 8);
        assert.deepEqual(primary.released, [8]);
        assert.equal(cache.header.releasedPos, 8 * blockBytes);
        for (let lba = 8; lba < 80; lba++) {
          assert.equal(
            index.offsetOf(lba),
            lba * blockBytes,
            `LBA ${lba} is still read from the cache`,
          );
        }
      });

      await t.step("later waiters reject at once; a later add() queues", async () => {
        await assert.rejects(destager.until(9), (error) => error === failure);
        destager.add(putLog(cache, index, 81, 80)); // an ack handled after the failure
        assert.equal(destager.stats.pending, 73);
        await assert.rejects(destager.until(81), (error) => error === failure);
        await destager.stop();
      });

      await t.step(
        "a restart on a healthy (larger) file system de-stages what was left",
        async () => {
          backing.close();
          cache.close();
          sh("mount", ["-o", "remount,size=1m", mountDir]);
          cache = WriteCache.open({
            path: cachePath,
            role: "primary",
            dataBytes,
            metaSlots: blocks,
          });
          backing = BackingStore.open({ path: backingPath, capacityBlocks: blocks });
          assert.equal(cache.header.destagedSeq, 8);
          destager = open();
          for (let seq = 9; seq <= 81; seq++) destager.add(putLog(cache, index, seq, seq - 1));
          await destager.until(81);
          assert.equal(cache.header.destagedSeq, 81);
          const block = new Uint8Array(blockBytes);
          for (let lba = 0; lba < 81; lba++) {
            backing.read(lba, block);
            assert.ok(block.every((b) => b === lba + 1), `LBA ${lba} holds log ${lba + 1}`);
          }
          await destager.stop();
          backing.close();
          cache.close();
        },
      );
    } finally {
      sh("umount", [mountDir]);
      Deno.removeSync(dir, { recursive: true });
    }
  },
});
