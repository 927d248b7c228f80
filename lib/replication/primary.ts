/**
 * The primary: places each log in its data ring (the same offset as in the replica's),
 * posts the RDMA WRITE of the data and the inline SEND of the record in one chain, and
 * reports the log replicated when, and only when, the replica's OK ack arrives.
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
import { checkLogLength, checkRingBytes, logBytesLimit, RingCursor } from "../log/ring.ts";
import { LbaFlags, recordBytes } from "../log/record.ts";
import { type Ack, ackBytes } from "../log/ack.ts";
import type { MemoryRegion } from "../verbs/pd.ts";
import { connectBootstrap } from "./bootstrap.ts";
import type { BootstrapLink } from "./bootstrap.ts";
import { LogDigest } from "./digest.ts";
import { BackpressureError, SessionError } from "./errors.ts";
import { Entry, Flight, type ReplicatedLog } from "./flight.ts";
import { CompletionPoller } from "./poller.ts";
import { PrimaryEngine, type PrimaryHooks } from "./primary_engine.ts";
import { anonymousMemory, type RingMemory } from "./ring_memory.ts";
import { type Link, Side, type SideOptions } from "./side.ts";
import { PrimaryStats, type PrimaryStatsValue } from "./primary_stats.ts";

export type { ReplicatedLog } from "./flight.ts";
export type { PlacedLog, PrimaryHooks } from "./primary_engine.ts";

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
  /** Records in flight at most (1..1024, default 16); ≤ the replica's slots. */
  depth?: number;
  /** A log not acked within this time ends the session (default 5000 ms). */
  ackTimeoutMs?: number;
  /** Busy-poll this long before sleeping on the completion channel (default 1000 us). */
  spinUs?: number;
  /** Ring memory to use (e.g. the write cache's mapping); default anonymous memory. */
  memory?: RingMemory;
  /**
   * Keep acked logs in the ring until {@linkcode Primary.release} (a write cache de-stages
   * them first); the replica must run with `retain` too. Default false.
   */
  retain?: boolean;
  /** Write-cache hooks (persistence points before a log is posted). */
  hooks?: PrimaryHooks;
  /** A log waiting this long for room (depth, credits, ring) fails with BackpressureError (default 10000 ms). */
  admissionTimeoutMs?: number;
  /** Where log lines go (default stderr). */
  log?: (line: string) => void;
}

/** How a caller hands a log's bytes over: a copy, or a fill straight into the ring. */
export type LogSource = Uint8Array | ((ring: Uint8Array, offset: number, length: number) => void);

/** Per-log options. */
export interface LogOptions {
  /** Logical block address of the first 4096-byte block. */
  lba: number;
  /** Force unit access. */
  fua?: boolean;
  /** Length when `source` is a fill function. */
  length?: number;
}

const depthMax = 1000;
const waitersMax = 4096;

interface Waiter {
  source: LogSource;
  length: number;
  lba: number;
  lbaFlags: number;
  submitted: number;
  entry: Entry;
}

const admissionTimeoutMsDefault = 10_000;

/** A connected primary. */
export class Primary implements AsyncDisposable {
  readonly #side: Side;
  readonly #link: Link;
  readonly #control: BootstrapLink;
  readonly #memory: RingMemory;
  readonly #ownsMemory: boolean;
  readonly #mrs: MemoryRegion[];
  readonly #engine: PrimaryEngine;
  readonly #poller: CompletionPoller;
  readonly #waiters: Waiter[] = [];
  readonly #stats: PrimaryStats;
  readonly #options: PrimaryOptions;
  readonly maxLogBytes: number;
  readonly depth: number;
  #closing = false;

