import assert from "node:assert/strict";
import { BackingStore } from "../../lib/cache/backing_store.ts";
import { blockBytes } from "../../lib/block.ts";
import { WriteCache } from "../../lib/cache/write_cache.ts";
import { Prng } from "../../lib/prng.ts";
import { propertySeed } from "../../lib/testing/property.ts";

const capacityBlocks = 64;

/** Temp dir on the default file system, and one in /dev/shm (tmpfs) when it exists. */
function testDirs(): string[] {
  const dirs = [Deno.makeTempDirSync({ prefix: "rrl-store-" })];
  try {
    dirs.push(Deno.makeTempDirSync({ dir: "/dev/shm", prefix: "rrl-store-" }));
  } catch { /* no /dev/shm: the temp dir alone */ }
  return dirs;
}

Deno.test("backing store writes and reads blocks at LBAs and keeps them across reopen", async (t) => {
  const seed = propertySeed();
  const prng = new Prng(seed);
  for (const dir of testDirs()) {
    const path = `${dir}/store.img`;
    const expected = new Map<number, Uint8Array>();
    await t.step(`${dir}: random writes read back (seed ${seed})`, () => {
      using store = BackingStore.open({ path, capacityBlocks, create: true });
      assert.equal(store.kind, "file");
      assert.equal(Deno.statSync(path).size, capacityBlocks * blockBytes);
      for (let i = 0; i < 50; i++) {
        const blocks = prng.int(1, 4);
        const lba = prng.int(0, capacityBlocks - blocks);
        const bytes = prng.fill(new Uint8Array(blocks * blockBytes));
        store.write(lba, bytes);
        for (let b = 0; b < blocks; b++) {
          expected.set(lba + b, bytes.slice(b * blockBytes, (b + 1) * blockBytes));
        }
      }
      store.sync();
      const into = new Uint8Array(blockBytes);
      for (const [lba, bytes] of expected) {
        store.read(lba, into);
        assert.deepEqual(into, bytes, `LBA ${lba}`);
      }
    });
    await t.step(`${dir}: the blocks survive close and reopen`, () => {
      using store = BackingStore.open({ path, capacityBlocks });
      const all = new Uint8Array(capacityBlocks * blockBytes);
      store.read(0, all);
      for (let lba = 0; lba < capacityBlocks; lba++) {
        const want = expected.get(lba) ?? new Uint8Array(blockBytes);
        assert.deepEqual(all.subarray(lba * blockBytes, (lba + 1) * blockBytes), want);
      }
    });
    await t.step(`${dir}: a log destages from the write cache's data ring`, () => {
      using cache = WriteCache.create({
        path: `${dir}/cache`,
        dataBytes: 64 * 1024,
        metaSlots: 4,
        role: "primary",
      });
      prng.fill(cache.data.bytes.subarray(8192, 16384));
      using store = BackingStore.open({ path, capacityBlocks });
      store.writeFrom(10, cache.data.address + 8192, 8192);
      store.sync();
      const back = new Uint8Array(8192);
      store.read(10, back);
      assert.deepEqual(back, cache.data.bytes.subarray(8192, 16384));
    });
    await t.step(`${dir}: out-of-range and malformed transfers are RangeErrors`, () => {
      using store = BackingStore.open({ path, capacityBlocks });
      const block = new Uint8Array(blockBytes);
      assert.throws(() => store.write(capacityBlocks, block), {
        name: "RangeError",
        message: /1 blocks at LBA 64: pass lba ≥ 0 with lba \+ blocks ≤ 64/,
      });
      assert.throws(
        () => store.write(capacityBlocks - 1, new Uint8Array(2 * blockBytes)),
        RangeError,
      );
      assert.throws(() => store.read(-1, block), RangeError);
      assert.throws(() => store.read(0.5, block), RangeError);
      assert.throws(
        () => store.write(0, new Uint8Array(100)),
        /100 bytes: pass a positive multiple/,
      );
      assert.throws(() => store.writeFrom(0, 0, blockBytes), /pass a mapped address/);
      store.close();
      store.close();
      assert.throws(() => store.sync(), { name: "ResourceError" });
    });
    await t.step(`${dir}: opening checks the path and the capacity`, () => {
      assert.throws(
        () => BackingStore.open({ path: `${dir}/none`, capacityBlocks }),
        /pass create: true/,
      );
      assert.throws(
        () => BackingStore.open({ path, capacityBlocks: 2 * capacityBlocks }),
        /holds 262144 bytes, 524288 needed; pass a capacity ≤ 64 blocks or create: true/,
      );
      BackingStore.open({ path, capacityBlocks: capacityBlocks / 2 }).close(); // larger is fine
      BackingStore.open({ path, capacityBlocks: 2 * capacityBlocks, create: true }).close();
      assert.equal(Deno.statSync(path).size, 2 * capacityBlocks * blockBytes);
      assert.throws(() => BackingStore.open({ path, capacityBlocks: 0 }), /from 1 to 2\^40/);
      assert.throws(
        () => BackingStore.open({ path: dir, capacityBlocks }),
        /regular file or a block/,
      );
    });
    Deno.removeSync(dir, { recursive: true });
  }
});
