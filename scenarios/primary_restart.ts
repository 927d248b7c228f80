/**
 * The primary (the host cache service) is SIGKILLed right after posting a log, before its
 * ack, then restarted: it recovers its write cache, re-replicates every log not known to
 * be acked, and continues the workload; no I/O completes twice or out of order.
 */
import { defineScenario } from "../lab.ts";

export default defineScenario({
  name: "primary-restart",
  description: "Primary SIGKILL between post and ack, restart with write-cache recovery",
  plan: (prng) => {
    const count = prng.int(200, 400);
    return {
      topology: "pair",
      workload: { count, sizes: "4k,16k,64k", depth: prng.pick([1, 4, 16]), flushEvery: 50 },
      faults: [{ kind: "primary-kill", seq: prng.int(20, Math.floor(count * 0.7)) }],
    };
  },
});
