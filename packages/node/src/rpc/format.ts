/**
 * Ethereum JSON-RPC representations of our blocks, transactions, receipts and logs, in the shapes
 * geth returns (ethers v6, viem and Hardhat parse these).
 */
import type { Common } from "@ethereumjs/common";
import { createTxFromRLP, type TypedTransaction } from "@ethereumjs/tx";
import { Bloom } from "@ethereumjs/vm";
import type { StoredBlock } from "../chain/chain.ts";
import type { ExecutionRecord, StoredLog, StoredReceipt } from "../chain/records.ts";

export const EMPTY_UNCLES_HASH = "0x1dcc4de8dec75d7aab85b567b6ccd41ad312451b948a7413f0a142fd40d49347";
const ZERO_HASH = `0x${"00".repeat(32)}`;
const ZERO_ADDRESS = `0x${"00".repeat(20)}`;

export function quantity(value: bigint | number): string {
  return `0x${value.toString(16)}`;
}

export function data(bytes: Uint8Array): string {
  return `0x${Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("hex")}`;
}

export interface BlockRef {
  height: number;
  hash: string;
}

export function formatLog(log: StoredLog, block: BlockRef): Record<string, unknown> {
  return {
    address: data(log.address),
    topics: log.topics.map(data),
    data: data(log.data),
    blockNumber: quantity(block.height),
    blockHash: block.hash,
    transactionHash: data(log.txHash),
    transactionIndex: quantity(log.txIndex),
    logIndex: quantity(log.logIndex),
    removed: false,
  };
}

export function logsBloom(logs: readonly StoredLog[], common: Common): string {
  const bloom = new Bloom(undefined, common);
  for (const log of logs) {
    bloom.add(log.address);
    for (const topic of log.topics) bloom.add(topic);
  }
  return data(bloom.bitvector);
}

export function formatReceipt(
  receipt: StoredReceipt,
  logs: readonly StoredLog[],
  block: BlockRef,
  common: Common,
): Record<string, unknown> {
  return {
    transactionHash: data(receipt.txHash),
    transactionIndex: quantity(receipt.txIndex),
    blockHash: block.hash,
    blockNumber: quantity(block.height),
    from: data(receipt.from),
    to: receipt.to === undefined ? null : data(receipt.to),
    cumulativeGasUsed: quantity(receipt.cumulativeGasUsed),
    gasUsed: quantity(receipt.gasUsed),
    effectiveGasPrice: quantity(receipt.effectiveGasPrice),
    contractAddress: receipt.contractAddress === undefined ? null : data(receipt.contractAddress),
    logs: logs.map((log) => formatLog(log, block)),
    logsBloom: logsBloom(logs, common),
    type: quantity(receipt.type),
    status: quantity(receipt.status),
    // Besu's field: the raw revert data, so tools can decode custom errors too.
    ...(receipt.status === 0 && receipt.revertData.length > 0
      ? { revertReason: data(receipt.revertData) }
      : {}),
  };
}

export function decodeTx(raw: Uint8Array, common: Common): TypedTransaction {
  return createTxFromRLP(raw, { common });
}

export function formatTx(
  tx: TypedTransaction,
  from: string,
  location: { block: BlockRef; index: number } | null,
): Record<string, unknown> {
  const json = tx.toJSON();
  const out: Record<string, unknown> = {
    hash: data(tx.hash()),
    type: quantity(tx.type),
    nonce: quantity(tx.nonce),
    blockHash: location?.block.hash ?? null,
    blockNumber: location === null ? null : quantity(location.block.height),
    transactionIndex: location === null ? null : quantity(location.index),
    from,
    to: tx.to === undefined ? null : tx.to.toString(),
    value: quantity(tx.value),
    gas: quantity(tx.gasLimit),
    input: data(tx.data),
    v: json.v,
    r: json.r,
    s: json.s,
  };
  if ("maxFeePerGas" in tx) {
    out.maxFeePerGas = quantity(tx.maxFeePerGas);
    out.maxPriorityFeePerGas = quantity(tx.maxPriorityFeePerGas);
    out.gasPrice = quantity(
      tx.maxFeePerGas < tx.maxPriorityFeePerGas ? tx.maxFeePerGas : tx.maxPriorityFeePerGas,
    );
  } else {
    out.gasPrice = quantity(tx.gasPrice);
  }
  if (tx.type !== 0) {
    out.chainId = json.chainId;
    out.accessList = json.accessList ?? [];
    out.yParity = json.v;
  } else if (tx.common.chainId() !== undefined) {
    out.chainId = quantity(tx.common.chainId());
  }
  return out;
}

export function formatBlock(
  stored: StoredBlock,
  execution: ExecutionRecord | undefined,
  transactions: string[] | Record<string, unknown>[],
  blockGasLimit: bigint,
): Record<string, unknown> {
  const h = stored.block.header;
  return {
    number: quantity(h.height),
    hash: data(stored.hash),
    parentHash: h.height === 0 ? ZERO_HASH : data(h.parentHash),
    nonce: "0x0000000000000000",
    sha3Uncles: EMPTY_UNCLES_HASH,
    logsBloom: data(execution?.logsBloom ?? new Uint8Array(256)),
    transactionsRoot: data(h.txsRoot),
    // Post-state of this block (known locally once executed; block N+1's header commits to it).
    stateRoot: data(execution?.stateRoot ?? h.lastStateRoot),
    receiptsRoot: data(execution?.receiptsRoot ?? h.lastReceiptsRoot),
    miner: ZERO_ADDRESS,
    difficulty: "0x0",
    totalDifficulty: "0x0",
    extraData: "0x",
    size: quantity(stored.encoded.length),
    gasLimit: quantity(blockGasLimit),
    gasUsed: quantity(execution?.gasUsed ?? 0n),
    timestamp: quantity(Math.floor(h.timestampMs / 1000)),
    transactions,
    uncles: [],
    baseFeePerGas: "0x0",
    mixHash: ZERO_HASH,
    withdrawals: [],
    withdrawalsRoot: "0x56e81f171bcc55a6ff8345e692c0f86e5b48e01b996cadc001622fb5e363b421",
    blobGasUsed: "0x0",
    excessBlobGas: "0x0",
    parentBeaconBlockRoot: ZERO_HASH,
  };
}
