import assert from "node:assert/strict";
import { InvariantError } from "../../lib/assert.ts";
import {
  decodeMessage,
  encodeMessage,
  helloMacInput,
  welcomeMacInput,
} from "../../lib/replication/control_codec.ts";
import {
  clipUtf8,
  type ControlMessage,
  type Endpoint,
  type HelloFields,
  type WelcomeFields,
} from "../../lib/replication/control_messages.ts";

const gid = Uint8Array.from({ length: 16 }, (_, i) => 0xf0 + i);
const endpoint: Endpoint = { qpn: 0x123456, psn: 0xabcdef, gid, mtu: 5 };
const helloFields: HelloFields = {
  endpoint,
  ringBytes: 1 << 20,
  maxLogBytes: 256 * 1024,
  depth: 64,
};
const welcomeFields: WelcomeFields = {
  endpoint: { qpn: 17, psn: 0, gid: gid.slice().reverse(), mtu: 3 },
  ringAddr: 0x7f12_3456_7000,
  rkey: 0xdeadbeef,
  metaSlots: 128,
  ringBytes: 1 << 20,
  nextSeq: 42,
  released: 2 ** 40 + 4096,
};
const nonce = Uint8Array.from({ length: 32 }, (_, i) => i);
const mac = Uint8Array.from({ length: 32 }, (_, i) => 0x80 + i);

/** Little-endian byte builder for hand-made frames. */
function le(bytes: number, value: number): number[] {
  return Array.from({ length: bytes }, (_, i) => Math.floor(value / 2 ** (8 * i)) % 256);
}

function frame(type: number, body: number[], version = 1): Uint8Array {
  const head = [...le(4, 0x4C525052), ...le(2, version), ...le(2, type)];
  return Uint8Array.from([...le(4, head.length + body.length), ...head, ...body]);
}

const endpointBytes = (
  e: Endpoint,
) => [...le(4, e.qpn), ...le(4, e.psn), ...e.gid, ...le(4, e.mtu)];
const helloBody = [
  ...nonce,
  ...mac,
  ...endpointBytes(endpoint),
  ...le(8, 1 << 20),
  ...le(4, 256 * 1024),
  ...le(4, 64),
];
const welcomeBody = [
  ...mac,
  ...endpointBytes(welcomeFields.endpoint),
  ...le(8, welcomeFields.ringAddr),
  ...le(4, 0xdeadbeef),
  ...le(4, 128),
  ...le(8, 1 << 20),
  ...le(8, 42),
  ...le(8, welcomeFields.released),
];

function decodeOk(bytes: Uint8Array): ControlMessage {
  const decoded = decodeMessage(bytes);
  assert.ok(decoded.ok, decoded.ok ? "" : `${decoded.reason}: ${decoded.detail}`);
  return decoded.value;
}

Deno.test("codec decodes hand-built frames at the spec's offsets", async (t) => {
  await t.step("CHALLENGE", () => {
    const bytes = frame(1, [...nonce]);
    assert.deepEqual([...bytes.subarray(0, 12)], [40, 0, 0, 0, 0x52, 0x50, 0x52, 0x4C, 1, 0, 1, 0]);
    assert.deepEqual(decodeOk(bytes), { type: "CHALLENGE", nonce });
  });
  await t.step("HELLO", () => {
    const bytes = frame(2, helloBody);
    assert.equal(bytes.length, 4 + 116);
    assert.deepEqual(decodeOk(bytes), { type: "HELLO", nonce, mac, ...helloFields });
    assert.deepEqual(encodeMessage({ type: "HELLO", nonce, mac, ...helloFields }), bytes);
  });
  await t.step("WELCOME", () => {
    const bytes = frame(3, welcomeBody);
    assert.equal(bytes.length, 4 + 108);
    assert.deepEqual(decodeOk(bytes), { type: "WELCOME", mac, ...welcomeFields });
    assert.deepEqual(encodeMessage({ type: "WELCOME", mac, ...welcomeFields }), bytes);
  });
  await t.step("REFUSE and READY", () => {
    const text = "busy: déjà";
    const utf8 = [...new TextEncoder().encode(text)];
    const bytes = frame(4, [...le(2, 4), 0, 0, ...le(4, utf8.length), ...utf8]);
    assert.deepEqual(decodeOk(bytes), { type: "REFUSE", reason: "BUSY", text });
    assert.deepEqual(encodeMessage({ type: "REFUSE", reason: "BUSY", text }), bytes);
    assert.deepEqual(decodeOk(frame(5, [])), { type: "READY" });
    assert.deepEqual(encodeMessage({ type: "READY" }), frame(5, []));
  });
});

