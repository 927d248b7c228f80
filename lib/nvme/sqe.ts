/**
 * The 64-byte NVMe submission queue entry (NVMe Base Specification 2.0, "Common Command
 * Format"; NVM Command Set 1.0, "Read command" and "Write command" for CDW10..CDW12).
 *
 * | bytes | field                                                              |
 * | ----- | ------------------------------------------------------------------ |
 * | 0-3   | CDW0: OPC 7:0, FUSE 9:8, reserved 13:10, PSDT 15:14, CID 31:16     |
 * | 4-7   | NSID                                                               |
 * | 8-15  | CDW2, CDW3                                                         |
 * | 16-23 | MPTR (metadata pointer)                                            |
 * | 24-39 | DPTR: PRP1 (24-31), PRP2 (32-39)                                   |
 * | 40-63 | CDW10..CDW15; Read/Write: SLBA = CDW11:CDW10, CDW12 NLB 15:0, FUA 30 |
 *
 * All fields are little-endian. 64-bit fields are kept as two u32 halves so decoding
 * allocates nothing (a bigint is a heap object).
 *
 * @module
 */

import { checkEntryFits, checkUint, type EntryRefusal, entryRefusal } from "./entry.ts";

/** Bytes in one submission queue entry (NVMe Base 2.0, "Common Command Format"). */
export const sqeBytes = 64;

const u32Max = 0xffff_ffff;
const u16Max = 0xffff;
const twoTo32 = 0x1_0000_0000;
const fuaBit = 1 << 30;

/**
 * A decoded submission queue entry; allocate once and reuse as the target of
 * {@linkcode decodeSqe} (NVMe Base 2.0, "Common Command Format").
 */
export class Sqe {
  /** CDW0 bits 7:0, Opcode (OPC). */
  opcode = 0;
  /** CDW0 bits 9:8, Fused Operation (FUSE): 00b normal, 01b first, 10b second. */
  fuse = 0;
  /** CDW0 bits 13:10, reserved: kept so the controller can refuse non-zero values. */
  cdw0Reserved = 0;
  /** CDW0 bits 15:14, PRP or SGL for Data Transfer (PSDT): 00b PRPs. */
  psdt = 0;
  /** CDW0 bits 31:16, Command Identifier (CID). */
  cid = 0;
  /** Bytes 4-7, Namespace Identifier (NSID). */
  nsid = 0;
  /** Bytes 8-11, Command Dword 2. */
  cdw2 = 0;
  /** Bytes 12-15, Command Dword 3. */
  cdw3 = 0;
  /** Bytes 16-19, Metadata Pointer bits 31:0. */
  mptrLow = 0;
  /** Bytes 20-23, Metadata Pointer bits 63:32. */
  mptrHigh = 0;
  /** Bytes 24-27, PRP Entry 1 bits 31:0. */
  prp1Low = 0;
  /** Bytes 28-31, PRP Entry 1 bits 63:32. */
  prp1High = 0;
  /** Bytes 32-35, PRP Entry 2 bits 31:0. */
  prp2Low = 0;
  /** Bytes 36-39, PRP Entry 2 bits 63:32. */
  prp2High = 0;
  /** Bytes 40-43, CDW10 (Read/Write: SLBA bits 31:0). */
  cdw10 = 0;
  /** Bytes 44-47, CDW11 (Read/Write: SLBA bits 63:32). */
  cdw11 = 0;
  /** Bytes 48-51, CDW12 (Read/Write: NLB 15:0, FUA 30, LR 31). */
  cdw12 = 0;
  /** Bytes 52-55, CDW13. */
  cdw13 = 0;
  /** Bytes 56-59, CDW14. */
  cdw14 = 0;
  /** Bytes 60-63, CDW15. */
  cdw15 = 0;

  /** Sets every field to zero, for reuse. */
  clear(): void {
    this.opcode =
      this.fuse =
      this.cdw0Reserved =
      this.psdt =
      this.cid =
      this.nsid =
        0;
    this.cdw2 =
      this.cdw3 =
      this.mptrLow =
      this.mptrHigh =
        0;
    this.prp1Low =
      this.prp1High =
      this.prp2Low =
      this.prp2High =
        0;
    this.cdw10 =
      this.cdw11 =
      this.cdw12 =
      this.cdw13 =
      this.cdw14 =
      this.cdw15 =
        0;
  }
}

/** Dwords 1..15 in wire order, after CDW0. */
const dwordFields = [
  "nsid",
  "cdw2",
  "cdw3",
  "mptrLow",
  "mptrHigh",
  "prp1Low",
  "prp1High",
  "prp2Low",
  "prp2High",
  "cdw10",
  "cdw11",
  "cdw12",
  "cdw13",
  "cdw14",
  "cdw15",
] as const satisfies readonly (keyof Sqe)[];

/**
 * Decodes the 64-byte entry at `offset` of `view` into `into` and returns undefined, or
 * returns why it cannot, leaving `into` untouched (NVMe Base 2.0, "Common Command Format").
 */
