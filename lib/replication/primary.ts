/**
 * The primary: places each log in its data ring (the same offset as in the replica's),
 * posts the RDMA WRITE of the data and the inline SEND of the record in one chain, and
 * reports the log replicated when, and only when, the replica's OK ack (or a WELCOME that
 * says the replica holds it) arrives. With `reconnect`, a broken session (QP error, lost
 * peer, ack timeout) is replaced by a new one and the logs in flight are sent again.
 *
 * @example
 * ```ts ignore
 * await using primary = await Primary.connect({ device: "rxea", host: "192.0.2.2", secret });
 * const log = await primary.replicate(new Uint8Array(4096), { lba: 0 });
 * console.log(log.seq, log.latencyUs, primary.stats());
 * ```
 *
 * @module
 */
import { IBV_ACCESS_FLAGS as A } from "../../ffi/verbs_constants.ts";
import { type Ack, ackBytes } from "../log/ack.ts";
import { LbaFlags, recordBytes } from "../log/record.ts";
import { checkLogLength, checkRingBytes, logBytesLimit, RingCursor } from "../log/ring.ts";
import type { MemoryRegion } from "../verbs/pd.ts";
import { VerbsError } from "../verbs/errors.ts";
import { LogDigest } from "./digest.ts";
import { SessionError } from "./errors.ts";
import type { PrimaryFaults } from "./faults.ts";
import { Flight, type ReplicatedLog } from "./flight.ts";
import { CompletionPoller, type WaitMode } from "./poller.ts";
import { Admission } from "./primary_admission.ts";
import { type PlacedLog, PrimaryEngine, type PrimaryHooks } from "./primary_engine.ts";
import {
  openSession,
  sendSignalEvery,
  type Session,
  type SessionConfig,
} from "./primary_session.ts";
import { PrimaryStats, type PrimaryStatsValue } from "./primary_stats.ts";
import { type LogProducer, LogStream, type StreamResult } from "./primary_stream.ts";
import { anonymousMemory, type RingMemory } from "./ring_memory.ts";
import { Side, type SideOptions } from "./side.ts";
import { openInOrder, openInOrderAsync } from "../dispose.ts";
import { blockBytes } from "../block.ts";

export type { ReplicatedLog } from "./flight.ts";
export type { PlacedLog, PrimaryHooks } from "./primary_engine.ts";
export type { LogProducer, StreamLog, StreamResult } from "./primary_stream.ts";

/** Options of {@linkcode Primary.connect}. */
export interface PrimaryOptions extends SideOptions {
  /** The replica's host name or address (its control port; the QP follows the GIDs). */
  host: string;
  /** The replica's control port (default 18515). */
  port?: number;
  /** Shared secret (8+ bytes), as the replica's. */
  secret: string;
  /** Data ring size; must equal the replica's (default 16 MiB). */
  ringBytes?: number;
  /** Largest log (default min(1 MiB, ringBytes / 2)). */
  maxLogBytes?: number;
  /** Logs in flight at most (1..1000, default 16); + 2 ≤ the replica's slots. */
  depth?: number;
  /** A log not acked within this time ends the session (default 5000 ms). */
  ackTimeoutMs?: number;
  /** How to wait for completions: spin, events (sleep at once) or hybrid (default). */
  wait?: WaitMode;
  /** Hybrid wait: busy-poll this long before sleeping on the completion channel (default 1000 us). */
  spinUs?: number;
  /** Ring memory to use (e.g. the write cache's mapping); default anonymous memory. */
  memory?: RingMemory;
  /**
   * Keep acked logs in the ring until {@linkcode Primary.release} (a write cache de-stages
   * them first); the replica must run with `retain` too. Default false.
   */
  retain?: boolean;
  /** Write-cache hooks (persistence points before a log is posted, answered logs). */
  hooks?: PrimaryHooks;
  /**
   * Called when the replica's OK ack of a log is handled, before its promise settles: a
   * witness below whoever calls `replicate` (the cache workload checks that no write
   * completed before it). `log` is reused: copy what you keep.
   */
  onAcked?: (log: PlacedLog) => void;
  /** A log waiting this long for room (depth, credits, ring, reconnect) fails with BackpressureError (default 10000 ms). */
  admissionTimeoutMs?: number;
  /**
   * Replace a broken session: at most `attempts` tries (default 0: fail), for at most
   * `forMs` after the break when given; the first wait is `delayMs` (default 500), each
   * later one doubles up to `maxDelayMs` (default 5000), with jitter (50-100% of it). A
   * BUSY refusal is one failed attempt.
   */
  reconnect?: { attempts: number; delayMs?: number; forMs?: number; maxDelayMs?: number };
  /** At start, how long a replica's BUSY refusal is retried with backoff (0..600000, default 10000 ms; 0: fail at once). */
  busyRetryMs?: number;
  /** Logs recovered from this side's write cache (a restart), in seq order, and its released position. */
  recover?: { releasedPos: number; logs: (PlacedLog & { skip: boolean })[] };
  /** Where log lines go (default stderr). */
  log?: (line: string) => void;
  /** At start, called before each wait after a BUSY refusal (attempt from 1). */
  onBusyRetry?: (attempt: number, delayMs: number) => void;
  /** Faults to inject (tests and fault campaigns). */
  faults?: PrimaryFaults;
  /** Called just before a fault kills the process (write the trace). */
  beforeDeath?: () => void;
}

