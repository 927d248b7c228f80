import assert from "node:assert/strict";
import { InvariantError } from "../../lib/assert.ts";
import {
  type Ack,
  ackBytes,
  AckReason,
  ackReasonName,
  AckStatus,
  ackStatusName,
  decodeAck,
  emptyAck,
  encodeAck,
  parseAck,
} from "../../lib/log/ack.ts";
import type { Prng } from "../../lib/prng.ts";
import { forAllSeeds } from "../../lib/testing/property.ts";

const statuses = Object.values(AckStatus);
const knownReasons = new Set<number>(Object.values(AckReason));

/** A random ack with any known status and safe u64 fields. */
function validAck(prng: Prng): Ack {
  const safe = () => prng.chance(0.1) ? Number.MAX_SAFE_INTEGER : prng.int(0, 2 ** 40);
  return { status: prng.pick(statuses), seq: safe(), nextSeq: safe(), released: safe() };
}

/** Encodes `ack` into a fresh 32-byte buffer. */
function bytesOf(ack: Ack): Uint8Array {
  const bytes = new Uint8Array(ackBytes);
  encodeAck(new DataView(bytes.buffer), 0, ack);
  return bytes;
}

const base: Ack = { status: AckStatus.OK, seq: 3, nextSeq: 4, released: 16384 };

Deno.test("encodeAck lays out the 32 bytes as docs/protocol.md says", () => {
  const bytes = bytesOf({
    status: AckStatus.NO_CREDIT,
    seq: 0x0201,
    nextSeq: 2 ** 40,
    released: 1,
  });
  const hex = Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  assert.equal(new TextDecoder().decode(bytes.subarray(0, 4)), "RACK");
  assert.equal(
    hex.slice(8),
    "0100" + "0700" + "0102000000000000" + "0000000000010000" + "0100000000000000",
  );
});

Deno.test("decodeAck round-trips every valid ack at any offset", () => {
  forAllSeeds("ack round trip", (prng) => {
    const ack = validAck(prng);
    const at = prng.int(0, 64);
    const view = new DataView(prng.fill(new Uint8Array(at + ackBytes + prng.int(0, 8))).buffer);
    encodeAck(view, at, ack);
    const out = emptyAck();
    assert.equal(ackReasonName(decodeAck(view, at, out)), "OK");
    assert.deepEqual(out, ack);
  }, { runs: 2000 });
});

Deno.test("decodeAck reaches every refusal with a typed reason", async (t) => {
  const cases: [string, (v: DataView) => void, AckReason][] = [
    ["wrong magic", (v) => v.setUint8(3, 0), AckReason.BAD_MAGIC],
    ["version 0", (v) => v.setUint16(4, 0, true), AckReason.BAD_VERSION],
    ["status 9", (v) => v.setUint16(6, 9, true), AckReason.UNKNOWN_STATUS],
    ["seq 2^53", (v) => v.setUint32(12, 0x20_0000, true), AckReason.U64_TOO_LARGE],
    ["nextSeq 2^63", (v) => v.setUint32(20, 2 ** 31, true), AckReason.U64_TOO_LARGE],
    ["released 2^64-1", (v) => v.setBigUint64(24, 2n ** 64n - 1n, true), 5],
  ];
  for (const [name, mutate, expected] of cases) {
    await t.step(`${name} → ${ackReasonName(expected)}`, () => {
      const bytes = bytesOf(base);
      mutate(new DataView(bytes.buffer));
      const out = { ...base, seq: -42 };
      assert.equal(decodeAck(new DataView(bytes.buffer), 0, out), expected);
      assert.equal(out.seq, -42, "a refusal leaves the caller's ack untouched");
    });
  }
  await t.step("short view → TRUNCATED", () => {
    const view = new DataView(bytesOf(base).buffer, 0, ackBytes - 1);
    assert.equal(decodeAck(view, 0, emptyAck()), AckReason.TRUNCATED);
  });
  await t.step("every reason is covered", () => {
    const reached = new Set<number>([...cases.map((c) => c[2]), AckReason.TRUNCATED, 0]);
    for (const [name, code] of Object.entries(AckReason)) assert.ok(reached.has(code), name);
  });
});

Deno.test("decodeAck types every mutated ack and never throws", () => {
  forAllSeeds("mutated acks", (prng) => {
    const bytes = bytesOf(validAck(prng));
    for (let i = prng.int(1, 3); i > 0; i--) {
      const at = prng.int(0, ackBytes - 1);
      if (prng.chance(0.5)) bytes[at] ^= 1 << prng.int(0, 7);
      else bytes[at] = prng.int(0, 255);
    }
    const parsed = parseAck(bytes);
    if (parsed.ok) assert.deepEqual(bytesOf(parsed.ack), bytes);
    else assert.ok(parsed.reason !== AckReason.OK && knownReasons.has(parsed.reason));
  }, { runs: 5000 });
});

Deno.test("ack status and reason names follow the tables", () => {
  const names = statuses.map(ackStatusName);
  assert.deepEqual(names, [
    "OK",
    "CRC_MISMATCH",
    "OUT_OF_BOUNDS",
    "SEQ_GAP",
    "SEQ_DUPLICATE",
    "BAD_RECORD",
    "PERSIST_FAILED",
    "NO_CREDIT",
    "BAD_RELEASE",
  ]);
  assert.deepEqual(statuses, [0, 1, 2, 3, 4, 5, 6, 7, 8]);
  assert.equal(ackStatusName(9), "UNKNOWN(9)");
  assert.equal(ackReasonName(AckReason.UNKNOWN_STATUS), "UNKNOWN_STATUS");
});

Deno.test("encodeAck stops on values that do not fit their field", () => {
  const view = new DataView(new ArrayBuffer(ackBytes));
  for (
    const fields of [{ status: 0x1_0000 }, { seq: -1 }, { nextSeq: 2 ** 53 }, { released: 0.5 }]
  ) {
    assert.throws(() => encodeAck(view, 0, { ...base, ...fields }), InvariantError);
  }
  assert.throws(() => encodeAck(view, 1, base), InvariantError);
});
