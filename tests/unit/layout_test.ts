import assert from "node:assert/strict";
import { InvariantError } from "../../lib/assert.ts";
import {
  alignOf,
  anonymous,
  array,
  enumOf,
  type Layout,
  opaque,
  sizeOf,
  struct,
  union,
} from "../../ffi/layout.ts";

function offsets(layout: Layout): Record<string, number> {
  return Object.fromEntries(layout.members.map((m) => [m.path, m.offset]));
}

Deno.test("layout follows the SysV x86-64 rules for padding and alignment", async (t) => {
  await t.step("scalars are aligned to their size and padding is inserted before them", () => {
    const s = struct("s", [["a", "u8"], ["b", "u32"], ["c", "u8"], ["d", "u16"], ["e", "f64"]]);
    assert.deepEqual(offsets(s), { a: 0, b: 4, c: 8, d: 10, e: 16 });
    assert.equal(s.size, 24);
    assert.equal(s.align, 8);
  });

  await t.step("trailing padding rounds the size up to the alignment", () => {
    const s = struct("s", [["a", "u64"], ["b", "u8"]]);
    assert.equal(s.size, 16);
    const t2 = struct("t", [["a", "u32"], ["b", "u16"], ["c", "i8"]]);
    assert.deepEqual([t2.size, t2.align], [8, 4]);
    const arrayOf = struct("outer", [["items", array(s, 3)], ["tail", "u8"]]);
    assert.equal(arrayOf.offsetOf("tail"), 48, "array stride is the padded size");
  });

  await t.step("all-byte structs have alignment 1 and no padding", () => {
    const s = struct("s", [["a", "u8"], ["b", array("i8", 3)]]);
    assert.deepEqual([s.size, s.align], [4, 1]);
  });

  await t.step("pointers, i64, f64 are 8 bytes; f32 and enums are 4", () => {
    for (const [type, size] of [["ptr", 8], ["i64", 8], ["f64", 8], ["f32", 4]] as const) {
      assert.deepEqual([sizeOf(type), alignOf(type)], [size, size]);
    }
    const e = enumOf("ibv_mtu");
    assert.deepEqual([sizeOf(e), alignOf(e)], [4, 4]);
    const s = struct("s", [["c", "u8"], ["state", e], ["signed", enumOf("x", "i32")]]);
    assert.deepEqual(offsets(s), { c: 0, state: 4, signed: 8 });
  });

  await t.step(
    "nested structs are aligned to their strictest member and keep their padding",
    () => {
      const inner = struct("inner", [["x", "u8"], ["y", "u16"]]);
      assert.deepEqual([inner.size, inner.align], [4, 2]);
      const outer = struct("outer", [["a", "u8"], ["in", inner], ["b", "u8"]]);
      assert.deepEqual(offsets(outer), { a: 0, in: 2, "in.x": 2, "in.y": 4, b: 6 });
      assert.equal(outer.size, 8);
    },
  );

  await t.step("unions put every member at 0 and round the largest up", () => {
    const u = union("u", [["bytes", array("u8", 5)], ["word", "u32"]]);
    assert.deepEqual(offsets(u), { bytes: 0, word: 0 });
    assert.deepEqual([u.size, u.align], [8, 4]);
    const s = struct("s", [["tag", "u8"], ["value", u], ["after", "u8"]]);
    assert.deepEqual([s.offsetOf("value.word"), s.offsetOf("after"), s.size], [4, 12, 16]);
  });

  await t.step("arrays take their element's alignment and can be indexed by path", () => {
    const s = struct("s", [["a", "u8"], ["b", array("u64", 2)], ["c", array("u16", 3)]]);
    assert.deepEqual(offsets(s), { a: 0, b: 8, c: 24 });
    assert.deepEqual([s.size, s.align], [32, 8]);
    assert.equal(s.offsetOf("b.1"), 16);
    assert.equal(s.offsetOf("c.2"), 28);
    assert.throws(() => s.offsetOf("c.3"), InvariantError);
  });

  await t.step("opaque blobs use their declared size and alignment", () => {
    const s = struct("s", [["a", "u8"], ["mutex", opaque(40, 8, "pthread_mutex_t")], ["b", "u8"]]);
    assert.deepEqual(offsets(s), { a: 0, mutex: 8, b: 48 });
    assert.equal(s.size, 56);
    assert.throws(() => opaque(10, 4), InvariantError);
  });

  await t.step("anonymous unions and structs are addressed as direct members", () => {
    const s = struct("wr", [
      ["flags", "u32"],
      anonymous(union("imm", [["imm_data", "u32"], ["invalidate_rkey", "u32"]])),
      anonymous(union("big", [
        ["bind", struct("bind", [["mw", "ptr"], ["rkey", "u32"]])],
        anonymous(struct("tso", [["hdr", "ptr"], ["mss", "u16"]])),
      ])),
      ["tail", "u8"],
    ]);
    assert.deepEqual(offsets(s), {
      flags: 0,
      imm_data: 4,
      invalidate_rkey: 4,
      bind: 8,
      "bind.mw": 8,
      "bind.rkey": 16,
      hdr: 8,
      mss: 16,
      tail: 24,
    });
    assert.equal(s.size, 32);
    assert.ok(s.members.every((m) => m.path !== "" && !m.path.startsWith(".")));
  });

  await t.step("deep dotted paths resolve through nested members", () => {
    const gid = union("gid", [
      ["raw", array("u8", 16)],
      ["global", struct("global", [["subnet_prefix", "u64"], ["interface_id", "u64"]])],
    ]);
    const grh = struct("grh", [["dgid", gid], ["flow_label", "u32"], ["hop_limit", "u8"]]);
    const ah = struct("ah", [["grh", grh], ["dlid", "u16"]]);
    assert.equal(ah.offsetOf("grh.dgid.global.interface_id"), 8);
    assert.equal(ah.offsetOf("grh.dgid.raw.15"), 15);
    assert.equal(ah.offsetOf("grh.hop_limit"), 20);
    assert.equal(ah.offsetOf("dlid"), 24);
    assert.equal(ah.size, 32);
  });

  await t.step("members list every path with offset, size, alignment and type", () => {
    const s = struct("s", [["a", "u16"], [
      "n",
      struct("n", [["x", "u32"], ["y", array("u8", 3)]]),
    ]]);
    assert.deepEqual(
      s.members.map(({ path, offset, size, align }) => ({ path, offset, size, align })),
      [
        { path: "a", offset: 0, size: 2, align: 2 },
        { path: "n", offset: 4, size: 8, align: 4 },
        { path: "n.x", offset: 4, size: 4, align: 4 },
        { path: "n.y", offset: 8, size: 3, align: 1 },
      ],
    );
    assert.equal(s.members[2].type, "u32");
  });

  await t.step("unknown paths, duplicate members and bad anonymous members are refused", () => {
    const s = struct("s", [["a", "u8"]]);
    assert.throws(() => s.offsetOf("b" as "a"), /No member "b" in struct s/);
    assert.throws(
      () => struct("d", [["x", "u8"], anonymous(union("u", [["x", "u32"]]))]),
      /duplicate member "x"/,
    );
    assert.throws(() => struct("e", [["", "u32"]]), /only a struct or union can be anonymous/);
  });
});

