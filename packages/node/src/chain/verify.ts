/**
 * `vitalstream verify`: a full scan of a store, for operators and auditors.
 *
 * 1. Every record authenticates (AES-256-GCM with its key as associated data).
 * 2. Blocks form a hash chain from genesis to the head, each carrying its parent's roots.
 * 3. Every commit certificate verifies against the validator set of its height.
 * 4. Re-executing every block from the genesis allocations reproduces each stored state root and
 *    receipts root, and the final state equals the stored state record for record.
 *
 * Problems are collected (up to a limit) rather than stopping at the first, each naming the
 * height or record. The scan never writes.
 */
import {
  createNodeCryptoVerify,
  toHex as hex,
  ValidatorSet,
  verifyCertificate,
} from "@vitalstream/consensus";
import { createExecutor } from "../execution/executor.ts";
import { changeStoreKey, encodeAccount, MemoryState, type StateChange } from "../execution/state.ts";
import type { EncryptedStore } from "../store/encryptedStore.ts";
import { StoreError } from "../store/errors.ts";
import { Prefix, prefixName } from "../store/prefixes.ts";
import { blockHash, decodeBlock } from "./block.ts";
import type { Chain } from "./chain.ts";
import { genesisBlock, genesisValidators } from "./genesis.ts";

export interface VerifyProblem {
  kind: "record" | "block" | "certificate" | "execution" | "state";
  height?: number;
  record?: string;
  message: string;
}

export interface VerifyReport {
  ok: boolean;
  head: number;
  blocks: number;
  records: number;
  transactions: number;
  problems: VerifyProblem[];
  /** Problems beyond the reported ones. */
  moreProblems: number;
  durationMs: number;
}

export interface VerifyOptions {
  /** Re-execute blocks to check state commitments (the slow part). Default true. */
  replay?: boolean;
  maxProblems?: number;
  onProgress?(p: { phase: "records" | "blocks"; done: number; total: number }): void;
}

const ZERO_ADDRESS = new Uint8Array(20);

export async function verifyChain(
  store: EncryptedStore,
  chain: Chain,
  opts: VerifyOptions = {},
): Promise<VerifyReport> {
  const started = Date.now();
  const maxProblems = opts.maxProblems ?? 50;
  const problems: VerifyProblem[] = [];
  let more = 0;
  const report = (p: VerifyProblem) => {
    if (problems.length < maxProblems) problems.push(p);
    else more++;
  };
  const head = chain.head.height;

  // 1. Authentication of every value.
  const records = await authenticateRecords(store, {
    onCorrupt: (record, message) => report({ kind: "record", record, message }),
    onProgress: (done) => opts.onProgress?.({ phase: "records", done, total: 0 }),
  });
  opts.onProgress?.({ phase: "records", done: records, total: records });

  // 2-4. The chain, block by block.
  const verify = createNodeCryptoVerify();
  const doc = chain.genesis;
  const g = genesisBlock(doc);
  const replay = opts.replay ?? true;
  const executor = await createExecutor({
    chainId: BigInt(doc.evmChainId),
    blockGasLimit: BigInt(doc.consensus.blockGasLimit),
  });
  const state = new MemoryState();
  state.apply(g.changes);
  let set = ValidatorSet.create(genesisValidators(doc));
  let parentHash = g.hash;
  let parentStateRoot = g.stateRoot;
  let parentReceiptsRoot = g.receiptsRoot;
  let transactions = 0;
  let replayed = replay;

  const block0 = await chain.getBlock(0, { fromStore: true }).catch(() => undefined);
  if (block0 === undefined || Buffer.compare(block0.hash, g.hash) !== 0)
    report({ kind: "block", height: 0, message: "the genesis block does not match the genesis document" });

  for (let height = 1; height <= head; height++) {
    const fail = (kind: VerifyProblem["kind"], message: string) =>
      report({ kind, height, message: `block ${height}: ${message}` });
    let stored: Awaited<ReturnType<Chain["getBlock"]>>;
    let execution: Awaited<ReturnType<Chain["getExecution"]>>;
    try {
      stored = await chain.getBlock(height, { fromStore: true });
      execution = await chain.getExecution(height);
    } catch (e) {
      fail("block", (e as Error).message);
      replayed = false;
      break;
    }
    if (stored === undefined || execution === undefined) {
      fail("block", "missing block or execution record");
      replayed = false;
      break;
    }
    const h = stored.block.header;
    if (h.height !== height) fail("block", `header says height ${h.height}`);
    if (Buffer.compare(h.parentHash, parentHash) !== 0)
      fail("block", "parent hash does not match the previous block");
    if (Buffer.compare(h.lastStateRoot, parentStateRoot) !== 0)
      fail("execution", "carries a different parent state root");
    if (Buffer.compare(h.lastReceiptsRoot, parentReceiptsRoot) !== 0)
      fail("execution", "carries a different parent receipts root");
    const byHash = await chain.heightOf(stored.hash).catch(() => undefined);
    if (byHash !== height) fail("block", "the hash index does not point at this block");

    const storedSet = await chain.getValidatorSet(height).catch(() => undefined);
    if (storedSet === undefined) fail("certificate", "no validator set stored");
    else set = storedSet;
    try {
      const cert = await chain.getCertificate(height);
      if (cert === undefined) fail("certificate", "no commit certificate");
      else {
        const checked = verifyCertificate(cert, {
          chainId: doc.chainId,
          validatorSet: set,
          verify,
          height,
          valueHash: blockHash(stored.encoded),
        });
        if (!checked.ok) fail("certificate", checked.error.detail);
      }
    } catch (e) {
      fail("certificate", (e as Error).message);
    }

    if (replay) {
      const result = await executor.executeBlock(
        {
          height: BigInt(height),
          timestamp: BigInt(Math.floor(h.timestampMs / 1000)),
          coinbase: ZERO_ADDRESS,
          txs: decodeBlock(stored.encoded).txs,
          parentStateRoot,
        },
        state,
      );
      state.apply(result.changes);
      transactions += result.receipts.length;
      if (Buffer.compare(result.stateRoot, execution.stateRoot) !== 0)
        fail("execution", "re-execution gives a different state root than the stored one");
      if (Buffer.compare(result.receiptsRoot, execution.receiptsRoot) !== 0)
        fail("execution", "re-execution gives a different receipts root than the stored one");
    }
    parentHash = stored.hash;
    parentStateRoot = execution.stateRoot;
    parentReceiptsRoot = execution.receiptsRoot;
    if (height % 500 === 0) opts.onProgress?.({ phase: "blocks", done: height, total: head });
  }
  opts.onProgress?.({ phase: "blocks", done: head, total: head });

  // The replayed state must be exactly the stored state.
  if (replayed) await compareState(store, state, report);

  return {
    ok: problems.length === 0,
    head,
    blocks: head + 1,
    records,
    transactions,
    problems,
    moreProblems: more,
    durationMs: Date.now() - started,
  };
}

