import assert from "node:assert/strict";
import {
  DataFiller,
  parseBytes,
  parseLbaPattern,
  parseSizeSpec,
  plannedOp,
  readStamp,
  WorkloadPlan,
} from "../../lib/bench/workload.ts";
import { forAllSeeds } from "../../lib/testing/property.ts";
import { blockBytes } from "../../lib/block.ts";

const KiB = 1024;
const MiB = 1024 * KiB;

Deno.test("size specs parse into sizes and weights", async (t) => {
  const cases: [string, number[], number[]][] = [
    ["4k", [4 * KiB], [1]],
    ["4096", [4096], [1]],
    ["16m", [16 * MiB], [1]],
    ["4k,64k,256k", [4 * KiB, 64 * KiB, 256 * KiB], [1, 1, 1]],
    [" 4K , 1M ", [4 * KiB, MiB], [1, 1]],
    ["4k:60,64k:30,256k:10", [4 * KiB, 64 * KiB, 256 * KiB], [60, 30, 10]],
  ];
  for (const [spec, sizes, weights] of cases) {
    await t.step(spec, () => assert.deepEqual(parseSizeSpec(spec), { sizes, weights }));
  }
});

Deno.test("every bad size spec is refused with a message naming the token and the rule", async (t) => {
  const cases: [string, RegExp][] = [
    ["", /size spec is empty/],
    ["  ", /size spec is empty/],
    ["4x", /Size '4x' in '4x' is not bytes with an optional k or m suffix/],
    ["-4k", /Size '-4k'.*not bytes/],
    ["4.5k", /Size '4.5k'.*not bytes/],
    ["2k", /Size '2k' in '2k' is outside 4k\.\.16m/],
    ["32m", /Size '32m' in '32m' is outside 4k\.\.16m/],
    ["0", /Size '0'.*outside/],
    ["6k", /Size '6k' in '6k' is not a multiple of 4096 bytes/],
    ["4k,,8k", /'4k,,8k' has an empty entry/],
    ["4k,", /'4k,' has an empty entry/],
    ["4k:60,64k", /mixes weighted and unweighted entries/],
    ["4k:1:2", /Entry '4k:1:2' in '4k:1:2' has two ':'/],
    ["4k,4096", /Size '4096' appears twice in '4k,4096'/],
    ["4k:0", /Weight '0' of '4k:0' in '4k:0' is not an integer 1\.\.1000000/],
    ["4k:1.5", /Weight '1.5'.*not an integer/],
    ["4k:abc", /Weight 'abc'.*not an integer/],
    ["4k:", /Weight ''.*not an integer/],
    ["4k:2000000", /Weight '2000000'.*not an integer/],
    [Array.from({ length: 33 }, (_, i) => `${4 * (i + 1)}k`).join(","), /33 entries: at most 32/],
  ];
  for (const [spec, message] of cases) {
    await t.step(JSON.stringify(spec), () => {
      assert.throws(
        () => parseSizeSpec(spec),
        (e) => e instanceof RangeError && message.test(e.message),
      );
    });
  }
});

Deno.test("byte counts for options take k, m, g, t suffixes and refuse anything else", () => {
  assert.equal(parseBytes("4096", "--ring"), 4096);
  assert.equal(parseBytes("16m", "--ring"), 16 * MiB);
  assert.equal(parseBytes("1G", "--lba-space"), 1024 * MiB);
  assert.equal(parseBytes("2t", "--lba-space"), 2 * 1024 ** 4);
  for (const bad of ["", "0", "1.5m", "-1", "4x", "m", "99999999999999999"]) {
    assert.throws(
      () => parseBytes(bad, "--ring"),
      new RegExp(`--ring '${bad}' is not a byte count ≥ 1 with a k, m, g or t suffix`),
    );
  }
});

