/**
 * `vitalstream init`: a genesis and one directory per validator (config, node key, consensus key,
 * storage key passphrase, admin token) for an N-validator network.
 *
 * Keys: the local keystore by default (a passphrase-encrypted file, development and tests); with
 * `signerConfigs` any hsm provider, in which case the key already lives in the HSM/KMS and init
 * only asks it for the public key. Predeployed contracts are built by running their constructors
 * in the EVM, so genesis holds exactly the code and storage a deployment would have produced.
 */
import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { join, relative, resolve } from "node:path";
import { bytesToHex as hex } from "@ethereumjs/util";
import { generateKeyPairFromSeed } from "@libp2p/crypto/keys";
import { peerIdFromPrivateKey } from "@libp2p/peer-id";
import { defaultTimeoutOptions } from "@vitalstream/consensus";
import { auditLogArtifact, DEVNET_CHAIN_ID, DEVNET_MNEMONIC } from "@vitalstream/contracts";
import { createKeystore, createSigner, type SignatureAlgorithm } from "@vitalstream/hsm";
import { AbiCoder, HDNodeWallet, Interface, id } from "ethers";
import { GENESIS_FORMAT, type GenesisDocument, parseGenesis } from "../chain/genesis.ts";
import { createCallRunner } from "../execution/call.ts";
import { createExecutor } from "../execution/executor.ts";
import { MemoryState } from "../execution/state.ts";
import { CONFIG_FORMAT } from "./config.ts";

/** Where the AuditLog predeploy lives on every network `init` creates. */
export const AUDIT_LOG_ADDRESS = "0x000000000000000000000000000000000000a0d1";

export interface InitOptions {
  dir: string;
  validators: number;
  chainId: string;
  evmChainId: number;
  algorithm: SignatureAlgorithm;
  /** One provider config per validator; absent: a local keystore each. */
  signerConfigs?: Record<string, unknown>[];
  /** JSON-RPC port of validator 0; validator i listens on basePort + i (observers after them). */
  rpcBasePort: number;
  /** libp2p TCP port of validator 0 (loopback); validator i listens on basePort + i. */
  p2pBasePort: number;
  /** Prometheus metrics port of validator 0 (validator i: base + i); absent: no metrics listener. */
  metricsBasePort?: number;
  /** Host the validators listen on and dial each other at (a devnet: loopback). */
  p2pHost: string;
  /** Non-voting observer nodes (sync and serve RPC): observer-0 ... */
  observers: number;
  /** Development accounts derived from the public Hardhat mnemonic (funded, permitted, writers). */
  devAccounts: number;
  /** Extra permitted senders (0x addresses). */
  senders: string[];
  /** Admin of the predeployed contracts; default the first dev account. */
  admin?: string;
  emptyBlockIntervalMs: number;
  commitIntervalMs: number;
  /** Faster key derivation for tests (scrypt N); default the keystore's production setting. */
  scryptN?: number;
  onProgress?(message: string): void;
}

export const defaultInitOptions: Omit<InitOptions, "dir"> = {
  validators: 1,
  chainId: "vitalstream-devnet",
  evmChainId: DEVNET_CHAIN_ID,
  algorithm: "ed25519",
  rpcBasePort: 8545,
  p2pBasePort: 26656,
  p2pHost: "127.0.0.1",
  observers: 0,
  devAccounts: 10,
  senders: [],
  emptyBlockIntervalMs: 1000,
  commitIntervalMs: 0,
};

export interface DevAccount {
  address: string;
  privateKey: string;
  path: string;
}

export interface InitResult {
  genesisFile: string;
  validatorDirs: string[];
  observerDirs: string[];
  accounts: DevAccount[];
  genesis: GenesisDocument;
}

export class InitError extends Error {
  readonly code = "INIT_REFUSED";

  constructor(message: string) {
    super(message);
    this.name = "InitError";
  }
}

export function devAccounts(count: number): DevAccount[] {
  const out: DevAccount[] = [];
  for (let i = 0; i < count; i++) {
    const path = `m/44'/60'/0'/0/${i}`;
    const wallet = HDNodeWallet.fromPhrase(DEVNET_MNEMONIC, undefined, path);
    out.push({ address: wallet.address, privateKey: wallet.privateKey, path });
  }
  return out;
}

function writeSecret(path: string, content: string): void {
  writeFileSync(path, content, { mode: 0o600, flag: "wx" });
}

