import assert from "node:assert/strict";
import {
  crc32c,
  crc32cAt,
  type Crc32cBackend,
  crc32cBackend,
  crc32cUpdate,
  crc32cView,
  crc32cViewInt32,
  isalBackend,
  jsBackend,
  RegionCrc,
} from "../../lib/log/crc32c.ts";
import { forAllSeeds } from "../../lib/testing/property.ts";

const isal = isalBackend();
const backends: Crc32cBackend[] = isal === null ? [jsBackend] : [jsBackend, isal];

/** RFC 3720 B.4 "Read (10) Command PDU", 48 bytes. */
const readPdu = [
  0x01,
  0xc0,
  0x00,
  0x00,
  0x00,
  0x00,
  0x00,
  0x00,
  0x00,
  0x00,
  0x00,
  0x00,
  0x00,
  0x00,
  0x00,
  0x00,
  0x14,
  0x00,
  0x00,
  0x00,
  0x00,
  0x00,
  0x04,
  0x00,
  0x00,
  0x00,
  0x00,
  0x14,
  0x00,
  0x00,
  0x00,
  0x18,
  0x28,
  0x00,
  0x00,
  0x00,
  0x00,
  0x00,
  0x00,
  0x00,
  0x02,
  0x00,
  0x00,
  0x00,
  0x00,
  0x00,
  0x00,
  0x00,
];

const vectors: [string, Uint8Array, number][] = [
  ["32 bytes of 0x00", new Uint8Array(32), 0x8a9136aa],
  ["32 bytes of 0xFF", new Uint8Array(32).fill(0xff), 0x62a8ab43],
  ["32 incrementing bytes", Uint8Array.from({ length: 32 }, (_, i) => i), 0x46dd794e],
  ["32 decrementing bytes", Uint8Array.from({ length: 32 }, (_, i) => 31 - i), 0x113fdb5c],
  ["iSCSI read PDU", Uint8Array.from(readPdu), 0xd9963a56],
  ["123456789", new TextEncoder().encode("123456789"), 0xe3069283],
  ["empty input", new Uint8Array(0), 0],
];

/** Address of a fresh ArrayBuffer-backed region, as crc32cAt expects it. */
function addressOf(buffer: ArrayBuffer): number {
  return Number(Deno.UnsafePointer.value(Deno.UnsafePointer.of(buffer)));
}

Deno.test("crc32c matches the RFC 3720 B.4 vectors on every backend", async (t) => {
  for (const backend of backends) {
    await t.step(backend.name, () => {
      for (const [name, bytes, expected] of vectors) {
        assert.equal(backend.update(0, bytes), expected, name);
        const buffer = new ArrayBuffer(bytes.length + 4096);
        new Uint8Array(buffer).set(bytes, 4096);
        assert.equal(backend.updateAt(0, addressOf(buffer), 4096, bytes.length), expected, name);
      }
    });
  }
  await t.step("active backend and DataView kernel", () => {
    for (const [name, bytes, expected] of vectors) {
      assert.equal(crc32c(bytes), expected, name);
      assert.equal(crc32cView(new DataView(bytes.buffer), 0, bytes.length), expected, name);
    }
  });
});

Deno.test("crc32c reports an active backend consistent with the isal load", () => {
  const name = crc32cBackend();
  assert.ok(name === "isal" || name === "js");
  if (name === "isal") assert.notEqual(isal, null);
});

Deno.test("crc32c backends agree on random buffers of random lengths", () => {
  forAllSeeds("backends agree", (prng) => {
    const length = prng.chance(0.2) ? prng.int(0, 64) : prng.int(0, 70_000);
    const start = prng.int(0, 15);
    const bytes = prng.fill(new Uint8Array(start + length)).subarray(start);
    const expected = jsBackend.update(0, bytes);
    for (const backend of backends) assert.equal(backend.update(0, bytes), expected, backend.name);
    assert.equal(crc32c(bytes), expected);
    const view = new DataView(bytes.buffer);
    assert.equal(crc32cView(view, start, length), expected);
  }, { runs: 300 });
});

Deno.test("crc32cUpdate continues a CRC across any split", () => {
  forAllSeeds("incremental", (prng) => {
    const bytes = prng.fill(new Uint8Array(prng.int(0, 5000)));
    const cut = prng.int(0, bytes.length);
    const whole = crc32c(bytes);
    assert.equal(crc32cUpdate(crc32c(bytes.subarray(0, cut)), bytes.subarray(cut)), whole);
    for (const backend of backends) {
      const first = backend.update(0, bytes.subarray(0, cut));
      assert.equal(backend.update(first, bytes.subarray(cut)), whole, backend.name);
    }
  }, { runs: 300 });
});

