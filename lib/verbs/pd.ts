/**
 * Protection domains and memory regions: ibv_alloc_pd(3), ibv_reg_mr(3).
 *
 * @module
 */
import { ERRNO } from "../../ffi/errno.ts";
import { lockedMemoryLimit } from "../../ffi/libc.ts";
import { verbs } from "../../ffi/verbs.ts";
import { callDestroy, callPointer } from "./call.ts";
import type { Context } from "./context.ts";
import { formatBytes } from "./errors.ts";
import { addressOf, brandPointer, type MrPtr, type PdPtr } from "./handles.ts";
import { ibvMr } from "../../ffi/verbs_types.ts";
import { Resource } from "./resource.ts";

/** Memory to register: a buffer (kept alive by the MR) or raw memory with its owner. */
export type MemoryTarget =
  | ArrayBuffer
  | ArrayBufferView<ArrayBuffer>
  | { address: number; length: number; owner: unknown };

/** A protection domain (`struct ibv_pd`). */
export class ProtectionDomain extends Resource {
  readonly #ptr: PdPtr;
  /** The context it belongs to. */
  readonly context: Context;
  /** For messages. */
  readonly label: string;

  /** `ibv_alloc_pd(3)`. */
  constructor(context: Context) {
    const ptr = callPointer(
      "ibv_alloc_pd",
      () => context.name,
      () => verbs().ibv_alloc_pd(context.ptr),
    );
    super([context]);
    this.context = context;
    this.label = `PD on ${context.name}`;
    this.#ptr = brandPointer(ptr);
  }

  /** The raw handle, for the layer below. */
  get ptr(): PdPtr {
    this.assertOpen();
    return this.#ptr;
  }

  /**
   * `ibv_reg_mr(3)`: registers `target` with `access` (`IBV_ACCESS_*` flags). The MR keeps
   * the buffer (or the owner of raw memory) alive until it is closed.
   */
  register(target: MemoryTarget, access: number): MemoryRegion {
    return new MemoryRegion(this, target, access);
  }

  /** Calls the destroy verb (see {@linkcode Resource.close}). */
  protected destroy(): void {
    callDestroy("ibv_dealloc_pd", () => this.label, () => verbs().ibv_dealloc_pd(this.#ptr));
  }
}

function registerFailure(errno: number, length: number, address: number): string {
  const what = `registering ${formatBytes(length)} at 0x${address.toString(16)}`;
  if (errno !== ERRNO.ENOMEM && errno !== ERRNO.EPERM) return what;
  return `${what} (locked memory limit is ${formatBytes(lockedMemoryLimit())}; raise ulimit -l)`;
}

/** A registered memory region (`struct ibv_mr`). */
export class MemoryRegion extends Resource {
  readonly #ptr: MrPtr;
  // Holds the registered memory alive for as long as the registration exists.
  readonly #owner: unknown;
  /** Start address of the registered memory. */
  readonly address: number;
  /** Length in bytes. */
  readonly length: number;
  /** Local key, for SGEs. */
  readonly lkey: number;
  /** Remote key, for the peer's RDMA WRITE/READ. */
  readonly rkey: number;
  /** For messages. */
  readonly label: string;

  /** Use {@linkcode ProtectionDomain.register}. */
  constructor(pd: ProtectionDomain, target: MemoryTarget, access: number) {
    const raw = target instanceof ArrayBuffer || ArrayBuffer.isView(target) ? undefined : target;
    const length = raw ? raw.length : (target as ArrayBuffer).byteLength;
    const pointer = raw
      ? Deno.UnsafePointer.create(BigInt(raw.address))
      : Deno.UnsafePointer.of(target as ArrayBuffer);
    const address = addressOf(pointer);
    const ptr = callPointer(
      "ibv_reg_mr",
      (errno) => registerFailure(errno, length, address),
      () => verbs().ibv_reg_mr(pd.ptr, pointer, BigInt(length), access),
    );
    super([pd]);
    this.#owner = raw ? raw.owner : target;
    this.length = length;
    this.address = address;
    this.label = `MR ${formatBytes(length)} at 0x${address.toString(16)}`;
    this.#ptr = brandPointer(ptr);
    const view = new Deno.UnsafePointerView(ptr);
    this.lkey = view.getUint32(ibvMr.offsetOf("lkey"));
    this.rkey = view.getUint32(ibvMr.offsetOf("rkey"));
  }

  /** The raw handle. */
  get ptr(): MrPtr {
    this.assertOpen();
    return this.#ptr;
  }

  /** The memory's owner (the buffer, or what was passed with raw memory). */
  get owner(): unknown {
    return this.#owner;
  }

  /** Calls the destroy verb (see {@linkcode Resource.close}). */
  protected destroy(): void {
    callDestroy("ibv_dereg_mr", () => this.label, () => verbs().ibv_dereg_mr(this.#ptr));
  }
}
