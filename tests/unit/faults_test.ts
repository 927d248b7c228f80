/**
 * Fault plans: every field is validated, and a bad plan names what was wrong.
 *
 * @module
 */
import assert from "node:assert/strict";
import { parseFaultPlan } from "../../lib/replication/faults.ts";

Deno.test("a full fault plan parses field by field", () => {
  const plan = parseFaultPlan(JSON.stringify({
    replica: {
      kill: { seq: 40, point: "after-persist" },
      stall: { seq: 3, ms: 250 },
      dropAck: 7,
      delayAck: { seq: 9, ms: 100 },
      status: { seq: 11, status: "CRC_MISMATCH" },
      recvSlots: 2,
      signalAt: { seq: 5, file: "/tmp/x" },
    },
    primary: { kill: { seq: 12 }, breakQp: 13, badRkey: 14 },
  }));
  assert.deepEqual(plan.replica?.kill, { seq: 40, point: "after-persist" });
  assert.deepEqual(plan.replica?.stall, { seq: 3, ms: 250 });
  assert.equal(plan.replica?.dropAck, 7);
  assert.deepEqual(plan.replica?.delayAck, { seq: 9, ms: 100 });
  assert.deepEqual(plan.replica?.status, { seq: 11, status: "CRC_MISMATCH" });
  assert.equal(plan.replica?.recvSlots, 2);
  assert.deepEqual(plan.replica?.signalAt, { seq: 5, file: "/tmp/x" });
  assert.deepEqual(plan.primary, { kill: { seq: 12 }, breakQp: 13, badRkey: 14 });
  assert.deepEqual(parseFaultPlan("{}"), {});
});

Deno.test("a bad fault plan is refused with the field that was wrong", () => {
  const bad: [string, RegExp][] = [
    ["not json", /not JSON/],
    ["[]", /the fault plan must be an object/],
    [`{"replicas": {}}`, /unknown field\(s\) replicas; known: replica, primary/],
    [`{"replica": {"kill": {"seq": 0, "point": "after-ack"}}}`, /replica\.kill\.seq must be a seq/],
    [`{"replica": {"kill": {"seq": 1, "point": "later"}}}`, /replica\.kill\.point must be/],
    [`{"replica": {"stall": {"seq": 1, "ms": -1}}}`, /replica\.stall\.ms must be 0\.\.600000/],
    [`{"replica": {"dropAck": 1.5}}`, /replica\.dropAck must be a seq/],
    [`{"replica": {"status": {"seq": 1, "status": "OK"}}}`, /non-OK status/],
    [`{"replica": {"status": {"seq": 1, "status": "NOPE"}}}`, /non-OK status/],
    [`{"replica": {"recvSlots": 0}}`, /replica\.recvSlots must be 1\.\.1024/],
    [`{"replica": {"signalAt": {"seq": 1, "file": ""}}}`, /signalAt\.file must be a path/],
    [`{"primary": {"kill": {"seq": 1, "when": 2}}}`, /primary\.kill has unknown field\(s\) when/],
    [`{"primary": {"breakQp": "3"}}`, /primary\.breakQp must be a seq/],
  ];
  for (const [text, message] of bad) {
    assert.throws(() => parseFaultPlan(text), message, text);
  }
});
