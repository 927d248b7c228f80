/**
 * The block size of the protocol: an NVMe logical block, the alignment of every log in the
 * data ring, the unit of the write cache and the backing store, and the page the memory
 * handed to the NIC is mapped in (docs/protocol.md).
 *
 * @module
 */

/** Bytes per block (and per page of ring memory): 4096. */
export const blockBytes = 4096;
