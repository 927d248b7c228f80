/**
 * Drives a completion queue from Deno's event loop without going through it for every
 * completion: a synchronous loop polls the CQ and hands each batch to its handler (which
 * posts more work in the same turn), and leaves the loop only when it must — a microtask
 * turn when promises were settled (the promise API's callers post from there), a
 * macrotask turn at least every {@linkcode macroYieldEveryMs} (TCP control traffic,
 * timers, signals), or a sleep on the completion channel when the CQ is quiet.
 *
 * Three ways to wait when the CQ is empty ({@linkcode WaitMode}):
 * - `spin`: poll again, never sleep (lowest latency when a CPU is free for it);
 * - `events`: arm the CQ and sleep on its completion channel at once, like the C
 *   reference's `-e` (CPU time is then the work done per completion);
 * - `hybrid`: spin for `spinUs` after the last completion, then sleep.
 *
 * A sleep is a synchronous `poll(2)` of at most `syncWaitMs` on this thread when this is
 * the process's only running poller (no thread hop when the event comes), else an
 * asynchronous wait on Deno's blocking pool. Nothing is allocated per completion or per
 * empty poll: only the macrotask yields (bounded in time) and asynchronous waits allocate.
 *
 * @module
 */
import { libc } from "../../ffi/libc.ts";
import type { CompletionQueue } from "../verbs/cq.ts";

/** How a poller waits when its CQ is empty. */
export type WaitMode = "spin" | "events" | "hybrid";

/** The wait modes, for option parsers. */
export const waitModes: readonly WaitMode[] = ["spin", "events", "hybrid"];

/** Options of {@linkcode CompletionPoller}. */
export interface PollerOptions {
  /** How to wait when the CQ is empty (default `hybrid`). */
  wait?: WaitMode;
  /** `hybrid`: busy-poll this long after the last completion before sleeping. */
  spinUs: number;
  /** Longest asynchronous sleep on the channel before checking timeouts again. */
  idleWaitMs: number;
  /** Called with the number of completions in the CQ's array; handles them. */
  onCompletions(count: number): void;
  /**
   * Called once per loop turn (timeouts); the turn's time is `clock[0]` of the poller (ms,
   * `performance.now()`), read there rather than passed: a double argument is boxed.
   * May stop the poller.
   */
  onTick?(): void;
  /**
   * True when the handler settled promises whose callers need a microtask turn to post
   * more (the promise API); the loop then awaits once before polling again. Called once
   * per loop turn: it may reset what it reports.
   */
  wantsTurn?(): boolean;
  /**
   * True when nothing can complete (no work in flight): the loop then sleeps on Deno's
   * blocking pool, so the event loop runs whatever will post more (a timer, a socket).
   */
  idle?(): boolean;
  /** Work posted so far: a turn ends early once it grew (the callers posted). */
  postedCount?(): number;
  /**
   * Sleep on the channel in a synchronous poll(2) of at most this many ms when this is the
   * process's only running poller (default 20, or `RRL_SYNC_WAIT_MS`; 0: always sleep on
   * Deno's blocking pool). It blocks the event loop for up to this long; a wait that ends
   * without an event gives the event loop a turn. Long enough that a side waiting for a
   * peer wakes on the event, not on a timer (a timed wake-up also costs a scheduler tick).
   */
  syncWaitMs?: number;
}

/** Microtask turns given to promise callers at most, one per level of their chains. */
const turnAwaitsMax = 16;
/** After this long without completions, sleep on the blocking pool (costs no CPU). */
const syncWaitWhileQuietMs = 50;
/**
 * Event-loop turns the pollers of this process took, counted for the heap tests: each
 * macrotask yield and each asynchronous wait allocates (a promise and the op's state),
 * bounded in time (at most one yield per {@linkcode macroYieldEveryMs} while busy), never
 * per completion.
 */
export const pollerTurns = { yields: 0, asyncWaits: 0 };

/** Pollers running in this process (sync waits only when alone). */
let runningPollers = 0;

