/**
 * Executes the transactions of one committed block with the @ethereumjs VM against a flat state.
 *
 * Entry point: `vm.runTx` (not the lower `evm.runCall`): it owns the Ethereum transaction rules
 * we must not re-implement (intrinsic gas, access lists and warm addresses, refunds, nonce and
 * balance bookkeeping, contract addresses, receipts with logs and bloom). The gap NOTES measured
 * (runCall ~2.8k/s vs runTx ~1.9k/s) is small next to the trie-vs-flat-state gap (0.25k/s), and
 * a hand-written runCall path is one more place for validators to disagree with Ethereum tooling.
 *
 * The node calls this after commit (execution deferred by one block): consensus never waits here.
 *
 * Costs kept off the per-transaction path: transactions are decoded once, with a Common whose
 * transaction parameters are already merged (`txCommon`); senders that the mempool recovered at
 * admission are taken from it (`ExecuteBlockOptions.senders`) instead of being recovered again.
 */
import { createBlock } from "@ethereumjs/block";
import { type Common, createCustomCommon, Mainnet } from "@ethereumjs/common";
import { RLP } from "@ethereumjs/rlp";
import { Capability, type TypedTransaction } from "@ethereumjs/tx";
import { Address, bytesToBigInt, SECP256K1_ORDER_DIV_2 } from "@ethereumjs/util";
import { Bloom, createVM, encodeReceipt, type RunTxResult, runTx, type VM } from "@ethereumjs/vm";
import { keccak_256 as keccak256 } from "@noble/hashes/sha3.js";
import { nativeEcrecover } from "./crypto.ts";
import { claimedChainId, decodeClaimed, describeTxError, SUPPORTED_TX_TYPES } from "./envelope.ts";
import { ExecutionError, type TxError, type TxErrorCode } from "./errors.ts";
import { defaultExecutionOptions, type ExecutionOptions } from "./options.ts";
import { StateOverlay } from "./overlay.ts";
import { GENESIS_STATE_ROOT, type StateChange, type StateReader, stateCommitment } from "./state.ts";

const ERROR_SELECTOR = "08c379a0";
const PANIC_SELECTOR = "4e487b71";

export interface BlockToExecute {
  height: bigint;
  /** Seconds since the epoch (the committed block's time). */
  timestamp: bigint;
  /** 20-byte address credited with fees (zero on a zero-gas-price network). */
  coinbase: Uint8Array;
  /** Signed transactions, EIP-2718 encoded (legacy RLP or type byte || RLP). */
  txs: readonly Uint8Array[];
  /** The state commitment after the parent block (GENESIS_STATE_ROOT before the first). */
  parentStateRoot?: Uint8Array;
}

export interface ExecutedLog {
  address: Uint8Array;
  topics: Uint8Array[];
  data: Uint8Array;
  /** Position among the logs of the block. */
  logIndex: number;
  txIndex: number;
  txHash: Uint8Array;
}

export interface RevertInfo {
  /** `Error(string)` message, or `Panic(0x..)`; undefined for custom errors (decode `data`). */
  reason: string | undefined;
  data: Uint8Array;
}

export interface ExecutedReceipt {
  txHash: Uint8Array;
  /** Position among the executed transactions of the block. */
  txIndex: number;
  type: number;
  from: Uint8Array;
  to: Uint8Array | undefined;
  contractAddress: Uint8Array | undefined;
  status: 0 | 1;
  gasUsed: bigint;
  cumulativeGasUsed: bigint;
  /** Price per gas paid (base fee 0: gasPrice, or min(maxFeePerGas, maxPriorityFeePerGas)). */
  effectiveGasPrice: bigint;
  logs: ExecutedLog[];
  logsBloom: Uint8Array;
  returnData: Uint8Array;
  /** Set when the transaction reverted (status 0 from REVERT). */
  revert: RevertInfo | undefined;
  /** EVM halt other than REVERT (out of gas, invalid opcode, ...). */
  exceptionError: string | undefined;
  /** The consensus encoding of the receipt (EIP-2718), the leaves of `receiptsRoot`. */
  encoded: Uint8Array;
}

export type TxOutcome =
  | { ok: true; receipt: ExecutedReceipt }
  | { ok: false; index: number; txHash: Uint8Array | undefined; error: TxError };

export interface BlockExecution {
  /** One per input transaction, in order. */
  outcomes: TxOutcome[];
  /** Executed transactions only (rejected ones leave no receipt and no state change). */
  receipts: ExecutedReceipt[];
  logs: ExecutedLog[];
  logsBloom: Uint8Array;
  gasUsed: bigint;
  changes: StateChange[];
  /** stateCommitment(parentStateRoot, changes): goes into the header of the next block. */
  stateRoot: Uint8Array;
  /** keccak256(RLP([encoded receipt...])): a flat list commitment, not a Merkle Patricia root. */
  receiptsRoot: Uint8Array;
}

/**
 * Senders already recovered from transactions, e.g. by the mempool when it admitted them, so that
 * execution does not recover them a second time.
 */
