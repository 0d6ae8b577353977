/**
 * The validator's configuration file (JSON). Paths inside it are relative to the file's directory,
 * so a validator directory can be moved or mounted anywhere. Key providers are either given here
 * (`signer`, `storageKey`) or, when absent, read from the HSM_* environment variables (the
 * Kubernetes way: a ConfigMap for the file, a Secret-mounted file for credentials).
 */
import { readFileSync } from "node:fs";
import { dirname, isAbsolute, resolve } from "node:path";
import { z } from "zod";

export const CONFIG_FORMAT = "vitalstream-node-config";

const level = z.enum(["fatal", "error", "warn", "info", "debug", "trace", "silent"]);

export const nodeConfigSchema = z
  .object({
    format: z.literal(CONFIG_FORMAT).default(CONFIG_FORMAT),
    /** Human name for logs and status (e.g. "hospital-a-1"). */
    name: z.string().min(1).max(64).default("validator"),
    genesisFile: z.string().min(1),
    /** Holds chain/ (the LevelDB store) and signer-guard.journal. */
    dataDir: z.string().min(1),
    /** Provider config of the consensus key (see docs/hsm); absent: HSM_* environment variables. */
    signer: z.record(z.string(), z.unknown()).optional(),
    /** Provider config of the storage key wrapper; absent: HSM_* variables (the *_WRAP_* names). */
    storageKey: z.record(z.string(), z.unknown()).optional(),
    /** Run as a non-voting observer even if the signer's key is a validator's. */
    observer: z.boolean().default(false),
    /** libp2p node key (a 32-byte seed, hex); used by the network. */
    nodeKeyFile: z.string().min(1).optional(),
    production: z.boolean().default(false),
    rpc: z
      .strictObject({
        enabled: z.boolean().default(true),
        host: z.string().min(1).default("127.0.0.1"),
        port: z.number().int().min(0).max(65535).default(8545),
        maxBodyBytes: z.number().int().min(1024).optional(),
        maxBatchSize: z.number().int().min(1).optional(),
        requestTimeoutMs: z.number().int().min(100).optional(),
        corsOrigins: z.array(z.string()).default([]),
        tls: z.strictObject({ certFile: z.string(), keyFile: z.string() }).optional(),
        adminTokenFile: z.string().min(1).optional(),
        /** eth_getLogs block range limit. */
        maxLogsBlockRange: z.number().int().min(1).default(10_000),
        /** eth_getLogs result limit. */
        maxLogs: z.number().int().min(1).default(10_000),
        /** Most gas one eth_call or eth_estimateGas may burn (geth's RPCGasCap). */
        callGasCap: z.number().int().min(21_000).default(50_000_000),
      })
      .default({
        enabled: true,
        host: "127.0.0.1",
        port: 8545,
        corsOrigins: [],
        maxLogsBlockRange: 10_000,
        maxLogs: 10_000,
        callGasCap: 50_000_000,
      }),
    store: z
      .strictObject({
        cacheSizeBytes: z.number().int().min(0).optional(),
        writeBufferSizeBytes: z
          .number()
          .int()
          .min(64 * 1024)
          .optional(),
        maxOpenFiles: z.number().int().min(16).optional(),
        /** Authenticate every record before serving (refuses a damaged store, naming the record). */
        verifyOnStart: z.boolean().default(true),
      })
      .default({ verifyOnStart: true }),
    mempool: z
      .strictObject({
        maxTxs: z.number().int().min(1).optional(),
        maxTxBytes: z.number().int().min(1).optional(),
        maxTxsPerSender: z.number().int().min(1).optional(),
        nonceWindow: z.number().int().min(1).optional(),
        minGasPrice: z
          .string()
          .regex(/^[0-9]+$/)
          .optional(),
        priceBumpPercent: z.number().int().min(0).optional(),
      })
      .default({}),
    p2p: z
      .strictObject({
        enabled: z.boolean().default(true),
        /** libp2p listen multiaddrs. */
        listen: z.array(z.string().min(1)).min(1).default(["/ip4/0.0.0.0/tcp/26656"]),
        /** Peers to keep connected to: validators (and, on an observer, the validators it follows). */
        peers: z
          .array(
            z.strictObject({ nodeId: z.string().min(1), address: z.string().regex(/^\//, "a multiaddr") }),
          )
          .default([]),
        /** Node ids allowed besides the genesis validators (observers). */
        allowPeers: z.array(z.string().min(1)).default([]),
        encryption: z.enum(["noise", "tls"]).default("noise"),
        /** Consortium PKI: peers must also present a certificate from this CA binding their node id. */
        pki: z
          .strictObject({
            caFile: z.string().min(1),
            certFile: z.string().min(1),
            revocationFile: z.string().min(1).optional(),
            expiryWarningDays: z.number().int().min(1).default(30),
          })
          .optional(),
        /** Largest frame a peer may send (a proposal carries a whole block). */
        maxFrameBytes: z
          .number()
          .int()
          .min(64 * 1024)
          .default(16 * 1024 * 1024),
        maxQueueBytes: z
          .number()
          .int()
          .min(1024 * 1024)
          .default(64 * 1024 * 1024),
        framesPerSecond: z.number().int().min(10).default(5_000),
        bytesPerSecond: z
          .number()
          .int()
          .min(64 * 1024)
          .default(64 * 1024 * 1024),
        /** Misbehaviour score at which a peer is disconnected and refused for banSeconds. */
        disconnectScore: z.number().int().min(1).default(100),
        banSeconds: z.number().int().min(1).default(60),
        statusIntervalMs: z.number().int().min(50).default(1_000),
        reconnectIntervalMs: z.number().int().min(100).default(2_000),
        syncBatchBlocks: z.number().int().min(1).max(1_000).default(256),
        syncTimeoutMs: z.number().int().min(1_000).default(30_000),
        /** Peers needed for /ready (default: 1 with more than one validator, else 0). */
        minPeers: z.number().int().min(0).optional(),
      })
      .default({
        enabled: true,
        listen: ["/ip4/0.0.0.0/tcp/26656"],
        peers: [],
        allowPeers: [],
        encryption: "noise",
        maxFrameBytes: 16 * 1024 * 1024,
        maxQueueBytes: 64 * 1024 * 1024,
        framesPerSecond: 5_000,
        bytesPerSecond: 64 * 1024 * 1024,
        disconnectScore: 100,
        banSeconds: 60,
        statusIntervalMs: 1_000,
        reconnectIntervalMs: 2_000,
        syncBatchBlocks: 256,
        syncTimeoutMs: 30_000,
      }),
    /**
     * Prometheus metrics (GET /metrics) on their own listener, so that a scraper needs no access to
     * JSON-RPC. Absent: no metrics listener (`init --metrics-base-port` and the devnet write one).
     */
    metrics: z
      .strictObject({
        enabled: z.boolean().default(true),
        host: z.string().min(1).default("127.0.0.1"),
        port: z.number().int().min(0).max(65535).default(9090),
      })
      .optional(),
    log: z.strictObject({ level: level.default("info") }).default({ level: "info" }),
  })
  .strict();

export type NodeConfig = z.infer<typeof nodeConfigSchema>;

export class ConfigError extends Error {
  readonly code = "CONFIG_INVALID";

  constructor(message: string) {
    super(message);
    this.name = "ConfigError";
  }
}

const PATH_FIELDS = ["keystorePath", "passphraseFile", "tokenFile", "pinFile", "clientSecretFile", "library"];

function resolveProvider(
  provider: Record<string, unknown> | undefined,
  base: string,
): Record<string, unknown> | undefined {
  if (provider === undefined) return undefined;
  const out = { ...provider };
  for (const field of PATH_FIELDS) {
    const value = out[field];
    // Libraries given by name (e.g. "libsofthsm2.so") are resolved by the dynamic loader.
    if (typeof value === "string" && (field !== "library" || value.includes("/")))
      out[field] = isAbsolute(value) ? value : resolve(base, value);
  }
  return out;
}

/** Validates a config object; relative paths are resolved against `baseDir`. */
export function parseNodeConfig(input: unknown, baseDir: string): NodeConfig {
  const parsed = nodeConfigSchema.safeParse(input);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new ConfigError(`config ${issue.path.join(".") || "(root)"}: ${issue.message}`);
  }
  const c = parsed.data;
  const abs = (p: string) => (isAbsolute(p) ? p : resolve(baseDir, p));
  return {
    ...c,
    genesisFile: abs(c.genesisFile),
    dataDir: abs(c.dataDir),
    nodeKeyFile: c.nodeKeyFile === undefined ? undefined : abs(c.nodeKeyFile),
    signer: resolveProvider(c.signer, baseDir),
    p2p: {
      ...c.p2p,
      pki:
        c.p2p.pki === undefined
          ? undefined
          : {
              ...c.p2p.pki,
              caFile: abs(c.p2p.pki.caFile),
              certFile: abs(c.p2p.pki.certFile),
              revocationFile:
                c.p2p.pki.revocationFile === undefined ? undefined : abs(c.p2p.pki.revocationFile),
            },
    },
    storageKey: resolveProvider(c.storageKey, baseDir),
    rpc: {
      ...c.rpc,
      adminTokenFile: c.rpc.adminTokenFile === undefined ? undefined : abs(c.rpc.adminTokenFile),
      tls:
        c.rpc.tls === undefined
          ? undefined
          : { certFile: abs(c.rpc.tls.certFile), keyFile: abs(c.rpc.tls.keyFile) },
    },
  };
}

export function loadNodeConfig(path: string): NodeConfig {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new ConfigError(`cannot read config ${path} (${code ?? "error"})`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new ConfigError(`config ${path} is not valid JSON: ${(e as Error).message}`);
  }
  return parseNodeConfig(json, dirname(resolve(path)));
}

/** Layout of the data directory. */
export function dataPaths(config: Pick<NodeConfig, "dataDir">): { store: string; guardJournal: string } {
  return {
    store: resolve(config.dataDir, "chain"),
    guardJournal: resolve(config.dataDir, "signer-guard.journal"),
  };
}
