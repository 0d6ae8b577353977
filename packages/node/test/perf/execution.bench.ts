/**
 * `node packages/node/test/perf/execution.bench.ts [--txs 4000] [--block 500]`: AuditLog.record
 * transactions executed per second on one core, EVM alone (in-memory flat state) and with the
 * encrypted store (state read from LevelDB, changes written in one fsynced batch per block).
 * Includes decoding, native sender recovery, runTx, receipts and the state commitment; the
 * "senders known" run skips recovery as a node does for transactions its mempool admitted.
 * Writes ci_artifacts/execution_benchmark.json.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { cpus, tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { createFeeMarket1559Tx, createTxFromRLP } from "@ethereumjs/tx";
import { bytesToHex, createAddressFromString, hexToBytes } from "@ethereumjs/util";
import { DEVNET_DEPLOYER } from "@vitalstream/contracts";
import { createExecutor, type Executor, type RecoveredSenders } from "../../src/execution/executor.ts";
import {
  type MemoryState,
  putStateChanges,
  type StateReader,
  StoreState,
} from "../../src/execution/state.ts";
import { EncryptedStore } from "../../src/store/encryptedStore.ts";
import {
  auditLog,
  auditLogAddress,
  CHAIN_ID,
  COINBASE,
  deployAuditLog,
  deployer,
  genesisState,
  recordData,
  signTx,
  WRITER_ROLE,
} from "../fixtures/execution.ts";
import { passphraseWrapper } from "../fixtures/store.ts";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "../../../..");
const { values } = parseArgs({
  options: { txs: { type: "string", default: "4000" }, block: { type: "string", default: "500" } },
});
const TXS = Number(values.txs);
const BLOCK = Number(values.block);

type Secp256k1 = typeof import("secp256k1");
const secp = createRequire(import.meta.url)("secp256k1/bindings") as Secp256k1;
const privateKey = hexToBytes(DEVNET_DEPLOYER.privateKey);
const contract = createAddressFromString(auditLogAddress(0));

/** Signs record txs with native secp256k1 (ethers' pure-JS signing would dominate the setup). */
function signRecords(firstNonce: number, count: number, common: Executor["common"]): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (let i = 0; i < count; i++) {
    const tx = createFeeMarket1559Tx(
      {
        nonce: BigInt(firstNonce + i),
        to: contract,
        data: hexToBytes(recordData(i) as `0x${string}`),
        gasLimit: 200_000n,
        maxFeePerGas: 0n,
        maxPriorityFeePerGas: 0n,
        chainId: CHAIN_ID,
      },
      { common },
    );
    const { signature, recid } = secp.ecdsaSign(tx.getHashedMessageToSign(), privateKey);
    out.push(tx.addSignature(BigInt(recid), signature.slice(0, 32), signature.slice(32)).serialize());
  }
  return out;
}

async function setupTxs(): Promise<Uint8Array[]> {
  return [
    await deployAuditLog(0),
    await signTx(deployer, {
      nonce: 1,
      to: auditLogAddress(0),
      data: auditLog.encodeFunctionData("grantRole", [WRITER_ROLE, deployer.address]),
    }),
  ];
}

interface Run {
  txs: number;
  seconds: number;
  txPerSecond: number;
  gasPerTx: number;
}

/** What a mempool knows after admitting `txs`: each sender's recovered public key. */
function recoveredSenders(txs: Uint8Array[], common: Executor["common"]): RecoveredSenders {
  const keys = new Map<string, Uint8Array>();
  for (const raw of txs) {
    const tx = createTxFromRLP(raw, { common });
    keys.set(bytesToHex(tx.hash()), tx.getSenderPublicKey());
  }
  return { recoveredPublicKey: (txHash) => keys.get(bytesToHex(txHash)) };
}