export interface RecoveredSenders {
  /**
   * The 64-byte public key that signature recovery gave for the transaction with this hash
   * (keccak256 of its canonical encoding) under the same chain rules (chain id, hardfork), or
   * undefined when unknown. The hash names the exact fields that were signed, so a known key is
   * the result recovery would give again.
   */
  recoveredPublicKey(txHash: Uint8Array): Uint8Array | undefined;
}

export interface ExecuteBlockOptions {
  /** Skips recovery for the transactions it knows; the others are recovered as always. */
  senders?: RecoveredSenders;
}

export interface Executor {
  readonly options: ExecutionOptions;
  readonly common: Common;
  executeBlock(
    block: BlockToExecute,
    state: StateReader,
    options?: ExecuteBlockOptions,
  ): Promise<BlockExecution>;
}

function rejected(
  index: number,
  txHash: Uint8Array | undefined,
  code: TxErrorCode,
  message: string,
): TxOutcome {
  return { ok: false, index, txHash, error: { code, message } };
}

export function decodeRevert(data: Uint8Array): string | undefined {
  const hex = Buffer.from(data).toString("hex");
  try {
    if (hex.startsWith(ERROR_SELECTOR) && data.length >= 68) {
      const length = Number(bytesToBigInt(data.subarray(36, 68)));
      if (68 + length <= data.length) return Buffer.from(data.subarray(68, 68 + length)).toString("utf8");
    }
    if (hex.startsWith(PANIC_SELECTOR) && data.length === 36)
      return `Panic(0x${bytesToBigInt(data.subarray(4)).toString(16)})`;
  } catch {
    return undefined;
  }
  return undefined;
}

export async function createExecutor(
  options: Partial<ExecutionOptions> & { chainId: bigint | number },
): Promise<Executor> {
  const opts: ExecutionOptions = {
    ...defaultExecutionOptions,
    ...options,
    chainId: BigInt(options.chainId),
    blockGasLimit: BigInt(options.blockGasLimit ?? defaultExecutionOptions.blockGasLimit),
  };
  if (opts.chainId <= 0n) throw new ExecutionError("EXECUTION_INVALID_OPTIONS", "chainId must be positive");
  if (opts.blockGasLimit <= 0n)
    throw new ExecutionError("EXECUTION_INVALID_OPTIONS", "blockGasLimit must be positive");
  if (!Number.isFinite(opts.yieldIntervalMs) || opts.yieldIntervalMs < 0)
    throw new ExecutionError("EXECUTION_INVALID_OPTIONS", "yieldIntervalMs must be >= 0");
  const common = createCustomCommon({ chainId: Number(opts.chainId), name: "vitalstream" }, Mainnet, {
    hardfork: opts.hardfork,
    customCrypto: { ecrecover: nativeEcrecover },
  });
  const overlay = new StateOverlay({
    getAccount: async () => undefined,
    getStorage: async () => undefined,
    getCode: async () => undefined,
    storageSlots: async () => [],
  });
  const vm = await createVM({ common, stateManager: overlay });
  let queue: Promise<unknown> = Promise.resolve();

  const executeBlock = (
    block: BlockToExecute,
    state: StateReader,
    options: ExecuteBlockOptions = {},
  ): Promise<BlockExecution> => {
    const run = queue.then(() => execute(vm, common, opts, overlay, block, state, options.senders));
    queue = run.catch(() => undefined);
    return run;
  };
  return { options: opts, common, executeBlock };
}