/** Largest spin a caller may ask for. */
export const spinUsMax = 100_000;
/** The synchronous loop yields to the event loop (TCP control, timers) at least this often. */
export const macroYieldEveryMs = 50;
/** ... and this often while spinning without a completion for this long (spin, hybrid). */
export const idleMacroYieldMs = 1;

/**
 * Yields to the event loop with a guaranteed I/O poll: a zero-timeout `poll(2)` on Deno's
 * blocking pool (a macrotask that parks the runtime, so sockets, timers and signals are
 * served), unlike a resolved promise or a message port that can keep it busy.
 */
export class EventLoopYield {
  readonly #none = new Uint8Array(new ArrayBuffer(8)); // struct pollfd, unused (nfds 0)

  /** Resolves after one turn of the event loop. */
  async next(): Promise<void> {
    await libc.symbols.poll(this.#none, 0n, 0);
  }

  /** Nothing to release (kept for callers). */
  close(): void {}
}

/** The loop over one CQ (which must have a completion channel). */
export class CompletionPoller {
  readonly #cq: CompletionQueue;
  readonly #options: PollerOptions;
  readonly #yield = new EventLoopYield();
  readonly #wait: WaitMode;
  readonly #syncWaitMs: number;
  #running: Promise<void> | undefined;
  #stopped = false;
  /** Now, the last completion and the last macrotask yield (ms); `clock` is its first slot. */
  readonly #times = new Float64Array(3);
  /** `clock[0]`: the time of the current loop turn (ms), for `onTick`. */
  readonly clock: Float64Array = this.#times.subarray(NOW, NOW + 1);
  /** Spin budget after the last completion: none for events, unbounded for spin. */
  readonly #spinMs: number;

  /** Validates the options; `start()` begins polling. */
  constructor(cq: CompletionQueue, options: PollerOptions) {
    if (!cq.channel) throw new RangeError(`${cq.label} needs a completion channel to sleep on`);
    const wait = options.wait ?? "hybrid";
    if (!waitModes.includes(wait)) {
      throw new RangeError(`wait must be one of ${waitModes.join(", ")}, got ${wait}`);
    }
    if (!Number.isInteger(options.spinUs) || options.spinUs < 0 || options.spinUs > spinUsMax) {
      throw new RangeError(`spinUs must be 0..${spinUsMax}, got ${options.spinUs}`);
    }
    if (
      !Number.isInteger(options.idleWaitMs) || options.idleWaitMs < 1 || options.idleWaitMs > 1000
    ) {
      throw new RangeError(`idleWaitMs must be 1..1000, got ${options.idleWaitMs}`);
    }
    this.#cq = cq;
    this.#options = options;
    this.#wait = wait;
    this.#spinMs = wait === "spin" ? Infinity : wait === "events" ? 0 : options.spinUs / 1000;
    this.#syncWaitMs = options.syncWaitMs ?? Number(Deno.env.get("RRL_SYNC_WAIT_MS") ?? 20);
    if (!Number.isInteger(this.#syncWaitMs) || this.#syncWaitMs < 0 || this.#syncWaitMs > 100) {
      throw new RangeError(`syncWaitMs must be 0..100, got ${this.#syncWaitMs}`);
    }
  }

  /** Starts the loop (idempotent); `done` resolves when it stops. */
  start(): void {
    if (this.#running) return;
    runningPollers++;
    this.#running = this.#loop().finally(() => {
      runningPollers--;
      this.#yield.close();
    });
  }

  /** Asks the loop to stop at its next turn. */
  stop(): void {
    this.#stopped = true;
  }

  /** Resolves when the loop has stopped (rejects if a handler threw). */
  get done(): Promise<void> {
    return this.#running ?? Promise.resolve();
  }

  /**
   * How long the loop may run without a macrotask turn: {@linkcode macroYieldEveryMs}
   * while completions flow, {@linkcode idleMacroYieldMs} once it has seen none for that
   * long (then nothing is lost by yielding, and timers and sockets wait less).
   */
  #macroDueMs(now: number, lastActivity: number): number {
    const spinningIdle = this.#wait !== "events" && now - lastActivity >= idleMacroYieldMs;
    return spinningIdle ? idleMacroYieldMs : macroYieldEveryMs;
  }

