/**
 * Fuzz targets: one per decoder that reads bytes from outside (docs/protocol.md for the
 * record, the ack and the bootstrap frames; NVMe Base 2.0 "Common Command Format" for the
 * SQE). Each names its fields so the harness can mutate them, draws valid encodings from a
 * seed, and turns one decode into an outcome: refused with a reason, or accepted after the
 * value re-encodes to the same bytes and decodes to the same value.
 *
 * @example
 * ```ts
 * import { createTargets } from "./targets.ts";
 * const [record] = createTargets(["record"]);
 * console.log(record.run(new Uint8Array(64))); // { kind: "refused", reason: "BAD_MAGIC" }
 * ```
 *
 * @module
 */

import { isDeepStrictEqual } from "node:util";
import {
  type Ack,
  ackBytes,
  ackMagic,
  AckReason,
  ackReasonName,
  decodeAck,
  emptyAck,
  encodeAck,
  parseAck,
} from "../log/ack.ts";
import {
  dataLengthMax,
  decodeRecord,
  emptyRecord,
  encodeRecord,
  type LogRecord,
  parseRecord,
  recordBytes,
  RecordFlags,
  recordMagic,
  RecordReason,
  recordReasonName,
  sealRecord,
} from "../log/record.ts";
import { lbaBytes, namespaceIdBroadcast, NvmOpcode } from "../nvme/command.ts";
import { NvmeController } from "../nvme/controller.ts";
import { NvmeHost } from "../nvme/host.ts";
import { MemoryBackend } from "../nvme/memory_backend.ts";
import { decodeSqe, encodeSqe, setSqeIo, Sqe, sqeBytes, sqeNlb, sqeSlba } from "../nvme/sqe.ts";
import { describeStatus, isNvmeStatus, statusIsSuccess } from "../nvme/status.ts";
import type { Prng } from "../prng.ts";
import { decodeMessage, encodeMessage } from "../replication/control_codec.ts";
import {
  clipUtf8,
  controlMagic,
  type ControlMessage,
  type RefuseReason,
  refuseReasons,
} from "../replication/control_messages.ts";
import { blockBytes } from "../block.ts";

/** What one decode made of one input. */
export type FuzzOutcome =
  | { kind: "accepted" }
  | { kind: "refused"; reason: string }
  | { kind: "mismatch"; error: string };

/** A field the mutator knows: where it sits and values near its limits. */
export interface FuzzField {
  /** Field name, for mutation descriptions. */
  readonly name: string;
  /** Byte offset in the encoding. */
  readonly offset: number;
  /** Width in bytes; values are written little-endian. */
  readonly bytes: 1 | 2 | 4 | 8;
  /** Values worth trying (limits, limits ± 1, 2^53 ± 1 for u64 fields). */
  readonly interesting: readonly bigint[];
}

/** One decoder under fuzzing, with what the harness needs to feed it. */
export interface FuzzTarget {
  /** Short name (`record`), used by `--target` and in reports. */
  readonly name: string;
  /** Exact sizes of valid encodings. */
  readonly sizes: readonly number[];
  /** Largest input the harness makes for this target (oversize included). */
  readonly maxBytes: number;
  /** Fields for field-aware mutations. */
  readonly fields: readonly FuzzField[];
  /** Returns a fresh valid encoding drawn from `prng`. */
  generate(prng: Prng): Uint8Array;
  /** Recomputes integrity fields (CRC, length prefix) so a mutation reaches deeper checks. */
  reseal?(bytes: Uint8Array): void;
  /** Decodes `bytes` and checks the result; must never throw. */
  run(bytes: Uint8Array): FuzzOutcome | Promise<FuzzOutcome>;
  /** Checks the target still serves (e.g. a Write+Read round trip); a problem, or undefined. */
  check?(): Promise<string | undefined>;
}

