/**
 * Devices and device contexts: ibv_get_device_list(3), ibv_open_device(3),
 * ibv_query_device(3), ibv_query_port(3), ibv_query_gid(3).
 *
 * @module
 */
import { IBV_LINK_LAYER, IBV_PORT_STATE } from "../../ffi/verbs_constants.ts";
import { ibvContext, ibvDeviceAttr, ibvPortAttr } from "../../ffi/verbs_types.ts";
import { verbs } from "../../ffi/verbs.ts";
import { callDestroy, callInt, callPointer } from "./call.ts";
import { VerbsError } from "./errors.ts";
import { formatGid, gidType, ipv4OfGid } from "./gid.ts";
import { brandPointer, type ContextPtr, type DevicePtr } from "./handles.ts";
import { Resource } from "./resource.ts";
import { closeAfter } from "../dispose.ts";

const encoder = new TextEncoder();
const gidIndexMax = 256;

/** Names of the RDMA devices libibverbs sees, in its order. */
export function listDevices(): string[] {
  return withDeviceList((devices) => devices.map((d) => d.name));
}

function withDeviceList<T>(fn: (devices: { name: string; ptr: DevicePtr }[]) => T): T {
  const count = new Int32Array(new ArrayBuffer(4));
  let list: Deno.PointerObject;
  try {
    list = callPointer("ibv_get_device_list", () => "", () => verbs().ibv_get_device_list(count));
  } catch (error) {
    // ENOSYS: the kernel has no uverbs at all, which means no devices.
    if (error instanceof VerbsError && error.errnoName === "ENOSYS") return fn([]);
    throw error;
  }
  try {
    const view = new Deno.UnsafePointerView(list);
    const devices = [];
    for (let i = 0; i < count[0]; i++) {
      const ptr = Deno.UnsafePointer.create(view.getBigUint64(i * 8))!;
      const name = Deno.UnsafePointerView.getCString(verbs().ibv_get_device_name(ptr)!);
      devices.push({ name, ptr: brandPointer<"ibv_device">(ptr) });
    }
    return fn(devices);
  } finally {
    verbs().ibv_free_device_list(list);
  }
}

/** What `ibv_query_device` reports that experiments care about. */
export interface DeviceAttributes {
  /** `fw_ver`. */
  firmware: string;
  /** `node_guid`. */
  nodeGuid: bigint;
  /** `max_mr_size`: the largest MR, in bytes. */
  maxMrSize: number;
  /** `max_qp`. */
  maxQp: number;
  /** `max_qp_wr`: work requests per queue. */
  maxQpWr: number;
  /** `max_sge`: scatter/gather entries per work request. */
  maxSge: number;
  /** `max_cq`. */
  maxCq: number;
  /** `max_cqe`: entries per CQ. */
  maxCqe: number;
  /** `max_mr`. */
  maxMr: number;
  /** `max_qp_rd_atom`: outstanding RDMA READs per QP. */
  maxQpRdAtom: number;
}

/** What `ibv_query_port` reports. */
export interface PortAttributes {
  /** `state` (`IBV_PORT_*`). */
  state: number;
  /** `ACTIVE`, `DOWN`, ... */
  stateName: string;
  /** `max_mtu` (`IBV_MTU_*`). */
  maxMtu: number;
  /** `active_mtu` (`IBV_MTU_*`). */
  activeMtu: number;
  /** `gid_tbl_len`. */
  gidTableLength: number;
  /** `link_layer` (`IBV_LINK_LAYER_*`). */
  linkLayer: number;
  /** `Ethernet` (RoCE) or `InfiniBand`. */
  linkLayerName: string;
}

/** A GID table entry usable for RoCEv2 over IPv4. */
export interface RoceGid {
  /** Its index in the port's GID table. */
  index: number;
  /** The 16 bytes. */
  gid: Uint8Array;
  /** The IPv4 address inside the GID. */
  address: string;
}

