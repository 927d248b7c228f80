/**
 * A lossy, slow, reordering, duplicating and corrupting network under the pair's RoCEv2
 * traffic (`tc netem` on the primary's veth, removed afterwards): rxe's retransmission
 * and PSN checks must hide all of it.
 */
import { defineScenario } from "../lab.ts";

export default defineScenario({
  name: "netem",
  description: "Packet loss up to 5%, delay with jitter, reordering, duplication, corruption",
  plan: (prng) => {
    const delayMs = prng.int(1, 3);
    return {
      topology: "pair",
      workload: {
        count: prng.int(150, 300),
        sizes: "4k,16k",
        depth: prng.pick([4, 8]),
        flushEvery: 50,
      },
      faults: [{
        kind: "netem",
        loss: prng.int(1, 5),
        delayMs,
        jitterMs: prng.int(0, delayMs),
        reorder: prng.int(0, 10),
        duplicate: prng.int(0, 2),
        corrupt: prng.int(0, 1),
      }],
    };
  },
});
