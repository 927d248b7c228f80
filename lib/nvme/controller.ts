/**
 * An in-process model of an NVMe I/O controller with one queue pair and one namespace.
 *
 * The host writes 64-byte entries into {@linkcode NvmeController.sq} memory, attaches each
 * entry's data buffer (the stand-in for its PRP list) and writes the SQ tail doorbell. The
 * controller fetches entries while it has room for more outstanding commands, checks each
 * one ({@linkcode checkCommand}), hands valid I/O to the {@linkcode NvmeBackend} and, when
 * that settles, posts a 16-byte entry carrying the SQ head into {@linkcode
 * NvmeController.cq}, in settle order, not submission order. A full CQ parks completions
 * until the host writes the CQ head doorbell. Follows NVMe Base Specification 2.0, "Queue
 * Usage" and "Command Processing", and NVMe over PCIe Transport 1.0 for the doorbells.
 *
 * @module
 */

import { assert } from "../assert.ts";
import type { NvmeBackend } from "./backend.ts";
import {
  checkCommand,
  checkLimits,
  type CommandLimits,
  ControllerStatus,
  lbaBytes,
  mdtsBytesDefault,
  NvmOpcode,
} from "./command.ts";
import { Cqe } from "./cqe.ts";
import { decodeSqe, Sqe, sqeFua, sqeNlb, sqeSlba } from "./sqe.ts";
import { isNvmeStatus, type NvmeStatus, statusSuccess } from "./status.ts";
import { CompletionQueue, SubmissionQueue } from "./queue.ts";

/** Default SQ and CQ depth in entries. */
export const queueDepthDefault = 256;
const cidCount = 65536;

/** Options for {@linkcode NvmeController}. */
export interface NvmeControllerOptions {
  /** Storage behind the namespace. */
  backend: NvmeBackend;
  /** Namespace size in 4096-byte blocks, 1..2^40. */
  capacityBlocks: number;
  /** Submission queue depth in entries, 2..65536 (default 256). */
  sqDepth?: number;
  /** Completion queue depth in entries, 2..65536 (default: the SQ depth). */
  cqDepth?: number;
  /** Commands fetched and not yet completed, at most, 1..65536 (default: SQ depth − 1). */
  outstandingMax?: number;
  /** Maximum Data Transfer Size in bytes, 4096 × a power of two (default 1 MiB). */
  mdtsBytes?: number;
  /** SQ Identifier reported in every completion, 1..65535 (default 1). */
  sqId?: number;
}

/** Running totals, for tests and metrics. */
export interface NvmeControllerCounters {
  /** Entries fetched from the SQ. */
  fetched: number;
  /** Entries posted to the CQ. */
  posted: number;
  /** Backend calls that threw, rejected or resolved with something not a status. */
  backendFailures: number;
}

/** The controller side of one NVMe I/O queue pair (NVMe Base 2.0, "Queue Usage"). */
export class NvmeController {
  /** The submission queue: ring memory the host writes, and the controller's pointers. */
  readonly sq: SubmissionQueue;
  /** The completion queue: ring memory the controller writes, and its pointers. */
  readonly cq: CompletionQueue;
  /** Namespace size and MDTS every command is checked against. */
  readonly limits: Readonly<CommandLimits>;
  /** Commands fetched and not yet posted, at most. */
  readonly outstandingMax: number;
  /** SQ Identifier reported in completions. */
  readonly sqId: number;
  /** Running totals. */
  readonly counters: NvmeControllerCounters = { fetched: 0, posted: 0, backendFailures: 0 };
  /** The last thing a backend call threw or rejected with, for diagnosis. */
  lastBackendError: unknown = undefined;