Deno.test("LBA patterns parse, and bad ones are refused", async (t) => {
  assert.deepEqual(parseLbaPattern("seq"), { kind: "seq" });
  assert.deepEqual(parseLbaPattern("random"), { kind: "random" });
  assert.deepEqual(parseLbaPattern("hot:10"), {
    kind: "hot",
    hotPercent: 10,
    hotWritesPercent: 90,
  });
  assert.deepEqual(parseLbaPattern("hot:5:99"), {
    kind: "hot",
    hotPercent: 5,
    hotWritesPercent: 99,
  });
  const cases: [string, RegExp][] = [
    ["zipf", /Unknown LBA pattern 'zipf': use seq, random or hot:PCT/],
    ["hot", /Unknown LBA pattern 'hot'/],
    ["hot:1:2:3", /Unknown LBA pattern/],
    ["hot:", /hot-set size '' in 'hot:' is not a percentage above 0 and below 100/],
    ["hot:0", /hot-set size '0'/],
    ["hot:100", /hot-set size '100'/],
    ["hot:x", /hot-set size 'x'/],
    ["hot:10:0", /share of writes '0' in 'hot:10:0'/],
  ];
  for (const [spec, message] of cases) {
    await t.step(spec, () => {
      assert.throws(
        () => parseLbaPattern(spec),
        (e) => e instanceof RangeError && message.test(e.message),
      );
    });
  }
});

function plan(sizes: string, pattern: string, lbaBlocks: number, seed: number) {
  return new WorkloadPlan({
    sizes: parseSizeSpec(sizes),
    pattern: parseLbaPattern(pattern),
    lbaBlocks,
    seed,
  });
}

Deno.test("a weighted mix is drawn in its proportions (seed 7, 100,000 ops, ±1%)", () => {
  const p = plan("4k:60,64k:30,256k:10", "random", 1 << 20, 7);
  const counts = new Map<number, number>();
  const op = plannedOp();
  const n = 100_000;
  for (let i = 0; i < n; i++) {
    p.next(op);
    counts.set(op.bytes, (counts.get(op.bytes) ?? 0) + 1);
  }
  for (const [bytes, share] of [[4 * KiB, 0.6], [64 * KiB, 0.3], [256 * KiB, 0.1]]) {
    const seen = (counts.get(bytes) ?? 0) / n;
    assert.ok(Math.abs(seen - share) < 0.01, `${bytes} bytes: ${seen} of ops, expected ${share}`);
  }
  assert.equal(p.produced, n);
});

Deno.test("the hot pattern sends 90% of writes to the first 10% of the space (seed 3, ±1%)", () => {
  const space = 100_000;
  const p = plan("4k", "hot:10", space, 3);
  const op = plannedOp();
  let hot = 0;
  for (let i = 0; i < 100_000; i++) if (p.next(op).lba < space / 10) hot++;
  assert.ok(Math.abs(hot / 100_000 - 0.9) < 0.01, `${hot} of 100000 writes were hot`);
});

Deno.test("sequential LBAs advance by the op's blocks and wrap", () => {
  const p = plan("4k,8k", "seq", 5, 1);
  const op = plannedOp();
  let expected = 0;
  for (let i = 0; i < 100; i++) {
    p.next(op);
    if (expected + op.bytes / blockBytes > 5) expected = 0;
    assert.equal(op.lba, expected, `op ${i}`);
    assert.equal(op.seq, i);
    expected += op.bytes / blockBytes;
  }
});

Deno.test("every pattern keeps writes inside the LBA space", () => {
  const patterns = ["seq", "random", "hot:10", "hot:50:50", "hot:0.001"];
  forAllSeeds("LBAs in range", (prng) => {
    const space = prng.int(4096, 1 << 22);
    const pattern = prng.pick(patterns);
    const p = plan("4k,64k,16m", pattern, space, prng.u32());
    const op = plannedOp();
    for (let i = 0; i < 2000; i++) {
      p.next(op);
      const end = op.lba + op.bytes / blockBytes;
      if (!Number.isInteger(op.lba) || op.lba < 0 || end > space) {
        throw new Error(`${pattern}, space ${space}: op ${i} at ${op.lba} + ${op.bytes} B`);
      }
    }
  }, { runs: 50 });
});

Deno.test("the plan validates its LBA space", () => {
  assert.throws(() => plan("64k", "seq", 15, 1), /LBA space of 15 blocks cannot hold.*16 blocks/);
  assert.throws(() => plan("4k", "seq", 2 ** 49, 1), /from 1 to 2\^48/);
  assert.throws(() => plan("4k", "seq", 1.5, 1), /LBA space of 1.5 blocks/);
});

