/**
 * Calls through a C function pointer at the cost of a `Deno.dlopen` symbol.
 *
 * `ibv_post_send`, `ibv_post_recv`, `ibv_poll_cq` and `ibv_req_notify_cq` are static
 * inline in `verbs.h`: they call `context->ops.*`. `Deno.UnsafeFnPointer.call` reaches such
 * a pointer through Deno's generic (slow) FFI op; this module instead calls libffi's own
 * `ffi_call` — an exported symbol, so Deno compiles it as a fast call — with a `ffi_cif`
 * prepared once and argument slots that live in an `ArrayBuffer` owned by the
 * {@linkcode PreparedCall}. Nothing is allocated per call: the caller writes the changing
 * arguments into {@linkcode PreparedCall.args} and calls {@linkcode PreparedCall.call}.
 *
 * Every pointer handed to C points into that `ArrayBuffer` (whose backing store V8 never
 * moves, unlike small typed arrays made with a length) and libffi's return slot is a full
 * `ffi_arg` (8 bytes): a 4-byte slot lets libffi write past it.
 *
 * `RRL_FFI_CALL=fnptr` switches every prepared call to `Deno.UnsafeFnPointer` (the plain
 * fallback); `libffi` is the default when `libffi.so.8` loads.
 *
 * @module
 */

/** Argument and return types the inline verbs need. */
export type CallType = "ptr" | "i32";

const ffiSymbols = {
  ffi_prep_cif: {
    parameters: [
      "pointer", // ffi_cif *cif
      "i32", // ffi_abi abi
      "u32", // unsigned int nargs
      "pointer", // ffi_type *rtype
      "pointer", // ffi_type **atypes
    ],
    result: "i32", // ffi_status
  },
  ffi_call: {
    parameters: [
      "pointer", // ffi_cif *cif
      "pointer", // void (*fn)(void)
      "pointer", // void *rvalue
      "pointer", // void **avalue
    ],
    result: "void",
  },
} as const satisfies Deno.ForeignLibraryInterface;

const dlSymbols = {
  dlopen: { parameters: ["buffer", "i32"], result: "pointer" }, // void *dlopen(const char *file, int mode)
  dlsym: { parameters: ["pointer", "buffer"], result: "pointer" }, // void *dlsym(void *handle, const char *name)
} as const satisfies Deno.ForeignLibraryInterface;

const FFI_UNIX64 = 2; // FFI_DEFAULT_ABI on x86-64 (ffitarget.h)
const RTLD_NOW = 2;
const libffiName = "libffi.so.8";

interface Libffi {
  lib: Deno.DynamicLibrary<typeof ffiSymbols>;
  types: Record<CallType, Deno.PointerObject>;
}

function loadLibffi(): Libffi | undefined {
  try {
    const lib = Deno.dlopen(libffiName, ffiSymbols);
    const dl = Deno.dlopen("libc.so.6", dlSymbols);
    const cstr = (s: string) => new TextEncoder().encode(`${s}\0`);
    const handle = dl.symbols.dlopen(cstr(libffiName), RTLD_NOW);
    const ptr = handle && dl.symbols.dlsym(handle, cstr("ffi_type_pointer"));
    const i32 = handle && dl.symbols.dlsym(handle, cstr("ffi_type_sint32"));
    if (!ptr || !i32) return undefined;
    return { lib, types: { ptr, i32 } };
  } catch {
    return undefined;
  }
}

/** Which way prepared calls go: `libffi` (fast) or `fnptr` (`Deno.UnsafeFnPointer`). */
export type CallWay = "libffi" | "fnptr";

const wanted = Deno.env.get("RRL_FFI_CALL") ?? "libffi";
if (wanted !== "libffi" && wanted !== "fnptr") {
  throw new RangeError(`RRL_FFI_CALL=${wanted} is not one of libffi, fnptr`);
}
const libffi = wanted === "libffi" ? loadLibffi() : undefined;

/** The way in use: `RRL_FFI_CALL`, or `fnptr` when libffi could not be loaded. */
export const callWay: CallWay = libffi ? "libffi" : "fnptr";

const slotBytes = 8;
const cifOffset = 0; // ffi_cif is 32 bytes on x86-64
const typesOffset = 64;
const avalueOffset = 128;
const argsOffset = 192;
const argsMax = 6;
const rvalueOffset = argsOffset + argsMax * slotBytes; // a full ffi_arg
const memoryBytes = rvalueOffset + slotBytes;

