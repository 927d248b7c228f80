/**
 * One side's verbs objects: the long-lived {@linkcode Side} (context, PD, the RoCEv2 GID it
 * uses) and, per session, a {@linkcode Link} (completion channel, CQ and RC QP).
 * Shared by primary and replica.
 *
 * @module
 */
import { IBV_MTU } from "../../ffi/verbs_constants.ts";
import { Context, type RoceGid } from "../verbs/context.ts";
import { CompletionChannel, CompletionQueue } from "../verbs/cq.ts";
import { formatGid, ipv4OfGid } from "../verbs/gid.ts";
import { ProtectionDomain } from "../verbs/pd.ts";
import { type QpEndpoint, QueuePair } from "../verbs/qp.ts";
import type { Resource } from "../verbs/resource.ts";
import { openInOrder } from "../dispose.ts";

/** Where a side runs and how its QP behaves toward a dead peer. */
export interface SideOptions {
  /** RDMA device, e.g. `rxea`. */
  device: string;
  /** GID index; default: the device's RoCEv2 IPv4 GID (for `address` when given). */
  gidIndex?: number;
  /** Local IPv4 address whose GID to use when the device has several. */
  address?: string;
  /** ACK timeout exponent (4.096 us * 2^n), default 14 (≈ 67 ms). */
  qpTimeout?: number;
  /** Transport retries (0..7), default 7. */
  retryCount?: number;
  /** RNR retries (0..6; 7 = forever is refused), default 6. */
  rnrRetry?: number;
}

/** Closes resources newest first, ignoring nothing: the first failure is rethrown. */
function closeAll(resources: Resource[]): void {
  let first: unknown;
  for (const r of resources.reverse()) {
    try {
      r.close();
    } catch (error) {
      first ??= error;
    }
  }
  if (first) throw first;
}

/** The long-lived verbs objects of one side. */
export class Side implements Disposable {
  readonly ctx: Context;
  readonly pd: ProtectionDomain;
  /** The GID this side uses. */
  readonly gid: RoceGid;
  /** The port's active MTU (`IBV_MTU_*`). */
  readonly mtu: number;
  /** The options it was opened with (QP timeouts). */
  readonly options: SideOptions;

  private constructor(
    ctx: Context,
    pd: ProtectionDomain,
    gid: RoceGid,
    mtu: number,
    options: SideOptions,
  ) {
    this.ctx = ctx;
    this.pd = pd;
    this.gid = gid;
    this.mtu = mtu;
    this.options = options;
  }

  /** Opens `options.device` and picks its GID; the error says how to get a RoCEv2 GID. */
  static open(options: SideOptions): Side {
    return openInOrder((stack) => {
      const ctx = stack.use(Context.open(options.device));
      const gid = pickGid(ctx, options);
      const mtu = ctx.queryPort(1).activeMtu || IBV_MTU.IBV_MTU_1024;
      const pd = stack.use(new ProtectionDomain(ctx));
      return new Side(ctx, pd, gid, mtu, options);
    });
  }

  /** Creates a session's channel, CQ and QP. */
  openLink(caps: { maxSendWr: number; maxRecvWr: number; maxInlineData: number }): Link {
    return openInOrder((stack) => {
      const channel = stack.use(new CompletionChannel(this.ctx));
      const cq = stack.use(
        new CompletionQueue(this.ctx, {
          entries: caps.maxSendWr + caps.maxRecvWr + 16,
          pollBatch: 32,
          channel,
        }),
      );
      const qp = stack.use(QueuePair.create(this.pd, { sendCq: cq, recvCq: cq, ...caps }));
      if (qp.caps.maxInlineData < caps.maxInlineData) {
        throw new Error(
          `${this.ctx.name} grants ${qp.caps.maxInlineData} B of inline data, ${caps.maxInlineData} B are needed`,
        );
      }
      return new Link(this, channel, cq, qp);
    });
  }

  /** Closes the PD and the context (links and MRs first). */
  close(): void {
    closeAll([this.ctx, this.pd]);
  }

  [Symbol.dispose](): void {
    this.close();
  }

  /** For messages: `rxea GID 1 ::ffff:192.0.2.1`. */
  describe(): string {
    return `${this.ctx.name} GID ${this.gid.index} ${formatGid(this.gid.gid)}`;
  }
}

/** A session's completion channel, CQ and QP. */
export class Link implements Disposable {
  readonly side: Side;
  readonly channel: CompletionChannel;
  readonly cq: CompletionQueue;
  readonly qp: QueuePair;

  /** Use {@linkcode Side.openLink}. */
  constructor(side: Side, channel: CompletionChannel, cq: CompletionQueue, qp: QueuePair) {
    this.side = side;
    this.channel = channel;
    this.cq = cq;
    this.qp = qp;
  }

  /** This side's endpoint for the peer. */
  get endpoint(): QpEndpoint {
    return this.qp.endpoint(this.side.gid.gid, this.side.mtu);
  }

  /** Moves the QP to RTS toward `peer`, path MTU the smaller of both sides'. */
  connect(peer: QpEndpoint, access: number): void {
    const o = this.side.options;
    this.qp.connect({ ...peer, mtu: Math.min(peer.mtu, this.side.mtu) }, {
      sgidIndex: this.side.gid.index,
      access,
      timeout: o.qpTimeout,
      retryCount: o.retryCount,
      rnrRetry: o.rnrRetry,
      peerDescription: ipv4OfGid(peer.gid),
    });
  }

  /** Destroys QP, CQ and channel. */
  close(): void {
    closeAll([this.channel, this.cq, this.qp]);
  }

  [Symbol.dispose](): void {
    this.close();
  }
}

function pickGid(ctx: Context, options: SideOptions): RoceGid {
  if (options.gidIndex !== undefined) {
    const gid = ctx.queryGid(1, options.gidIndex);
    return { index: options.gidIndex, gid, address: ipv4OfGid(gid) ?? formatGid(gid) };
  }
  const gid = ctx.roceV2Gid(1, options.address);
  if (gid) return gid;
  throw new Error(
    `${ctx.name} has no RoCEv2 IPv4 GID${
      options.address ? ` for ${options.address}` : ""
    }: give the ` +
      `netdev under ${ctx.name} an IPv4 address (ip addr add ADDR/24 dev NETDEV) or pass --gid-index`,
  );
}
