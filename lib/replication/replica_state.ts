/**
 * What a replica keeps across sessions: its data ring (memory, MR, placement cursor), the
 * next expected sequence number, the digest of accepted logs, and counters. And the
 * check of one record against that state (docs/protocol.md, "Ordering and completion",
 * step 3), which changes the state only when the record is accepted.
 *
 * @module
 */
import { AckStatus } from "../log/ack.ts";
import { RegionCrc } from "../log/crc32c.ts";
import { type LogRecord, RecordFlags } from "../log/record.ts";
import { placementStart, RingCursor } from "../log/ring.ts";
import type { MemoryRegion } from "../verbs/pd.ts";
import { LogDigest } from "./digest.ts";
import type { RingMemory } from "./ring_memory.ts";

/** A log the replica has checked, handed to the persistence hook. */
export interface AcceptedLog {
  /** Its sequence number. */
  seq: number;
  /** The LBA it writes. */
  lba: number;
  /** `LbaFlags` of the record. */
  lbaFlags: number;
  /** Offset of the data in the ring. */
  offset: number;
  /** Bytes of data. */
  length: number;
  /** CRC32C the replica computed over its own bytes. */
  crc: number;
  /** The whole ring (the log is `ring.subarray(offset, offset + length)`). */
  ring: Uint8Array;
  /** A SKIP (a hole: no data, `crc` 0) rather than a log. */
  skip: boolean;
}

/** Makes an accepted log durable; false answers PERSIST_FAILED and changes nothing. */
export type PersistHook = (log: AcceptedLog) => boolean;

/** Counters of one replica. */
export interface ReplicaCounters {
  /** Sessions served. */
  sessions: number;
  /** Logs accepted (checked and persisted). */
  accepted: number;
  /** Bytes of the accepted logs. */
  acceptedBytes: number;
  /** SKIP records accepted. */
  skips: number;
  /** NOP records received. */
  nops: number;
  /** RELEASE records received. */
  releases: number;
  /** Logs recovered from the write cache at start. */
  recovered: number;
  /** Refusals by status name. */
  refused: Record<string, number>;
}

/** What a replica's state is built from. */
export interface ReplicaStateOptions {
  /** The data ring (registered as `mr`). */
  memory: RingMemory;
  mr: MemoryRegion;
  /** Largest log accepted. */
  maxLogBytes: number;
  /** Makes an accepted log (or SKIP) durable before its ack. */
  persist?: PersistHook;
  /** Keep logs until a RELEASE instead of releasing them once persisted. */
  retain?: boolean;
  /** Called after a RELEASE freed logs through `seq`. */
  onRelease?: (seq: number, releasedPos: number) => void;
  /** Continue a persistent ring (a restart): what its write cache held. */
  resume?: ReplicaResume;
}

/** A replica's ring as its write cache recorded it: released through a seq and position, then logs. */
export interface ReplicaResume {
  /** Logs through this seq were released (de-staged). */
  releasedSeq: number;
  /** The ring position released with them. */
  releasedPos: number;
  /** The logs (and SKIPs) after `releasedSeq`, consecutive, in seq order. */
  logs: { seq: number; offset: number; length: number; lba: number; crc: number; skip: boolean }[];
}

/** The replica's durable-for-the-session state. */
export class ReplicaState {
  readonly memory: RingMemory;
  /** CRC32C over the ring (page pointers made once). */
  readonly #crc: RegionCrc;
  readonly mr: MemoryRegion;
  readonly ring: RingCursor;
  readonly digest = new LogDigest();
  readonly maxLogBytes: number;
  readonly counters: ReplicaCounters = {
    sessions: 0,
    accepted: 0,
    acceptedBytes: 0,
    skips: 0,
    nops: 0,
    releases: 0,
    recovered: 0,
    refused: {},
  };
  readonly #persist: PersistHook | undefined;
  readonly #onRelease: ((seq: number, releasedPos: number) => void) | undefined;
  readonly #accepted: AcceptedLog;
  /** Next expected sequence number. */
  nextSeq = 1;
  /** Every log up to this seq has been released. */
  releasedSeq = 0;
  /** Keep logs until a RELEASE (write cache) instead of releasing them once persisted. */
  readonly retain: boolean;

