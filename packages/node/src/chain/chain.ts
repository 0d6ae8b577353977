/**
 * The committed chain in the encrypted store: blocks, commit certificates, execution results,
 * receipts, logs, state and indexes.
 *
 * One block, one batch: the block, its certificate, its receipts and logs, its state changes, the
 * indexes, the next validator set and the new head are written in a single LevelDB batch (fsynced).
 * A crash leaves either the previous head or the new one, never a mix; on open the chain resumes
 * at the head record.
 */
import {
  type CommitCertificate,
  decodeCertificate,
  encodeCertificate,
  toHex as hex,
  ValidatorSet,
} from "@vitalstream/consensus";
import type { BlockExecution } from "../execution/executor.ts";
import { putStateChanges, type StateReader, StoreState } from "../execution/state.ts";
import type { EncryptedStore, StoreWrite } from "../store/encryptedStore.ts";
import { Prefix } from "../store/prefixes.ts";
import { type Block, blockHash, decodeBlock } from "./block.ts";
import { ChainError } from "./errors.ts";
import { type GenesisDocument, genesisBlock, genesisDocumentHash, genesisValidators } from "./genesis.ts";
import {
  decodeExecution,
  decodeLog,
  decodeReceipt,
  decodeTxLocation,
  decodeValidatorSet,
  type ExecutionRecord,
  encodeExecution,
  encodeLog,
  encodeReceipt,
  encodeTxLocation,
  encodeValidatorSet,
  heightIndexKey,
  heightKey,
  type StoredLog,
  type StoredReceipt,
  type TxLocation,
} from "./records.ts";

const te = new TextEncoder();
const META_HEAD = te.encode("head");
const META_GENESIS = te.encode("genesis");
const META_GENESIS_HASH = te.encode("genesisHash");

export interface ChainHead {
  height: number;
  hash: Uint8Array;
  timestampMs: number;
  /** Execution result of the head block (its state root goes into the next header). */
  stateRoot: Uint8Array;
  receiptsRoot: Uint8Array;
}

export interface StoredBlock {
  block: Block;
  encoded: Uint8Array;
  hash: Uint8Array;
}

export interface CommitInput {
  block: Block;
  /** The exact bytes the certificate's value hash names. */
  encoded: Uint8Array;
  certificate: CommitCertificate;
  execution: BlockExecution;
  /** The validator set of the next height. */
  nextValidatorSet: ValidatorSet;
  /** More operations for the same atomic batch (the consensus WAL clean-up). */
  extra?(batch: StoreWrite): void;
}

/** Decoded blocks kept for RPC lookups (blocks are at most maxBlockBytes each). */
const RECENT_BLOCKS = 16;

export class Chain {
  readonly store: EncryptedStore;
  readonly genesis: GenesisDocument;
  readonly genesisHash: Uint8Array;
  readonly evmChainId: bigint;
  private current: ChainHead;
  private readonly listeners = new Set<(head: ChainHead) => void>();
  /**
   * The most recently read blocks, decoded. A receipt or transaction lookup reads its whole block:
   * without this, a client polling receipts of a 1,500-transaction block decoded it once per
   * receipt (~8 ms each). Committed blocks never change, so entries never go stale.
   */
  private readonly recentBlocks = new Map<number, StoredBlock>();

  private constructor(
    store: EncryptedStore,
    genesis: GenesisDocument,
    head: ChainHead,
    genesisHash: Uint8Array,
  ) {
    this.store = store;
    this.genesis = genesis;
    this.evmChainId = BigInt(genesis.evmChainId);
    this.current = head;
    this.genesisHash = genesisHash;
  }

