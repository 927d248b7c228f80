/**
 * A backend that keeps the namespace in one in-memory buffer: the reference for what the
 * cache service must do (copy on write, fill on read), and the backend of host-side tests.
 *
 * @module
 */

import type { NvmeBackend, NvmeReadCommand, NvmeWriteCommand } from "./backend.ts";
import { ControllerStatus, lbaBytes } from "./command.ts";
import { type NvmeStatus, statusSuccess } from "./status.ts";

/** Largest namespace this backend holds, in bytes (it allocates all of it up front). */
export const memoryBackendBytesMax = 1024 * 1024 * 1024;

/** Running totals of a {@linkcode MemoryBackend}. */
export interface MemoryBackendCounters {
  /** Writes (and Write Zeroes) applied. */
  writes: number;
  /** Reads served. */
  reads: number;
  /** Flushes served. */
  flushes: number;
}

/**
 * An {@linkcode NvmeBackend} over a zero-filled buffer of `capacityBlocks` × 4096 bytes.
 * It rechecks every range, since a backend must not trust its caller with its memory.
 */
export class MemoryBackend implements NvmeBackend {
  /** Namespace size in blocks. */
  readonly capacityBlocks: number;
  /** Running totals. */
  readonly counters: MemoryBackendCounters = { writes: 0, reads: 0, flushes: 0 };
  readonly #bytes: Uint8Array;

  /** Allocates the namespace; RangeError past {@linkcode memoryBackendBytesMax}. */
  constructor(capacityBlocks: number) {
    const bytes = capacityBlocks * lbaBytes;
    if (!Number.isInteger(capacityBlocks) || capacityBlocks < 1 || bytes > memoryBackendBytesMax) {
      throw new RangeError(
        `Cannot hold ${capacityBlocks} blocks in memory: pass 1..${
          memoryBackendBytesMax / lbaBytes
        }`,
      );
    }
    this.capacityBlocks = capacityBlocks;
    this.#bytes = new Uint8Array(new ArrayBuffer(bytes));
  }

  /** Copies `cmd.data` into the namespace (NVM Command Set 1.0, "Write command"). */
  write(cmd: NvmeWriteCommand): Promise<NvmeStatus> {
    const bad = this.#rangeStatus(cmd.slba, cmd.blocks, cmd.data);
    if (bad !== statusSuccess) return Promise.resolve(bad);
    this.#bytes.set(cmd.data, cmd.slba * lbaBytes);
    this.counters.writes++;
    return Promise.resolve(statusSuccess);
  }

  /** Copies the range into `cmd.into` (NVM Command Set 1.0, "Read command"). */
  read(cmd: NvmeReadCommand): Promise<NvmeStatus> {
    const bad = this.#rangeStatus(cmd.slba, cmd.blocks, cmd.into);
    if (bad !== statusSuccess) return Promise.resolve(bad);
    const start = cmd.slba * lbaBytes;
    cmd.into.set(this.#bytes.subarray(start, start + cmd.blocks * lbaBytes));
    this.counters.reads++;
    return Promise.resolve(statusSuccess);
  }

  /** Succeeds: memory has no volatile cache to flush (NVMe Base 2.0, "Flush command"). */
  flush(): Promise<NvmeStatus> {
    this.counters.flushes++;
    return Promise.resolve(statusSuccess);
  }

  /** Returns a copy of `blocks` blocks from `slba`, for checks. */
  snapshot(slba: number, blocks: number): Uint8Array {
    return this.#bytes.slice(slba * lbaBytes, (slba + blocks) * lbaBytes);
  }

  #rangeStatus(slba: number, blocks: number, buffer: Uint8Array): NvmeStatus {
    if (
      !Number.isSafeInteger(slba) || !Number.isInteger(blocks) || slba < 0 || blocks < 1 ||
      slba > this.capacityBlocks - blocks
    ) {
      return ControllerStatus.lbaOutOfRange;
    }
    if (buffer.byteLength !== blocks * lbaBytes) return ControllerStatus.dataTransferError;
    return statusSuccess;
  }
}
