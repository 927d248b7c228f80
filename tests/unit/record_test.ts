import assert from "node:assert/strict";
import { InvariantError } from "../../lib/assert.ts";
import { crc32c } from "../../lib/log/crc32c.ts";
import {
  dataLengthMax,
  decodeRecord,
  emptyRecord,
  encodeRecord,
  LbaFlags,
  type LogRecord,
  parseRecord,
  recordBytes,
  RecordFlags,
  recordLimits,
  RecordReason,
  recordReasonName,
  sealRecord,
} from "../../lib/log/record.ts";
import type { Prng } from "../../lib/prng.ts";
import { forAllSeeds } from "../../lib/testing/property.ts";
import { blockBytes } from "../../lib/block.ts";

/** A random record that the spec accepts: a data log, a SKIP or a NOP. */
function validRecord(prng: Prng): LogRecord {
  const record = emptyRecord();
  const kind = prng.int(0, 9);
  record.dataOffset = prng.int(0, 2 ** 18) * blockBytes;
  record.lba = prng.chance(0.1) ? Number.MAX_SAFE_INTEGER : prng.int(0, 2 ** 40);
  record.lbaFlags = prng.chance(0.3) ? LbaFlags.FUA : 0;
  record.timestampNs = prng.int(0, Number.MAX_SAFE_INTEGER);
  if (kind === 0) {
    record.flags = RecordFlags.NOP;
    return record;
  }
  record.flags = kind === 1 ? RecordFlags.SKIP : 0;
  record.seq = prng.chance(0.1) ? Number.MAX_SAFE_INTEGER : prng.int(1, 2 ** 32);
  record.dataLength = prng.int(1, dataLengthMax / blockBytes) * blockBytes;
  record.dataCrc = kind === 1 ? 0 : prng.u32();
  return record;
}

/** Encodes `record` into a fresh 64-byte buffer. */
function bytesOf(record: LogRecord): Uint8Array {
  const bytes = new Uint8Array(recordBytes);
  encodeRecord(new DataView(bytes.buffer), 0, record);
  return bytes;
}

const base: LogRecord = { ...emptyRecord(), seq: 7, dataOffset: 8192, dataLength: 4096 };
const nop: LogRecord = { ...emptyRecord(), flags: RecordFlags.NOP };
const skip: LogRecord = { ...base, flags: RecordFlags.SKIP };

/** [case, record to start from, mutation (sealed again unless it says otherwise), reason]. */
type Case = [string, LogRecord, (view: DataView) => boolean | void, RecordReason];
const cases: Case[] = [
  ["wrong magic", base, (v) => v.setUint32(0, 0x474f4c53, true), RecordReason.BAD_MAGIC],
  ["version 2", base, (v) => v.setUint16(4, 2, true), RecordReason.BAD_VERSION],
  ["flipped data bit", base, (v) => (v.setUint8(20, v.getUint8(20) ^ 1), false), 4],
  ["flipped crc bit", base, (v) => (v.setUint8(57, v.getUint8(57) ^ 8), false), 4],
  ["reserved at 44", base, (v) => v.setUint32(44, 1, true), RecordReason.RESERVED_NOT_ZERO],
  ["reserved at 60", base, (v) => (v.setUint8(63, 1), false), RecordReason.RESERVED_NOT_ZERO],
  ["flag bit 3", base, (v) => v.setUint16(6, 8, true), RecordReason.UNKNOWN_FLAGS],
  ["SKIP and NOP", base, (v) => v.setUint16(6, 3, true), RecordReason.CONFLICTING_FLAGS],
  ["NOP and RELEASE", base, (v) => v.setUint16(6, 6, true), RecordReason.CONFLICTING_FLAGS],
  ["RELEASE with length", base, (v) => v.setUint16(6, 4, true), RecordReason.RELEASE_NOT_EMPTY],
  ["lbaFlags bit 1", base, (v) => v.setUint32(40, 2, true), RecordReason.UNKNOWN_LBA_FLAGS],
  ["seq 2^53", base, (v) => v.setUint32(12, 0x20_0000, true), RecordReason.U64_TOO_LARGE],
  ["offset 2^53", base, (v) => v.setUint32(20, 0x20_0000, true), RecordReason.U64_TOO_LARGE],
  ["lba 2^63", base, (v) => v.setUint32(36, 2 ** 31, true), RecordReason.U64_TOO_LARGE],
  ["time 2^64-1", base, (v) => v.setBigUint64(48, 2n ** 64n - 1n, true), 9],
  ["offset 4097", base, (v) => v.setUint32(16, 4097, true), RecordReason.OFFSET_NOT_ALIGNED],
  ["NOP with seq", nop, (v) => v.setUint32(8, 1, true), RecordReason.NOP_NOT_EMPTY],
  ["NOP with length", nop, (v) => v.setUint32(24, 4096, true), RecordReason.NOP_NOT_EMPTY],
  ["NOP with dataCrc", nop, (v) => v.setUint32(28, 5, true), RecordReason.DATA_CRC_NOT_ZERO],
  ["seq 0", base, (v) => v.setUint32(8, 0, true), RecordReason.SEQ_ZERO],
  ["SKIP seq 0", skip, (v) => v.setUint32(8, 0, true), RecordReason.SEQ_ZERO],
  ["length 0", base, (v) => v.setUint32(24, 0, true), RecordReason.LENGTH_ZERO],
  ["length 4097", base, (v) => v.setUint32(24, 4097, true), RecordReason.LENGTH_NOT_ALIGNED],
  ["length 16 MiB + 4096", base, (v) => v.setUint32(24, dataLengthMax + 4096, true), 15],
  ["SKIP with dataCrc", skip, (v) => v.setUint32(28, 5, true), RecordReason.DATA_CRC_NOT_ZERO],
];

