/**
 * Test fixture: a measured window of a process's heap, for the allocation tests. Run the
 * process with `--v8-flags=--trace-gc,--expose-gc,--min-semi-space-size=64,--max-semi-space-size=64`:
 * {@linkcode HeapWindow.begin} collects garbage (so the window starts with an empty young
 * generation), prints `@@BEGIN` and samples `Deno.memoryUsage().heapUsed`;
 * {@linkcode HeapWindow.end} samples it again and prints `@@END`. With a young generation
 * larger than anything the window allocates, no collection runs inside it, so the growth
 * is exactly what the window allocated, and every `--trace-gc` line between the markers is
 * a collection the window caused. Only `begin` and `end` allocate (a few hundred bytes).
 *
 * @module
 */
import { libc } from "../../../ffi/libc.ts";

/** One window: `begin()` once, then `end()` once. */
export class HeapWindow {
  #heapBegin = 0;
  #heapEnd = 0;
  #state: "idle" | "open" | "closed" = "idle";

  /** Opens the window: full GC (when exposed), `@@BEGIN`, first heap sample. */
  begin(): void {
    if (this.#state !== "idle") throw new Error("The heap window was already opened");
    // deno-lint-ignore no-explicit-any
    (globalThis as any).gc?.();
    // --trace-gc lines go through C stdio, buffered on a pipe: flush them before each
    // marker so that a collection inside the window is printed between the markers.
    libc.symbols.fflush(null);
    console.log("@@BEGIN");
    this.#state = "open";
    this.#heapBegin = Deno.memoryUsage().heapUsed;
  }

  /** Closes the window: second heap sample, `@@END`. */
  end(): void {
    if (this.#state !== "open") throw new Error("The heap window was not open");
    this.#heapEnd = Deno.memoryUsage().heapUsed;
    this.#state = "closed";
    libc.symbols.fflush(null);
    console.log("@@END");
  }

  /** Growth of the used heap over the window, or `undefined` if it never closed. */
  get heapBytes(): number | undefined {
    return this.#state === "closed" ? this.#heapEnd - this.#heapBegin : undefined;
  }
}

/** The positive control's allocation: an array of 128 numbers, 1040 bytes on V8's heap. */
export function controlGarbage(value: number): unknown {
  return new Array(128).fill(value);
}
