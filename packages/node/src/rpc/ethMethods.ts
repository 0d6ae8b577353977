/**
 * The eth_*, net_* and web3_* methods: what ethers v6, viem and Hardhat need to deploy and call
 * contracts. State is flat (no history): state queries answer for the head; an older block number
 * is refused with a clear error rather than answered with the wrong state.
 */
import { Bloom } from "@ethereumjs/vm";
import { keccak_256 as keccak256 } from "@noble/hashes/sha3.js";
import { z } from "zod";
import type { Chain, StoredBlock } from "../chain/chain.ts";
import type { StoredLog } from "../chain/records.ts";
import type { CallContext, CallRequest, CallRunner } from "../execution/call.ts";
import type { Executor } from "../execution/executor.ts";
import type { Mempool } from "../mempool/mempool.ts";
import { RpcError } from "./errors.ts";
import {
  type BlockRef,
  data,
  decodeTx,
  formatBlock,
  formatLog,
  formatReceipt,
  formatTx,
  quantity,
} from "./format.ts";
import type { RpcMethod } from "./jsonrpc.ts";

export interface EthModules {
  chain: Chain;
  mempool: Mempool;
  executor: Executor;
  callRunner: CallRunner;
  clientVersion: string;
  maxLogsBlockRange: number;
  maxLogs: number;
  /** Most gas one eth_call / eth_estimateGas may use (geth's RPCGasCap). */
  callGasCap: bigint;
  /** Accounts this node holds keys for (none: keys live in wallets and HSMs). */
  accounts?: string[];
  peerCount(): number;
  /** Tell the proposer that transactions arrived. */
  /** A client's transaction was admitted (wake a waiting proposer, gossip it to peers). */
  notifyTransactions(raw: Uint8Array): void;
  /** Whether this node is catching up (eth_syncing). */
  syncing(): false | { startingBlock: number; currentBlock: number; highestBlock: number };
}

const hexData = z.string().regex(/^0x([0-9a-fA-F]{2})*$/, "expected 0x-prefixed hex bytes");
const hexQuantity = z
  .string()
  .regex(/^0x(0|[1-9a-fA-F][0-9a-fA-F]*)$/, "expected a 0x-prefixed hex quantity");
const address = z.string().regex(/^0x[0-9a-fA-F]{40}$/, "expected a 20-byte 0x-prefixed address");
const hash32 = z.string().regex(/^0x[0-9a-fA-F]{64}$/, "expected a 32-byte 0x-prefixed hash");
const blockTag = z.union([z.enum(["latest", "earliest", "pending", "safe", "finalized"]), hexQuantity]);
const blockParam = z.union([
  blockTag,
  z.object({ blockNumber: hexQuantity }),
  z.object({ blockHash: hash32 }),
]);

const callObject = z.object({
  from: address.optional(),
  to: address.nullable().optional(),
  gas: hexQuantity.optional(),
  gasPrice: hexQuantity.optional(),
  maxFeePerGas: hexQuantity.optional(),
  maxPriorityFeePerGas: hexQuantity.optional(),
  value: hexQuantity.optional(),
  data: hexData.optional(),
  input: hexData.optional(),
  nonce: hexQuantity.optional(),
  type: hexQuantity.optional(),
  chainId: hexQuantity.optional(),
  accessList: z.array(z.unknown()).optional(),
});

const topicFilter = z.union([hash32, z.null(), z.array(z.union([hash32, z.null()])).max(100)]);
const logFilter = z.object({
  fromBlock: blockTag.optional(),
  toBlock: blockTag.optional(),
  blockHash: hash32.optional(),
  address: z.union([address, z.array(address).max(1000)]).optional(),
  topics: z.array(topicFilter).max(4).optional(),
});

function bytes(hex: string): Uint8Array {
  return new Uint8Array(Buffer.from(hex.slice(2), "hex"));
}

function method<S extends z.ZodType>(
  params: S,
  handler: (p: z.output<S>) => unknown | Promise<unknown>,
): RpcMethod<z.output<S>> {
  return { params: params as unknown as z.ZodType<z.output<S>>, handler };
}

function executionReverted(result: {
  revert?: { reason?: string; data: Uint8Array };
  exceptionError?: string;
}): RpcError {
  if (result.revert !== undefined) {
    const reason = result.revert.reason;
    return new RpcError(
      3,
      reason === undefined ? "execution reverted" : `execution reverted: ${reason}`,
      data(result.revert.data),
    );
  }
  return new RpcError(-32000, `execution failed: ${result.exceptionError ?? "unknown error"}`);
}

