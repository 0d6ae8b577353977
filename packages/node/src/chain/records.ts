/**
 * Byte encodings (RLP) of what the chain stores besides blocks: receipts, logs, execution
 * results, transaction locations and validator sets. Pure functions; the store encrypts them.
 */
import { RLP } from "@ethereumjs/rlp";
import { bigIntToUnpaddedBytes, bytesToBigInt } from "@ethereumjs/util";
import { type SignatureAlgorithm, ValidatorSet } from "@vitalstream/consensus";
import type { ExecutedLog, ExecutedReceipt } from "../execution/executor.ts";

const te = new TextEncoder();
const td = new TextDecoder();
const EMPTY = new Uint8Array(0);

function u(value: number | bigint): Uint8Array {
  return bigIntToUnpaddedBytes(BigInt(value));
}
function n(bytes: unknown): number {
  return Number(bytesToBigInt(bytes as Uint8Array));
}
function b(bytes: unknown): bigint {
  return bytesToBigInt(bytes as Uint8Array);
}
function optional(bytes: unknown): Uint8Array | undefined {
  const v = bytes as Uint8Array;
  return v.length === 0 ? undefined : v;
}
function list(bytes: Uint8Array, fields: number, what: string): unknown[] {
  const decoded = RLP.decode(bytes) as unknown;
  if (!Array.isArray(decoded) || decoded.length !== fields) throw new Error(`malformed ${what} record`);
  return decoded;
}

/** u64 big-endian height, the key of per-height buckets (sorts numerically). */
export function heightKey(height: number): Uint8Array {
  const key = new Uint8Array(8);
  new DataView(key.buffer).setBigUint64(0, BigInt(height));
  return key;
}

export function readHeightKey(key: Uint8Array): number {
  return Number(new DataView(key.buffer, key.byteOffset, 8).getBigUint64(0));
}

/** (height u64, index u32): receipts by transaction position, logs by log index, WAL entries. */
export function heightIndexKey(height: number, index: number): Uint8Array {
  const key = new Uint8Array(12);
  const view = new DataView(key.buffer);
  view.setBigUint64(0, BigInt(height));
  view.setUint32(8, index);
  return key;
}

/**
 * A receipt as stored: the executed receipt's fields (with `txIndex` as the transaction's
 * position in the block, Ethereum's transactionIndex), its logs by reference into the Log bucket.
 */
export type StoredReceipt = Pick<
  ExecutedReceipt,
  | "txHash"
  | "txIndex"
  | "type"
  | "from"
  | "to"
  | "contractAddress"
  | "status"
  | "gasUsed"
  | "cumulativeGasUsed"
  | "effectiveGasPrice"
  | "exceptionError"
> & {
  /** Index of the transaction's first log among the logs of the block. */
  firstLogIndex: number;
  logCount: number;
  /** Revert data (status 0 from REVERT), empty otherwise. */
  revertData: Uint8Array;
  revertReason: string | undefined;
};

export function encodeReceipt(r: StoredReceipt): Uint8Array {
  return RLP.encode([
    r.txHash,
    u(r.txIndex),
    u(r.type),
    r.from,
    r.to ?? EMPTY,
    r.contractAddress ?? EMPTY,
    u(r.status),
    u(r.gasUsed),
    u(r.cumulativeGasUsed),
    u(r.effectiveGasPrice),
    u(r.firstLogIndex),
    u(r.logCount),
    r.revertData,
    r.revertReason === undefined ? EMPTY : te.encode(r.revertReason),
    r.exceptionError === undefined ? EMPTY : te.encode(r.exceptionError),
  ]);
}

