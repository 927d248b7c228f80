/**
 * Starting a child tool (`cmd/replica.ts`, `cmd/primary.ts`, `cmd/cache.ts`, or a test
 * program) in a topology's namespace: argv from the tool's own encoder, the hot-path V8
 * flags, an optional ready handshake (the `ready` event), a bound on its run time, its
 * stdout read as bounded lines (events as they come, the report at the end), and a stop
 * that escalates from SIGTERM to SIGKILL.
 *
 * @example
 * ```ts ignore
 * import { readTopology } from "../lab/topology.ts";
 * import { replicaTool } from "./replica.ts";
 * import { spawnTool } from "./spawn.ts";
 * const { b } = readTopology()!;
 * await using replica = await spawnTool(replicaTool, {
 *   device: b.device, host: b.address, port: 0, once: true, json: true, events: true,
 * }, { end: b, env: { RRL_SECRET: "..." }, ready: true });
 * console.log(replica.port, (await replica.report()).accepted);
 * ```
 *
 * @module
 */
import { denoArgv } from "../lab/processes.ts";
import { type Endpoint, inNamespace } from "../lab/topology.ts";
import { ToolOutputError } from "./decode.ts";
import { decodeEvent, isEventLine, type ToolEvent, type ToolEventName } from "./events.ts";

/** How to start one tool and read what it prints. */
export interface ToolSpec<A, R> {
  /** Its name in messages (`replica`). */
  name: string;
  /** The project file to run (`cmd/replica.ts`). */
  file: string;
  /** Its argv (the only encoder of its options). */
  encode(args: A): string[];
  /** Decodes its report line; throws `ToolOutputError`. */
  decodeReport(line: string): R;
}

/** Options of {@linkcode spawnTool}. */
export interface SpawnOptions {
  /** The namespace to run in. */
  end: Endpoint;
  env: Record<string, string>;
  /** Wait for the `ready` event (the tool must run with `--events`) before resolving. */
  ready?: boolean;
  /** Bound of that wait; default {@linkcode readyTimeoutMsDefault}. */
  readyTimeoutMs?: number;
  /** Killed (SIGKILL) after this long; default {@linkcode runTimeoutMsDefault}. */
  timeoutMs?: number;
  /** Also write its stdout here. */
  stdoutFile?: string;
  /** Write its stderr here instead of this process's stderr. */
  stderrFile?: string;
  /** Called with each event as it arrives. */
  onEvent?: (event: ToolEvent) => void;
}

/** How a tool ended: its exit code or signal, and its report or why there is none. */
export interface ToolEnd<R> {
  code: number;
  signal: Deno.Signal | null;
  report?: R;
  error?: ToolOutputError;
}

/** A running tool. */
export interface ToolProcess<R> extends AsyncDisposable {
  readonly name: string;
  /** The port of its `ready` event (0 before it or without one). */
  readonly port: number;
  /** Whether it has exited (and its output has been read). */
  readonly exited: boolean;
  /** The events so far (the first {@linkcode eventsMax}). */
  readonly events: readonly ToolEvent[];
  /** Resolves with its first event `name`; rejects when it exits first or after `timeoutMs`. */
  waitFor<K extends ToolEventName>(
    name: K,
    timeoutMs: number,
  ): Promise<Extract<ToolEvent, { event: K }>>;
  /** Resolves when it has exited and its output has been read. */
  ended(): Promise<ToolEnd<R>>;
  /** Its report, once it has exited; a `ToolOutputError` when it printed none or a bad one. */
  report(): Promise<R>;
  /** SIGTERM (the commands close cleanly and report). */
  stop(): void;
  /** SIGKILL. */
  kill(): void;
}

/** A started tool's default bound on its run time. */
export const runTimeoutMsDefault = 1_800_000;
/** The ready handshake's default bound. */
export const readyTimeoutMsDefault = 60_000;
/** After SIGTERM, how long a tool may take to exit before SIGKILL. */
export const stopTimeoutMs = 15_000;
/** Events kept per process. */
export const eventsMax = 1000;
/** Longest stdout line read (a report); a longer one is refused. */
export const lineCharsMax = 1 << 20;

