/**
 * The primary's rxe link is deleted while traffic runs (`rdma link delete`), then added
 * again: the primary sees its device vanish (EIO), reopens it, registers its ring again
 * and reconnects; nothing acked is lost.
 */
import { defineScenario } from "../lab.ts";

export default defineScenario({
  name: "link-delete",
  description: "rdma link delete of the primary's device under traffic, then re-added",
  plan: (prng) => {
    const count = prng.int(200, 400);
    return {
      topology: "pair",
      workload: { count, sizes: "4k,16k", depth: prng.pick([1, 4, 16]), flushEvery: 50 },
      faults: [{
        kind: "link-delete",
        seq: prng.int(30, Math.floor(count * 0.6)),
        downMs: prng.int(100, 1500),
      }],
    };
  },
});
