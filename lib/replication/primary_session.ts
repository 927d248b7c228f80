/**
 * One session of a primary: a new completion channel, CQ and RC QP, the bootstrap over
 * TCP (HELLO/WELCOME with the shared secret), and the QP moved to RTS toward the
 * replica's. A primary opens one at start and one per reconnect.
 *
 * @module
 */
import { recordBytes } from "../log/record.ts";
import { type BootstrapLink, connectBootstrap } from "./bootstrap.ts";
import type { WelcomeFields } from "./control_messages.ts";
import type { Link, Side } from "./side.ts";
import { openInOrderAsync } from "../dispose.ts";

/** What a session is opened with. */
export interface SessionConfig {
  host: string;
  port?: number;
  secret: string;
  ringBytes: number;
  maxLogBytes: number;
  /** Logs in flight (the HELLO announces depth + 2 records). */
  depth: number;
  /** Bootstrap connection attempts (the replica may be restarting). */
  connectAttempts?: number;
  connectRetryDelayMs?: number;
  /** How long a BUSY refusal is retried (see `connectBootstrap`). */
  busyRetryMs?: number;
  /** Where BUSY retries are reported. */
  log?: (line: string) => void;
  /** See `ConnectBootstrapOptions.onBusyRetry`. */
  onBusyRetry?: (attempt: number, delayMs: number) => void;
}

/** An open session: its link and control connection, and what the replica granted. */
export interface Session {
  link: Link;
  control: BootstrapLink;
  welcome: WelcomeFields;
  /** Ends the session: control connection, then QP, CQ and channel. Idempotent. */
  close(): void;
}

/**
 * One record SEND in this many is signaled, whatever the depth (like the C reference's
 * 32): each signaled completion retires the unsignaled WRs before it, and an unsignaled
 * SEND costs no completion, no wake-up and no poll.
 */
export const sendSignalEvery = 16;

/** Opens a session on `side`: link, bootstrap, QP to RTS. Cleans up on failure. */
export async function openSession(side: Side, config: SessionConfig): Promise<Session> {
  const { link, control } = await openInOrderAsync(async (stack) => {
    // Room for the WRITE + SEND of every log in flight, plus the unsignaled chains posted
    // since the last signaled SEND and those behind a signaled one not yet polled.
    const link = stack.use(side.openLink({
      maxSendWr: 2 * config.depth + 4 * sendSignalEvery + 8,
      maxRecvWr: config.depth + 2,
      maxInlineData: recordBytes,
    }));
    const control = await connectBootstrap({
      hostname: config.host,
      port: config.port,
      secret: config.secret,
      endpoint: link.endpoint,
      ringBytes: config.ringBytes,
      maxLogBytes: config.maxLogBytes,
      // Records in flight: `depth` logs plus a SKIP or RELEASE and a NOP (the replica
      // must have that many RECVs posted, or a SEND would meet an empty queue).
      depth: config.depth + 2,
      connectAttempts: config.connectAttempts,
      connectRetryDelayMs: config.connectRetryDelayMs,
      busyRetryMs: config.busyRetryMs,
      log: config.log,
      onBusyRetry: config.onBusyRetry,
    });
    stack.defer(() => control.close());
    link.connect(control.welcome.endpoint, 0);
    return { link, control };
  });
  let closed = false;
  const session: Session = {
    link,
    control,
    welcome: control.welcome,
    close() {
      if (closed) return;
      closed = true;
      session.control.close();
      link.close();
    },
  };
  return session;
}
