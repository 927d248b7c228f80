/**
 * The FAULT and RECOVERY codes the replication layer traces, registered with the trace
 * so files and the `trace` command name them.
 *
 * @module
 */
import { trace } from "./trace.ts";

/** Injected or detected faults. */
export const FaultCode = {
  REPLICA_KILL: 1,
  REPLICA_STALL: 2,
  DROP_ACK: 3,
  DELAY_ACK: 4,
  STATUS: 5,
  FEW_RECVS: 6,
  PRIMARY_KILL: 7,
  BREAK_QP: 8,
  BAD_RKEY: 9,
  NETEM: 10,
  LINK_DELETE: 11,
  VERBS_FAIL: 12,
  SESSION_BROKEN: 13,
} as const;

/** Recovery steps. */
export const RecoveryStep = {
  SUSPEND: 1,
  RECONNECT: 2,
  RESUMED: 3,
  RESEND: 4,
  REPLICATED_BY_WELCOME: 5,
  REPLICA_RESUMED: 6,
  PRIMARY_RECOVERED: 7,
  FIRST_ACK: 8,
} as const;

for (const [name, code] of Object.entries(FaultCode)) trace.registerName("FAULT", code, name);
for (const [name, code] of Object.entries(RecoveryStep)) trace.registerName("RECOVERY", code, name);
