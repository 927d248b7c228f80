/**
 * Fault plans: what a replica or a primary does wrong, and at which logical point (a log's
 * seq), so that a seed replays the same run. Given as JSON on the command line
 * (`--fault-plan`), validated field by field.
 *
 * @module
 */
import { AckStatus } from "../log/ack.ts";

/** Where a replica kill happens relative to log `seq`. */
export type KillPoint = "before-check" | "after-persist" | "after-ack";

/** Faults of a replica. */
export interface ReplicaFaults {
  /** SIGKILL itself at `point` of log `seq` (data placed; persisted; acked). */
  kill?: { seq: number; point: KillPoint };
  /** Stall (block) for `ms` before answering log `seq`. */
  stall?: { seq: number; ms: number };
  /** Do not send the ack of log `seq` (the log is accepted). */
  dropAck?: number;
  /** Send the ack of log `seq` (and every later one, in order) `ms` later. */
  delayAck?: { seq: number; ms: number };
  /** Answer `status` (a non-OK AckStatus name) to log `seq` instead of accepting it. */
  status?: { seq: number; status: string };
  /** Post only this many RECVs in the first session (fewer than the primary's depth: receiver not ready). */
  recvSlots?: number;
  /** Create this file once log `seq` is accepted (for the runner's own faults). */
  signalAt?: { seq: number; file: string };
}

/** Faults of a primary. */
export interface PrimaryFaults {
  /** SIGKILL itself right after posting log `seq` (between post and ack). */
  kill?: { seq: number };
  /** Move the QP to ERR right after posting log `seq`. */
  breakQp?: number;
  /** Post log `seq`'s RDMA WRITE with a wrong rkey (remote access error). */
  badRkey?: number;
}

/** Both sides' faults. */
export interface FaultPlan {
  replica?: ReplicaFaults;
  primary?: PrimaryFaults;
}

const seqMax = 1e12;
const msMax = 600_000;

function seq(value: unknown, where: string): number {
  if (!Number.isSafeInteger(value) || (value as number) < 1 || (value as number) > seqMax) {
    throw new RangeError(
      `${where} must be a seq from 1 to ${seqMax}, got ${JSON.stringify(value)}`,
    );
  }
  return value as number;
}

function ms(value: unknown, where: string): number {
  if (!Number.isSafeInteger(value) || (value as number) < 0 || (value as number) > msMax) {
    throw new RangeError(`${where} must be 0..${msMax} ms, got ${JSON.stringify(value)}`);
  }
  return value as number;
}

function object(value: unknown, where: string, keys: string[]): Record<string, unknown> {
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new RangeError(`${where} must be an object`);
  }
  const extra = Object.keys(value).filter((k) => !keys.includes(k));
  if (extra.length) {
    throw new RangeError(
      `${where} has unknown field(s) ${extra.join(", ")}; known: ${keys.join(", ")}`,
    );
  }
  return value as Record<string, unknown>;
}

/** Parses and validates a fault plan (JSON text); RangeError naming the bad field. */
export function parseFaultPlan(text: string): FaultPlan {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new RangeError(`The fault plan is not JSON: ${(error as Error).message}`);
  }
  const plan = object(json, "the fault plan", ["replica", "primary"]);
  const out: FaultPlan = {};
  if (plan.replica !== undefined) {
    const r = object(plan.replica, "replica", [
      "kill",
      "stall",
      "dropAck",
      "delayAck",
      "status",
      "recvSlots",
      "signalAt",
    ]);
    const faults: ReplicaFaults = {};
    if (r.kill !== undefined) {
      const k = object(r.kill, "replica.kill", ["seq", "point"]);
      if (!["before-check", "after-persist", "after-ack"].includes(k.point as string)) {
        throw new RangeError(
          `replica.kill.point must be before-check, after-persist or after-ack, got ${
            JSON.stringify(k.point)
          }`,
        );
      }
      faults.kill = { seq: seq(k.seq, "replica.kill.seq"), point: k.point as KillPoint };
    }
    if (r.stall !== undefined) {
      const st = object(r.stall, "replica.stall", ["seq", "ms"]);
      faults.stall = { seq: seq(st.seq, "replica.stall.seq"), ms: ms(st.ms, "replica.stall.ms") };
    }
    if (r.dropAck !== undefined) faults.dropAck = seq(r.dropAck, "replica.dropAck");
    if (r.delayAck !== undefined) {
      const d = object(r.delayAck, "replica.delayAck", ["seq", "ms"]);
      faults.delayAck = {
        seq: seq(d.seq, "replica.delayAck.seq"),
        ms: ms(d.ms, "replica.delayAck.ms"),
      };
    }
    if (r.status !== undefined) {
      const s = object(r.status, "replica.status", ["seq", "status"]);
      const name = s.status as string;
      if (!(name in AckStatus) || name === "OK") {
        throw new RangeError(
          `replica.status.status must be a non-OK status (${
            Object.keys(AckStatus).slice(1).join(", ")
          }), got ${JSON.stringify(name)}`,
        );
      }
      faults.status = { seq: seq(s.seq, "replica.status.seq"), status: name };
    }
    if (r.recvSlots !== undefined) {
      if (
        !Number.isSafeInteger(r.recvSlots) || (r.recvSlots as number) < 1 ||
        (r.recvSlots as number) > 1024
      ) {
        throw new RangeError(
          `replica.recvSlots must be 1..1024, got ${JSON.stringify(r.recvSlots)}`,
        );
      }
      faults.recvSlots = r.recvSlots as number;
    }
    if (r.signalAt !== undefined) {
      const g = object(r.signalAt, "replica.signalAt", ["seq", "file"]);
      if (typeof g.file !== "string" || g.file.length === 0) {
        throw new RangeError("replica.signalAt.file must be a path");
      }
      faults.signalAt = { seq: seq(g.seq, "replica.signalAt.seq"), file: g.file };
    }
    out.replica = faults;
  }
  if (plan.primary !== undefined) {
    const p = object(plan.primary, "primary", ["kill", "breakQp", "badRkey"]);
    const faults: PrimaryFaults = {};
    if (p.kill !== undefined) {
      faults.kill = { seq: seq(object(p.kill, "primary.kill", ["seq"]).seq, "primary.kill.seq") };
    }
    if (p.breakQp !== undefined) faults.breakQp = seq(p.breakQp, "primary.breakQp");
    if (p.badRkey !== undefined) faults.badRkey = seq(p.badRkey, "primary.badRkey");
    out.primary = faults;
  }
  return out;
}

/**
 * Kills this process with SIGKILL (a crash, not a shutdown: nothing is flushed or closed),
 * after `beforeDeath` (e.g. writing the trace) and a line naming the fault.
 */
export function selfKill(reason: string, beforeDeath?: () => void): never {
  try {
    beforeDeath?.();
  } finally {
    console.error(`fault: ${reason}: SIGKILL`);
    Deno.kill(Deno.pid, "SIGKILL");
  }
  throw new Error("unreachable: SIGKILL did not end the process");
}

/** Blocks this thread for `ms` (a stalled process: nothing else runs meanwhile). */
export function stallFor(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}
