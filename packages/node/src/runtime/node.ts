/**
 * One validator process: assembles the store, chain, executor, mempool, signer, consensus host
 * and RPC server from a config, and takes them down in the reverse order.
 */
import { readFileSync } from "node:fs";
import {
  createGuardedSigner,
  createKeyWrapper,
  createKeyWrapperFromEnv,
  createSigner,
  createSignerFromEnv,
  type GuardedSigner,
  type KeyWrapper,
  type Signer,
} from "@vitalstream/hsm";
import type { Logger } from "pino";
import type { Chain } from "../chain/chain.ts";
import { Chain as ChainStore } from "../chain/chain.ts";
import { ChainError } from "../chain/errors.ts";
import { type GenesisDocument, parseGenesis } from "../chain/genesis.ts";
import { authenticateRecords } from "../chain/verify.ts";
import { ConsensusHost, type ConsensusTransport } from "../consensusHost/host.ts";
import { type CallRunner, createCallRunner } from "../execution/call.ts";
import { createExecutor, type Executor } from "../execution/executor.ts";
import { createMempool, type Mempool } from "../mempool/mempool.ts";
import { ethMethods } from "../rpc/ethMethods.ts";
import { createRpcServer, type RestRoute, type RpcServer } from "../rpc/server.ts";
import { vitalstreamMethods } from "../rpc/vitalstreamMethods.ts";
import { EncryptedStore } from "../store/encryptedStore.ts";
import { StoreError } from "../store/errors.ts";
import { dataPaths, type NodeConfig } from "./config.ts";
import { VERSION } from "./version.ts";

export interface RunningNode {
  config: NodeConfig;
  chain: Chain;
  store: EncryptedStore;
  mempool: Mempool;
  executor: Executor;
  callRunner: CallRunner;
  host: ConsensusHost;
  signer: GuardedSigner | null;
  rpc: RpcServer | null;
  rpcUrl: string | null;
  stop(): Promise<void>;
}

export interface NodeModules {
  logger: Logger;
  transport?: ConsensusTransport;
  /** Extra admin REST routes (the backup download), given the opened parts. */
  adminRoutes?(parts: { store: EncryptedStore; chain: Chain }): RestRoute[];
  env?: NodeJS.ProcessEnv;
}

export function readGenesis(path: string): GenesisDocument {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (e) {
    throw new ChainError(
      "CHAIN_INVALID_GENESIS",
      `cannot read genesis ${path} (${(e as NodeJS.ErrnoException).code ?? "error"})`,
    );
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new ChainError(
      "CHAIN_INVALID_GENESIS",
      `genesis ${path} is not valid JSON: ${(e as Error).message}`,
    );
  }
  return parseGenesis(json);
}

export async function openKeyWrapper(
  config: NodeConfig,
  env: NodeJS.ProcessEnv = process.env,
): Promise<KeyWrapper> {
  const opts = { production: config.production };
  return config.storageKey === undefined
    ? createKeyWrapperFromEnv(env, opts)
    : createKeyWrapper(config.storageKey, opts);
}

export async function openSigner(config: NodeConfig, env: NodeJS.ProcessEnv = process.env): Promise<Signer> {
  const opts = { production: config.production };
  return config.signer === undefined ? createSignerFromEnv(env, opts) : createSigner(config.signer, opts);
}

/** Opens the store and chain (creating them on first start). */
export async function openChain(
  config: NodeConfig,
  genesis: GenesisDocument,
  keyWrapper: KeyWrapper,
  create: boolean,
): Promise<{ store: EncryptedStore; chain: Chain }> {
  const store = await EncryptedStore.open(
    {
      ...Object.fromEntries(
        Object.entries(config.store).filter(([k, v]) => k !== "verifyOnStart" && v !== undefined),
      ),
      path: dataPaths(config).store,
      create,
    },
    { keyWrapper },
  );
  try {
    return { store, chain: await ChainStore.open(store, genesis) };
  } catch (e) {
    await store.close();
    throw e;
  }
}

