import assert from "node:assert/strict";
import {
  cacheGeometry,
  type CacheHeader,
  checkHeader,
  decodeHeaderCopy,
  decodeHeaderPage,
  encodeHeader,
  headerCopyOffsets,
  headerPageBytes,
  HeaderReason,
  newHeader,
} from "../../lib/cache/cache_file.ts";
import {
  daxCapable,
  fileSystemName,
  fileSystemOf,
  openFd,
  registrationAdvice,
} from "../../lib/cache/fs_kind.ts";
import { libc, O_CLOEXEC, O_RDWR } from "../../ffi/libc.ts";
import type { Prng } from "../../lib/prng.ts";
import { forAllSeeds } from "../../lib/testing/property.ts";
import { blockBytes } from "../../lib/block.ts";

const KiB = 1024;

function randomHeader(prng: Prng): CacheHeader {
  const geometry = cacheGeometry(prng.int(16, 4096) * 4 * KiB, prng.int(1, 65_536));
  return {
    ...newHeader(prng.chance(0.5) ? "primary" : "replica", geometry),
    generation: prng.int(1, Number.MAX_SAFE_INTEGER),
    updateCount: prng.int(1, Number.MAX_SAFE_INTEGER),
    destagedSeq: prng.int(0, 2 ** 40),
    releasedPos: prng.int(0, 2 ** 40) * blockBytes,
    nextSeq: prng.int(1, Number.MAX_SAFE_INTEGER),
  };
}

function page(): DataView {
  return new DataView(new ArrayBuffer(headerPageBytes));
}

Deno.test("cache geometry puts the data ring page-aligned after the metadata ring", async (t) => {
  const cases: [number, number][] = [[1, 8192], [64, 8192], [65, 12288], [
    65_536,
    blockBytes + (4 << 20),
  ]];
  for (const [metaSlots, dataOffset] of cases) {
    await t.step(`${metaSlots} slots`, () => {
      const g = cacheGeometry(64 * KiB, metaSlots);
      assert.deepEqual(g, {
        dataBytes: 64 * KiB,
        metaSlots,
        metaOffset: blockBytes,
        dataOffset,
        fileBytes: dataOffset + 64 * KiB,
      });
    });
  }
  await t.step("bad geometry is a RangeError that says what to pass", () => {
    assert.throws(() => cacheGeometry(1000, 8), /pass a multiple of 4096 from 65536/);
    assert.throws(() => cacheGeometry(2 ** 31, 8), /1 GiB/);
    assert.throws(() => cacheGeometry(64 * KiB, 0), /pass 1 to 65536/);
    assert.throws(() => cacheGeometry(64 * KiB, 65_537), /pass 1 to 65536/);
  });
});

Deno.test("header copies round-trip and sit where docs/protocol.md says", async (t) => {
  await t.step("random headers decode to themselves", () => {
    forAllSeeds("header round trip", (prng) => {
      const header = randomHeader(prng);
      const view = page();
      const at = prng.pick(headerCopyOffsets);
      encodeHeader(view, at, header);
      const read = decodeHeaderCopy(view, at);
      assert.equal(read.reason, HeaderReason.OK);
      assert.deepEqual("header" in read && read.header, header);
    }, { runs: 200 });
  });
  await t.step("byte layout", () => {
    const view = page();
    const h = { ...newHeader("replica", cacheGeometry(64 * KiB, 16)), destagedSeq: 7 };
    encodeHeader(view, 0, h);
    assert.deepEqual([...new Uint8Array(view.buffer, 0, 4)], [0x52, 0x52, 0x57, 0x43]); // RRWC
    assert.equal(view.getUint16(4, true), 1);
    assert.equal(view.getUint8(6), 2);
    assert.equal(view.getUint32(8, true), 16);
    assert.equal(view.getUint32(16, true), 64 * KiB);
    assert.equal(view.getUint32(24, true), blockBytes);
    assert.equal(view.getUint32(32, true), 8192);
    assert.equal(view.getUint32(40, true), 8192 + 64 * KiB);
    assert.equal(view.getUint32(64, true), 7);
    assert.equal(view.getUint32(80, true), 1);
  });
});

