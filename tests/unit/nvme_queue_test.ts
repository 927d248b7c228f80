// Ring and doorbell arithmetic with phase wrap, against a reference model that counts
// entries with unbounded integers instead of ring positions (NVMe Base 2.0, "Queue Usage",
// "Full Queue", "Phase Tag"; NVMe over PCIe 1.0, "Invalid Doorbell Write Value").
import assert from "node:assert/strict";
import { Cqe, cqeBytes, decodeCqe } from "../../lib/nvme/cqe.ts";
import { CqConsumer, QueueFullError, SqProducer } from "../../lib/nvme/cursor.ts";
import {
  CompletionQueue,
  DoorbellError,
  ringDistance,
  SubmissionQueue,
} from "../../lib/nvme/queue.ts";
import type { Prng } from "../../lib/prng.ts";
import { forAllSeeds } from "../../lib/testing/property.ts";

function refusal(fn: () => void): string | undefined {
  try {
    fn();
    return undefined;
  } catch (error) {
    if (error instanceof DoorbellError) return error.reason;
    throw error;
  }
}

Deno.test("queue depth is bounded to 2..65536", () => {
  for (const depth of [0, 1, 65537, 2.5, NaN]) {
    assert.throws(() => new SubmissionQueue(depth), RangeError, String(depth));
    assert.throws(() => new CompletionQueue(depth), RangeError, String(depth));
  }
  assert.equal(new SubmissionQueue(2).depth, 2);
  assert.equal(new CompletionQueue(65536).memory.byteLength, 65536 * cqeBytes);
});

Deno.test("SQ tail doorbell refuses values a controller would flag", async (t) => {
  await t.step("not a slot", () => {
    const sq = new SubmissionQueue(8);
    assert.equal(refusal(() => sq.writeTailDoorbell(8)), "beyond-depth");
    assert.equal(refusal(() => sq.writeTailDoorbell(-1)), "beyond-depth");
    assert.equal(refusal(() => sq.writeTailDoorbell(65535)), "beyond-depth");
    assert.equal(refusal(() => sq.writeTailDoorbell(1.5)), "not-an-integer");
    assert.equal(refusal(() => sq.writeTailDoorbell(NaN)), "not-an-integer");
    assert.equal(sq.tail, 0);
  });
  await t.step("adding an entry to a full queue", () => {
    const sq = new SubmissionQueue(4);
    sq.writeTailDoorbell(3); // three entries: full (head 0 = tail 3 + 1 mod 4)
    assert.equal(sq.pending, 3);
    assert.equal(refusal(() => sq.writeTailDoorbell(0)), "overruns-head");
    assert.equal(sq.tail, 3);
    assert.equal(sq.fetch(), 0);
    sq.writeTailDoorbell(0); // one slot freed: one more entry fits
    assert.equal(sq.pending, 3);
    assert.equal(refusal(() => sq.writeTailDoorbell(1)), "overruns-head");
    sq.writeTailDoorbell(0); // rewriting the same tail adds nothing
    assert.equal(sq.fetch(), 1);
  });
  await t.step("the error says what to do", () => {
    const sq = new SubmissionQueue(8);
    assert.throws(() => sq.writeTailDoorbell(9), /Cannot write sq-tail doorbell 9.*write 0\.\.7/);
  });
});

Deno.test("CQ head doorbell refuses a head past the tail", () => {
  const cq = new CompletionQueue(4);
  const cqe = new Cqe();
  assert.equal(refusal(() => cq.writeHeadDoorbell(1)), "passes-tail");
  cq.post(cqe);
  cq.post(cqe);
  assert.equal(refusal(() => cq.writeHeadDoorbell(3)), "passes-tail");
  assert.equal(refusal(() => cq.writeHeadDoorbell(4)), "beyond-depth");
  cq.writeHeadDoorbell(1);
  cq.writeHeadDoorbell(2);
  assert.equal(refusal(() => cq.writeHeadDoorbell(1)), "passes-tail"); // moving backwards
  assert.equal(cq.head, 2);
});

Deno.test("CQ phase starts at 1 and inverts on every wrap, for many wraps", () => {
  const depth = 3;
  const cq = new CompletionQueue(depth);
  const host = new CqConsumer(depth);
  const cqe = new Cqe();
  const seen = new Cqe();
  assert.equal(host.ready(cq.memory), false); // zeroed memory carries phase 0
  for (let n = 0; n < 1000; n++) {
    cqe.cid = n % 65536;
    cq.post(cqe);
    const pass = Math.floor(n / depth);
    assert.equal(cqe.phase, pass % 2 === 0 ? 1 : 0, `entry ${n} on pass ${pass}`);
    assert.equal(host.ready(cq.memory), true);
    decodeCqe(cq.memory, host.headOffset, seen);
    assert.equal(seen.cid, n);
    host.advance();
    assert.equal(host.ready(cq.memory), false, `no stale entry after ${n}`);
    cq.writeHeadDoorbell(host.head);
  }
});