/**
 * One C function pointer with fixed argument types, callable without per-call
 * allocation. Write arguments with {@linkcode setPointer}/{@linkcode setI32} (or once,
 * when they never change), then {@linkcode call}.
 *
 * @example
 * ```ts ignore
 * const poll = new PreparedCall(pollCqFn, ["ptr", "i32", "ptr"]);
 * poll.setPointer(0, cqAddress); poll.setI32(1, 16); poll.setPointer(2, wcAddress);
 * const n = poll.call(); // ops.poll_cq(cq, 16, wc)
 * ```
 */
export class PreparedCall {
  readonly #memory = new ArrayBuffer(memoryBytes);
  readonly #view = new DataView(this.#memory);
  readonly #ret = new Int32Array(this.#memory, rvalueOffset, 1);
  readonly #types: readonly CallType[];
  readonly #fn: Deno.PointerObject;
  readonly #cif: Deno.PointerObject | undefined;
  readonly #rvalue: Deno.PointerObject | undefined;
  readonly #avalue: Deno.PointerObject | undefined;
  readonly #fallback: { call(...args: number[]): number } | undefined;
  readonly #fallbackArgs: number[] = [];

  /** Prepares a call of `fn` taking `types` and returning `int`. */
  constructor(fn: Deno.PointerObject, types: readonly CallType[]) {
    if (types.length > argsMax) {
      throw new RangeError(`At most ${argsMax} arguments, got ${types.length}`);
    }
    this.#fn = fn;
    this.#types = types;
    if (!libffi) {
      const parameters = types.map((t) => (t === "ptr" ? "usize" : "i32"));
      const definition = { parameters, result: "i32" } as const;
      this.#fallback = new Deno.UnsafeFnPointer(
        fn as Deno.PointerObject<typeof definition>,
        definition,
      ) as unknown as { call(...args: number[]): number };
      this.#fallbackArgs = types.map(() => 0);
      return;
    }
    const base = BigInt(Deno.UnsafePointer.value(Deno.UnsafePointer.of(this.#memory)));
    const at = (offset: number) => Deno.UnsafePointer.create(base + BigInt(offset))!;
    types.forEach((type, i) => {
      this.#view.setBigUint64(typesOffset + i * slotBytes, addressOf(libffi.types[type]), true);
      this.#view.setBigUint64(
        avalueOffset + i * slotBytes,
        base + BigInt(argsOffset + i * slotBytes),
        true,
      );
    });
    const status = libffi.lib.symbols.ffi_prep_cif(
      at(cifOffset),
      FFI_UNIX64,
      types.length,
      libffi.types.i32,
      at(typesOffset),
    );
    if (status !== 0) throw new Error(`ffi_prep_cif failed with status ${status}`);
    this.#cif = at(cifOffset);
    this.#rvalue = at(rvalueOffset);
    this.#avalue = at(avalueOffset);
  }

  /** Sets pointer argument `index` from an address (a plain number). */
  setPointer(index: number, address: number): void {
    if (this.#fallback) {
      this.#fallbackArgs[index] = address;
      return;
    }
    const offset = argsOffset + index * slotBytes;
    this.#view.setUint32(offset, address % 0x1_0000_0000, true);
    this.#view.setUint32(offset + 4, Math.floor(address / 0x1_0000_0000), true);
  }

  /** Sets `int` argument `index`. */
  setI32(index: number, value: number): void {
    if (this.#fallback) this.#fallbackArgs[index] = value;
    else this.#view.setInt32(argsOffset + index * slotBytes, value, true);
  }

  /** Calls the function with the arguments set; returns its `int` result. */
  call(): number {
    if (this.#fallback) return this.#fallback.call(...this.#fallbackArgs);
    libffi!.lib.symbols.ffi_call(this.#cif!, this.#fn, this.#rvalue!, this.#avalue!);
    return this.#ret[0];
  }

  /** The argument types, for diagnostics. */
  get types(): readonly CallType[] {
    return this.#types;
  }
}

/** A pointer's address as a bigint (0 for null). */
function addressOf(ptr: Deno.PointerValue): bigint {
  return BigInt(Deno.UnsafePointer.value(ptr));
}
