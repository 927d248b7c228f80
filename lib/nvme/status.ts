/**
 * NVMe completion status: the 15-bit Status Field of a completion queue entry.
 *
 * An {@linkcode NvmeStatus} is the Status Field exactly as it sits in CQE Dword 3 bits 31:17,
 * shifted down by 17 (NVMe Base Specification 2.0, "Completion Queue Entry: Status Field"):
 *
 * | bits  | field                        |
 * | ----- | ---------------------------- |
 * | 7:0   | SC, Status Code              |
 * | 10:8  | SCT, Status Code Type        |
 * | 12:11 | CRD, Command Retry Delay     |
 * | 13    | M, More                      |
 * | 14    | DNR, Do Not Retry            |
 *
 * @module
 */

/** A 15-bit NVMe Status Field value (0 = Successful Completion, retry allowed). */
export type NvmeStatus = number;

/** Status Code Type values (NVMe Base 2.0, "Status Code Type Values"). */
export const StatusCodeType = {
  generic: 0x0,
  commandSpecific: 0x1,
  mediaAndDataIntegrity: 0x2,
  pathRelated: 0x3,
  vendorSpecific: 0x7,
} as const;

/**
 * The Generic Command Status codes (SCT 0h) this model posts or accepts from a backend
 * (NVMe Base 2.0, "Generic Command Status Values"; 80h..82h are the NVM Command Set's
 * entries in the generic range, NVM Command Set 1.0, "Generic Command Status Values").
 */
export const GenericStatusCode = {
  successfulCompletion: 0x00,
  invalidCommandOpcode: 0x01,
  invalidFieldInCommand: 0x02,
  commandIdConflict: 0x03,
  dataTransferError: 0x04,
  internalError: 0x06,
  invalidNamespaceOrFormat: 0x0b,
  lbaOutOfRange: 0x80,
  capacityExceeded: 0x81,
  namespaceNotReady: 0x82,
} as const;

/**
 * The Media and Data Integrity Errors codes (SCT 2h) this model posts (NVM Command Set 1.0,
 * "Media and Data Integrity Errors Values").
 */
export const MediaStatusCode = {
  writeFault: 0x80,
} as const;

const mediaNames: Record<number, string> = { 0x80: "Write Fault" };

const genericNames: Record<number, string> = {
  0x00: "Successful Completion",
  0x01: "Invalid Command Opcode",
  0x02: "Invalid Field in Command",
  0x03: "Command ID Conflict",
  0x04: "Data Transfer Error",
  0x06: "Internal Error",
  0x0b: "Invalid Namespace or Format",
  0x80: "LBA Out of Range",
  0x81: "Capacity Exceeded",
  0x82: "Namespace Not Ready",
};

const dnrBit = 1 << 14;
const moreBit = 1 << 13;
/** Largest Status Field value (15 bits). */
export const statusFieldMax = 0x7fff;

/** Options for {@linkcode nvmeStatus}. */
export interface NvmeStatusOptions {
  /** Do Not Retry: the same command will fail again (default false). */
  dnr?: boolean;
  /** More: the Error Information log page has more (default false). */
  more?: boolean;
  /** Command Retry Delay index 0..3 (default 0). */
  crd?: number;
}

/**
 * Builds a Status Field from its parts (NVMe Base 2.0, "Completion Queue Entry: Status
 * Field"); RangeError if a part does not fit its bits.
 */
export function nvmeStatus(sct: number, sc: number, options: NvmeStatusOptions = {}): NvmeStatus {
  const crd = options.crd ?? 0;
  if (!isUint(sct, 0x7) || !isUint(sc, 0xff) || !isUint(crd, 0x3)) {
    throw new RangeError(
      `Cannot build an NVMe status from SCT ${sct}, SC ${sc}, CRD ${crd}: ` +
        "pass SCT 0..7, SC 0..255, CRD 0..3",
    );
  }
  return sc | (sct << 8) | (crd << 11) | (options.more ? moreBit : 0) |
    (options.dnr ? dnrBit : 0);
}

/** Successful Completion (SCT 0h, SC 00h). */
export const statusSuccess: NvmeStatus = 0;

/** Returns the Status Code (SC, bits 7:0). */
export function statusCode(status: NvmeStatus): number {
  return status & 0xff;
}

/** Returns the Status Code Type (SCT, bits 10:8). */
export function statusCodeType(status: NvmeStatus): number {
  return (status >>> 8) & 0x7;
}

/** Returns the Command Retry Delay index (CRD, bits 12:11). */
export function statusRetryDelay(status: NvmeStatus): number {
  return (status >>> 11) & 0x3;
}

/** Returns true when Do Not Retry (DNR, bit 14) is set. */
export function statusDoNotRetry(status: NvmeStatus): boolean {
  return (status & dnrBit) !== 0;
}

/** Returns true when More (M, bit 13) is set. */
export function statusMore(status: NvmeStatus): boolean {
  return (status & moreBit) !== 0;
}

/** Returns true for Successful Completion, whatever the retry bits say. */
export function statusIsSuccess(status: NvmeStatus): boolean {
  return (status & 0x7ff) === 0;
}

/** Returns true when `value` is an integer that fits the 15-bit Status Field. */
export function isNvmeStatus(value: unknown): value is NvmeStatus {
  return typeof value === "number" && isUint(value, statusFieldMax);
}

/** Returns a readable name: `LBA Out of Range (SCT 0h, SC 80h, DNR)`. */
export function describeStatus(status: NvmeStatus): string {
  const sct = statusCodeType(status);
  const sc = statusCode(status);
  const name = sct === StatusCodeType.generic
    ? genericNames[sc]
    : sct === StatusCodeType.mediaAndDataIntegrity
    ? mediaNames[sc]
    : undefined;
  const dnr = statusDoNotRetry(status) ? ", DNR" : "";
  return `${name ?? "Status"} (SCT ${hex(sct, 1)}, SC ${hex(sc, 2)}${dnr})`;
}

function hex(value: number, digits: number): string {
  return `${value.toString(16).toUpperCase().padStart(digits, "0")}h`;
}

function isUint(value: number, max: number): boolean {
  return Number.isInteger(value) && value >= 0 && value <= max;
}