async function run(
  executor: Executor,
  state: StateReader,
  blocks: Uint8Array[][],
  persist: (changes: Awaited<ReturnType<Executor["executeBlock"]>>["changes"]) => Promise<void>,
  firstHeight: number,
  senders?: RecoveredSenders,
): Promise<Run> {
  let txs = 0;
  let gas = 0n;
  let parent: Uint8Array | undefined;
  const start = process.hrtime.bigint();
  for (const [i, txsOfBlock] of blocks.entries()) {
    const result = await executor.executeBlock(
      {
        height: BigInt(firstHeight + i),
        timestamp: 1_800_000_000n + BigInt(i),
        coinbase: COINBASE,
        txs: txsOfBlock,
        parentStateRoot: parent,
      },
      state,
      { senders },
    );
    const failed = result.outcomes.find((o) => !o.ok || o.receipt.status !== 1);
    if (failed !== undefined)
      throw new Error(
        `benchmark tx failed: ${JSON.stringify(failed, (_, v) => (typeof v === "bigint" ? `${v}` : v))}`,
      );
    await persist(result.changes);
    parent = result.stateRoot;
    txs += result.receipts.length;
    gas += result.gasUsed;
  }
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  return { txs, seconds, txPerSecond: Math.round(txs / seconds), gasPerTx: Number(gas / BigInt(txs)) };
}

function chunk<T>(items: T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

async function main(): Promise<void> {
  const executor = await createExecutor({
    chainId: CHAIN_ID,
    blockGasLimit: BigInt(BLOCK) * 200_000n + 10_000_000n,
  });
  const setup = await setupTxs();
  const records = signRecords(2, TXS, executor.common);
  const warmup = signRecords(2, Math.min(200, TXS), executor.common);

  // Warm-up (JIT) on a throwaway memory state.
  {
    const state = genesisState();
    await run(executor, state, [setup, warmup], async (c) => state.apply(c), 1);
  }

  // EVM alone: flat in-memory state.
  const memory: MemoryState = genesisState();
  await run(executor, memory, [setup], async (c) => memory.apply(c), 1);
  const evmAlone = await run(executor, memory, chunk(records, BLOCK), async (c) => memory.apply(c), 2);
  const known: MemoryState = genesisState();
  await run(executor, known, [setup], async (c) => known.apply(c), 1);
  const evmAloneSendersKnown = await run(
    executor,
    known,
    chunk(records, BLOCK),
    async (c) => known.apply(c),
    2,
    recoveredSenders(records, executor.common),
  );

  // With the encrypted store: reads from LevelDB (AES-GCM), one fsynced batch per block.
  const dir = mkdtempSync(join(tmpdir(), "exec-bench-"));
  let withStore: Run;
  try {
    const keyWrapper = await passphraseWrapper(dir);
    const store = await EncryptedStore.open({ path: join(dir, "db"), create: true }, { keyWrapper });
    const genesis = genesisState();
    const account = await genesis.getAccount(hexToBytes(deployer.address as `0x${string}`));
    await putStateChanges(store.batch(), [
      { kind: "account", address: hexToBytes(deployer.address as `0x${string}`), account: account! },
    ]).write();
    const state = new StoreState(store);
    const persist = async (changes: Parameters<typeof putStateChanges>[1]) => {
      await putStateChanges(store.batch(), changes).write();
    };
    await run(executor, state, [setup], persist, 1);
    withStore = await run(executor, state, chunk(records, BLOCK), persist, 2);
    await store.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }

  const report = {
    benchmark: "execution",
    workload: `AuditLog.record (one EIP-1559 tx, zero gas price), blocks of ${BLOCK}`,
    node: process.version,
    cpu: cpus()[0]?.model ?? "unknown",
    date: new Date().toISOString(),
    evmAlone,
    evmAloneSendersKnown,
    withStore,
    storeOverhead: Number((1 - withStore.txPerSecond / evmAlone.txPerSecond).toFixed(3)),
  };
  mkdirSync(join(ROOT, "ci_artifacts"), { recursive: true });
  writeFileSync(join(ROOT, "ci_artifacts/execution_benchmark.json"), `${JSON.stringify(report, null, 2)}\n`);
  console.log(
    `execution: EVM alone ${evmAlone.txPerSecond} tx/s (senders known ${evmAloneSendersKnown.txPerSecond}), ` +
      `with encrypted store ${withStore.txPerSecond} tx/s ` +
      `(${evmAlone.gasPerTx} gas/tx, ${TXS} txs, blocks of ${BLOCK})`,
  );
}

await main();