const accepted: FuzzOutcome = Object.freeze({ kind: "accepted" });
const refused = (reason: string): FuzzOutcome => ({ kind: "refused", reason });
const mismatch = (error: string): FuzzOutcome => ({ kind: "mismatch", error });
const viewOf = (b: Uint8Array) => new DataView(b.buffer, b.byteOffset, b.byteLength);
/** The whole buffer up to the end of `b`, so a decoder reads `b` at offset `b.byteOffset`. */
const bufferOf = (b: Uint8Array) => new DataView(b.buffer, 0, b.byteOffset + b.byteLength);
const hex = (b: Uint8Array) => Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
const safeMax = Number.MAX_SAFE_INTEGER;

/**
 * `accepted` when `value` (decoded from `input`) re-encodes to `input` exactly and that
 * encoding decodes to `value` again; `reencode` returns the encoding and the re-decoded value.
 */
function roundTrip(input: Uint8Array, value: unknown, reencode: () => [Uint8Array, unknown]) {
  let encoded: Uint8Array, again: unknown;
  try {
    [encoded, again] = reencode();
  } catch (error) {
    return mismatch(`accepted ${hex(input)} but its value does not re-encode: ${error}`);
  }
  if (input.length !== encoded.length || input.some((b, i) => b !== encoded[i])) {
    return mismatch(`accepted ${hex(input)} but it re-encodes to ${hex(encoded)}`);
  }
  if (!isDeepStrictEqual(value, again)) return mismatch("re-encoding decodes to another value");
  return accepted;
}

/** A refusal must leave the caller's output untouched (the codecs' documented contract). */
function refusedUntouched(out: unknown, sentinel: unknown, reason: string): FuzzOutcome {
  if (isDeepStrictEqual(out, sentinel)) return refused(reason);
  return mismatch(`refusal ${reason} changed the caller's output object`);
}

/** A fixed-size, allocation-free codec and its allocating `parse` twin (record, ack). */
interface FixedCodec<T> {
  bytes: number;
  decode(view: DataView, offset: number, out: T): number;
  parse(bytes: Uint8Array): [reason: number, value: T | undefined];
  encode(view: DataView, offset: number, value: T): void;
  reasonName(code: number): string;
}

/**
 * Decodes `bytes` where they sit in their buffer; `parse` must agree, a refusal must leave
 * `out` as `sentinel`, and an accepted value must round-trip (reason 0 is OK).
 */
function runFixed<T>(c: FixedCodec<T>, bytes: Uint8Array, out: T, sentinel: T): FuzzOutcome {
  Object.assign(out as object, sentinel);
  const reason = c.decode(bufferOf(bytes), bytes.byteOffset, out);
  const [parsedReason, parsed] = c.parse(bytes);
  if (parsedReason !== reason || (reason === 0 && !isDeepStrictEqual(parsed, out))) {
    return mismatch(`parse disagrees with decode (${c.reasonName(reason)})`);
  }
  if (reason !== 0) return refusedUntouched(out, sentinel, c.reasonName(reason));
  const again = new Uint8Array(c.bytes);
  return roundTrip(bytes.subarray(0, c.bytes), out, () => {
    c.encode(viewOf(again), 0, out);
    return [again, c.parse(again)[1]];
  });
}

const f = (name: string, offset: number, bytes: FuzzField["bytes"], v: bigint[]): FuzzField =>
  Object.freeze({ name, offset, bytes, interesting: Object.freeze(v) });
const u64Edges = [0n, 1n, 4095n, 4096n, 1n << 32n, (1n << 53n) - 4096n, (1n << 53n) - 1n];
u64Edges.push(1n << 53n, (1n << 53n) + 1n, 1n << 63n, (1n << 64n) - 1n);
const u32Edges = [0n, 1n, 0x7fff_ffffn, 0x8000_0000n, 0xffff_ffffn];
const u16Edges = [0n, 1n, 2n, 3n, 4n, 5n, 6n, 7n, 8n, 9n, 0x7fffn, 0x8000n, 0xffffn];
const mib16 = 16n << 20n;
const lengthEdges = [0n, 1n, 4095n, 4096n, 4097n, mib16 - 4096n, mib16, mib16 + 4096n];

