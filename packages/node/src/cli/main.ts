/**
 * The `vitalstream` command line. Every command prints what it did in plain words and exits 0, or
 * prints one `error: ...` line (no stack trace; VITALSTREAM_DEBUG=1 adds one) and exits 1.
 */
import { createWriteStream, existsSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { generateKeyPairFromSeed } from "@libp2p/crypto/keys";
import { peerIdFromPrivateKey } from "@libp2p/peer-id";
import { createGuardedSigner, createKeystore, type GuardedSigner, type Interchange } from "@vitalstream/hsm";
import { Command, InvalidArgumentError, Option } from "commander";
import { readBackupManifest } from "../backup/index.ts";
import { verifyChain } from "../chain/verify.ts";
import { backupRoute, backupStore, restoreStore } from "../runtime/backup.ts";
import { dataPaths, loadNodeConfig, type NodeConfig } from "../runtime/config.ts";
import { initNetwork } from "../runtime/init.ts";
import { createLogger } from "../runtime/logger.ts";
import { openChain, openKeyWrapper, openSigner, readGenesis, startNode } from "../runtime/node.ts";
import { VERSION } from "../runtime/version.ts";
import { defaultCertsOptions, runCerts } from "./certs.ts";
import { runDevnet } from "./devnet.ts";

function int(name: string, min: number, max: number) {
  return (value: string): number => {
    const n = Number(value);
    if (!Number.isInteger(n) || n < min || n > max)
      throw new InvalidArgumentError(`${name} must be an integer from ${min} to ${max}`);
    return n;
  };
}

function say(message: string): void {
  process.stderr.write(`${message}\n`);
}

async function nodeId(config: NodeConfig): Promise<string | undefined> {
  if (config.nodeKeyFile === undefined || !existsSync(config.nodeKeyFile)) return undefined;
  const seed = Buffer.from(readFileSync(config.nodeKeyFile, "utf8").trim(), "hex");
  if (seed.length !== 32) return undefined;
  return peerIdFromPrivateKey(await generateKeyPairFromSeed("Ed25519", seed)).toString();
}

async function fetchJson(url: string, headers: Record<string, string> = {}): Promise<unknown> {
  let response: Response;
  try {
    response = await fetch(url, { headers, signal: AbortSignal.timeout(10_000) });
  } catch (e) {
    throw new Error(
      `cannot reach ${url} (${(e as { cause?: { code?: string } }).cause?.code ?? (e as Error).name})`,
    );
  }
  const text = await response.text();
  try {
    return JSON.parse(text);
  } catch {
    throw new Error(`${url} answered HTTP ${response.status} without JSON`);
  }
}

/** Opens a stopped node's chain for `fn` and closes store and key wrapper whatever happens. */
async function withStoppedChain<T>(
  config: NodeConfig,
  fn: (parts: Awaited<ReturnType<typeof openChain>>) => Promise<T>,
): Promise<T> {
  const keyWrapper = await openKeyWrapper(config);
  try {
    const parts = await openChain(config, readGenesis(config.genesisFile), keyWrapper, false);
    try {
      return await fn(parts);
    } finally {
      await parts.store.close();
    }
  } finally {
    await keyWrapper.close();
  }
}

/** The node's signer behind its double-sign guard, closed after `fn`. */
async function withGuard<T>(config: NodeConfig, fn: (guard: GuardedSigner) => Promise<T>): Promise<T> {
  const signer = await openSigner(config);
  let guard: GuardedSigner;
  try {
    guard = await createGuardedSigner(signer, { journalPath: dataPaths(config).guardJournal });
  } catch (e) {
    await signer.close();
    throw e;
  }
  try {
    return await fn(guard);
  } finally {
    await guard.close();
  }
}

export function buildProgram(): Command {
  const program = new Command("vitalstream")
    .description("VitalStream permissioned blockchain validator node")
    .version(VERSION)
    .showHelpAfterError()
    .configureOutput({ writeErr: (s) => process.stderr.write(s) });

  program
    .command("init")
    .description("write a genesis and one directory per validator (config, keys) for a new network")
    .requiredOption("--dir <dir>", "directory for genesis.json and validator-N/")
    .option("--validators <n>", "number of validators", int("--validators", 1, 100), 1)
    .option("--chain-id <id>", "consensus chain id", "vitalstream-devnet")
    .option("--evm-chain-id <n>", "EIP-155 chain id", int("--evm-chain-id", 1, Number.MAX_SAFE_INTEGER))
    .addOption(
      new Option("--algorithm <alg>", "validator key algorithm (local keystore)")
        .choices(["ed25519", "ecdsa-p256"])
        .default("ed25519"),
    )
    .option(
      "--signer-configs <file>",
      "JSON array of hsm provider configs, one per validator (keys already in the HSM/KMS)",
    )
    .option(
      "--rpc-base-port <port>",
      "JSON-RPC port of validator-0 (validator-i uses port + i)",
      int("--rpc-base-port", 1, 65535),
      8545,
    )
    .option(
      "--p2p-base-port <port>",
      "libp2p TCP port of validator-0 (validator-i uses port + i)",
      int("--p2p-base-port", 1, 65535),
      26656,
    )
    .option("--p2p-host <host>", "IPv4 address the nodes listen on and dial each other at", "127.0.0.1")
    .option(
      "--metrics-base-port <port>",
      "Prometheus /metrics port of validator-0 (validator-i uses port + i; default: no metrics listener)",
      int("--metrics-base-port", 1, 65535),
    )
    .option("--observers <n>", "non-voting observer nodes (observer-N/)", int("--observers", 0, 100), 0)
    .option(
      "--dev-accounts <n>",
      "funded, permitted development accounts (public mnemonic; 0 for none)",
      int("--dev-accounts", 0, 10_000),
      10,
    )
    .option("--sender <address...>", "additional permitted sender accounts")
    .option("--admin <address>", "admin of the predeployed contracts (default: the first dev account)")
    .option(
      "--empty-block-interval <ms>",
      "how long a proposer waits for transactions",
      int("--empty-block-interval", 0, 3_600_000),
      1000,
    )
    .action(async (o) => {
      const signerConfigs =
        o.signerConfigs === undefined
          ? undefined
          : (JSON.parse(readFileSync(o.signerConfigs, "utf8")) as Record<string, unknown>[]);
      const result = await initNetwork({
        dir: o.dir,
        validators: o.validators,
        chainId: o.chainId,
        ...(o.evmChainId === undefined ? {} : { evmChainId: o.evmChainId }),
        algorithm: o.algorithm,
        signerConfigs,
        rpcBasePort: o.rpcBasePort,
        p2pBasePort: o.p2pBasePort,
        ...(o.metricsBasePort === undefined ? {} : { metricsBasePort: o.metricsBasePort }),
        p2pHost: o.p2pHost,
        observers: o.observers,
        devAccounts: o.devAccounts,
        senders: o.sender ?? [],
        admin: o.admin,
        emptyBlockIntervalMs: o.emptyBlockInterval,
        onProgress: say,
      });
      process.stdout.write(
        `${JSON.stringify(
          {
            genesis: result.genesisFile,
            validators: result.validatorDirs,
            observers: result.observerDirs,
            accounts: result.accounts.length,
          },
          null,
          2,
        )}\n`,
      );
    });

  program
    .command("start")
    .description("run one validator (or observer) from its config file")
    .requiredOption("--config <file>", "the node's config.json")
    .action(async (o) => {
      const config = loadNodeConfig(o.config);
      const logger = createLogger({ level: config.log.level, name: config.name });
      const node = await startNode(config, {
        logger,
        adminRoutes: (parts) => [backupRoute(parts, join(config.dataDir, "backup-scratch"))],
      });
      await new Promise<void>((done) => {
        let stopping = false;
        const stop = (signal: string) => {
          if (stopping) return;
          stopping = true;
          logger.info({ signal }, "stopping");
          node.stop().then(done, (e) => {
            logger.error({ err: (e as Error).message }, "stop failed");
            done();
          });
        };
        process.on("SIGINT", () => stop("SIGINT"));
        process.on("SIGTERM", () => stop("SIGTERM"));
      });
      logger.flush();
    });

  program
    .command("status")
    .description("consensus status of a running node")
    .option("--rpc <url>", "the node's JSON-RPC/REST endpoint", "http://127.0.0.1:8545")
    .option("--json", "print the raw JSON")
    .action(async (o) => {
      const status = (await fetchJson(`${o.rpc.replace(/\/$/, "")}/consensus/status`)) as Record<
        string,
        unknown
      > & {
        head: { height: number; hash: string; time: string };
        proposer: { name: string } | null;
        validators: unknown[];
      };
      if (o.json) {
        process.stdout.write(`${JSON.stringify(status, null, 2)}\n`);
        return;
      }
      process.stdout.write(
        `${[
          `chain      ${status.chainId} (evm ${status.evmChainId})`,
          `head       ${status.head.height} ${status.head.hash} at ${status.head.time}`,
          `consensus  height ${status.height} round ${status.round} step ${status.step}, proposer ${status.proposer?.name ?? "-"}`,
          `validators ${status.validators.length}, peers ${status.peers}${status.halted ? `, HALTED: ${status.halted}` : ""}`,
        ].join("\n")}\n`,
      );
    });

  const keys = program.command("keys").description("consensus keys through the hsm providers");
  keys
    .command("create")
    .description("create a local encrypted keystore (development; production keys live in an HSM or KMS)")
    .requiredOption("--keystore <file>", "keystore file to create")
    .requiredOption("--passphrase-file <file>", "file holding the passphrase")
    .addOption(new Option("--algorithm <alg>").choices(["ed25519", "ecdsa-p256"]).default("ed25519"))
    .action(async (o) => {
      const passphrase = readFileSync(o.passphraseFile, "utf8").trim();
      const created = createKeystore({
        path: o.keystore,
        passphrase,
        algorithm: o.algorithm,
        keyId: o.keystore,
      });
      process.stdout.write(
        `${JSON.stringify({ keystore: resolve(o.keystore), algorithm: o.algorithm, publicKey: `0x${Buffer.from(created.publicKey).toString("hex")}` }, null, 2)}\n`,
      );
    });
  keys
    .command("show")
    .description("the node's public key, algorithm, provider, validator index and node id")
    .requiredOption("--config <file>", "the node's config.json")
    .action(async (o) => {
      const config = loadNodeConfig(o.config);
      const genesis = readGenesis(config.genesisFile);
      const signer = await openSigner(config);
      try {
        const publicKey = `0x${Buffer.from(await signer.publicKey()).toString("hex")}`;
        const index = genesis.validators.findIndex((v) => v.publicKey.toLowerCase() === publicKey);
        process.stdout.write(
          `${JSON.stringify(
            {
              provider: signer.provider,
              keyId: signer.keyId,
              algorithm: signer.algorithm,
              publicKey,
              validator: index < 0 ? null : { index, name: genesis.validators[index]!.name },
              nodeId: (await nodeId(config)) ?? null,
            },
            null,
            2,
          )}\n`,
        );
      } finally {
        await signer.close();
      }
    });
  keys
    .command("export-guard")
    .description("export the double-sign guard's signing history (for moving a validator to a new machine)")
    .requiredOption("--config <file>", "the node's config.json")
    .requiredOption("--output <file>", "interchange JSON to write")
    .action(async (o) => {
      const config = loadNodeConfig(o.config);
      await withGuard(config, async (guard) => {
        writeFileSync(o.output, `${JSON.stringify(guard.exportHistory(), null, 2)}\n`, {
          mode: 0o600,
          flag: "wx",
        });
      });
      say(`wrote ${resolve(o.output)}`);
    });
  keys
    .command("import-guard")
    .description("merge an exported signing history into this node's guard (before it signs again)")
    .requiredOption("--config <file>", "the node's config.json")
    .requiredOption("--input <file>", "interchange JSON")
    .action(async (o) => {
      const config = loadNodeConfig(o.config);
      const history = JSON.parse(readFileSync(o.input, "utf8")) as Interchange;
      await withGuard(config, (guard) => guard.importHistory(history));
      say(`merged ${resolve(o.input)} into ${dataPaths(config).guardJournal}`);
    });

  program
    .command("backup")
    .description("write a consistent, still-encrypted backup archive (.tar.gz) of a validator's store")
    .requiredOption("--output <file>", "archive to write")
    .option("--config <file>", "back up a stopped node's store directly")
    .option("--rpc <url>", "back up a running node through its admin endpoint")
    .option("--admin-token-file <file>", "the running node's admin token (with --rpc)")
    .option("--overwrite", "replace an existing archive")
    .action(async (o) => {
      if ((o.config === undefined) === (o.rpc === undefined))
        throw new Error("give exactly one of --config (stopped node) or --rpc (running node)");
      if (o.rpc !== undefined) {
        if (o.adminTokenFile === undefined) throw new Error("--rpc needs --admin-token-file");
        if (existsSync(o.output) && !o.overwrite) throw new Error(`${o.output} exists (use --overwrite)`);
        const token = readFileSync(o.adminTokenFile, "utf8").trim();
        const url = `${o.rpc.replace(/\/$/, "")}/admin/backup`;
        const response = await fetch(url, { headers: { authorization: `Bearer ${token}` } }).catch((e) => {
          throw new Error(
            `cannot reach ${url} (${(e as { cause?: { code?: string } }).cause?.code ?? "error"})`,
          );
        });
        if (!response.ok || response.body === null) {
          const body = await response.text();
          throw new Error(`the node refused the backup: HTTP ${response.status} ${body.slice(0, 200)}`);
        }
        const partial = `${o.output}.partial`;
        await pipeline(Readable.fromWeb(response.body as never), createWriteStream(partial));
        const manifest = await readBackupManifest(partial);
        renameSync(partial, o.output);
        process.stdout.write(`${JSON.stringify({ archive: resolve(o.output), ...manifest }, null, 2)}\n`);
        return;
      }
      const manifest = await withStoppedChain(loadNodeConfig(o.config), ({ store, chain }) =>
        backupStore(store, chain.genesis.chainId, o.output, {
          overwrite: o.overwrite,
          onProgress: (p) => say(`backed up ${p.records} records`),
        }),
      );
      process.stdout.write(`${JSON.stringify({ archive: resolve(o.output), ...manifest }, null, 2)}\n`);
    });

  program
    .command("restore")
    .description(
      "restore a backup archive into a stopped node's data directory (verifies archive and chain first)",
    )
    .requiredOption("--input <file>", "archive to restore")
    .requiredOption("--config <file>", "the node's config.json (its data directory is the target)")
    .option("--force", "replace an existing store (the old one is kept as chain.before-restore-*)")
    .option("--no-replay", "skip re-executing the chain (faster, checks hashes and certificates only)")
    .action(async (o) => {
      const config = loadNodeConfig(o.config);
      const keyWrapper = await openKeyWrapper(config);
      try {
        const result = await restoreStore({
          archive: o.input,
          storeDir: dataPaths(config).store,
          genesis: readGenesis(config.genesisFile),
          keyWrapper,
          force: o.force,
          replay: o.replay,
          onProgress: say,
        });
        process.stdout.write(
          `${JSON.stringify({ restored: dataPaths(config).store, head: result.manifest.head, previous: result.previous ?? null, verified: { blocks: result.report.blocks, records: result.report.records } }, null, 2)}\n`,
        );
      } finally {
        await keyWrapper.close();
      }
    });

  program
    .command("verify")
    .description(
      "full scan of a stopped node's store: record authentication, hash chain, certificates, state",
    )
    .requiredOption("--config <file>", "the node's config.json")
    .option("--no-replay", "skip re-executing the chain")
    .option("--json", "print the report as JSON")
    .action(async (o) => {
      const config = loadNodeConfig(o.config);
      let report: Awaited<ReturnType<typeof verifyChain>>;
      try {
        report = await withStoppedChain(config, ({ store, chain }) =>
          verifyChain(store, chain, {
            replay: o.replay,
            onProgress: (p) =>
              say(
                p.phase === "records"
                  ? `authenticated ${p.done} records`
                  : `checked ${p.done}/${p.total} blocks`,
              ),
          }),
        );
      } catch (e) {
        const err = e as { code?: string; message: string };
        if (err.code !== "STORE_CORRUPT_RECORD") throw e;
        // The chain's own head records are damaged: that is a verification result, not a crash.
        process.stdout.write(`FAILED: the chain cannot be opened\n  record: ${err.message}\n`);
        process.exitCode = 3;
        return;
      }
      if (o.json) process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
      else {
        process.stdout.write(
          `${report.ok ? "OK" : "FAILED"}: ${report.blocks} blocks, ${report.records} records, ${report.transactions} transactions re-executed in ${report.durationMs} ms\n`,
        );
        for (const p of report.problems)
          process.stdout.write(`  ${p.kind}${p.record ? ` ${p.record}` : ""}: ${p.message}\n`);
        if (report.moreProblems > 0) process.stdout.write(`  ... and ${report.moreProblems} more\n`);
      }
      if (!report.ok) process.exitCode = 3;
    });

  program
    .command("certs")
    .description(
      "development consortium PKI: a CA in <dir>/pki and a certificate per validator binding its node id (p2p.pki)",
    )
    .requiredOption("--dir <dir>", "a network directory made by init (genesis.json, validator-N/)")
    .option("--days <n>", "certificate validity", int("--days", 1, 3650), defaultCertsOptions.days)
    .action(async (o) => {
      await runCerts({ dir: o.dir, days: o.days, out: say });
    });

  program
    .command("devnet")
    .description("run a local development network (validators as separate processes, JSON-RPC from :8545)")
    .option("--dir <dir>", "network directory (created on first run, resumed after)", ".devnet")
    .option("--validators <n>", "validators on first run", int("--validators", 1, 16), 4)
    .option("--observers <n>", "non-voting observers on first run", int("--observers", 0, 16), 0)
    .option("--rpc-base-port <port>", "JSON-RPC port of validator-0", int("--rpc-base-port", 1, 65535), 8545)
    .option("--p2p-base-port <port>", "libp2p port of validator-0", int("--p2p-base-port", 1, 65535), 26656)
    .option(
      "--metrics-base-port <port>",
      "Prometheus /metrics port of validator-0 on first run",
      int("--metrics-base-port", 1, 65535),
      9090,
    )
    .option("--dev-accounts <n>", "development accounts on first run", int("--dev-accounts", 1, 10_000), 10)
    .addOption(
      new Option(
        "--hsm <provider>",
        "where validator keys live on first run (softhsm: a SoftHSM2 token via PKCS#11)",
      )
        .choices(["local", "softhsm"])
        .default("local"),
    )
    .option("--no-status", "no live status line")
    .action(async (o) => {
      await runDevnet({
        dir: o.dir,
        validators: o.validators,
        observers: o.observers,
        rpcBasePort: o.rpcBasePort,
        p2pBasePort: o.p2pBasePort,
        ...(o.metricsBasePort === undefined ? {} : { metricsBasePort: o.metricsBasePort }),
        devAccounts: o.devAccounts,
        hsm: o.hsm,
        statusLine: o.status,
      });
    });

  return program;
}

/** Runs the CLI; `name` selects an alias (blockchain-backup, blockchain-restore). */
export async function main(argv: string[], alias?: "backup" | "restore"): Promise<void> {
  const program = buildProgram();
  const args = alias === undefined ? argv.slice(2) : [alias, ...argv.slice(2)];
  try {
    await program.parseAsync(args, { from: "user" });
  } catch (e) {
    const err = e as Error & { code?: string };
    if (typeof err.code === "string" && err.code.startsWith("commander.")) {
      process.exitCode = err.code === "commander.helpDisplayed" || err.code === "commander.version" ? 0 : 2;
      return;
    }
    process.stderr.write(`error: ${err.message}${err.code ? ` [${err.code}]` : ""}\n`);
    if (process.env.VITALSTREAM_DEBUG === "1") process.stderr.write(`${err.stack}\n`);
    process.exitCode = 1;
  }
}