/**
 * Decrypts every record (Meta excepted); reports each that fails authentication by bucket and key.
 * Returns the number of records checked.
 */
export async function authenticateRecords(
  store: EncryptedStore,
  opts: { onCorrupt(record: string, message: string): void; onProgress?(done: number): void },
): Promise<number> {
  let records = 0;
  for await (const key of store.rawDatabase().keys()) {
    const prefix = key[0]!;
    if (prefix === Prefix.Meta) continue;
    records++;
    try {
      await store.get(prefix, key.subarray(1));
    } catch (e) {
      if (e instanceof StoreError && e.code === "STORE_CORRUPT_RECORD")
        opts.onCorrupt(`${prefixName(prefix)}/${hex(key.subarray(1))}`, e.message);
      else throw e;
    }
    if (records % 10_000 === 0) opts.onProgress?.(records);
  }
  return records;
}

async function compareState(
  store: EncryptedStore,
  state: MemoryState,
  report: (p: VerifyProblem) => void,
): Promise<void> {
  const expected = new Map<string, string>();
  for (const change of state.export()) {
    const { prefix, key } = changeStoreKey(change);
    expected.set(`${prefix}/${hex(key)}`, hex(storedValue(change)));
  }
  for (const prefix of [Prefix.Account, Prefix.AccountStorage, Prefix.Code]) {
    try {
      for await (const [key, value] of store.range(prefix)) {
        const id = `${prefix}/${hex(key)}`;
        const want = expected.get(id);
        if (want === undefined) {
          report({
            kind: "state",
            record: `${prefixName(prefix)}/${hex(key)}`,
            message: "stored state record that re-execution does not produce",
          });
        } else if (want !== hex(value)) {
          report({
            kind: "state",
            record: `${prefixName(prefix)}/${hex(key)}`,
            message: "stored state record differs from re-execution",
          });
        }
        expected.delete(id);
      }
    } catch (e) {
      report({ kind: "state", message: `state scan stopped: ${(e as Error).message}` });
      return;
    }
  }
  for (const id of expected.keys()) {
    const [prefix, key] = id.split("/");
    report({
      kind: "state",
      record: `${prefixName(Number(prefix))}/${key}`,
      message: "state record missing from the store",
    });
  }
}

function storedValue(change: StateChange): Uint8Array {
  switch (change.kind) {
    case "account":
      return change.account === undefined ? new Uint8Array(0) : encodeAccount(change.account);
    case "storage":
      return change.value ?? new Uint8Array(0);
    case "code":
      return change.code;
  }
}