Deno.test("encodeRecord lays out the 64 bytes as docs/protocol.md says", () => {
  const record: LogRecord = {
    flags: RecordFlags.SKIP,
    seq: 0x05_0403_0201,
    dataOffset: 0x3000,
    dataLength: 0x2000,
    dataCrc: 0,
    lba: 0x55_4433_2211,
    lbaFlags: LbaFlags.FUA,
    timestampNs: 0x0f0e_0d0c_0b0a,
  };
  const bytes = bytesOf(record);
  const hex = (from: number, to: number) =>
    Array.from(bytes.subarray(from, to), (b) => b.toString(16).padStart(2, "0")).join("");
  assert.equal(new TextDecoder().decode(bytes.subarray(0, 4)), "RLOG");
  assert.equal(hex(4, 8), "0100" + "0100");
  assert.equal(hex(8, 16), "0102030405000000");
  assert.equal(hex(16, 32), "0030000000000000" + "00200000" + "00000000");
  assert.equal(hex(32, 48), "1122334455000000" + "01000000" + "00000000");
  assert.equal(hex(48, 56), "0a0b0c0d0e0f0000");
  const crc = new DataView(bytes.buffer).getUint32(56, true);
  assert.equal(crc, crc32c(bytes.subarray(0, 56)));
  assert.equal(hex(60, 64), "00000000");
});

Deno.test("decodeRecord round-trips every valid record at any offset", () => {
  forAllSeeds("record round trip", (prng) => {
    const record = validRecord(prng);
    const at = prng.int(0, 64);
    const buffer = prng.fill(new Uint8Array(at + recordBytes + prng.int(0, 64)));
    const view = new DataView(buffer.buffer);
    encodeRecord(view, at, record);
    const out = emptyRecord();
    assert.equal(recordReasonName(decodeRecord(view, at, out)), "OK");
    assert.deepEqual(out, record);
  }, { runs: 2000 });
});

