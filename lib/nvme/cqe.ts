/**
 * The 16-byte NVMe completion queue entry (NVMe Base Specification 2.0, "Common Completion
 * Queue Entry" for memory-based transports).
 *
 * | bytes | field                                                      |
 * | ----- | ---------------------------------------------------------- |
 * | 0-3   | DW0: command specific                                      |
 * | 4-7   | DW1: reserved (1.4) / command specific (2.0); 0 here      |
 * | 8-11  | DW2: SQ Head Pointer 15:0, SQ Identifier 31:16             |
 * | 12-15 | DW3: CID 15:0, Phase Tag 16, Status Field 31:17            |
 *
 * The Status Field is an {@linkcode NvmeStatus} (SC 24:17, SCT 27:25, CRD 29:28, M 30,
 * DNR 31 of DW3). All fields are little-endian.
 *
 * @module
 */

import { checkEntryFits, checkUint, type EntryRefusal, entryRefusal } from "./entry.ts";
import { type NvmeStatus, statusFieldMax } from "./status.ts";

/** Bytes in one completion queue entry (NVMe Base 2.0, "Common Completion Queue Entry"). */
export const cqeBytes = 16;

/** Byte offset of DW3 (CID, phase, status) inside an entry. */
export const cqeDw3Offset = 12;

/** Bit of the Phase Tag in DW3 (NVMe Base 2.0, "Common Completion Queue Entry"). */
export const cqePhaseShift = 16;

const u32Max = 0xffff_ffff;
const u16Max = 0xffff;

/**
 * A decoded completion queue entry; allocate once and reuse as the target of
 * {@linkcode decodeCqe} (NVMe Base 2.0, "Common Completion Queue Entry").
 */
export class Cqe {
  /** DW0, command specific (0 for Read, Write, Flush, Write Zeroes). */
  dw0 = 0;
  /** DW1, reserved in NVMe 1.4 and command specific in 2.0 (0 for every command here). */
  dw1 = 0;
  /** DW2 bits 15:0, SQ Head Pointer (SQHD): the controller's SQ head when it posted. */
  sqHead = 0;
  /** DW2 bits 31:16, SQ Identifier (SQID). */
  sqId = 0;
  /** DW3 bits 15:0, Command Identifier (CID) of the completed command. */
  cid = 0;
  /** DW3 bit 16, Phase Tag (P): inverted by the controller on each pass over the queue. */
  phase = 0;
  /** DW3 bits 31:17, Status Field. */
  status: NvmeStatus = 0;

  /** Sets every field to zero, for reuse. */
  clear(): void {
    this.dw0 =
      this.dw1 =
      this.sqHead =
      this.sqId =
      this.cid =
      this.phase =
      this.status =
        0;
  }
}

/**
 * Decodes the 16-byte entry at `offset` of `view` into `into` and returns undefined, or
 * returns why it cannot, leaving `into` untouched (NVMe Base 2.0, "Common Completion Queue
 * Entry").
 */
export function decodeCqe(view: DataView, offset: number, into: Cqe): EntryRefusal | undefined {
  const refusal = entryRefusal(view, offset, cqeBytes);
  if (refusal !== undefined) return refusal;
  into.dw0 = view.getUint32(offset, true);
  into.dw1 = view.getUint32(offset + 4, true);
  const dw2 = view.getUint32(offset + 8, true);
  into.sqHead = dw2 & u16Max;
  into.sqId = dw2 >>> 16;
  const dw3 = view.getUint32(offset + cqeDw3Offset, true);
  into.cid = dw3 & u16Max;
  into.phase = (dw3 >>> cqePhaseShift) & 1;
  into.status = dw3 >>> 17;
  return undefined;
}

/**
 * Encodes `cqe` as 16 bytes at `offset` of `view` (NVMe Base 2.0, "Common Completion
 * Queue Entry"). RangeError, with nothing written, if a field does not fit its bits or the
 * entry does not fit the view.
 */
export function encodeCqe(view: DataView, offset: number, cqe: Cqe): void {
  checkEntryFits(view, offset, cqeBytes, "a completion queue entry");
  checkUint(cqe.dw0, u32Max, "CQE DW0");
  checkUint(cqe.dw1, u32Max, "CQE DW1");
  checkUint(cqe.sqHead, u16Max, "CQE SQ head");
  checkUint(cqe.sqId, u16Max, "CQE SQ identifier");
  checkUint(cqe.cid, u16Max, "CQE CID");
  checkUint(cqe.phase, 1, "CQE phase tag");
  checkUint(cqe.status, statusFieldMax, "CQE status field");
  view.setUint32(offset, cqe.dw0, true);
  view.setUint32(offset + 4, cqe.dw1, true);
  view.setUint32(offset + 8, (cqe.sqHead | (cqe.sqId << 16)) >>> 0, true);
  const dw3 = cqe.cid | (cqe.phase << cqePhaseShift) | (cqe.status << 17);
  view.setUint32(offset + cqeDw3Offset, dw3 >>> 0, true);
}

/** Reads only the Phase Tag of the entry at `offset`; the caller has checked the bounds. */
export function cqePhaseAt(view: DataView, offset: number): number {
  return (view.getUint32(offset + cqeDw3Offset, true) >>> cqePhaseShift) & 1;
}