/**
 * An open device (`struct ibv_context`). The inline verbs' function pointers are read
 * from `ops` once, here.
 *
 * @example
 * ```ts ignore
 * using ctx = Context.open("rxea");
 * console.log(ctx.queryPort(1).stateName, ctx.roceV2Gid(1)?.address);
 * ```
 */
export class Context extends Resource {
  readonly #ptr: ContextPtr;
  /** The device name. */
  readonly name: string;
  /** `ops.post_send`, `ops.post_recv`, `ops.poll_cq`, `ops.req_notify_cq`. */
  readonly ops: {
    postSend: Deno.PointerObject;
    postRecv: Deno.PointerObject;
    pollCq: Deno.PointerObject;
    reqNotifyCq: Deno.PointerObject;
  };
  /** For messages. */
  readonly label: string;

  private constructor(ptr: ContextPtr, name: string) {
    super([]);
    this.#ptr = ptr;
    this.name = name;
    this.label = `context ${name}`;
    const fn = (path: Parameters<typeof ibvContext.field>[0]) => {
      const value = ibvContext.field(path).readPointer(ptr);
      if (!value) throw new Error(`${name}: ibv_context.${path} is NULL`);
      return value;
    };
    try {
      this.ops = {
        postSend: fn("ops.post_send"),
        postRecv: fn("ops.post_recv"),
        pollCq: fn("ops.poll_cq"),
        reqNotifyCq: fn("ops.req_notify_cq"),
      };
    } catch (error) {
      throw closeAfter(this, error); // the device is open: close it again
    }
  }

  /** Opens device `name`; the error lists the devices that exist. */
  static open(name: string): Context {
    return withDeviceList((devices) => {
      const device = devices.find((d) => d.name === name);
      if (!device) {
        const here = devices.length > 0
          ? `devices here: ${devices.map((d) => d.name).join(", ")}`
          : "no RDMA device at all (load rdma_rxe and run scripts/softroce-pair.sh up, or use the lab VM)";
        throw new Error(`No RDMA device '${name}': ${here}`);
      }
      const ptr = callPointer(
        "ibv_open_device",
        () => `device ${name}`,
        () => verbs().ibv_open_device(device.ptr),
      );
      return new Context(brandPointer<"ibv_context">(ptr), name);
    });
  }

  /** The raw handle, for the layer below. */
  get ptr(): ContextPtr {
    this.assertOpen();
    return this.#ptr;
  }

  /** `ibv_query_device(3)`. */
  queryDevice(): DeviceAttributes {
    const buf = new Uint8Array(new ArrayBuffer(ibvDeviceAttr.size));
    callInt("ibv_query_device", () => this.name, () => verbs().ibv_query_device(this.ptr, buf));
    const view = new DataView(buf.buffer);
    const get = (path: Parameters<typeof ibvDeviceAttr.field>[0]) =>
      ibvDeviceAttr.field(path).get(view);
    const fw = buf.subarray(
      ibvDeviceAttr.offsetOf("fw_ver"),
      ibvDeviceAttr.offsetOf("fw_ver") + 64,
    );
    return {
      firmware: new TextDecoder().decode(fw.subarray(0, Math.max(0, fw.indexOf(0)))),
      nodeGuid: ibvDeviceAttr.field("node_guid").getBig(view),
      maxMrSize: Number(ibvDeviceAttr.field("max_mr_size").getBig(view)),
      maxQp: get("max_qp"),
      maxQpWr: get("max_qp_wr"),
      maxSge: get("max_sge"),
      maxCq: get("max_cq"),
      maxCqe: get("max_cqe"),
      maxMr: get("max_mr"),
      maxQpRdAtom: get("max_qp_rd_atom"),
    };
  }