Deno.test("decodeRecord reaches every refusal with a typed reason", async (t) => {
  for (const [name, record, mutate, expected] of cases) {
    await t.step(`${name} → ${recordReasonName(expected)}`, () => {
      const bytes = bytesOf(record);
      const view = new DataView(bytes.buffer);
      if (mutate(view) !== false) sealRecord(view, 0);
      const out = { ...record, seq: -42 };
      assert.equal(recordReasonName(decodeRecord(view, 0, out)), recordReasonName(expected));
      assert.equal(out.seq, -42, "a refusal leaves the caller's record untouched");
    });
  }
  await t.step("short view → TRUNCATED", () => {
    const view = new DataView(bytesOf(base).buffer, 0, recordBytes - 1);
    assert.equal(decodeRecord(view, 0, emptyRecord()), RecordReason.TRUNCATED);
  });
  await t.step("a lower limit → LENGTH_TOO_LARGE", () => {
    const limits = recordLimits({ maxDataLength: 8192 });
    assert.deepEqual(parseRecord(bytesOf({ ...base, dataLength: 8192 }), limits).ok, true);
    const parsed = parseRecord(bytesOf({ ...base, dataLength: 12288 }), limits);
    assert.deepEqual(parsed, { ok: false, reason: RecordReason.LENGTH_TOO_LARGE });
  });
  await t.step("every reason is covered", () => {
    const reached = new Set<number>([...cases.map((c) => c[3]), RecordReason.TRUNCATED, 0]);
    for (const [name, code] of Object.entries(RecordReason)) assert.ok(reached.has(code), name);
  });
});

Deno.test("decodeRecord accepts the largest safe values and the largest length", () => {
  const record = {
    ...base,
    seq: Number.MAX_SAFE_INTEGER,
    dataOffset: Number.MAX_SAFE_INTEGER - 4095,
    dataLength: dataLengthMax,
    lba: Number.MAX_SAFE_INTEGER,
    timestampNs: Number.MAX_SAFE_INTEGER,
  };
  assert.deepEqual(parseRecord(bytesOf(record)), { ok: true, record });
});

const knownReasons = new Set<number>(Object.values(RecordReason));

Deno.test("decodeRecord types every mutated record and never throws", () => {
  const interesting = [0, 1, 2, 3, 4095, 4096, 4097, dataLengthMax, 0x1f_ffff, 0x20_0000];
  forAllSeeds("mutated records", (prng) => {
    const bytes = bytesOf(validRecord(prng));
    const view = new DataView(bytes.buffer);
    for (let i = prng.int(1, 3); i > 0; i--) {
      const at = prng.int(0, recordBytes - 1);
      const kind = prng.int(0, 2);
      if (kind === 0) bytes[at] ^= 1 << prng.int(0, 7);
      else if (kind === 1) bytes[at] = prng.int(0, 255);
      else view.setUint32(prng.int(0, 15) * 4, prng.pick(interesting), true);
    }
    if (prng.chance(0.7)) sealRecord(view, 0);
    const parsed = parseRecord(bytes);
    if (parsed.ok) {
      assert.deepEqual(bytesOf(parsed.record), bytes, "an accepted record re-encodes identically");
    } else {
      assert.ok(parsed.reason !== RecordReason.OK && knownReasons.has(parsed.reason));
    }
  }, { runs: 5000 });
});

Deno.test("encodeRecord stops on values that do not fit their field", () => {
  const view = new DataView(new ArrayBuffer(recordBytes));
  const bad: Partial<LogRecord>[] = [
    { flags: 0x1_0000 },
    { seq: -1 },
    { seq: 2 ** 53 },
    { dataOffset: 1.5 },
    { dataLength: 2 ** 32 },
    { dataCrc: -1 },
    { lbaFlags: 2 ** 32 },
    { timestampNs: Infinity },
  ];
  for (const fields of bad) {
    assert.throws(() => encodeRecord(view, 0, { ...base, ...fields }), InvariantError);
  }
  assert.throws(() => encodeRecord(view, 1, base), InvariantError);
});

Deno.test("recordLimits refuses limits outside the protocol", () => {
  for (const maxDataLength of [0, 4095, 6000, dataLengthMax + 4096, NaN]) {
    assert.throws(() => recordLimits({ maxDataLength }), RangeError);
  }
  assert.equal(recordLimits().maxDataLength, dataLengthMax);
  assert.equal(recordReasonName(RecordReason.BAD_VERSION), "BAD_VERSION");
  assert.equal(recordReasonName(99), "UNKNOWN(99)");
});
