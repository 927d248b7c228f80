/**
 * Clocks shared by both sides of a run: `CLOCK_MONOTONIC` (one kernel, one clock, so a
 * primary's and a replica's timestamps compare) and the process's CPU time
 * (`getrusage(RUSAGE_SELF)`, every thread: user + system).
 *
 * @example
 * ```ts
 * import { monotonicOffsetUs, processCpuUs } from "./clock.ts";
 * const cpu0 = processCpuUs();
 * const at = performance.now() * 1000 + monotonicOffsetUs(); // CLOCK_MONOTONIC, in µs
 * console.log(at > 0, processCpuUs() >= cpu0);
 * ```
 *
 * @module
 */
import { CLOCK_MONOTONIC, errno, libc, RUSAGE_SELF, RUSAGE_THREAD, strerror } from "../ffi/libc.ts";

const timespec = new BigInt64Array(new ArrayBuffer(16));
const rusage = new BigInt64Array(new ArrayBuffer(144)); // struct rusage on x86-64: 144 bytes

/** `CLOCK_MONOTONIC` now, in microseconds (one FFI call). */
export function monotonicUs(): number {
  if (libc.symbols.clock_gettime(CLOCK_MONOTONIC, timespec) !== 0) {
    throw new Error(`clock_gettime(CLOCK_MONOTONIC) failed: ${strerror(errno())}`);
  }
  return Number(timespec[0]) * 1e6 + Number(timespec[1]) / 1e3;
}

let offsetUs: number | undefined;
/** Samples taken to calibrate the offset; the tightest pair wins. */
const calibrationSamples = 16;

/**
 * `CLOCK_MONOTONIC` (µs) minus `performance.now()` (µs) for this process, measured once
 * (the pair read closest together of a few): `performance.now() * 1000 + offset` is then a
 * `CLOCK_MONOTONIC` time without an FFI call per timestamp.
 */
export function monotonicOffsetUs(): number {
  if (offsetUs !== undefined) return offsetUs;
  let best = Infinity;
  let offset = 0;
  for (let i = 0; i < calibrationSamples; i++) {
    const before = performance.now() * 1000;
    const mono = monotonicUs();
    const after = performance.now() * 1000;
    if (after - before < best) {
      best = after - before;
      offset = mono - (before + after) / 2;
    }
  }
  offsetUs = offset;
  return offset;
}

/** CPU time used by this process so far (user + system, every thread), in microseconds. */
export function processCpuUs(): number {
  return cpuUs(RUSAGE_SELF);
}

/** CPU time used by the calling thread so far (user + system), in microseconds. */
export function threadCpuUs(): number {
  return cpuUs(RUSAGE_THREAD);
}

function cpuUs(who: number): number {
  if (libc.symbols.getrusage(who, rusage) !== 0) {
    throw new Error(`getrusage(${who}) failed: ${strerror(errno())}`);
  }
  // ru_utime {tv_sec, tv_usec} at 0, ru_stime at 16.
  return Number(rusage[0]) * 1e6 + Number(rusage[1]) + Number(rusage[2]) * 1e6 + Number(rusage[3]);
}
