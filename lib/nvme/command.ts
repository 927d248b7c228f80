/**
 * The I/O commands this controller model supports, its one namespace, and the checks that
 * turn a fetched entry into either "valid" or the status a real controller posts.
 *
 * Check order: opcode, common CDW0 fields, NSID, command-specific reserved fields, MDTS,
 * LBA range, and last the data buffer (the controller finds a bad data pointer only when it
 * transfers). NVMe Base 2.0, "Reserved" conventions: a recipient may but need not check
 * reserved bits, and shall report reserved coded values in defined fields as errors.
 *
 * @module
 */

import { GenericStatusCode as Sc, type NvmeStatus, nvmeStatus, statusSuccess } from "./status.ts";
import { type Sqe, sqeNlb, sqeSlba } from "./sqe.ts";
import { blockBytes } from "../block.ts";

/** NVM Command Set I/O opcodes (NVM Command Set 1.0, "Opcodes for NVM Commands"). */
export const NvmOpcode = {
  flush: 0x00,
  write: 0x01,
  read: 0x02,
  writeZeroes: 0x08,
  datasetManagement: 0x09,
} as const;

/** The one active namespace (NVMe Base 2.0, "Namespace Identifier"; NN = 1). */
export const namespaceId = 1;
/** The broadcast NSID, accepted by Flush only (Identify Controller VWC bits 2:1 = 11b). */
export const namespaceIdBroadcast = 0xffff_ffff;
/** Bytes per logical block: LBA format 0 has LBADS = 12 and no metadata. */
export const lbaBytes = blockBytes;
/** Largest 1's based block count one command can carry (NLB is 16 bits, 0's based). */
export const blocksPerCommandMax = 65536;
/** Default Maximum Data Transfer Size in bytes (Identify Controller MDTS). */
export const mdtsBytesDefault = 1024 * 1024;
/** Largest accepted MDTS: one command's largest transfer, 65536 blocks. */
export const mdtsBytesMax = blocksPerCommandMax * lbaBytes;
/** Largest namespace size in blocks, so every byte offset stays a safe integer. */
export const capacityBlocksMax = 2 ** 40;

/** The limits a command is checked against. */
export interface CommandLimits {
  /** Namespace Size (NSZE) in logical blocks. */
  capacityBlocks: number;
  /** Maximum Data Transfer Size in bytes; also the Write Zeroes limit (WZSL). */
  mdtsBytes: number;
}

/**
 * The statuses the controller itself posts; DNR is set where the same command cannot
 * succeed on retry (NVMe Base 2.0, "Generic Command Status Values").
 */
export const ControllerStatus = {
  invalidOpcode: nvmeStatus(0, Sc.invalidCommandOpcode, { dnr: true }),
  invalidField: nvmeStatus(0, Sc.invalidFieldInCommand, { dnr: true }),
  // The clash ends when the command holding the CID completes, so a retry can succeed.
  commandIdConflict: nvmeStatus(0, Sc.commandIdConflict),
  dataTransferError: nvmeStatus(0, Sc.dataTransferError, { dnr: true }),
  // A backend failure (lost replica, aborted log write) may be transient: retry allowed.
  internalError: nvmeStatus(0, Sc.internalError),
  invalidNamespace: nvmeStatus(0, Sc.invalidNamespaceOrFormat, { dnr: true }),
  lbaOutOfRange: nvmeStatus(0, Sc.lbaOutOfRange, { dnr: true }),
} as const;

/** CDW12 bit 25, reserved in Read and Write (NVM Command Set 1.0). */
const cdw12ReservedBit25 = 1 << 25;
/** Write CDW12 bits 23:20, Directive Type: no directive type is supported or enabled. */
const cdw12DirectiveType = 0xf << 20;

