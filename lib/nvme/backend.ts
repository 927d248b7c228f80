/**
 * What the controller model hands valid I/O to: the storage behind the namespace. The
 * real backend is the host cache service, which settles a write only after the replica
 * acknowledged it, so every call is asynchronous and completions may come out of order.
 *
 * @module
 */

import type { NvmeStatus } from "./status.ts";

/** A validated Write (or Write Zeroes) for the backend (NVM Command Set 1.0, "Write command"). */
export interface NvmeWriteCommand {
  /** Command Identifier, for tracing; unique among outstanding commands. */
  readonly cid: number;
  /** Starting LBA; `slba + blocks` ≤ namespace capacity. */
  readonly slba: number;
  /** NLB as on the wire: 0's based (0 means one block). */
  readonly nlb: number;
  /** Blocks to write, `nlb + 1`. */
  readonly blocks: number;
  /** Force Unit Access: the data must be on non-volatile media before success. */
  readonly fua: boolean;
  /**
   * Exactly `blocks` × 4096 bytes, the host's buffer: read it, never write it, and copy
   * what must outlive the returned promise (for Write Zeroes it is a shared zero buffer).
   */
  readonly data: Uint8Array;
}

/** A validated Read for the backend (NVM Command Set 1.0, "Read command"). */
export interface NvmeReadCommand {
  /** Command Identifier, for tracing; unique among outstanding commands. */
  readonly cid: number;
  /** Starting LBA; `slba + blocks` ≤ namespace capacity. */
  readonly slba: number;
  /** NLB as on the wire: 0's based (0 means one block). */
  readonly nlb: number;
  /** Blocks to read, `nlb + 1`. */
  readonly blocks: number;
  /** Exactly `blocks` × 4096 bytes of host buffer to fill before the promise settles. */
  readonly into: Uint8Array;
}

/**
 * Storage behind the namespace. Each method resolves with the NVMe status to post
 * ({@linkcode statusSuccess} when done); a rejection, a synchronous throw or a value that
 * is not a Status Field is posted as Internal Error, never as success.
 */
export interface NvmeBackend {
  /** Writes `cmd.data` at `cmd.slba` (NVM Command Set 1.0, "Write command"). */
  write(cmd: NvmeWriteCommand): Promise<NvmeStatus>;
  /** Reads into `cmd.into` from `cmd.slba` (NVM Command Set 1.0, "Read command"). */
  read(cmd: NvmeReadCommand): Promise<NvmeStatus>;
  /** Makes every completed write durable (NVMe Base 2.0, "Flush command"). */
  flush(): Promise<NvmeStatus>;
}
