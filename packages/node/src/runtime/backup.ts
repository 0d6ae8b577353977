/**
 * Backups of a validator's store: a consistent snapshot (offline, or from a running node through
 * its admin endpoint), and a restore that checks the archive and the whole chain before swapping
 * the store in. The archive holds the store's records still encrypted, with the data key wrapped.
 */
import { randomBytes } from "node:crypto";
import { createReadStream } from "node:fs";
import { mkdir, rm } from "node:fs/promises";
import { join } from "node:path";
import { bytesToHex as hex } from "@ethereumjs/util";
import type { KeyWrapper } from "@vitalstream/hsm";
import { BackupError } from "../backup/errors.ts";
import {
  type BackupHead,
  type BackupManifest,
  restoreBackupArchive,
  writeBackupArchive,
} from "../backup/index.ts";
import { blockHash } from "../chain/block.ts";
import { Chain } from "../chain/chain.ts";
import type { GenesisDocument } from "../chain/genesis.ts";
import { decodeExecution, heightKey } from "../chain/records.ts";
import { type VerifyReport, verifyChain } from "../chain/verify.ts";
import type { RestRoute } from "../rpc/server.ts";
import { EncryptedStore, type StoreSnapshot } from "../store/encryptedStore.ts";
import { Prefix } from "../store/prefixes.ts";

/** The head as the snapshot holds it (not as the live chain has moved on since). */
export async function snapshotHead(snapshot: StoreSnapshot, chainId: string): Promise<BackupHead> {
  const headKey = await snapshot.get(Prefix.ChainMeta, new TextEncoder().encode("head"));
  if (headKey === undefined) throw new BackupError("BACKUP_VERIFY_FAILED", "the store has no chain head");
  const height = Number(new DataView(headKey.buffer, headKey.byteOffset).getBigUint64(0));
  const block = await snapshot.get(Prefix.Block, heightKey(height));
  const execution = await snapshot.get(Prefix.BlockExecution, heightKey(height));
  if (block === undefined || execution === undefined)
    throw new BackupError("BACKUP_VERIFY_FAILED", `the head block ${height} is missing from the store`);
  return {
    chainId,
    height,
    blockHash: hex(blockHash(block)),
    stateRoot: hex(decodeExecution(execution).stateRoot),
  };
}

export async function backupStore(
  store: EncryptedStore,
  chainId: string,
  output: string,
  opts: { onProgress?(p: { records: number; bytes: number }): void; overwrite?: boolean } = {},
): Promise<BackupManifest> {
  const snapshot = await store.snapshot();
  try {
    return await writeBackupArchive(snapshot, output, {
      describe: (s) => snapshotHead(s, chainId),
      onProgress: opts.onProgress,
      overwrite: opts.overwrite,
    });
  } finally {
    await snapshot.close();
  }
}

/** Admin route of a running node: builds an archive from a snapshot and streams it. */
export function backupRoute(parts: { store: EncryptedStore; chain: Chain }, scratchDir: string): RestRoute {
  return {
    method: "GET",
    path: "/admin/backup",
    admin: true,
    handler: async () => {
      await mkdir(scratchDir, { recursive: true });
      const file = join(scratchDir, `backup-${Date.now()}-${randomBytes(4).toString("hex")}.tar.gz`);
      const manifest = await backupStore(parts.store, parts.chain.genesis.chainId, file);
      const stream = createReadStream(file);
      const cleanup = () => void rm(file, { force: true });
      stream.on("close", cleanup);
      stream.on("error", cleanup);
      return {
        stream,
        contentType: "application/gzip",
        headers: {
          "content-disposition": `attachment; filename="vitalstream-${manifest.head.chainId}-${manifest.head.height}.tar.gz"`,
          "x-vitalstream-backup-height": String(manifest.head.height),
        },
      };
    },
  };
}

/** Restores into `storeDir` after verifying the archive and re-verifying the restored chain. */
export async function restoreStore(input: {
  archive: string;
  storeDir: string;
  genesis: GenesisDocument;
  keyWrapper: KeyWrapper;
  force?: boolean;
  replay?: boolean;
  onProgress?(message: string): void;
}): Promise<{ manifest: BackupManifest; report: VerifyReport; previous: string | undefined }> {
  let report: VerifyReport | undefined;
  const result = await restoreBackupArchive(input.archive, input.storeDir, {
    force: input.force,
    onProgress: (p) => input.onProgress?.(`restored ${p.records} records (${(p.bytes / 1e6).toFixed(1)} MB)`),
    verify: async (dbPath, manifest) => {
      const store = await EncryptedStore.open(
        { path: dbPath, create: false },
        { keyWrapper: input.keyWrapper },
      );
      try {
        const chain = await Chain.open(store, input.genesis);
        if (chain.head.height !== manifest.head.height || hex(chain.head.hash) !== manifest.head.blockHash)
          throw new BackupError(
            "BACKUP_VERIFY_FAILED",
            `the restored head (${chain.head.height}) does not match the manifest (${manifest.head.height})`,
          );
        input.onProgress?.(`verifying the restored chain (${chain.head.height} blocks)`);
        report = await verifyChain(store, chain, { replay: input.replay ?? true });
        if (!report.ok)
          throw new BackupError(
            "BACKUP_VERIFY_FAILED",
            `the restored chain does not verify: ${report.problems[0]?.message ?? "unknown problem"}`,
          );
      } finally {
        await store.close();
      }
    },
  });
  return { manifest: result.manifest, report: report!, previous: result.previousDataDir };
}
