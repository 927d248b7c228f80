/**
 * The replica's side of the write cache: its data ring lives in a write-cache file, each
 * accepted log (or SKIP) is persisted (data, then record) before the ack, and a RELEASE
 * persists the header (docs/protocol.md, "Persistence points").
 *
 * @module
 */
import { emptyRecord, RecordFlags } from "../log/record.ts";
import type { AcceptedLog, ReplicaResume } from "../replication/replica_state.ts";
import { WriteCache } from "./write_cache.ts";
import { closeAfter } from "../dispose.ts";
import { blockBytes } from "../block.ts";

/** What Replica.listen needs to keep its ring in a write cache. */
export interface ReplicaCacheHooks extends Disposable {
  cache: WriteCache;
  /** What an existing cache held (a restart), for Replica.listen's `resume`. */
  resume?: ReplicaResume;
  persist: (log: AcceptedLog) => boolean;
  onRelease: (seq: number, releasedPos: number) => void;
}

/** Opens (or creates) the replica's write cache at `path`. */
export function openReplicaCache(
  options: { path: string; dataBytes: number; overwrite?: boolean },
): ReplicaCacheHooks {
  const metaSlots = options.dataBytes / blockBytes; // one slot per smallest possible log: never full
  const geometry = {
    path: options.path,
    role: "replica" as const,
    dataBytes: options.dataBytes,
    metaSlots,
  };
  const opened = openExisting(geometry);
  const cache = opened ?? WriteCache.create(geometry);
  let resume: ReplicaResume | undefined;
  try {
    resume = opened && resumeOf(opened);
  } catch (error) {
    throw closeAfter(cache, error); // a scan that failed must not leave the file locked
  }
  const record = emptyRecord();
  return {
    cache,
    resume,
    persist(log) {
      record.flags = log.skip ? RecordFlags.SKIP : 0;
      record.seq = log.seq;
      record.dataOffset = log.offset;
      record.dataLength = log.length;
      record.dataCrc = log.crc;
      record.lba = log.skip ? 0 : log.lba;
      record.lbaFlags = log.skip ? 0 : log.lbaFlags;
      record.timestampNs = 0;
      try {
        if (!log.skip) cache.persistData(log.offset, log.length);
        cache.writeRecord(log.seq, record);
        cache.persistRecord(log.seq);
        return true;
      } catch {
        return false; // answered PERSIST_FAILED; the replica changes nothing
      }
    },
    onRelease(seq, releasedPos) {
      cache.persistHeader({ destagedSeq: seq, releasedPos, nextSeq: seq + 1 });
    },
    [Symbol.dispose]() {
      cache.close();
    },
  };
}

/** The existing cache file, or undefined when there is none. */
function openExisting(geometry: Parameters<typeof WriteCache.open>[0]): WriteCache | undefined {
  try {
    return WriteCache.open(geometry);
  } catch (error) {
    if ((error as { reason?: string }).reason !== "NOT_FOUND") throw error;
    return undefined;
  }
}

/** A restart: the last valid log is the last one the scan trusts (record and data CRCs). */
function resumeOf(cache: WriteCache): ReplicaResume {
  const scan = cache.scan();
  return {
    releasedSeq: scan.destagedSeq,
    releasedPos: cache.header.releasedPos,
    logs: !scan.contiguous ? [] : scan.logs.map((r) => ({
      seq: r.seq,
      offset: r.dataOffset,
      length: r.dataLength,
      lba: r.lba,
      crc: r.dataCrc,
      skip: r.flags === RecordFlags.SKIP,
    })),
  };
}
