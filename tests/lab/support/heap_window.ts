/**
 * Test fixture: a measured window of a process's heap, for the allocation tests. Run the
 * process with `--v8-flags=--trace-gc,--expose-gc,--min-semi-space-size=64,--max-semi-space-size=64,--no-memory-reducer`:
 * {@linkcode HeapWindow.begin} collects garbage (so the window starts with an empty young
 * generation), prints `@@BEGIN` and samples `Deno.memoryUsage().heapUsed`;
 * {@linkcode HeapWindow.end} samples it again and prints `@@END`. With a young generation
 * larger than anything the window allocates, no collection runs inside it, so the growth
 * is exactly what the window allocated, and every `--trace-gc` line between the markers is
 * a collection the window caused. Only `begin` and `end` allocate (a few hundred bytes).
 *
 * Diagnosis: with `RRL_ALLOC_PROFILE=DIR`, {@linkcode HeapWindow.prepare} (before the
 * work) and {@linkcode HeapWindow.finish} (after it) run V8's sampling heap profiler and
 * write `DIR/NAME.heapprofile` (Chrome DevTools format: which stacks allocated what), of
 * everything allocated between the two (warm-up and tail included, garbage too). It
 * changes what is measured: use it to find allocation sites, never in the test's measure.
 *
 * @module
 */
import { Session } from "node:inspector";
import { libc } from "../../../ffi/libc.ts";
import { pollerTurns } from "../../../lib/replication/poller.ts";

const profileDir = Deno.env.get("RRL_ALLOC_PROFILE");

/** One window: `begin()` once, then `end()` once. */
export class HeapWindow {
  readonly #name: string;
  #heapBegin = 0;
  #heapEnd = 0;
  #turnsBegin = 0;
  #turnsEnd = 0;
  #state: "idle" | "open" | "closed" = "idle";
  #session: Session | undefined;

  /** A window; `name` names its profile file under `RRL_ALLOC_PROFILE`. */
  constructor(name: string) {
    this.#name = name;
  }

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
    this.#turnsBegin = pollerTurns.yields + pollerTurns.asyncWaits;
    this.#heapBegin = Deno.memoryUsage().heapUsed;
  }

  /** Closes the window: second heap sample, `@@END`. */
  end(): void {
    if (this.#state !== "open") throw new Error("The heap window was not open");
    this.#heapEnd = Deno.memoryUsage().heapUsed;
    this.#turnsEnd = pollerTurns.yields + pollerTurns.asyncWaits;
    this.#state = "closed";
    libc.symbols.fflush(null);
    console.log("@@END");
  }

  /** Event-loop turns the pollers took in the window (yields and asynchronous waits). */
  get turns(): number {
    return this.#turnsEnd - this.#turnsBegin;
  }

  /** Growth of the used heap over the window, or `undefined` if it never closed. */
  get heapBytes(): number | undefined {
    return this.#state === "closed" ? this.#heapEnd - this.#heapBegin : undefined;
  }

  /**
   * With `RRL_ALLOC_PROFILE`: starts V8's sampling heap profiler (call before the work;
   * an inspector request cannot start it synchronously at `begin()`).
   */
  async prepare(): Promise<void> {
    if (!profileDir) return;
    const session = new Session();
    session.connect();
    this.#session = session;
    // One sample per 64 allocated bytes on average, so small per-log objects show up; and
    // garbage stays in the profile (stopping collects, which would drop it).
    await post(session, "HeapProfiler.startSampling", {
      samplingInterval: 64,
      includeObjectsCollectedByMajorGC: true,
      includeObjectsCollectedByMinorGC: true,
    });
  }

  /** With `RRL_ALLOC_PROFILE`: stops the profiler and writes `DIR/NAME.heapprofile`. */
  async finish(): Promise<void> {
    const session = this.#session;
    if (!session) return;
    this.#session = undefined;
    try {
      const result = await post(session, "HeapProfiler.stopSampling", {});
      const path = `${profileDir}/${this.#name}.heapprofile`;
      await Deno.mkdir(profileDir!, { recursive: true });
      await Deno.writeTextFile(path, JSON.stringify((result as { profile?: unknown }).profile));
      console.error(`${this.#name}: heap profile written to ${path}`);
    } finally {
      session.disconnect();
    }
  }
}

/** One inspector request, answered in a later turn. */
function post(session: Session, method: string, params: object): Promise<object | undefined> {
  const done = Promise.withResolvers<object | undefined>();
  session.post(method, params, (error: Error | null, result?: object) => {
    if (error) done.reject(error);
    else done.resolve(result);
  });
  return done.promise;
}

/** The positive control's allocation: an array of 128 numbers, 1040 bytes on V8's heap. */
export function controlGarbage(value: number): unknown {
  return new Array(128).fill(value);
}
