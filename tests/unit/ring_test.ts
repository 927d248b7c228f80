import assert from "node:assert/strict";
import { InvariantError } from "../../lib/assert.ts";
import {
  checkLogLength,
  checkMetaSlots,
  checkRingBytes,
  logBytesLimit,
  metaSlotOffset,
  placement,
  placementStart,
  ringBytesMax,
  ringBytesMin,
  RingCursor,
} from "../../lib/log/ring.ts";
import { forAllSeeds } from "../../lib/testing/property.ts";
import { blockBytes } from "../../lib/block.ts";

const KiB = 1024;
const MiB = 1024 * KiB;
const page = blockBytes;

Deno.test("placement puts a log at the write position unless it would straddle", async (t) => {
  const ring = 64 * KiB;
  const cases: [string, number, number, [number, number, number, number]][] = [
    ["empty ring", 0, page, [0, 0, 0, page]],
    ["exact fit at the end", 60 * KiB, page, [60 * KiB, 60 * KiB, 0, ring]],
    ["straddle leaves a gap", 60 * KiB, 2 * page, [ring, 0, page, ring + 2 * page]],
    ["second lap", ring + page, page, [ring + page, page, 0, ring + 2 * page]],
    ["half ring at the middle", 32 * KiB, 32 * KiB, [32 * KiB, 32 * KiB, 0, ring]],
    ["half ring past the middle", 36 * KiB, 32 * KiB, [ring, 0, 28 * KiB, ring + 32 * KiB]],
  ];
  for (const [name, writePos, length, [start, offset, gapBytes, end]] of cases) {
    await t.step(name, () => {
      assert.deepEqual(placement(writePos, length, ring), { start, offset, gapBytes, end });
      assert.equal(placementStart(writePos, length, ring), start);
    });
  }
});

Deno.test("ring geometry is checked with errors that say what to pass", async (t) => {
  await t.step("ringBytes", () => {
    for (const ok of [ringBytesMin, 68 * KiB, 256 * MiB, ringBytesMax]) checkRingBytes(ok);
    for (const bad of [0, 60 * KiB, ringBytesMin + 1, ringBytesMax + page, NaN, -page]) {
      assert.throws(() => checkRingBytes(bad), (e) => {
        assert.ok(e instanceof RangeError);
        assert.match(e.message, /multiple of 4096 from 65536 \(64 KiB\) to 1073741824 \(1 GiB\)/);
        return true;
      });
    }
  });
  await t.step("log length", () => {
    assert.equal(logBytesLimit(64 * KiB), 32 * KiB);
    assert.equal(logBytesLimit(ringBytesMax), 16 * MiB);
    checkLogLength(page, 64 * KiB);
    checkLogLength(32 * KiB, 64 * KiB);
    checkLogLength(16 * MiB, ringBytesMax);
    const bad: [number, number][] = [
      [0, 64 * KiB],
      [page - 1, 64 * KiB],
      [page + 1, 64 * KiB],
      [36 * KiB, 64 * KiB],
      [16 * MiB + page, ringBytesMax],
    ];
    for (const [length, ring] of bad) {
      assert.throws(() => checkLogLength(length, ring), /enlarge the ring/);
    }
  });
  await t.step("cursor options", () => {
    assert.throws(() => new RingCursor({ ringBytes: 1000 }), RangeError);
    assert.throws(() => new RingCursor({ ringBytes: 64 * KiB, startPos: 100 }), RangeError);
    assert.throws(() => new RingCursor({ ringBytes: 64 * KiB }).canPlace(40 * KiB), RangeError);
  });
});

Deno.test("RingCursor fills up, refuses, and makes room when the oldest log is released", () => {
  const ring = new RingCursor({ ringBytes: 64 * KiB });
  const offsets: number[] = [];
  while (ring.canPlace(page)) offsets.push(ring.place(page));
  assert.deepEqual(offsets, Array.from({ length: 16 }, (_, i) => i * page));
  assert.equal(ring.usedBytes, 64 * KiB);
  assert.equal(ring.freeBytes, 0);
  assert.equal(ring.entryCount, 16);
  assert.throws(() => ring.place(page), /no room/);
  assert.throws(() => ring.release(page / 2), /not at the end of an entry/);
  ring.release(2 * page);
  assert.equal(ring.releasedPos, 2 * page);
  assert.equal(ring.entryCount, 14);
  assert.ok(!ring.canPlace(3 * page));
  assert.equal(ring.place(2 * page), 0);
  assert.equal(ring.lastStartPos, 64 * KiB);
  ring.releaseOldest();
  assert.equal(ring.releasedPos, 3 * page);
  assert.throws(() => ring.release(page), InvariantError, "backwards release");
  assert.throws(() => ring.release(ring.writePos + page), InvariantError, "beyond write");
});

