// Every class of invalid command gets the status a real controller posts, with DNR, and
// none crashes the controller (NVMe Base 2.0, "Generic Command Status Values"; NVM Command
// Set 1.0 for LBA Out of Range and the Read/Write/Write Zeroes fields).
import assert from "node:assert/strict";
import type { NvmeReadCommand, NvmeWriteCommand } from "../../lib/nvme/backend.ts";
import { NvmOpcode } from "../../lib/nvme/command.ts";
import { NvmeController } from "../../lib/nvme/controller.ts";
import { NvmeHost } from "../../lib/nvme/host.ts";
import { MemoryBackend } from "../../lib/nvme/memory_backend.ts";
import { decodeSqe, setSqeIo, Sqe } from "../../lib/nvme/sqe.ts";
import {
  describeStatus,
  type NvmeStatus,
  statusCode,
  statusCodeType,
  statusDoNotRetry,
  statusSuccess,
} from "../../lib/nvme/status.ts";
import { deriveSeed, Prng } from "../../lib/prng.ts";
import { formatSeed, propertySeed } from "../../lib/testing/property.ts";

const block = 4096;
const capacityBlocks = 1024;
const mdtsBlocks = 16; // MDTS 64 KiB

/** A MemoryBackend that counts every call, so a refused command provably never reached it. */
class CountingBackend extends MemoryBackend {
  calls = 0;
  override write(cmd: NvmeWriteCommand): Promise<NvmeStatus> {
    this.calls++;
    return super.write(cmd);
  }
  override read(cmd: NvmeReadCommand): Promise<NvmeStatus> {
    this.calls++;
    return super.read(cmd);
  }
  override flush(): Promise<NvmeStatus> {
    this.calls++;
    return super.flush();
  }
}

function rig() {
  const backend = new CountingBackend(capacityBlocks);
  const controller = new NvmeController({
    backend,
    capacityBlocks,
    sqDepth: 8,
    mdtsBytes: mdtsBlocks * block,
  });
  return { backend, controller, host: new NvmeHost(controller) };
}

interface Case {
  name: string;
  sqe: (sqe: Sqe) => void;
  data?: Uint8Array | "none";
}

/** A valid one-block Write to LBA 0, then `edit`. */
function entry(edit: (sqe: Sqe) => void): Sqe {
  const sqe = new Sqe();
  sqe.opcode = NvmOpcode.write;
  sqe.nsid = 1;
  setSqeIo(sqe, { slba: 0, nlb: 0 });
  edit(sqe);
  return sqe;
}

function io(opcode: number, slba: number, nlb: number) {
  return (sqe: Sqe) => {
    sqe.opcode = opcode;
    setSqeIo(sqe, { slba, nlb });
  };
}

/** Runs each case on a fresh rig; asserts SCT 0h, `sc` and DNR, and that nothing was done. */
async function expectAll(cases: Case[], sc: number, dnr = true): Promise<void> {
  for (const c of cases) {
    const { backend, host } = rig();
    const sqe = entry(c.sqe);
    const blocks = (sqe.cdw12 & 0xffff) + 1;
    const data = c.data === "none"
      ? undefined
      : c.data ?? (sqe.opcode === NvmOpcode.write || sqe.opcode === NvmOpcode.read
        ? new Uint8Array(blocks * block).fill(0xaa)
        : undefined);
    const { status } = await host.submitEntry(sqe, data);
    const what = `${c.name}: ${describeStatus(status)}`;
    assert.equal(statusCodeType(status), 0, what);
    assert.equal(statusCode(status), sc, what);
    assert.equal(statusDoNotRetry(status), dnr, what);
    assert.equal(backend.calls, 0, `${c.name}: the backend was never called`);
  }
}

async function expectSuccess(cases: Case[]): Promise<void> {
  for (const c of cases) {
    const { host } = rig();
    const sqe = entry(c.sqe);
    const blocks = (sqe.cdw12 & 0xffff) + 1;
    const isIo = sqe.opcode === NvmOpcode.write || sqe.opcode === NvmOpcode.read;
    const data = isIo ? new Uint8Array(blocks * block) : undefined;
    const { status } = await host.submitEntry(sqe, data);
    assert.equal(status, statusSuccess, `${c.name}: ${describeStatus(status)}`);
  }
}

Deno.test("unsupported opcodes → Invalid Command Opcode (01h), DNR", async () => {
  const opcodes = [0x04, 0x05, 0x09, 0x0c, 0x0d, 0x19, 0x7f, 0x80, 0xff];
  await expectAll(opcodes.map((op) => ({ name: `opcode ${op}`, sqe: (s) => s.opcode = op })), 0x01);
});