/** Runs AuditLog's constructor (and grants WRITER_ROLE) in the EVM; returns its code and storage. */
export async function buildAuditLogPredeploy(
  evmChainId: number,
  admin: string,
  writers: readonly string[],
): Promise<{ code: string; storage: Record<string, string> }> {
  const executor = await createExecutor({ chainId: BigInt(evmChainId) });
  const runner = await createCallRunner(executor.common);
  const state = new MemoryState();
  const ctx = { height: 0n, timestamp: 0n, blockGasLimit: 30_000_000n };
  const adminBytes = Buffer.from(admin.slice(2), "hex");
  const initCode = Buffer.concat([
    Buffer.from(auditLogArtifact.bytecode.slice(2), "hex"),
    Buffer.from(AbiCoder.defaultAbiCoder().encode(["address"], [admin]).slice(2), "hex"),
  ]);
  const created = await runner.call(
    { from: adminBytes, data: initCode, value: 0n, gasLimit: 10_000_000n },
    state,
    ctx,
  );
  if (!created.success || created.createdAddress === undefined)
    throw new InitError(
      `the AuditLog constructor failed: ${created.revert?.reason ?? created.exceptionError}`,
    );
  state.apply(created.changes);
  const iface = new Interface(auditLogArtifact.abi);
  for (const writer of writers) {
    const grant = await runner.call(
      {
        from: adminBytes,
        to: created.createdAddress,
        data: Buffer.from(iface.encodeFunctionData("grantRole", [id("WRITER_ROLE"), writer]).slice(2), "hex"),
        value: 0n,
        gasLimit: 1_000_000n,
      },
      state,
      ctx,
    );
    if (!grant.success) throw new InitError(`granting WRITER_ROLE to ${writer} failed`);
    state.apply(grant.changes);
  }
  const account = await state.getAccount(created.createdAddress);
  const code = account === undefined ? undefined : await state.getCode(account.codeHash);
  if (code === undefined) throw new InitError("the AuditLog constructor left no code");
  const storage: Record<string, string> = {};
  for (const slot of await state.storageSlots(created.createdAddress)) {
    const value = (await state.getStorage(created.createdAddress, slot))!;
    const padded = new Uint8Array(32);
    padded.set(value, 32 - value.length);
    storage[hex(slot)] = hex(padded);
  }
  return { code: hex(code), storage };
}

async function nodeKey(): Promise<{ seedHex: string; nodeId: string }> {
  const seed = randomBytes(32);
  const key = await generateKeyPairFromSeed("Ed25519", seed);
  return { seedHex: seed.toString("hex"), nodeId: peerIdFromPrivateKey(key).toString() };
}

