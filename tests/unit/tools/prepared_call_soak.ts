/**
 * A soak of {@linkcode PreparedCall}: many calls to harmless libc functions through
 * prepared calls, every result checked, with garbage and forced collections in between.
 * Run it with `--v8-flags=--stress-compaction,--expose-gc`: each `gc()` is then a full,
 * compacting collection, so anything a call hands to C that lived on V8's heap would move
 * under it and show as a wrong result or a crash. Used by
 * `tests/unit/prepared_call_soak_test.ts`.
 *
 *   prepared_call_soak.ts [CALLS] [GC_EVERY]
 *
 * The calls (default 3 x 10^7) cycle through three prepared calls, `int abs(int)`,
 * `int atoi(const char *)` and `int strcmp(const char *, const char *)`, on buffers this
 * program owns, with arguments that change every call (so a stale or wrong argument gives a
 * wrong result). Garbage and `gc()` every GC_EVERY calls (default 10^5). Prints one JSON
 * line at the end; a wrong result throws (exit code 1) and names the call.
 *
 * `RRL_SOAK_CORRUPT=N` passes one wrong argument at call N: the control that shows a wrong
 * argument is caught.
 *
 * @module
 */
import { callWay, PreparedCall } from "../../../ffi/prepared_call.ts";

const callsMax = 100_000_000;
const garbageObjects = 256;
const survivors = 64;

const dlSymbols = {
  dlopen: { parameters: ["buffer", "i32"], result: "pointer" }, // void *dlopen(const char *file, int mode)
  dlsym: { parameters: ["pointer", "buffer"], result: "pointer" }, // void *dlsym(void *handle, const char *name)
  dlerror: { parameters: [], result: "pointer" }, // char *dlerror(void)
} as const satisfies Deno.ForeignLibraryInterface;

const RTLD_NOW = 2;
const libcName = Deno.env.get("RRL_LIBC") ?? "libc.so.6";

/** The address of `name` in libc (dlsym), or a clear error. */
function libcFunction(name: string): Deno.PointerObject {
  const dl = Deno.dlopen(libcName, dlSymbols);
  const cstr = (s: string) => new TextEncoder().encode(`${s}\0`);
  const handle = dl.symbols.dlopen(cstr(libcName), RTLD_NOW);
  const fn = handle && dl.symbols.dlsym(handle, cstr(name));
  if (!fn) {
    const why = dl.symbols.dlerror();
    throw new Error(
      `Cannot find ${name} in ${libcName}: ${
        why ? Deno.UnsafePointerView.getCString(why) : "dlsym returned NULL"
      }`,
    );
  }
  return fn;
}

/** An address of memory C may keep using: the start of an `ArrayBuffer`'s backing store. */
function addressOf(buffer: ArrayBuffer): number {
  return Number(Deno.UnsafePointer.value(Deno.UnsafePointer.of(buffer)));
}

/** Thrown when a call returned what its arguments do not give. */
class WrongResultError extends Error {
  override name = "WrongResultError";
}

/** What one soak did. */
export interface SoakResult {
  way: string;
  calls: number;
  /** Calls per function: abs, atoi, strcmp. */
  perFunction: { abs: number; atoi: number; strcmp: number };
  /** Forced collections (0 when `gc` is not exposed). */
  gcs: number;
  ms: number;
  nsPerCall: number;
}