/** A u53 biased towards small values and the 2^53 − 1 ceiling. */
function u53(prng: Prng): number {
  const roll = prng.int(0, 9);
  if (roll === 0) return safeMax - prng.int(0, 4096);
  return roll < 5 ? prng.int(0, 1 << 20) : prng.int(0, safeMax);
}

const recordFields = [
  f("magic", 0, 4, [BigInt(recordMagic), 0n]),
  f("version", 4, 2, u16Edges),
  f("flags", 6, 2, u16Edges),
  f("seq", 8, 8, u64Edges),
  f("dataOffset", 16, 8, u64Edges),
  f("dataLength", 24, 4, lengthEdges),
  f("dataCrc", 28, 4, u32Edges),
  f("lba", 32, 8, u64Edges),
  f("lbaFlags", 40, 4, [0n, 1n, 2n, 3n, 0x8000_0000n]),
  f("reserved44", 44, 4, [0n, 1n]),
  f("timestampNs", 48, 8, u64Edges),
  f("recordCrc", 56, 4, u32Edges),
  f("reserved60", 60, 4, [0n, 1n, 0x8000_0000n]),
];
const recordSentinel = { ...emptyRecord(), flags: 0xbeef, seq: 0xdead };

/** The record codec (`decodeRecord`; `decode` is replaceable to test the harness). */
export function recordTarget(decode: typeof decodeRecord = decodeRecord): FuzzTarget {
  const out = emptyRecord();
  const codec: FixedCodec<LogRecord> = {
    bytes: recordBytes,
    decode: (view, offset, into) => decode(view, offset, into),
    parse: (b) => {
      const p = parseRecord(b);
      return p.ok ? [RecordReason.OK, p.record] : [p.reason, undefined];
    },
    encode: encodeRecord,
    reasonName: recordReasonName,
  };
  return {
    name: "record",
    sizes: [recordBytes],
    maxBytes: 2 * recordBytes + 32,
    fields: recordFields,
    generate(prng) {
      const kind = prng.pick([0, 0, 0, RecordFlags.SKIP, RecordFlags.NOP, RecordFlags.RELEASE]);
      const data = kind === 0 || kind === RecordFlags.SKIP;
      const r = { ...emptyRecord(), flags: kind, lba: u53(prng), timestampNs: u53(prng) };
      r.lbaFlags = prng.int(0, 1);
      r.seq = kind === RecordFlags.NOP ? 0 : Math.max(data ? 1 : 0, u53(prng));
      if (kind !== RecordFlags.RELEASE) r.dataOffset = prng.int(0, 2 ** 41 - 1) * blockBytes;
      if (data) r.dataLength = prng.int(1, dataLengthMax / blockBytes) * blockBytes;
      if (kind === 0) r.dataCrc = prng.u32();
      const bytes = new Uint8Array(recordBytes);
      encodeRecord(viewOf(bytes), 0, r);
      return bytes;
    },
    reseal: (bytes) => bytes.length >= recordBytes && sealRecord(viewOf(bytes), 0),
    run: (bytes) => runFixed(codec, bytes, out, recordSentinel),
  };
}

const ackFields = [
  f("magic", 0, 4, [BigInt(ackMagic), 0n]),
  f("version", 4, 2, u16Edges),
  f("status", 6, 2, u16Edges),
  f("seq", 8, 8, u64Edges),
  f("nextSeq", 16, 8, u64Edges),
  f("released", 24, 8, u64Edges),
];
const ackSentinel = { status: 0xbeef, seq: 1, nextSeq: 2, released: 3 };