export async function startNode(config: NodeConfig, modules: NodeModules): Promise<RunningNode> {
  const log = modules.logger;
  const env = modules.env ?? process.env;
  const genesis = readGenesis(config.genesisFile);
  const cleanups: (() => Promise<void>)[] = [];
  const cleanup = async () => {
    for (const run of cleanups.reverse()) await run().catch(() => undefined);
  };
  try {
    const keyWrapper = await openKeyWrapper(config, env);
    cleanups.push(() => keyWrapper.close());
    const { store, chain } = await openChain(config, genesis, keyWrapper, true);
    cleanups.push(() => store.close());
    log.info({ height: chain.head.height, chainId: genesis.chainId, store: store.path }, "chain opened");
    if (config.store.verifyOnStart) {
      // Refuse to serve from a damaged store: name the first bad record and stop (no silent crash loop).
      const started = Date.now();
      let corrupt: { record: string; message: string } | undefined;
      const records = await authenticateRecords(store, {
        onCorrupt: (record, message) => {
          corrupt ??= { record, message };
        },
        onProgress: (done) => log.info({ records: done }, "authenticating the store"),
      });
      if (corrupt !== undefined)
        throw new StoreError(
          "STORE_CORRUPT_RECORD",
          `${corrupt.message}; run 'vitalstream verify' for a full report and restore from a backup`,
          {
            record: corrupt.record,
          },
        );
      log.info({ records, ms: Date.now() - started }, "store authenticated");
    }

    const executor = await createExecutor({
      chainId: BigInt(genesis.evmChainId),
      blockGasLimit: BigInt(genesis.consensus.blockGasLimit),
    });
    const callRunner = await createCallRunner(executor.common);
    const permitted = new Set(
      [...genesis.permissions.senders, ...genesis.permissions.admins].map((a) => a.toLowerCase()),
    );
    const { minGasPrice, ...mempoolOptions } = config.mempool;
    const mempool = createMempool(
      Object.fromEntries(
        Object.entries({
          ...mempoolOptions,
          minGasPrice: minGasPrice === undefined ? undefined : BigInt(minGasPrice),
        }).filter(([, v]) => v !== undefined),
      ),
      { executor, state: chain.state(), isPermitted: (sender) => permitted.has(sender) },
    );

    let signer: GuardedSigner | null = null;
    if (!config.observer) {
      const raw = await openSigner(config, env);
      const publicKey = Buffer.from(await raw.publicKey()).toString("hex");
      const isValidator = genesis.validators.some((v) => v.publicKey.slice(2).toLowerCase() === publicKey);
      if (!isValidator) {
        log.warn(
          { keyId: raw.keyId },
          "the signer's key is not in the validator set: running as an observer",
        );
        await raw.close();
      } else {
        signer = await createGuardedSigner(raw, { journalPath: dataPaths(config).guardJournal });
        const guarded = signer;
        cleanups.push(() => guarded.close());
      }
    }

    const transport = modules.transport ?? { broadcast: () => {}, peerCount: () => 0 };
    const host = new ConsensusHost(
      {
        timeouts: genesis.consensus.timeouts,
        emptyBlockIntervalMs: genesis.consensus.emptyBlockIntervalMs,
        commitIntervalMs: genesis.consensus.commitIntervalMs,
      },
      { chain, executor, mempool, signer, logger: log.child({ module: "consensus" }), transport },
    );

    let rpc: RpcServer | null = null;
    let rpcUrl: string | null = null;
    if (config.rpc.enabled) {
      const eth = ethMethods({
        chain,
        mempool,
        executor,
        callRunner,
        clientVersion: `vitalstream/${VERSION}/node-${process.version}`,
        maxLogsBlockRange: config.rpc.maxLogsBlockRange,
        maxLogs: config.rpc.maxLogs,
        callGasCap: BigInt(config.rpc.callGasCap),
        peerCount: () => transport.peerCount(),
        notifyTransactions: () => host.notifyTransactions(),
        syncing: () => false,
      });
      const vs = vitalstreamMethods({
        chain,
        consensusStatus: () => host.status(),
        signer: signer?.signer ?? null,
        minPeers: 0,
        peerCount: () => transport.peerCount(),
        syncing: () => false,
        adminRoutes: modules.adminRoutes?.({ store, chain }),
      });
      rpc = createRpcServer(
        {
          host: config.rpc.host,
          port: config.rpc.port,
          corsOrigins: config.rpc.corsOrigins,
          tls: config.rpc.tls,
          adminTokenFile: config.rpc.adminTokenFile,
          ...(config.rpc.maxBodyBytes === undefined ? {} : { maxBodyBytes: config.rpc.maxBodyBytes }),
          ...(config.rpc.maxBatchSize === undefined ? {} : { maxBatchSize: config.rpc.maxBatchSize }),
          ...(config.rpc.requestTimeoutMs === undefined
            ? {}
            : { requestTimeoutMs: config.rpc.requestTimeoutMs }),
        },
        { methods: { ...eth, ...vs.methods }, routes: vs.routes, logger: log.child({ module: "rpc" }) },
      );
      const server = rpc;
      const bound = await server.listen();
      cleanups.push(() => server.close());
      rpcUrl = bound.url;
      log.info({ url: bound.url }, "JSON-RPC listening");
    }

    await host.start();
    cleanups.push(() => host.stop());
    log.info(
      { validatorIndex: host.status().validatorIndex, height: chain.head.height + 1 },
      signer === null ? "following the chain as an observer" : "validating",
    );
    let stopped = false;
    return {
      config,
      chain,
      store,
      mempool,
      executor,
      callRunner,
      host,
      signer,
      rpc,
      rpcUrl,
      stop: async () => {
        if (stopped) return;
        stopped = true;
        await cleanup();
      },
    };
  } catch (e) {
    await cleanup();
    throw e;
  }
}
