/**
 * The host driver side of a queue pair: allocates command identifiers, writes entries into
 * SQ memory, attaches data buffers, rings the SQ tail doorbell, and on each interrupt reaps
 * new completions by their phase tag, resolving the matching promise and ringing the CQ
 * head doorbell (NVMe Base Specification 2.0, "Queue Usage", "Phase Tag").
 *
 * @module
 */

import { assert } from "../assert.ts";
import { lbaBytes, namespaceId, NvmOpcode } from "./command.ts";
import type { NvmeController } from "./controller.ts";
import { Cqe, decodeCqe } from "./cqe.ts";
import { CqConsumer, QueueFullError, SqProducer } from "./cursor.ts";
import { encodeSqe, setSqeIo, Sqe } from "./sqe.ts";
import type { NvmeStatus } from "./status.ts";
import { blockBytes } from "../block.ts";

/** One completion as the host reaped it (NVMe Base 2.0, "Common Completion Queue Entry"). */
export interface NvmeCompletion {
  /** Command Identifier. */
  readonly cid: number;
  /** Status Field; 0 is Successful Completion. */
  readonly status: NvmeStatus;
  /** SQ head when the controller posted this entry. */
  readonly sqHead: number;
  /** SQ Identifier. */
  readonly sqId: number;
  /** Command specific DW0. */
  readonly dw0: number;
}

/** A command for {@linkcode NvmeHost.submit}. */
export interface NvmeHostCommand {
  /** Opcode, e.g. {@linkcode NvmOpcode.write}. */
  opcode: number;
  /** Namespace ID (default 1). */
  nsid?: number;
  /** Starting LBA (default 0). */
  slba?: number;
  /** 0's based block count (default: from the buffer's length, else 0). */
  nlb?: number;
  /** Force Unit Access (default false). */
  fua?: boolean;
  /** Command Identifier (default: the host picks a free one). */
  cid?: number;
}

/** Options for {@linkcode NvmeHost}. */
export interface NvmeHostOptions {
  /** Commands submitted and not yet reaped, at most (default: SQ depth − 1). */
  outstandingMax?: number;
}

/** A host driver bound to one {@linkcode NvmeController}. */
export class NvmeHost {
  /** The controller this driver talks to. */
  readonly controller: NvmeController;
  /** Commands submitted and not yet reaped, at most; CIDs are 0..outstandingMax − 1. */
  readonly outstandingMax: number;
  /** Completions whose CID matched no outstanding command (ignored, as Linux does). */
  unexpectedCompletions = 0;

  readonly #sq: SqProducer;
  readonly #cq: CqConsumer;
  readonly #sqe = new Sqe();
  readonly #cqe = new Cqe();
  readonly #waiters: (((completion: NvmeCompletion) => void) | undefined)[];
  #outstanding = 0;
  #nextCid = 0;

  /** Binds to `controller` and takes over its interrupt. */
  constructor(controller: NvmeController, options: NvmeHostOptions = {}) {
    this.controller = controller;
    this.#sq = new SqProducer(controller.sq.depth);
    this.#cq = new CqConsumer(controller.cq.depth);
    this.outstandingMax = options.outstandingMax ?? controller.sq.depth - 1;
    if (
      !Number.isInteger(this.outstandingMax) || this.outstandingMax < 1 ||
      this.outstandingMax > 65536
    ) {
      throw new RangeError(
        `Cannot allow ${this.outstandingMax} outstanding commands: pass 1..65536`,
      );
    }
    this.#waiters = new Array(this.outstandingMax).fill(undefined);
    controller.onInterrupt(() => this.reap());
  }

  /** Commands submitted and not yet reaped. */
  get outstanding(): number {
    return this.#outstanding;
  }