/** Throws RangeError unless `limits` are usable; returns them. */
export function checkLimits(limits: CommandLimits): CommandLimits {
  const { capacityBlocks, mdtsBytes } = limits;
  if (
    !Number.isInteger(capacityBlocks) || capacityBlocks < 1 || capacityBlocks > capacityBlocksMax
  ) {
    throw new RangeError(
      `Cannot create a namespace of ${capacityBlocks} blocks: pass an integer 1..2^40`,
    );
  }
  const pages = mdtsBytes / lbaBytes;
  if (!Number.isInteger(pages) || pages < 1 || mdtsBytes > mdtsBytesMax || (pages & (pages - 1))) {
    throw new RangeError(
      `Cannot use an MDTS of ${mdtsBytes} bytes: pass ${blockBytes} × a power of two, at most ${mdtsBytesMax}`,
    );
  }
  return limits;
}

/**
 * Returns Successful Completion when the controller can hand `sqe` to the backend, else
 * the status to post. `data` is the buffer attached in place of the entry's PRPs.
 */
export function checkCommand(
  sqe: Sqe,
  data: Uint8Array | undefined,
  limits: CommandLimits,
): NvmeStatus {
  const op = sqe.opcode;
  if (
    op !== NvmOpcode.flush && op !== NvmOpcode.write && op !== NvmOpcode.read &&
    op !== NvmOpcode.writeZeroes
  ) {
    // Dataset Management lands here too: ONCS bit 2 is clear, so its opcode is unsupported.
    return ControllerStatus.invalidOpcode;
  }
  // FUSE: fused operations are not supported (ONCS bit 0 and FUSES clear), 11b is reserved.
  // PSDT: SGLs are not supported (SGLS = 0), 11b is reserved. Both are Invalid Field.
  if (sqe.cdw0Reserved !== 0 || sqe.fuse !== 0 || sqe.psdt !== 0) {
    return ControllerStatus.invalidField;
  }
  // NN = 1, so 0 and 2..FFFFFFFEh are invalid NSIDs (there are no inactive ones); the
  // broadcast value is valid only where the command supports it.
  const broadcastOk = op === NvmOpcode.flush;
  if (sqe.nsid !== namespaceId && !(broadcastOk && sqe.nsid === namespaceIdBroadcast)) {
    return ControllerStatus.invalidNamespace;
  }
  if (op === NvmOpcode.flush) {
    // A Flush has no data pointer (DPTR is reserved); a buffer is a non-zero reserved field.
    return data === undefined ? statusSuccess : ControllerStatus.invalidField;
  }
  if (op !== NvmOpcode.writeZeroes) {
    const reserved = cdw12ReservedBit25 | (op === NvmOpcode.write ? cdw12DirectiveType : 0);
    if ((sqe.cdw12 & reserved) !== 0) return ControllerStatus.invalidField;
  } else if (data !== undefined) {
    return ControllerStatus.invalidField; // Write Zeroes has no data pointer either.
  }
  const blocks = sqeNlb(sqe) + 1;
  // MDTS (and WZSL for Write Zeroes): "exceeds the transfer size" is Invalid Field.
  if (blocks * lbaBytes > limits.mdtsBytes) return ControllerStatus.invalidField;
  // SLBA is 64 bits; sqeSlba is exact below 2^53 and ≥ 2^53 above, beyond any capacity,
  // so SLBA + NLB never wraps round to a small in-range value as u64 arithmetic would.
  if (sqeSlba(sqe) > limits.capacityBlocks - blocks) return ControllerStatus.lbaOutOfRange;
  if (op === NvmOpcode.writeZeroes) return statusSuccess;
  // PRPs carry no length: NLB implies it. A buffer that is missing or of another length is
  // the model of a PRP list pointing at memory that cannot take the transfer; a controller
  // learns that only when the DMA fails, which it reports as Data Transfer Error. Invalid
  // Field would claim an SQE field is wrong, and every field here is valid. DNR: the same
  // pointers fail the same way.
  if (data === undefined || data.byteLength !== blocks * lbaBytes) {
    return ControllerStatus.dataTransferError;
  }
  return statusSuccess;
}