/** Writes a log's bytes straight into the data ring (an object: no closure per log). */
export interface LogFiller {
  /** Writes `length` bytes of the log into `ring` at `offset`. */
  fill(ring: Uint8Array, offset: number, length: number): void;
}

/** How a caller hands a log's bytes over: a copy, or a fill straight into the ring. */
export type LogSource =
  | Uint8Array
  | ((ring: Uint8Array, offset: number, length: number) => void)
  | LogFiller;

/** Per-log options. */
export interface LogOptions {
  /** Logical block address of the first 4096-byte block. */
  lba: number;
  /** Force unit access. */
  fua?: boolean;
  /** Length when `source` is a fill function or a {@linkcode LogFiller}. */
  length?: number;
}

const depthMax = 1000;
const reconnectAttemptsMax = 1000;
/** Largest reconnect window or delay (1 hour). */
const reconnectMsMax = 3_600_000;
/** Default cap of the doubling reconnect delay. */
const reconnectMaxDelayMsDefault = 5000;
/** What one reconnect attempt may take besides its wait (bootstrap and QP set-up). */
const attemptSlackMs = 1000;

/**
 * The longest a broken session may take to be replaced under `reconnect` (the waits, capped
 * and doubling, plus each attempt's own time, or the `forMs` window): how long a write that
 * waits for the new session should be allowed to wait.
 */
export function reconnectWindowMs(reconnect: PrimaryOptions["reconnect"]): number {
  if (!reconnect || reconnect.attempts === 0) return 0;
  const maxDelayMs = reconnect.maxDelayMs ?? reconnectMaxDelayMsDefault;
  let delayMs = Math.min(reconnect.delayMs ?? 500, maxDelayMs);
  let total = 0;
  for (let i = 0; i < reconnect.attempts && total < reconnectMsMax; i++) {
    total += delayMs + attemptSlackMs;
    delayMs = Math.min(delayMs * 2, maxDelayMs);
  }
  return Math.min(total, (reconnect.forMs ?? Infinity) + attemptSlackMs);
}

/** A connected primary. */
export class Primary implements AsyncDisposable {
  #side: Side;
  readonly #memory: RingMemory;
  readonly #ownsMemory: boolean;
  #mrs: MemoryRegion[];
  /** A verb failed with EIO/ENODEV: the device went away; reopen it before reconnecting. */
  #deviceLost = false;
  readonly #engine: PrimaryEngine;
  readonly #admission: Admission;
  readonly #stats: PrimaryStats;
  readonly #options: PrimaryOptions;
  readonly #config: SessionConfig;
  readonly #log: (line: string) => void;
  #session: Session | undefined;
  #poller: CompletionPoller | undefined;
  #stream: LogStream | undefined;
  #reconnecting: Promise<void> | undefined;
  #teardown: Promise<void> = Promise.resolve();
  #closing = false;
  /** Largest log. */
  readonly maxLogBytes: number;
  /** Logs in flight at most. */
  readonly depth: number;