  private constructor(parts: {
    side: Side;
    link: Link;
    control: BootstrapLink;
    memory: RingMemory;
    ownsMemory: boolean;
    mrs: MemoryRegion[];
    engine: PrimaryEngine;
    stats: PrimaryStats;
    options: PrimaryOptions;
    maxLogBytes: number;
    depth: number;
  }) {
    this.#side = parts.side;
    this.#link = parts.link;
    this.#control = parts.control;
    this.#memory = parts.memory;
    this.#ownsMemory = parts.ownsMemory;
    this.#mrs = parts.mrs;
    this.#engine = parts.engine;
    this.#stats = parts.stats;
    this.#options = parts.options;
    this.maxLogBytes = parts.maxLogBytes;
    this.depth = parts.depth;
    this.#engine.onProgress = () => this.#admitWaiters();
    this.#engine.onFailure = (error) => this.#failWaiters(error);
    this.#poller = new CompletionPoller(this.#link.cq, {
      spinUs: parts.options.spinUs ?? 1000,
      idleWaitMs: 20,
      onCompletions: (n) => this.#engine.onCompletions(n),
      onTick: (now) => {
        this.#engine.checkTimeout(now);
        this.#expireWaiters(now);
      },
    });
    this.#poller.start();
    this.#control.waitClosed().then(() => {
      if (!this.#closing) {
        this.#engine.fail(
          new SessionError("peer-closed", "The replica closed the control connection"),
        );
      }
    });
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
    const log = options.log ?? ((line: string) => console.error(line));
    const side = Side.open(options);
    const cleanup: (() => void)[] = [() => side.close()];
    try {
      const memory = options.memory ?? anonymousMemory(ringBytes);
      if (!options.memory) cleanup.unshift(() => memory.close());
      const signalEvery = Math.min(16, depth);
      const link = side.openLink({
        maxSendWr: 2 * depth + 2 * signalEvery + 8,
        maxRecvWr: depth + 2,
        maxInlineData: recordBytes,
      });
      cleanup.unshift(() => link.close());
      const ringMr = side.pd.register({
        address: memory.address,
        length: memory.length,
        owner: memory,
      }, A.IBV_ACCESS_LOCAL_WRITE);
      cleanup.unshift(() => ringMr.close());
      const acks = new ArrayBuffer((depth + 2) * ackBytes);
      const acksMr = side.pd.register(acks, A.IBV_ACCESS_LOCAL_WRITE);
      cleanup.unshift(() => acksMr.close());
      const control = await connectBootstrap({
        hostname: options.host,
        port: options.port,
        secret: options.secret,
        endpoint: link.endpoint,
        ringBytes,
        maxLogBytes,
        // Records in flight: `depth` logs plus a SKIP or RELEASE and a NOP (the replica
        // must have that many RECVs posted, or a SEND would meet an empty queue).
        depth: depth + 2,
      });
      cleanup.unshift(() => control.close());
      const welcome = control.welcome;
      link.connect(welcome.endpoint, 0);
      const stats = new PrimaryStats();
      const engine = new PrimaryEngine({
        link,
        memory,
        ringMr,
        acks,
        acksMr,
        ring: new RingCursor({ ringBytes, startPos: welcome.released }),
        flight: new Flight(depth + 2),
        depth,
        signalEvery,
        ackTimeoutMs,
        remote: { address: welcome.ringAddr, rkey: welcome.rkey },
        nextSeq: welcome.nextSeq,
        released: welcome.released,
        stats,
        digest: new LogDigest(),
        retain: options.retain ?? false,
        hooks: options.hooks,
      });
      engine.postAckReceives();
      control.sendReady();
      log(
        `primary: ${side.describe()} → replica ${options.host} QP ${welcome.endpoint.qpn}, ` +
          `next seq ${welcome.nextSeq}, depth ${depth}, ring ${ringBytes} B`,
      );
      return new Primary({
        side,
        link,
        control,
        memory,
        ownsMemory: !options.memory,
        mrs: [acksMr, ringMr],
        engine,
        stats,
        options,
        maxLogBytes,
        depth,
      });
    } catch (error) {
      for (const step of cleanup) {
        try {
          step();
        } catch {
          // keep the first error
        }
      }
      throw error;
    }
  }

  /**
   * Replicates one log: `source` is copied into the data ring (or fills it in place);
   * resolves when the replica's OK ack arrives, rejects with a ReplicationError (refused)
   * or SessionError (session ended) otherwise.
   */
  replicate(source: LogSource, options: LogOptions): Promise<ReplicatedLog> {
    const length = typeof source === "function" ? options.length ?? -1 : source.length;
    const failure = this.#engine.failure ??
      (this.#closing ? new SessionError("closed", "The primary is closing") : undefined);
    if (failure) return Promise.reject(failure);
    if (
      !Number.isInteger(length) || length < 4096 || length % 4096 !== 0 || length > this.maxLogBytes
    ) {
      return Promise.reject(
        new RangeError(
          `A log is a multiple of 4096 bytes up to ${this.maxLogBytes}, got ${length}`,
        ),
      );
    }
    if (!Number.isSafeInteger(options.lba) || options.lba < 0) {
      return Promise.reject(
        new RangeError(`lba must be a non-negative integer, got ${options.lba}`),
      );
    }
    const lbaFlags = options.fua ? LbaFlags.FUA : 0;
    const submitted = performance.now();
    if (this.#waiters.length === 0 && this.#engine.canPost(length)) {
      const entry = this.#engine.takeLog();
      const promise = promiseFor(entry);
      this.#engine.postLog(entry, source, length, options.lba, lbaFlags, submitted);
      return promise;
    }
    if (this.#waiters.length >= waitersMax) {
      return Promise.reject(
        new RangeError(`${waitersMax} logs are already waiting for room: await earlier ones`),
      );
    }
    this.#stats.admissionWaits++;
    const entry = new Entry();
    const promise = promiseFor(entry);
    this.#waiters.push({ source, length, lba: options.lba, lbaFlags, submitted, entry });
    return promise;
  }

  /**
   * Sends a raw 64-byte record (crafted or broken, for tests and fault scenarios) when
   * nothing else is in flight; resolves with the replica's ack as it came. The primary's
   * own sequence and ring are untouched; the replica must change nothing either unless
   * the record is a valid next log.
   */
  sendRawRecord(record: Uint8Array): Promise<Ack> {
    if (record.length !== recordBytes) {
      return Promise.reject(
        new RangeError(`A record has ${recordBytes} bytes, got ${record.length}`),
      );
    }
    if (this.#engine.failure) return Promise.reject(this.#engine.failure);
    if (this.#engine.inFlight > 0 || this.#waiters.length > 0) {
      return Promise.reject(
        new RangeError("sendRawRecord needs nothing else in flight: await earlier logs"),
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

  #admitWaiters(): void {
    while (this.#waiters.length > 0 && this.#engine.canPost(this.#waiters[0].length)) {
      const w = this.#waiters.shift()!;
      const entry = this.#engine.takeLog();
      entry.resolve = w.entry.resolve;
      entry.reject = w.entry.reject;
      this.#engine.postLog(entry, w.source, w.length, w.lba, w.lbaFlags, w.submitted);
    }
  }

  /** Fails the logs that waited longer than the admission timeout for room. */
  #expireWaiters(now: number): void {
    const limit = this.#options.admissionTimeoutMs ?? admissionTimeoutMsDefault;
    while (this.#waiters.length > 0 && now - this.#waiters[0].submitted > limit) {
      const w = this.#waiters.shift()!;
      this.#stats.admissionTimeouts++;
      const s = this.stats();
      w.entry.reject?.(
        new BackpressureError(
          `No room for a ${w.length}-byte log for ${limit} ms: ${s.inFlight} records in flight, ` +
            `ring ${s.writePos - s.released} B ahead of the replica's release` +
            (this.#options.retain ? " (retain mode: is the de-stager releasing logs?)" : ""),
        ),
      );
    }
  }

  /**
   * Retain mode: the logs through `seq` are safe elsewhere (de-staged): frees their space
   * here and tells the replica to free its copies (a RELEASE record).
   */
  release(seq: number): void {
    this.#engine.release(seq);
    this.#admitWaiters();
  }

  /** This side's ring position released so far (the write cache persists it). */
  get ringReleasedPos(): number {
    return this.#engine.ring.releasedPos;
  }

  /** Every log through this seq has been answered (acked, or refused). */
  get answeredSeq(): number {
    return this.#engine.answeredSeq;
  }

  #failWaiters(error: Error): void {
    for (const w of this.#waiters.splice(0)) w.entry.reject?.(error);
  }

  /** Counters, credits and latency percentiles. */
  stats(): PrimaryStatsValue {
    return this.#stats.value(this.#engine);
  }

  /** The digest of every acked log (compare with the replica's). */
  digest(): ReturnType<LogDigest["value"]> {
    return this.#engine.digest.value();
  }

  /** The session's failure, if it ended. */
  get failure(): Error | undefined {
    return this.#engine.failure;
  }

  /**
   * Waits (bounded by the ack timeout) for every log in flight, then ends the session and
   * releases the QP, the memory and the device. Idempotent.
   */
  async close(): Promise<void> {
    if (this.#closing) return;
    this.#closing = true;
    const deadline = performance.now() + (this.#options.ackTimeoutMs ?? 5000);
    while (
      (this.#engine.inFlight > 0 || this.#waiters.length > 0) && !this.#engine.failure &&
      performance.now() < deadline
    ) {
      await new Promise((r) => setTimeout(r, 2));
    }
    this.#engine.fail(new SessionError("closed", "The primary closed the session"));
    this.#poller.stop();
    await this.#poller.done.catch(() => {});
    this.#control.close();
    this.#link.close();
    for (const mr of this.#mrs) mr.close();
    if (this.#ownsMemory) this.#memory.close();
    this.#side.close();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}

function promiseFor(entry: Entry): Promise<ReplicatedLog> {
  return new Promise<ReplicatedLog>((resolve, reject) => {
    entry.resolve = resolve;
    entry.reject = reject;
  });
}
