/**
 * The host driver's cursors over a queue pair: its own SQ tail and the SQ head it learnt
 * from CQE SQHD fields ({@linkcode SqProducer}), and its CQ head with the phase tag it
 * expects there ({@linkcode CqConsumer}). NVMe Base Specification 2.0, "Queue Usage",
 * "Full Queue" and "Phase Tag".
 *
 * @module
 */

import { assert } from "../assert.ts";
import { cqeBytes, cqePhaseAt } from "./cqe.ts";
import { checkQueueDepth, ringDistance } from "./queue.ts";

/** A submission refused because the host's view of the SQ is full (NVMe Base 2.0, "Full Queue"). */
export class QueueFullError extends Error {
  /** Always `"QueueFullError"`. */
  override name = "QueueFullError";
}

/** The host's submission cursor: its tail and the SQ head it learnt from completions. */
export class SqProducer {
  /** Slots in the ring. */
  readonly depth: number;
  #tail = 0;
  #head = 0;

  /** Creates the cursor for a queue of `depth` slots. */
  constructor(depth: number) {
    checkQueueDepth(depth, "a submission cursor");
    this.depth = depth;
  }

  /** The host's tail: the slot the next entry goes to. */
  get tail(): number {
    return this.#tail;
  }

  /** The newest SQ head reported in a CQE's SQHD field. */
  get head(): number {
    return this.#head;
  }

  /** True when the host must not write another entry ("Full Queue" as the host sees it). */
  get full(): boolean {
    return (this.#tail + 1) % this.depth === this.#head;
  }

  /** Returns the slot for the next entry and advances the tail; QueueFullError if full. */
  claim(): number {
    if (this.full) {
      throw new QueueFullError(
        `Cannot submit: the submission queue is full (head ${this.#head}, tail ${this.#tail}, ` +
          `depth ${this.depth}); wait for a completion`,
      );
    }
    const slot = this.#tail;
    this.#tail = (slot + 1) % this.depth;
    return slot;
  }

  /** Records an SQHD value; false (and ignored) if it lies outside head..tail. */
  observeHead(sqHead: number): boolean {
    const outstanding = ringDistance(this.#head, this.#tail, this.depth);
    if (!Number.isInteger(sqHead) || sqHead < 0 || sqHead >= this.depth) return false;
    if (ringDistance(this.#head, sqHead, this.depth) > outstanding) return false;
    this.#head = sqHead;
    return true;
  }
}

/** The host's completion cursor: its CQ head and the phase it expects there. */
export class CqConsumer {
  /** Slots in the ring. */
  readonly depth: number;
  #head = 0;
  #phase = 1;

  /** Creates the cursor for a queue of `depth` slots. */
  constructor(depth: number) {
    checkQueueDepth(depth, "a completion cursor");
    this.depth = depth;
  }

  /** The slot the host reads next. */
  get head(): number {
    return this.#head;
  }

  /** The Phase Tag that marks a new entry at the head on this pass. */
  get phase(): number {
    return this.#phase;
  }

  /** True when the entry at the head in `memory` carries the expected phase (is new). */
  ready(memory: DataView): boolean {
    assert(memory.byteLength === this.depth * cqeBytes, "CQ memory matches the cursor depth");
    return cqePhaseAt(memory, this.#head * cqeBytes) === this.#phase;
  }

  /** Byte offset of the head entry. */
  get headOffset(): number {
    return this.#head * cqeBytes;
  }

  /** Consumes the head entry: advances, inverting the expected phase on wrap. */
  advance(): void {
    this.#head = (this.#head + 1) % this.depth;
    if (this.#head === 0) this.#phase ^= 1;
  }
}