Deno.test("one seed, one plan and one fill; another seed differs", () => {
  const ops = (seed: number) => {
    const p = plan("4k:60,64k:30,256k:10", "hot:10", 1 << 20, seed);
    const op = plannedOp();
    return Array.from({ length: 500 }, () => {
      p.next(op);
      return `${op.bytes}@${op.lba}`;
    });
  };
  assert.deepEqual(ops(11), ops(11));
  assert.notDeepEqual(ops(11), ops(12));
  const fill = (seed: number) => {
    const bytes = new Uint8Array(64 * KiB);
    new DataFiller(seed).fill(bytes, 0, bytes.length, 9, 100);
    return bytes;
  };
  assert.deepEqual(fill(5), fill(5));
  assert.notDeepEqual(fill(5).subarray(16, 4096), fill(6).subarray(16, 4096));
});

Deno.test("a fill verifies, and any flipped byte or wrong seq/lba is detected", async (t) => {
  const filler = new DataFiller(42);
  const bytes = new Uint8Array(new ArrayBuffer(256 * KiB));
  const offset = 8192;
  const length = 64 * KiB;
  filler.fill(bytes, offset, length, 1234, 5678);
  await t.step("round trip", () => assert.ok(filler.verifyFill(bytes, offset, length, 1234, 5678)));
  await t.step("stamp of each block", () => {
    for (let k = 0; k < length / blockBytes; k++) {
      const view = new DataView(bytes.buffer, offset + k * blockBytes, 16);
      assert.equal(view.getUint32(0, true) + view.getUint16(4, true) * 2 ** 32, 1234);
      assert.equal(view.getUint32(6, true) + view.getUint16(10, true) * 2 ** 32, 5678 + k);
      assert.equal(view.getUint32(12, true), k);
    }
  });
  await t.step("readStamp reads each block's stamp back", () => {
    const out = { seq: 0, lba: 0, block: 0 };
    assert.equal(readStamp(bytes, offset + 3 * blockBytes, out), out);
    assert.deepEqual(out, { seq: 1234, lba: 5681, block: 3 });
    assert.throws(() => readStamp(bytes, bytes.length - 8), /Cannot read a stamp at/);
  });
  await t.step("wrong seq or lba", () => {
    assert.equal(filler.findMismatch(bytes, offset, length, 1235, 5678), offset);
    assert.equal(filler.findMismatch(bytes, offset, length, 1234, 5679), offset + 6);
  });
  await t.step("a flipped byte anywhere is found at its index", () => {
    forAllSeeds("flip", (prng) => {
      const at = offset + prng.int(0, length - 1);
      bytes[at] ^= 1 << prng.int(0, 7);
      const found = filler.findMismatch(bytes, offset, length, 1234, 5678);
      filler.fill(bytes, offset, length, 1234, 5678);
      if (found !== at) throw new Error(`flipped byte ${at}, found ${found}`);
    }, { runs: 200 });
  });
  await t.step("neighbours are untouched", () => {
    assert.ok(bytes.subarray(0, offset).every((b) => b === 0));
    assert.ok(bytes.subarray(offset + length).every((b) => b === 0));
  });
  await t.step("large seq and lba values round-trip", () => {
    filler.fill(bytes, 0, 8192, 2 ** 48 - 1, 2 ** 48 - 2);
    assert.ok(filler.verifyFill(bytes, 0, 8192, 2 ** 48 - 1, 2 ** 48 - 2));
    assert.deepEqual(readStamp(bytes, 4096), { seq: 2 ** 48 - 1, lba: 2 ** 48 - 1, block: 1 });
  });
  await t.step("bad spans are refused", () => {
    assert.throws(() => filler.fill(bytes, 0, 1000, 0, 0), /Cannot fill 1000 bytes at 0/);
    assert.throws(() => filler.fill(bytes, 256 * KiB - 4096, 8192, 0, 0), /that fits/);
    assert.throws(() => filler.fill(bytes, -1, 4096, 0, 0), /at -1/);
    assert.throws(() => filler.fill(bytes, 0, 4096, -1, 0), /seq -1/);
    assert.throws(() => filler.fill(bytes, 0, 8192, 0, 2 ** 48 - 1), /0\.\.2\^48-1/);
  });
});
