/**
 * The replica's side of the write cache: its data ring lives in a write-cache file, each
 * accepted log (or SKIP) is persisted (data, then record) before the ack, and a RELEASE
 * persists the header (docs/protocol.md, "Persistence points").
 *
 * @module
 */
import { emptyRecord, RecordFlags } from "../log/record.ts";
import type { AcceptedLog } from "../replication/replica_state.ts";
import { WriteCache } from "./write_cache.ts";

/** What Replica.listen needs to keep its ring in a write cache. */
export interface ReplicaCacheHooks extends Disposable {
  cache: WriteCache;
  persist: (log: AcceptedLog) => boolean;
  onRelease: (seq: number, releasedPos: number) => void;
}

/** Opens (or creates) the replica's write cache at `path`. */
export function openReplicaCache(
  options: { path: string; dataBytes: number; overwrite?: boolean },
): ReplicaCacheHooks {
  const metaSlots = options.dataBytes / 4096; // one slot per smallest possible log: never full
  let cache: WriteCache;
  try {
    cache = WriteCache.open({
      path: options.path,
      role: "replica",
      dataBytes: options.dataBytes,
      metaSlots,
    });
  } catch (error) {
    if ((error as { reason?: string }).reason !== "NOT_FOUND") throw error;
    cache = WriteCache.create({
      path: options.path,
      role: "replica",
      dataBytes: options.dataBytes,
      metaSlots,
    });
  }
  const record = emptyRecord();
  return {
    cache,
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
