/**
 * The verbs layer on rdma_rxe: every operation the replication uses, checked byte for
 * byte and field by field, on the namespace pair and again on one device (loopback).
 */
import assert from "node:assert/strict";
import {
  IBV_SEND_FLAGS as S,
  IBV_WC_FLAGS,
  IBV_WC_OPCODE as W,
  IBV_WC_STATUS,
  IBV_WR_OPCODE as O,
} from "../../ffi/verbs_constants.ts";
import { recvDescriptor, sendDescriptor } from "../../lib/verbs/work_requests.ts";
import { labTopology, openPair, pollUntil, type Side } from "./support/verbs_pair.ts";

const send = sendDescriptor();
const recv = recvDescriptor();

function postRecv(side: Side, wrId: number, offset: number, length: number) {
  Object.assign(recv, { wrId, addr: side.mr.address + offset, length, lkey: side.mr.lkey });
  side.qp.recvChain.add(recv);
  side.qp.postRecv();
}

function fillPattern(bytes: Uint8Array, seed: number) {
  for (let i = 0; i < bytes.length; i++) bytes[i] = (i * 31 + seed * 7 + (i >> 8)) & 0xff;
}

/** Expects exactly one completion on `cq` and returns its fields. */
function one(side: Side, cq: "sendCq" | "recvCq") {
  const q = side[cq];
  let fields;
  const got = pollUntil(q, 1, 5000, (i) => {
    fields = {
      status: q.status(i),
      opcode: q.opcode(i),
      wrId: q.wrId(i),
      byteLen: q.byteLen(i),
      qpNum: q.qpNum(i),
      imm: q.immData(i),
      flags: q.wcFlags(i),
    };
  });
  assert.equal(got, 1, `one completion on ${side.ctx.name} ${cq}`);
  return fields!;
}

const topology = labTopology();
if (topology.kind !== "pair") {
  console.log(
    "skipping the pair variant: this kernel's rxe cannot carry traffic between namespaces (loopback topology)",
  );
}