  private constructor(o: {
    side: Side;
    memory: RingMemory;
    ownsMemory: boolean;
    mrs: MemoryRegion[];
    engine: PrimaryEngine;
    stats: PrimaryStats;
    options: PrimaryOptions;
    config: SessionConfig;
  }) {
    this.#side = o.side;
    this.#memory = o.memory;
    this.#ownsMemory = o.ownsMemory;
    this.#mrs = o.mrs;
    this.#engine = o.engine;
    this.#stats = o.stats;
    this.#options = o.options;
    this.#config = o.config;
    this.maxLogBytes = o.config.maxLogBytes;
    this.depth = o.config.depth;
    this.#log = o.options.log ?? ((line: string) => console.error(line));
    this.#admission = new Admission(
      this.#engine,
      this.#stats,
      o.options.admissionTimeoutMs ?? 10_000,
      o.options.retain ?? false,
    );
    this.#engine.onProgress = () => {
      this.#admission.admit();
      this.#stream?.pump(this.#admission.waiting > 0);
    };
    this.#engine.onFailure = (error) => {
      this.#admission.failAll(error);
      this.#stream?.abort(error);
    };
    this.#engine.onSuspend = (error) => this.#onSuspend(error);
  }

  /** Opens the device, connects to the replica (bootstrap, then the QP) and starts. */
  static async connect(options: PrimaryOptions): Promise<Primary> {
    const ringBytes = options.memory?.length ?? options.ringBytes ?? 16 << 20;
    checkRingBytes(ringBytes);
    const depth = options.depth ?? 16;
    if (!Number.isInteger(depth) || depth < 1 || depth > depthMax) {
      throw new RangeError(`depth must be 1..${depthMax}, got ${depth}`);
    }
    const maxLogBytes = options.maxLogBytes ?? Math.min(1 << 20, logBytesLimit(ringBytes));
    checkLogLength(maxLogBytes, ringBytes);
    const ackTimeoutMs = options.ackTimeoutMs ?? 5000;
    if (!Number.isInteger(ackTimeoutMs) || ackTimeoutMs < 10 || ackTimeoutMs > 600_000) {
      throw new RangeError(`ackTimeoutMs must be 10..600000, got ${ackTimeoutMs}`);
    }
    const attempts = options.reconnect?.attempts ?? 0;
    if (!Number.isInteger(attempts) || attempts < 0 || attempts > reconnectAttemptsMax) {
      throw new RangeError(
        `reconnect.attempts must be 0..${reconnectAttemptsMax}, got ${attempts}`,
      );
    }
    for (const key of ["delayMs", "forMs", "maxDelayMs"] as const) {
      const value = options.reconnect?.[key];
      if (
        value !== undefined && (!Number.isInteger(value) || value < 0 || value > reconnectMsMax)
      ) {
        throw new RangeError(`reconnect.${key} must be 0..${reconnectMsMax} ms, got ${value}`);
      }
    }
    const config: SessionConfig = {
      host: options.host,
      port: options.port,
      secret: options.secret,
      ringBytes,
      maxLogBytes,
      depth,
    };
    // Each resource goes on the stack as it is opened; if a later step fails, they close
    // newest first and the caller sees the error that stopped the start.
    return await openInOrderAsync(async (stack) => {
      const side = stack.use(Side.open(options));
      const memory = options.memory ?? stack.use(anonymousMemory(ringBytes));
      const ringMr = stack.use(side.pd.register({
        address: memory.address,
        length: memory.length,
        owner: memory,
      }, A.IBV_ACCESS_LOCAL_WRITE));
      const acks = new ArrayBuffer((depth + 2) * ackBytes);
      const acksMr = stack.use(side.pd.register(acks, A.IBV_ACCESS_LOCAL_WRITE));
      const session = await openSession(side, {
        ...config,
        connectAttempts: 10,
        busyRetryMs: options.busyRetryMs,
        log: options.log ?? ((line: string) => console.error(line)),
        onBusyRetry: options.onBusyRetry,
      });
      stack.defer(() => session.close());
      const recover = options.recover;
      const startPos = recover ? recover.releasedPos : session.welcome.released;
      const nextSeq = recover
        ? (recover.logs[0]?.seq ?? session.welcome.nextSeq)
        : session.welcome.nextSeq;
      const stats = new PrimaryStats();
      const signalEvery = sendSignalEvery;
      const engine = new PrimaryEngine({
        memory,
        ringMr,
        acks,
        acksMr,
        ring: new RingCursor({ ringBytes, startPos }),
        flight: new Flight(depth + 2),
        depth,
        signalEvery,
        ackTimeoutMs,
        stats,
        digest: new LogDigest(),
        retain: options.retain ?? false,
        hooks: options.hooks,
        onAcked: options.onAcked,
        faults: options.faults,
        beforeDeath: options.beforeDeath,
      }, nextSeq);
      for (const log of recover?.logs ?? []) engine.seedRecovered(log);
      const primary = new Primary({
        side,
        memory,
        ownsMemory: !options.memory,
        mrs: [acksMr, ringMr],
        engine,
        stats,
        options,
        config,
      });
      primary.#start(session);
      if (engine.failure) throw engine.failure;
      primary.#log(
        `primary: ${side.describe()} → replica ${options.host} QP ${session.welcome.endpoint.qpn}, ` +
          `next seq ${session.welcome.nextSeq}, depth ${depth}, ring ${ringBytes} B` +
          (recover ? `, ${recover.logs.length} logs recovered from the write cache` : ""),
      );
      return primary;
    });
  }

  /** Attaches the engine to `session` and polls its CQ. */
  #start(session: Session): void {
    this.#session = session;
    this.#engine.attach(session.link, session.welcome);
    // A post that failed in attach suspended the session: its teardown (already scheduled)
    // owns it now, and a poller started here would wait on a channel about to close.
    if (this.#engine.failure || this.#session !== session) return;
    // Our QP is in RTS with its ack RECVs posted: the replica may answer from now on.
    session.control.sendReady();
    const engine = this.#engine;
    this.#poller = new CompletionPoller(session.link.cq, {
      wait: this.#options.wait,
      spinUs: this.#options.spinUs ?? 1000,
      idleWaitMs: 20,
      wantsTurn: () => {
        if (engine.settled === 0) return false;
        engine.settled = 0;
        return true;
      },
      postedCount: () => this.#stats.posted,
      idle: () => engine.inFlight === 0,
      onCompletions: (n) => this.#engine.onCompletions(n),
      onTick: () => {
        this.#engine.checkTimeout(poller.clock);
        this.#admission.expire(poller.clock);
      },
    });
    const poller = this.#poller;
    this.#poller.start();
    this.#poller.done.catch((error) => {
      // A verb of the loop failed (the device was removed: EIO): the session is over.
      if (error instanceof VerbsError) this.#deviceLost ||= deviceGone(error);
      if (!this.#closing && this.#session === session) {
        this.#engine.suspend(
          new SessionError("device", `Polling the CQ failed: ${(error as Error).message}`, error),
        );
      }
    });
    session.control.waitClosed().then(() => {
      if (!this.#closing && this.#session === session) {
        this.#engine.suspend(
          new SessionError("peer-closed", "The replica closed the control connection"),
        );
      }
    });
  }

  #onSuspend(error: Error): void {
    const attempts = this.#options.reconnect?.attempts ?? 0;
    if (this.#closing || attempts === 0) {
      this.#engine.fail(error);
      this.#teardownSession().catch((e) =>
        this.#log(`primary: closing the broken session failed: ${(e as Error).message}`)
      );
      return;
    }
    this.#log(`primary: session broken (${error.message}); reconnecting`);
    this.#reconnecting ??= this.#reconnect(error, attempts).finally(
      () => (this.#reconnecting = undefined),
    );
  }

  /**
   * Stops the poller (waiting for it: it may be sleeping on the channel), then ends the
   * session. Teardowns run one after another: a second caller (close() during a suspend)
   * waits for the first instead of closing the device under a live wait.
   */
  #teardownSession(): Promise<void> {
    const poller = this.#poller;
    const session = this.#session;
    this.#poller = undefined;
    this.#session = undefined;
    const step = this.#teardown.then(async () => {
      poller?.stop();
      await poller?.done.catch(() => {});
      try {
        session?.close();
      } catch (error) {
        // Only after the device was removed; its objects are gone with it.
        if (!(error instanceof VerbsError) || !deviceGone(error)) throw error;
        this.#deviceLost = true;
      }
    });
    this.#teardown = step.catch(() => {});
    return step;
  }

  async #reconnect(cause: Error, attempts: number): Promise<void> {
    const o = this.#options.reconnect;
    const started = performance.now();
    const deadline = started + (o?.forMs ?? Infinity);
    const maxDelayMs = o?.maxDelayMs ?? reconnectMaxDelayMsDefault;
    let delayMs = Math.min(o?.delayMs ?? 500, maxDelayMs);
    await this.#teardownSession();
    let last: unknown = cause;
    let attempt = 0;
    while (
      attempt < attempts && performance.now() < deadline && !this.#closing &&
      !this.#engine.failure
    ) {
      attempt++;
      // Exponential backoff with jitter (50-100% of the delay), never past the deadline.
      const wait = Math.min(delayMs * (0.5 + Math.random() / 2), deadline - performance.now());
      await new Promise((r) => setTimeout(r, Math.max(0, wait)));
      delayMs = Math.min(delayMs * 2, maxDelayMs);
      try {
        if (this.#deviceLost) this.#reopenDevice();
        // BUSY fails this attempt at once: the attempts above are the retries.
        const session = await openSession(this.#side, {
          ...this.#config,
          connectAttempts: 1,
          busyRetryMs: 0,
        });
        this.#start(session);
        const failure = this.#engine.failure as Error | undefined; // attach() may have failed it
        this.#log(
          failure
            ? `primary: the new session cannot continue: ${failure.message}`
            : `primary: session resumed at seq ${session.welcome.nextSeq} (attempt ${attempt}, ${
              Math.round(performance.now() - started)
            } ms after the break)`,
        );
        return;
      } catch (error) {
        last = error;
        if (error instanceof VerbsError) this.#deviceLost ||= deviceGone(error);
      }
    }
    this.#engine.fail(
      new SessionError(
        "peer-closed",
        `Could not reconnect after ${attempt} attempts in ${
          Math.round(performance.now() - started)
        } ms (the bound: ${attempts} attempts${
          o?.forMs !== undefined ? ` or ${o.forMs} ms` : ""
        }): ${(last as Error).message}`,
        last,
      ),
    );
  }

  /**
   * The device was removed (e.g. `rdma link delete`) and perhaps added again: close what
   * belonged to the old one, open it anew and register the ring and ack buffers there.
   * Throws (the attempt fails) while the device is still missing.
   */
  #reopenDevice(): void {
    for (const mr of this.#mrs) {
      try {
        mr.close();
      } catch { /* the device is gone: nothing left to release */ }
    }
    this.#mrs = [];
    try {
      this.#side.close();
    } catch { /* as above */ }
    // All three or none: a half-opened device would keep the next attempt from closing it.
    const { side, ringMr, acksMr } = openInOrder((stack) => {
      const side = stack.use(Side.open(this.#options));
      const ringMr = stack.use(side.pd.register({
        address: this.#memory.address,
        length: this.#memory.length,
        owner: this.#memory,
      }, A.IBV_ACCESS_LOCAL_WRITE));
      const acksMr = stack.use(side.pd.register(this.#engine.acksBuffer, A.IBV_ACCESS_LOCAL_WRITE));
      return { side, ringMr, acksMr };
    });
    this.#side = side;
    this.#mrs = [acksMr, ringMr];
    this.#engine.rebind(ringMr, acksMr);
    this.#deviceLost = false;
    this.#log(`primary: reopened ${this.#side.describe()} after the device was removed`);
  }

  /**
   * Replicates one log: `source` is copied into the data ring (or fills it in place);
   * resolves when the replica's OK ack arrives, rejects with a ReplicationError (refused),
   * BackpressureError (no room in time) or SessionError (session over) otherwise.
   */
  replicate(source: LogSource, options: LogOptions): Promise<ReplicatedLog> {
    const length = source instanceof Uint8Array ? source.length : options.length ?? -1;
    const failure = this.#engine.failure ??
      (this.#closing ? new SessionError("closed", "The primary is closing") : undefined);
    if (failure) return Promise.reject(failure);
    if (
      !Number.isInteger(length) || length < blockBytes || length % blockBytes !== 0 ||
      length > this.maxLogBytes
    ) {
      return Promise.reject(
        new RangeError(
          `A log is a multiple of ${blockBytes} bytes up to ${this.maxLogBytes}, got ${length}`,
        ),
      );
    }
    if (!Number.isSafeInteger(options.lba) || options.lba < 0) {
      return Promise.reject(
        new RangeError(`lba must be a non-negative integer, got ${options.lba}`),
      );
    }
    return this.#admission.submit(source, length, options.lba, options.fua ? LbaFlags.FUA : 0);
  }

  /**
   * Replicates the logs `producer` describes, pulling the next one whenever there is room
   * and posting it in the same turn as the ack that made the room: the allocation-free
   * path (no promise per log). Resolves when the producer has no more and every posted
   * log was answered; a refusal or a failure is reported to the producer per log and in
   * the result. At most `depth` of its logs are in flight (default: the primary's depth).
   * One stream at a time.
   */
  stream(producer: LogProducer, options: { depth?: number } = {}): Promise<StreamResult> {
    const depth = options.depth ?? this.depth;
    if (!Number.isInteger(depth) || depth < 1 || depth > this.depth) {
      return Promise.reject(
        new RangeError(`A stream's depth is 1..${this.depth} (the primary's), got ${depth}`),
      );
    }
    if (this.#stream) {
      return Promise.reject(new RangeError("A stream is already running: await it first"));
    }
    const failure = this.#engine.failure ??
      (this.#closing ? new SessionError("closed", "The primary is closing") : undefined);
    if (failure) return Promise.reject(failure);
    const stream = new LogStream(producer, this.#engine, {
      maxLogBytes: this.maxLogBytes,
      depth,
    });
    this.#stream = stream;
    const done = stream.done;
    this.#engine.beginBatch();
    try {
      stream.pump(this.#admission.waiting > 0);
    } finally {
      this.#engine.endBatch();
    }
    return done.finally(() => {
      if (this.#stream === stream) this.#stream = undefined;
    });
  }

  /**
   * Sends a raw 64-byte record (crafted or broken, for tests and fault scenarios) when
   * nothing else is in flight; resolves with the replica's ack as it came.
   */
  sendRawRecord(record: Uint8Array): Promise<Ack> {
    if (record.length !== recordBytes) {
      return Promise.reject(
        new RangeError(`A record has ${recordBytes} bytes, got ${record.length}`),
      );
    }
    if (this.#engine.failure) return Promise.reject(this.#engine.failure);
    if (this.#engine.inFlight > 0 || this.#admission.waiting > 0 || !this.#session) {
      return Promise.reject(
        new RangeError(
          "sendRawRecord needs a session with nothing else in flight: await earlier logs",
        ),
      );
    }
    const entry = this.#engine.takeRaw();
    const promise = new Promise<Ack>((resolve, reject) => {
      entry.onAck = resolve;
      entry.reject = reject;
    });
    this.#engine.postRaw(record, entry);
    return promise;
  }

  /** Retain mode: the logs through `seq` are de-staged: frees them here and at the replica. */
  release(seq: number): void {
    this.#engine.release(seq);
    this.#admission.admit();
  }

  /**
   * Retain mode: fails every log waiting for room with `error`, at once. For an owner that
   * can release no more (its de-staging failed): they would otherwise wait out the
   * admission timeout. Logs already posted are not touched.
   */
  failWaiting(error: Error): void {
    this.#admission.failAll(error);
  }

  /** Every log through this seq has been answered (acked, or refused). */
  get answeredSeq(): number {
    return this.#engine.answeredSeq;
  }

  /** This side's ring position released so far (the write cache persists it). */
  get ringReleasedPos(): number {
    return this.#engine.ring.releasedPos;
  }

  /** Counters, credits, latency percentiles and recoveries. */
  stats(): PrimaryStatsValue {
    return this.#stats.value(this.#engine);
  }

  /** The digest of every acked log (compare with the replica's). */
  digest(): ReturnType<LogDigest["value"]> {
    return this.#engine.digest.value();
  }

  /** The final failure, if the primary cannot go on. */
  get failure(): Error | undefined {
    return this.#engine.failure;
  }

  /** Breaks the current session on purpose (fault injection): moves its QP to ERR. */
  breakSession(): void {
    this.#session?.link.qp.toError();
  }

  /**
   * Waits (bounded by the ack timeout) for every log in flight, then ends the session and
   * releases the QP, the memory and the device. Idempotent.
   */
  async close(): Promise<void> {
    if (this.#closing) return;
    const deadline = performance.now() + (this.#options.ackTimeoutMs ?? 5000);
    while (
      (this.#engine.inFlight > 0 || this.#admission.waiting > 0 || this.#stream?.active ||
        this.#reconnecting) &&
      !this.#engine.failure && performance.now() < deadline
    ) {
      await new Promise((r) => setTimeout(r, 2));
    }
    this.#closing = true;
    await this.#reconnecting?.catch(() => {});
    this.#engine.fail(new SessionError("closed", "The primary closed the session"));
    await this.#teardownSession();
    for (const mr of this.#mrs) mr.close();
    if (this.#ownsMemory) this.#memory.close();
    this.#side.close();
  }

  /** Same as {@linkcode Primary.close}, for `await using`. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}

/** Errors a verb returns once its device is gone (removed, disassociated). */
function deviceGone(error: VerbsError): boolean {
  return error.errnoName === "EIO" || error.errnoName === "ENODEV";
}
