/**
 * Frame codec for the bootstrap control connection: the byte tables of `docs/protocol.md`,
 * section "Bootstrap (TCP control connection)", and the bytes each mac covers. Decoding
 * returns a typed value or a typed refusal and never throws on bad bytes; encoding asserts
 * that its input is valid.
 *
 * @example
 * ```ts
 * import { decodeMessage, encodeMessage } from "./control_codec.ts";
 *
 * const frame = encodeMessage({ type: "READY" });
 * const decoded = decodeMessage(frame);
 * if (decoded.ok) console.log(decoded.value.type); // "READY"
 * ```
 *
 * @module
 */

import { assert } from "../assert.ts";
import {
  checkMessage,
  controlMagic,
  type ControlMessage,
  controlVersion,
  type Endpoint,
  frameBodyBytesMax,
  frameBodyBytesMin,
  framePrefixBytes,
  gidBytes,
  type HelloFields,
  macBytes,
  type MessageType,
  messageTypes,
  nonceBytes,
  type RefuseReason,
  refuseReasons,
  refuseTextBytesMax,
  type WelcomeFields,
} from "./control_messages.ts";

/** Why a frame did not decode. */
export type DecodeFailure = "BAD_LENGTH" | "BAD_MAGIC" | "BAD_VERSION" | "BAD_TYPE" | "BAD_FIELD";
/** A typed refusal: what was wrong, in words that name the field and value. */
export interface DecodeRefusal {
  /** Discriminant. */
  ok: false;
  /** Which check failed. */
  reason: DecodeFailure;
  /** The field and value at fault. */
  detail: string;
}
/** A decoded value or a typed refusal, never a half-parsed object. */
export type Decoded<T> = { ok: true; value: T } | DecodeRefusal;

// Body offsets (after the length prefix), as in the byte tables of docs/protocol.md.
const head = { magic: 0, version: 4, type: 6 };
const endpointAt = { qpn: 0, psn: 4, gid: 8, mtu: 24 };
const challengeAt = { nonce: 8 };
const helloAt = { nonce: 8, mac: 40, endpoint: 72, ringBytes: 100, maxLogBytes: 108, depth: 112 };
const welcomeAt = {
  mac: 8,
  endpoint: 40,
  ringAddr: 68,
  rkey: 76,
  metaSlots: 80,
  ringBytes: 84,
  nextSeq: 92,
  released: 100,
};
const refuseAt = { reason: 8, pad: 10, textBytes: 12, text: 16 };
// Body bytes of each type; REFUSE adds its text.
const bodyBytes = { CHALLENGE: 40, HELLO: 116, WELCOME: 108, REFUSE: 16, READY: 8 };

const utf8Decoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });
const utf8Encoder = new TextEncoder();
const typeNames = new Map<number, MessageType>(
  Object.entries(messageTypes).map(([name, code]) => [code, name as MessageType]),
);
const reasonNames = new Map<number, RefuseReason>(
  Object.entries(refuseReasons).map(([name, code]) => [code, name as RefuseReason]),
);
const safeMax = BigInt(Number.MAX_SAFE_INTEGER);

function setU64(view: DataView, offset: number, value: number): void {
  view.setBigUint64(offset, BigInt(value), true);
}

// A u64 above 2^53-1 reads as NaN, which the field checks refuse by name.
function getU64(view: DataView, offset: number): number {
  const value = view.getBigUint64(offset, true);
  return value > safeMax ? Number.NaN : Number(value);
}

function setEndpoint(view: DataView, bytes: Uint8Array, offset: number, e: Endpoint): void {
  view.setUint32(offset + endpointAt.qpn, e.qpn, true);
  view.setUint32(offset + endpointAt.psn, e.psn, true);
  bytes.set(e.gid, offset + endpointAt.gid);
  view.setUint32(offset + endpointAt.mtu, e.mtu, true);
}

function getEndpoint(view: DataView, bytes: Uint8Array, offset: number): Endpoint {
  const gid = offset + endpointAt.gid;
  return {
    qpn: view.getUint32(offset + endpointAt.qpn, true),
    psn: view.getUint32(offset + endpointAt.psn, true),
    gid: bytes.slice(gid, gid + gidBytes),
    mtu: view.getUint32(offset + endpointAt.mtu, true),
  };
}