/** Starts `spec` with `args`; with `ready`, resolves once its `ready` event came. */
export async function spawnTool<A, R>(
  spec: ToolSpec<A, R>,
  args: A,
  options: SpawnOptions,
): Promise<ToolProcess<R>> {
  const argv = inNamespace(options.end, denoArgv(spec.file, spec.encode(args)));
  const child = new Deno.Command(argv[0], {
    args: argv.slice(1),
    env: options.env,
    stdin: "null",
    stdout: "piped",
    stderr: options.stderrFile ? "piped" : "inherit",
  }).spawn();
  const process = new Running(spec, child, options);
  if (!options.ready) return process;
  try {
    await process.waitFor("ready", options.readyTimeoutMs ?? readyTimeoutMsDefault);
    return process;
  } catch (error) {
    process.kill();
    await process.ended();
    throw error;
  }
}

/** Runs `spec` to its end; its exit code and report (a `ToolOutputError` when it printed none). */
export async function runTool<A, R>(
  spec: ToolSpec<A, R>,
  args: A,
  options: SpawnOptions,
): Promise<{ code: number; report: R }> {
  const process = await spawnTool(spec, args, options);
  const end = await process.ended();
  if (end.error) throw end.error;
  return { code: end.code, report: end.report as R };
}

/** A test program whose last stdout line is JSON, as a tool (its report is not checked). */
export function scriptTool(file: string): ToolSpec<string[], unknown> {
  return {
    name: file,
    file,
    encode: (args) => args,
    decodeReport(line) {
      try {
        return JSON.parse(line);
      } catch {
        throw new ToolOutputError(file, "line", `not JSON: ${line.slice(0, 80)}`);
      }
    },
  };
}

type Waiter = { name: ToolEventName; resolve: (e: ToolEvent) => void; reject: (e: Error) => void };

class Running<A, R> implements ToolProcess<R> {
  readonly name: string;
  port = 0;
  exited = false;
  readonly events: ToolEvent[] = [];
  readonly #spec: ToolSpec<A, R>;
  readonly #child: Deno.ChildProcess;
  readonly #onEvent?: (event: ToolEvent) => void;
  readonly #waiters = new Set<Waiter>();
  readonly #end: Promise<ToolEnd<R>>;
  /** The last stdout line that is not an event (the report once it has exited). */
  #last: string | undefined;
  #lastTooLong = false;
  /** The first malformed event line: the tool broke its contract. */
  #eventError: ToolOutputError | undefined;

  constructor(spec: ToolSpec<A, R>, child: Deno.ChildProcess, options: SpawnOptions) {
    this.name = spec.name;
    this.#spec = spec;
    this.#child = child;
    this.#onEvent = options.onEvent;
    const timer = setTimeout(() => this.kill(), options.timeoutMs ?? runTimeoutMsDefault);
    const stderr = options.stderrFile
      ? child.stderr.pipeTo(
        Deno.openSync(options.stderrFile, { write: true, create: true }).writable,
      )
      : Promise.resolve();
    const stdout = readLines(child.stdout, options.stdoutFile, (line) => this.#line(line));
    this.#end = Promise.all([child.status, stdout.catch(() => {}), stderr.catch(() => {})])
      .then(([status]) => {
        clearTimeout(timer);
        this.exited = true;
        const end = this.#finish(status);
        for (const w of this.#waiters) {
          w.reject(new Error(`${this.name} exited before its ${w.name} event (see its messages)`));
        }
        this.#waiters.clear();
        return end;
      });
  }

  #line(line: string | undefined): void {
    if (line === undefined) {
      this.#last = undefined;
      this.#lastTooLong = true;
    } else if (isEventLine(line)) {
      let event: ToolEvent;
      try {
        event = decodeEvent(line, this.name);
      } catch (error) {
        this.#eventError ??= error as ToolOutputError;
        return;
      }
      if (event.event === "ready") this.port = event.port;
      if (this.events.length < eventsMax) this.events.push(event);
      this.#onEvent?.(event);
      for (const w of this.#waiters) {
        if (w.name === event.event) {
          this.#waiters.delete(w);
          w.resolve(event);
        }
      }
    } else if (line !== "") {
      this.#last = line;
      this.#lastTooLong = false;
    }
  }