/** Runs `calls` checked calls, with garbage and `gc()` every `gcEvery` calls (0: never). */
export function soak(calls: number, gcEvery: number, corruptAt = -1): SoakResult {
  if (!Number.isInteger(calls) || calls < 3 || calls > callsMax) {
    throw new RangeError(`CALLS must be 3..${callsMax}, got ${calls}`);
  }
  if (!Number.isInteger(gcEvery) || gcEvery < 0) {
    throw new RangeError(`GC_EVERY must be a non-negative integer, got ${gcEvery}`);
  }
  const abs = new PreparedCall(libcFunction("abs"), ["i32"]);
  const atoi = new PreparedCall(libcFunction("atoi"), ["ptr"]);
  const strcmp = new PreparedCall(libcFunction("strcmp"), ["ptr", "ptr"]);

  // Memory handed to C: ArrayBuffers (their backing stores never move).
  const digitsBuffer = new ArrayBuffer(16);
  const digits = new Uint8Array(digitsBuffer);
  const digitsAddress = addressOf(digitsBuffer);
  const leftBuffer = new ArrayBuffer(16);
  const rightBuffer = new ArrayBuffer(16);
  const left = new Uint8Array(leftBuffer);
  const right = new Uint8Array(rightBuffer);
  const leftAddress = addressOf(leftBuffer);
  const rightAddress = addressOf(rightBuffer);
  left.set([0x72, 0x72, 0x6c, 0x61, 0]); // "rrla"
  right.set([0x72, 0x72, 0x6c, 0x61, 0]);

  // deno-lint-ignore no-explicit-any
  const gc = (globalThis as any).gc as (() => void) | undefined;
  const kept: unknown[] = new Array(survivors).fill(undefined);
  let gcs = 0;
  const per = { abs: 0, atoi: 0, strcmp: 0 };
  const t0 = performance.now();
  for (let i = 0; i < calls; i++) {
    const corrupt = i === corruptAt;
    const which = i % 3;
    if (which === 0) {
      // abs(x) for x spanning negatives and positives (never INT_MIN).
      const x = ((i * 40_503) % 2_000_000_000) - 1_000_000_000;
      abs.setI32(0, corrupt ? x + 1 : x);
      const got = abs.call();
      if (got !== Math.abs(x)) throw wrong(i, "abs", got, Math.abs(x), `abs(${x})`);
      per.abs++;
    } else if (which === 1) {
      const x = (i & 1) === 0 ? i : -i;
      writeDecimal(digits, corrupt ? x + 10 : x);
      atoi.setPointer(0, digitsAddress);
      const got = atoi.call();
      if (got !== x) throw wrong(i, "atoi", got, x, `atoi("${x}")`);
      per.atoi++;
    } else {
      // The 4th byte of each string changes every call and the operands swap every other
      // call: the sign tells whether both pointers reached C in order.
      const l = 0x61 + (i % 26);
      const r = 0x61 + ((i * 7 + 3) % 26);
      left[3] = l;
      right[3] = r;
      const swap = (i & 1) === 1;
      strcmp.setPointer(0, swap !== corrupt ? rightAddress : leftAddress);
      strcmp.setPointer(1, swap !== corrupt ? leftAddress : rightAddress);
      const want = Math.sign(swap ? r - l : l - r);
      const got = strcmp.call();
      if (Math.sign(got) !== want) {
        throw wrong(i, "strcmp", Math.sign(got), want, `sign of strcmp (swapped: ${swap})`);
      }
      per.strcmp++;
    }
    if (gcEvery > 0 && i % gcEvery === gcEvery - 1) {
      // Garbage of every kind, some of it kept so that compaction has live objects to move.
      const garbage: unknown[] = [];
      for (let k = 0; k < garbageObjects; k++) {
        garbage.push(k % 2 === 0 ? new Uint8Array(8 + k) : { k, s: `g${k}`, a: [k, i] });
      }
      kept[gcs % survivors] = garbage[gcs % garbageObjects];
      if (gc) {
        gc();
        gcs++;
      }
    }
  }
  const ms = performance.now() - t0;
  if (kept.length !== survivors) throw new Error("unreachable");
  return { way: callWay, calls, perFunction: per, gcs, ms, nsPerCall: (ms * 1e6) / calls };
}

/** Writes `value` as a NUL-terminated decimal string into `into` (no allocation). */
function writeDecimal(into: Uint8Array, value: number): void {
  let v = Math.abs(value);
  let n = 0;
  do {
    n++;
    v = Math.floor(v / 10);
  } while (v > 0);
  let at = value < 0 ? 1 : 0;
  if (value < 0) into[0] = 0x2d; // '-'
  v = Math.abs(value);
  for (let k = at + n - 1; k >= at; k--) {
    into[k] = 0x30 + (v % 10);
    v = Math.floor(v / 10);
  }
  at += n;
  into[at] = 0;
}

function wrong(call: number, fn: string, got: number, want: number, what: string) {
  return new WrongResultError(
    `Call ${call} (${fn} through the ${callWay} way) returned ${got} for ${what}, expected ${want}`,
  );
}

if (import.meta.main) {
  const [calls = "30000000", gcEvery = "100000"] = Deno.args;
  const corrupt = Deno.env.get("RRL_SOAK_CORRUPT");
  const result = soak(Number(calls), Number(gcEvery), corrupt ? Number(corrupt) : -1);
  console.log(JSON.stringify(result));
}