Deno.test("host SQ cursor refuses a submission to a full queue", () => {
  const producer = new SqProducer(4);
  assert.equal(producer.claim(), 0);
  assert.equal(producer.claim(), 1);
  assert.equal(producer.observeHead(3), false, "SQHD beyond the tail is ignored");
  assert.equal(producer.head, 0);
  assert.equal(producer.claim(), 2);
  assert.equal(producer.full, true);
  assert.throws(() => producer.claim(), QueueFullError, "submission queue is full");
  assert.equal(producer.observeHead(2), true);
  assert.equal(producer.observeHead(1), false, "SQHD moving backwards is ignored");
  assert.equal(producer.claim(), 3);
  assert.equal(producer.claim(), 0);
  assert.equal(producer.full, true);
});

/** Reference model: entry counts since creation; positions are counts mod depth. */
interface Model {
  submitted: number;
  fetched: number;
  posted: number;
  consumed: number;
}

function randomStep(prng: Prng, depth: number, m: Model, rings: Rings): void {
  const { sq, cq, producer, consumer, scratch } = rings;
  const choice = prng.int(0, 5);
  // The host's own view of free SQ slots, from SQHD: never more than the controller's.
  const hostFree = depth - 1 - ringDistance(producer.head, producer.tail, depth);
  assert.ok(hostFree <= depth - 1 - (m.submitted - m.fetched), "host view is conservative");
  if (choice === 0) {
    // Host submits k entries when its view says they fit, and rings the tail doorbell.
    const k = prng.int(1, depth);
    if (k <= hostFree) {
      for (let i = 0; i < k; i++) producer.claim();
      m.submitted += k;
      sq.writeTailDoorbell(producer.tail);
    } else if (hostFree === 0) {
      assert.equal(producer.full, true);
      assert.throws(() => producer.claim(), QueueFullError);
    }
  } else if (choice === 1) {
    // A random doorbell value: refused exactly when the model says it overruns or is no slot.
    const value = prng.int(-1, depth);
    const added = (((value - (m.submitted % depth)) % depth) + depth) % depth;
    const valid = value >= 0 && value < depth && m.submitted + added - m.fetched <= depth - 1;
    if (!valid) {
      const tail = sq.tail;
      assert.notEqual(refusal(() => sq.writeTailDoorbell(value)), undefined, `SQ tail ${value}`);
      assert.equal(sq.tail, tail);
    } else if (added <= hostFree) {
      for (let i = 0; i < added; i++) producer.claim();
      assert.equal(refusal(() => sq.writeTailDoorbell(value)), undefined, `SQ tail ${value}`);
      m.submitted += added;
    }
  } else if (choice === 2) {
    const slot = sq.fetch();
    assert.equal(slot, m.fetched < m.submitted ? m.fetched % depth : -1);
    if (slot >= 0) m.fetched++;
  } else if (choice === 3) {
    if (m.posted - m.consumed < depth - 1) {
      assert.equal(cq.full, false);
      scratch.cid = m.posted % 65536;
      scratch.sqHead = sq.head;
      cq.post(scratch);
      assert.equal(scratch.phase, Math.floor(m.posted / depth) % 2 === 0 ? 1 : 0);
      m.posted++;
    } else assert.equal(cq.full, true);
  } else if (choice === 4) {
    // Host reaps by phase: exactly the posted, unconsumed entries, in order.
    let n = 0;
    while (consumer.ready(cq.memory)) {
      decodeCqe(cq.memory, consumer.headOffset, scratch);
      assert.equal(scratch.cid, (m.consumed + n) % 65536);
      producer.observeHead(scratch.sqHead);
      consumer.advance();
      n++;
      assert.ok(n < depth, "reap ends within one pass");
    }
    assert.equal(n, m.posted - m.consumed);
    m.consumed += n;
    if (n > 0) cq.writeHeadDoorbell(consumer.head);
  } else {
    const value = prng.int(0, depth - 1);
    const ahead = (((value - (m.consumed % depth)) % depth) + depth) % depth;
    const valid = m.consumed + ahead <= m.posted;
    assert.equal(refusal(() => cq.writeHeadDoorbell(value)) === undefined, valid);
    if (valid && ahead > 0) {
      // The doorbell moved without the host cursor: resync the cursor to match.
      for (let i = 0; i < ahead; i++) consumer.advance();
      m.consumed += ahead;
    }
  }
  assert.equal(sq.pending, m.submitted - m.fetched);
  assert.equal(cq.tail, m.posted % depth);
  assert.equal(cq.phase, Math.floor(m.posted / depth) % 2 === 0 ? 1 : 0);
}

interface Rings {
  sq: SubmissionQueue;
  cq: CompletionQueue;
  producer: SqProducer;
  consumer: CqConsumer;
  scratch: Cqe;
}

Deno.test("random submit, fetch, post and reap interleavings match the reference model", () => {
  forAllSeeds("queue reference model", (prng) => {
    const depth = prng.pick([2, 3, 5, 8, 17, 64]);
    const rings: Rings = {
      sq: new SubmissionQueue(depth),
      cq: new CompletionQueue(depth),
      producer: new SqProducer(depth),
      consumer: new CqConsumer(depth),
      scratch: new Cqe(),
    };
    const model: Model = { submitted: 0, fetched: 0, posted: 0, consumed: 0 };
    for (let step = 0; step < 2000; step++) randomStep(prng, depth, model, rings);
    assert.ok(model.posted > 4 * depth, `wrapped several times (${model.posted} posts)`);
  }, { runs: 60 });
});
