/**
 * The messages of the bootstrap control connection as typed values, their limits and the
 * field checks of `docs/protocol.md`, section "Bootstrap (TCP control connection)". The
 * byte layout lives in `control_codec.ts`.
 *
 * @example
 * ```ts
 * import { checkHelloFields } from "./control_messages.ts";
 *
 * const endpoint = { qpn: 17, psn: 0, gid: new Uint8Array(16), mtu: 5 };
 * const problem = checkHelloFields({ endpoint, ringBytes: 1 << 20, maxLogBytes: 4096, depth: 8 });
 * console.log(problem); // null
 * ```
 *
 * @module
 */
import { blockBytes } from "../block.ts";

/** Body magic `0x4C525052` (bytes `R P R L`). */
export const controlMagic = 0x4C525052;
/** The bootstrap version this build speaks. */
export const controlVersion = 1;
/** Bytes of the `u32 length` prefix of every frame. */
export const framePrefixBytes = 4;
/** Smallest frame body (the 8-byte head). */
export const frameBodyBytesMin = 8;
/** Largest frame body; a longer length prefix is refused before the body is read. */
export const frameBodyBytesMax = 1024;
/** Bytes of a CHALLENGE or HELLO nonce. */
export const nonceBytes = 32;
/** Bytes of an HMAC-SHA-256 tag. */
export const macBytes = 32;
/** Bytes of a GID. */
export const gidBytes = 16;
/** Longest REFUSE text, in UTF-8 bytes. */
export const refuseTextBytesMax = 200;
/** Smallest data ring (64 KiB). */
export const ringBytesMin = 64 * 1024;
/** Largest data ring (1 GiB). */
export const ringBytesMax = 1024 * 1024 * 1024;
/** Largest log (16 MiB), the record's `dataLength` maximum. */
export const logBytesMax = 16 * 1024 * 1024;
/** Largest HELLO `depth` and WELCOME `metaSlots`. */
export const slotsMax = 1024;

const pageBytes = blockBytes;
const u24Max = 2 ** 24 - 1;
const u32Max = 2 ** 32 - 1;

/** Message type codes (the `u16 type` of the head). */
export const messageTypes = { CHALLENGE: 1, HELLO: 2, WELCOME: 3, REFUSE: 4, READY: 5 } as const;
/** A message type name. */
export type MessageType = keyof typeof messageTypes;

/** REFUSE reason codes (docs/protocol.md, REFUSE reason table). */
export const refuseReasons = {
  BAD_AUTH: 1,
  BAD_VERSION: 2,
  BAD_MESSAGE: 3,
  BUSY: 4,
  MISMATCH: 5,
  REFUSED: 6,
} as const;
/** A REFUSE reason name. */
export type RefuseReason = keyof typeof refuseReasons;

/** A queue pair's address (28 bytes on the wire). */
export interface Endpoint {
  /** QP number, 1..2^24-1. */
  qpn: number;
  /** Initial packet sequence number, 0..2^24-1. */
  psn: number;
  /** Port GID, 16 bytes. */
  gid: Uint8Array;
  /** Path MTU as the `ibv_mtu` enum, 1 (256) to 5 (4096). */
  mtu: number;
}

/** What the primary proposes in its HELLO (everything but nonce and mac). */
export interface HelloFields {
  /** The primary's QP. */
  endpoint: Endpoint;
  /** Data ring size, a multiple of 4096, 64 KiB to 1 GiB. */
  ringBytes: number;
  /** Largest log, a multiple of 4096, at most 16 MiB and ringBytes / 2. */
  maxLogBytes: number;
  /** Logs in flight at most, 1..1024. */
  depth: number;
}

/** What the replica grants in its WELCOME (everything but the mac). */
export interface WelcomeFields {
  /** The replica's QP. */
  endpoint: Endpoint;
  /** Address of the replica's data ring, non-zero. */
  ringAddr: number;
  /** rkey of the replica's data ring (REMOTE_WRITE). */
  rkey: number;
  /** RECVs the replica keeps posted, 1..1024. */
  metaSlots: number;
  /** Data ring size: equal to HELLO's. */
  ringBytes: number;
  /** The seq the replica expects next, ≥ 1. */
  nextSeq: number;
  /** The replica's released ring position. */
  released: number;
}

/** CHALLENGE, replica → primary. */
export interface Challenge {
  /** Discriminant. */
  type: "CHALLENGE";
  /** 32 random bytes. */
  nonce: Uint8Array;
}
/** HELLO, primary → replica. */
export interface Hello extends HelloFields {
  /** Discriminant. */
  type: "HELLO";
  /** 32 random bytes. */
  nonce: Uint8Array;
  /** HMAC-SHA-256 over `helloMacInput` (control_codec.ts). */
  mac: Uint8Array;
}
/** WELCOME, replica → primary. */
export interface Welcome extends WelcomeFields {
  /** Discriminant. */
  type: "WELCOME";
  /** HMAC-SHA-256 over `welcomeMacInput` (control_codec.ts). */
  mac: Uint8Array;
}
/** REFUSE, replica → primary. */
export interface Refuse {
  /** Discriminant. */
  type: "REFUSE";
  /** Why. */
  reason: RefuseReason;
  /** Words for a human, at most 200 UTF-8 bytes. */
  text: string;
}
/** READY, primary → replica: the primary's QP is in RTS with its RECVs posted. */
export interface Ready {
  /** Discriminant. */
  type: "READY";
}
/** Any bootstrap message. */
export type ControlMessage = Challenge | Hello | Welcome | Refuse | Ready;

