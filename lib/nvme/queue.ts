/**
 * Submission and completion rings as the controller sees them: the ring memory (host
 * memory the controller reads and writes) and the controller's pointers, moved only by
 * doorbell writes, fetches and posts. The host driver's own cursors are in
 * {@link ./cursor.ts}, kept apart the way a real queue pair keeps them apart.
 *
 * Follows NVMe Base Specification 2.0, "Queue Usage", "Empty Queue" (head = tail), "Full
 * Queue" (head = tail + 1) and "Phase Tag", and NVMe over PCIe Transport 1.0, "Submission
 * Queue y Tail Doorbell", "Completion Queue y Head Doorbell" and "Invalid Doorbell Write
 * Value" for what a doorbell write may say.
 *
 * @module
 */

import { assert } from "../assert.ts";
import { type Cqe, cqeBytes, encodeCqe } from "./cqe.ts";
import { sqeBytes } from "./sqe.ts";

/** Smallest queue depth in entries (NVMe Base 2.0: a queue has at least two entries). */
export const queueDepthMin = 2;
/** Largest queue depth in entries (CAP.MQES is 0's based and 16 bits wide). */
export const queueDepthMax = 65536;

/** Why a doorbell write was refused. */
export type DoorbellRefusal =
  /** The value is not an integer. */
  | "not-an-integer"
  /** The value is not below the queue depth. */
  | "beyond-depth"
  /** An SQ tail that adds more entries than the queue has free slots. */
  | "overruns-head"
  /** A CQ head that consumes entries the controller has not posted. */
  | "passes-tail";

/** A refused doorbell write (NVMe over PCIe 1.0, "Invalid Doorbell Write Value"). */
export class DoorbellError extends Error {
  /** Always `"DoorbellError"`. */
  override name = "DoorbellError";
  /** Creates the error for `queue` written with `value`, refused for `reason`. */
  constructor(
    readonly queue: "sq-tail" | "cq-head",
    readonly value: number,
    readonly reason: DoorbellRefusal,
    detail: string,
  ) {
    super(`Cannot write ${queue} doorbell ${value}: ${reason} (${detail})`);
  }
}

/** Throws RangeError unless `depth` is an integer in 2..65536. */
export function checkQueueDepth(depth: number, what: string): void {
  if (!Number.isInteger(depth) || depth < queueDepthMin || depth > queueDepthMax) {
    throw new RangeError(
      `Cannot create ${what} of depth ${depth}: pass an integer ${queueDepthMin}..${queueDepthMax}`,
    );
  }
}

/** Entries from `from` forward to `to` on a ring of `depth` slots. */
export function ringDistance(from: number, to: number, depth: number): number {
  return (to - from + depth) % depth;
}

function checkDoorbell(queue: "sq-tail" | "cq-head", value: number, depth: number): void {
  if (!Number.isInteger(value)) {
    throw new DoorbellError(queue, value, "not-an-integer", `write 0..${depth - 1}`);
  }
  if (value < 0 || value >= depth) {
    throw new DoorbellError(
      queue,
      value,
      "beyond-depth",
      `depth is ${depth}; write 0..${depth - 1}`,
    );
  }
}

/** The controller's side of a submission queue (NVMe Base 2.0, "Queue Usage"). */
export class SubmissionQueue {
  /** Slots in the ring. */
  readonly depth: number;
  /** The ring memory, `depth` × 64 bytes, written by the host and read by the controller. */
  readonly memory: DataView;
  #head = 0;
  #tail = 0;
  /** Per slot, the buffer standing in for the memory the entry's PRPs point at. */
  readonly #data: (Uint8Array | undefined)[];

  /** Creates an empty queue of `depth` slots (2..65536). */
  constructor(depth: number) {
    checkQueueDepth(depth, "a submission queue");
    this.depth = depth;
    this.memory = new DataView(new ArrayBuffer(depth * sqeBytes));
    this.#data = new Array(depth).fill(undefined);
  }

  /** The next slot the controller fetches. */
  get head(): number {
    return this.#head;
  }

  /** The tail last written to the doorbell. */
  get tail(): number {
    return this.#tail;
  }

