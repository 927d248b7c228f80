/**
 * Layouts of the libibverbs structs this project reads or writes, transcribed from
 * rdma-core 44's `<infiniband/verbs.h>` with the C member names, so that a path such as
 * `"wr.rdma.remote_addr"` means what `offsetof(struct ibv_send_wr, wr.rdma.remote_addr)`
 * means. `tests/unit/abi_test.ts` proves every size, alignment and offset against the
 * header with gcc.
 *
 * C types map as: `int` → i32, `unsigned int`/`uint32_t`/`__be32` → u32, `size_t`/
 * `uint64_t`/`__be64` → u64, every pointer (data or function) → ptr, enums → u32.
 *
 * @example
 * ```ts
 * import { ibvContext } from "./verbs_types.ts";
 *
 * const postSend = ibvContext.field("ops.post_send"); // qp->context->ops.post_send
 * postSend.offset; // 208
 * ```
 *
 * @module
 */

import { anonymous, array, enumOf, opaque, struct, union } from "./layout.ts";

/** Fields `[name, "ptr"]` for a run of function-pointer members, keeping their names typed. */
function functionPointers<const N extends readonly string[]>(
  names: N,
): { readonly [K in keyof N]: readonly [N[K], "ptr"] } {
  return names.map((name) => [name, "ptr"] as const) as {
    readonly [K in keyof N]: readonly [N[K], "ptr"];
  };
}

/** `pthread_mutex_t` on Linux x86-64 glibc: 40 bytes, 8-aligned. */
const pthreadMutex = opaque(40, 8, "pthread_mutex_t");
/** `pthread_cond_t` on Linux x86-64 glibc: 48 bytes, 8-aligned. */
const pthreadCond = opaque(48, 8, "pthread_cond_t");

/** `struct ibv_device_attr`, filled by `ibv_query_device(3)`. */
export const ibvDeviceAttr = struct("ibv_device_attr", [
  ["fw_ver", array("u8", 64)],
  ["node_guid", "u64"], // __be64
  ["sys_image_guid", "u64"], // __be64
  ["max_mr_size", "u64"],
  ["page_size_cap", "u64"],
  ["vendor_id", "u32"],
  ["vendor_part_id", "u32"],
  ["hw_ver", "u32"],
  ["max_qp", "i32"],
  ["max_qp_wr", "i32"],
  ["device_cap_flags", "u32"],
  ["max_sge", "i32"],
  ["max_sge_rd", "i32"],
  ["max_cq", "i32"],
  ["max_cqe", "i32"],
  ["max_mr", "i32"],
  ["max_pd", "i32"],
  ["max_qp_rd_atom", "i32"],
  ["max_ee_rd_atom", "i32"],
  ["max_res_rd_atom", "i32"],
  ["max_qp_init_rd_atom", "i32"],
  ["max_ee_init_rd_atom", "i32"],
  ["atomic_cap", enumOf("ibv_atomic_cap")],
  ["max_ee", "i32"],
  ["max_rdd", "i32"],
  ["max_mw", "i32"],
  ["max_raw_ipv6_qp", "i32"],
  ["max_raw_ethy_qp", "i32"],
  ["max_mcast_grp", "i32"],
  ["max_mcast_qp_attach", "i32"],
  ["max_total_mcast_qp_attach", "i32"],
  ["max_ah", "i32"],
  ["max_fmr", "i32"],
  ["max_map_per_fmr", "i32"],
  ["max_srq", "i32"],
  ["max_srq_wr", "i32"],
  ["max_srq_sge", "i32"],
  ["max_pkeys", "u16"],
  ["local_ca_ack_delay", "u8"],
  ["phys_port_cnt", "u8"],
]);