async function execute(
  vm: VM,
  common: Common,
  opts: ExecutionOptions,
  overlay: StateOverlay,
  input: BlockToExecute,
  state: StateReader,
  senders: RecoveredSenders | undefined,
): Promise<BlockExecution> {
  if (input.coinbase.length !== 20)
    throw new ExecutionError("EXECUTION_INVALID_BLOCK", "coinbase must be a 20-byte address");
  overlay.reset(state);
  const block = createBlock(
    {
      header: {
        number: input.height,
        timestamp: input.timestamp,
        coinbase: new Address(input.coinbase),
        gasLimit: opts.blockGasLimit,
        baseFeePerGas: 0n,
      },
    },
    { common },
  );
  const outcomes: TxOutcome[] = [];
  const receipts: ExecutedReceipt[] = [];
  const logs: ExecutedLog[] = [];
  const blockBloom = new Bloom(undefined, common);
  let gasUsed = 0n;

  let slice = performance.now();
  for (const [index, raw] of input.txs.entries()) {
    if (performance.now() - slice >= opts.yieldIntervalMs) {
      await new Promise<void>((resolve) => setImmediate(resolve));
      slice = performance.now();
    }
    let tx: TypedTransaction;
    try {
      const claimed = claimedChainId(raw);
      if (!SUPPORTED_TX_TYPES.has(claimed.type)) {
        outcomes.push(
          rejected(
            index,
            undefined,
            "TX_TYPE_UNSUPPORTED",
            `transaction type ${claimed.type} is not executed`,
          ),
        );
        continue;
      }
      if (claimed.chainId === undefined) {
        outcomes.push(
          rejected(
            index,
            undefined,
            "TX_NOT_REPLAY_PROTECTED",
            "legacy transaction without EIP-155 chain id",
          ),
        );
        continue;
      }
      if (claimed.chainId !== opts.chainId) {
        outcomes.push(
          rejected(
            index,
            undefined,
            "TX_WRONG_CHAIN_ID",
            `chain id ${claimed.chainId}, this network is ${opts.chainId}`,
          ),
        );
        continue;
      }
      tx = decodeClaimed(claimed, common);
    } catch (e) {
      outcomes.push(rejected(index, undefined, "TX_MALFORMED", describeTxError(e)));
      continue;
    }
    const txHash = tx.hash();
    let sender: Address;
    try {
      if (tx.type === 0 && !tx.supports(Capability.EIP155ReplayProtection))
        throw new Error("not replay protected");
      const known = senders?.recoveredPublicKey(txHash);
      // Recovery checks s <= n/2 first (typed transactions already did while decoding).
      if (known !== undefined && known.length === 64 && tx.s !== undefined && tx.s <= SECP256K1_ORDER_DIV_2)
        tx.cache.senderPubKey = known;
      sender = tx.getSenderAddress();
    } catch (e) {
      outcomes.push(rejected(index, txHash, "TX_INVALID_SIGNATURE", describeTxError(e)));
      continue;
    }
    const intrinsic = tx.getIntrinsicGas();
    if (tx.gasLimit < intrinsic) {
      outcomes.push(
        rejected(
          index,
          txHash,
          "TX_INTRINSIC_GAS_TOO_LOW",
          `gas limit ${tx.gasLimit} below intrinsic gas ${intrinsic}`,
        ),
      );
      continue;
    }
    if (gasUsed + tx.gasLimit > opts.blockGasLimit) {
      outcomes.push(
        rejected(
          index,
          txHash,
          "TX_BLOCK_GAS_LIMIT_EXCEEDED",
          `gas limit ${tx.gasLimit} exceeds the ${opts.blockGasLimit - gasUsed} gas left in the block`,
        ),
      );
      continue;
    }
    const account = await overlay.getAccount(sender);
    const nonce = account?.nonce ?? 0n;
    if (tx.nonce !== nonce) {
      const code = tx.nonce < nonce ? "TX_NONCE_TOO_LOW" : "TX_NONCE_TOO_HIGH";
      outcomes.push(rejected(index, txHash, code, `nonce ${tx.nonce}, account nonce is ${nonce}`));
      continue;
    }
    const feePerGas = "maxFeePerGas" in tx ? tx.maxFeePerGas : tx.gasPrice;
    const maxCost = tx.value + tx.gasLimit * feePerGas;
    if ((account?.balance ?? 0n) < maxCost) {
      outcomes.push(
        rejected(
          index,
          txHash,
          "TX_INSUFFICIENT_FUNDS",
          `balance ${account?.balance ?? 0n} below ${maxCost}`,
        ),
      );
      continue;
    }

    let result: RunTxResult;
    try {
      result = await runTx(vm, { tx, block, blockGasUsed: gasUsed, skipHardForkValidation: true });
    } catch (e) {
      outcomes.push(rejected(index, txHash, "TX_REJECTED", describeTxError(e)));
      continue;
    }
    gasUsed += result.totalGasSpent;
    const txIndex = receipts.length;
    const exec = result.execResult;
    const txLogs: ExecutedLog[] = (exec.logs ?? []).map(([address, topics, data]) => ({
      address,
      topics,
      data,
      logIndex: logs.length,
      txIndex,
      txHash,
    }));
    for (const [i, log] of txLogs.entries()) log.logIndex = logs.length + i;
    logs.push(...txLogs);
    blockBloom.or(result.bloom);
    const reverted = exec.exceptionError?.error === "revert";
    const receipt: ExecutedReceipt = {
      txHash,
      txIndex,
      type: tx.type,
      from: sender.bytes,
      to: tx.to?.bytes,
      contractAddress: result.createdAddress?.bytes,
      status: exec.exceptionError === undefined ? 1 : 0,
      gasUsed: result.totalGasSpent,
      cumulativeGasUsed: gasUsed,
      effectiveGasPrice:
        "maxFeePerGas" in tx
          ? tx.maxFeePerGas < tx.maxPriorityFeePerGas
            ? tx.maxFeePerGas
            : tx.maxPriorityFeePerGas
          : tx.gasPrice,
      logs: txLogs,
      logsBloom: result.bloom.bitvector,
      returnData: exec.returnValue,
      revert: reverted ? { reason: decodeRevert(exec.returnValue), data: exec.returnValue } : undefined,
      exceptionError: exec.exceptionError !== undefined && !reverted ? exec.exceptionError.error : undefined,
      encoded: encodeReceipt(result.receipt, tx.type),
    };
    receipts.push(receipt);
    outcomes.push({ ok: true, receipt });
  }

  const changes = await overlay.changes();
  return {
    outcomes,
    receipts,
    logs,
    logsBloom: blockBloom.bitvector,
    gasUsed,
    changes,
    stateRoot: stateCommitment(input.parentStateRoot ?? GENESIS_STATE_ROOT, changes),
    receiptsRoot: keccak256(RLP.encode(receipts.map((r) => r.encoded))),
  };
}