/** The ack codec (`decodeAck`; `decode` is replaceable to test the harness). */
export function ackTarget(decode: typeof decodeAck = decodeAck): FuzzTarget {
  const out = emptyAck();
  const codec: FixedCodec<Ack> = {
    bytes: ackBytes,
    decode,
    parse: (b) => {
      const p = parseAck(b);
      return p.ok ? [AckReason.OK, p.ack] : [p.reason, undefined];
    },
    encode: encodeAck,
    reasonName: ackReasonName,
  };
  return {
    name: "ack",
    sizes: [ackBytes],
    maxBytes: 3 * ackBytes,
    fields: ackFields,
    generate(prng) {
      const bytes = new Uint8Array(ackBytes);
      const ack = { status: prng.int(0, 8), seq: u53(prng), nextSeq: u53(prng) };
      encodeAck(viewOf(bytes), 0, { ...ack, released: u53(prng) });
      return bytes;
    },
    run: (bytes) => runFixed(codec, bytes, out, ackSentinel),
  };
}

// Frame offsets: the body's offsets in docs/protocol.md plus the 4-byte length prefix.
const qpnEdges = [0n, 1n, (1n << 24n) - 1n, 1n << 24n, 0xffff_ffffn];
const mtuEdges = [0n, 1n, 5n, 6n, 0xffff_ffffn];
const ringEdges = [0n, 4096n, 65535n, 65536n, 69632n, 1n << 30n, (1n << 30n) + 4096n, 1n << 53n];
const slotEdges = [0n, 1n, 1024n, 1025n, 0xffff_ffffn];
const controlFields = [
  f("length", 0, 4, [0n, 7n, 8n, 36n, 40n, 104n, 108n, 112n, 116n, 1024n, 1025n, 0xffff_ffffn]),
  f("magic", 4, 4, [BigInt(controlMagic), 0n]),
  f("version", 8, 2, u16Edges),
  f("type", 10, 2, u16Edges),
  f("refuse.reason", 12, 2, u16Edges),
  f("refuse.pad", 14, 2, [0n, 1n, 0x8000n]),
  f("refuse.n", 16, 4, [0n, 1n, 199n, 200n, 201n, 1008n, 0xffff_ffffn]),
  f("welcome.qpn", 44, 4, qpnEdges),
  f("welcome.psn", 48, 4, qpnEdges),
  f("welcome.mtu", 68, 4, mtuEdges),
  f("welcome.ringAddr", 72, 8, u64Edges),
  f("welcome.metaSlots", 84, 4, slotEdges),
  f("welcome.ringBytes", 88, 8, ringEdges),
  f("welcome.nextSeq", 96, 8, u64Edges),
  f("welcome.released", 104, 8, u64Edges),
  f("hello.qpn", 76, 4, qpnEdges),
  f("hello.psn", 80, 4, qpnEdges),
  f("hello.mtu", 100, 4, mtuEdges),
  f("hello.ringBytes", 104, 8, ringEdges),
  f("hello.maxLogBytes", 112, 4, [...lengthEdges, 32768n, 0xffff_ffffn]),
  f("hello.depth", 116, 4, slotEdges),
];
const textChars = ["a", "Z", " ", "é", "€", "\u{1F600}", "\uFEFF", "\u0000"];

/** A valid bootstrap message of a random type, fields drawn across their whole ranges. */
function controlMessage(prng: Prng): ControlMessage {
  const bytes = (n: number) => prng.fill(new Uint8Array(n));
  const endpoint = () => ({
    qpn: prng.int(1, 2 ** 24 - 1),
    psn: prng.int(0, 2 ** 24 - 1),
    gid: bytes(16),
    mtu: prng.int(1, 5),
  });
  const ringBytes = prng.int(16, 2 ** 18) * blockBytes;
  switch (prng.int(1, 5)) {
    case 1:
      return { type: "CHALLENGE", nonce: bytes(32) };
    case 2: {
      const maxLogBytes = prng.int(1, Math.floor(Math.min(2 ** 24, ringBytes / 2) / blockBytes)) *
        blockBytes;
      const depth = prng.int(1, 1024);
      return {
        type: "HELLO",
        nonce: bytes(32),
        mac: bytes(32),
        endpoint: endpoint(),
        ringBytes,
        maxLogBytes,
        depth,
      };
    }
    case 3:
      return {
        type: "WELCOME",
        mac: bytes(32),
        endpoint: endpoint(),
        ringAddr: Math.max(1, u53(prng)),
        rkey: prng.u32(),
        metaSlots: prng.int(1, 1024),
        ringBytes,
        nextSeq: Math.max(1, u53(prng)),
        released: u53(prng),
      };
    case 4: {
      const reason = prng.pick(Object.keys(refuseReasons)) as RefuseReason;
      const chars = Array.from({ length: prng.int(0, 80) }, () => prng.pick(textChars));
      return { type: "REFUSE", reason, text: clipUtf8(chars.join("")) };
    }
    default:
      return { type: "READY" };
  }
}

