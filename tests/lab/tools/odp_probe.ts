/**
 * Probes on-demand paging on DEVICE_A → DEVICE_B in a child process (a broken ODP path
 * can corrupt the process's memory): registers an ODP MR on page-aligned anonymous
 * memory, RDMA WRITEs 8 KiB at offset 4096 + 256, and checks every byte and its guards.
 * Prints JSON {supported, reason}.
 */
import {
  IBV_ACCESS_FLAGS as A,
  IBV_SEND_FLAGS as S,
  IBV_WR_OPCODE as O,
} from "../../../ffi/verbs_constants.ts";
import { libc, MAP_ANONYMOUS, MAP_PRIVATE, PROT_READ, PROT_WRITE } from "../../../ffi/libc.ts";
import { UnsupportedError } from "../../../lib/verbs/errors.ts";
import { sendDescriptor } from "../../../lib/verbs/work_requests.ts";
import { openPair, pollUntil } from "../support/verbs_pair.ts";

if (!import.meta.main) throw new Error("odp_probe.ts is a program: run it, do not import it");

const regionBytes = 1 << 16;
const offset = 4096 + 256;
const length = 8192;
using pair = openPair(Deno.args[0] === "loopback" ? "loopback" : "pair");
const { a, b } = pair;
const region = libc.symbols.mmap(
  null,
  BigInt(regionBytes),
  PROT_READ | PROT_WRITE,
  MAP_PRIVATE | MAP_ANONYMOUS,
  -1,
  0n,
)!;
const view = new Uint8Array(Deno.UnsafePointerView.getArrayBuffer(region, regionBytes));
const access = A.IBV_ACCESS_LOCAL_WRITE | A.IBV_ACCESS_REMOTE_WRITE | A.IBV_ACCESS_ON_DEMAND;
let result;
try {
  using mr = b.pd.register({
    address: Number(Deno.UnsafePointer.value(region)),
    length: regionBytes,
    owner: region,
  }, access);
  for (let i = 0; i < length; i++) a.bytes[i] = (i * 7 + 3) & 0xff;
  const send = sendDescriptor();
  Object.assign(send, {
    wrId: 1,
    opcode: O.IBV_WR_RDMA_WRITE,
    flags: S.IBV_SEND_SIGNALED,
    addr: a.mr.address,
    length,
    lkey: a.mr.lkey,
    remoteAddr: mr.address + offset,
    rkey: mr.rkey,
  });
  a.qp.sendChain.add(send);
  a.qp.postSend();
  let status = -1;
  pollUntil(a.sendCq, 1, 10_000, (i) => (status = a.sendCq.status(i)));
  const wrong = [...view.subarray(offset, offset + length)].findIndex((v, i) =>
    v !== ((i * 7 + 3) & 0xff)
  );
  const guards = view.subarray(0, offset).every((v) => v === 0) &&
    view.subarray(offset + length).every((v) => v === 0);
  result = status !== 0
    ? { supported: false, reason: `the WRITE into an ODP MR completed with status ${status}` }
    : wrong >= 0 || !guards
    ? {
      supported: false,
      reason:
        `ODP MRs register but an RDMA WRITE of ${length} B at offset ${offset} landed elsewhere (byte ${wrong} wrong, guards ${
          guards ? "intact" : "overwritten"
        }): a known-broken ODP path in this kernel's rxe`,
    }
    : { supported: true, reason: "" };
} catch (error) {
  if (!(error instanceof UnsupportedError)) throw error;
  result = { supported: false, reason: error.message };
}
console.log(JSON.stringify(result));
