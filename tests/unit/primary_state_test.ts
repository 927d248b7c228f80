/**
 * The primary's protocol state on the host, one rule at a time: admission (depth,
 * credits, pending SKIPs), the matching of acks to the oldest record, refusals that
 * become SKIPs and the resends behind them, the WELCOME's bounds, the resume order and
 * RELEASE. `protocol_sim_test.ts` runs it against the replica's state.
 */
import assert from "node:assert/strict";
import { type Ack, AckStatus } from "../../lib/log/ack.ts";
import { RingCursor } from "../../lib/log/ring.ts";
import { type Entry, Flight, Kind } from "../../lib/replication/flight.ts";
import { AckOutcome, PrimaryState } from "../../lib/replication/primary_state.ts";

const ringBytes = 64 * 1024;

function setup(depth = 4, retain = false) {
  const flight = new Flight(depth + 2);
  const state = new PrimaryState({
    ring: new RingCursor({ ringBytes }),
    flight,
    depth,
    retain,
    nextSeq: 1,
  });
  const post = (length = 4096): Entry => {
    assert.ok(state.canPost(length), "canPost");
    const e = flight.take(Kind.LOG);
    state.placeLog(e, length);
    flight.push(e);
    return e;
  };
  return { state, flight, post };
}

function ack(seq: number, status: number, nextSeq: number, released: number): Ack {
  return { seq, status, nextSeq, released };
}

Deno.test("primary state: depth and credits gate admission", () => {
  const { state, post } = setup(16);
  for (let i = 0; i < 16; i++) post();
  assert.equal(state.canPost(4096), false, "the ring is full up to the replica's release");
  assert.equal(state.onAck(ack(1, AckStatus.OK, 2, 4096)), AckOutcome.REPLICATED);
  assert.equal(state.released, 4096);
  assert.equal(state.canPost(4096), true, "the release made room");
  const { state: shallow, post: postShallow } = setup(2);
  postShallow();
  postShallow();
  assert.equal(shallow.canPost(4096), false, "depth 2 reached");
});

Deno.test("primary state: acks match the oldest record, in order", () => {
  const { state, post } = setup();
  const first = post();
  post();
  assert.equal(state.onAck(ack(1, AckStatus.OK, 2, 4096)), AckOutcome.REPLICATED);
  assert.equal(state.entry, first);
  assert.equal(state.answeredSeq, 1);
  assert.equal(state.onAck(ack(1, AckStatus.OK, 2, 4096)), AckOutcome.VIOLATION, "a stale ack");
  assert.match(state.problem.received, /seq 1/);
  assert.equal(state.onAck(ack(3, AckStatus.OK, 4, 8192)), AckOutcome.SUSPEND, "a missing ack");
  assert.equal(state.onAck(ack(2, AckStatus.OK, 1, 8192)), AckOutcome.VIOLATION, "nextSeq back");
  assert.equal(state.onAck(ack(2, AckStatus.OK, 3, 99 * 4096)), AckOutcome.VIOLATION, "released");
  assert.equal(state.onAck(ack(2, AckStatus.OK, 3, 8192)), AckOutcome.REPLICATED);
  assert.equal(state.onAck(ack(3, AckStatus.OK, 4, 8192)), AckOutcome.VIOLATION, "none in flight");
  // A violation is final (the engine fails everything): each case on a fresh state.
  const fresh = setup();
  fresh.post();
  assert.equal(fresh.state.onAck(ack(1, AckStatus.OK, 1, 4096)), AckOutcome.VIOLATION);
  assert.match(fresh.state.problem.received, /OK for seq 1 with nextSeq 1/);
});

Deno.test("primary state: a refusal becomes a SKIP, logs behind it are resent", () => {
  const { state, post } = setup();
  post();
  const second = post();
  assert.equal(state.onAck(ack(1, AckStatus.CRC_MISMATCH, 1, 0)), AckOutcome.REFUSED);
  assert.equal(state.entry!.kind, Kind.SKIP);
  assert.equal(state.skipsPending, 1);
  assert.equal(state.canPost(4096), false, "no new log while a SKIP is pending");
  const skip = state.entry!;
  state.flight.push(skip);
  assert.equal(state.onAck(ack(2, AckStatus.SEQ_GAP, 1, 0)), AckOutcome.RESEND);
  assert.equal(state.entry, second);
  state.flight.push(second);
  assert.equal(state.onAck(ack(1, AckStatus.OK, 2, 4096)), AckOutcome.SKIP_ANSWERED);
  assert.equal(state.skipsPending, 0);
  assert.equal(state.onAck(ack(2, AckStatus.OK, 3, 8192)), AckOutcome.REPLICATED);
  // A SEQ_GAP with no SKIP pending is a refusal of its own; a SKIP must be answered OK.
  post();
  assert.equal(state.onAck(ack(3, AckStatus.SEQ_GAP, 3, 8192)), AckOutcome.REFUSED);
  state.flight.push(state.entry!);
  assert.equal(state.onAck(ack(3, AckStatus.SEQ_GAP, 3, 8192)), AckOutcome.VIOLATION);
  assert.match(state.problem.received, /SKIP of seq 3/);
});

Deno.test("primary state: the WELCOME's next seq is bounded by what was acked and sent", () => {
  const { state, post } = setup();
  post();
  post();
  assert.equal(state.onAck(ack(1, AckStatus.OK, 2, 4096)), AckOutcome.REPLICATED);
  assert.equal(state.attach(1, 0), false, "the replica lost an acked log");
  assert.match(state.problem.expected, /2\.\.3/);
  assert.equal(state.attach(4, 0), false, "the replica holds a log never sent");
  assert.equal(state.attach(2, 1 << 30), true);
  assert.equal(state.released, 8192, "credits never beyond what was written");
});

Deno.test("primary state: a resume posts logs and SKIPs in seq order", () => {
  const { state, flight } = setup(6);
  const make = (kind: number, seq: number) => {
    const e = flight.take(kind);
    e.seq = seq;
    return e;
  };
  // The flight after a refusal of 5 with 6..8 sent behind it: 8, SKIP 5, 6, 7 (and a RELEASE).
  for (const e of [make(Kind.LOG, 8), make(Kind.SKIP, 5), make(Kind.RELEASE, 4)]) flight.push(e);
  for (const e of [make(Kind.LOG, 6), make(Kind.LOG, 7)]) flight.push(e);
  const order = state.drainForResume([]).map((e) => [e.kind, e.seq]);
  assert.deepEqual(order, [[Kind.RELEASE, 4], [Kind.SKIP, 5], [Kind.LOG, 6], [Kind.LOG, 7], [
    Kind.LOG,
    8,
  ]]);
  assert.equal(flight.count, 0);
});

Deno.test("primary state: RELEASE only in retain mode, only through answered logs", () => {
  assert.throws(() => setup().state.release(0), RangeError);
  const { state, post } = setup(4, true);
  post();
  post();
  assert.equal(state.onAck(ack(1, AckStatus.OK, 2, 0)), AckOutcome.REPLICATED);
  assert.throws(() => state.release(2), /answered through 1/);
  assert.equal(state.releaseDue, 0);
  state.release(1);
  assert.equal(state.releaseDue, 1);
  assert.equal(state.ring.releasedPos, 4096);
  state.releasePosted(1);
  assert.equal(state.releaseDue, 0);
});