/** The bootstrap frame codec (`decodeMessage`, which checks the body with `decodeBody`). */
export function controlTarget(): FuzzTarget {
  return {
    name: "control",
    sizes: [12, 20, 44, 112, 120, 216],
    maxBytes: 4 + 1024 + 64,
    fields: controlFields,
    generate: (prng) => encodeMessage(controlMessage(prng)),
    reseal: (bytes) => bytes.length >= 4 && viewOf(bytes).setUint32(0, bytes.length - 4, true),
    run(bytes) {
      const decoded = decodeMessage(bytes);
      if (!decoded.ok) {
        const sub = decoded.reason === "BAD_FIELD" || decoded.reason === "BAD_LENGTH";
        return refused(
          sub ? `${decoded.reason} ${decoded.detail.split(" ", 2).join(" ")}` : decoded.reason,
        );
      }
      return roundTrip(bytes, decoded.value, () => {
        const again = encodeMessage(decoded.value);
        const redecoded = decodeMessage(again);
        return [again, redecoded.ok && redecoded.value];
      });
    },
  };
}

// The NVMe target's namespace: 256 blocks; MDTS 16 blocks (64 KiB); a batch of up to 3
// entries (SQ depth 4) against a CQ of depth 2, so completions park and the phase wraps.
const nsBlocks = 256;
const mdtsBlocks = 16;
const batchMax = 3;
const entryBytes = sqeBytes + 2;
const cap = BigInt(nsBlocks);
const sqeFieldsAt = (base: number, prefix: string) => [
  f(`${prefix}opcode`, base, 1, [0n, 1n, 2n, 8n, 9n, 0x7fn, 0x80n, 0xffn]),
  f(`${prefix}fuse+psdt`, base + 1, 1, [0n, 1n, 2n, 3n, 0x3cn, 0x40n, 0x80n, 0xc0n]),
  f(`${prefix}cid`, base + 2, 2, [0n, 1n, 0xffffn]),
  f(`${prefix}nsid`, base + 4, 4, [0n, 1n, 2n, 0xffff_fffen, 0xffff_ffffn]),
  f(`${prefix}prp1`, base + 24, 8, u64Edges),
  f(`${prefix}slba`, base + 40, 8, [0n, cap - 16n, cap - 1n, cap, cap + 1n, ...u64Edges]),
  f(`${prefix}slbaHigh`, base + 44, 4, u32Edges),
  f(`${prefix}nlb`, base + 48, 2, [0n, 1n, 15n, 16n, 17n, 0xffffn]),
  f(`${prefix}cdw12`, base + 48, 4, [0n, 1n << 25n, 0xfn << 20n, 1n << 30n, 0xffff_ffffn]),
];
const nvmeFields = [0, 1, 2].flatMap((i) => [
  ...sqeFieldsAt(i * entryBytes, `e${i}.`),
  f(`e${i}.data`, i * entryBytes + sqeBytes, 1, [0n, 1n, 2n, 3n]),
]);