Deno.test("NSID 0, unknown or broadcast outside Flush → Invalid Namespace or Format (0Bh)", async () => {
  const nsids = [0, 2, 0x100, 0xffff_fffe, 0xffff_ffff];
  const cases: Case[] = nsids.flatMap((nsid) => [
    { name: `write nsid ${nsid}`, sqe: (s) => s.nsid = nsid },
    { name: `read nsid ${nsid}`, sqe: (s) => (io(NvmOpcode.read, 0, 0)(s), s.nsid = nsid) },
    { name: `zeroes nsid ${nsid}`, sqe: (s) => (io(0x08, 0, 0)(s), s.nsid = nsid) },
  ]);
  cases.push({ name: "flush nsid 0", sqe: (s) => (s.opcode = 0, s.cdw12 = 0, s.nsid = 0) });
  cases.push({ name: "flush nsid 2", sqe: (s) => (s.opcode = 0, s.cdw12 = 0, s.nsid = 2) });
  await expectAll(cases, 0x0b);
  await expectSuccess([
    { name: "flush broadcast", sqe: (s) => (s.opcode = 0, s.cdw12 = 0, s.nsid = 0xffff_ffff) },
  ]);
});

Deno.test("ranges past the namespace, wrapping or not → LBA Out of Range (80h)", async () => {
  const cases: Case[] = [];
  for (const op of [NvmOpcode.write, NvmOpcode.read, NvmOpcode.writeZeroes]) {
    cases.push(
      { name: `${op}: SLBA = capacity`, sqe: io(op, capacityBlocks, 0) },
      { name: `${op}: last block + 1`, sqe: io(op, capacityBlocks - 1, 1) },
      { name: `${op}: 16 blocks one past`, sqe: io(op, capacityBlocks - 15, 15) },
      { name: `${op}: SLBA 2^32`, sqe: io(op, 2 ** 32, 0) },
      { name: `${op}: SLBA 2^53`, sqe: (s) => (io(op, 0, 0)(s), s.cdw11 = 0x20_0000) },
      // u64 SLBA + NLB + 1 wraps to 1 here: a controller doing u64 sums would accept it.
      {
        name: `${op}: SLBA 2^64-1`,
        sqe: (s) => (io(op, 0, 1)(s), s.cdw10 = s.cdw11 = 2 ** 32 - 1),
      },
    );
  }
  await expectAll(cases, 0x80);
  await expectSuccess([NvmOpcode.write, NvmOpcode.read, NvmOpcode.writeZeroes].flatMap((op) => [
    { name: `${op}: last block`, sqe: io(op, capacityBlocks - 1, 0) },
    { name: `${op}: last 16 blocks`, sqe: io(op, capacityBlocks - 16, 15) },
  ]));
});

Deno.test("transfers past MDTS (and WZSL) → Invalid Field in Command (02h)", async () => {
  const over = mdtsBlocks; // 0's based: 17 blocks
  await expectAll([
    { name: "write 17 blocks", sqe: io(NvmOpcode.write, 0, over) },
    { name: "read 17 blocks", sqe: io(NvmOpcode.read, 0, over) },
    { name: "zeroes 17 blocks", sqe: io(NvmOpcode.writeZeroes, 0, over) },
    {
      name: "write 65536 blocks",
      sqe: io(NvmOpcode.write, 0, 0xffff),
      data: new Uint8Array(block),
    },
    { name: "MDTS is checked before the range", sqe: io(NvmOpcode.read, 2 ** 40, over) },
  ], 0x02);
});

Deno.test("reserved bits, FUSE and PSDT → Invalid Field in Command (02h)", async () => {
  const cases: Case[] = [];
  for (const r of [1, 2, 4, 8]) {
    cases.push({
      name: `CDW0 reserved ${r}`,
      sqe: (s) => s.cdw0Reserved = r,
    });
  }
  for (const f of [1, 2, 3]) cases.push({ name: `FUSE ${f}`, sqe: (s) => s.fuse = f });
  for (const p of [1, 2, 3]) cases.push({ name: `PSDT ${p}`, sqe: (s) => s.psdt = p });
  cases.push(
    { name: "flush PSDT 3", sqe: (s) => (s.opcode = 0, s.cdw12 = 0, s.psdt = 3) },
    { name: "write CDW12 bit 25", sqe: (s) => s.cdw12 = (s.cdw12 | 1 << 25) >>> 0 },
    {
      name: "read CDW12 bit 25",
      sqe: (s) => (io(NvmOpcode.read, 0, 0)(s), s.cdw12 = (s.cdw12 | 1 << 25) >>> 0),
    },
    { name: "write DTYPE 1", sqe: (s) => s.cdw12 = (s.cdw12 | 1 << 20) >>> 0 },
    { name: "write DTYPE Fh", sqe: (s) => s.cdw12 = (s.cdw12 | 0xf << 20) >>> 0 },
    { name: "flush with a data buffer", sqe: (s) => s.opcode = 0, data: new Uint8Array(block) },
    { name: "zeroes with a data buffer", sqe: (s) => s.opcode = 8, data: new Uint8Array(block) },
  );
  await expectAll(cases, 0x02);
  await expectSuccess([
    {
      name: "FUA, LR and PRINFO are accepted",
      sqe: (s) => s.cdw12 = (s.cdw12 | (0xfc00_0000 & ~(1 << 25))) >>> 0,
    },
    {
      name: "read LR",
      sqe: (s) => (io(NvmOpcode.read, 0, 0)(s), s.cdw12 = (s.cdw12 | 1 << 31) >>> 0),
    },
  ]);
});

