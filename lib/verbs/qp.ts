/**
 * RC queue pairs: ibv_create_qp(3), ibv_modify_qp(3) through INIT, RTR and RTS from a
 * peer's `{qpn, psn, gid, mtu}`, ibv_query_qp(3), and posting preallocated chains through
 * `ops.post_send` / `ops.post_recv`.
 *
 * @module
 */
import { PreparedCall } from "../../ffi/prepared_call.ts";
import {
  IBV_MTU,
  IBV_QP_ATTR_MASK as M,
  IBV_QP_STATE,
  IBV_QP_TYPE,
} from "../../ffi/verbs_constants.ts";
import { ibvQp, ibvQpAttr, ibvQpInitAttr } from "../../ffi/verbs_types.ts";
import { verbs } from "../../ffi/verbs.ts";
import { callDestroy, callInt, callPointer } from "./call.ts";
import { nameOf } from "./context.ts";
import type { CompletionQueue } from "./cq.ts";
import { verbsError } from "./errors.ts";
import { armed, HOT, injectedHotErrno } from "./inject.ts";
import { formatGid, ipv4OfGid } from "./gid.ts";
import { addressOf, brandPointer, type QpPtr } from "./handles.ts";
import type { ProtectionDomain } from "./pd.ts";
import { Resource } from "./resource.ts";
import { closeAfter } from "../dispose.ts";
import { RecvChain, SendChain } from "./work_requests.ts";

/** What a peer needs to connect to this QP (exchanged out of band). */
export interface QpEndpoint {
  /** QP number (24 bits). */
  qpn: number;
  /** Initial packet sequence number (24 bits). */
  psn: number;
  /** GID (16 bytes): RoCEv2 IPv4-mapped for Soft-RoCE. */
  gid: Uint8Array;
  /** Path MTU, `IBV_MTU_*` (1 = 256 ... 5 = 4096). */
  mtu: number;
}

/** Options of {@linkcode QueuePair.create}. */
export interface QpOptions {
  /** CQ of the send queue's completions. */
  sendCq: CompletionQueue;
  /** CQ of the receive queue's completions. */
  recvCq: CompletionQueue;
  /** Send queue depth (work requests). */
  maxSendWr: number;
  /** Receive queue depth. */
  maxRecvWr: number;
  /** Inline data bytes the QP must support (0 for none). */
  maxInlineData?: number;
  /** Longest chain one post carries (default: the queue depths). */
  chainMax?: number;
}

/** Options of {@linkcode QueuePair.connect}: the transitions to RTR and RTS. */
export interface ConnectOptions {
  /** Port (default 1). */
  port?: number;
  /** Local GID index (the RoCEv2 IPv4 one). */
  sgidIndex: number;
  /** `IBV_ACCESS_*` the peer may use on this QP (REMOTE_WRITE, REMOTE_READ). */
  access: number;
  /** ACK timeout exponent: 4.096 us * 2^timeout (0..31, default 14 ≈ 67 ms). */
  timeout?: number;
  /** Transport retries, 0..7 (default 7). */
  retryCount?: number;
  /** RNR retries, 0..6 (default 6); 7 would mean "forever" and is refused. */
  rnrRetry?: number;
  /** Minimal RNR NAK timer, 0..31 (default 12 ≈ 0.64 ms). */
  minRnrTimer?: number;
  /** Outstanding RDMA READs as initiator and responder (default 1, max 16). */
  rdAtomic?: number;
  /** Peer description for error messages, e.g. its address. */
  peerDescription?: string;
}

const bounds = { timeout: 31, retryCount: 7, rnrRetry: 6, minRnrTimer: 31, rdAtomic: 16 } as const;
const wrMax = 16384;

function bounded(name: keyof typeof bounds, value: number): number {
  if (!Number.isInteger(value) || value < 0 || value > bounds[name]) {
    const extra = name === "rnrRetry"
      ? " (7 would retry forever: a dead peer would hang the QP)"
      : "";
    throw new RangeError(`${name} must be 0..${bounds[name]}, got ${value}${extra}`);
  }
  return value;
}