export function decodeReceipt(bytes: Uint8Array): StoredReceipt {
  const f = list(bytes, 15, "receipt");
  const reason = optional(f[13]);
  const exception = optional(f[14]);
  return {
    txHash: f[0] as Uint8Array,
    txIndex: n(f[1]),
    type: n(f[2]),
    from: f[3] as Uint8Array,
    to: optional(f[4]),
    contractAddress: optional(f[5]),
    status: n(f[6]) === 1 ? 1 : 0,
    gasUsed: b(f[7]),
    cumulativeGasUsed: b(f[8]),
    effectiveGasPrice: b(f[9]),
    firstLogIndex: n(f[10]),
    logCount: n(f[11]),
    revertData: f[12] as Uint8Array,
    revertReason: reason === undefined ? undefined : td.decode(reason),
    exceptionError: exception === undefined ? undefined : td.decode(exception),
  };
}

/** A log as stored (`txIndex` is the transaction's position in the block). */
export type StoredLog = ExecutedLog;

export function encodeLog(log: StoredLog): Uint8Array {
  return RLP.encode([log.address, log.topics, log.data, u(log.logIndex), u(log.txIndex), log.txHash]);
}

export function decodeLog(bytes: Uint8Array): StoredLog {
  const f = list(bytes, 6, "log");
  return {
    address: f[0] as Uint8Array,
    topics: f[1] as Uint8Array[],
    data: f[2] as Uint8Array,
    logIndex: n(f[3]),
    txIndex: n(f[4]),
    txHash: f[5] as Uint8Array,
  };
}

export interface RejectedTx {
  /** Position in the block. */
  index: number;
  txHash: Uint8Array | undefined;
  code: string;
  message: string;
}

/** What executing one block produced (its roots go into the next block's header). */
export interface ExecutionRecord {
  height: number;
  stateRoot: Uint8Array;
  receiptsRoot: Uint8Array;
  gasUsed: bigint;
  logsBloom: Uint8Array;
  logCount: number;
  /** Transactions of the block that were not executed, with why (no receipt, no state change). */
  rejected: RejectedTx[];
}

export function encodeExecution(e: ExecutionRecord): Uint8Array {
  return RLP.encode([
    u(e.height),
    e.stateRoot,
    e.receiptsRoot,
    u(e.gasUsed),
    e.logsBloom,
    u(e.logCount),
    e.rejected.map((r) => [u(r.index), r.txHash ?? EMPTY, te.encode(r.code), te.encode(r.message)]),
  ]);
}

export function decodeExecution(bytes: Uint8Array): ExecutionRecord {
  const f = list(bytes, 7, "execution");
  return {
    height: n(f[0]),
    stateRoot: f[1] as Uint8Array,
    receiptsRoot: f[2] as Uint8Array,
    gasUsed: b(f[3]),
    logsBloom: f[4] as Uint8Array,
    logCount: n(f[5]),
    rejected: (f[6] as Uint8Array[][]).map((r) => ({
      index: n(r[0]),
      txHash: optional(r[1]),
      code: td.decode(r[2]),
      message: td.decode(r[3]),
    })),
  };
}

export interface TxLocation {
  height: number;
  /** Position in the block. */
  index: number;
}

export function encodeTxLocation(l: TxLocation): Uint8Array {
  return RLP.encode([u(l.height), u(l.index)]);
}

export function decodeTxLocation(bytes: Uint8Array): TxLocation {
  const f = list(bytes, 2, "transaction location");
  return { height: n(f[0]), index: n(f[1]) };
}

export function encodeValidatorSet(set: ValidatorSet): Uint8Array {
  return RLP.encode(
    set.validators.map((v, i) => [
      te.encode(v.algorithm),
      v.publicKey,
      u(v.votingPower),
      // Priorities can be negative: stored as a signed decimal string.
      te.encode(String(set.priorities[i])),
    ]),
  );
}

export function decodeValidatorSet(bytes: Uint8Array): ValidatorSet {
  const rows = RLP.decode(bytes) as unknown as Uint8Array[][];
  if (!Array.isArray(rows)) throw new Error("malformed validator set record");
  const validators = rows.map((r) => ({
    algorithm: td.decode(r[0]) as SignatureAlgorithm,
    publicKey: r[1]!,
    votingPower: n(r[2]),
  }));
  return ValidatorSet.restore(
    validators,
    rows.map((r) => Number(td.decode(r[3]))),
  );
}