  /** Uses `memory` (registered as `mr`) as the data ring. */
  constructor(options: ReplicaStateOptions) {
    this.retain = options.retain ?? false;
    this.#onRelease = options.onRelease;
    this.memory = options.memory;
    this.mr = options.mr;
    this.ring = new RingCursor({
      ringBytes: options.memory.length,
      startPos: options.resume?.releasedPos ?? 0,
    });
    this.maxLogBytes = options.maxLogBytes;
    this.#persist = options.persist;
    this.#crc = new RegionCrc(options.memory.address, options.memory.length);
    if (options.resume) this.#resume(options.resume);
    this.#accepted = {
      seq: 0,
      lba: 0,
      lbaFlags: 0,
      offset: 0,
      length: 0,
      crc: 0,
      ring: options.memory.bytes,
      skip: false,
    };
  }

  /**
   * Rebuilds the ring from a write cache: each recovered log is placed again and must land
   * where it was; the first that does not ends the recovery there (its space is reused).
   */
  #resume(r: ReplicaResume): void {
    this.releasedSeq = r.releasedSeq;
    this.nextSeq = r.releasedSeq + 1;
    for (const log of r.logs) {
      if (log.seq !== this.nextSeq) break;
      const expected = placementStart(this.ring.writePos, log.length, this.ring.ringBytes) %
        this.ring.ringBytes;
      if (expected !== log.offset || !this.ring.canPlace(log.length)) break;
      this.ring.place(log.length);
      this.nextSeq++;
      if (!log.skip) this.digest.add(log.seq, log.lba, log.length, log.crc | 0);
      this.counters.recovered++;
    }
  }

  /** Released ring position (the credit the acks carry). */
  get released(): number {
    return this.ring.releasedPos;
  }

  /**
   * Checks a decoded record and, if it passes, accepts it (persist, place, release,
   * digest). Returns the ack status; anything but OK leaves the state as it was.
   */
  check(record: LogRecord): number {
    if (record.flags === RecordFlags.NOP) {
      this.counters.nops++;
      return AckStatus.OK;
    }
    if (record.flags === RecordFlags.RELEASE) return this.#release(record.seq);
    if (record.seq > this.nextSeq) return this.#refuse(AckStatus.SEQ_GAP);
    if (record.seq < this.nextSeq) return this.#refuse(AckStatus.SEQ_DUPLICATE);
    const length = record.dataLength;
    const ringBytes = this.ring.ringBytes;
    if (length > this.maxLogBytes || record.dataOffset + length > ringBytes) {
      return this.#refuse(AckStatus.OUT_OF_BOUNDS);
    }
    const expected = placementStart(this.ring.writePos, length, ringBytes) % ringBytes;
    if (record.dataOffset !== expected) return this.#refuse(AckStatus.OUT_OF_BOUNDS);
    if (!this.ring.canPlace(length)) return this.#refuse(AckStatus.NO_CREDIT);
    if (record.flags === RecordFlags.SKIP) {
      if (this.#persist && this.#persist(this.#fill(record, 0, true)) === false) {
        return this.#refuse(AckStatus.PERSIST_FAILED);
      }
      this.ring.place(length);
      this.#accepted1();
      this.counters.skips++;
      return AckStatus.OK;
    }
    // The CRC stays int32 bits until stored: a u32 >= 2^31 passed to a call is boxed.
    const crcBits = this.#crc.int32At(record.dataOffset, length);
    if (crcBits !== (record.dataCrc | 0)) return this.#refuse(AckStatus.CRC_MISMATCH);
    // Every field of the reused AcceptedLog is set, `skip` too: after a SKIP it was true.
    const log = this.#fill(record, crcBits, false);
    if (this.#persist && this.#persist(log) === false) {
      return this.#refuse(AckStatus.PERSIST_FAILED);
    }
    this.ring.place(length);
    this.#accepted1();
    this.digest.add(record.seq, record.lba, length, crcBits);
    this.counters.accepted++;
    this.counters.acceptedBytes += length;
    return AckStatus.OK;
  }

  /** Fills the reused AcceptedLog; `crcBits` is the data CRC as int32 bits. */
  #fill(record: LogRecord, crcBits: number, skip: boolean): AcceptedLog {
    const log = this.#accepted;
    log.seq = record.seq;
    log.lba = record.lba;
    log.lbaFlags = record.lbaFlags;
    log.offset = record.dataOffset;
    log.length = record.dataLength;
    log.crc = crcBits >>> 0;
    log.skip = skip;
    return log;
  }

  /** One more seq accepted: release it at once unless retaining. */
  #accepted1(): void {
    this.nextSeq++;
    if (!this.retain) {
      // Persisted: the space may be reused (a write cache retains it until RELEASE).
      this.ring.release(this.ring.writePos);
      this.releasedSeq = this.nextSeq - 1;
    }
  }

  /** RELEASE through `seq`: frees the oldest logs up to it; idempotent below releasedSeq. */
  #release(seq: number): number {
    this.counters.releases++;
    if (seq >= this.nextSeq) return this.#refuse(AckStatus.BAD_RELEASE);
    if (seq <= this.releasedSeq) return AckStatus.OK;
    for (; this.releasedSeq < seq; this.releasedSeq++) this.ring.releaseOldest();
    this.#onRelease?.(seq, this.ring.releasedPos);
    return AckStatus.OK;
  }

  /** Counts a refusal (also used for injected answers). */
  refuse(status: number): number {
    return this.#refuse(status);
  }

  #refuse(status: number): number {
    const name = statusNames[status] ?? String(status);
    this.counters.refused[name] = (this.counters.refused[name] ?? 0) + 1;
    return status;
  }

  /** Counts a record that did not decode. */
  refuseUndecodable(): number {
    return this.#refuse(AckStatus.BAD_RECORD);
  }
}

const statusNames: string[] = [];
for (const [name, code] of Object.entries(AckStatus)) statusNames[code] = name;