  /**
   * Opens the chain in `store`, writing the genesis block and state on first use. A store made
   * for another genesis document is refused (CHAIN_GENESIS_MISMATCH).
   */
  static async open(store: EncryptedStore, genesis: GenesisDocument): Promise<Chain> {
    const docHash = genesisDocumentHash(genesis);
    const stored = await store.get(Prefix.ChainMeta, META_GENESIS_HASH);
    if (stored === undefined) {
      const g = genesisBlock(genesis);
      const batch = store.batch();
      batch.put(Prefix.ChainMeta, META_GENESIS, te.encode(JSON.stringify(genesis)));
      batch.put(Prefix.ChainMeta, META_GENESIS_HASH, docHash);
      batch.put(Prefix.Block, heightKey(0), g.encoded);
      batch.put(Prefix.BlockHeightByHash, g.hash, heightKey(0));
      batch.put(
        Prefix.BlockExecution,
        heightKey(0),
        encodeExecution({
          height: 0,
          stateRoot: g.stateRoot,
          receiptsRoot: g.receiptsRoot,
          gasUsed: 0n,
          logsBloom: new Uint8Array(256),
          logCount: 0,
          rejected: [],
        }),
      );
      batch.put(
        Prefix.ValidatorSet,
        heightKey(1),
        encodeValidatorSet(ValidatorSet.create(genesisValidators(genesis))),
      );
      putStateChanges(batch, g.changes);
      batch.put(Prefix.ChainMeta, META_HEAD, heightKey(0));
      await batch.write();
    } else if (Buffer.compare(stored, docHash) !== 0) {
      throw new ChainError(
        "CHAIN_GENESIS_MISMATCH",
        `the store at ${store.path} belongs to another genesis (stored ${hex(stored).slice(0, 16)}…, ` +
          `configured ${hex(docHash).slice(0, 16)}…): point the node at its own genesis file or data directory`,
      );
    }
    const headKey = await store.get(Prefix.ChainMeta, META_HEAD);
    if (headKey === undefined) throw new ChainError("CHAIN_INCONSISTENT", "the store has no head record");
    const head = await Chain.loadHead(
      store,
      new DataView(headKey.buffer, headKey.byteOffset).getBigUint64(0),
    );
    return new Chain(store, genesis, head, docHash);
  }

  private static async loadHead(store: EncryptedStore, heightBig: bigint): Promise<ChainHead> {
    const height = Number(heightBig);
    const encoded = await store.get(Prefix.Block, heightKey(height));
    const execution = await store.get(Prefix.BlockExecution, heightKey(height));
    if (encoded === undefined || execution === undefined)
      throw new ChainError(
        "CHAIN_INCONSISTENT",
        `the head block ${height} or its execution record is missing`,
        {
          height,
        },
      );
    const block = decodeBlock(encoded);
    const record = decodeExecution(execution);
    return {
      height,
      hash: blockHash(encoded),
      timestampMs: block.header.timestampMs,
      stateRoot: record.stateRoot,
      receiptsRoot: record.receiptsRoot,
    };
  }

  get head(): ChainHead {
    return this.current;
  }