Deno.test("codec refuses every bad field with a typed reason", async (t) => {
  const patched = (body: number[], at: number, bytes: number[]) => {
    const copy = body.slice();
    copy.splice(at - 8, bytes.length, ...bytes);
    return copy;
  };
  const cases: [string, Uint8Array, string, RegExp][] = [
    ["no prefix", new Uint8Array(3), "BAD_LENGTH", /no length prefix/],
    ["prefix mismatch", frame(5, []).subarray(0, 11), "BAD_LENGTH", /length prefix 8/],
    ["body below 8", Uint8Array.from([4, 0, 0, 0, 0x52, 0x50, 0x52, 0x4C]), "BAD_LENGTH", /4/],
    ["body above 1024", frame(1, new Array(1020).fill(0)), "BAD_LENGTH", /1028/],
    ["magic", Uint8Array.from([8, 0, 0, 0, 0x52, 0x50, 0x52, 0x4D, 1, 0, 5, 0]), "BAD_MAGIC", /4d/],
    ["version", frame(5, [], 2), "BAD_VERSION", /version 2/],
    ["type 0", frame(0, []), "BAD_TYPE", /type 0/],
    ["type 6", frame(6, []), "BAD_TYPE", /type 6/],
    ["READY with a body", frame(5, [0]), "BAD_LENGTH", /READY body is 9/],
    ["short CHALLENGE", frame(1, new Array(31).fill(0)), "BAD_LENGTH", /CHALLENGE/],
    ["long HELLO", frame(2, [...helloBody, 0]), "BAD_LENGTH", /HELLO body is 117/],
    ["qpn 0", frame(2, patched(helloBody, 72, le(4, 0))), "BAD_FIELD", /qpn 0/],
    ["qpn 2^24", frame(2, patched(helloBody, 72, le(4, 2 ** 24))), "BAD_FIELD", /qpn/],
    ["psn 2^24", frame(2, patched(helloBody, 76, le(4, 2 ** 24))), "BAD_FIELD", /psn/],
    ["mtu 0", frame(2, patched(helloBody, 96, le(4, 0))), "BAD_FIELD", /mtu 0/],
    ["mtu 6", frame(2, patched(helloBody, 96, le(4, 6))), "BAD_FIELD", /mtu 6/],
    ["ring unaligned", frame(2, patched(helloBody, 100, le(8, 65536 + 1))), "BAD_FIELD", /ringB/],
    ["ring 32 KiB", frame(2, patched(helloBody, 100, le(8, 32768))), "BAD_FIELD", /ringBytes/],
    ["ring 2 GiB", frame(2, patched(helloBody, 100, le(8, 2 ** 31))), "BAD_FIELD", /ringBytes/],
    ["ring 2^60", frame(2, patched(helloBody, 100, le(8, 2 ** 60))), "BAD_FIELD", /2\^53/],
    ["log 0", frame(2, patched(helloBody, 108, le(4, 0))), "BAD_FIELD", /maxLogBytes 0/],
    ["log > ring/2", frame(2, patched(helloBody, 108, le(4, 528384))), "BAD_FIELD", /maxLog/],
    ["log unaligned", frame(2, patched(helloBody, 108, le(4, 4097))), "BAD_FIELD", /maxLog/],
    ["depth 0", frame(2, patched(helloBody, 112, le(4, 0))), "BAD_FIELD", /depth 0/],
    ["depth 1025", frame(2, patched(helloBody, 112, le(4, 1025))), "BAD_FIELD", /depth/],
    ["ringAddr 0", frame(3, patched(welcomeBody, 68, le(8, 0))), "BAD_FIELD", /ringAddr/],
    ["metaSlots 0", frame(3, patched(welcomeBody, 80, le(4, 0))), "BAD_FIELD", /metaSlots/],
    ["nextSeq 0", frame(3, patched(welcomeBody, 92, le(8, 0))), "BAD_FIELD", /nextSeq/],
    ["released 2^53", frame(3, patched(welcomeBody, 100, le(8, 2 ** 53))), "BAD_FIELD", /released/],
    ["reason 0", frame(4, [0, 0, 0, 0, 0, 0, 0, 0]), "BAD_FIELD", /reason 0/],
    ["pad", frame(4, [1, 0, 1, 0, 0, 0, 0, 0]), "BAD_FIELD", /pad/],
    ["text length", frame(4, [1, 0, 0, 0, 2, 0, 0, 0, 65]), "BAD_LENGTH", /text length 2/],
    [
      "text 201",
      frame(4, [1, 0, 0, 0, 201, 0, 0, 0, ...new Array(201).fill(65)]),
      "BAD_LENGTH",
      /201/,
    ],
    ["text UTF-8", frame(4, [1, 0, 0, 0, 2, 0, 0, 0, 0xc3, 0x28]), "BAD_FIELD", /UTF-8/],
  ];
  for (const [name, bytes, reason, detail] of cases) {
    await t.step(name, () => {
      const decoded = decodeMessage(bytes);
      assert.equal(decoded.ok, false);
      if (decoded.ok) return;
      assert.equal(decoded.reason, reason, decoded.detail);
      assert.match(decoded.detail, detail);
    });
  }
  await t.step("u64 at 2^53-1 is accepted", () => {
    const body = patched(welcomeBody, 100, le(8, Number.MAX_SAFE_INTEGER));
    const decoded = decodeOk(frame(3, body));
    assert.equal(decoded.type === "WELCOME" && decoded.released, Number.MAX_SAFE_INTEGER);
  });
});

