/**
 * Branded pointer types: a CQ passed where a QP is expected fails `deno check`.
 *
 * @module
 */

/** The brand's key: a type-level symbol that exists in no running program. */
export declare const brand: unique symbol;

/** A pointer to a C object of kind `K`. */
export type Handle<K extends string> = Deno.PointerObject & { readonly [brand]: K };

/** `struct ibv_device *`. */
export type DevicePtr = Handle<"ibv_device">;
/** `struct ibv_context *`. */
export type ContextPtr = Handle<"ibv_context">;
/** `struct ibv_pd *`. */
export type PdPtr = Handle<"ibv_pd">;
/** `struct ibv_mr *`. */
export type MrPtr = Handle<"ibv_mr">;
/** `struct ibv_cq *`. */
export type CqPtr = Handle<"ibv_cq">;
/** `struct ibv_comp_channel *`. */
export type ChannelPtr = Handle<"ibv_comp_channel">;
/** `struct ibv_qp *`. */
export type QpPtr = Handle<"ibv_qp">;

/** Brands a non-null pointer returned by a verb. */
export function brandPointer<K extends string>(ptr: Deno.PointerObject): Handle<K> {
  return ptr as Handle<K>;
}

/** A pointer's address as a number (user-space addresses are below 2^47). */
export function addressOf(ptr: Deno.PointerValue): number {
  return Number(Deno.UnsafePointer.value(ptr));
}