/** `struct ibv_port_attr`, filled by `ibv_query_port(3)`. */
export const ibvPortAttr = struct("ibv_port_attr", [
  ["state", enumOf("ibv_port_state")],
  ["max_mtu", enumOf("ibv_mtu")],
  ["active_mtu", enumOf("ibv_mtu")],
  ["gid_tbl_len", "i32"],
  ["port_cap_flags", "u32"],
  ["max_msg_sz", "u32"],
  ["bad_pkey_cntr", "u32"],
  ["qkey_viol_cntr", "u32"],
  ["pkey_tbl_len", "u16"],
  ["lid", "u16"],
  ["sm_lid", "u16"],
  ["lmc", "u8"],
  ["max_vl_num", "u8"],
  ["sm_sl", "u8"],
  ["subnet_timeout", "u8"],
  ["init_type_reply", "u8"],
  ["active_width", "u8"],
  ["active_speed", "u8"],
  ["phys_state", "u8"],
  ["link_layer", "u8"],
  ["flags", "u8"],
  ["port_cap_flags2", "u16"],
]);

/** `union ibv_gid`: 16 raw bytes, or two big-endian 64-bit halves. See `ibv_query_gid(3)`. */
export const ibvGid = union("ibv_gid", [
  ["raw", array("u8", 16)],
  ["global", struct("ibv_gid.global", [["subnet_prefix", "u64"], ["interface_id", "u64"]])],
]);

/**
 * `struct ibv_context_ops`. rdma-core keeps the old slots as `_compat_*` placeholders so that
 * the inline verbs (`post_send`, `post_recv`, `poll_cq`, `req_notify_cq`) stay where
 * providers compiled against older headers put them.
 */
export const ibvContextOps = struct(
  "ibv_context_ops",
  functionPointers([
    "_compat_query_device",
    "_compat_query_port",
    "_compat_alloc_pd",
    "_compat_dealloc_pd",
    "_compat_reg_mr",
    "_compat_rereg_mr",
    "_compat_dereg_mr",
    "alloc_mw",
    "bind_mw",
    "dealloc_mw",
    "_compat_create_cq",
    "poll_cq",
    "req_notify_cq",
    "_compat_cq_event",
    "_compat_resize_cq",
    "_compat_destroy_cq",
    "_compat_create_srq",
    "_compat_modify_srq",
    "_compat_query_srq",
    "_compat_destroy_srq",
    "post_srq_recv",
    "_compat_create_qp",
    "_compat_query_qp",
    "_compat_modify_qp",
    "_compat_destroy_qp",
    "post_send",
    "post_recv",
    "_compat_create_ah",
    "_compat_destroy_ah",
    "_compat_attach_mcast",
    "_compat_detach_mcast",
    "_compat_async_event",
  ]),
);

/** `struct ibv_context`, returned by `ibv_open_device(3)`; `ops` holds the inline verbs. */
export const ibvContext = struct("ibv_context", [
  ["device", "ptr"],
  ["ops", ibvContextOps],
  ["cmd_fd", "i32"],
  ["async_fd", "i32"],
  ["num_comp_vectors", "i32"],
  ["mutex", pthreadMutex],
  ["abi_compat", "ptr"],
]);

/** `struct ibv_comp_channel`, from `ibv_create_comp_channel(3)`. */
export const ibvCompChannel = struct("ibv_comp_channel", [
  ["context", "ptr"],
  ["fd", "i32"],
  ["refcnt", "i32"],
]);

/** `struct ibv_pd`, from `ibv_alloc_pd(3)`. */
export const ibvPd = struct("ibv_pd", [
  ["context", "ptr"],
  ["handle", "u32"],
]);

/** `struct ibv_mr`, from `ibv_reg_mr(3)`; `lkey` and `rkey` go into SGEs and RDMA WRs. */
export const ibvMr = struct("ibv_mr", [
  ["context", "ptr"],
  ["pd", "ptr"],
  ["addr", "ptr"],
  ["length", "u64"], // size_t
  ["handle", "u32"],
  ["lkey", "u32"],
  ["rkey", "u32"],
]);