Deno.test("RingCursor honours the peer's credit limit", () => {
  const ring = new RingCursor({ ringBytes: 64 * KiB, startPos: 8 * page });
  const creditLimitPos = 8 * page + 2 * page;
  assert.ok(ring.canPlace(2 * page, creditLimitPos));
  assert.ok(!ring.canPlace(3 * page, creditLimitPos));
  assert.throws(() => ring.place(3 * page, creditLimitPos), InvariantError);
  assert.equal(ring.place(2 * page, creditLimitPos), 8 * page);
  assert.equal(ring.lastStartPos, 8 * page);
});

Deno.test("RingCursor stops before positions pass 2^53 - 1 and on empty releases", () => {
  const startPos = 2 ** 53 - 2 * page;
  const ring = new RingCursor({ ringBytes: 64 * KiB, startPos });
  assert.equal(ring.place(page), startPos % (64 * KiB));
  assert.equal(ring.lastStartPos, startPos);
  assert.throws(() => ring.place(page), /beyond 2\^53/);
  ring.releaseOldest();
  assert.throws(() => ring.releaseOldest(), /nothing to release/);
});

Deno.test("an empty ring always takes a log of up to half its size, at any offset", () => {
  for (const ringBytes of [64 * KiB, 68 * KiB, 96 * KiB]) {
    for (let at = 0; at < ringBytes; at += page) {
      for (let length = page; length <= logBytesLimit(ringBytes); length += page) {
        const ring = new RingCursor({ ringBytes, startPos: ringBytes + at });
        assert.ok(ring.canPlace(length), `${ringBytes}-byte ring at ${at}, ${length} bytes`);
      }
    }
  }
});

Deno.test("random placements never overlap, straddle or lap, and both sides agree", () => {
  forAllSeeds("ring model", (prng) => {
    const ringBytes = prng.chance(0.8) ? prng.int(16, 64) * page : prng.int(16, 4096) * page;
    const pages = ringBytes / page;
    const primary = new RingCursor({ ringBytes, startPos: prng.int(0, 1000) * page });
    const replica = new RingCursor({ ringBytes, startPos: primary.writePos });
    const inUse = new Uint8Array(pages);
    const live: [number, number][] = [];
    for (let step = 0; step < 200; step++) {
      const length = prng.int(1, logBytesLimit(ringBytes) / page) * page;
      const creditLimitPos = replica.releasedPos + ringBytes;
      if (prng.chance(0.6) && primary.canPlace(length, creditLimitPos)) {
        const before = primary.writePos;
        const offset = primary.place(length, creditLimitPos);
        const start = primary.lastStartPos;
        assert.equal(primary.offsetOf(start), offset);
        assert.equal(primary.writePos, start + length);
        assert.equal(offset % page, 0);
        assert.ok(offset + length <= ringBytes, "no straddle");
        const gap = start - before;
        assert.ok(gap === 0 || (gap === ringBytes - (before % ringBytes) && offset === 0));
        assert.ok(replica.canPlace(length), "the replica sees room where the primary did");
        assert.equal(replica.place(length), offset, "both sides compute the same place");
        assert.equal(replica.lastStartPos, start);
        for (let p = offset / page; p < (offset + length) / page; p++) {
          assert.equal(inUse[p], 0, `page ${p} is still in use`);
          inUse[p] = 1;
        }
        live.push([start, start + length]);
      } else if (live.length > 0) {
        const released = live.splice(0, prng.int(1, live.length));
        const [start, end] = released.at(-1)!;
        for (let p = 0; p < pages; p++) inUse[p] = 0;
        for (const [s, e] of live) {
          inUse.fill(1, (s % ringBytes) / page, (e % ringBytes) / page || pages);
        }
        for (let i = 0; i < released.length; i++) replica.releaseOldest();
        primary.release(end);
        assert.ok(start < end);
      } else {
        assert.ok(primary.canPlace(length, creditLimitPos), "an empty ring takes any log");
      }
      assert.ok(primary.usedBytes <= ringBytes && primary.usedBytes >= 0);
      assert.equal(primary.usedBytes + primary.freeBytes, ringBytes);
      assert.equal(primary.entryCount, live.length);
      assert.deepEqual([replica.writePos, replica.releasedPos], [
        primary.writePos,
        primary.releasedPos,
      ]);
    }
  }, { runs: 300 });
});

Deno.test("metadata slots map seq to a fixed 64-byte slot", () => {
  assert.equal(metaSlotOffset(0, 16), 0);
  assert.equal(metaSlotOffset(17, 16), 64);
  assert.equal(metaSlotOffset(Number.MAX_SAFE_INTEGER, 16), 15 * 64);
  checkMetaSlots(1);
  checkMetaSlots(65_536);
  for (const bad of [0, 1.5, 65_537]) assert.throws(() => checkMetaSlots(bad), RangeError);
});
