// Entry codecs and the status field against bytes computed by hand from NVMe Base 2.0
// ("Common Command Format", "Common Completion Queue Entry") and NVM Command Set 1.0.
import assert from "node:assert/strict";
import { Cqe, cqeBytes, decodeCqe, encodeCqe } from "../../lib/nvme/cqe.ts";
import {
  decodeSqe,
  encodeSqe,
  setSqeIo,
  Sqe,
  sqeFua,
  sqeNlb,
  sqeSlba,
} from "../../lib/nvme/sqe.ts";
import {
  describeStatus,
  isNvmeStatus,
  nvmeStatus,
  statusCode,
  statusCodeType,
  statusDoNotRetry,
  statusMore,
  statusRetryDelay,
} from "../../lib/nvme/status.ts";
import { forAllSeeds } from "../../lib/testing/property.ts";

function bytesOf(view: DataView, offset: number, length: number): number[] {
  return [...new Uint8Array(view.buffer, view.byteOffset + offset, length)];
}

Deno.test("SQE encoding matches hand-computed bytes", async (t) => {
  await t.step("Write, CID 1234h, PRP1 1_2345_6000h, SLBA 2_0000_0010h, 8 blocks, FUA", () => {
    const sqe = new Sqe();
    sqe.opcode = 0x01;
    sqe.cid = 0x1234;
    sqe.nsid = 1;
    sqe.prp1Low = 0x2345_6000;
    sqe.prp1High = 0x1;
    setSqeIo(sqe, { slba: 0x2_0000_0010, nlb: 7, fua: true });
    const view = new DataView(new ArrayBuffer(64 + 8));
    encodeSqe(view, 8, sqe);
    // CDW0 = OPC 01h | FUSE 0 << 8 | PSDT 0 << 14 | CID 1234h << 16 = 1234_0001h
    // CDW10:CDW11 = SLBA low 0000_0010h, high 0000_0002h
    // CDW12 = FUA 1 << 30 | NLB 7 = 4000_0007h
    const expected = [
      ...[0x01, 0x00, 0x34, 0x12], // CDW0
      ...[0x01, 0x00, 0x00, 0x00], // NSID 1
      ...[0, 0, 0, 0, 0, 0, 0, 0], // CDW2, CDW3
      ...[0, 0, 0, 0, 0, 0, 0, 0], // MPTR
      ...[0x00, 0x60, 0x45, 0x23, 0x01, 0x00, 0x00, 0x00], // PRP1 0000_0001_2345_6000h
      ...[0, 0, 0, 0, 0, 0, 0, 0], // PRP2
      ...[0x10, 0x00, 0x00, 0x00], // CDW10
      ...[0x02, 0x00, 0x00, 0x00], // CDW11
      ...[0x07, 0x00, 0x00, 0x40], // CDW12
      ...[0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0], // CDW13..15
    ];
    assert.deepEqual(bytesOf(view, 8, 64), expected);
    assert.deepEqual(bytesOf(view, 0, 8), [0, 0, 0, 0, 0, 0, 0, 0]);
    const back = new Sqe();
    assert.equal(decodeSqe(view, 8, back), undefined);
    assert.deepEqual(back, sqe);
    assert.equal(sqeSlba(back), 0x2_0000_0010);
    assert.equal(sqeNlb(back), 7);
    assert.equal(sqeFua(back), true);
  });

  await t.step("every CDW0 field and dword set", () => {
    const sqe = new Sqe();
    sqe.opcode = 0x02;
    sqe.fuse = 2;
    sqe.cdw0Reserved = 5;
    sqe.psdt = 3;
    sqe.cid = 0xffff;
    sqe.nsid = 0xffff_ffff;
    sqe.cdw2 = 0xa1b2_c3d4;
    sqe.cdw3 = 0x0102_0304;
    sqe.mptrLow = 0x1111_1111;
    sqe.mptrHigh = 0x2222_2222;
    sqe.prp2Low = 0x0000_1000;
    sqe.prp2High = 0x8000_0000;
    sqe.cdw13 = 1;
    sqe.cdw14 = 0x89ab_cdef;
    sqe.cdw15 = 0x8000_0000;
    const view = new DataView(new ArrayBuffer(64));
    encodeSqe(view, 0, sqe);
    // CDW0 = 02h | 2 << 8 (200h) | 5 << 10 (1400h) | 3 << 14 (C000h) | FFFFh << 16 = FFFF_D602h
    const expected = [
      ...[0x02, 0xd6, 0xff, 0xff],
      ...[0xff, 0xff, 0xff, 0xff],
      ...[0xd4, 0xc3, 0xb2, 0xa1, 0x04, 0x03, 0x02, 0x01],
      ...[0x11, 0x11, 0x11, 0x11, 0x22, 0x22, 0x22, 0x22],
      ...[0, 0, 0, 0, 0, 0, 0, 0],
      ...[0x00, 0x10, 0x00, 0x00, 0x00, 0x00, 0x00, 0x80],
      ...[0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0], // CDW10..12
      ...[0x01, 0x00, 0x00, 0x00, 0xef, 0xcd, 0xab, 0x89, 0x00, 0x00, 0x00, 0x80],
    ];
    assert.deepEqual(bytesOf(view, 0, 64), expected);
    const back = new Sqe();
    decodeSqe(view, 0, back);
    assert.deepEqual(back, sqe);
  });
});