/** `struct ibv_cq`, from `ibv_create_cq(3)`. */
export const ibvCq = struct("ibv_cq", [
  ["context", "ptr"],
  ["channel", "ptr"],
  ["cq_context", "ptr"],
  ["handle", "u32"],
  ["cqe", "i32"],
  ["mutex", pthreadMutex],
  ["cond", pthreadCond],
  ["comp_events_completed", "u32"],
  ["async_events_completed", "u32"],
]);

/** `struct ibv_qp`, from `ibv_create_qp(3)`. */
export const ibvQp = struct("ibv_qp", [
  ["context", "ptr"],
  ["qp_context", "ptr"],
  ["pd", "ptr"],
  ["send_cq", "ptr"],
  ["recv_cq", "ptr"],
  ["srq", "ptr"],
  ["handle", "u32"],
  ["qp_num", "u32"],
  ["state", enumOf("ibv_qp_state")],
  ["qp_type", enumOf("ibv_qp_type")],
  ["mutex", pthreadMutex],
  ["cond", pthreadCond],
  ["events_completed", "u32"],
]);

/** `struct ibv_qp_cap`, the queue sizes inside `ibv_qp_init_attr` and `ibv_qp_attr`. */
export const ibvQpCap = struct("ibv_qp_cap", [
  ["max_send_wr", "u32"],
  ["max_recv_wr", "u32"],
  ["max_send_sge", "u32"],
  ["max_recv_sge", "u32"],
  ["max_inline_data", "u32"],
]);

/** `struct ibv_qp_init_attr`, the input of `ibv_create_qp(3)`. */
export const ibvQpInitAttr = struct("ibv_qp_init_attr", [
  ["qp_context", "ptr"],
  ["send_cq", "ptr"],
  ["recv_cq", "ptr"],
  ["srq", "ptr"],
  ["cap", ibvQpCap],
  ["qp_type", enumOf("ibv_qp_type")],
  ["sq_sig_all", "i32"],
]);

/** `struct ibv_global_route`, the GRH part of an address vector. */
export const ibvGlobalRoute = struct("ibv_global_route", [
  ["dgid", ibvGid],
  ["flow_label", "u32"],
  ["sgid_index", "u8"],
  ["hop_limit", "u8"],
  ["traffic_class", "u8"],
]);

/** `struct ibv_ah_attr`, an address vector (`ibv_create_ah(3)`, `ibv_qp_attr.ah_attr`). */
export const ibvAhAttr = struct("ibv_ah_attr", [
  ["grh", ibvGlobalRoute],
  ["dlid", "u16"],
  ["sl", "u8"],
  ["src_path_bits", "u8"],
  ["static_rate", "u8"],
  ["is_global", "u8"],
  ["port_num", "u8"],
]);

/** `struct ibv_qp_attr`, the input of `ibv_modify_qp(3)` and output of `ibv_query_qp(3)`. */
export const ibvQpAttr = struct("ibv_qp_attr", [
  ["qp_state", enumOf("ibv_qp_state")],
  ["cur_qp_state", enumOf("ibv_qp_state")],
  ["path_mtu", enumOf("ibv_mtu")],
  ["path_mig_state", enumOf("ibv_mig_state")],
  ["qkey", "u32"],
  ["rq_psn", "u32"],
  ["sq_psn", "u32"],
  ["dest_qp_num", "u32"],
  ["qp_access_flags", "u32"],
  ["cap", ibvQpCap],
  ["ah_attr", ibvAhAttr],
  ["alt_ah_attr", ibvAhAttr],
  ["pkey_index", "u16"],
  ["alt_pkey_index", "u16"],
  ["en_sqd_async_notify", "u8"],
  ["sq_draining", "u8"],
  ["max_rd_atomic", "u8"],
  ["max_dest_rd_atomic", "u8"],
  ["min_rnr_timer", "u8"],
  ["port_num", "u8"],
  ["timeout", "u8"],
  ["retry_cnt", "u8"],
  ["rnr_retry", "u8"],
  ["alt_port_num", "u8"],
  ["alt_timeout", "u8"],
  ["rate_limit", "u32"],
]);

