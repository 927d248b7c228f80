/**
 * The host cache service: the virtual NVMe controller's backend. Each Write becomes a log
 * in the write cache (its data placed straight into the cache's data ring, which is also
 * the registered memory the RDMA WRITE reads from), is replicated, and completes only
 * after the replica's OK ack; a refused or failed replication completes with an error
 * status. Reads see the newest acknowledged data: the write cache first, the backing
 * store second. Flush waits for every earlier write (and, with `flushDestage`, for their
 * de-staging).
 *
 * When de-staging fails (the backing store refused a write or a sync), acked writes stay
 * in both write caches (a restart with `recover` on a healthy backing store de-stages
 * them), every later write completes with Write Fault, and {@linkcode
 * HostCacheService.firstFailure} names the cause.
 *
 * @module
 */
import {
  GenericStatusCode,
  MediaStatusCode,
  type NvmeStatus,
  nvmeStatus,
  StatusCodeType,
  statusSuccess,
} from "../nvme/status.ts";
import type { NvmeBackend, NvmeReadCommand, NvmeWriteCommand } from "../nvme/backend.ts";
import { BackpressureError, ReplicationError } from "../replication/errors.ts";
import { Primary, type PrimaryOptions } from "../replication/primary.ts";
import type { PlacedLog } from "../replication/primary_engine.ts";
import { emptyRecord, RecordFlags } from "../log/record.ts";
import { BackingStore } from "./backing_store.ts";
import { BlockIndex } from "./block_index.ts";
import { Destager, type DestagerStats } from "./destager.ts";
import { registrationAdvice } from "./fs_kind.ts";
import { WriteCache } from "./write_cache.ts";
import { openInOrderAsync } from "../dispose.ts";
import { blockBytes } from "../block.ts";

/** Options of {@linkcode HostCacheService.open}. */
export interface HostCacheOptions
  extends Omit<PrimaryOptions, "memory" | "retain" | "hooks" | "ringBytes" | "recover"> {
  /** The primary's write-cache file (default /dev/shm/rrl-primary.cache); recreated. */
  cachePath?: string;
  /** The backing store: a file (created and sized) or a block device. */
  backingPath: string;
  /** Namespace size in 4096-byte blocks. */
  capacityBlocks: number;
  /** The write cache's data ring = the replication ring (must equal the replica's). */
  ringBytes: number;
  /** Answered logs kept in the write cache before de-staging starts (default half the ring). */
  keepBytes?: number;
  /** Flush also waits until earlier writes are de-staged. */
  flushDestage?: boolean;
  /** Called in seq order for each acknowledged write, with the host's data (tests keep an image). */
  onCommit?: (lba: number, data: Uint8Array, seq: number) => void;
  /** Reopen an existing write cache (a restart): re-replicate and de-stage what it holds. */
  recover?: boolean;
}

/** What {@linkcode HostCacheService.stats} reports. */
export interface HostCacheStats {
  writes: number;
  writesFailed: number;
  reads: number;
  readBlocksFromCache: number;
  readBlocksFromBacking: number;
  flushes: number;
  destage: DestagerStats;
}

const outstandingMax = 4096;
/** A write the cache cannot take because de-staging failed: Write Fault, do not retry. */
const writeFault = nvmeStatus(StatusCodeType.mediaAndDataIntegrity, MediaStatusCode.writeFault, {
  dnr: true,
});

