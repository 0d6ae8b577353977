/**
 * Blocks: the value the BFT engine agrees on.
 *
 * Encoding (RLP, canonical: decoding re-encodes and compares, so one block has one byte string):
 *
 *   block  = [header, [tx, ...]]
 *   header = [version, chainId, height, timestampMs, parentHash, proposerIndex, txsRoot,
 *             lastStateRoot, lastReceiptsRoot, validatorsHash]
 *
 * The block hash is SHA-256 of the encoded block, which is also the consensus value hash that
 * commit certificates sign: one hash names a block everywhere (JSON-RPC, certificates, sync).
 *
 * Execution is deferred by one block: `lastStateRoot` and `lastReceiptsRoot` are the results of
 * executing the parent, so validators agree on a block without running the EVM first.
 */
import { createHash } from "node:crypto";
import { RLP } from "@ethereumjs/rlp";
import { bigIntToUnpaddedBytes, bytesToBigInt } from "@ethereumjs/util";
import { keccak_256 as keccak256 } from "@noble/hashes/sha3.js";

export const BLOCK_VERSION = 1;
export const HASH_BYTES = 32;
export const ZERO_HASH = new Uint8Array(HASH_BYTES);

export interface BlockHeader {
  version: number;
  chainId: string;
  height: number;
  /** Milliseconds since the epoch, from the proposer's clock. */
  timestampMs: number;
  /** Hash of the block at height - 1 (the genesis block's hash for height 1). */
  parentHash: Uint8Array;
  /** Index of the proposing validator in the validator set of this height. */
  proposerIndex: number;
  /** keccak256(RLP([tx, ...])). */
  txsRoot: Uint8Array;
  /** State commitment after executing the parent. */
  lastStateRoot: Uint8Array;
  /** Receipts commitment of the parent's execution. */
  lastReceiptsRoot: Uint8Array;
  /** Hash of the validator set that decides this height. */
  validatorsHash: Uint8Array;
}

export interface Block {
  header: BlockHeader;
  /** Signed transactions, EIP-2718 encoded. */
  txs: Uint8Array[];
}

export class BlockDecodeError extends Error {
  readonly code = "BLOCK_MALFORMED";

  constructor(message: string) {
    super(message);
    this.name = "BlockDecodeError";
  }
}

const textEncoder = new TextEncoder();
const textDecoder = new TextDecoder("utf-8", { fatal: true });

function uint(value: number): Uint8Array {
  return bigIntToUnpaddedBytes(BigInt(value));
}

export function txsRoot(txs: readonly Uint8Array[]): Uint8Array {
  return keccak256(RLP.encode(txs as Uint8Array[]));
}

export function encodeBlock(block: Block): Uint8Array {
  return RLP.encode([headerFields(block.header), block.txs]);
}

/** The header's RLP items, in encoding order. */
export function headerFields(h: BlockHeader): Uint8Array[] {
  return [
    uint(h.version),
    textEncoder.encode(h.chainId),
    uint(h.height),
    uint(h.timestampMs),
    h.parentHash,
    uint(h.proposerIndex),
    h.txsRoot,
    h.lastStateRoot,
    h.lastReceiptsRoot,
    h.validatorsHash,
  ];
}

export function blockHash(encoded: Uint8Array): Uint8Array {
  return new Uint8Array(createHash("sha256").update(encoded).digest());
}

function bytesField(value: unknown, name: string, length?: number): Uint8Array {
  if (!(value instanceof Uint8Array)) throw new BlockDecodeError(`${name} must be a byte string`);
  if (length !== undefined && value.length !== length)
    throw new BlockDecodeError(`${name} must be ${length} bytes, got ${value.length}`);
  return value;
}

function uintField(value: unknown, name: string): number {
  const bytes = bytesField(value, name);
  if (bytes.length > 0 && bytes[0] === 0) throw new BlockDecodeError(`${name} has leading zeros`);
  const n = bytesToBigInt(bytes);
  if (n > BigInt(Number.MAX_SAFE_INTEGER)) throw new BlockDecodeError(`${name} is too large`);
  return Number(n);
}

/** Decodes a block; throws BlockDecodeError naming the first problem. */
export function decodeBlock(encoded: Uint8Array): Block {
  let decoded: unknown;
  try {
    decoded = RLP.decode(encoded);
  } catch (e) {
    throw new BlockDecodeError(`not RLP: ${(e as Error).message.split("\n")[0]}`);
  }
  if (!Array.isArray(decoded) || decoded.length !== 2)
    throw new BlockDecodeError("block must be [header, txs]");
  const [headerFields, txFields] = decoded as unknown[];
  if (!Array.isArray(headerFields) || headerFields.length !== 10)
    throw new BlockDecodeError("header must have 10 fields");
  if (!Array.isArray(txFields)) throw new BlockDecodeError("txs must be a list");
  let chainId: string;
  try {
    chainId = textDecoder.decode(bytesField(headerFields[1], "chainId"));
  } catch (e) {
    if (e instanceof BlockDecodeError) throw e;
    throw new BlockDecodeError("chainId is not UTF-8");
  }
  const header: BlockHeader = {
    version: uintField(headerFields[0], "version"),
    chainId,
    height: uintField(headerFields[2], "height"),
    timestampMs: uintField(headerFields[3], "timestampMs"),
    parentHash: bytesField(headerFields[4], "parentHash", HASH_BYTES),
    proposerIndex: uintField(headerFields[5], "proposerIndex"),
    txsRoot: bytesField(headerFields[6], "txsRoot", HASH_BYTES),
    lastStateRoot: bytesField(headerFields[7], "lastStateRoot", HASH_BYTES),
    lastReceiptsRoot: bytesField(headerFields[8], "lastReceiptsRoot", HASH_BYTES),
    validatorsHash: bytesField(headerFields[9], "validatorsHash", HASH_BYTES),
  };
  if (header.version !== BLOCK_VERSION) throw new BlockDecodeError(`unknown block version ${header.version}`);
  const txs = txFields.map((tx, i) => bytesField(tx, `tx ${i}`));
  const block = { header, txs };
  if (Buffer.compare(encodeBlock(block), encoded) !== 0)
    throw new BlockDecodeError("block encoding is not canonical");
  return block;
}
