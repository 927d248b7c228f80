/**
 * The replica: serves one primary at a time over an RC QP. For each RECV completion it
 * decodes the record, checks it against its ring (docs/protocol.md, "Ordering and
 * completion"), re-posts the RECV and answers with a 32-byte inline SEND.
 *
 * @example
 * ```ts ignore
 * await using replica = await Replica.listen({ device: "rxeb", hostname: "192.0.2.2", secret });
 * console.log(replica.port, replica.stats());
 * ```
 *
 * @module
 */
import { IBV_ACCESS_FLAGS as A } from "../../ffi/verbs_constants.ts";
import { checkMetaSlots, checkRingBytes, logBytesLimit } from "../log/ring.ts";
import type { MemoryRegion } from "../verbs/pd.ts";
import { serveBootstrap } from "./bootstrap.ts";
import type { AcceptDecision, BootstrapServer, BootstrapSession } from "./bootstrap.ts";
import type { Hello } from "./control_messages.ts";
import { anonymousMemory, type RingMemory } from "./ring_memory.ts";
import { ReplicaSession } from "./replica_session.ts";
import type { WaitMode } from "./poller.ts";
import {
  type PersistHook,
  type ReplicaCounters,
  type ReplicaResume,
  ReplicaState,
} from "./replica_state.ts";
import type { ReplicaFaults } from "./faults.ts";
import { Side, type SideOptions } from "./side.ts";
import { openInOrderAsync } from "../dispose.ts";
import type { DigestValue } from "./digest.ts";
import { blockBytes } from "../block.ts";

/** Options of {@linkcode Replica.listen}. */
export interface ReplicaOptions extends SideOptions {
  /** Shared secret (8+ bytes): the primary must prove it before any rkey leaves. */
  secret: string;
  /** TCP address to bind for the control connection (default 0.0.0.0). */
  hostname?: string;
  /** TCP port (default 18515; 0 picks one). */
  port?: number;
  /** Data ring size: a multiple of 4096, 64 KiB to 1 GiB (default 16 MiB). */
  ringBytes?: number;
  /** Posted RECVs = records a primary may have in flight (1..1024, default 64). */
  metaSlots?: number;
  /** Largest log accepted (default min(1 MiB, ringBytes / 2)). */
  maxLogBytes?: number;
  /** Ring memory to use (e.g. a file mapping); default anonymous memory. */
  memory?: RingMemory;
  /** Makes each accepted log durable before its ack (the write cache's hook). */
  persist?: PersistHook;
  /** How to wait for completions: spin, events (sleep at once) or hybrid (default). */
  wait?: WaitMode;
  /** Hybrid wait: busy-poll this long before sleeping on the completion channel (default 1000 us). */
  spinUs?: number;
  /** Where log lines go (default stderr). */
  log?: (line: string) => void;
  /** Called after a RELEASE freed logs through `seq` (the write cache persists its header). */
  onRelease?: (seq: number, releasedPos: number) => void;
  /** Keep accepted logs until the primary's RELEASE (a write cache) instead of freeing them once persisted. */
  retain?: boolean;
  /** Faults to inject (tests, scenarios): see lib/replication/faults.ts. */
  faults?: ReplicaFaults;
  /** Called just before a fault kills the process (write the trace). */
  beforeDeath?: () => void;
  /** Continue a persistent ring (a restart): what its write cache held. */
  resume?: ReplicaResume;
}

/** What {@linkcode Replica.stats} reports. */
export interface ReplicaStats extends ReplicaCounters {
  /** The sequence number the replica expects next. */
  nextSeq: number;
  /** The ring position up to which space is released (the primary's credits). */
  released: number;
  /** Digest of the accepted logs' bytes, in seq order. */
  digest: DigestValue;
  /** A primary is connected. */
  sessionActive: boolean;
}

const metaSlotsDefault = 64;
const ringBytesDefault = 16 << 20;
const maxLogBytesDefault = 1 << 20;