Deno.test("SQE codec refuses what does not fit, writing and reading nothing", async (t) => {
  const view = new DataView(new ArrayBuffer(100));
  await t.step("decode refusals leave the target untouched", () => {
    const into = new Sqe();
    into.cid = 77;
    assert.equal(decodeSqe(view, 37, into), "entry-out-of-bounds");
    assert.equal(decodeSqe(view, -1, into), "offset-invalid");
    assert.equal(decodeSqe(view, 1.5, into), "offset-invalid");
    assert.equal(into.cid, 77);
  });
  await t.step("encode throws RangeError on fields that do not fit", () => {
    const cases: [keyof Sqe, number][] = [
      ["opcode", 256],
      ["fuse", 4],
      ["cdw0Reserved", 16],
      ["psdt", 4],
      ["cid", 65536],
      ["nsid", 2 ** 32],
      ["cdw12", -1],
      ["cdw15", 0.5],
    ];
    for (const [field, value] of cases) {
      const sqe = new Sqe();
      (sqe as unknown as Record<string, number>)[field] = value;
      assert.throws(() => encodeSqe(view, 0, sqe), RangeError, field);
      assert.ok(new Uint8Array(view.buffer).every((b) => b === 0), `${field}: nothing written`);
    }
    assert.throws(() => encodeSqe(view, 40, new Sqe()), RangeError);
    assert.throws(() => setSqeIo(new Sqe(), { slba: 0, nlb: 65536 }), RangeError);
    assert.throws(() => setSqeIo(new Sqe(), { slba: -1, nlb: 0 }), RangeError);
  });
  await t.step("SLBA above 2^53 decodes as a value no capacity reaches", () => {
    const sqe = new Sqe();
    sqe.cdw10 = sqe.cdw11 = 0xffff_ffff;
    assert.ok(sqeSlba(sqe) >= 2 ** 53);
  });
});

Deno.test("SQE encode and decode round-trip random entries", () => {
  forAllSeeds("sqe round trip", (prng) => {
    const raw = new DataView(prng.fill(new Uint8Array(64)).buffer);
    const sqe = new Sqe();
    assert.equal(decodeSqe(raw, 0, sqe), undefined);
    const out = new DataView(new ArrayBuffer(64));
    encodeSqe(out, 0, sqe);
    assert.deepEqual(bytesOf(out, 0, 64), bytesOf(raw, 0, 64));
  }, { runs: 500 });
});