  readonly #backend: NvmeBackend;
  readonly #cidBusy = new Uint8Array(cidCount);
  readonly #zeroes: Uint8Array;
  readonly #sqe = new Sqe();
  readonly #cqe = new Cqe();
  #outstanding = 0;
  // Completions waiting for CQ space: a FIFO ring, one slot per possible outstanding command.
  readonly #doneCid: Uint16Array;
  readonly #doneStatus: Uint16Array;
  readonly #doneRelease: Uint8Array;
  #doneHead = 0;
  #doneCount = 0;
  #pumping = false;
  #pumpAgain = false;
  #interrupt: (() => void) | undefined = undefined;
  #interruptPending = false;

  /** Creates the controller and its empty queues; RangeError on an option out of range. */
  constructor(options: NvmeControllerOptions) {
    const sqDepth = options.sqDepth ?? queueDepthDefault;
    this.sq = new SubmissionQueue(sqDepth);
    this.cq = new CompletionQueue(options.cqDepth ?? sqDepth);
    this.limits = Object.freeze(checkLimits({
      capacityBlocks: options.capacityBlocks,
      mdtsBytes: options.mdtsBytes ?? mdtsBytesDefault,
    }));
    this.outstandingMax = options.outstandingMax ?? sqDepth - 1;
    if (
      !Number.isInteger(this.outstandingMax) || this.outstandingMax < 1 ||
      this.outstandingMax > cidCount
    ) {
      throw new RangeError(
        `Cannot allow ${this.outstandingMax} outstanding commands: pass 1..${cidCount}`,
      );
    }
    this.sqId = options.sqId ?? 1;
    if (!Number.isInteger(this.sqId) || this.sqId < 1 || this.sqId > 0xffff) {
      throw new RangeError(`Cannot use SQ identifier ${this.sqId}: pass 1..65535`);
    }
    this.#backend = options.backend;
    this.#zeroes = new Uint8Array(this.limits.mdtsBytes);
    this.#doneCid = new Uint16Array(this.outstandingMax);
    this.#doneStatus = new Uint16Array(this.outstandingMax);
    this.#doneRelease = new Uint8Array(this.outstandingMax);
  }

  /** Commands fetched and not yet posted to the CQ. */
  get outstanding(): number {
    return this.#outstanding;
  }

  /** Sets the function called (once per batch, from a microtask) after entries are posted. */
  onInterrupt(handler: (() => void) | undefined): void {
    this.#interrupt = handler;
  }

  /** Writes the SQ tail doorbell and fetches what it can; DoorbellError if refused. */
  writeSqTailDoorbell(value: number): void {
    this.sq.writeTailDoorbell(value);
    this.#pump();
  }

  /** Writes the CQ head doorbell and posts parked completions; DoorbellError if refused. */
  writeCqHeadDoorbell(value: number): void {
    this.cq.writeHeadDoorbell(value);
    this.#pump();
  }

  /** Posts parked completions and fetches entries until neither can progress. */
  #pump(): void {
    // A completion found while fetching re-enters here; the running loop picks it up.
    if (this.#pumping) {
      this.#pumpAgain = true;
      return;
    }
    this.#pumping = true;
    let posted = false;
    try {
      do {
        this.#pumpAgain = false;
        // Posts are bounded by free CQ slots, fetches by SQ entries: neither grows here.
        const stepsMax = this.sq.depth + this.cq.depth;
        for (let steps = 0;; steps++) {
          assert(steps <= stepsMax, `controller pump made ${steps} steps, more than possible`);
          if (this.#doneCount > 0 && !this.cq.full) {
            this.#postOne();
            posted = true;
          } else if (this.#outstanding < this.outstandingMax && this.sq.pending > 0) {
            this.#fetchOne();
          } else break;
        }
      } while (this.#pumpAgain);
    } finally {
      this.#pumping = false;
    }
    if (posted) this.#raiseInterrupt();
  }