/** An RC queue pair (`struct ibv_qp`) with preallocated send and receive chains. */
export class QueuePair extends Resource {
  readonly #ptr: QpPtr;
  readonly #postSend: PreparedCall;
  readonly #postRecv: PreparedCall;
  readonly #badWr = new BigUint64Array(new ArrayBuffer(16));
  /** The QP number. */
  readonly qpn: number;
  /** This side's initial PSN (random). */
  readonly psn: number;
  /** Capabilities the device granted. */
  readonly caps: { maxSendWr: number; maxRecvWr: number; maxInlineData: number };
  /** Send chain: fill it, then {@linkcode postSend}. */
  readonly sendChain: SendChain;
  /** Receive chain: fill it, then {@linkcode postRecv}. */
  readonly recvChain: RecvChain;
  /** For messages. */
  readonly label: string;
  readonly #device: string;

  private constructor(pd: ProtectionDomain, options: QpOptions) {
    const { maxSendWr, maxRecvWr, maxInlineData = 0 } = options;
    for (const [name, value] of [["maxSendWr", maxSendWr], ["maxRecvWr", maxRecvWr]] as const) {
      if (!Number.isInteger(value) || value < 1 || value > wrMax) {
        throw new RangeError(`${name} must be 1..${wrMax}, got ${value}`);
      }
    }
    const device = pd.context.name;
    const attr = new Uint8Array(new ArrayBuffer(ibvQpInitAttr.size));
    const view = new DataView(attr.buffer);
    const set = (path: Parameters<typeof ibvQpInitAttr.field>[0], value: number) =>
      ibvQpInitAttr.field(path).set(view, 0, value);
    set("send_cq", addressOf(options.sendCq.ptr));
    set("recv_cq", addressOf(options.recvCq.ptr));
    set("cap.max_send_wr", maxSendWr);
    set("cap.max_recv_wr", maxRecvWr);
    set("cap.max_send_sge", 1);
    set("cap.max_recv_sge", 1);
    set("cap.max_inline_data", maxInlineData);
    set("qp_type", IBV_QP_TYPE.IBV_QPT_RC);
    const ptr = callPointer(
      "ibv_create_qp",
      () => `RC QP on ${device} (send ${maxSendWr}, recv ${maxRecvWr}, inline ${maxInlineData})`,
      () => verbs().ibv_create_qp(pd.ptr, attr),
    );
    super([pd, options.sendCq, options.recvCq]);
    this.#device = device;
    this.#ptr = brandPointer(ptr);
    this.qpn = ibvQp.field("qp_num").read(ptr);
    this.label = `QP ${this.qpn} on ${this.#device}`;
    this.psn = crypto.getRandomValues(new Uint32Array(1))[0] & 0xffffff;
    const get = (path: Parameters<typeof ibvQpInitAttr.field>[0]) =>
      ibvQpInitAttr.field(path).get(view);
    this.caps = {
      maxSendWr: get("cap.max_send_wr"),
      maxRecvWr: get("cap.max_recv_wr"),
      maxInlineData: get("cap.max_inline_data"),
    };
    try {
      this.sendChain = new SendChain(Math.min(options.chainMax ?? maxSendWr, maxSendWr));
      this.recvChain = new RecvChain(Math.min(options.chainMax ?? maxRecvWr, maxRecvWr));
      const badWrAddress = addressOf(Deno.UnsafePointer.of(this.#badWr));
      const context = pd.context;
      this.#postSend = new PreparedCall(context.ops.postSend, ["ptr", "ptr", "ptr"]);
      this.#postSend.setPointer(0, addressOf(ptr));
      this.#postSend.setPointer(1, this.sendChain.headAddress);
      this.#postSend.setPointer(2, badWrAddress);
      this.#postRecv = new PreparedCall(context.ops.postRecv, ["ptr", "ptr", "ptr"]);
      this.#postRecv.setPointer(0, addressOf(ptr));
      this.#postRecv.setPointer(1, this.recvChain.headAddress);
      this.#postRecv.setPointer(2, badWrAddress + 8);
    } catch (error) {
      throw closeAfter(this, error); // the QP exists: destroy it, or its PD could never close
    }
  }

  /** `ibv_create_qp(3)`: an RC QP on `pd`. */
  static create(pd: ProtectionDomain, options: QpOptions): QueuePair {
    return new QueuePair(pd, options);
  }

  /** The raw handle. */
  get ptr(): QpPtr {
    this.assertOpen();
    return this.#ptr;
  }

  /** This QP's endpoint, for the peer. */
  endpoint(gid: Uint8Array, mtu: number = IBV_MTU.IBV_MTU_1024): QpEndpoint {
    return { qpn: this.qpn, psn: this.psn, gid, mtu };
  }

  /** RESET → INIT → RTR → RTS toward `peer` (ibv_modify_qp(3) three times). */
  connect(peer: QpEndpoint, options: ConnectOptions): void {
    this.toInit(options);
    this.toRtr(peer, options);
    this.toRts(options);
  }

  /** RESET → INIT. */
  toInit(options: Pick<ConnectOptions, "port" | "access">): void {
    this.#modify(
      "INIT",
      M.IBV_QP_STATE | M.IBV_QP_PKEY_INDEX | M.IBV_QP_PORT | M.IBV_QP_ACCESS_FLAGS,
      {
        qp_state: IBV_QP_STATE.IBV_QPS_INIT,
        pkey_index: 0,
        port_num: options.port ?? 1,
        qp_access_flags: options.access,
      },
    );
  }

  /** INIT → RTR: path to `peer`. The error names the GIDs and the likely cause. */
  toRtr(peer: QpEndpoint, options: ConnectOptions): void {
    if (peer.gid.length !== 16) throw new RangeError(`A GID has 16 bytes, got ${peer.gid.length}`);
    const rdAtomic = bounded("rdAtomic", options.rdAtomic ?? 1);
    const fields = {
      qp_state: IBV_QP_STATE.IBV_QPS_RTR,
      path_mtu: peer.mtu,
      dest_qp_num: peer.qpn,
      rq_psn: peer.psn,
      max_dest_rd_atomic: rdAtomic,
      min_rnr_timer: bounded("minRnrTimer", options.minRnrTimer ?? 12),
      "ah_attr.is_global": 1,
      "ah_attr.grh.sgid_index": options.sgidIndex,
      "ah_attr.grh.hop_limit": 64,
      "ah_attr.port_num": options.port ?? 1,
    } as const;
    const mask = M.IBV_QP_STATE | M.IBV_QP_AV | M.IBV_QP_PATH_MTU | M.IBV_QP_DEST_QPN |
      M.IBV_QP_RQ_PSN | M.IBV_QP_MAX_DEST_RD_ATOMIC | M.IBV_QP_MIN_RNR_TIMER;
    const peerAddress = ipv4OfGid(peer.gid);
    this.#modify(
      "RTR",
      mask,
      fields,
      peer.gid,
      () =>
        `to QP ${peer.qpn} at GID ${formatGid(peer.gid)}` +
        (options.peerDescription ? ` (${options.peerDescription})` : "") +
        ` from GID index ${options.sgidIndex} of ${this.#device}: check that the netdev under ` +
        `${this.#device} has an IPv4 address and a route to ${peerAddress ?? "the peer"} ` +
        "(ip addr; ip route get ADDRESS) and that the peer's GID is its RoCEv2 IPv4 one",
    );
  }