  /** Entries submitted and not yet fetched. */
  get pending(): number {
    return ringDistance(this.#head, this.#tail, this.depth);
  }

  /** Byte offset of `slot` in {@linkcode memory}. */
  slotOffset(slot: number): number {
    assert(Number.isInteger(slot) && slot >= 0 && slot < this.depth, `SQ slot ${slot} in ring`);
    return slot * sqeBytes;
  }

  /**
   * Writes the SQ tail doorbell. DoorbellError, with the tail unchanged, if `value` is not
   * a slot or would add more entries than are free (the "Full Queue" condition broken).
   */
  writeTailDoorbell(value: number): void {
    checkDoorbell("sq-tail", value, this.depth);
    const before = ringDistance(this.#head, this.#tail, this.depth);
    const after = ringDistance(this.#head, value, this.depth);
    if (after < before) {
      throw new DoorbellError(
        "sq-tail",
        value,
        "overruns-head",
        `head ${this.#head}, tail ${this.#tail}: at most ${
          this.depth - 1 - before
        } more entries fit`,
      );
    }
    this.#tail = value;
  }

  /** Takes the slot at the head and advances it, or returns -1 when the queue is empty. */
  fetch(): number {
    if (this.#head === this.#tail) return -1;
    const slot = this.#head;
    this.#head = (slot + 1) % this.depth;
    return slot;
  }

  /** Host side: attaches the buffer the entry in `slot` transfers (the PRP stand-in). */
  attachData(slot: number, data: Uint8Array | undefined): void {
    if (!Number.isInteger(slot) || slot < 0 || slot >= this.depth) {
      throw new RangeError(`Cannot attach data to SQ slot ${slot}: pass 0..${this.depth - 1}`);
    }
    this.#data[slot] = data;
  }

  /** Controller side: takes (and clears) the buffer attached to `slot`. */
  takeData(slot: number): Uint8Array | undefined {
    const data = this.#data[slot];
    this.#data[slot] = undefined;
    return data;
  }
}

/** The controller's side of a completion queue (NVMe Base 2.0, "Queue Usage", "Phase Tag"). */
export class CompletionQueue {
  /** Slots in the ring. */
  readonly depth: number;
  /** The ring memory, `depth` × 16 bytes, written by the controller and read by the host. */
  readonly memory: DataView;
  #head = 0;
  #tail = 0;
  #phase = 1;

  /** Creates an empty queue of `depth` slots (2..65536); its memory is zeroed (phase 0). */
  constructor(depth: number) {
    checkQueueDepth(depth, "a completion queue");
    this.depth = depth;
    this.memory = new DataView(new ArrayBuffer(depth * cqeBytes));
  }

  /** The head last written to the doorbell. */
  get head(): number {
    return this.#head;
  }

  /** The next slot the controller posts to. */
  get tail(): number {
    return this.#tail;
  }

  /** The Phase Tag the controller writes on this pass (1 on the first). */
  get phase(): number {
    return this.#phase;
  }

  /** True when one more post would make head equal tail ("Full Queue"). */
  get full(): boolean {
    return (this.#tail + 1) % this.depth === this.#head;
  }

  /**
   * Writes the CQ head doorbell. DoorbellError, with the head unchanged, if `value` is not
   * a slot or lies past the tail (consuming entries that were never posted).
   */
  writeHeadDoorbell(value: number): void {
    checkDoorbell("cq-head", value, this.depth);
    const posted = ringDistance(this.#head, this.#tail, this.depth);
    if (ringDistance(this.#head, value, this.depth) > posted) {
      throw new DoorbellError(
        "cq-head",
        value,
        "passes-tail",
        `head ${this.#head}, tail ${this.#tail}: only ${posted} entries are posted`,
      );
    }
    this.#head = value;
  }

  /** Posts `cqe` at the tail with the current phase, then advances (inverting on wrap). */
  post(cqe: Cqe): void {
    assert(!this.full, `CQ post to a full queue (head ${this.#head}, tail ${this.#tail})`);
    cqe.phase = this.#phase;
    encodeCqe(this.memory, this.#tail * cqeBytes, cqe);
    this.#tail = (this.#tail + 1) % this.depth;
    if (this.#tail === 0) this.#phase ^= 1;
  }
}
