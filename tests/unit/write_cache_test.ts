import assert from "node:assert/strict";
import { headerCopyOffsets } from "../../lib/cache/cache_file.ts";
import { WriteCache } from "../../lib/cache/write_cache.ts";
import { blockBytes } from "../../lib/block.ts";
import { crc32c } from "../../lib/log/crc32c.ts";
import { emptyRecord, type LogRecord, RecordFlags } from "../../lib/log/record.ts";
import { Prng } from "../../lib/prng.ts";
import { propertySeed } from "../../lib/testing/property.ts";

const KiB = 1024;
const dataBytes = 64 * KiB;
const metaSlots = 8;
/** How long the crash test waits for its child to report, in milliseconds. */
const childReadyTimeoutMs = 20_000;

/** Temp dir on the default file system, and one in /dev/shm (tmpfs) when it exists. */
function testDirs(): string[] {
  const dirs = [Deno.makeTempDirSync({ prefix: "rrl-cache-" })];
  try {
    dirs.push(Deno.makeTempDirSync({ dir: "/dev/shm", prefix: "rrl-cache-" }));
  } catch { /* no /dev/shm: the temp dir alone */ }
  return dirs;
}

/** Writes seq's data (4096 bytes at a ring offset derived from seq) and its record. */
function putLog(cache: WriteCache, seq: number, prng: Prng, flags = 0): LogRecord {
  const dataOffset = ((seq - 1) * blockBytes) % cache.data.length;
  const bytes = cache.data.bytes.subarray(dataOffset, dataOffset + blockBytes);
  prng.fill(bytes);
  const dataCrc = flags === RecordFlags.SKIP ? 0 : crc32c(bytes);
  const record = {
    ...emptyRecord(),
    flags,
    seq,
    dataOffset,
    dataLength: blockBytes,
    dataCrc,
    lba: seq,
  };
  cache.persistData(dataOffset, blockBytes);
  cache.writeRecord(seq, record);
  cache.persistRecord(seq);
  return record;
}

function create(path: string, role: "primary" | "replica" = "replica"): WriteCache {
  return WriteCache.create({ path, dataBytes, metaSlots, role, overwrite: true });
}

function flipByte(path: string, offset: number): void {
  const bytes = Deno.readFileSync(path);
  bytes[offset] ^= 0x40;
  Deno.writeFileSync(path, bytes);
}