/** A replica serving primaries, one session at a time. */
export class Replica implements AsyncDisposable {
  readonly #side: Side;
  readonly #state: ReplicaState;
  readonly #mr: MemoryRegion;
  readonly #memory: RingMemory;
  readonly #options: ReplicaOptions;
  readonly #metaSlots: number;
  readonly #log: (line: string) => void;
  #server: BootstrapServer | undefined;
  #session: ReplicaSession | undefined;
  #sessionEnded: Promise<void> = Promise.resolve();
  #firstServedEnded = Promise.withResolvers<void>();
  #closed = false;

  private constructor(o: {
    side: Side;
    memory: RingMemory;
    mr: MemoryRegion;
    state: ReplicaState;
    options: ReplicaOptions;
    metaSlots: number;
  }) {
    this.#side = o.side;
    this.#memory = o.memory;
    this.#mr = o.mr;
    this.#state = o.state;
    this.#options = o.options;
    this.#metaSlots = o.metaSlots;
    this.#log = o.options.log ?? ((line) => console.error(line));
  }

  /** Opens the device, registers the ring and starts listening for primaries. */
  static async listen(options: ReplicaOptions): Promise<Replica> {
    const ringBytes = options.memory?.length ?? options.ringBytes ?? ringBytesDefault;
    checkRingBytes(ringBytes);
    const metaSlots = options.metaSlots ?? metaSlotsDefault;
    checkMetaSlots(metaSlots);
    if (metaSlots > 1024) throw new RangeError(`metaSlots must be 1..1024, got ${metaSlots}`);
    const maxLogBytes = options.maxLogBytes ??
      Math.min(maxLogBytesDefault, logBytesLimit(ringBytes));
    if (
      maxLogBytes % blockBytes !== 0 || maxLogBytes < blockBytes ||
      maxLogBytes > logBytesLimit(ringBytes)
    ) {
      throw new RangeError(
        `maxLogBytes must be a multiple of ${blockBytes} from ${blockBytes} to ${
          logBytesLimit(ringBytes)
        } for a ${ringBytes}-byte ring, got ${maxLogBytes}`,
      );
    }
    // Each step's resource goes on the stack; if a later step fails, they close newest
    // first (the MR before the memory it covers, both before the PD) and the caller sees
    // the error that stopped the start.
    return await openInOrderAsync(async (stack) => {
      const side = stack.use(Side.open(options));
      const memory = options.memory ?? stack.use(anonymousMemory(ringBytes));
      const mr = stack.use(side.pd.register(
        { address: memory.address, length: memory.length, owner: memory },
        A.IBV_ACCESS_LOCAL_WRITE | A.IBV_ACCESS_REMOTE_WRITE,
      ));
      const state = new ReplicaState({
        memory,
        mr,
        maxLogBytes,
        persist: options.persist,
        retain: options.retain,
        onRelease: options.onRelease,
        resume: options.resume,
      });
      const replica = new Replica({ side, memory, mr, state, options, metaSlots });
      const server = await serveBootstrap({
        secret: options.secret,
        hostname: options.hostname ?? "0.0.0.0",
        port: options.port,
        log: replica.#log,
        accept: (hello, context) => Promise.resolve(replica.#accept(hello, context.signal)),
        onSession: (session) => replica.#serve(session),
      });
      replica.#server = stack.use(server);
      replica.#log(
        `replica: listening on ${
          options.hostname ?? "0.0.0.0"
        }:${replica.port}, ${side.describe()}, ` +
          `ring ${ringBytes} B, ${metaSlots} slots`,
      );
      return replica;
    });
  }

  /** The TCP port the control connection listens on. */
  get port(): number {
    return this.#server?.port ?? 0;
  }

