/**
 * Transport faults: the QP moved to ERR mid-stream (outstanding work requests flush with
 * IBV_WC_WR_FLUSH_ERR), an RDMA WRITE with a wrong rkey (remote access error), and a
 * replica posting too few RECVs (RNR NAKs). Each breaks a session; the primary reconnects
 * with a new QP and resumes, nothing lost or duplicated.
 */
import { defineScenario } from "../lab.ts";

export default defineScenario({
  name: "transport",
  description: "QP to ERR, wrong rkey and receiver-not-ready in one run",
  plan: (prng) => {
    const count = prng.int(250, 400);
    const depth = prng.pick([4, 8]);
    return {
      topology: "pair",
      workload: { count, sizes: "4k,16k", depth, flushEvery: 50 },
      faults: [
        { kind: "rnr", recvSlots: prng.int(1, depth - 1) },
        { kind: "qp-error", seq: prng.int(60, 120) },
        { kind: "bad-rkey", seq: prng.int(150, 220) },
      ],
    };
  },
});