  #finish(status: Deno.CommandStatus): ToolEnd<R> {
    const end: ToolEnd<R> = { code: status.code, signal: status.signal };
    const how = `exit code ${status.code}${status.signal ? `, ${status.signal}` : ""}`;
    try {
      if (this.#eventError) throw this.#eventError;
      if (this.#lastTooLong) {
        throw new ToolOutputError(this.name, "line", `longer than ${lineCharsMax} characters`);
      }
      if (this.#last === undefined) {
        throw new ToolOutputError(
          this.name,
          "line",
          `printed no report (${how}); see its messages above`,
        );
      }
      end.report = this.#spec.decodeReport(this.#last);
    } catch (error) {
      if (!(error instanceof ToolOutputError)) throw error;
      end.error = error;
    }
    return end;
  }

  waitFor<K extends ToolEventName>(
    name: K,
    timeoutMs: number,
  ): Promise<Extract<ToolEvent, { event: K }>> {
    const seen = this.events.find((e) => e.event === name);
    if (seen) return Promise.resolve(seen as Extract<ToolEvent, { event: K }>);
    if (this.exited) {
      return Promise.reject(new Error(`${this.name} exited without a ${name} event`));
    }
    const { promise, resolve, reject } = Promise.withResolvers<ToolEvent>();
    const waiter = { name, resolve, reject };
    this.#waiters.add(waiter);
    const timer = setTimeout(() => {
      this.#waiters.delete(waiter);
      reject(new Error(`${this.name} sent no ${name} event within ${timeoutMs / 1000} s`));
    }, timeoutMs);
    return promise.finally(() => clearTimeout(timer)) as Promise<Extract<ToolEvent, { event: K }>>;
  }

  ended(): Promise<ToolEnd<R>> {
    return this.#end;
  }

  async report(): Promise<R> {
    const end = await this.#end;
    if (end.error) throw end.error;
    return end.report as R;
  }

  stop(): void {
    this.#signal("SIGTERM");
  }

  kill(): void {
    this.#signal("SIGKILL");
  }

  #signal(signal: Deno.Signal): void {
    if (this.exited) return;
    try {
      this.#child.kill(signal);
    } catch {
      // gone already
    }
  }

  async [Symbol.asyncDispose](): Promise<void> {
    this.stop();
    const timer = setTimeout(() => this.kill(), stopTimeoutMs);
    await this.#end.catch(() => {});
    clearTimeout(timer);
  }
}

/**
 * Reads `stream` as lines (`\n`), passing each to `onLine` (`undefined` for a line longer
 * than {@linkcode lineCharsMax}, which is dropped); a last line without its newline too.
 * Copies the bytes to `teeFile` when given.
 */
async function readLines(
  stream: ReadableStream<Uint8Array>,
  teeFile: string | undefined,
  onLine: (line: string | undefined) => void,
): Promise<void> {
  using tee = teeFile ? Deno.openSync(teeFile, { write: true, create: true }) : undefined;
  const decoder = new TextDecoder();
  let pending = "";
  let tooLong = false;
  for await (const chunk of stream) {
    for (let at = 0; tee && at < chunk.length;) at += tee.writeSync(chunk.subarray(at));
    pending += decoder.decode(chunk, { stream: true });
    for (let nl = pending.indexOf("\n"); nl >= 0; nl = pending.indexOf("\n")) {
      onLine(tooLong ? undefined : pending.slice(0, nl));
      pending = pending.slice(nl + 1);
      tooLong = false;
    }
    if (pending.length > lineCharsMax) {
      tooLong = true;
      pending = "";
    }
  }
  pending += decoder.decode();
  if (tooLong) onLine(undefined);
  else if (pending !== "") onLine(pending);
}