export function ethMethods(m: EthModules): Record<string, RpcMethod> {
  const { chain, mempool } = m;
  const common = m.executor.common;
  const blockGasLimit = BigInt(chain.genesis.consensus.blockGasLimit);

  const resolveHeight = (tag: z.infer<typeof blockTag> | undefined): number => {
    if (tag === undefined || tag === "latest" || tag === "pending" || tag === "safe" || tag === "finalized")
      return chain.head.height;
    if (tag === "earliest") return 0;
    const n = Number(BigInt(tag));
    return n;
  };

  /** Flat state answers only for the head (immediate finality: latest = safe = finalized). */
  const stateAt = async (param: z.infer<typeof blockParam> | undefined) => {
    let height: number;
    if (param !== undefined && typeof param === "object" && "blockHash" in param) {
      const found = await chain.heightOf(bytes(param.blockHash));
      if (found === undefined) throw new RpcError(-32000, `block ${param.blockHash} not found`);
      height = found;
    } else if (param !== undefined && typeof param === "object") {
      height = resolveHeight(param.blockNumber);
    } else {
      height = resolveHeight(param);
    }
    const head = chain.head.height;
    if (height > head) throw new RpcError(-32000, `block ${height} is beyond the head (${head})`);
    if (height !== head)
      throw new RpcError(
        -32000,
        `historical state is not kept: this node answers state queries for the head block (${head}) only`,
        { head },
      );
    return chain.state();
  };

  const blockRef = (stored: StoredBlock): BlockRef => ({
    height: stored.block.header.height,
    hash: data(stored.hash),
  });

  const renderBlock = async (stored: StoredBlock | undefined, full: boolean) => {
    if (stored === undefined) return null;
    const height = stored.block.header.height;
    const execution = await chain.getExecution(height);
    const ref = blockRef(stored);
    const rejected = new Set(execution?.rejected.map((r) => r.index) ?? []);
    let transactions: string[] | Record<string, unknown>[];
    if (!full) {
      // The hash is keccak256 of the signed encoding: no store read per transaction.
      transactions = stored.block.txs.flatMap((raw, i) => (rejected.has(i) ? [] : [data(keccak256(raw))]));
    } else {
      const txs: Record<string, unknown>[] = [];
      for (const [i, raw] of stored.block.txs.entries()) {
        if (rejected.has(i)) continue;
        const receipt = await chain.getReceipt(height, i);
        if (receipt === undefined) continue;
        txs.push(formatTx(decodeTx(raw, common), data(receipt.from), { block: ref, index: i }));
      }
      transactions = txs;
    }
    return formatBlock(stored, execution, transactions, blockGasLimit);
  };

  // eth_call and eth_estimateGas run on the node's event loop: bound them like geth's RPCGasCap
  // (a block gas limit of 1e9 would let one call burn seconds of CPU).
  const callGasCap = blockGasLimit < m.callGasCap ? blockGasLimit : m.callGasCap;
  const callContext = (): CallContext => ({
    height: BigInt(chain.head.height + 1),
    timestamp: BigInt(Math.floor(Date.now() / 1000)),
    blockGasLimit: callGasCap,
  });

  const callRequest = (o: z.infer<typeof callObject>, defaultGas: bigint): CallRequest => {
    const input = o.input ?? o.data ?? "0x";
    if (o.input !== undefined && o.data !== undefined && o.input !== o.data)
      throw new RpcError(-32602, "both input and data are set and differ");
    const gas = o.gas === undefined ? defaultGas : BigInt(o.gas);
    if (gas > callGasCap)
      throw new RpcError(-32602, `gas ${gas} exceeds this node's call gas cap ${callGasCap}`);
    return {
      from: o.from === undefined ? undefined : bytes(o.from),
      to: o.to === undefined || o.to === null ? undefined : bytes(o.to),
      data: bytes(input),
      value: o.value === undefined ? 0n : BigInt(o.value),
      gasLimit: gas,
    };
  };

  const matchLog = (
    log: StoredLog,
    addresses: Set<string> | null,
    topics: (Set<string> | null)[],
  ): boolean => {
    if (addresses !== null && !addresses.has(data(log.address))) return false;
    for (const [i, wanted] of topics.entries()) {
      if (wanted === null) continue;
      const topic = log.topics[i];
      if (topic === undefined || !wanted.has(data(topic))) return false;
    }
    return true;
  };

  return {
    web3_clientVersion: method(z.tuple([]), () => m.clientVersion),
    web3_sha3: method(z.tuple([hexData]), ([input]) => data(keccak256(bytes(input)))),
    net_version: method(z.tuple([]), () => chain.evmChainId.toString()),
    net_listening: method(z.tuple([]), () => true),
    net_peerCount: method(z.tuple([]), () => quantity(m.peerCount())),
    eth_chainId: method(z.tuple([]), () => quantity(chain.evmChainId)),
    eth_syncing: method(z.tuple([]), () => {
      const s = m.syncing();
      return s === false
        ? false
        : {
            startingBlock: quantity(s.startingBlock),
            currentBlock: quantity(s.currentBlock),
            highestBlock: quantity(s.highestBlock),
          };
    }),
    eth_blockNumber: method(z.tuple([]), () => quantity(chain.head.height)),
    eth_accounts: method(z.tuple([]), () => m.accounts ?? []),
    eth_gasPrice: method(z.tuple([]), () => quantity(mempool.options.minGasPrice)),
    eth_maxPriorityFeePerGas: method(z.tuple([]), () => quantity(mempool.options.minGasPrice)),
    eth_feeHistory: method(
      z.tuple([
        z.union([hexQuantity, z.number().int()]),
        blockTag,
        z.array(z.number().min(0).max(100)).max(100).optional(),
      ]),
      async ([countParam, newest, percentiles]) => {
        const count = Math.min(1024, Number(countParam));
        const newestHeight = Math.min(resolveHeight(newest), chain.head.height);
        const oldest = Math.max(0, newestHeight - count + 1);
        const ratios: number[] = [];
        for (let h = oldest; h <= newestHeight; h++) {
          const e = await chain.getExecution(h);
          ratios.push(e === undefined ? 0 : Number(e.gasUsed) / Number(blockGasLimit));
        }
        const fee = quantity(mempool.options.minGasPrice);
        return {
          oldestBlock: quantity(oldest),
          baseFeePerGas: Array(ratios.length + 1).fill("0x0"),
          gasUsedRatio: ratios,
          ...(percentiles === undefined ? {} : { reward: ratios.map(() => percentiles.map(() => fee)) }),
        };
      },
    ),
    eth_getBlockByNumber: method(z.tuple([blockTag, z.boolean().optional()]), async ([tag, full]) => {
      const height = resolveHeight(tag);
      return renderBlock(await chain.getBlock(height), full ?? false);
    }),
    eth_getBlockByHash: method(z.tuple([hash32, z.boolean().optional()]), async ([hash, full]) =>
      renderBlock(await chain.getBlockByHash(bytes(hash)), full ?? false),
    ),
    eth_getBlockTransactionCountByNumber: method(z.tuple([blockTag]), async ([tag]) => {
      const height = resolveHeight(tag);
      const stored = await chain.getBlock(height);
      if (stored === undefined) return null;
      const e = await chain.getExecution(height);
      return quantity(stored.block.txs.length - (e?.rejected.length ?? 0));
    }),
    eth_getTransactionByHash: method(z.tuple([hash32]), async ([hash]) => {
      const location = await chain.getTxLocation(bytes(hash));
      if (location === undefined) {
        const pooled = mempool.get(hash.toLowerCase());
        return pooled === undefined ? null : formatTx(decodeTx(pooled.raw, common), pooled.sender, null);
      }
      const stored = await chain.getBlock(location.height);
      const receipt = await chain.getReceipt(location.height, location.index);
      const raw = stored?.block.txs[location.index];
      if (stored === undefined || receipt === undefined || raw === undefined) return null;
      return formatTx(decodeTx(raw, common), data(receipt.from), {
        block: blockRef(stored),
        index: location.index,
      });
    }),
    eth_getTransactionReceipt: method(z.tuple([hash32]), async ([hash]) => {
      const location = await chain.getTxLocation(bytes(hash));
      if (location === undefined) return null;
      const stored = await chain.getBlock(location.height);
      const receipt = await chain.getReceipt(location.height, location.index);
      if (stored === undefined || receipt === undefined) return null;
      const logs =
        receipt.logCount === 0
          ? []
          : await chain.getLogs(location.height, receipt.firstLogIndex, receipt.logCount);
      return formatReceipt(receipt, logs, blockRef(stored), common);
    }),
    eth_getTransactionCount: method(z.tuple([address, blockParam.optional()]), async ([addr, tag]) => {
      if (tag === "pending") {
        const pooled = mempool.pendingNonce(addr.toLowerCase());
        if (pooled !== undefined) return quantity(pooled);
      }
      const account = await (await stateAt(tag)).getAccount(bytes(addr));
      return quantity(account?.nonce ?? 0n);
    }),
    eth_getBalance: method(z.tuple([address, blockParam.optional()]), async ([addr, tag]) => {
      const account = await (await stateAt(tag)).getAccount(bytes(addr));
      return quantity(account?.balance ?? 0n);
    }),
    eth_getCode: method(z.tuple([address, blockParam.optional()]), async ([addr, tag]) => {
      const state = await stateAt(tag);
      const account = await state.getAccount(bytes(addr));
      if (account === undefined) return "0x";
      const code = await state.getCode(account.codeHash);
      return data(code ?? new Uint8Array(0));
    }),
    eth_getStorageAt: method(
      z.tuple([address, z.union([hexQuantity, hash32]), blockParam.optional()]),
      async ([addr, slot, tag]) => {
        const slotValue = BigInt(slot);
        if (slotValue >= 1n << 256n) throw new RpcError(-32602, "storage slot does not fit in 32 bytes");
        const slotBytes = bytes(`0x${slotValue.toString(16).padStart(64, "0")}`);
        const value = await (await stateAt(tag)).getStorage(bytes(addr), slotBytes);
        const out = new Uint8Array(32);
        if (value !== undefined) out.set(value, 32 - value.length);
        return data(out);
      },
    ),
    eth_call: method(z.tuple([callObject, blockParam.optional()]), async ([call, tag]) => {
      const state = await stateAt(tag);
      const result = await m.callRunner.call(callRequest(call, callGasCap), state, callContext());
      if (!result.success) throw executionReverted(result);
      return data(result.returnValue);
    }),
    eth_estimateGas: method(z.tuple([callObject, blockParam.optional()]), async ([call, tag]) => {
      const state = await stateAt(tag);
      const { gasLimit: _unused, ...req } = callRequest(call, callGasCap);
      const estimate = await m.callRunner.estimateGas(req, state, callContext());
      if (!estimate.ok) throw executionReverted(estimate.result);
      return quantity(estimate.gas);
    }),
    eth_sendRawTransaction: method(z.tuple([hexData]), async ([raw]) => {
      const encoded = bytes(raw);
      const result = await mempool.add(encoded);
      if (!result.ok) throw new RpcError(result.error.rpcCode, result.error.message, result.error.data);
      m.notifyTransactions(encoded);
      return result.hash;
    }),
    eth_getLogs: method(z.tuple([logFilter]), async ([filter]) => {
      let from: number;
      let to: number;
      let requestedTo: number;
      if (filter.blockHash !== undefined) {
        if (filter.fromBlock !== undefined || filter.toBlock !== undefined)
          throw new RpcError(-32602, "blockHash cannot be combined with fromBlock/toBlock");
        const height = await chain.heightOf(bytes(filter.blockHash));
        if (height === undefined) throw new RpcError(-32000, `block ${filter.blockHash} not found`);
        from = height;
        to = height;
        requestedTo = height;
      } else {
        from = resolveHeight(filter.fromBlock ?? "latest");
        requestedTo = resolveHeight(filter.toBlock ?? "latest");
        to = Math.min(requestedTo, chain.head.height);
      }
      if (from > to) {
        if (from > chain.head.height) return [];
        throw new RpcError(-32602, `fromBlock ${from} is after toBlock ${to}`);
      }
      // The requested range counts, not just its committed part: a client asking for a million
      // blocks gets the limit now rather than a timeout once the chain is long.
      if (requestedTo - from + 1 > m.maxLogsBlockRange)
        throw new RpcError(-32005, `query exceeds the block range limit of ${m.maxLogsBlockRange} blocks`, {
          limit: m.maxLogsBlockRange,
        });
      const addressList =
        filter.address === undefined
          ? null
          : Array.isArray(filter.address)
            ? filter.address
            : [filter.address];
      const addresses = addressList === null ? null : new Set(addressList.map((a) => a.toLowerCase()));
      const topics = (filter.topics ?? []).map((t) =>
        t === null
          ? null
          : new Set(
              (Array.isArray(t) ? t : [t]).filter((x): x is string => x !== null).map((x) => x.toLowerCase()),
            ),
      );
      // null, an empty list, or a list containing null: any topic at that position.
      const normalizedTopics = topics.map((t, i) => {
        const original = filter.topics?.[i];
        return t === null || t.size === 0 || (Array.isArray(original) && original.includes(null)) ? null : t;
      });
      const out: Record<string, unknown>[] = [];
      for (let h = from; h <= to; h++) {
        const execution = await chain.getExecution(h);
        if (execution === undefined || execution.logCount === 0) continue;
        const bloom = new Bloom(execution.logsBloom, common);
        if (addresses !== null && ![...addresses].some((a) => bloom.check(bytes(a)))) continue;
        if (normalizedTopics.some((t) => t !== null && ![...t].some((x) => bloom.check(bytes(x))))) continue;
        const stored = await chain.getBlock(h);
        if (stored === undefined) continue;
        const ref = blockRef(stored);
        for (const log of await chain.getLogs(h)) {
          if (!matchLog(log, addresses, normalizedTopics)) continue;
          out.push(formatLog(log, ref));
          if (out.length > m.maxLogs)
            throw new RpcError(
              -32005,
              `query returned more than ${m.maxLogs} logs: narrow the block range or filter`,
              {
                limit: m.maxLogs,
              },
            );
        }
      }
      return out;
    }),
  };
}
