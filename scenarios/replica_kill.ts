/**
 * The replica is SIGKILLed at one point of one log (data placed before the record is
 * checked, after its persist point before the ack, or after the ack), restarted from its
 * write cache on the same port; the primary reconnects and re-sends every later log.
 */
import { defineScenario, killPoints } from "../lab.ts";

export default defineScenario({
  name: "replica-kill",
  description: "Replica SIGKILL at a seeded log and point, restart from its write cache",
  plan: (prng) => {
    const count = prng.int(200, 400);
    return {
      topology: "pair",
      workload: { count, sizes: "4k,16k,64k", depth: prng.pick([1, 4, 16]), flushEvery: 50 },
      faults: [{
        kind: "replica-kill",
        seq: prng.int(20, Math.floor(count * 0.7)),
        point: prng.pick(killPoints),
      }],
    };
  },
});
