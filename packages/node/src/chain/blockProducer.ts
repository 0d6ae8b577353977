/**
 * Building a proposal from the mempool, and checking a proposed block before voting for it.
 *
 * Validity is what every honest validator can check without executing the block: it extends our
 * head, carries the roots we computed for the parent, names the right validator set, its
 * transactions match `txsRoot` and fit the limits, and its time moves forward but not into the
 * future. Transactions that fail at execution are not a reason to refuse the block: execution
 * rejects them deterministically (no receipt, no state change) on every validator.
 */
import type { ValidatorSet } from "@vitalstream/consensus";
import type { Mempool } from "../mempool/mempool.ts";
import { BLOCK_VERSION, type Block, BlockDecodeError, decodeBlock, encodeBlock, txsRoot } from "./block.ts";
import type { Chain } from "./chain.ts";
import { validatorsHash } from "./genesis.ts";

/** How far ahead of our clock a proposer's timestamp may be. */
export const MAX_CLOCK_DRIFT_MS = 10_000;

export interface BlockLimits {
  maxBlockBytes: number;
  maxBlockTxs: number;
  blockGasLimit: bigint;
}

export function limitsOf(chain: Chain): BlockLimits {
  const c = chain.genesis.consensus;
  return {
    maxBlockBytes: c.maxBlockBytes,
    maxBlockTxs: c.maxBlockTxs,
    blockGasLimit: BigInt(c.blockGasLimit),
  };
}

/** Room for the header and RLP list prefixes. */
const HEADER_ALLOWANCE = 512;

export function buildBlock(input: {
  chain: Chain;
  mempool: Mempool;
  validatorSet: ValidatorSet;
  proposerIndex: number;
  nowMs: number;
}): { block: Block; encoded: Uint8Array } {
  const { chain } = input;
  const limits = limitsOf(chain);
  const head = chain.head;
  const txs: Uint8Array[] = [];
  let bytes = HEADER_ALLOWANCE;
  for (const tx of input.mempool.pending(limits.blockGasLimit, limits.maxBlockTxs)) {
    const size = tx.raw.length + 5;
    if (bytes + size > limits.maxBlockBytes) break;
    bytes += size;
    txs.push(tx.raw);
  }
  const block: Block = {
    header: {
      version: BLOCK_VERSION,
      chainId: chain.genesis.chainId,
      height: head.height + 1,
      timestampMs: Math.max(input.nowMs, head.timestampMs + 1),
      parentHash: head.hash,
      proposerIndex: input.proposerIndex,
      txsRoot: txsRoot(txs),
      lastStateRoot: head.stateRoot,
      lastReceiptsRoot: head.receiptsRoot,
      validatorsHash: validatorsHash(input.validatorSet.validators),
    },
    txs,
  };
  return { block, encoded: encodeBlock(block) };
}

export type BlockValidity = { valid: true; block: Block } | { valid: false; reason: string };

/** Checks a proposed block for the height after our head. */
export function validateBlock(input: {
  chain: Chain;
  validatorSet: ValidatorSet;
  encoded: Uint8Array;
  nowMs: number;
}): BlockValidity {
  const { chain } = input;
  const limits = limitsOf(chain);
  const head = chain.head;
  if (input.encoded.length > limits.maxBlockBytes)
    return { valid: false, reason: `block of ${input.encoded.length} bytes exceeds ${limits.maxBlockBytes}` };
  let block: Block;
  try {
    block = decodeBlock(input.encoded);
  } catch (e) {
    return { valid: false, reason: e instanceof BlockDecodeError ? e.message : "undecodable block" };
  }
  const h = block.header;
  const fail = (reason: string): BlockValidity => ({ valid: false, reason: `block ${h.height}: ${reason}` });
  if (h.chainId !== chain.genesis.chainId) return fail(`chain id ${h.chainId}`);
  if (h.height !== head.height + 1) return fail(`does not follow head ${head.height}`);
  if (Buffer.compare(h.parentHash, head.hash) !== 0) return fail("wrong parent hash");
  if (Buffer.compare(h.lastStateRoot, head.stateRoot) !== 0) return fail("state root differs from ours");
  if (Buffer.compare(h.lastReceiptsRoot, head.receiptsRoot) !== 0)
    return fail("receipts root differs from ours");
  if (Buffer.compare(h.validatorsHash, validatorsHash(input.validatorSet.validators)) !== 0)
    return fail("wrong validator set");
  if (h.proposerIndex >= input.validatorSet.size) return fail(`no validator ${h.proposerIndex}`);
  if (h.timestampMs <= head.timestampMs) return fail("time does not move forward");
  if (h.timestampMs > input.nowMs + MAX_CLOCK_DRIFT_MS) return fail("time is too far in the future");
  if (block.txs.length > limits.maxBlockTxs)
    return fail(`${block.txs.length} transactions exceed ${limits.maxBlockTxs}`);
  if (Buffer.compare(h.txsRoot, txsRoot(block.txs)) !== 0) return fail("transactions do not match txsRoot");
  return { valid: true, block };
}