  /** `ibv_query_port(3)` for port `port` (1-based). */
  queryPort(port = 1): PortAttributes {
    const buf = new Uint8Array(new ArrayBuffer(ibvPortAttr.size));
    callInt(
      "ibv_query_port",
      () => `${this.name} port ${port}`,
      () => verbs().ibv_query_port(this.ptr, port, buf),
    );
    const view = new DataView(buf.buffer);
    const state = ibvPortAttr.field("state").get(view);
    const linkLayer = ibvPortAttr.field("link_layer").get(view);
    return {
      state,
      stateName: nameOf(IBV_PORT_STATE, state, "IBV_PORT_"),
      maxMtu: ibvPortAttr.field("max_mtu").get(view),
      activeMtu: ibvPortAttr.field("active_mtu").get(view),
      gidTableLength: ibvPortAttr.field("gid_tbl_len").get(view),
      linkLayer,
      linkLayerName: linkLayer === IBV_LINK_LAYER.IBV_LINK_LAYER_ETHERNET
        ? "Ethernet"
        : "InfiniBand",
    };
  }

  /** `ibv_query_gid(3)`: the 16-byte GID at `index` of `port`. */
  queryGid(port: number, index: number): Uint8Array {
    const gid = new Uint8Array(new ArrayBuffer(16));
    callInt(
      "ibv_query_gid",
      () => `${this.name} port ${port} index ${index}`,
      () => verbs().ibv_query_gid(this.ptr, port, index, gid),
    );
    return gid;
  }

  /**
   * The port's RoCEv2 GID for an IPv4 address (GID type from sysfs, as `show_gids`
   * prints it), or the one for `address` when given; `undefined` when there is none (the
   * netdev has no IPv4 address).
   */
  roceV2Gid(port = 1, address?: string): RoceGid | undefined {
    const length = Math.min(this.queryPort(port).gidTableLength, gidIndexMax);
    for (let index = 0; index < length; index++) {
      let gid: Uint8Array;
      try {
        gid = this.queryGid(port, index);
      } catch (error) {
        if (isEmptyGidSlot(error)) continue;
        throw error;
      }
      const ipv4 = ipv4OfGid(gid);
      if (!ipv4 || (address && ipv4 !== address)) continue;
      const type = gidType(this.name, port, index);
      if (type === undefined || type === "RoCE v2") return { index, gid, address: ipv4 };
    }
    return undefined;
  }

  /** Every non-zero GID of a port with its index and type, for `doctor`. */
  listGids(port = 1): { index: number; gid: string; type: string }[] {
    const out = [];
    const length = Math.min(this.queryPort(port).gidTableLength, gidIndexMax);
    for (let index = 0; index < length; index++) {
      let gid: Uint8Array;
      try {
        gid = this.queryGid(port, index);
      } catch (error) {
        if (isEmptyGidSlot(error)) continue;
        throw error;
      }
      if (gid.every((b) => b === 0)) continue;
      out.push({ index, gid: formatGid(gid), type: gidType(this.name, port, index) ?? "?" });
    }
    return out;
  }

  /** Calls the destroy verb (see {@linkcode Resource.close}). */
  protected destroy(): void {
    callDestroy("ibv_close_device", () => this.name, () => verbs().ibv_close_device(this.#ptr));
  }
}

/** The name of `value` in a constants object, without its prefix. */
export function nameOf(table: Record<string, number>, value: number, prefix: string): string {
  const key = Object.keys(table).find((k) => table[k] === value);
  return key ? key.slice(prefix.length) : String(value);
}

/** A NUL-terminated C string in a fresh ArrayBuffer. */
export function cString(text: string): Uint8Array {
  const bytes = new Uint8Array(new ArrayBuffer(text.length * 3 + 1));
  const { written } = encoder.encodeInto(text, bytes);
  return bytes.subarray(0, written + 1);
}

/** An unpopulated GID table entry: the only `ibv_query_gid` failure a scan skips. */
function isEmptyGidSlot(error: unknown): boolean {
  return error instanceof VerbsError &&
    ["ENODATA", "EINVAL", "ENOENT"].includes(error.errnoName);
}