for (const kind of ["pair", "loopback"] as const) {
  Deno.test({
    name: `verbs on ${kind}: WRITE, READ, SEND, WRITE_WITH_IMM, inline SEND, chained WRITE+SEND`,
    ignore: kind === "pair" && topology.kind !== "pair",
  }, async (t) => {
    using pair = openPair(kind);
    const { a, b } = pair;

    await t.step("RDMA WRITE lands in the peer's memory; completion fields match", () => {
      fillPattern(a.bytes.subarray(0, 8192), 1);
      Object.assign(send, {
        wrId: 101,
        opcode: O.IBV_WR_RDMA_WRITE,
        flags: S.IBV_SEND_SIGNALED,
        addr: a.mr.address,
        length: 8192,
        lkey: a.mr.lkey,
        remoteAddr: b.mr.address + 4096,
        rkey: b.mr.rkey,
        imm: 0,
      });
      a.qp.sendChain.add(send);
      a.qp.postSend();
      const wc = one(a, "sendCq");
      assert.deepEqual([wc.status, wc.opcode, wc.wrId, wc.qpNum], [
        IBV_WC_STATUS.IBV_WC_SUCCESS,
        W.IBV_WC_RDMA_WRITE,
        101,
        a.qp.qpn,
      ]);
      assert.deepEqual(b.bytes.subarray(4096, 4096 + 8192), a.bytes.subarray(0, 8192));
    });

    await t.step("RDMA READ fetches the peer's bytes; byte_len is the length", () => {
      fillPattern(b.bytes.subarray(65536, 65536 + 12288), 2);
      Object.assign(send, {
        wrId: 102,
        opcode: O.IBV_WR_RDMA_READ,
        flags: S.IBV_SEND_SIGNALED,
        addr: a.mr.address + 131072,
        length: 12288,
        lkey: a.mr.lkey,
        remoteAddr: b.mr.address + 65536,
        rkey: b.mr.rkey,
      });
      a.qp.sendChain.add(send);
      a.qp.postSend();
      const wc = one(a, "sendCq");
      assert.deepEqual([wc.status, wc.opcode, wc.wrId, wc.byteLen], [
        0,
        W.IBV_WC_RDMA_READ,
        102,
        12288,
      ]);
      assert.deepEqual(
        a.bytes.subarray(131072, 131072 + 12288),
        b.bytes.subarray(65536, 65536 + 12288),
      );
    });

    await t.step("SEND is received into the posted buffer; both completions match", () => {
      postRecv(b, 201, 262144, 4096);
      fillPattern(a.bytes.subarray(8192, 8192 + 3000), 3);
      Object.assign(send, {
        wrId: 103,
        opcode: O.IBV_WR_SEND,
        flags: S.IBV_SEND_SIGNALED,
        addr: a.mr.address + 8192,
        length: 3000,
        lkey: a.mr.lkey,
        remoteAddr: 0,
        rkey: 0,
      });
      a.qp.sendChain.add(send);
      a.qp.postSend();
      const rwc = one(b, "recvCq");
      assert.deepEqual(
        [rwc.status, rwc.opcode, rwc.wrId, rwc.byteLen, rwc.qpNum],
        [0, W.IBV_WC_RECV, 201, 3000, b.qp.qpn],
      );
      assert.deepEqual(
        b.bytes.subarray(262144, 262144 + 3000),
        a.bytes.subarray(8192, 8192 + 3000),
      );
      const swc = one(a, "sendCq");
      assert.deepEqual([swc.status, swc.opcode, swc.wrId], [0, W.IBV_WC_SEND, 103]);
    });

    await t.step("WRITE_WITH_IMM consumes a RECV and carries imm_data", () => {
      postRecv(b, 202, 266240, 16);
      fillPattern(a.bytes.subarray(16384, 16384 + 4096), 4);
      Object.assign(send, {
        wrId: 104,
        opcode: O.IBV_WR_RDMA_WRITE_WITH_IMM,
        flags: S.IBV_SEND_SIGNALED,
        addr: a.mr.address + 16384,
        length: 4096,
        lkey: a.mr.lkey,
        remoteAddr: b.mr.address + 327680,
        rkey: b.mr.rkey,
        imm: 0xdeadbeef,
      });
      a.qp.sendChain.add(send);
      a.qp.postSend();
      const rwc = one(b, "recvCq");
      assert.equal(rwc.status, 0);
      assert.equal(rwc.opcode, W.IBV_WC_RECV_RDMA_WITH_IMM);
      assert.equal(rwc.wrId, 202);
      assert.equal(rwc.imm, 0xdeadbeef);
      assert.ok(rwc.flags & IBV_WC_FLAGS.IBV_WC_WITH_IMM, "wc_flags has IBV_WC_WITH_IMM");
      assert.equal(rwc.byteLen, 4096);
      assert.deepEqual(
        b.bytes.subarray(327680, 327680 + 4096),
        a.bytes.subarray(16384, 16384 + 4096),
      );
      assert.equal(one(a, "sendCq").opcode, W.IBV_WC_RDMA_WRITE);
    });

    await t.step("inline SEND copies from unregistered memory at post time", () => {
      postRecv(b, 203, 270336, 64);
      const scratch = new Uint8Array(new ArrayBuffer(64));
      fillPattern(scratch, 5);
      const expected = scratch.slice();
      Object.assign(send, {
        wrId: 105,
        opcode: O.IBV_WR_SEND,
        flags: S.IBV_SEND_SIGNALED | S.IBV_SEND_INLINE,
        addr: Number(Deno.UnsafePointer.value(Deno.UnsafePointer.of(scratch))),
        length: 64,
        lkey: 0,
      });
      a.qp.sendChain.add(send);
      a.qp.postSend();
      scratch.fill(0); // inline: the provider copied the bytes already
      const rwc = one(b, "recvCq");
      assert.deepEqual([rwc.status, rwc.wrId, rwc.byteLen], [0, 203, 64]);
      assert.deepEqual(b.bytes.subarray(270336, 270336 + 64), expected);
      assert.equal(one(a, "sendCq").wrId, 105);
    });

    await t.step(
      "WRITE then SEND chained in one post: the data is there when the RECV completes",
      () => {
        postRecv(b, 204, 274432, 64);
        fillPattern(a.bytes.subarray(32768, 32768 + 65536), 6);
        b.bytes.fill(0, 524288, 524288 + 65536);
        Object.assign(send, {
          wrId: 106,
          opcode: O.IBV_WR_RDMA_WRITE,
          flags: 0,
          addr: a.mr.address + 32768,
          length: 65536,
          lkey: a.mr.lkey,
          remoteAddr: b.mr.address + 524288,
          rkey: b.mr.rkey,
        });
        a.qp.sendChain.add(send);
        Object.assign(send, {
          wrId: 107,
          opcode: O.IBV_WR_SEND,
          flags: S.IBV_SEND_SIGNALED | S.IBV_SEND_INLINE,
          addr: a.mr.address + 98304,
          length: 64,
          lkey: a.mr.lkey,
          remoteAddr: 0,
          rkey: 0,
        });
        a.qp.sendChain.add(send);
        a.qp.postSend();
        let dataAtRecv = false;
        const got = pollUntil(b.recvCq, 1, 5000, (i) => {
          assert.equal(b.recvCq.wrId(i), 204);
          dataAtRecv = b.bytes.subarray(524288, 524288 + 65536).every((v, k) =>
            v === a.bytes[32768 + k]
          );
        });
        assert.equal(got, 1);
        assert.ok(dataAtRecv, "the WRITE's bytes are in place when the SEND's RECV completes");
        const swc = one(a, "sendCq"); // the unsignaled WRITE produces no completion
        assert.deepEqual([swc.opcode, swc.wrId], [W.IBV_WC_SEND, 107]);
        assert.equal(a.sendCq.poll(), 0);
      },
    );

    await t.step(
      "event mode: an armed CQ raises an event for a completion, and times out without one",
      async () => {
        b.recvCq.requestNotify();
        const t0 = performance.now();
        assert.equal(await b.recvCq.waitEvent(150), false, "no completion, no event");
        assert.ok(performance.now() - t0 < 2000, "the wait is bounded");
        postRecv(b, 205, 278528, 64);
        Object.assign(send, {
          wrId: 108,
          opcode: O.IBV_WR_SEND,
          flags: S.IBV_SEND_INLINE,
          addr: a.mr.address,
          length: 32,
          lkey: 0,
        });
        a.qp.sendChain.add(send);
        a.qp.postSend();
        assert.equal(await b.recvCq.waitEvent(5000), true, "event for the RECV completion");
        assert.equal(one(b, "recvCq").wrId, 205);
      },
    );
  });
}