  /**
   * The synchronous part: poll, handle, poll again, until a reason to leave the loop. Its
   * times live in a Float64Array, not in the async loop's variables (a double stored in an
   * async function's context is a new heap number each time).
   */
  #spin(): number {
    const cq = this.#cq;
    const { onCompletions, onTick, wantsTurn } = this.#options;
    const t = this.#times;
    for (;;) {
      const n = cq.poll();
      if (n > 0) onCompletions(n);
      const now = performance.now();
      t[NOW] = now;
      if (n > 0) t[LAST_ACTIVITY] = now;
      onTick?.();
      if (this.#stopped) return Leave.STOP;
      if (wantsTurn !== undefined && wantsTurn()) return Leave.TURN;
      if (now - t[LAST_YIELD] >= this.#macroDueMs(now, t[LAST_ACTIVITY])) return Leave.YIELD;
      if (n === 0 && now - t[LAST_ACTIVITY] >= this.#spinMs) return Leave.SLEEP;
    }
  }

  /** Arms the CQ and sleeps (sync when allowed); true when the event loop needs a turn. */
  #sleepSync(): boolean {
    const cq = this.#cq;
    const t = this.#times;
    // Arm, poll once more (a completion may have slipped in), then sleep.
    cq.requestNotify();
    const late = cq.poll();
    if (late > 0) {
      this.#options.onCompletions(late);
      t[LAST_ACTIVITY] = performance.now();
      return false;
    }
    if (cq.waitEventSync(this.#syncWaitMs)) {
      t[LAST_ACTIVITY] = performance.now();
      return false;
    }
    // Nothing came: whatever the caller waits for is on the event loop (a timer, a socket,
    // a de-stager freeing ring space); give it a turn now.
    return true;
  }

  /** Whether the next sleep may block this thread (alone, recently busy, work in flight). */
  #maySleepSync(): boolean {
    const t = this.#times;
    return this.#syncWaitMs > 0 && runningPollers === 1 &&
      t[NOW] - t[LAST_ACTIVITY] < syncWaitWhileQuietMs && !(this.#options.idle?.() ?? false);
  }

  async #loop(): Promise<void> {
    const t = this.#times;
    t[NOW] = t[LAST_ACTIVITY] = t[LAST_YIELD] = performance.now();
    while (!this.#stopped) {
      const leave = this.#spin();
      if (leave === Leave.STOP) break;
      if (leave === Leave.TURN) {
        // The settled promises' callers run and post more. A microtask queued by a caller
        // lands behind this loop's own continuation, so await once per level of their
        // promise chains, until they posted something (bounded).
        const posted = this.#options.postedCount;
        const before = posted?.() ?? 0;
        for (let i = 0; i < turnAwaitsMax; i++) {
          await null;
          if (posted !== undefined && posted() !== before) break;
        }
      } else if (leave === Leave.YIELD) {
        t[LAST_YIELD] = t[NOW];
        pollerTurns.yields++;
        await this.#yield.next();
      } else if (this.#maySleepSync()) {
        if (this.#sleepSync()) {
          t[LAST_YIELD] = performance.now();
          pollerTurns.yields++;
          await this.#yield.next();
        }
      } else {
        // Sleep on Deno's blocking pool: the event loop runs meanwhile.
        pollerTurns.asyncWaits++;
        this.#cq.requestNotify();
        const late = this.#cq.poll();
        if (late > 0) this.#options.onCompletions(late);
        else if (await this.#cq.waitEvent(this.#options.idleWaitMs)) {
          t[LAST_ACTIVITY] = performance.now();
        }
        if (late > 0) t[LAST_ACTIVITY] = performance.now();
        t[LAST_YIELD] = performance.now();
      }
    }
  }
}

/** Why the synchronous part returned. */
const Leave = { STOP: 0, TURN: 1, YIELD: 2, SLEEP: 3 } as const;
/** Slots of the poller's times (ms, performance.now()). */
const NOW = 0, LAST_ACTIVITY = 1, LAST_YIELD = 2;
