/**
 * One validator process: assembles the store, chain, executor, mempool, signer, consensus host
 * and RPC server from a config, and takes them down in the reverse order.
 */
import { readFileSync } from "node:fs";
import { generateKeyPairFromSeed } from "@libp2p/crypto/keys";
import { peerIdFromPrivateKey } from "@libp2p/peer-id";
import {
  createGuardedSigner,
  createKeyWrapper,
  createKeyWrapperFromEnv,
  createSigner,
  createSignerFromEnv,
  type GuardedSigner,
  type KeyWrapper,
  RevocationList,
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
import { instrumentKeyWrapper, instrumentSigner } from "../metrics/instrumentedSigner.ts";
import { NodeMetrics } from "../metrics/nodeMetrics.ts";
import { createMetricsServer } from "../metrics/server.ts";
import { BlockSync } from "../network/blockSync.ts";
import { Network, NetworkError } from "../network/network.ts";
import { ConsortiumPki } from "../network/pki.ts";
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
  /** The Prometheus endpoint (…/metrics), when config.metrics is set. */
  metricsUrl: string | null;
  network: Network | null;
  sync: BlockSync | null;
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

/** The libp2p identity from the node key file (a 32-byte seed, hex). */
export async function readNodeKey(path: string) {
  let text: string;
  try {
    text = readFileSync(path, "utf8").trim();
  } catch (e) {
    throw new NetworkError(
      "NETWORK_CONFIG",
      `cannot read the node key ${path} (${(e as NodeJS.ErrnoException).code ?? "error"})`,
    );
  }
  if (!/^(0x)?[0-9a-fA-F]{64}$/.test(text))
    throw new NetworkError("NETWORK_CONFIG", `the node key ${path} must hold a 32-byte seed in hex`);
  const key = await generateKeyPairFromSeed("Ed25519", Buffer.from(text.replace(/^0x/, ""), "hex"));
  return { key, nodeId: peerIdFromPrivateKey(key).toString() };
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
    const metrics = config.metrics?.enabled === true ? new NodeMetrics() : null;
    const rawWrapper = await openKeyWrapper(config, env);
    const keyWrapper = metrics === null ? rawWrapper : instrumentKeyWrapper(rawWrapper, metrics);
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
      const provider = await openSigner(config, env);
      const raw = metrics === null ? provider : instrumentSigner(provider, metrics);
      const publicKey = Buffer.from(await raw.publicKey()).toString("hex");
      const isValidator = genesis.validators.some((v) => v.publicKey.slice(2).toLowerCase() === publicKey);
      if (!isValidator) {
        log.warn(
          { keyId: raw.keyId },
          "the signer's key is not in the validator set: running as an observer",
        );
        await raw.close();
      } else {
        // REVOCATION_DB_PATH: revoked consensus keys never sign (re-read when the file changes).
        const revocationPath = env.REVOCATION_DB_PATH;
        let revocation: RevocationList | undefined;
        if (revocationPath !== undefined && revocationPath !== "") {
          const list = RevocationList.load(revocationPath, {
            watch: true,
            onReload: () => log.info({ path: revocationPath }, "key revocation list reloaded"),
          });
          revocation = list;
          cleanups.push(async () => list.close());
          if (list.isRevoked({ keyId: raw.keyId, publicKey: await raw.publicKey() }))
            log.error(
              { keyId: raw.keyId, path: revocationPath },
              "this validator's consensus key is on the revocation list: it will not sign",
            );
        }
        signer = await createGuardedSigner(raw, {
          journalPath: dataPaths(config).guardJournal,
          ...(revocation === undefined ? {} : { revocation }),
        });
        const guarded = signer;
        cleanups.push(() => guarded.close());
      }
    }

    // The network and the consensus host refer to each other: the host broadcasts through the
    // network, the network hands received messages and synced blocks to the host.
    let host!: ConsensusHost;
    let network: Network | null = null;
    let sync: BlockSync | null = null;
    let pkiInUse: ConsortiumPki | null = null;
    if (config.p2p.enabled && modules.transport === undefined) {
      if (config.nodeKeyFile === undefined)
        throw new NetworkError("NETWORK_CONFIG", "p2p needs nodeKeyFile (or set p2p.enabled to false)");
      const nodeKey = await readNodeKey(config.nodeKeyFile);
      const own = genesis.validators.find((v) => v.nodeId === nodeKey.nodeId);
      if (signer !== null && own === undefined)
        log.warn(
          { nodeId: nodeKey.nodeId },
          "this node's id is not a validator's node id in genesis: peers will refuse it",
        );
      let pki: ConsortiumPki | null = null;
      if (config.p2p.pki !== undefined) {
        const loaded = ConsortiumPki.load(config.p2p.pki, {
          // A revoked peer is cut off at once, not at its next reconnect.
          onRevocationReload: () => {
            log.info("revocation list reloaded: checking connected peers again");
            network?.recheckCertificates();
          },
        });
        pki = loaded;
        pkiInUse = loaded;
        cleanups.push(async () => loaded.close());
        const checkOwn = (): void => {
          const check = loaded.checkOwn(nodeKey.nodeId, Date.now());
          if (!check.ok)
            throw new NetworkError("NETWORK_CONFIG", `own certificate refused: ${check.message}`);
          if (check.warn)
            log.warn(
              { notAfter: check.notAfter.toISOString(), days: check.expiresInDays },
              "this node's certificate expires soon: renew it (docs/pki.md)",
            );
        };
        checkOwn();
        // Twice a day: the expiry warning for a long-running node, and peers whose certificates expired.
        const daily = setInterval(() => {
          try {
            checkOwn();
          } catch (e) {
            log.error(
              { err: (e as Error).message },
              "this node's certificate is no longer valid: peers will refuse it",
            );
          }
          network?.recheckCertificates();
        }, 12 * 3600_000);
        daily.unref();
        cleanups.push(async () => clearInterval(daily));
        const revocationProblem = loaded.revocationError();
        if (revocationProblem !== null)
          log.error({ err: revocationProblem }, "the revocation list could not be read");
      }
      const p = config.p2p;
      const net = new Network(
        {
          chainId: genesis.chainId,
          listen: p.listen,
          peers: p.peers.filter((peer) => peer.nodeId !== nodeKey.nodeId),
          permitted: new Set([...genesis.validators.map((v) => v.nodeId), ...p.allowPeers]),
          encryption: p.encryption,
          maxFrameBytes: p.maxFrameBytes,
          maxQueueBytes: p.maxQueueBytes,
          wire: {
            maxValueBytes: genesis.consensus.maxBlockBytes,
            maxTxsPerFrame: 512,
            maxTxBytes: 128 * 1024,
            maxSyncBlocks: 1_000,
          },
          limits: {
            framesPerSecond: p.framesPerSecond,
            bytesPerSecond: p.bytesPerSecond,
            disconnectScore: p.disconnectScore,
            decayPerSecond: 1,
            banMs: p.banSeconds * 1000,
          },
          statusIntervalMs: p.statusIntervalMs,
          reconnectIntervalMs: p.reconnectIntervalMs,
          syncTimeoutMs: p.syncTimeoutMs,
        },
        {
          privateKey: nodeKey.key,
          logger: log.child({ module: "p2p" }),
          pki,
          handlers: {
            consensus: (message, peer) => {
              if (message.height > chain.head.height + 1) sync?.peerAt(message.height - 1);
              host.receive(message, peer);
            },
            transactions: (txs) => {
              void Promise.all(txs.map((raw) => mempool.add(raw)))
                .then((results) => {
                  if (results.some((r) => r.ok)) host.notifyTransactions();
                })
                .catch((e: Error) =>
                  log.warn({ err: e.message }, "gossiped transactions could not be added"),
                );
            },
            status: (status) => sync?.peerAt(status.headHeight),
            localStatus: () => {
              const s = host.status();
              return {
                headHeight: chain.head.height,
                headHash: chain.head.hash,
                height: s.height,
                round: s.round,
                step: ["propose", "prevote", "precommit", "commit"].indexOf(s.step),
                observer: signer === null,
              };
            },
            serveBlocks: async function* (fromHeight, maxBlocks) {
              const last = Math.min(chain.head.height, fromHeight + maxBlocks - 1);
              for (let h = fromHeight; h <= last; h++) {
                const block = await chain.getEncodedBlock(h);
                const certificate = await chain.getCertificateBytes(h);
                if (block === undefined || certificate === undefined) return;
                yield { block, certificate };
              }
            },
          },
        },
      );
      network = net;
      sync = new BlockSync(
        { batchBlocks: p.syncBatchBlocks, graceMs: 300 },
        {
          chain,
          logger: log.child({ module: "sync" }),
          apply: (blocks) => host.applyCommitted(blocks),
          peersAhead: (height) => net.peersAhead(height),
          request: (peer, from, max) => net.requestBlocks(peer, from, max),
          penalise: (peer, reason) => net.penalise(peer, "invalid", reason),
        },
      );
      // Peers learn of every commit at once (a lagging one starts syncing without waiting).
      chain.onHead(() => net.sendStatus());
    }
    const transport: ConsensusTransport =
      network === null
        ? (modules.transport ?? { broadcast: () => {}, peerCount: () => 0 })
        : {
            broadcast: (m) => network.broadcast(m),
            peerCount: () => network.peerCount(),
            penalise: (peer, reason) => network.penalise(peer, "invalid", reason),
          };
    host = new ConsensusHost(
      {
        timeouts: genesis.consensus.timeouts,
        emptyBlockIntervalMs: genesis.consensus.emptyBlockIntervalMs,
        commitIntervalMs: genesis.consensus.commitIntervalMs,
        regossipMs: network === null ? 0 : 1_000,
      },
      { chain, executor, mempool, signer, logger: log.child({ module: "consensus" }), transport },
    );
    const minPeers = config.p2p.minPeers ?? (genesis.validators.length > 1 ? 1 : 0);
    const syncing = () => sync?.isSyncing() ?? false;

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
        notifyTransactions: (raw) => {
          host.notifyTransactions();
          network?.gossipTransaction(raw);
        },
        syncing: () => {
          const st = sync?.status();
          return st === undefined || !syncing()
            ? false
            : { startingBlock: 0, currentBlock: chain.head.height, highestBlock: st.highestPeerHeight };
        },
      });
      const vs = vitalstreamMethods({
        chain,
        consensusStatus: () => host.status(),
        signer: signer?.signer ?? null,
        minPeers,
        peerCount: () => transport.peerCount(),
        syncing,
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

    let metricsUrl: string | null = null;
    if (metrics !== null && config.metrics !== undefined) {
      metrics.attach({
        chain,
        host,
        mempool,
        network,
        sync,
        signer: signer?.signer ?? null,
        pki: pkiInUse,
        dataDir: config.dataDir,
        storePath: dataPaths(config).store,
      });
      cleanups.push(async () => metrics.stop());
      const server = createMetricsServer(config.metrics, {
        metrics,
        logger: log.child({ module: "metrics" }),
      });
      metricsUrl = (await server.listen()).url;
      cleanups.push(() => server.close());
      log.info({ url: metricsUrl }, "metrics listening");
    }

    if (network !== null) {
      const net = network;
      await net.start();
      cleanups.push(() => net.stop());
      cleanups.push(async () => sync?.stop());
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
      metricsUrl,
      network,
      sync,
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
