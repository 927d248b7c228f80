/**
 * No fault: the workload through the host cache service on the pair, then the checker.
 * The reference every faulty scenario is compared with.
 */
import { defineScenario } from "../lab.ts";

export default defineScenario({
  name: "baseline",
  description: "Mixed writes through the cache service, no fault",
  plan: (prng) => ({
    topology: "pair",
    workload: {
      count: prng.int(200, 400),
      sizes: prng.pick(["4k", "4k,16k", "4k,16k,64k"]),
      depth: prng.pick([1, 4, 16]),
      flushEvery: prng.pick([0, 50]),
    },
    faults: [],
  }),
});