/** Encodes `message` as one frame, length prefix included; asserts every field is valid. */
export function encodeMessage(message: ControlMessage): Uint8Array<ArrayBuffer> {
  const problem = checkMessage(message);
  assert(problem === null, `Cannot encode ${message.type}: ${problem}`);
  const text = message.type === "REFUSE" ? utf8Encoder.encode(message.text) : new Uint8Array();
  const length = bodyBytes[message.type] + text.length;
  const frame = new Uint8Array(framePrefixBytes + length);
  new DataView(frame.buffer).setUint32(0, length, true);
  const body = frame.subarray(framePrefixBytes);
  const view = new DataView(frame.buffer, framePrefixBytes);
  view.setUint32(head.magic, controlMagic, true);
  view.setUint16(head.version, controlVersion, true);
  view.setUint16(head.type, messageTypes[message.type], true);
  switch (message.type) {
    case "CHALLENGE":
      body.set(message.nonce, challengeAt.nonce);
      break;
    case "HELLO":
      body.set(message.nonce, helloAt.nonce);
      body.set(message.mac, helloAt.mac);
      setEndpoint(view, body, helloAt.endpoint, message.endpoint);
      setU64(view, helloAt.ringBytes, message.ringBytes);
      view.setUint32(helloAt.maxLogBytes, message.maxLogBytes, true);
      view.setUint32(helloAt.depth, message.depth, true);
      break;
    case "WELCOME":
      body.set(message.mac, welcomeAt.mac);
      setEndpoint(view, body, welcomeAt.endpoint, message.endpoint);
      setU64(view, welcomeAt.ringAddr, message.ringAddr);
      view.setUint32(welcomeAt.rkey, message.rkey, true);
      view.setUint32(welcomeAt.metaSlots, message.metaSlots, true);
      setU64(view, welcomeAt.ringBytes, message.ringBytes);
      setU64(view, welcomeAt.nextSeq, message.nextSeq);
      setU64(view, welcomeAt.released, message.released);
      break;
    case "REFUSE":
      view.setUint16(refuseAt.reason, refuseReasons[message.reason], true);
      view.setUint32(refuseAt.textBytes, text.length, true);
      body.set(text, refuseAt.text);
      break;
  }
  return frame;
}

function refusal(reason: DecodeFailure, detail: string): DecodeRefusal {
  return { ok: false, reason, detail };
}

/** Decodes one frame, length prefix included; the prefix must match the frame's size. */
export function decodeMessage(frame: Uint8Array): Decoded<ControlMessage> {
  if (frame.length < framePrefixBytes) return refusal("BAD_LENGTH", "frame has no length prefix");
  const length = new DataView(frame.buffer, frame.byteOffset, 4).getUint32(0, true);
  if (length !== frame.length - framePrefixBytes) {
    return refusal("BAD_LENGTH", `length prefix ${length} but ${frame.length - 4} bytes follow`);
  }
  return decodeBody(frame.subarray(framePrefixBytes));
}

/**
 * Decodes one frame body (the bytes after the length prefix), checking in this order:
 * body length 8..1024, magic, version, type, the type's size, then every field.
 */
export function decodeBody(body: Uint8Array): Decoded<ControlMessage> {
  if (body.length < frameBodyBytesMin || body.length > frameBodyBytesMax) {
    const range = `${frameBodyBytesMin}..${frameBodyBytesMax}`;
    return refusal("BAD_LENGTH", `frame length ${body.length} is not in ${range}`);
  }
  const view = new DataView(body.buffer, body.byteOffset, body.byteLength);
  const magic = view.getUint32(head.magic, true);
  if (magic !== controlMagic) {
    return refusal("BAD_MAGIC", `magic 0x${magic.toString(16)} is not RPRL`);
  }
  const version = view.getUint16(head.version, true);
  if (version !== controlVersion) {
    return refusal("BAD_VERSION", `version ${version}, expected ${controlVersion}`);
  }
  const code = view.getUint16(head.type, true);
  const type = typeNames.get(code);
  if (type === undefined) return refusal("BAD_TYPE", `type ${code} is unknown`);
  const size = bodyBytes[type];
  if (type === "REFUSE" ? body.length < size : body.length !== size) {
    return refusal("BAD_LENGTH", `${type} body is ${body.length} bytes, expected ${size}`);
  }
  const message = type === "REFUSE"
    ? decodeRefuse(view, body)
    : { ok: true as const, value: readFields(type, view, body) };
  if (!message.ok) return message;
  const problem = checkMessage(message.value);
  return problem === null ? message : refusal("BAD_FIELD", `${type} ${problem}`);
}