Deno.test("a header page yields its newest valid copy or a typed refusal", async (t) => {
  const base = newHeader("primary", cacheGeometry(64 * KiB, 8));
  await t.step("the copy with the higher updateCount wins", () => {
    const view = page();
    encodeHeader(view, headerCopyOffsets[0], { ...base, updateCount: 5, destagedSeq: 5 });
    encodeHeader(view, headerCopyOffsets[1], { ...base, updateCount: 6, destagedSeq: 6 });
    const read = decodeHeaderPage(view);
    assert.ok(read.ok && read.copy === 1 && read.header.destagedSeq === 6 && read.otherValid);
  });
  await t.step("a torn newest copy falls back to the older one", () => {
    forAllSeeds("torn copy", (prng) => {
      const view = page();
      encodeHeader(view, headerCopyOffsets[0], { ...base, updateCount: 5 });
      encodeHeader(view, headerCopyOffsets[1], { ...base, updateCount: 6 });
      const at = headerCopyOffsets[1] + prng.int(0, 127);
      view.setUint8(at, view.getUint8(at) ^ (1 << prng.int(0, 7)));
      const read = decodeHeaderPage(view);
      assert.ok(read.ok && read.copy === 0 && !read.otherValid);
    }, { runs: 100 });
  });
  await t.step("refusals: foreign, version, torn, bad field", () => {
    assert.deepEqual(decodeHeaderPage(page()), {
      ok: false,
      reason: "FOREIGN",
      detail: "header copies: BAD_MAGIC, BAD_MAGIC",
    });
    const view = page();
    encodeHeader(view, 0, base);
    view.setUint16(4, 2, true);
    const version = decodeHeaderPage(view);
    assert.ok(!version.ok && version.reason === "VERSION");
    encodeHeader(view, 0, base);
    view.setUint8(100, 1); // a reserved byte: the CRC no longer checks
    assert.equal(decodeHeaderCopy(view, 0).reason, HeaderReason.BAD_CRC);
    const read = decodeHeaderPage(view);
    assert.ok(!read.ok && read.reason === "TORN_HEADER");
    encodeHeader(view, 0, { ...base, dataOffset: blockBytes }); // sealed, but inconsistent
    assert.equal(decodeHeaderCopy(view, 0).reason, HeaderReason.BAD_FIELD);
  });
  await t.step("role, geometry and size are checked with messages saying what to do", () => {
    const path = "/x/cache";
    const fileBytes = base.fileBytes;
    assert.throws(
      () => checkHeader(path, base, { role: "replica", fileBytes }),
      {
        name: "CacheFileError",
        reason: "ROLE",
        message: /primary's write cache, not the replica's/,
      },
    );
    assert.throws(
      () => checkHeader(path, base, { role: "primary", metaSlots: 16, fileBytes }),
      { reason: "GEOMETRY", message: /metaSlots 16 asked, 8 in the file.*overwrite: true/ },
    );
    assert.throws(
      () => checkHeader(path, base, { role: "primary", fileBytes: fileBytes + blockBytes }),
      { reason: "SIZE", message: /truncated or extended/ },
    );
    checkHeader(path, base, { role: "primary", dataBytes: 64 * KiB, metaSlots: 8, fileBytes });
  });
});

/** The file system type of `path` as `stat -f` prints it (hex), an independent reading. */
async function statFsType(path: string): Promise<number> {
  const out = await new Deno.Command("stat", { args: ["-f", "-c", "%t", path] }).output();
  assert.ok(out.success, `stat -f failed on ${path}`);
  return parseInt(new TextDecoder().decode(out.stdout).trim(), 16);
}

Deno.test("fs_kind names file systems, probes MAP_SYNC and gives registration advice", async (t) => {
  const dir = Deno.makeTempDirSync({ prefix: "rrl-fs-" });
  try {
    await t.step("the temp dir's file system agrees with stat -f", async () => {
      assert.equal(fileSystemOf(dir), fileSystemName(await statFsType(dir)));
    });
    await t.step({
      name: "/dev/shm is tmpfs and does not map with MAP_SYNC",
      ignore: !exists("/dev/shm"),
      fn: () => {
        assert.equal(fileSystemOf("/dev/shm"), "tmpfs");
        const path = `/dev/shm/rrl-dax-probe-${Deno.pid}`;
        Deno.writeFileSync(path, new Uint8Array(8192));
        const fd = openFd(path, O_RDWR | O_CLOEXEC);
        try {
          assert.ok(fd >= 0);
          assert.equal(daxCapable(fd, 8192), false);
        } finally {
          libc.symbols.close(fd);
          Deno.removeSync(path);
        }
      },
    });
    await t.step("statfs errors name the call and the path", () => {
      assert.throws(() => fileSystemOf(`${dir}/missing/x`), /statfs failed: ENOENT.*missing/);
      assert.throws(() => fileSystemOf(""), TypeError);
    });
    await t.step("advice fits the file system", () => {
      assert.match(
        registrationAdvice("ext4"),
        /^put the write cache on \/dev\/shm.*ext4 page-cache/,
      );
      assert.match(registrationAdvice("tmpfs"), /can be pinned.*ulimit -l/);
      assert.match(registrationAdvice("xfs", { dax: true }), /fs-DAX.*IBV_ACCESS_ON_DEMAND/);
      assert.equal(fileSystemName(0x12345678), "unknown(0x12345678)");
    });
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

function exists(path: string): boolean {
  try {
    Deno.statSync(path);
    return true;
  } catch {
    return false;
  }
}