  /** Called after every commit with the new head. */
  onHead(listener: (head: ChainHead) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Committed state at the head. */
  state(): StateReader {
    return new StoreState(this.store);
  }

  /** Writes one committed, executed block atomically and moves the head. */
  async commit(input: CommitInput): Promise<ChainHead> {
    const { block, certificate, execution } = input;
    const h = block.header;
    const head = this.current;
    if (h.height !== head.height + 1)
      throw new ChainError("CHAIN_INVALID_BLOCK", `block ${h.height} does not follow head ${head.height}`);
    if (Buffer.compare(h.parentHash, head.hash) !== 0)
      throw new ChainError("CHAIN_INVALID_BLOCK", `block ${h.height} does not name the head as its parent`);
    if (Buffer.compare(h.lastStateRoot, head.stateRoot) !== 0)
      throw new ChainError(
        "CHAIN_INVALID_BLOCK",
        `block ${h.height} carries a state root this node did not compute`,
      );
    if (Buffer.compare(h.lastReceiptsRoot, head.receiptsRoot) !== 0)
      throw new ChainError(
        "CHAIN_INVALID_BLOCK",
        `block ${h.height} carries a receipts root this node did not compute`,
      );
    const hash = blockHash(input.encoded);
    if (Buffer.compare(certificate.valueHash, hash) !== 0 || certificate.height !== h.height)
      throw new ChainError("CHAIN_INVALID_BLOCK", `the certificate does not name block ${h.height}`);

    const batch = this.store.batch();
    const key = heightKey(h.height);
    batch.put(Prefix.Block, key, input.encoded);
    batch.put(Prefix.BlockHeightByHash, hash, key);
    batch.put(Prefix.Certificate, key, encodeCertificate(certificate));

    // Receipts and logs are keyed by the transaction's position in the block (Ethereum's
    // transactionIndex); rejected transactions leave gaps.
    const blockIndexOf: number[] = [];
    const rejected = [];
    for (const [i, outcome] of execution.outcomes.entries()) {
      if (outcome.ok) {
        blockIndexOf[outcome.receipt.txIndex] = i;
      } else {
        rejected.push({
          index: i,
          txHash: outcome.txHash,
          code: outcome.error.code,
          message: outcome.error.message,
        });
      }
    }
    for (const receipt of execution.receipts) {
      const txIndex = blockIndexOf[receipt.txIndex]!;
      const stored: StoredReceipt = {
        txHash: receipt.txHash,
        txIndex,
        type: receipt.type,
        from: receipt.from,
        to: receipt.to,
        contractAddress: receipt.contractAddress,
        status: receipt.status,
        gasUsed: receipt.gasUsed,
        cumulativeGasUsed: receipt.cumulativeGasUsed,
        effectiveGasPrice: receipt.effectiveGasPrice,
        firstLogIndex: receipt.logs[0]?.logIndex ?? 0,
        logCount: receipt.logs.length,
        revertData: receipt.revert?.data ?? new Uint8Array(0),
        revertReason: receipt.revert?.reason,
        exceptionError: receipt.exceptionError,
      };
      batch.put(Prefix.Receipt, heightIndexKey(h.height, txIndex), encodeReceipt(stored));
      batch.put(Prefix.TxLocation, receipt.txHash, encodeTxLocation({ height: h.height, index: txIndex }));
      for (const log of receipt.logs) {
        const stored: StoredLog = { ...log, txIndex };
        batch.put(Prefix.Log, heightIndexKey(h.height, log.logIndex), encodeLog(stored));
      }
    }
    const record: ExecutionRecord = {
      height: h.height,
      stateRoot: execution.stateRoot,
      receiptsRoot: execution.receiptsRoot,
      gasUsed: execution.gasUsed,
      logsBloom: execution.logsBloom,
      logCount: execution.logs.length,
      rejected,
    };
    batch.put(Prefix.BlockExecution, key, encodeExecution(record));
    putStateChanges(batch, execution.changes);
    batch.put(Prefix.ValidatorSet, heightKey(h.height + 1), encodeValidatorSet(input.nextValidatorSet));
    batch.put(Prefix.ChainMeta, META_HEAD, key);
    input.extra?.(batch);
    await batch.write();

    this.current = {
      height: h.height,
      hash,
      timestampMs: h.timestampMs,
      stateRoot: execution.stateRoot,
      receiptsRoot: execution.receiptsRoot,
    };
    for (const listener of this.listeners) listener(this.current);
    return this.current;
  }

  /**
   * A committed block. `fromStore` skips the decoded-block cache: `verify` must read what is on
   * disk now, not what was read before the disk changed.
   */
  async getBlock(height: number, opts: { fromStore?: boolean } = {}): Promise<StoredBlock | undefined> {
    if (!Number.isSafeInteger(height) || height < 0 || height > this.current.height) return undefined;
    const cached = opts.fromStore === true ? undefined : this.recentBlocks.get(height);
    if (cached !== undefined) {
      this.recentBlocks.delete(height);
      this.recentBlocks.set(height, cached);
      return cached;
    }
    const encoded = await this.store.get(Prefix.Block, heightKey(height));
    if (encoded === undefined) return undefined;
    const stored = { block: decodeBlock(encoded), encoded, hash: blockHash(encoded) };
    this.recentBlocks.set(height, stored);
    if (this.recentBlocks.size > RECENT_BLOCKS)
      this.recentBlocks.delete(this.recentBlocks.keys().next().value!);
    return stored;
  }

  async heightOf(hash: Uint8Array): Promise<number | undefined> {
    if (hash.length !== 32) return undefined;
    const key = await this.store.get(Prefix.BlockHeightByHash, hash);
    return key === undefined ? undefined : Number(new DataView(key.buffer, key.byteOffset).getBigUint64(0));
  }

  async getBlockByHash(hash: Uint8Array): Promise<StoredBlock | undefined> {
    const height = await this.heightOf(hash);
    return height === undefined ? undefined : this.getBlock(height);
  }

  /** The block exactly as stored, undecoded (what block sync sends). */
  async getEncodedBlock(height: number): Promise<Uint8Array | undefined> {
    if (!Number.isSafeInteger(height) || height < 0 || height > this.current.height) return undefined;
    return this.store.get(Prefix.Block, heightKey(height));
  }

  /** The certificate exactly as stored (what block sync sends). */
  async getCertificateBytes(height: number): Promise<Uint8Array | undefined> {
    return this.store.get(Prefix.Certificate, heightKey(height));
  }

  async getCertificate(height: number): Promise<CommitCertificate | undefined> {
    const bytes = await this.store.get(Prefix.Certificate, heightKey(height));
    if (bytes === undefined) return undefined;
    const decoded = decodeCertificate(bytes);
    if (!decoded.ok)
      throw new ChainError("CHAIN_INCONSISTENT", `the certificate of block ${height} does not decode`, {
        height,
      });
    return decoded.value;
  }

  async getExecution(height: number): Promise<ExecutionRecord | undefined> {
    const bytes = await this.store.get(Prefix.BlockExecution, heightKey(height));
    return bytes === undefined ? undefined : decodeExecution(bytes);
  }

  async getTxLocation(txHash: Uint8Array): Promise<TxLocation | undefined> {
    if (txHash.length !== 32) return undefined;
    const bytes = await this.store.get(Prefix.TxLocation, txHash);
    return bytes === undefined ? undefined : decodeTxLocation(bytes);
  }

  async getReceipt(height: number, txIndex: number): Promise<StoredReceipt | undefined> {
    const bytes = await this.store.get(Prefix.Receipt, heightIndexKey(height, txIndex));
    return bytes === undefined ? undefined : decodeReceipt(bytes);
  }

  /** All receipts of a block, in transaction order. */
  async getReceipts(height: number): Promise<StoredReceipt[]> {
    const out: StoredReceipt[] = [];
    for await (const [, value] of this.store.range(Prefix.Receipt, {
      gte: heightIndexKey(height, 0),
      lt: heightKey(height + 1),
    }))
      out.push(decodeReceipt(value));
    return out;
  }

  /** Logs of a block, optionally only those of log indexes [from, from + count). */
  async getLogs(height: number, from = 0, count = Number.MAX_SAFE_INTEGER): Promise<StoredLog[]> {
    const out: StoredLog[] = [];
    for await (const [, value] of this.store.range(Prefix.Log, {
      gte: heightIndexKey(height, from),
      lt: heightKey(height + 1),
      limit: count,
    }))
      out.push(decodeLog(value));
    return out;
  }

  async getValidatorSet(height: number): Promise<ValidatorSet | undefined> {
    const bytes = await this.store.get(Prefix.ValidatorSet, heightKey(height));
    return bytes === undefined ? undefined : decodeValidatorSet(bytes);
  }
}