const utf8Encoder = new TextEncoder();

function inRange(value: number, min: number, max: number): boolean {
  return Number.isInteger(value) && value >= min && value <= max;
}

function checkBytes(name: string, bytes: Uint8Array, length: number): string | null {
  return bytes instanceof Uint8Array && bytes.length === length
    ? null
    : `${name} is not ${length} bytes`;
}

// The decoder reads a u64 above 2^53-1 as NaN (control_codec.ts).
function checkU64(name: string, value: number, min: number): string | null {
  if (Number.isNaN(value)) return `${name} is above 2^53-1 (Number.MAX_SAFE_INTEGER)`;
  if (Number.isSafeInteger(value) && value >= min) return null;
  return `${name} ${value} is not an integer in ${min}..2^53-1`;
}

function checkPages(name: string, value: number, min: number, max: number): string | null {
  if (inRange(value, min, max) && value % pageBytes === 0) return null;
  return `${name} ${value} is not a multiple of ${pageBytes} in ${min}..${max}`;
}

function checkRingBytes(ringBytes: number): string | null {
  return checkU64("ringBytes", ringBytes, 0) ??
    checkPages("ringBytes", ringBytes, ringBytesMin, ringBytesMax);
}

function checkSlots(name: string, value: number): string | null {
  return inRange(value, 1, slotsMax) ? null : `${name} ${value} is not in 1..${slotsMax}`;
}

/** Checks an endpoint; returns what is wrong, or `null`. */
export function checkEndpoint(endpoint: Endpoint): string | null {
  const { qpn, psn, gid, mtu } = endpoint;
  if (!inRange(qpn, 1, u24Max)) return `qpn ${qpn} is not in 1..2^24-1`;
  if (!inRange(psn, 0, u24Max)) return `psn ${psn} is not in 0..2^24-1`;
  return checkBytes("gid", gid, gidBytes) ??
    (inRange(mtu, 1, 5) ? null : `mtu ${mtu} is not an ibv_mtu value 1..5`);
}

/** Checks the HELLO fields against the protocol's limits; returns what is wrong, or `null`. */
export function checkHelloFields(fields: HelloFields): string | null {
  const logMax = Math.min(logBytesMax, Math.floor(fields.ringBytes / 2));
  return checkEndpoint(fields.endpoint) ??
    checkRingBytes(fields.ringBytes) ??
    checkPages("maxLogBytes", fields.maxLogBytes, pageBytes, logMax) ??
    checkSlots("depth", fields.depth);
}

/** Checks the WELCOME fields against the protocol's limits; returns what is wrong, or `null`. */
export function checkWelcomeFields(fields: WelcomeFields): string | null {
  return checkEndpoint(fields.endpoint) ??
    checkU64("ringAddr", fields.ringAddr, 1) ??
    (inRange(fields.rkey, 0, u32Max) ? null : `rkey ${fields.rkey} is not a u32`) ??
    checkSlots("metaSlots", fields.metaSlots) ??
    checkRingBytes(fields.ringBytes) ??
    checkU64("nextSeq", fields.nextSeq, 1) ??
    checkU64("released", fields.released, 0);
}

/** Checks every field of `message`; returns what is wrong, or `null`. */
export function checkMessage(message: ControlMessage): string | null {
  switch (message.type) {
    case "CHALLENGE":
      return checkBytes("nonce", message.nonce, nonceBytes);
    case "HELLO":
      return checkBytes("nonce", message.nonce, nonceBytes) ??
        checkBytes("mac", message.mac, macBytes) ?? checkHelloFields(message);
    case "WELCOME":
      return checkBytes("mac", message.mac, macBytes) ?? checkWelcomeFields(message);
    case "REFUSE":
      if (!Object.hasOwn(refuseReasons, message.reason)) {
        return `reason ${message.reason} is unknown`;
      }
      return utf8Encoder.encode(message.text).length <= refuseTextBytesMax
        ? null
        : `text is longer than ${refuseTextBytesMax} bytes`;
    case "READY":
      return null;
  }
}

/** Cuts `text` to at most `maxBytes` UTF-8 bytes on a character boundary. */
export function clipUtf8(text: string, maxBytes: number = refuseTextBytesMax): string {
  let out = "";
  let bytes = 0;
  for (const char of text) {
    bytes += utf8Encoder.encode(char).length;
    if (bytes > maxBytes) break;
    out += char;
  }
  return out;
}
