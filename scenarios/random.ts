/**
 * The campaign's scenario: a random workload with one main fault of any kind (replica
 * kills at every point and primary restarts included), often under netem loss up to 5%,
 * sometimes with a second replica fault. Every choice comes from the seed.
 */
import { defineScenario, type Fault, killPoints } from "../lab.ts";

const mains = [
  "replica-kill",
  "replica-kill",
  "replica-kill",
  "primary-kill",
  "primary-kill",
  "qp-error",
  "bad-rkey",
  "drop-ack",
  "delay-ack",
  "replica-stall",
  "reject",
  "rnr",
  "link-delete",
  "none",
] as const;

export default defineScenario({
  name: "random",
  description: "A random workload, a random main fault, often netem loss, sometimes more",
  plan: (prng) => {
    // Under loss each go-back-N retransmission waits for rxe's timer: fewer, smaller writes.
    const lossy = prng.chance(0.5);
    const count = lossy ? prng.int(60, 120) : prng.int(100, 250);
    const depth = prng.pick([1, 2, 4, 8, 16]);
    const seq = () => prng.int(10, Math.floor(count * 0.7));
    const faults: Fault[] = [];
    const main = prng.pick(mains);
    switch (main) {
      case "replica-kill":
        faults.push({ kind: main, seq: seq(), point: prng.pick(killPoints) });
        break;
      case "primary-kill":
      case "qp-error":
      case "bad-rkey":
      case "drop-ack":
        faults.push({ kind: main, seq: seq() });
        break;
      case "delay-ack":
      case "replica-stall":
        faults.push({ kind: main, seq: seq(), ms: prng.int(10, 500) });
        break;
      case "reject":
        faults.push({
          kind: main,
          seq: seq(),
          status: prng.pick(["CRC_MISMATCH", "PERSIST_FAILED"]),
        });
        break;
      case "rnr":
        faults.push({ kind: main, recvSlots: depth > 1 ? prng.int(1, depth - 1) : 1 });
        break;
      case "link-delete":
        faults.push({ kind: main, seq: seq(), downMs: prng.int(100, 1500) });
        break;
    }
    if (lossy) {
      const delayMs = prng.int(0, 1);
      faults.push({
        kind: "netem",
        loss: prng.int(1, 5),
        delayMs,
        reorder: delayMs ? prng.int(0, 5) : 0,
        duplicate: prng.int(0, 1),
        corrupt: prng.int(0, 1),
      });
    }
    if (main !== "delay-ack" && main !== "drop-ack" && prng.chance(0.25)) {
      faults.push({ kind: "delay-ack", seq: seq(), ms: prng.int(10, 200) });
    }
    return {
      topology: "pair",
      workload: {
        count,
        sizes: lossy ? "4k" : prng.pick(["4k", "4k,16k", "4k,16k,64k"]),
        depth,
        flushEvery: prng.pick([0, 25, 100]),
      },
      faults,
    };
  },
});