  #fetchOne(): void {
    const slot = this.sq.fetch();
    assert(slot >= 0, "SQ has an entry to fetch");
    const data = this.sq.takeData(slot);
    const sqe = this.#sqe;
    const refusal = decodeSqe(this.sq.memory, this.sq.slotOffset(slot), sqe);
    assert(refusal === undefined, `SQ slot ${slot} decodes: ${refusal}`);
    this.counters.fetched++;
    this.#outstanding++;
    const cid = sqe.cid;
    if (this.#cidBusy[cid] === 1) {
      // The CID stays with the command that holds it; this one must not release it.
      this.#complete(cid, ControllerStatus.commandIdConflict, false);
      return;
    }
    this.#cidBusy[cid] = 1;
    const status = checkCommand(sqe, data, this.limits);
    if (status !== statusSuccess) {
      this.#complete(cid, status, true);
      return;
    }
    let pending: Promise<NvmeStatus>;
    try {
      pending = this.#startIo(sqe, data);
    } catch (error) {
      pending = Promise.reject(error);
    }
    Promise.resolve(pending).then(
      (result) => this.#settle(cid, result),
      (error) => this.#fail(cid, error),
    );
  }

  #startIo(sqe: Sqe, data: Uint8Array | undefined): Promise<NvmeStatus> {
    const cid = sqe.cid, slba = sqeSlba(sqe), nlb = sqeNlb(sqe), blocks = nlb + 1;
    switch (sqe.opcode) {
      case NvmOpcode.write:
        assert(data !== undefined, "a checked Write has data");
        return this.#backend.write({ cid, slba, nlb, blocks, fua: sqeFua(sqe), data });
      case NvmOpcode.writeZeroes: {
        // WZSL = MDTS, so the preallocated zero buffer always covers the range.
        const zeroes = this.#zeroes.subarray(0, blocks * lbaBytes);
        return this.#backend.write({ cid, slba, nlb, blocks, fua: sqeFua(sqe), data: zeroes });
      }
      case NvmOpcode.read:
        assert(data !== undefined, "a checked Read has data");
        return this.#backend.read({ cid, slba, nlb, blocks, into: data });
      case NvmOpcode.flush:
        return this.#backend.flush();
    }
    throw new Error(`unreachable: checked opcode ${sqe.opcode} has no handler`);
  }

  #settle(cid: number, result: unknown): void {
    if (isNvmeStatus(result)) this.#complete(cid, result, true);
    else this.#fail(cid, new TypeError(`Backend resolved with ${String(result)}, not a status`));
  }

  /** A failed or nonsensical backend answer must never read as success to the guest. */
  #fail(cid: number, error: unknown): void {
    this.counters.backendFailures++;
    this.lastBackendError = error;
    this.#complete(cid, ControllerStatus.internalError, true);
  }

  #complete(cid: number, status: NvmeStatus, releaseCid: boolean): void {
    assert(this.#doneCount < this.outstandingMax, "parked completions ≤ outstanding commands");
    const at = (this.#doneHead + this.#doneCount) % this.outstandingMax;
    this.#doneCid[at] = cid;
    this.#doneStatus[at] = status;
    this.#doneRelease[at] = releaseCid ? 1 : 0;
    this.#doneCount++;
    this.#pump();
  }

  #postOne(): void {
    const at = this.#doneHead;
    const cid = this.#doneCid[at];
    this.#doneHead = (at + 1) % this.outstandingMax;
    this.#doneCount--;
    const cqe = this.#cqe;
    cqe.clear();
    cqe.cid = cid;
    cqe.status = this.#doneStatus[at];
    cqe.sqHead = this.sq.head;
    cqe.sqId = this.sqId;
    this.cq.post(cqe);
    this.counters.posted++;
    if (this.#doneRelease[at] === 1) {
      assert(this.#cidBusy[cid] === 1, `completed CID ${cid} was busy`);
      this.#cidBusy[cid] = 0;
    }
    assert(this.#outstanding > 0, "a posted command was outstanding");
    this.#outstanding--;
  }

  #raiseInterrupt(): void {
    if (this.#interrupt === undefined || this.#interruptPending) return;
    this.#interruptPending = true;
    queueMicrotask(() => {
      this.#interruptPending = false;
      this.#interrupt?.();
    });
  }
}