Deno.test("write cache files are created, reopened and refused with typed reasons", async (t) => {
  for (const dir of testDirs()) {
    const path = `${dir}/replica.cache`;
    await t.step(`${dir}: create, then open bumps the generation`, () => {
      using cache = WriteCache.create({ path, dataBytes, metaSlots, role: "replica" });
      assert.equal(cache.header.generation, 1);
      assert.equal(cache.data.length, dataBytes);
      assert.equal(cache.data.address % blockBytes, 0);
      assert.equal(cache.metaView.byteLength, metaSlots * 64);
      assert.equal(cache.mapSync, false);
      assert.equal(Deno.statSync(path).size, 8192 + dataBytes);
      cache.close();
      cache.close(); // idempotent
      assert.throws(() => cache.scan(), { name: "ResourceError" });
      for (const generation of [2, 3]) {
        using again = WriteCache.open({ path, role: "replica", dataBytes, metaSlots });
        assert.equal(again.header.generation, generation);
      }
    });
    await t.step(`${dir}: refusals`, () => {
      const refuses = (fn: () => unknown, reason: string, message: RegExp) =>
        assert.throws(fn, { name: "CacheFileError", reason, message });
      refuses(
        () => WriteCache.create({ path, dataBytes, metaSlots, role: "replica" }),
        "EXISTS",
        /Cannot create .*it exists; open it with WriteCache.open, or pass overwrite: true/,
      );
      refuses(() => WriteCache.open({ path: `${path}.x`, role: "replica" }), "NOT_FOUND", /create/);
      refuses(() => WriteCache.open({ path, role: "primary" }), "ROLE", /replica's write cache/);
      refuses(
        () => WriteCache.open({ path, role: "replica", dataBytes: 2 * dataBytes }),
        "GEOMETRY",
        /dataBytes 131072 asked, 65536 in the file/,
      );
      {
        using held = WriteCache.open({ path, role: "replica" });
        refuses(() => WriteCache.open({ path, role: "replica" }), "BUSY", /close that first/);
        assert.ok(held.header.generation > 1);
      }
      Deno.writeFileSync(`${dir}/foreign`, new TextEncoder().encode("x".repeat(9000)));
      refuses(
        () => WriteCache.open({ path: `${dir}/foreign`, role: "replica" }),
        "FOREIGN",
        /not a write cache/,
      );
      Deno.truncateSync(path, 8192 + dataBytes + 4096);
      refuses(
        () => WriteCache.open({ path, role: "replica" }),
        "SIZE",
        /77824 bytes but its header describes 73728/,
      );
      Deno.truncateSync(path, 8192 + dataBytes);
    });
    await t.step(`${dir}: a torn header copy falls back; both torn is TORN_HEADER`, () => {
      create(path).close(); // copy 0 written, copy 1 empty
      flipByte(path, headerCopyOffsets[0] + 20);
      assert.throws(() => WriteCache.open({ path, role: "replica" }), { reason: "TORN_HEADER" });
      create(path).close();
      WriteCache.open({ path, role: "replica" }).close(); // generation 2 in copy 1
      flipByte(path, headerCopyOffsets[1] + 50);
      using cache = WriteCache.open({ path, role: "replica" });
      assert.equal(cache.header.generation, 2, "copy 0 (generation 1) was used, then bumped");
      cache.close();
      flipByte(path, headerCopyOffsets[0] + 60);
      flipByte(path, headerCopyOffsets[1] + 60);
      assert.throws(() => WriteCache.open({ path, role: "replica" }), /torn or corrupt/);
    });
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("records and header fields persist; scan trusts only whole logs", async (t) => {
  const seed = propertySeed();
  const prng = new Prng(seed);
  for (const dir of testDirs()) {
    const path = `${dir}/primary.cache`;
    await t.step(`${dir}: persisted records survive close and reopen (seed ${seed})`, () => {
      const written: LogRecord[] = [];
      {
        using cache = create(path, "primary");
        for (let seq = 1; seq <= 5; seq++) written.push(putLog(cache, seq, prng));
        written.push(putLog(cache, 6, prng, RecordFlags.SKIP));
        cache.persistHeader({ nextSeq: 7, releasedPos: blockBytes });
      }
      using cache = WriteCache.open({ path, role: "primary" });
      assert.equal(cache.header.nextSeq, 7);
      const out = emptyRecord();
      assert.ok(cache.readRecord(3, out));
      assert.deepEqual(out, written[2]);
      assert.equal(cache.readRecord(11, out), false, "slot 3 holds seq 3, not 11");
      const scan = cache.scan();
      assert.deepEqual(scan.logs, written);
      assert.ok(scan.contiguous && scan.highestSeq === 6 && scan.refused.length === 0);
    });
    await t.step(`${dir}: torn data, a torn record and a misplaced record are refused`, () => {
      using cache = WriteCache.open({ path, role: "primary" });
      cache.data.bytes[2 * blockBytes + 100] ^= 1; // seq 3's data changed after its record
      cache.metaView.setUint8(cache.slotOffset(5) + 30, 0xee); // seq 5's record CRC broken
      new Uint8Array(cache.metaView.buffer).copyWithin(7 * 64, 1 * 64, 2 * 64); // seq 1 in slot 7
      const scan = cache.scan();
      assert.deepEqual(scan.refused, [
        { slot: 3, seq: 3, reason: "DATA_CRC_MISMATCH" },
        { slot: 5, seq: -1, reason: "BAD_RECORD_CRC" },
        { slot: 7, seq: 1, reason: "WRONG_SLOT" },
      ]);
      assert.deepEqual(scan.logs.map((r) => r.seq), [6], "the run ends at 6 and 5 is gone");
      assert.deepEqual(scan.stranded, [1, 2, 4]);
      assert.equal(scan.contiguous, false);
    });
    await t.step(`${dir}: destaged logs are skipped and free their slots`, () => {
      using cache = create(path, "primary");
      for (let seq = 1; seq <= metaSlots; seq++) putLog(cache, seq, prng);
      assert.throws(
        () => putLog(cache, metaSlots + 1, prng),
        /slot still holds seq 1, not destaged/,
      );
      cache.persistHeader({ destagedSeq: 3, nextSeq: metaSlots + 1 });
      for (let seq = metaSlots + 1; seq <= metaSlots + 3; seq++) putLog(cache, seq, prng);
      const scan = cache.scan();
      assert.deepEqual(scan.logs.map((r) => r.seq), [4, 5, 6, 7, 8, 9, 10, 11]);
      assert.ok(scan.contiguous);
      assert.throws(() => cache.persistHeader({ destagedSeq: 2 }), /pass a safe integer ≥ 3/);
      assert.throws(() => cache.persistHeader({ releasedPos: 100 }), /multiple of 4096/);
    });
    await t.step(`${dir}: bad records and ranges are refused before they touch the file`, () => {
      using cache = create(path, "primary");
      const record = { ...emptyRecord(), seq: 2, dataOffset: 0, dataLength: blockBytes };
      assert.throws(() => cache.writeRecord(1, record), /record of seq 2 as seq 1/);
      assert.throws(
        () => cache.writeRecord(2, { ...record, flags: RecordFlags.RELEASE }),
        /NOP or RELEASE/,
      );
      assert.throws(() => cache.writeRecord(2, { ...record, dataOffset: dataBytes }), /inside/);
      assert.throws(() => cache.persistData(dataBytes - blockBytes, 8192), RangeError);
      assert.throws(() => cache.slotOffset(0), /seq 0: pass a safe integer ≥ 1/);
      assert.equal(cache.slotOffset(metaSlots + 3), 3 * 64);
    });
    Deno.removeSync(dir, { recursive: true });
  }
});

const childScript = `
import { WriteCache } from ${
  JSON.stringify(new URL("../../lib/cache/write_cache.ts", import.meta.url).href)
};
import { crc32c } from ${JSON.stringify(new URL("../../lib/log/crc32c.ts", import.meta.url).href)};
import { emptyRecord } from ${
  JSON.stringify(new URL("../../lib/log/record.ts", import.meta.url).href)
};
const [path, count] = [Deno.args[0], Number(Deno.args[1])];
const cache = WriteCache.open({ path, role: "replica" });
const put = (seq, torn) => {
  const dataOffset = (seq - 1) * 4096;
  const bytes = new Uint8Array(4096).fill(seq);
  const record = { ...emptyRecord(), seq, dataOffset, dataLength: 4096, dataCrc: crc32c(bytes) };
  cache.data.bytes.set(torn ? bytes.subarray(0, 2048) : bytes, dataOffset);
  if (!torn) cache.persistData(dataOffset, 4096);
  cache.writeRecord(seq, record);
  cache.persistRecord(seq);
};
for (let seq = 1; seq <= count; seq++) put(seq, false);
put(count + 1, true); // the record of a transfer that never finished
await Deno.stdout.write(new TextEncoder().encode("ready\\n"));
setTimeout(() => {}, 60_000); // killed long before
`;

Deno.test("a writer killed with SIGKILL leaves exactly its whole logs", async (t) => {
  for (const dir of testDirs()) {
    await t.step(dir, async () => {
      const path = `${dir}/replica.cache`;
      create(path).close();
      const script = `${dir}/child.ts`;
      Deno.writeTextFileSync(script, childScript);
      const child = new Deno.Command(Deno.execPath(), {
        args: ["run", "-A", "--no-check", script, path, "5"],
        stdout: "piped",
        stderr: "inherit",
      }).spawn();
      const reader = child.stdout.getReader();
      let text = "";
      const deadline = Date.now() + childReadyTimeoutMs;
      while (!text.includes("ready") && Date.now() < deadline) {
        const { value, done } = await reader.read();
        if (done) break;
        text += new TextDecoder().decode(value);
      }
      try {
        child.kill("SIGKILL");
      } catch { /* it already exited: the asserts below say how */ }
      reader.releaseLock();
      await child.stdout.cancel();
      const status = await child.status;
      assert.ok(text.includes("ready"), `child did not report: ${text}`);
      assert.equal(status.signal, "SIGKILL");
      using cache = WriteCache.open({ path, role: "replica" });
      const scan = cache.scan();
      assert.deepEqual(scan.logs.map((r) => r.seq), [1, 2, 3, 4, 5]);
      assert.deepEqual(scan.refused, [{ slot: 6, seq: 6, reason: "DATA_CRC_MISMATCH" }]);
      assert.equal(cache.header.generation, 3, "create, the child, this open");
    });
    Deno.removeSync(dir, { recursive: true });
  }
});