Deno.test("use after close: post_send, post_recv, poll_cq, req_notify_cq and get_cq_event on a closed object throw a ResourceError naming it, and never reach the provider", () => {
  using pair = openPair("loopback");
  const { qp, sendCq, recvCq, channel } = pair.a;
  // A work request in the chain: a post that reached the provider would touch freed memory.
  Object.assign(send, {
    wrId: 1,
    opcode: O.IBV_WR_SEND,
    flags: S.IBV_SEND_SIGNALED,
    addr: pair.a.mr.address,
    length: 64,
    lkey: pair.a.mr.lkey,
  });
  qp.sendChain.add(send);
  Object.assign(recv, { wrId: 2, addr: pair.a.mr.address, length: 64, lkey: pair.a.mr.lkey });
  qp.recvChain.add(recv);
  qp.close();
  const closed = (what: string) => ({
    name: "ResourceError",
    message: new RegExp(`${what}.* is closed`),
  });
  assert.throws(() => qp.postSend(), closed("QP"));
  assert.throws(() => qp.postRecv(), closed("QP"));
  sendCq.close();
  recvCq.close();
  assert.throws(() => sendCq.poll(), closed("CQ"));
  assert.throws(() => recvCq.requestNotify(), closed("CQ"));
  channel.close();
  assert.throws(() => channel.takeEvent(), closed("completion channel"));
});
