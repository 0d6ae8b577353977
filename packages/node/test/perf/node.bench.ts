/**
 * `npm run bench:node [-- --txs 6000 --per-account 50]`: one validator, end to end.
 *
 * - ceiling: the same AuditLog.record transactions executed by the EVM alone (in-memory flat
 *   state, one core), the most the node could commit;
 * - store: encrypted batch writes to LevelDB (records/s, MB/s, fsync per batch);
 * - end to end: a real `vitalstream start` process; transactions pre-signed from many permitted
 *   accounts are submitted over JSON-RPC (batches of 100) and counted when committed; latency is
 *   submit -> the block that commits it.
 *
 * `--node-log <file>` appends the node's log to a file (per-block commit times).
 *
 * Writes ci_artifacts/node_benchmark.json. Goals (issue 5): end to end >= 70% of the ceiling, and
 * >= 1,500 tx/s.
 */
import { spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, openSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { cpus, tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { createFeeMarket1559Tx } from "@ethereumjs/tx";
import { createAddressFromString, hexToBytes } from "@ethereumjs/util";
import { auditLogArtifact } from "@vitalstream/contracts";
import { Interface, id } from "ethers";
import { genesisBlock } from "../../src/chain/genesis.ts";
import { createExecutor } from "../../src/execution/executor.ts";
import { MemoryState } from "../../src/execution/state.ts";
import { AUDIT_LOG_ADDRESS, initNetwork } from "../../src/runtime/init.ts";
import { EncryptedStore } from "../../src/store/encryptedStore.ts";
import { passphraseWrapper } from "../fixtures/store.ts";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "../../../..");
const { values } = parseArgs({
  options: {
    txs: { type: "string", default: "6000" },
    "per-account": { type: "string", default: "50" },
    port: { type: "string", default: "18645" },
    /** Append the node's own (pino) log here, e.g. to read the per-block commit times. */
    "node-log": { type: "string" },
  },
});
const TXS = Number(values.txs);
const PER_ACCOUNT = Number(values["per-account"]);
const ACCOUNTS = Math.ceil(TXS / PER_ACCOUNT);
const PORT = Number(values.port);
const secp = createRequire(import.meta.url)("secp256k1/bindings") as typeof import("secp256k1");
const log = (m: string) => process.stderr.write(`${m}\n`);

function percentile(sorted: number[], p: number): number {
  return sorted.length === 0
    ? 0
    : sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

async function rpc(url: string, body: unknown): Promise<unknown> {
  const r = await fetch(url, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  return r.json();
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), "vs-bench-node-"));
  log(`init: 1 validator, ${ACCOUNTS} permitted accounts`);
  const net = await initNetwork({
    dir,
    validators: 1,
    devAccounts: ACCOUNTS,
    rpcBasePort: PORT,
    emptyBlockIntervalMs: 50,
    scryptN: 1024,
  });
  const executor = await createExecutor({
    chainId: BigInt(net.genesis.evmChainId),
    blockGasLimit: BigInt(net.genesis.consensus.blockGasLimit),
  });
  const iface = new Interface(auditLogArtifact.abi);
  const contract = createAddressFromString(AUDIT_LOG_ADDRESS);

  log(`signing ${TXS} AuditLog.record transactions (native secp256k1)`);
  const txs: { raw: Uint8Array; hex: string }[] = [];
  for (let n = 0; n < PER_ACCOUNT; n++)
    for (const account of net.accounts) {
      if (txs.length === TXS) break;
      const tx = createFeeMarket1559Tx(
        {
          nonce: BigInt(n),
          to: contract,
          data: hexToBytes(
            iface.encodeFunctionData("record", [
              id(`subject-${txs.length}`),
              id("record.read"),
              id(`doc-${txs.length}`),
            ]) as `0x${string}`,
          ),
          gasLimit: 300_000n,
          maxFeePerGas: 0n,
          maxPriorityFeePerGas: 0n,
          chainId: BigInt(net.genesis.evmChainId),
        },
        { common: executor.common },
      );
      const { signature, recid } = secp.ecdsaSign(
        tx.getHashedMessageToSign(),
        hexToBytes(account.privateKey as `0x${string}`),
      );
      const raw = tx.addSignature(BigInt(recid), signature.slice(0, 32), signature.slice(32)).serialize();
      txs.push({ raw, hex: `0x${Buffer.from(raw).toString("hex")}` });
    }

  // Ceiling: EVM alone, blocks of 500, in-memory state from the same genesis.
  log("ceiling: EVM alone");
  const state = new MemoryState();
  state.apply(genesisBlock(net.genesis).changes);
  let parent = genesisBlock(net.genesis).stateRoot;
  const t0 = performance.now();
  for (let i = 0; i < txs.length; i += 500) {
    const result = await executor.executeBlock(
      {
        height: BigInt(i / 500 + 1),
        timestamp: 1_800_000_000n,
        coinbase: new Uint8Array(20),
        txs: txs.slice(i, i + 500).map((t) => t.raw),
        parentStateRoot: parent,
      },
      state,
    );
    const failed = result.outcomes.find((o) => !o.ok || o.receipt.status !== 1);
    if (failed !== undefined)
      throw new Error(
        `a benchmark transaction failed in the EVM-alone run: ${JSON.stringify(failed, (_k, v) => (typeof v === "bigint" ? `${v}` : v instanceof Uint8Array ? "bytes" : v))}`,
      );
    state.apply(result.changes);
    parent = result.stateRoot;
  }
  const ceiling = txs.length / ((performance.now() - t0) / 1000);
  log(`  ${ceiling.toFixed(0)} tx/s`);

  // Store write rate: batches of 1000 records of 200 bytes, fsynced.
  log("store: encrypted batch writes");
  const storeDir = mkdtempSync(join(tmpdir(), "vs-bench-store-"));
  const store = await EncryptedStore.open(
    { path: join(storeDir, "db"), create: true },
    { keyWrapper: await passphraseWrapper(storeDir) },
  );
  const value = new Uint8Array(200).fill(7);
  const batches = 50;
  const t1 = performance.now();
  for (let b = 0; b < batches; b++) {
    const batch = store.batch();
    for (let i = 0; i < 1000; i++) {
      const key = new Uint8Array(8);
      new DataView(key.buffer).setUint32(0, b);
      new DataView(key.buffer).setUint32(4, i);
      batch.put(9, key, value);
    }
    await batch.write();
  }
  const storeSeconds = (performance.now() - t1) / 1000;
  await store.close();
  rmSync(storeDir, { recursive: true, force: true });
  const storeRecords = (batches * 1000) / storeSeconds;
  log(`  ${storeRecords.toFixed(0)} records/s`);

  // End to end through a real node process.
  log("end to end: starting a validator process");
  const url = `http://127.0.0.1:${PORT}`;
  const child = spawn(
    process.execPath,
    [
      join(ROOT, "packages/node/bin/vitalstream.js"),
      "start",
      "--config",
      join(net.validatorDirs[0]!, "config.json"),
    ],
    {
      stdio: [
        "ignore",
        values["node-log"] === undefined ? "ignore" : openSync(values["node-log"], "a"),
        "inherit",
      ],
    },
  );
  try {
    for (let i = 0; ; i++) {
      try {
        if ((await fetch(`${url}/ready`)).status === 200) break;
      } catch {}
      if (i > 200) throw new Error("the node did not become ready");
      await new Promise((d) => setTimeout(d, 100));
    }
    const startHeight = Number(
      ((await rpc(url, { jsonrpc: "2.0", id: 1, method: "eth_blockNumber" })) as { result: string }).result,
    );
    const submittedAt = new Map<string, number>();
    const hashes: string[] = [];
    const started = performance.now();
    const BATCH = 100;
    const CONCURRENCY = 4;
    let next = 0;
    const submitter = async () => {
      while (next < txs.length) {
        const slice = txs.slice(next, next + BATCH);
        next += BATCH;
        const at = performance.now();
        const answers = (await rpc(
          url,
          slice.map((t, i) => ({ jsonrpc: "2.0", id: i, method: "eth_sendRawTransaction", params: [t.hex] })),
        )) as { id: number; result?: string; error?: { message: string } }[];
        for (const a of answers) {
          if (a.error !== undefined) throw new Error(`submission refused: ${a.error.message}`);
          submittedAt.set(a.result!, at);
          hashes.push(a.result!);
        }
      }
    };
    const submitting = Promise.all(Array.from({ length: CONCURRENCY }, submitter));
    const latencies: number[] = [];
    let committed = 0;
    let height = startHeight;
    let lastCommit = started;
    const blockSizes: number[] = [];
    while (committed < txs.length) {
      const head = Number(
        ((await rpc(url, { jsonrpc: "2.0", id: 1, method: "eth_blockNumber" })) as { result: string }).result,
      );
      if (head === height) {
        if (performance.now() - lastCommit > 60_000)
          throw new Error(`stalled at ${committed}/${txs.length} committed`);
        await new Promise((d) => setTimeout(d, 5));
        continue;
      }
      for (let h = height + 1; h <= head; h++) {
        const block = (await rpc(url, {
          jsonrpc: "2.0",
          id: 1,
          method: "eth_getBlockByNumber",
          params: [`0x${h.toString(16)}`, false],
        })) as {
          result: { transactions: string[] };
        };
        const now = performance.now();
        for (const hash of block.result.transactions) {
          const at = submittedAt.get(hash);
          if (at !== undefined) latencies.push(now - at);
        }
        committed += block.result.transactions.length;
        if (block.result.transactions.length > 0) blockSizes.push(block.result.transactions.length);
      }
      height = head;
      lastCommit = performance.now();
    }
    await submitting;
    const seconds = (lastCommit - started) / 1000;
    const endToEnd = committed / seconds;
    latencies.sort((a, b) => a - b);
    const report = {
      benchmark: "node",
      workload:
        "AuditLog.record (one audit event per transaction), 1 validator, local keystore signer, encrypted store",
      transactions: txs.length,
      accounts: ACCOUNTS,
      ceilingTxPerSecond: Math.round(ceiling),
      endToEnd: {
        txPerSecond: Math.round(endToEnd),
        seconds: Number(seconds.toFixed(2)),
        blocks: blockSizes.length,
        meanTxsPerBlock: Math.round(blockSizes.reduce((a, b) => a + b, 0) / Math.max(1, blockSizes.length)),
        latencyMs: {
          p50: Math.round(percentile(latencies, 50)),
          p95: Math.round(percentile(latencies, 95)),
          p99: Math.round(percentile(latencies, 99)),
        },
      },
      efficiency: Number((endToEnd / ceiling).toFixed(3)),
      store: {
        recordsPerSecond: Math.round(storeRecords),
        megabytesPerSecond: Number(((storeRecords * 229) / 1e6).toFixed(1)),
        recordBytes: 200,
        batchRecords: 1000,
      },
      goals: {
        efficiencyAtLeast: 0.7,
        txPerSecondAtLeast: 1500,
        efficiencyMet: endToEnd / ceiling >= 0.7,
        txPerSecondMet: endToEnd >= 1500,
      },
      environment: {
        cpu: cpus()[0]?.model,
        cores: cpus().length,
        node: process.version,
        platform: process.platform,
      },
      createdAt: new Date().toISOString(),
    };
    const out = resolve(ROOT, "ci_artifacts/node_benchmark.json");
    mkdirSync(dirname(out), { recursive: true });
    writeFileSync(out, `${JSON.stringify(report, null, 2)}\n`);
    process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
  } finally {
    child.kill("SIGTERM");
    await new Promise((d) => child.once("exit", d));
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