  /**
   * Submits one command; `data` is the buffer its PRPs would describe (the source of a
   * Write, the destination of a Read). Resolves with the completion when it is reaped,
   * whatever its status; rejects with QueueFullError when the SQ or the CIDs are used up,
   * RangeError when a field does not fit.
   */
  submit(command: NvmeHostCommand, data?: Uint8Array): Promise<NvmeCompletion> {
    try {
      const sqe = this.#sqe;
      sqe.clear();
      sqe.opcode = command.opcode;
      sqe.nsid = command.nsid ?? namespaceId;
      if (command.opcode !== NvmOpcode.flush) {
        const nlb = command.nlb ?? defaultNlb(data);
        setSqeIo(sqe, { slba: command.slba ?? 0, nlb, fua: command.fua });
      }
      return this.#submit(sqe, data, command.cid);
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /**
   * Submits a caller-built entry as is, except its CID, which is `cid` or one the host
   * picks (written back into `sqe.cid`). For tests that set reserved or unsupported fields.
   */
  submitEntry(sqe: Sqe, data?: Uint8Array, cid?: number): Promise<NvmeCompletion> {
    try {
      return this.#submit(sqe, data, cid);
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /**
   * Reaps every new completion (phase tag = expected phase), resolves its promise, and
   * writes the CQ head doorbell once; returns how many entries it consumed.
   */
  reap(): number {
    const memory = this.controller.cq.memory;
    let reaped = 0;
    while (reaped < this.#cq.depth && this.#cq.ready(memory)) {
      const refusal = decodeCqe(memory, this.#cq.headOffset, this.#cqe);
      assert(refusal === undefined, `CQ head entry decodes: ${refusal}`);
      this.#cq.advance();
      reaped++;
      const cqe = this.#cqe;
      this.#sq.observeHead(cqe.sqHead);
      const waiter = cqe.cid < this.outstandingMax ? this.#waiters[cqe.cid] : undefined;
      if (waiter === undefined) {
        this.unexpectedCompletions++;
        continue;
      }
      this.#waiters[cqe.cid] = undefined;
      this.#outstanding--;
      const { cid, status, sqHead, sqId, dw0 } = cqe;
      waiter({ cid, status, sqHead, sqId, dw0 });
    }
    if (reaped > 0) this.controller.writeCqHeadDoorbell(this.#cq.head);
    return reaped;
  }

  #submit(
    sqe: Sqe,
    data: Uint8Array | undefined,
    cid: number | undefined,
  ): Promise<NvmeCompletion> {
    if (this.#sq.full) {
      throw new QueueFullError(
        `Cannot submit: the submission queue is full (depth ${this.#sq.depth}, ` +
          `${this.#outstanding} outstanding); wait for a completion`,
      );
    }
    const chosen = cid ?? this.#freeCid();
    if (!Number.isInteger(chosen) || chosen < 0 || chosen >= this.outstandingMax) {
      throw new RangeError(`Cannot use CID ${chosen}: pass 0..${this.outstandingMax - 1}`);
    }
    if (this.#waiters[chosen] !== undefined) {
      throw new RangeError(`Cannot use CID ${chosen}: it is outstanding; pick a free one`);
    }
    sqe.cid = chosen;
    const controllerSq = this.controller.sq;
    encodeSqe(controllerSq.memory, controllerSq.slotOffset(this.#sq.tail), sqe);
    const slot = this.#sq.claim();
    controllerSq.attachData(slot, data);
    const completion = new Promise<NvmeCompletion>((resolve) => {
      this.#waiters[chosen] = resolve;
    });
    this.#outstanding++;
    this.controller.writeSqTailDoorbell(this.#sq.tail);
    return completion;
  }

  /** Returns a free CID, scanning on from the last one handed out. */
  #freeCid(): number {
    if (this.#outstanding >= this.outstandingMax) {
      throw new QueueFullError(
        `Cannot submit: all ${this.outstandingMax} command identifiers are outstanding; ` +
          "wait for a completion",
      );
    }
    for (let i = 0; i < this.outstandingMax; i++) {
      const cid = (this.#nextCid + i) % this.outstandingMax;
      if (this.#waiters[cid] === undefined) {
        this.#nextCid = (cid + 1) % this.outstandingMax;
        return cid;
      }
    }
    throw new Error(`unreachable: ${this.#outstanding} outstanding yet no free CID`);
  }
}

/** NLB implied by a buffer of whole blocks; RangeError if it is not one. */
function defaultNlb(data: Uint8Array | undefined): number {
  if (data === undefined) return 0;
  const blocks = data.byteLength / lbaBytes;
  if (!Number.isInteger(blocks) || blocks < 1) {
    throw new RangeError(
      `Cannot infer NLB from a ${data.byteLength}-byte buffer: pass whole ${blockBytes}-byte blocks or nlb`,
    );
  }
  return blocks - 1;
}
