/**
 * libibverbs enums and flag sets from rdma-core 44's `<infiniband/verbs.h>`, as plain
 * `as const` objects whose keys are the C names, so `tests/unit/abi_test.ts` can print each
 * one with gcc and compare. One object per C enum, named after it.
 *
 * @example
 * ```ts
 * import { IBV_ACCESS_FLAGS } from "./verbs_constants.ts";
 *
 * const access = IBV_ACCESS_FLAGS.IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_FLAGS.IBV_ACCESS_REMOTE_WRITE;
 * ```
 *
 * @module
 */

/** `enum ibv_access_flags`: memory region and QP access rights (`ibv_reg_mr(3)`). */
export const IBV_ACCESS_FLAGS = {
  IBV_ACCESS_LOCAL_WRITE: 1 << 0,
  IBV_ACCESS_REMOTE_WRITE: 1 << 1,
  IBV_ACCESS_REMOTE_READ: 1 << 2,
  IBV_ACCESS_REMOTE_ATOMIC: 1 << 3,
  IBV_ACCESS_MW_BIND: 1 << 4,
  IBV_ACCESS_ZERO_BASED: 1 << 5,
  IBV_ACCESS_ON_DEMAND: 1 << 6,
  IBV_ACCESS_HUGETLB: 1 << 7,
  IBV_ACCESS_RELAXED_ORDERING: 1 << 20,
} as const;

/** `enum ibv_qp_attr_mask`: which `ibv_qp_attr` members `ibv_modify_qp(3)` applies. */
export const IBV_QP_ATTR_MASK = {
  IBV_QP_STATE: 1 << 0,
  IBV_QP_CUR_STATE: 1 << 1,
  IBV_QP_EN_SQD_ASYNC_NOTIFY: 1 << 2,
  IBV_QP_ACCESS_FLAGS: 1 << 3,
  IBV_QP_PKEY_INDEX: 1 << 4,
  IBV_QP_PORT: 1 << 5,
  IBV_QP_QKEY: 1 << 6,
  IBV_QP_AV: 1 << 7,
  IBV_QP_PATH_MTU: 1 << 8,
  IBV_QP_TIMEOUT: 1 << 9,
  IBV_QP_RETRY_CNT: 1 << 10,
  IBV_QP_RNR_RETRY: 1 << 11,
  IBV_QP_RQ_PSN: 1 << 12,
  IBV_QP_MAX_QP_RD_ATOMIC: 1 << 13,
  IBV_QP_ALT_PATH: 1 << 14,
  IBV_QP_MIN_RNR_TIMER: 1 << 15,
  IBV_QP_SQ_PSN: 1 << 16,
  IBV_QP_MAX_DEST_RD_ATOMIC: 1 << 17,
  IBV_QP_PATH_MIG_STATE: 1 << 18,
  IBV_QP_CAP: 1 << 19,
  IBV_QP_DEST_QPN: 1 << 20,
  IBV_QP_RATE_LIMIT: 1 << 25,
} as const;

/** `enum ibv_qp_state`: the QP state machine (`ibv_modify_qp(3)`). */
export const IBV_QP_STATE = {
  IBV_QPS_RESET: 0,
  IBV_QPS_INIT: 1,
  IBV_QPS_RTR: 2,
  IBV_QPS_RTS: 3,
  IBV_QPS_SQD: 4,
  IBV_QPS_SQE: 5,
  IBV_QPS_ERR: 6,
  IBV_QPS_UNKNOWN: 7,
} as const;

/** `enum ibv_qp_type`: transport service of a QP (`ibv_create_qp(3)`). */
export const IBV_QP_TYPE = {
  IBV_QPT_RC: 2,
  IBV_QPT_UC: 3,
  IBV_QPT_UD: 4,
  IBV_QPT_RAW_PACKET: 8,
  IBV_QPT_XRC_SEND: 9,
  IBV_QPT_XRC_RECV: 10,
  IBV_QPT_DRIVER: 0xff,
} as const;

/** `enum ibv_mig_state`: path migration state in `ibv_qp_attr.path_mig_state`. */
export const IBV_MIG_STATE = {
  IBV_MIG_MIGRATED: 0,
  IBV_MIG_REARM: 1,
  IBV_MIG_ARMED: 2,
} as const;

/** `enum ibv_mtu`: path MTU codes (not bytes: `IBV_MTU_4096` is 5). */
export const IBV_MTU = {
  IBV_MTU_256: 1,
  IBV_MTU_512: 2,
  IBV_MTU_1024: 3,
  IBV_MTU_2048: 4,
  IBV_MTU_4096: 5,
} as const;

/** `enum ibv_wr_opcode`: operation of a send work request (`ibv_post_send(3)`). */
export const IBV_WR_OPCODE = {
  IBV_WR_RDMA_WRITE: 0,
  IBV_WR_RDMA_WRITE_WITH_IMM: 1,
  IBV_WR_SEND: 2,
  IBV_WR_SEND_WITH_IMM: 3,
  IBV_WR_RDMA_READ: 4,
  IBV_WR_ATOMIC_CMP_AND_SWP: 5,
  IBV_WR_ATOMIC_FETCH_AND_ADD: 6,
  IBV_WR_LOCAL_INV: 7,
  IBV_WR_BIND_MW: 8,
  IBV_WR_SEND_WITH_INV: 9,
  IBV_WR_TSO: 10,
  IBV_WR_DRIVER1: 11,
  IBV_WR_ATOMIC_WRITE: 15,
} as const;