/** `struct ibv_sge`, one scatter/gather element of a work request. */
export const ibvSge = struct("ibv_sge", [
  ["addr", "u64"],
  ["length", "u32"],
  ["lkey", "u32"],
]);

/** `struct ibv_mw_bind_info`, inside the `bind_mw` member of `ibv_send_wr`. */
export const ibvMwBindInfo = struct("ibv_mw_bind_info", [
  ["mr", "ptr"],
  ["addr", "u64"],
  ["length", "u64"],
  ["mw_access_flags", "u32"],
]);

/** `struct ibv_send_wr`, a send-queue work request for `ibv_post_send(3)`. */
export const ibvSendWr = struct("ibv_send_wr", [
  ["wr_id", "u64"],
  ["next", "ptr"],
  ["sg_list", "ptr"],
  ["num_sge", "i32"],
  ["opcode", enumOf("ibv_wr_opcode")],
  ["send_flags", "u32"],
  anonymous(union("ibv_send_wr.imm", [["imm_data", "u32"], ["invalidate_rkey", "u32"]])),
  [
    "wr",
    union("ibv_send_wr.wr", [
      ["rdma", struct("ibv_send_wr.wr.rdma", [["remote_addr", "u64"], ["rkey", "u32"]])],
      [
        "atomic",
        struct("ibv_send_wr.wr.atomic", [
          ["remote_addr", "u64"],
          ["compare_add", "u64"],
          ["swap", "u64"],
          ["rkey", "u32"],
        ]),
      ],
      [
        "ud",
        struct("ibv_send_wr.wr.ud", [
          ["ah", "ptr"],
          ["remote_qpn", "u32"],
          ["remote_qkey", "u32"],
        ]),
      ],
    ]),
  ],
  [
    "qp_type",
    union("ibv_send_wr.qp_type", [
      ["xrc", struct("ibv_send_wr.qp_type.xrc", [["remote_srqn", "u32"]])],
    ]),
  ],
  anonymous(union("ibv_send_wr.mw_tso", [
    [
      "bind_mw",
      struct("ibv_send_wr.bind_mw", [
        ["mw", "ptr"],
        ["rkey", "u32"],
        ["bind_info", ibvMwBindInfo],
      ]),
    ],
    ["tso", struct("ibv_send_wr.tso", [["hdr", "ptr"], ["hdr_sz", "u16"], ["mss", "u16"]])],
  ])),
]);

/** `struct ibv_recv_wr`, a receive-queue work request for `ibv_post_recv(3)`. */
export const ibvRecvWr = struct("ibv_recv_wr", [
  ["wr_id", "u64"],
  ["next", "ptr"],
  ["sg_list", "ptr"],
  ["num_sge", "i32"],
]);

/** `struct ibv_wc`, one work completion filled by `ibv_poll_cq(3)`. */
export const ibvWc = struct("ibv_wc", [
  ["wr_id", "u64"],
  ["status", enumOf("ibv_wc_status")],
  ["opcode", enumOf("ibv_wc_opcode")],
  ["vendor_err", "u32"],
  ["byte_len", "u32"],
  anonymous(union("ibv_wc.imm", [["imm_data", "u32"], ["invalidated_rkey", "u32"]])),
  ["qp_num", "u32"],
  ["src_qp", "u32"],
  ["wc_flags", "u32"],
  ["pkey_index", "u16"],
  ["slid", "u16"],
  ["sl", "u8"],
  ["dlid_path_bits", "u8"],
]);

/** Every tagged layout in this module, for the ABI test and for diagnostics. */
export const verbsLayouts = [
  ibvDeviceAttr,
  ibvPortAttr,
  ibvGid,
  ibvContextOps,
  ibvContext,
  ibvCompChannel,
  ibvPd,
  ibvMr,
  ibvCq,
  ibvQp,
  ibvQpCap,
  ibvQpInitAttr,
  ibvGlobalRoute,
  ibvAhAttr,
  ibvQpAttr,
  ibvSge,
  ibvMwBindInfo,
  ibvSendWr,
  ibvRecvWr,
  ibvWc,
] as const;
