/**
 * A misbehaving but living replica: it stalls on one log, drops one ack, delays another,
 * and answers a non-OK status to a third. The refused write must fail; every other one
 * must be durable.
 */
import { defineScenario } from "../lab.ts";

export default defineScenario({
  name: "replica-faults",
  description: "Stall, dropped ack, delayed ack and a refused log in one run",
  plan: (prng) => {
    const count = prng.int(200, 300);
    const at = (from: number, to: number) => prng.int(from, to);
    return {
      topology: "pair",
      workload: { count, sizes: "4k,16k", depth: prng.pick([1, 4, 8]), flushEvery: 40 },
      faults: [
        { kind: "replica-stall", seq: at(10, 40), ms: prng.int(50, 400) },
        { kind: "delay-ack", seq: at(50, 80), ms: prng.int(50, 400) },
        { kind: "reject", seq: at(90, 120), status: prng.pick(["CRC_MISMATCH", "PERSIST_FAILED"]) },
        { kind: "drop-ack", seq: at(130, 180) },
      ],
    };
  },
});