/** `enum ibv_send_flags`: `ibv_send_wr.send_flags` (`ibv_post_send(3)`). */
export const IBV_SEND_FLAGS = {
  IBV_SEND_FENCE: 1 << 0,
  IBV_SEND_SIGNALED: 1 << 1,
  IBV_SEND_SOLICITED: 1 << 2,
  IBV_SEND_INLINE: 1 << 3,
  IBV_SEND_IP_CSUM: 1 << 4,
} as const;

/** `enum ibv_wc_status`: outcome of a work completion (`ibv_poll_cq(3)`). */
export const IBV_WC_STATUS = {
  IBV_WC_SUCCESS: 0,
  IBV_WC_LOC_LEN_ERR: 1,
  IBV_WC_LOC_QP_OP_ERR: 2,
  IBV_WC_LOC_EEC_OP_ERR: 3,
  IBV_WC_LOC_PROT_ERR: 4,
  IBV_WC_WR_FLUSH_ERR: 5,
  IBV_WC_MW_BIND_ERR: 6,
  IBV_WC_BAD_RESP_ERR: 7,
  IBV_WC_LOC_ACCESS_ERR: 8,
  IBV_WC_REM_INV_REQ_ERR: 9,
  IBV_WC_REM_ACCESS_ERR: 10,
  IBV_WC_REM_OP_ERR: 11,
  IBV_WC_RETRY_EXC_ERR: 12,
  IBV_WC_RNR_RETRY_EXC_ERR: 13,
  IBV_WC_LOC_RDD_VIOL_ERR: 14,
  IBV_WC_REM_INV_RD_REQ_ERR: 15,
  IBV_WC_REM_ABORT_ERR: 16,
  IBV_WC_INV_EECN_ERR: 17,
  IBV_WC_INV_EEC_STATE_ERR: 18,
  IBV_WC_FATAL_ERR: 19,
  IBV_WC_RESP_TIMEOUT_ERR: 20,
  IBV_WC_GENERAL_ERR: 21,
  IBV_WC_TM_ERR: 22,
  IBV_WC_TM_RNDV_INCOMPLETE: 23,
} as const;

/**
 * `enum ibv_wc_opcode`: what completed. Receive opcodes have bit 7 set, so
 * `(opcode & IBV_WC_RECV) !== 0` tells a receive from a send-side completion.
 */
export const IBV_WC_OPCODE = {
  IBV_WC_SEND: 0,
  IBV_WC_RDMA_WRITE: 1,
  IBV_WC_RDMA_READ: 2,
  IBV_WC_COMP_SWAP: 3,
  IBV_WC_FETCH_ADD: 4,
  IBV_WC_BIND_MW: 5,
  IBV_WC_LOCAL_INV: 6,
  IBV_WC_TSO: 7,
  IBV_WC_ATOMIC_WRITE: 9,
  IBV_WC_RECV: 1 << 7,
  IBV_WC_RECV_RDMA_WITH_IMM: 129,
  IBV_WC_TM_ADD: 130,
  IBV_WC_TM_DEL: 131,
  IBV_WC_TM_SYNC: 132,
  IBV_WC_TM_RECV: 133,
  IBV_WC_TM_NO_TAG: 134,
  IBV_WC_DRIVER1: 135,
  IBV_WC_DRIVER2: 136,
  IBV_WC_DRIVER3: 137,
} as const;

/** `enum ibv_wc_flags`: `ibv_wc.wc_flags`; `IBV_WC_WITH_IMM` says `imm_data` is valid. */
export const IBV_WC_FLAGS = {
  IBV_WC_GRH: 1 << 0,
  IBV_WC_WITH_IMM: 1 << 1,
  IBV_WC_IP_CSUM_OK: 1 << 2,
  IBV_WC_WITH_INV: 1 << 3,
  IBV_WC_TM_SYNC_REQ: 1 << 4,
  IBV_WC_TM_MATCH: 1 << 5,
  IBV_WC_TM_DATA_VALID: 1 << 6,
} as const;

/** `enum ibv_port_state`: `ibv_port_attr.state` (`ibv_query_port(3)`). */
export const IBV_PORT_STATE = {
  IBV_PORT_NOP: 0,
  IBV_PORT_DOWN: 1,
  IBV_PORT_INIT: 2,
  IBV_PORT_ARMED: 3,
  IBV_PORT_ACTIVE: 4,
  IBV_PORT_ACTIVE_DEFER: 5,
} as const;

/** The anonymous enum of `ibv_port_attr.link_layer`: InfiniBand or Ethernet (RoCE). */
export const IBV_LINK_LAYER = {
  IBV_LINK_LAYER_UNSPECIFIED: 0,
  IBV_LINK_LAYER_INFINIBAND: 1,
  IBV_LINK_LAYER_ETHERNET: 2,
} as const;

/** Every constant group above, for the ABI test and for diagnostics. */
export const verbsConstants = {
  IBV_ACCESS_FLAGS,
  IBV_QP_ATTR_MASK,
  IBV_QP_STATE,
  IBV_QP_TYPE,
  IBV_MIG_STATE,
  IBV_MTU,
  IBV_WR_OPCODE,
  IBV_SEND_FLAGS,
  IBV_WC_STATUS,
  IBV_WC_OPCODE,
  IBV_WC_FLAGS,
  IBV_PORT_STATE,
  IBV_LINK_LAYER,
} as const;