Deno.test("a buffer that does not match NLB → Data Transfer Error (04h), DNR", async () => {
  await expectAll([
    { name: "write, no buffer", sqe: io(NvmOpcode.write, 0, 1), data: "none" },
    { name: "write, one block short", sqe: io(NvmOpcode.write, 0, 1), data: new Uint8Array(block) },
    {
      name: "write, a block long",
      sqe: io(NvmOpcode.write, 0, 0),
      data: new Uint8Array(2 * block),
    },
    {
      name: "write, a byte short",
      sqe: io(NvmOpcode.write, 0, 0),
      data: new Uint8Array(block - 1),
    },
    { name: "read, no buffer", sqe: io(NvmOpcode.read, 0, 0), data: "none" },
    { name: "read, too small", sqe: io(NvmOpcode.read, 0, 3), data: new Uint8Array(block) },
  ], 0x04);
});

Deno.test("random entries each get exactly one completion and never crash the controller", async () => {
  // Mostly-valid entries with random corruption reach every check; the oracle is simple:
  // success only when every field is one this controller accepts. One controller serves
  // every entry, so it must also keep serving after each refusal.
  const { controller, host } = rig();
  const baseSeed = propertySeed();
  const runs = 400;
  for (let run = 0; run < runs; run++) {
    const seed = deriveSeed(baseSeed, run);
    try {
      const prng = new Prng(seed);
      const { sqe, data } = randomEntry(prng);
      const { status } = await host.submitEntry(sqe, data);
      assert.equal(status === statusSuccess, isAccepted(sqe, data), describeStatus(status));
      assert.equal(controller.counters.posted, run + 1);
      assert.equal(controller.outstanding, 0);
    } catch (cause) {
      console.error(`random entries failed: replay with RRL_SEED=${formatSeed(seed)}`);
      throw new Error(`Run ${run} failed (seed ${formatSeed(seed)})`, { cause });
    }
  }
});

function randomEntry(prng: Prng): { sqe: Sqe; data: Uint8Array | undefined } {
  const sqe = new Sqe();
  const view = new DataView(new ArrayBuffer(64));
  prng.fill(new Uint8Array(view.buffer));
  decodeSqe(view, 0, sqe);
  if (prng.chance(0.7)) sqe.opcode = prng.pick([0, 1, 2, 8]);
  if (prng.chance(0.7)) sqe.fuse = sqe.psdt = sqe.cdw0Reserved = 0;
  if (prng.chance(0.7)) sqe.nsid = 1;
  if (prng.chance(0.7)) sqe.cdw11 = 0;
  if (prng.chance(0.7)) sqe.cdw10 %= capacityBlocks;
  if (prng.chance(0.7)) {
    sqe.cdw12 = ((sqe.cdw12 & 0xc3f0_0000) | prng.int(0, mdtsBlocks)) >>> 0;
  }
  const blocks = (sqe.cdw12 & 0xffff) + 1;
  const length = prng.chance(0.8) ? blocks * block : prng.int(0, 70_000);
  return { sqe, data: prng.chance(0.9) ? new Uint8Array(length) : undefined };
}

/** An independent statement of what this controller accepts, for the fuzz oracle. */
function isAccepted(sqe: Sqe, data: Uint8Array | undefined): boolean {
  const op = sqe.opcode;
  if (![0, 1, 2, 8].includes(op) || sqe.fuse || sqe.psdt || sqe.cdw0Reserved) return false;
  if (op === 0) return (sqe.nsid === 1 || sqe.nsid === 0xffff_ffff) && data === undefined;
  if (sqe.nsid !== 1) return false;
  const blocks = (sqe.cdw12 & 0xffff) + 1;
  if (op !== 8 && (sqe.cdw12 & (1 << 25))) return false;
  if (op === 1 && ((sqe.cdw12 >>> 20) & 0xf) !== 0) return false;
  if (op === 8 && data !== undefined) return false;
  if (blocks > mdtsBlocks) return false;
  if (BigInt(sqe.cdw11) * 2n ** 32n + BigInt(sqe.cdw10) + BigInt(blocks) > capacityBlocks) {
    return false;
  }
  return op === 8 || data?.byteLength === blocks * block;
}
