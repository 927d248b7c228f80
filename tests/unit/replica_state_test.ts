/**
 * The replica's state machine over a real write-cache file: what it persists after a SKIP
 * must still be trusted by the scan a restarted replica runs (a regression found by the
 * scenario tests: every log after the first SKIP was persisted flagged as a SKIP).
 */
import assert from "node:assert/strict";
import { openReplicaCache } from "../../lib/cache/replica_cache.ts";
import { crc32c } from "../../lib/log/crc32c.ts";
import { emptyRecord, RecordFlags } from "../../lib/log/record.ts";
import { AckStatus } from "../../lib/log/ack.ts";
import { ReplicaState } from "../../lib/replication/replica_state.ts";
import type { MemoryRegion } from "../../lib/verbs/pd.ts";
import { blockBytes } from "../../lib/block.ts";

const ringBytes = 64 * 1024;

Deno.test("logs accepted after a SKIP are persisted as logs and survive a restart's scan", () => {
  const dir = Deno.makeTempDirSync({ dir: "/dev/shm" });
  const path = `${dir}/replica.cache`;
  try {
    {
      using hooks = openReplicaCache({ path, dataBytes: ringBytes });
      const state = new ReplicaState({
        memory: hooks.cache.data,
        // The state keeps the MR for the session's WELCOME and never reads it.
        mr: undefined as unknown as MemoryRegion,
        maxLogBytes: 16384,
        persist: hooks.persist,
        retain: true,
      });
      const bytes = hooks.cache.data.bytes;
      const send = (seq: number, flags: number) => {
        const offset = (seq - 1) * blockBytes;
        bytes.fill(seq, offset, offset + blockBytes);
        const dataCrc = flags === RecordFlags.SKIP
          ? 0
          : crc32c(bytes.subarray(offset, offset + blockBytes));
        return state.check({
          ...emptyRecord(),
          flags,
          seq,
          dataOffset: offset,
          dataLength: blockBytes,
          dataCrc,
          lba: seq,
        });
      };
      assert.equal(send(1, 0), AckStatus.OK);
      assert.equal(send(2, RecordFlags.SKIP), AckStatus.OK);
      assert.equal(send(3, 0), AckStatus.OK);
      assert.equal(send(4, 0), AckStatus.OK);
    }
    using again = openReplicaCache({ path, dataBytes: ringBytes });
    const logs = again.resume!.logs;
    assert.deepEqual(logs.map((l) => [l.seq, l.skip]), [[1, false], [2, true], [3, false], [
      4,
      false,
    ]]);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});