/** A valid Read, Write, Flush or Write Zeroes, then its data mode and fill byte. */
function nvmeEntry(prng: Prng): Uint8Array {
  const sqe = new Sqe();
  sqe.opcode = prng.pick([NvmOpcode.flush, NvmOpcode.write, NvmOpcode.read, NvmOpcode.writeZeroes]);
  sqe.nsid = sqe.opcode === NvmOpcode.flush && prng.chance(0.3) ? namespaceIdBroadcast : 1;
  sqe.cid = prng.int(0, 0xffff);
  if (sqe.opcode !== NvmOpcode.flush) {
    const blocks = prng.int(1, mdtsBlocks);
    setSqeIo(sqe, { slba: prng.int(0, nsBlocks - blocks), nlb: blocks - 1, fua: prng.chance(0.3) });
  }
  const bytes = new Uint8Array(entryBytes);
  encodeSqe(viewOf(bytes), 0, sqe);
  bytes[sqeBytes] = sqe.opcode === NvmOpcode.write || sqe.opcode === NvmOpcode.read ? 1 : 0;
  bytes[sqeBytes + 1] = prng.int(0, 255);
  return bytes;
}

/** The SQE codec (`decodeSqe`): every whole entry decodes; a short view is refused. */
export function sqeTarget(): FuzzTarget {
  const sentinel = Object.assign(new Sqe(), { opcode: 0xab, cdw15: 0x5a5a_5a5a });
  const into = new Sqe(), redecoded = new Sqe();
  const again = new Uint8Array(sqeBytes);
  return {
    name: "sqe",
    sizes: [sqeBytes],
    maxBytes: 2 * sqeBytes + 32,
    fields: sqeFieldsAt(0, ""),
    generate: (prng) =>
      prng.chance(0.5) ? nvmeEntry(prng).slice(0, sqeBytes) : prng.fill(new Uint8Array(sqeBytes)),
    run(bytes) {
      Object.assign(into, sentinel);
      const refusal = decodeSqe(bufferOf(bytes), bytes.byteOffset, into);
      if (refusal !== undefined) return refusedUntouched(into, sentinel, refusal);
      return roundTrip(bytes.subarray(0, sqeBytes), into, () => {
        encodeSqe(viewOf(again), 0, into);
        return [again, decodeSqe(viewOf(again), 0, redecoded) ?? redecoded];
      });
    },
  };
}

const equal = (a: Uint8Array, b: Uint8Array) =>
  a.length === b.length && a.every((x, i) => x === b[i]);

/**
 * The NVMe controller model behind its host driver. An input is one to three entries of 66
 * bytes: an SQE (zero-padded when short), a data mode (0 no buffer, 1 exact, 2 a block
 * short, 3 a block long) and a fill byte; all are submitted before any completes. Every
 * entry must complete with a status; accepted means all succeeded. A shadow image of the
 * namespace predicts every byte a Read returns, and {@linkcode FuzzTarget.check} compares
 * the whole namespace with it after a Write+Read round trip.
 */