Deno.test("codec refuses to encode invalid fields", () => {
  const bad = { type: "HELLO", nonce, mac, ...helloFields, depth: 0 } as const;
  assert.throws(() => encodeMessage(bad), InvariantError);
  const long = { type: "REFUSE", reason: "BUSY", text: "x".repeat(201) } as const;
  assert.throws(() => encodeMessage(long), InvariantError);
  assert.throws(() => encodeMessage({ type: "CHALLENGE", nonce: new Uint8Array(31) }), /nonce/);
});

Deno.test("mac inputs are label, nonces and wire fields in the spec's order", () => {
  const challenge = nonce.slice().reverse();
  const label = [...new TextEncoder().encode("RRL1 hello")];
  const hello = helloMacInput(challenge, { nonce, ...helloFields });
  assert.deepEqual([...hello], [...label, ...challenge, ...nonce, ...helloBody.slice(64)]);
  const welcomeLabel = [...new TextEncoder().encode("RRL1 welcome")];
  const welcome = welcomeMacInput(nonce, welcomeFields);
  assert.deepEqual([...welcome], [...welcomeLabel, ...nonce, ...welcomeBody.slice(32)]);
});

Deno.test("clipUtf8 cuts on a character boundary", () => {
  assert.equal(clipUtf8("abc", 2), "ab");
  assert.equal(clipUtf8("aé", 2), "a");
  assert.equal(clipUtf8("é".repeat(150)).length, 100);
});

/** mulberry32: a small seeded generator, so a failing case can be replayed. */
function generator(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let x = Math.imul(state ^ (state >>> 15), state | 1);
    x ^= x + Math.imul(x ^ (x >>> 7), x | 61);
    return ((x ^ (x >>> 14)) >>> 0) / 2 ** 32;
  };
}

function fuzzSeed(): number {
  const env = Deno.permissions.querySync({ name: "env", variable: "RRL_FUZZ_SEED" });
  const given = env.state === "granted" ? Deno.env.get("RRL_FUZZ_SEED") : undefined;
  return given === undefined ? 0x5eed_2024 : Number(given);
}

function validFrame(random: () => number): Uint8Array {
  const bytes = (n: number) => Uint8Array.from({ length: n }, () => Math.floor(random() * 256));
  const messages: ControlMessage[] = [
    { type: "CHALLENGE", nonce: bytes(32) },
    { type: "HELLO", nonce: bytes(32), mac: bytes(32), ...helloFields },
    { type: "WELCOME", mac: bytes(32), ...welcomeFields },
    { type: "REFUSE", reason: "BAD_AUTH", text: "wrong secret ✗".slice(0, random() * 15) },
    { type: "READY" },
  ];
  return encodeMessage(messages[Math.floor(random() * messages.length)]);
}

function mutate(input: Uint8Array, random: () => number): Uint8Array {
  let bytes = input.slice();
  const at = () => Math.floor(random() * bytes.length);
  const mutations = 1 + Math.floor(random() * 3);
  for (let i = 0; i < mutations; i++) {
    const choice = Math.floor(random() * 6);
    if (choice === 0) bytes[at()] ^= 1 << Math.floor(random() * 8);
    else if (choice === 1) bytes[at()] = Math.floor(random() * 256);
    else if (choice === 2) bytes = bytes.slice(0, at());
    else if (choice === 3) bytes = Uint8Array.from([...bytes, ...bytes.slice(at())]);
    else if (choice === 4) bytes.fill(random() < 0.5 ? 0 : 0xff, at(), at() + 4);
    else bytes[4 + Math.floor(random() * 8)] = Math.floor(random() * 7);
  }
  // Mostly keep the length prefix consistent, so the body checks are the ones exercised.
  if (bytes.length >= 4 && random() < 0.8) {
    new DataView(bytes.buffer).setUint32(0, bytes.length - 4, true);
  }
  return bytes;
}

Deno.test("decoders never throw on mutated frames and accept only canonical ones", () => {
  const seed = fuzzSeed();
  const random = generator(seed);
  let accepted = 0;
  const rounds = 5000;
  for (let i = 0; i < rounds; i++) {
    const bytes = mutate(validFrame(random), random);
    const where = `seed ${seed} (RRL_FUZZ_SEED), round ${i}`;
    let decoded;
    try {
      decoded = decodeMessage(bytes);
    } catch (error) {
      assert.fail(`decodeMessage threw at ${where}: ${error}`);
    }
    if (!decoded.ok) continue;
    accepted++;
    assert.deepEqual(encodeMessage(decoded.value), bytes, `not canonical at ${where}`);
  }
  assert.ok(accepted > 100 && accepted < rounds - 100, `seed ${seed}: ${accepted} accepted`);
});