Deno.test("crc32cAt agrees with the bytes variant at aligned and unaligned offsets", () => {
  const buffer = new ArrayBuffer(1 << 20);
  const ring = new Uint8Array(buffer);
  const base = addressOf(buffer);
  forAllSeeds("address variant", (prng) => {
    const offset = prng.chance(0.5) ? prng.int(0, 255) * 4096 : prng.int(0, ring.length - 1);
    const length = prng.int(0, Math.min(ring.length - offset, 300_000));
    prng.fill(ring.subarray(offset, offset + length));
    const expected = jsBackend.update(0, ring.subarray(offset, offset + length));
    assert.equal(crc32cAt(base, offset, length), expected);
    for (const backend of backends) {
      assert.equal(backend.updateAt(0, base, offset, length), expected, backend.name);
    }
  }, { runs: 300 });
});

Deno.test("crc32cAt and crc32cView refuse impossible spans", async (t) => {
  await t.step("crc32cAt", () => {
    for (const backend of backends) {
      assert.throws(() => backend.updateAt(0, 0, 0, 1), RangeError);
      assert.throws(() => backend.updateAt(0, 4096, -1, 1), RangeError);
      assert.throws(() => backend.updateAt(0, 4096, 0, 1.5), RangeError);
      assert.throws(() => backend.updateAt(0, 4096, 0, 2 ** 31), RangeError);
    }
  });
  await t.step("crc32cView", () => {
    const view = new DataView(new ArrayBuffer(16));
    assert.throws(() => crc32cView(view, 8, 9), RangeError);
    assert.throws(() => crc32cView(view, -1, 4), RangeError);
  });
});

Deno.test("RRL_CRC32C picks the backend and refuses unknown names", async (t) => {
  const url = new URL("../../lib/log/crc32c.ts", import.meta.url).href;
  const code = `const m = await import("${url}"); console.log(m.crc32cBackend());`;
  async function run(value: string): Promise<{ code: number; out: string; err: string }> {
    const command = new Deno.Command(Deno.execPath(), {
      args: ["eval", code],
      env: { RRL_CRC32C: value },
      stdout: "piped",
      stderr: "piped",
    });
    const result = await command.output();
    const decoder = new TextDecoder();
    return {
      code: result.code,
      out: decoder.decode(result.stdout).trim(),
      err: decoder.decode(result.stderr),
    };
  }
  await t.step("js", async () => assert.equal((await run("js")).out, "js"));
  if (isal !== null) {
    await t.step("isal", async () => assert.equal((await run("isal")).out, "isal"));
  }
  await t.step("unknown name", async () => {
    const result = await run("fast");
    assert.notEqual(result.code, 0);
    assert.match(result.err, /RRL_CRC32C=fast/);
  });
});

Deno.test("RegionCrc gives crc32cAt's CRCs as int32 bits, aligned or not, and refuses spans outside", () => {
  const ring = new Uint8Array(new ArrayBuffer(64 * 1024));
  for (let i = 0; i < ring.length; i++) ring[i] = (i * 131 + 17) & 0xff;
  const base = Number(Deno.UnsafePointer.value(Deno.UnsafePointer.of(ring)));
  const region = new RegionCrc(base, ring.length);
  let highBit = 0;
  for (const [offset, length] of [[0, 4096], [8192, 16384], [61440, 4096], [100, 5000], [0, 0]]) {
    const want = crc32c(ring.subarray(offset, offset + length));
    const bits = region.int32At(offset, length);
    assert.equal(bits, want | 0, `int32 bits at ${offset}+${length}`);
    assert.equal(bits >>> 0, want);
    if (want >= 2 ** 31) highBit++;
  }
  assert.ok(highBit > 0, "at least one CRC has its top bit set (the int32 case is exercised)");
  assert.throws(() => region.int32At(61440, 8192), RangeError);
  assert.throws(() => region.int32At(-4096, 4096), RangeError);
  assert.throws(() => region.int32At(0.5, 4096), RangeError);
  assert.throws(() => new RegionCrc(0, 4096), RangeError);
});

Deno.test("crc32cViewInt32 is crc32cView's value as int32 bits", () => {
  const bytes = new Uint8Array(256);
  for (let i = 0; i < bytes.length; i++) bytes[i] = (i * 7 + 3) & 0xff;
  const view = new DataView(bytes.buffer);
  for (const [offset, length] of [[0, 56], [3, 61], [64, 128], [0, 0]]) {
    assert.equal(crc32cViewInt32(view, offset, length), crc32cView(view, offset, length) | 0);
  }
  assert.throws(() => crc32cViewInt32(view, 200, 100), RangeError);
});