// Reads the fields of a body whose head and size are valid; the caller checks them.
function readFields(
  type: Exclude<MessageType, "REFUSE">,
  view: DataView,
  body: Uint8Array,
): ControlMessage {
  const bytesAt = (offset: number, length: number) => body.slice(offset, offset + length);
  switch (type) {
    case "CHALLENGE":
      return { type, nonce: bytesAt(challengeAt.nonce, nonceBytes) };
    case "HELLO":
      return {
        type,
        nonce: bytesAt(helloAt.nonce, nonceBytes),
        mac: bytesAt(helloAt.mac, macBytes),
        endpoint: getEndpoint(view, body, helloAt.endpoint),
        ringBytes: getU64(view, helloAt.ringBytes),
        maxLogBytes: view.getUint32(helloAt.maxLogBytes, true),
        depth: view.getUint32(helloAt.depth, true),
      };
    case "WELCOME":
      return {
        type,
        mac: bytesAt(welcomeAt.mac, macBytes),
        endpoint: getEndpoint(view, body, welcomeAt.endpoint),
        ringAddr: getU64(view, welcomeAt.ringAddr),
        rkey: view.getUint32(welcomeAt.rkey, true),
        metaSlots: view.getUint32(welcomeAt.metaSlots, true),
        ringBytes: getU64(view, welcomeAt.ringBytes),
        nextSeq: getU64(view, welcomeAt.nextSeq),
        released: getU64(view, welcomeAt.released),
      };
    case "READY":
      return { type };
  }
}

function decodeRefuse(view: DataView, body: Uint8Array): Decoded<ControlMessage> {
  const code = view.getUint16(refuseAt.reason, true);
  const reason = reasonNames.get(code);
  if (reason === undefined) return refusal("BAD_FIELD", `REFUSE reason ${code} is unknown`);
  if (view.getUint16(refuseAt.pad, true) !== 0) return refusal("BAD_FIELD", "REFUSE pad is not 0");
  const textBytes = view.getUint32(refuseAt.textBytes, true);
  if (textBytes > refuseTextBytesMax || body.length !== refuseAt.text + textBytes) {
    return refusal("BAD_LENGTH", `REFUSE text length ${textBytes} does not fit its body`);
  }
  try {
    const text = utf8Decoder.decode(body.subarray(refuseAt.text));
    return { ok: true, value: { type: "REFUSE", reason, text } };
  } catch {
    return refusal("BAD_FIELD", "REFUSE text is not valid UTF-8");
  }
}

function concat(parts: Uint8Array[]): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(parts.reduce((sum, part) => sum + part.length, 0));
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}

const helloLabel = utf8Encoder.encode("RRL1 hello");
const welcomeLabel = utf8Encoder.encode("RRL1 welcome");
const zeroMac = new Uint8Array(macBytes);

/**
 * The bytes HELLO's mac covers: `"RRL1 hello"` ‖ challenge nonce ‖ HELLO body bytes 8..39
 * (its nonce) ‖ HELLO body bytes 72..115 (endpoint, ringBytes, maxLogBytes, depth).
 */
export function helloMacInput(
  challengeNonce: Uint8Array,
  hello: HelloFields & { nonce: Uint8Array },
): Uint8Array<ArrayBuffer> {
  assert(challengeNonce.length === nonceBytes, "challenge nonce must be 32 bytes");
  const frame = encodeMessage({ ...hello, type: "HELLO", mac: zeroMac });
  const body = frame.subarray(framePrefixBytes);
  const nonce = body.subarray(helloAt.nonce, helloAt.nonce + nonceBytes);
  return concat([helloLabel, challengeNonce, nonce, body.subarray(helloAt.endpoint)]);
}

/**
 * The bytes WELCOME's mac covers: `"RRL1 welcome"` ‖ hello nonce ‖ WELCOME body bytes
 * 40..107 (every field after the mac).
 */
export function welcomeMacInput(
  helloNonce: Uint8Array,
  welcome: WelcomeFields,
): Uint8Array<ArrayBuffer> {
  assert(helloNonce.length === nonceBytes, "hello nonce must be 32 bytes");
  const frame = encodeMessage({ ...welcome, type: "WELCOME", mac: zeroMac });
  const body = frame.subarray(framePrefixBytes);
  return concat([welcomeLabel, helloNonce, body.subarray(welcomeAt.endpoint)]);
}