export function nvmeTarget(): FuzzTarget {
  const backend = new MemoryBackend(nsBlocks);
  const mdtsBytes = mdtsBlocks * lbaBytes;
  const sqDepth = batchMax + 1;
  const controller = new NvmeController({
    backend,
    capacityBlocks: nsBlocks,
    sqDepth,
    cqDepth: 2,
    mdtsBytes,
  });
  const host = new NvmeHost(controller);
  const slotBytes = mdtsBytes + lbaBytes;
  const pool = new Uint8Array(new ArrayBuffer(batchMax * slotBytes));
  const shadow = new Uint8Array(nsBlocks * lbaBytes);
  const sqes = Array.from({ length: batchMax }, () => new Sqe());
  const entry = new Uint8Array(sqeBytes);
  let checks = 0;
  // The memory backend runs each command when the controller fetches it, in SQ order, so
  // applying the successful ones to the shadow in that order predicts every byte.
  const apply = (sqe: Sqe, data: Uint8Array | undefined): string | undefined => {
    const at = sqeSlba(sqe) * lbaBytes;
    const range = shadow.subarray(at, at + (sqeNlb(sqe) + 1) * lbaBytes);
    if (sqe.opcode === NvmOpcode.write) range.set(data!);
    else if (sqe.opcode === NvmOpcode.writeZeroes) range.fill(0);
    else if (sqe.opcode === NvmOpcode.read && !(data !== undefined && equal(data, range))) {
      return `Read of LBA ${sqeSlba(sqe)} succeeded with data that differ from the namespace`;
    }
  };
  return {
    name: "nvme",
    sizes: [entryBytes, 2 * entryBytes, 3 * entryBytes],
    maxBytes: batchMax * entryBytes + 16,
    fields: nvmeFields,
    generate: (prng) => {
      const entries = Array.from({ length: prng.int(1, batchMax) }, () => nvmeEntry(prng));
      return new Uint8Array(entries.flatMap((e) => [...e]));
    },
    async run(bytes) {
      const count = Math.max(1, Math.min(batchMax, Math.ceil(bytes.length / entryBytes)));
      const data: (Uint8Array | undefined)[] = [];
      const pending = [];
      for (let i = 0; i < count; i++) {
        const at = i * entryBytes, sqe = sqes[i];
        entry.fill(0);
        entry.set(bytes.subarray(at, Math.min(at + sqeBytes, bytes.length)));
        decodeSqe(viewOf(entry), 0, sqe);
        const mode = (bytes[at + sqeBytes] ?? 0) % 4;
        const blocks = Math.min(sqeNlb(sqe) + 1 + [0, 0, -1, 1][mode], mdtsBlocks + 1);
        data[i] = mode === 0
          ? undefined
          : pool.subarray(i * slotBytes, i * slotBytes + blocks * lbaBytes);
        data[i]?.fill(bytes[at + sqeBytes + 1] ?? 0);
        pending.push(host.submitEntry(sqe, data[i]));
      }
      const done = await Promise.all(pending);
      let outcome = accepted;
      for (let i = 0; i < count; i++) {
        const { status, sqId } = done[i];
        if (!isNvmeStatus(status) || sqId !== controller.sqId) {
          return mismatch(`entry ${i} completed with status ${status}, SQ ${sqId}`);
        }
        if (!statusIsSuccess(status)) {
          if (outcome === accepted) outcome = refused(describeStatus(status).split(" (")[0]);
          continue;
        }
        const problem = apply(sqes[i], data[i]);
        if (problem !== undefined) return mismatch(`entry ${i}: ${problem}`);
      }
      return outcome;
    },
    async check() {
      if (host.outstanding || controller.outstanding || host.unexpectedCompletions) {
        return `controller has ${controller.outstanding} outstanding, host ${host.outstanding}, ` +
          `${host.unexpectedCompletions} unexpected completions`;
      }
      if (controller.counters.backendFailures) {
        return `backend failed: ${controller.lastBackendError}`;
      }
      const block = new Uint8Array(lbaBytes).fill(0xa5 ^ (++checks & 0xff)),
        back = new Uint8Array(lbaBytes);
      const slba = checks % nsBlocks;
      const write = await host.submit({ opcode: NvmOpcode.write, slba }, block);
      const read = await host.submit({ opcode: NvmOpcode.read, slba }, back);
      if (write.status !== 0 || read.status !== 0 || !equal(block, back)) {
        const statuses = `${describeStatus(write.status)}, ${describeStatus(read.status)}`;
        return `Write+Read of LBA ${slba} failed: ${statuses}${
          equal(block, back) ? "" : ", data differ"
        }`;
      }
      shadow.set(block, slba * lbaBytes);
      if (!equal(backend.snapshot(0, nsBlocks), shadow)) {
        return "namespace differs from the shadow image";
      }
    },
  };
}

/** Names of the targets {@linkcode createTargets} makes, in round-robin order. */
export const targetNames = ["record", "ack", "control", "sqe", "nvme"] as const;

/** Creates fresh targets (all, or those named); RangeError naming the known ones otherwise. */
export function createTargets(names: readonly string[] = targetNames): FuzzTarget[] {
  const make: Record<string, () => FuzzTarget> = {
    record: () => recordTarget(),
    ack: () => ackTarget(),
    control: controlTarget,
    sqe: sqeTarget,
    nvme: nvmeTarget,
  };
  return names.map((name) => {
    if (!Object.hasOwn(make, name)) {
      throw new RangeError(`Cannot fuzz target '${name}': pass one of ${targetNames.join(", ")}`);
    }
    return make[name]();
  });
}
