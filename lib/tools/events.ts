/**
 * Event lines: what a child tool says to the process that started it while it runs, as
 * JSON on stdout, one per line, each starting with the marker `{"rrl":"event"`. A tool
 * prints them only with `--events`; its human messages stay on stderr and its report (with
 * `--json`) is the last stdout line that is not an event.
 *
 * | event        | fields                                      | printed by               |
 * | ------------ | ------------------------------------------- | ------------------------ |
 * | `ready`      | `port` (the control port it listens on)     | replica, once listening  |
 * | `resumed`    | `releasedSeq`, `retainedLogs`, `throughSeq` | replica, from its cache  |
 * | `busy-retry` | `attempt`, `delayMs`                        | primary, a BUSY refusal  |
 *
 * @example
 * ```ts
 * import { decodeEvent, encodeEvent } from "./events.ts";
 * const line = encodeEvent({ event: "ready", port: 18515 }); // {"rrl":"event","event":"ready","port":18515}
 * decodeEvent(line, "replica"); // { event: "ready", port: 18515 }
 * ```
 *
 * @module
 */
import { int, obj, oneOf, type Schema, ToolOutputError } from "./decode.ts";

/** One event a tool reports while it runs. */
export type ToolEvent =
  | { event: "ready"; port: number }
  /** Resumed from its write cache: released through `releasedSeq`, then `retainedLogs` logs, trusted through `throughSeq`. */
  | { event: "resumed"; releasedSeq: number; retainedLogs: number; throughSeq: number }
  | { event: "busy-retry"; attempt: number; delayMs: number };

/** The name of an event. */
export type ToolEventName = ToolEvent["event"];

/** The start of every event line. */
export const eventMarker = '{"rrl":"event"';

const fields: { [K in ToolEventName]: Schema<Omit<Extract<ToolEvent, { event: K }>, "event">> } = {
  ready: obj({ port: int }),
  resumed: obj({ releasedSeq: int, retainedLogs: int, throughSeq: int }),
  "busy-retry": obj({ attempt: int, delayMs: int }),
};
const names = Object.keys(fields) as ToolEventName[];

/** The line for `event` (no newline). */
export function encodeEvent(event: ToolEvent): string {
  return JSON.stringify({ rrl: "event", ...event });
}

/** Whether `line` is an event line (it may still be malformed: {@linkcode decodeEvent} says). */
export function isEventLine(line: string): boolean {
  return line.startsWith(eventMarker);
}

/** Decodes an event line; a {@linkcode ToolOutputError} naming the bad field otherwise. */
export function decodeEvent(line: string, tool: string): ToolEvent {
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch {
    throw new ToolOutputError(tool, "event", `not JSON: ${line.slice(0, 80)}`);
  }
  const head = obj({ event: oneOf(names) }).decode(value, "", tool);
  const rest = fields[head.event].decode(value, head.event, tool);
  return { event: head.event, ...rest } as ToolEvent;
}

/** Prints `event` on stdout (one line). */
export function emitEvent(event: ToolEvent): void {
  console.log(encodeEvent(event));
}