Deno.test("field accessors round-trip every scalar type in little-endian order", async (t) => {
  const s = struct("all", [
    ["u8", "u8"],
    ["i8", "i8"],
    ["u16", "u16"],
    ["i16", "i16"],
    ["u32", "u32"],
    ["i32", "i32"],
    ["u64", "u64"],
    ["i64", "i64"],
    ["f32", "f32"],
    ["f64", "f64"],
    ["ptr", "ptr"],
    ["mtu", enumOf("ibv_mtu")],
    ["arr", array("u16", 4)],
  ]);
  const base = 8; // a struct inside a larger buffer
  const view = new DataView(new ArrayBuffer(base + s.size));

  await t.step("get returns what set stored, at the right offset from base", () => {
    const cases = [
      ["u8", 0xff],
      ["i8", -128],
      ["u16", 0xbeef],
      ["i16", -2],
      ["u32", 0xffff_ffff],
      ["i32", -0x8000_0000],
      ["u64", 2 ** 47 + 5],
      ["i64", -(2 ** 40) - 3],
      ["f32", 1.5],
      ["f64", Math.PI],
      ["ptr", 0x7fff_dead_beef],
      ["mtu", 5],
      ["arr.3", 0x1234],
    ] as const;
    for (const [path, value] of cases) {
      const field = s.field(path);
      field.set(view, base, value);
      assert.equal(field.get(view, base), value, path);
      assert.equal(field.offset, s.offsetOf(path));
    }
    assert.equal(s.field("mtu").type, "u32");
  });

  await t.step("64-bit values are stored as little-endian two's complement", () => {
    s.field("i64").set(view, base, -1);
    assert.equal(view.getBigInt64(base + s.offsetOf("i64"), true), -1n);
    s.field("ptr").set(view, base, 0x1_0000_0002);
    assert.equal(view.getUint32(base + s.offsetOf("ptr"), true), 2);
    assert.equal(view.getUint32(base + s.offsetOf("ptr") + 4, true), 1);
    s.field("i64").set(view, base, -(2 ** 32));
    assert.equal(view.getBigInt64(base + s.offsetOf("i64"), true), -(2n ** 32n));
  });

  await t.step("getBig and setBig carry full 64-bit values", () => {
    const u64 = s.field("u64");
    u64.setBig(view, base, 0xffff_ffff_ffff_ffffn);
    assert.equal(u64.getBig(view, base), 0xffff_ffff_ffff_ffffn);
    assert.throws(() => u64.get(view, base), /not a safe integer: use getBig/);
    const i64 = s.field("i64");
    i64.setBig(view, base, -(2n ** 63n));
    assert.equal(i64.getBig(view, base), -(2n ** 63n));
    const u16 = s.field("u16");
    u16.setBig(view, base, 513n);
    assert.equal(u16.get(view, base), 513);
    assert.equal(u16.getBig(view, base), 513n);
  });

  await t.step("set refuses values that do not fit the type", () => {
    assert.throws(() => s.field("u8").set(view, base, 256), InvariantError);
    assert.throws(() => s.field("i16").set(view, base, 40000), InvariantError);
    assert.throws(() => s.field("u32").set(view, base, -1), InvariantError);
    assert.throws(() => s.field("u32").set(view, base, 1.5), InvariantError);
    assert.throws(() => s.field("u64").set(view, base, 2 ** 53), InvariantError);
    assert.throws(() => s.field("ptr").set(view, base, -8), InvariantError);
    assert.throws(() => s.field("u64").setBig(view, base, 2n ** 64n), InvariantError);
    assert.throws(() => s.field("i8").setBig(view, base, 128n), InvariantError);
  });

  await t.step("field refuses aggregate members", () => {
    const n = struct("n", [["inner", struct("i", [["x", "u8"]])], ["raw", array("u8", 2)]]);
    assert.throws(() => n.field("inner"), /not a scalar/);
    assert.throws(() => n.field("raw"), /not a scalar/);
    assert.equal(n.field("raw.1").offset, 2);
  });

  await t.step("read and readPointer see foreign memory through a pointer", () => {
    const buffer = new ArrayBuffer(base + s.size);
    const mem = new DataView(buffer);
    s.field("u64").set(mem, base, 2 ** 47 + 7);
    s.field("i32").set(mem, base, -42);
    const target = new ArrayBuffer(8);
    const targetPtr = Deno.UnsafePointer.of(target);
    assert.ok(targetPtr !== null);
    s.field("ptr").set(mem, base, Number(Deno.UnsafePointer.value(targetPtr)));
    const ptr = Deno.UnsafePointer.of(buffer);
    assert.ok(ptr !== null);
    assert.equal(s.field("u64").read(ptr, base), 2 ** 47 + 7);
    assert.equal(s.field("i32").read(ptr, base), -42);
    assert.ok(Deno.UnsafePointer.equals(s.field("ptr").readPointer(ptr, base), targetPtr));
    assert.throws(() => s.field("u64").readPointer(ptr, base), /not a pointer/);
  });
});
