/**
 * The exported libibverbs verbs this project calls, loaded once through `Deno.dlopen`.
 * The inline verbs (`ibv_post_send`, `ibv_post_recv`, `ibv_poll_cq`, `ibv_req_notify_cq`)
 * are not here: they are function pointers in `ibv_context.ops`, called through
 * `ffi/prepared_call.ts`. See ibv_get_device_list(3), ibv_open_device(3), ibv_reg_mr(3),
 * ibv_create_cq(3), ibv_create_qp(3), ibv_modify_qp(3), ibv_get_cq_event(3).
 *
 * @module
 */

const symbols = {
  ibv_get_device_list: { parameters: ["buffer"], result: "pointer" }, // struct ibv_device **(int *num_devices)
  ibv_free_device_list: { parameters: ["pointer"], result: "void" }, // void (struct ibv_device **list)
  ibv_get_device_name: { parameters: ["pointer"], result: "pointer" }, // const char *(struct ibv_device *device)
  ibv_open_device: { parameters: ["pointer"], result: "pointer" }, // struct ibv_context *(struct ibv_device *device)
  ibv_close_device: { parameters: ["pointer"], result: "i32" }, // int (struct ibv_context *context)
  ibv_query_device: {
    parameters: [
      "pointer", // struct ibv_context *context
      "buffer", // struct ibv_device_attr *device_attr
    ],
    result: "i32",
  },
  ibv_query_port: {
    parameters: [
      "pointer", // struct ibv_context *context
      "u8", // uint8_t port_num
      "buffer", // struct _compat_ibv_port_attr *port_attr (a prefix of ibv_port_attr)
    ],
    result: "i32",
  },
  ibv_query_gid: {
    parameters: [
      "pointer", // struct ibv_context *context
      "u8", // uint8_t port_num
      "i32", // int index
      "buffer", // union ibv_gid *gid
    ],
    result: "i32",
  },
  ibv_alloc_pd: { parameters: ["pointer"], result: "pointer" }, // struct ibv_pd *(struct ibv_context *context)
  ibv_dealloc_pd: { parameters: ["pointer"], result: "i32" }, // int (struct ibv_pd *pd)
  ibv_reg_mr: {
    parameters: [
      "pointer", // struct ibv_pd *pd
      "pointer", // void *addr
      "usize", // size_t length
      "i32", // int access
    ],
    result: "pointer", // struct ibv_mr *
  },
  ibv_dereg_mr: { parameters: ["pointer"], result: "i32" }, // int (struct ibv_mr *mr)
  ibv_create_comp_channel: { parameters: ["pointer"], result: "pointer" }, // struct ibv_comp_channel *(struct ibv_context *)
  ibv_destroy_comp_channel: { parameters: ["pointer"], result: "i32" }, // int (struct ibv_comp_channel *channel)
  ibv_create_cq: {
    parameters: [
      "pointer", // struct ibv_context *context
      "i32", // int cqe
      "pointer", // void *cq_context
      "pointer", // struct ibv_comp_channel *channel
      "i32", // int comp_vector
    ],
    result: "pointer", // struct ibv_cq *
  },
  ibv_destroy_cq: { parameters: ["pointer"], result: "i32" }, // int (struct ibv_cq *cq)
  ibv_get_cq_event: {
    parameters: [
      "pointer", // struct ibv_comp_channel *channel
      "buffer", // struct ibv_cq **cq
      "buffer", // void **cq_context
    ],
    result: "i32",
    // Synchronous on purpose: it is only called once poll(2) (declared nonblocking in
    // ffi/libc.ts) saw the channel's O_NONBLOCK fd readable, so it never blocks, errno is
    // read on this thread, and close() is never stuck behind a thread blocked in read().
  },
  ibv_ack_cq_events: { parameters: ["pointer", "u32"], result: "void" }, // void (struct ibv_cq *cq, unsigned int nevents)
  ibv_create_qp: {
    parameters: [
      "pointer", // struct ibv_pd *pd
      "buffer", // struct ibv_qp_init_attr *qp_init_attr
    ],
    result: "pointer", // struct ibv_qp *
  },
  ibv_modify_qp: {
    parameters: [
      "pointer", // struct ibv_qp *qp
      "buffer", // struct ibv_qp_attr *attr
      "i32", // int attr_mask
    ],
    result: "i32",
  },
  ibv_query_qp: {
    parameters: [
      "pointer", // struct ibv_qp *qp
      "buffer", // struct ibv_qp_attr *attr
      "i32", // int attr_mask
      "buffer", // struct ibv_qp_init_attr *init_attr
    ],
    result: "i32",
  },
  ibv_destroy_qp: { parameters: ["pointer"], result: "i32" }, // int (struct ibv_qp *qp)
  ibv_wc_status_str: { parameters: ["u32"], result: "pointer" }, // const char *(enum ibv_wc_status status)
} as const satisfies Deno.ForeignLibraryInterface;

/** The symbol table's type, for the safe layer. */
export type VerbsSymbols = Deno.DynamicLibrary<typeof symbols>["symbols"];

const libraryPath = Deno.env.get("RRL_LIBIBVERBS") ?? "libibverbs.so.1";

function load(): Deno.DynamicLibrary<typeof symbols> {
  try {
    return Deno.dlopen(libraryPath, symbols);
  } catch (error) {
    throw new Error(
      `${libraryPath} not found or incomplete: install rdma-core / libibverbs1 ` +
        `(apt-get install libibverbs1 ibverbs-providers), or point RRL_LIBIBVERBS at it ` +
        `(${(error as Error).message})`,
    );
  }
}

let library: Deno.DynamicLibrary<typeof symbols> | undefined;

/** libibverbs' symbols, loaded on first use (so host-side tools run without it). */
export function verbs(): VerbsSymbols {
  library ??= load();
  return library.symbols;
}