Deno.test("CQE encoding matches hand-computed bytes", async (t) => {
  await t.step("LBA Out of Range with DNR, phase 1, SQHD 5, SQID 1, CID 1234h", () => {
    const cqe = new Cqe();
    cqe.cid = 0x1234;
    cqe.phase = 1;
    cqe.sqHead = 5;
    cqe.sqId = 1;
    cqe.status = nvmeStatus(0, 0x80, { dnr: true });
    assert.equal(cqe.status, 0x4080); // SC 80h | DNR 1 << 14
    const view = new DataView(new ArrayBuffer(cqeBytes));
    encodeCqe(view, 0, cqe);
    // DW2 = SQID 1 << 16 | SQHD 5 = 0001_0005h
    // DW3 = status 4080h << 17 (8100_0000h) | phase 1 << 16 | CID 1234h = 8101_1234h
    const expected = [0, 0, 0, 0, 0, 0, 0, 0, 0x05, 0x00, 0x01, 0x00, 0x34, 0x12, 0x01, 0x81];
    assert.deepEqual(bytesOf(view, 0, 16), expected);
    const back = new Cqe();
    assert.equal(decodeCqe(view, 0, back), undefined);
    assert.deepEqual(back, cqe);
  });

  await t.step("SCT 2h, SC 81h, CRD 1, More, phase 0, DW0 DEADBEEFh", () => {
    const cqe = new Cqe();
    cqe.dw0 = 0xdead_beef;
    cqe.sqHead = 0xffff;
    cqe.sqId = 0xffff;
    cqe.cid = 0xabcd;
    cqe.status = nvmeStatus(2, 0x81, { crd: 1, more: true });
    // status = 81h | 2 << 8 (200h) | 1 << 11 (800h) | 1 << 13 (2000h) = 2A81h
    assert.equal(cqe.status, 0x2a81);
    const view = new DataView(new ArrayBuffer(cqeBytes));
    encodeCqe(view, 0, cqe);
    // DW3 = 2A81h << 17 = 5502_0000h | phase 0 | CID ABCDh = 5502_ABCDh
    const expected = [
      ...[0xef, 0xbe, 0xad, 0xde],
      ...[0, 0, 0, 0],
      ...[0xff, 0xff, 0xff, 0xff],
      ...[0xcd, 0xab, 0x02, 0x55],
    ];
    assert.deepEqual(bytesOf(view, 0, 16), expected);
    const back = new Cqe();
    decodeCqe(view, 0, back);
    assert.equal(statusCode(back.status), 0x81);
    assert.equal(statusCodeType(back.status), 2);
    assert.equal(statusRetryDelay(back.status), 1);
    assert.equal(statusMore(back.status), true);
    assert.equal(statusDoNotRetry(back.status), false);
    assert.equal(back.phase, 0);
  });

  await t.step("refusals and misuse", () => {
    const view = new DataView(new ArrayBuffer(20));
    assert.equal(decodeCqe(view, 5, new Cqe()), "entry-out-of-bounds");
    const cqe = new Cqe();
    cqe.phase = 2;
    assert.throws(() => encodeCqe(view, 0, cqe), RangeError);
    cqe.phase = 0;
    cqe.status = 0x8000;
    assert.throws(() => encodeCqe(view, 0, cqe), RangeError);
  });
});

Deno.test("status field helpers name and bound the status", () => {
  assert.equal(describeStatus(0x4080), "LBA Out of Range (SCT 0h, SC 80h, DNR)");
  assert.equal(describeStatus(0), "Successful Completion (SCT 0h, SC 00h)");
  assert.equal(describeStatus(nvmeStatus(1, 0x0a)), "Status (SCT 1h, SC 0Ah)");
  assert.ok(isNvmeStatus(0x7fff));
  for (const bad of [-1, 0x8000, 1.5, "0", undefined, null, NaN]) {
    assert.equal(isNvmeStatus(bad), false, String(bad));
  }
  assert.throws(() => nvmeStatus(8, 0), RangeError);
  assert.throws(() => nvmeStatus(0, 256), RangeError);
});