  /** RTR → RTS with finite retry counts. */
  toRts(options: Omit<ConnectOptions, "sgidIndex" | "access">): void {
    this.#modify(
      "RTS",
      M.IBV_QP_STATE | M.IBV_QP_TIMEOUT | M.IBV_QP_RETRY_CNT | M.IBV_QP_RNR_RETRY |
        M.IBV_QP_SQ_PSN |
        M.IBV_QP_MAX_QP_RD_ATOMIC,
      {
        qp_state: IBV_QP_STATE.IBV_QPS_RTS,
        sq_psn: this.psn,
        timeout: bounded("timeout", options.timeout ?? 14),
        retry_cnt: bounded("retryCount", options.retryCount ?? 7),
        rnr_retry: bounded("rnrRetry", options.rnrRetry ?? 6),
        max_rd_atomic: bounded("rdAtomic", options.rdAtomic ?? 1),
      },
    );
  }

  /** Any state → ERR: outstanding work requests complete with `IBV_WC_WR_FLUSH_ERR`. */
  toError(): void {
    this.#modify("ERR", M.IBV_QP_STATE, { qp_state: IBV_QP_STATE.IBV_QPS_ERR });
  }

  /** `ibv_query_qp(3)`: the current state (`RESET`, `INIT`, `RTR`, `RTS`, `ERR`, ...). */
  state(): string {
    const attr = new Uint8Array(new ArrayBuffer(ibvQpAttr.size));
    const init = new Uint8Array(new ArrayBuffer(ibvQpInitAttr.size));
    callInt(
      "ibv_query_qp",
      () => this.label,
      () => verbs().ibv_query_qp(this.ptr, attr, M.IBV_QP_STATE, init),
    );
    const state = ibvQpAttr.field("qp_state").get(new DataView(attr.buffer));
    return nameOf(IBV_QP_STATE, state, "IBV_QPS_");
  }

  #modify(
    target: string,
    mask: number,
    fields: Partial<Record<Parameters<typeof ibvQpAttr.field>[0], number>>,
    dgid?: Uint8Array,
    hint?: () => string,
  ): void {
    const attr = new Uint8Array(new ArrayBuffer(ibvQpAttr.size));
    const view = new DataView(attr.buffer);
    for (const [path, value] of Object.entries(fields)) {
      ibvQpAttr.field(path as Parameters<typeof ibvQpAttr.field>[0]).set(view, 0, value!);
    }
    if (dgid) attr.set(dgid, ibvQpAttr.offsetOf("ah_attr.grh.dgid"));
    callInt(
      "ibv_modify_qp",
      () => `${this.label} to ${target}${hint ? ` ${hint()}` : ""}`,
      () => verbs().ibv_modify_qp(this.ptr, attr, mask),
    );
  }

  /**
   * Posts the send chain in one `ops.post_send` call and empties it. On failure throws a
   * VerbsError naming the first work request the provider refused, and a ResourceError
   * once the QP is closed (the provider's memory is gone: a post would be a use after
   * free).
   */
  postSend(): void {
    this.assertOpen();
    const chain = this.sendChain;
    if (chain.length === 0) return;
    this.#badWr[0] = 0n;
    const rc = (armed && injectedHotErrno(HOT.POST_SEND)) || this.#postSend.call();
    if (rc !== 0) {
      const detail = this.#badDetail(chain, 0, "work request");
      chain.clear();
      throw verbsError("ibv_post_send", rc, detail);
    }
    chain.clear();
  }

  /** Posts the receive chain in one `ops.post_recv` call and empties it (closed: ResourceError). */
  postRecv(): void {
    this.assertOpen();
    const chain = this.recvChain;
    if (chain.length === 0) return;
    this.#badWr[1] = 0n;
    const rc = (armed && injectedHotErrno(HOT.POST_RECV)) || this.#postRecv.call();
    if (rc !== 0) {
      const detail = this.#badDetail(chain, 1, "receive");
      chain.clear();
      throw verbsError("ibv_post_recv", rc, detail);
    }
    chain.clear();
  }

  #badDetail(chain: SendChain | RecvChain, slot: number, what: string): string {
    const bad = chain.indexOf(Number(this.#badWr[slot]));
    return bad < 0
      ? `${this.label}, ${chain.length} ${what}(s); the provider named none (its doorbell failed: is the QP in RTS?)`
      : `${this.label}, ${what} ${bad} of ${chain.length}`;
  }

  /** Calls the destroy verb (see {@linkcode Resource.close}). */
  protected destroy(): void {
    callDestroy("ibv_destroy_qp", () => this.label, () => verbs().ibv_destroy_qp(this.#ptr));
  }
}