/** The NVMe backend that replicates every write before completing it. */
export class HostCacheService implements NvmeBackend, AsyncDisposable {
  readonly #primary: Primary;
  readonly #cache: WriteCache;
  readonly #backing: BackingStore;
  readonly #index: BlockIndex;
  readonly #destager: Destager;
  readonly #options: HostCacheOptions;
  readonly #inProgress = new Set<Promise<NvmeStatus>>();
  #firstFailure: Error | undefined;
  #closed = false;
  readonly #stats = {
    writes: 0,
    writesFailed: 0,
    reads: 0,
    readBlocksFromCache: 0,
    readBlocksFromBacking: 0,
    flushes: 0,
  };

  private constructor(
    o: {
      primary: Primary;
      cache: WriteCache;
      backing: BackingStore;
      index: BlockIndex;
      options: HostCacheOptions;
    },
  ) {
    this.#primary = o.primary;
    this.#cache = o.cache;
    this.#backing = o.backing;
    this.#index = o.index;
    this.#options = o.options;
    this.#destager = new Destager({
      cache: o.cache,
      backing: o.backing,
      index: o.index,
      primary: o.primary,
      queueMax: o.cache.header.metaSlots,
      keepBytes: o.options.keepBytes ?? o.options.ringBytes / 2,
      onFailure: (error) => {
        this.#firstFailure ??= error;
        // Nothing will be released: writes waiting for ring space fail now, with the cause.
        o.primary.failWaiting(error);
      },
    });
  }

  /**
   * Creates the write cache (or, with `recover`, reopens it and recovers its logs), opens
   * the backing store and connects to the replica.
   */
  static async open(options: HostCacheOptions): Promise<HostCacheService> {
    const cachePath = options.cachePath ?? "/dev/shm/rrl-primary.cache";
    const metaSlots = options.ringBytes / blockBytes; // one slot per smallest log: never full
    // The cache file, the backing store and the primary, each closed again (newest first)
    // if a later step fails; the caller sees the error that stopped the start.
    return await openInOrderAsync(async (stack) => {
      const cache = stack.use(
        options.recover
          ? WriteCache.open({
            path: cachePath,
            role: "primary",
            dataBytes: options.ringBytes,
            metaSlots,
          })
          : WriteCache.create({
            path: cachePath,
            role: "primary",
            dataBytes: options.ringBytes,
            metaSlots,
            overwrite: true,
          }),
      );
      const backing = stack.use(BackingStore.open({
        path: options.backingPath,
        capacityBlocks: options.capacityBlocks,
        create: true,
      }));
      const index = new BlockIndex(options.capacityBlocks);
      const recover = options.recover ? recoverLogs(cache) : undefined;
      const holder: { service?: HostCacheService } = {};
      const answered: PlacedLog[] = []; // before the service exists (recovered logs)
      const onAnswered = (log: PlacedLog, skip: boolean) => {
        if (holder.service) holder.service.#answered(log, skip);
        else answered.push({ ...log, lba: skip ? -1 : log.lba });
      };
      const primary = stack.use(await connectPrimary(options, cache, { recover, onAnswered }));
      const service = new HostCacheService({ primary, cache, backing, index, options });
      holder.service = service;
      for (const log of answered) service.#answered(log, log.lba < 0);
      return service;
    });
  }

  /** A log is answered (seq order): its blocks are the newest cached copy; queue its de-staging. */
  #answered(log: PlacedLog, skip: boolean): void {
    const blocks = log.length / blockBytes;
    if (!skip) this.#index.update(log.lba, blocks, log.seq, log.offset);
    this.#destager.add({
      seq: log.seq,
      lba: skip ? 0 : log.lba,
      blocks: skip ? 0 : blocks,
      offset: log.offset,
      hole: skip,
    });
  }

  /** NVMe Write: replicated before it completes. */
  write(cmd: NvmeWriteCommand): Promise<NvmeStatus> {
    if (this.#inProgress.size >= outstandingMax) {
      return Promise.resolve(nvmeStatus(0, GenericStatusCode.internalError));
    }
    const promise = this.#write(cmd);
    this.#inProgress.add(promise);
    promise.finally(() => this.#inProgress.delete(promise));
    return promise;
  }

  async #write(cmd: NvmeWriteCommand): Promise<NvmeStatus> {
    this.#stats.writes++;
    const { data } = cmd;
    try {
      // De-staging stopped: the ring would fill and never drain; refuse at once.
      if (this.#destager.failure) throw this.#destager.failure;
      const log = await this.#primary.replicate((ring, offset) => ring.set(data, offset), {
        lba: cmd.slba,
        length: cmd.blocks * blockBytes,
        fua: cmd.fua,
      });
      // The index and the de-stager already have the log (onAnswered, in seq order).
      this.#options.onCommit?.(cmd.slba, data, log.seq);
      if (cmd.fua) await this.#destager.until(log.seq);
      return statusSuccess;
    } catch (error) {
      this.#stats.writesFailed++;
      this.#firstFailure ??= error as Error;
      if (Deno.env.get("RRL_DEBUG")) console.error(`cache: write ${cmd.cid} failed:`, error);
      if (error === this.#destager.failure) return writeFault;
      if (error instanceof ReplicationError) {
        return nvmeStatus(0, GenericStatusCode.dataTransferError, { dnr: true });
      }
      if (error instanceof BackpressureError) return nvmeStatus(0, GenericStatusCode.internalError);
      return nvmeStatus(0, GenericStatusCode.internalError, { dnr: true });
    }
  }

  /** NVMe Read: each block from the write cache if it holds the newest copy, else the backing store. */
  read(cmd: NvmeReadCommand): Promise<NvmeStatus> {
    this.#stats.reads++;
    try {
      const ring = this.#cache.data.bytes;
      let missStart = -1;
      const flushMisses = (end: number) => {
        if (missStart < 0) return;
        this.#backing.read(
          cmd.slba + missStart,
          cmd.into.subarray(missStart * blockBytes, end * blockBytes),
        );
        this.#stats.readBlocksFromBacking += end - missStart;
        missStart = -1;
      };
      for (let k = 0; k < cmd.blocks; k++) {
        const offset = this.#index.offsetOf(cmd.slba + k);
        if (offset < 0) {
          if (missStart < 0) missStart = k;
          continue;
        }
        flushMisses(k);
        cmd.into.set(ring.subarray(offset, offset + blockBytes), k * blockBytes);
        this.#stats.readBlocksFromCache++;
      }
      flushMisses(cmd.blocks);
      return Promise.resolve(statusSuccess);
    } catch {
      return Promise.resolve(nvmeStatus(0, GenericStatusCode.dataTransferError));
    }
  }

  /** NVMe Flush: every earlier write replicated (and de-staged with `flushDestage`). */
  async flush(): Promise<NvmeStatus> {
    this.#stats.flushes++;
    await Promise.allSettled([...this.#inProgress]);
    if (this.#options.flushDestage) await this.drain();
    return statusSuccess;
  }

  /** Waits until every answered write is de-staged to the backing store. */
  async drain(): Promise<void> {
    await Promise.allSettled([...this.#inProgress]);
    await this.#destager.until(this.#primary.answeredSeq);
  }

  /**
   * The first cause of failure, of a write or of de-staging (e.g. a BackingStoreError
   * naming the file, the LBA and the errno); undefined while all is well.
   */
  get firstFailure(): Error | undefined {
    return this.#firstFailure;
  }

  /** Counters of the service and its de-stager. */
  stats(): HostCacheStats {
    return { ...this.#stats, destage: { ...this.#destager.stats } };
  }

  /** The replication side (its stats, digest). */
  get primary(): Primary {
    return this.#primary;
  }

  /**
   * Closes the session, the cache and the backing store; drains the de-stager first unless
   * `drain: false` (logs then stay in both write caches, as after a crash). Rejects, after
   * closing everything, when the drain fails (de-staging failed: the logs stay in both
   * write caches).
   */
  async close(options: { drain?: boolean } = {}): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    try {
      if (options.drain !== false) await this.drain();
      else await Promise.allSettled([...this.#inProgress]);
    } finally {
      await this.#destager.stop();
      await this.#primary.close();
      this.#backing.close();
      this.#cache.close();
    }
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}

const persistRecord = emptyRecord();

/** Persistence points 2 and 3 on the primary: data, then record, before the log is posted. */
/** Connects the primary over the cache's data ring; a registration failure says why. */
async function connectPrimary(
  options: HostCacheOptions,
  cache: WriteCache,
  o: { recover: PrimaryOptions["recover"]; onAnswered: (log: PlacedLog, skip: boolean) => void },
): Promise<Primary> {
  try {
    return await Primary.connect({
      ...options,
      ringBytes: options.ringBytes,
      memory: cache.data,
      retain: true,
      recover: o.recover,
      hooks: {
        beforePost: (log) => persistLog(cache, log, false),
        onSkip: (log) => persistLog(cache, log, true),
        onAnswered: o.onAnswered,
      },
    });
  } catch (error) {
    if (
      (error as Error).name === "UnsupportedError" ||
      /EFAULT|EOPNOTSUPP/.test((error as Error).message)
    ) {
      throw new Error(`${(error as Error).message}; ${registrationAdvice(cache.fileSystem)}`, {
        cause: error,
      });
    }
    throw error;
  }
}

function persistLog(cache: WriteCache, log: PlacedLog, skip: boolean): void {
  const r = persistRecord; // fields set one by one: no object per log
  r.flags = skip ? RecordFlags.SKIP : 0;
  r.seq = log.seq;
  r.dataOffset = log.offset;
  r.dataLength = log.length;
  r.dataCrc = skip ? 0 : log.crc;
  r.lba = skip ? 0 : log.lba;
  r.lbaFlags = skip ? 0 : log.lbaFlags;
  r.timestampNs = 0;
  if (!skip) cache.persistData(log.offset, log.length);
  cache.writeRecord(log.seq, r);
  cache.persistRecord(log.seq);
}

/** The logs a reopened write cache holds after its de-staged ones, for Primary.connect. */
function recoverLogs(
  cache: WriteCache,
): { releasedPos: number; logs: (PlacedLog & { skip: boolean })[] } {
  const scan = cache.scan();
  if (!scan.contiguous) {
    throw new Error(
      `The write cache ${cache.path} has a gap after seq ${scan.destagedSeq} (logs ${
        scan.stranded.join(", ")
      } are stranded): ` +
        "it cannot be recovered in order",
    );
  }
  return {
    releasedPos: cache.header.releasedPos,
    logs: scan.logs.map((r) => ({
      seq: r.seq,
      offset: r.dataOffset,
      length: r.dataLength,
      lba: r.lba,
      lbaFlags: r.lbaFlags,
      crc: r.dataCrc,
      skip: r.flags === RecordFlags.SKIP,
    })),
  };
}
