/**
 * An in-process model of an NVMe I/O queue pair with the real wire formats: 64-byte
 * submission and 16-byte completion entries, rings with doorbells and phase tags, one
 * namespace (NSID 1, 4096-byte blocks), Read, Write, Flush and Write Zeroes, and the
 * statuses a controller posts for invalid commands (NVMe Base Specification 2.0, NVM
 * Command Set Specification 1.0).
 *
 * @example
 * ```ts
 * import { MemoryBackend, NvmeController, NvmeHost, NvmOpcode } from "./mod.ts";
 *
 * const backend = new MemoryBackend(1024);
 * const controller = new NvmeController({ backend, capacityBlocks: 1024, sqDepth: 64 });
 * const host = new NvmeHost(controller);
 * const block = new Uint8Array(4096).fill(7);
 * const done = await host.submit({ opcode: NvmOpcode.write, slba: 10 }, block);
 * console.log(done.status === 0); // Successful Completion
 * ```
 *
 * @module
 */

export type { NvmeBackend, NvmeReadCommand, NvmeWriteCommand } from "./backend.ts";
export {
  blocksPerCommandMax,
  capacityBlocksMax,
  checkCommand,
  checkLimits,
  type CommandLimits,
  ControllerStatus,
  lbaBytes,
  mdtsBytesDefault,
  mdtsBytesMax,
  namespaceId,
  namespaceIdBroadcast,
  NvmOpcode,
} from "./command.ts";
export {
  NvmeController,
  type NvmeControllerCounters,
  type NvmeControllerOptions,
  queueDepthDefault,
} from "./controller.ts";
export { Cqe, cqeBytes, decodeCqe, encodeCqe } from "./cqe.ts";
export type { EntryRefusal } from "./entry.ts";
export {
  type NvmeCompletion,
  NvmeHost,
  type NvmeHostCommand,
  type NvmeHostOptions,
} from "./host.ts";
export { GatedBackend, type HeldCommand } from "./gated_backend.ts";
export {
  MemoryBackend,
  memoryBackendBytesMax,
  type MemoryBackendCounters,
} from "./memory_backend.ts";
export {
  CompletionQueue,
  DoorbellError,
  type DoorbellRefusal,
  queueDepthMax,
  queueDepthMin,
  ringDistance,
  SubmissionQueue,
} from "./queue.ts";
export { CqConsumer, QueueFullError, SqProducer } from "./cursor.ts";
export {
  decodeSqe,
  encodeSqe,
  setSqeIo,
  Sqe,
  sqeBytes,
  sqeFua,
  type SqeIoFields,
  sqeNlb,
  sqeSlba,
} from "./sqe.ts";
export {
  describeStatus,
  GenericStatusCode,
  isNvmeStatus,
  type NvmeStatus,
  nvmeStatus,
  type NvmeStatusOptions,
  statusCode,
  StatusCodeType,
  statusCodeType,
  statusDoNotRetry,
  statusFieldMax,
  statusIsSuccess,
  statusMore,
  statusRetryDelay,
  statusSuccess,
} from "./status.ts";
