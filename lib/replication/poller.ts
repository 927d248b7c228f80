/**
 * Drives a completion queue from Deno's event loop: busy-polls while completions flow,
 * yields to the event loop now and then (TCP control traffic, timers), and after
 * `spinUs` without a completion arms the CQ and waits on its completion channel
 * (`poll(2)` on Deno's blocking pool), so an idle side costs no CPU.
 *
 * @module
 */
import type { CompletionQueue } from "../verbs/cq.ts";

/** Options of {@linkcode CompletionPoller}. */
export interface PollerOptions {
  /** Busy-poll this long after the last completion before sleeping on the channel. */
  spinUs: number;
  /** Longest sleep on the channel before checking timeouts again. */
  idleWaitMs: number;
  /** Called with the number of completions in the CQ's array; handles them. */
  onCompletions(count: number): void;
  /** Called every time the loop comes round (timeouts); may stop the poller. */
  onTick?(now: number): void;
  /**
   * Sleep on the channel in a synchronous poll(2) of at most this many ms when this is the
   * process's only running poller (default 2; 0: always sleep on Deno's blocking pool).
   * A sync wait wakes without a thread hop (much faster under emulation) but blocks the
   * event loop for up to this long; with several pollers in one process it would block
   * the others, so they sleep on the blocking pool instead.
   */
  syncWaitMs?: number;
}

/** After this long without completions, sleep on the blocking pool (costs no CPU). */
const syncWaitWhileQuietMs = 50;
/** Pollers running in this process (sync waits only when alone). */
let runningPollers = 0;

/** Largest spin a caller may ask for. */
export const spinUsMax = 100_000;
/** While busy, yield to the event loop (TCP control, timers, signals) this often. */
const macroYieldEveryMs = 50;

/** Yields to the event loop (I/O, timers) in a few microseconds, unlike setTimeout(0). */
export class EventLoopYield {
  #channel: MessageChannel | undefined;
  #resolve: (() => void) | undefined;

  /** Resolves after one turn of the event loop. */
  next(): Promise<void> {
    if (!this.#channel) {
      this.#channel = new MessageChannel();
      this.#channel.port1.onmessage = () => this.#resolve?.();
    }
    return new Promise((resolve) => {
      this.#resolve = resolve;
      this.#channel!.port2.postMessage(0);
    });
  }

  /** Releases the channel (it would keep the process alive). */
  close(): void {
    this.#channel?.port1.close();
    this.#channel?.port2.close();
    this.#channel = undefined;
  }
}

/** The loop over one CQ (which must have a completion channel). */
export class CompletionPoller {
  readonly #cq: CompletionQueue;
  readonly #options: PollerOptions;
  readonly #yield = new EventLoopYield();
  #running: Promise<void> | undefined;
  #stopped = false;
  readonly #syncWaitMs: number;

  /** Validates the options; `start()` begins polling. */
  constructor(cq: CompletionQueue, options: PollerOptions) {
    if (!cq.channel) throw new RangeError(`${cq.label} needs a completion channel to sleep on`);
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
    this.#syncWaitMs = options.syncWaitMs ?? Number(Deno.env.get("RRL_SYNC_WAIT_MS") ?? 2);
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

  async #loop(): Promise<void> {
    const cq = this.#cq;
    const { spinUs, idleWaitMs, onCompletions, onTick } = this.#options;
    let lastActivity = performance.now();
    let lastMacroYield = lastActivity;
    while (!this.#stopped) {
      const n = cq.poll();
      const now = performance.now();
      if (n > 0) {
        onCompletions(n);
        lastActivity = now;
      }
      onTick?.(now);
      if (this.#stopped) break;
      if (n > 0 || (now - lastActivity) * 1000 < spinUs) {
        if (now - lastMacroYield >= macroYieldEveryMs) {
          lastMacroYield = now;
          await this.#yield.next();
        } else {
          await null; // let resolved callers run and post more work
        }
        continue;
      }
      // Quiet: arm, poll once more (a completion may have slipped in), then sleep.
      cq.requestNotify();
      const late = cq.poll();
      if (late > 0) {
        onCompletions(late);
        lastActivity = performance.now();
        continue;
      }
      const quietMs = performance.now() - lastActivity;
      if (this.#syncWaitMs > 0 && runningPollers === 1 && quietMs < syncWaitWhileQuietMs) {
        // Sleep in poll(2) on this thread: no thread hop when the event comes, and the
        // CPU is free for the kernel (rxe) and the peer meanwhile. Yield to the event loop
        // when the wait ran out (idle) and at least every macroYieldEveryMs.
        const woke = cq.waitEventSync(this.#syncWaitMs);
        const after = performance.now();
        if (woke) lastActivity = after;
        if (!woke || after - lastMacroYield >= macroYieldEveryMs) {
          lastMacroYield = after;
          await this.#yield.next();
        }
      } else {
        if (await cq.waitEvent(idleWaitMs)) lastActivity = performance.now();
        lastMacroYield = performance.now();
      }
    }
  }
}