export function decodeSqe(view: DataView, offset: number, into: Sqe): EntryRefusal | undefined {
  const refusal = entryRefusal(view, offset, sqeBytes);
  if (refusal !== undefined) return refusal;
  const cdw0 = view.getUint32(offset, true);
  into.opcode = cdw0 & 0xff;
  into.fuse = (cdw0 >>> 8) & 0x3;
  into.cdw0Reserved = (cdw0 >>> 10) & 0xf;
  into.psdt = (cdw0 >>> 14) & 0x3;
  into.cid = cdw0 >>> 16;
  into.nsid = view.getUint32(offset + 4, true);
  into.cdw2 = view.getUint32(offset + 8, true);
  into.cdw3 = view.getUint32(offset + 12, true);
  into.mptrLow = view.getUint32(offset + 16, true);
  into.mptrHigh = view.getUint32(offset + 20, true);
  into.prp1Low = view.getUint32(offset + 24, true);
  into.prp1High = view.getUint32(offset + 28, true);
  into.prp2Low = view.getUint32(offset + 32, true);
  into.prp2High = view.getUint32(offset + 36, true);
  into.cdw10 = view.getUint32(offset + 40, true);
  into.cdw11 = view.getUint32(offset + 44, true);
  into.cdw12 = view.getUint32(offset + 48, true);
  into.cdw13 = view.getUint32(offset + 52, true);
  into.cdw14 = view.getUint32(offset + 56, true);
  into.cdw15 = view.getUint32(offset + 60, true);
  return undefined;
}

/**
 * Encodes `sqe` as 64 bytes at `offset` of `view` (NVMe Base 2.0, "Common Command
 * Format"). RangeError, with nothing written, if a field does not fit its bits or the
 * entry does not fit the view: encoding takes the caller's own values, so that is misuse.
 */
export function encodeSqe(view: DataView, offset: number, sqe: Sqe): void {
  checkEntryFits(view, offset, sqeBytes, "a submission queue entry");
  checkUint(sqe.opcode, 0xff, "SQE opcode");
  checkUint(sqe.fuse, 0x3, "SQE FUSE");
  checkUint(sqe.cdw0Reserved, 0xf, "SQE CDW0 bits 13:10");
  checkUint(sqe.psdt, 0x3, "SQE PSDT");
  checkUint(sqe.cid, u16Max, "SQE CID");
  for (let i = 0; i < dwordFields.length; i++) {
    checkUint(sqe[dwordFields[i]], u32Max, `SQE ${dwordFields[i]}`);
  }
  const cdw0 = sqe.opcode | (sqe.fuse << 8) | (sqe.cdw0Reserved << 10) | (sqe.psdt << 14) |
    (sqe.cid << 16);
  view.setUint32(offset, cdw0 >>> 0, true);
  for (let i = 0; i < dwordFields.length; i++) {
    view.setUint32(offset + 4 * (i + 1), sqe[dwordFields[i]], true);
  }
}

/**
 * Returns the Starting LBA of a Read/Write/Write Zeroes entry, CDW11:CDW10 (NVM Command
 * Set 1.0, "Read command"). Exact below 2^53; above, a value ≥ 2^53 (beyond any capacity).
 */
export function sqeSlba(sqe: Sqe): number {
  return sqe.cdw11 * twoTo32 + sqe.cdw10;
}

/** Returns the 0's based Number of Logical Blocks, CDW12 bits 15:0 (NVM Command Set 1.0). */
export function sqeNlb(sqe: Sqe): number {
  return sqe.cdw12 & u16Max;
}

/** Returns Force Unit Access, CDW12 bit 30 (NVM Command Set 1.0, "Write command"). */
export function sqeFua(sqe: Sqe): boolean {
  return (sqe.cdw12 & fuaBit) !== 0;
}

/** The I/O fields of {@linkcode setSqeIo}. */
export interface SqeIoFields {
  /** Starting LBA, a safe integer. */
  slba: number;
  /** 0's based number of logical blocks, 0..65535 (0 means one block). */
  nlb: number;
  /** Force Unit Access (default false). */
  fua?: boolean;
}

/**
 * Sets SLBA (CDW11:CDW10) and NLB and FUA in CDW12, keeping CDW12's other bits (NVM
 * Command Set 1.0, "Read command", "Write command"). RangeError if a value does not fit.
 */
export function setSqeIo(sqe: Sqe, fields: SqeIoFields): void {
  checkUint(fields.slba, Number.MAX_SAFE_INTEGER, "SLBA");
  checkUint(fields.nlb, u16Max, "NLB");
  sqe.cdw10 = fields.slba % twoTo32;
  sqe.cdw11 = Math.floor(fields.slba / twoTo32);
  const kept = sqe.cdw12 & ~(fuaBit | u16Max);
  sqe.cdw12 = (kept | (fields.fua ? fuaBit : 0) | fields.nlb) >>> 0;
}