  /** Counters, sequence, credits and the digest of accepted logs. */
  stats(): ReplicaStats {
    return {
      ...structuredClone(this.#state.counters),
      nextSeq: this.#state.nextSeq,
      released: this.#state.released,
      digest: this.#state.digest.value(),
      sessionActive: this.#session !== undefined,
    };
  }

  /** Resolves when the current session (if any) has ended. */
  sessionEnded(): Promise<void> {
    return this.#sessionEnded;
  }

  /** Resolves when the first session this replica served has ended (`--once`): no polling. */
  firstSessionEnded(): Promise<void> {
    return this.#firstServedEnded.promise;
  }

  #accept(hello: Hello, signal: AbortSignal): AcceptDecision {
    if (this.#closed) return { ok: false, reason: "REFUSED", text: "the replica is shutting down" };
    if (this.#session) return { ok: false, reason: "BUSY", text: "a primary is connected" };
    const ringBytes = this.#memory.length;
    if (hello.ringBytes !== ringBytes) {
      return {
        ok: false,
        reason: "MISMATCH",
        text: `ring is ${ringBytes} B, the primary asked for ${hello.ringBytes} B`,
      };
    }
    if (hello.maxLogBytes > this.#state.maxLogBytes) {
      return {
        ok: false,
        reason: "MISMATCH",
        text: `largest log is ${this.#state.maxLogBytes} B, asked ${hello.maxLogBytes} B`,
      };
    }
    if (hello.depth > this.#metaSlots) {
      return {
        ok: false,
        reason: "MISMATCH",
        text: `${this.#metaSlots} slots, asked a depth of ${hello.depth}`,
      };
    }
    let made: ReplicaSession | undefined;
    try {
      made = this.#newSession();
      made.connect(hello.endpoint);
    } catch (error) {
      made?.close();
      this.#log(`replica: cannot connect to the primary's QP: ${(error as Error).message}`);
      return { ok: false, reason: "REFUSED", text: "the replica could not connect its QP" };
    }
    const session = made;
    this.#session = session;
    signal.addEventListener("abort", () => this.#endSession(session), { once: true });
    return {
      ok: true,
      welcome: {
        endpoint: session.endpoint,
        ringAddr: this.#memory.address,
        rkey: this.#mr.rkey,
        metaSlots: this.#metaSlots,
        ringBytes,
        nextSeq: this.#state.nextSeq,
        released: this.#state.released,
      },
    };
  }

  /** A session's QP, CQ and slots (closed again if any of them fails). */
  #newSession(): ReplicaSession {
    return new ReplicaSession(this.#side, this.#state, {
      metaSlots: this.#metaSlots,
      wait: this.#options.wait,
      spinUs: this.#options.spinUs ?? 1000,
      // Receiver-not-ready is a fault of the first session: a reconnect recovers from it.
      faults: this.#state.counters.sessions === 0
        ? this.#options.faults
        : { ...this.#options.faults, recvSlots: undefined },
      beforeDeath: this.#options.beforeDeath,
      log: this.#log,
    });
  }

  #serve(bootstrap: BootstrapSession): void {
    const session = this.#session;
    if (!session) {
      bootstrap.close();
      return;
    }
    this.#state.counters.sessions++;
    this.#log(
      `replica: session with ${bootstrap.remoteAddr.hostname} (QP ${bootstrap.hello.endpoint.qpn}), next seq ${this.#state.nextSeq}`,
    );
    session.start();
    this.#sessionEnded = Promise.race([bootstrap.waitClosed(), session.done]).then(
      () => this.#endSession(session, bootstrap),
      (error) => {
        this.#log(`replica: session failed: ${(error as Error).message}`);
        return this.#endSession(session, bootstrap);
      },
    ).finally(() => this.#firstServedEnded.resolve());
  }

  async #endSession(session: ReplicaSession, bootstrap?: BootstrapSession): Promise<void> {
    bootstrap?.close();
    if (this.#session !== session) return;
    this.#session = undefined;
    await session.stop();
    session.close();
    this.#log(
      `replica: session ended; next seq ${this.#state.nextSeq}, ${this.#state.counters.accepted} logs accepted`,
    );
  }

  /** Stops listening, ends the session, releases the ring and the device. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#server?.close();
    if (this.#session) await this.#endSession(this.#session);
    await this.#sessionEnded;
    this.#mr.close();
    if (!this.#options.memory) this.#memory.close();
    this.#side.close();
  }

  /** Same as {@linkcode Replica.close}, for `await using`. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}
