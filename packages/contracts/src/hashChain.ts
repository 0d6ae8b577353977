/**
 * The AuditLog hash chain, exactly as the contract computes it:
 *
 *   head_0 = GENESIS_HEAD = keccak256("VitalStream.AuditLog.v1")
 *   head_n = keccak256(abi.encode(head_{n-1}, uint64 seq, bytes32 subject, bytes32 action,
 *                                 bytes32 dataHash, address actor, uint64 timestamp))   (seq = n)
 *
 * abi.encode of these static values is seven 32-byte words (uints and the address left-padded).
 */
import type { AuditEvent } from "./events.ts";
import {
  addressWord,
  bytes32Word,
  encodeWords,
  type Hex,
  keccak256,
  keccak256Utf8,
  uint64Word,
} from "./hex.ts";

export const GENESIS_HEAD: Hex = keccak256Utf8("VitalStream.AuditLog.v1");

/** The fields of a record that the chain commits to. */
export type ChainedRecord = Pick<
  AuditEvent,
  "seq" | "subject" | "action" | "dataHash" | "actor" | "timestamp"
>;

/** head_n from head_{n-1} and record n. Throws CONTRACTS_INVALID_INPUT on ill-typed fields. */
export function chainHead(previousHead: Hex, record: ChainedRecord): Hex {
  return keccak256(
    encodeWords([
      bytes32Word(previousHead),
      uint64Word(record.seq),
      bytes32Word(record.subject),
      bytes32Word(record.action),
      bytes32Word(record.dataHash),
      addressWord(record.actor),
      uint64Word(record.timestamp),
    ]),
  );
}

/** The head after folding `records` into `start` (GENESIS_HEAD by default), without checks. */
export function foldHeads(records: Iterable<ChainedRecord>, start: Hex = GENESIS_HEAD): Hex {
  let head = start;
  for (const record of records) head = chainHead(head, record);
  return head;
}