export async function initNetwork(options: Partial<InitOptions> & { dir: string }): Promise<InitResult> {
  const opts: InitOptions = { ...defaultInitOptions, ...options };
  const say = opts.onProgress ?? (() => {});
  const dir = resolve(opts.dir);
  const genesisFile = join(dir, "genesis.json");
  if (existsSync(genesisFile))
    throw new InitError(`${genesisFile} already exists: init never overwrites a network (use another --dir)`);
  if (!Number.isInteger(opts.validators) || opts.validators < 1 || opts.validators > 100)
    throw new InitError("--validators must be between 1 and 100");
  if (!Number.isInteger(opts.observers) || opts.observers < 0 || opts.observers > 100)
    throw new InitError("--observers must be between 0 and 100");
  if (opts.signerConfigs !== undefined && opts.signerConfigs.length !== opts.validators)
    throw new InitError(
      `${opts.signerConfigs.length} signer configs given for ${opts.validators} validators`,
    );
  mkdirSync(dir, { recursive: true });

  const accounts = devAccounts(opts.devAccounts);
  const admin = opts.admin ?? accounts[0]?.address;
  if (admin === undefined) throw new InitError("no admin: give --admin or at least one dev account");
  const senders = [...new Set([...accounts.map((a) => a.address), ...opts.senders])];

  const validators: GenesisDocument["validators"] = [];
  const validatorDirs: string[] = [];
  const observerDirs: string[] = [];
  // Every node's identity first: each validator's config lists its peers and the observers it admits.
  const nodes = await Promise.all(
    Array.from({ length: opts.validators + opts.observers }, async (_, i) => ({
      ...(await nodeKey()),
      name: i < opts.validators ? `validator-${i}` : `observer-${i - opts.validators}`,
      address: `/ip4/${opts.p2pHost}/tcp/${opts.p2pBasePort + i}`,
    })),
  );
  const validatorPeers = nodes
    .slice(0, opts.validators)
    .map((n) => ({ nodeId: n.nodeId, address: n.address }));
  const observerIds = nodes.slice(opts.validators).map((n) => n.nodeId);
  const p2pConfig = (i: number) => ({
    listen: [nodes[i]!.address],
    peers: validatorPeers.filter((p) => p.nodeId !== nodes[i]!.nodeId),
    ...(i < opts.validators && observerIds.length > 0 ? { allowPeers: observerIds } : {}),
  });
  for (let i = 0; i < opts.validators; i++) {
    const name = `validator-${i}`;
    const vdir = join(dir, name);
    mkdirSync(vdir, { recursive: true });
    validatorDirs.push(vdir);
    const node = nodes[i]!;
    writeSecret(join(vdir, "node-key"), `${node.seedHex}\n`);
    writeSecret(join(vdir, "admin-token"), `${randomBytes(24).toString("hex")}\n`);
    const passphrase = randomBytes(24).toString("base64url");
    writeSecret(join(vdir, "passphrase"), `${passphrase}\n`);
    let signer: Record<string, unknown>;
    let publicKey: Uint8Array;
    let algorithm: SignatureAlgorithm;
    if (opts.signerConfigs === undefined) {
      say(`${name}: creating a local ${opts.algorithm} keystore`);
      const created = createKeystore({
        path: join(vdir, "keystore.json"),
        passphrase,
        algorithm: opts.algorithm,
        keyId: name,
        scryptN: opts.scryptN,
      });
      publicKey = created.publicKey;
      algorithm = opts.algorithm;
      signer = { provider: "local", keystorePath: "keystore.json", passphraseFile: "passphrase" };
    } else {
      signer = opts.signerConfigs[i]!;
      say(`${name}: reading the public key from ${String(signer.provider)}`);
      const s = await createSigner(signer);
      try {
        publicKey = await s.publicKey();
        algorithm = s.algorithm;
      } finally {
        await s.close();
      }
    }
    validators.push({ name, publicKey: hex(publicKey), algorithm, votingPower: 10, nodeId: node.nodeId });
    const config = {
      format: CONFIG_FORMAT,
      name,
      genesisFile: relative(vdir, genesisFile),
      dataDir: "data",
      nodeKeyFile: "node-key",
      signer,
      storageKey: { provider: "local", passphraseFile: "passphrase" },
      rpc: { host: "127.0.0.1", port: opts.rpcBasePort + i, adminTokenFile: "admin-token" },
      ...(opts.metricsBasePort === undefined
        ? {}
        : { metrics: { host: "127.0.0.1", port: opts.metricsBasePort + i } }),
      p2p: p2pConfig(i),
      log: { level: "info" },
    };
    writeFileSync(join(vdir, "config.json"), `${JSON.stringify(config, null, 2)}\n`, { flag: "wx" });
  }
  for (let j = 0; j < opts.observers; j++) {
    const i = opts.validators + j;
    const node = nodes[i]!;
    const odir = join(dir, node.name);
    mkdirSync(odir, { recursive: true });
    observerDirs.push(odir);
    say(`${node.name}: a non-voting observer`);
    writeSecret(join(odir, "node-key"), `${node.seedHex}\n`);
    writeSecret(join(odir, "admin-token"), `${randomBytes(24).toString("hex")}\n`);
    writeSecret(join(odir, "passphrase"), `${randomBytes(24).toString("base64url")}\n`);
    const config = {
      format: CONFIG_FORMAT,
      name: node.name,
      genesisFile: relative(odir, genesisFile),
      dataDir: "data",
      nodeKeyFile: "node-key",
      observer: true,
      storageKey: { provider: "local", passphraseFile: "passphrase" },
      rpc: { host: "127.0.0.1", port: opts.rpcBasePort + i, adminTokenFile: "admin-token" },
      ...(opts.metricsBasePort === undefined
        ? {}
        : { metrics: { host: "127.0.0.1", port: opts.metricsBasePort + i } }),
      p2p: p2pConfig(i),
      log: { level: "info" },
    };
    writeFileSync(join(odir, "config.json"), `${JSON.stringify(config, null, 2)}\n`, { flag: "wx" });
  }

  say("running the AuditLog constructor for the genesis predeploy");
  const predeploy = await buildAuditLogPredeploy(opts.evmChainId, admin, [admin, ...senders]);
  const alloc: GenesisDocument["alloc"] = {};
  for (const account of accounts)
    alloc[account.address.toLowerCase()] = { balance: (10n ** 24n).toString(), nonce: "0" };
  alloc[AUDIT_LOG_ADDRESS] = { balance: "0", nonce: "1", code: predeploy.code, storage: predeploy.storage };

  const genesis = parseGenesis({
    format: GENESIS_FORMAT,
    version: 1,
    chainId: opts.chainId,
    evmChainId: opts.evmChainId,
    genesisTime: new Date().toISOString(),
    consensus: {
      timeouts: defaultTimeoutOptions,
      blockGasLimit: "1000000000",
      maxBlockBytes: 4 * 1024 * 1024,
      maxBlockTxs: 5000,
      emptyBlockIntervalMs: opts.emptyBlockIntervalMs,
      commitIntervalMs: opts.commitIntervalMs,
    },
    validators,
    permissions: { senders, admins: [admin] },
    contracts: { AuditLog: AUDIT_LOG_ADDRESS },
    alloc,
  });
  writeFileSync(genesisFile, `${JSON.stringify(genesis, null, 2)}\n`, { flag: "wx" });
  if (accounts.length > 0) {
    const file = join(dir, "accounts.json");
    writeFileSync(
      file,
      `${JSON.stringify(
        {
          warning:
            "DEVELOPMENT ONLY: these keys derive from Hardhat's public mnemonic. Never use them on a real network.",
          chainId: opts.evmChainId,
          rpcUrl: `http://127.0.0.1:${opts.rpcBasePort}`,
          auditLog: AUDIT_LOG_ADDRESS,
          accounts,
        },
        null,
        2,
      )}\n`,
      { mode: 0o600, flag: "wx" },
    );
  }
  say(
    `wrote ${genesisFile} and ${validatorDirs.length} validator director${validatorDirs.length === 1 ? "y" : "ies"}`,
  );
  return { genesisFile, validatorDirs, observerDirs, accounts, genesis };
}
