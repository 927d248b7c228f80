/**
 * The primary's records in flight: a preallocated pool of entries and the FIFO of records
 * posted and not yet answered (acks come back in the order records were sent).
 *
 * @module
 */
import { InvariantError } from "../assert.ts";
import type { Ack } from "../log/ack.ts";

/** What a record in flight is. */
export const Kind = { LOG: 0, SKIP: 1, NOP: 2, RAW: 3, RELEASE: 4 } as const;

/** The result of a replicated log. */
export interface ReplicatedLog {
  /** Its sequence number. */
  seq: number;
  /** The LBA it was written for. */
  lba: number;
  /** Bytes of data. */
  length: number;
  /** Offset of the data in both rings. */
  offset: number;
  /** Submission to OK ack, microseconds. */
  latencyUs: number;
  /** Times the log was posted again after an earlier log's refusal. */
  resends: number;
  /** When the OK ack was handled (performance.now(), ms). */
  ackedAt: number;
}

/** Where a stream's log reports its end (the allocation-free path: no promise per log). */
export interface LogSink {
  /** The log was replicated; `log` is reused: copy what you keep. */
  replicated(log: ReplicatedLog): void;
  /** The replica refused the log, or the session failed with it in flight. */
  failed(seq: number, error: Error): void;
}

/** One record in flight (reused). */
export class Entry {
  kind: number = Kind.LOG;
  seq = 0;
  offset = 0;
  length = 0;
  /** Ring position after the log (its gap included before it). */
  end = 0;
  lba = 0;
  lbaFlags = 0;
  crc = 0;
  /** When the caller submitted it (ms). */
  submitted = 0;
  /** When it was last posted (ms). */
  posted = 0;
  resends = 0;
  resolve: ((log: ReplicatedLog) => void) | undefined = undefined;
  /** For a RAW record: receives the ack as it came. */
  onAck: ((ack: Ack) => void) | undefined = undefined;
  reject: ((error: Error) => void) | undefined = undefined;
  /** For a stream's log: where its end is reported (instead of resolve/reject). */
  sink: LogSink | undefined = undefined;
}

/** A pool of `capacity` entries and a FIFO over them. */
export class Flight {
  readonly #free: Entry[] = [];
  readonly #fifo: (Entry | undefined)[];
  #head = 0;
  #count = 0;

  /** `capacity` entries: the depth plus room for a SKIP and a NOP. */
  constructor(readonly capacity: number) {
    for (let i = 0; i < capacity; i++) this.#free.push(new Entry());
    this.#fifo = new Array(capacity).fill(undefined);
  }

  /** Records in flight. */
  get count(): number {
    return this.#count;
  }

  /** A free entry, reset. */
  take(kind: number): Entry {
    const e = this.#free.pop();
    if (!e) throw new InvariantError(`no free flight entry (capacity ${this.capacity})`);
    e.kind = kind;
    e.resends = 0;
    e.resolve = undefined;
    e.reject = undefined;
    e.onAck = undefined;
    e.sink = undefined;
    return e;
  }

  /** An entry outside the pool (a log recovered from a write cache, waiting for a session). */
  detached(kind: number): Entry {
    const e = new Entry();
    e.kind = kind;
    return e;
  }

  /** Returns an entry to the pool (which never grows beyond its capacity). */
  give(e: Entry): void {
    e.resolve = undefined;
    e.reject = undefined;
    e.onAck = undefined;
    e.sink = undefined;
    if (this.#free.length < this.capacity) this.#free.push(e);
  }

  /** Appends a posted record. */
  push(e: Entry): void {
    if (this.#count >= this.capacity) {
      throw new InvariantError(`flight FIFO full (${this.capacity})`);
    }
    this.#fifo[(this.#head + this.#count) % this.capacity] = e;
    this.#count++;
  }

  /** The oldest unanswered record, or undefined. */
  peek(): Entry | undefined {
    return this.#count > 0 ? this.#fifo[this.#head] : undefined;
  }

  /** Removes and returns the oldest unanswered record. */
  shift(): Entry {
    const e = this.#fifo[this.#head];
    if (this.#count === 0 || !e) throw new InvariantError("flight FIFO empty");
    this.#fifo[this.#head] = undefined;
    this.#head = (this.#head + 1) % this.capacity;
    this.#count--;
    return e;
  }
}
