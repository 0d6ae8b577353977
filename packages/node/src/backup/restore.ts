/**
 * Restoring a backup archive into a store directory. `dataDir` is the LevelDB directory itself
 * (the store's `StoreOptions.path`), not a parent holding it.
 *
 * The order keeps the operator's data safe at every step:
 * 1. refuse a directory that a running node holds (its LevelDB LOCK) and, without `force`, any
 *    existing one, before doing anything else;
 * 2. copy the records into a new LevelDB next to it (`<dataDir>.restore-<random>`, same file
 *    system, so the final rename is atomic) while the whole archive is checked;
 * 3. close and fsync it, and let the caller verify it (open it with its key wrapper, check the chain);
 * 4. check the target again (a node may have started meanwhile), move an existing store aside to
 *    `<dataDir>.before-restore-<time>` (never deleted), and rename the new one into place.
 * A failure before step 4 removes the temporary directory and leaves `dataDir` as it was. A crash
 * may leave a `.restore-*` directory behind; it is never read and can be deleted.
 */
import { randomBytes } from "node:crypto";
import { lstat, mkdir, readdir, rename, rm, rmdir, stat } from "node:fs/promises";
import { dirname, join, resolve } from "node:path";
import { ClassicLevel } from "classic-level";
import { type BackupProgress, scanBackupArchive } from "./archive.ts";
import { BackupError, backupIoError } from "./errors.ts";
import { fsyncPath, isFileSystemError } from "./files.ts";
import type { BackupManifest } from "./manifest.ts";

export interface RestoreBackupOptions {
  /**
   * Checks the restored store at `dbPath` (open it, verify the chain against `manifest.head`) and
   * throws to abort the restore. It must close whatever it opened before returning.
   */
  verify(dbPath: string, manifest: BackupManifest): Promise<void>;
  onProgress?(progress: BackupProgress): void;
  /** Replace an existing `dataDir` (kept as `<dataDir>.before-restore-<time>`). */
  force?: boolean;
}

export interface RestoreResult {
  manifest: BackupManifest;
  /** The restored store directory (absolute). */
  dataDir: string;
  /** Where the replaced store was moved, when there was one. */
  previousDataDir: string | undefined;
}

/** Records are written to the new store in batches of about this size. */
const BATCH_BYTES = 4 * 1024 * 1024;

type TargetState = "absent" | "empty" | "present" | "in-use";

function levelFailure(action: string, path: string, e: unknown): BackupError {
  const err = e as { code?: string; message?: string; cause?: { code?: string; message?: string } };
  const detail = err.cause?.message ?? err.message ?? String(e);
  return new BackupError(
    "BACKUP_IO",
    `${action} failed (${detail})`,
    { path, cause: err.cause?.code ?? err.code },
    { cause: e },
  );
}

/** Whether a LevelDB's lock is held, by this process or another one (how LevelDB says "in use"). */
async function isLevelDbLocked(dir: string): Promise<boolean> {
  const db = new ClassicLevel(dir, { createIfMissing: false });
  try {
    await db.open();
  } catch (e) {
    const err = e as { code?: string; cause?: { code?: string } };
    const code = err.cause?.code ?? err.code;
    if (code === "LEVEL_LOCKED") return true;
    if (code === "LEVEL_IO_ERROR") throw levelFailure(`checking whether ${dir} is in use`, dir, e);
    // Not a LevelDB, or a damaged one: no node runs on it.
    return false;
  }
  await db.close();
  return false;
}

async function inspectTarget(dir: string): Promise<TargetState> {
  let info: Awaited<ReturnType<typeof stat>>;
  try {
    info = await stat(dir);
  } catch (e) {
    if ((e as { code?: string }).code !== "ENOENT") throw backupIoError(`checking ${dir}`, dir, e);
    try {
      await lstat(dir); // a dangling symlink: something is there all the same
      return "present";
    } catch {
      return "absent";
    }
  }
  if (!info.isDirectory()) return "present";
  const entries = await readdir(dir);
  if (entries.length === 0) return "empty";
  // LevelDB creates LOCK when it opens a store and never removes it.
  if (entries.includes("LOCK") && (await isLevelDbLocked(dir))) return "in-use";
  return "present";
}

async function checkTarget(dir: string, force: boolean): Promise<TargetState> {
  const state = await inspectTarget(dir);
  if (state === "in-use")
    throw new BackupError(
      "BACKUP_TARGET_IN_USE",
      `${dir} is in use by a running node (its LevelDB lock is held): stop the node before restoring`,
      { path: dir },
    );
  if (state === "present" && !force)
    throw new BackupError(
      "BACKUP_TARGET_EXISTS",
      `${dir} already exists: restore with force to replace it (it is kept as ${dir}.before-restore-<time>)`,
      { path: dir },
    );
  return state;
}

/** Copies the archive's records into a new LevelDB at `dbPath`, checking the whole archive. */
async function copyIntoNewStore(
  file: string,
  dbPath: string,
  onProgress: ((progress: BackupProgress) => void) | undefined,
): Promise<BackupManifest> {
  const db = new ClassicLevel<Uint8Array, Uint8Array>(dbPath, {
    keyEncoding: "view",
    valueEncoding: "view",
    createIfMissing: true,
    errorIfExists: true,
  });
  try {
    await db.open();
  } catch (e) {
    throw levelFailure(`creating a store at ${dbPath}`, dbPath, e);
  }
  let batch: { type: "put"; key: Uint8Array; value: Uint8Array }[] = [];
  let batchBytes = 0;
  const flush = async () => {
    const ops = batch;
    batch = [];
    batchBytes = 0;
    try {
      await db.batch(ops);
    } catch (e) {
      throw levelFailure(`writing records into ${dbPath}`, dbPath, e);
    }
  };
  try {
    const manifest = await scanBackupArchive(file, {
      onProgress,
      onRecords: (records) => {
        for (const [key, value] of records) {
          batch.push({ type: "put", key, value });
          batchBytes += key.length + value.length;
        }
        return batchBytes >= BATCH_BYTES ? flush() : undefined;
      },
    });
    if (batch.length > 0) await flush();
    return manifest;
  } finally {
    await db.close();
  }
}

/** LevelDB does not fsync everything it writes without `sync`; the store must be durable before it replaces anything. */
async function fsyncStore(dir: string): Promise<void> {
  for (const entry of await readdir(dir, { withFileTypes: true }))
    if (entry.isFile()) await fsyncPath(join(dir, entry.name));
  await fsyncPath(dir);
}

async function asideName(dir: string): Promise<string> {
  const base = `${dir}.before-restore-${new Date().toISOString().replace(/[:.]/g, "-")}`;
  for (let n = 0; ; n++) {
    const candidate = n === 0 ? base : `${base}-${n}`;
    if ((await inspectTarget(candidate)) === "absent") return candidate;
  }
}

async function swapIn(fresh: string, target: string, state: TargetState): Promise<string | undefined> {
  let previous: string | undefined;
  if (state === "empty") await rmdir(target);
  if (state === "present") {
    previous = await asideName(target);
    await rename(target, previous);
  }
  try {
    await rename(fresh, target);
  } catch (e) {
    if (previous !== undefined) await rename(previous, target).catch(() => {});
    throw backupIoError(`moving the restored store into ${target}`, target, e);
  }
  await fsyncPath(dirname(target));
  return previous;
}

/**
 * Restores the archive at `inputPath` into the store directory `dataDir` (see the top of this
 * file for the order of steps and what is kept).
 */
export async function restoreBackupArchive(
  inputPath: string,
  dataDir: string,
  opts: RestoreBackupOptions,
): Promise<RestoreResult> {
  const file = resolve(inputPath);
  const target = resolve(dataDir);
  const force = opts.force ?? false;
  try {
    await stat(file);
  } catch (e) {
    if ((e as { code?: string }).code === "ENOENT")
      throw new BackupError("BACKUP_NOT_FOUND", `no backup archive at ${file}`, { path: file });
    throw backupIoError(`opening ${file}`, file, e);
  }
  await checkTarget(target, force);
  try {
    await mkdir(dirname(target), { recursive: true });
  } catch (e) {
    throw backupIoError(`creating the parent directory of ${target}`, target, e);
  }
  const fresh = `${target}.restore-${randomBytes(6).toString("hex")}`;
  try {
    const manifest = await copyIntoNewStore(file, fresh, opts.onProgress);
    await fsyncStore(fresh);
    try {
      await opts.verify(fresh, manifest);
    } catch (e) {
      throw new BackupError(
        "BACKUP_VERIFY_FAILED",
        `the store restored from ${file} did not verify (${e instanceof Error ? e.message : String(e)}): ${target} was left as it was`,
        { path: file, dataDir: target },
        { cause: e },
      );
    }
    if (await isLevelDbLocked(fresh))
      throw new BackupError(
        "BACKUP_VERIFY_FAILED",
        `the verify hook left the restored store at ${fresh} open: it must close it before returning`,
        { path: file, dataDir: target },
      );
    const state = await checkTarget(target, force);
    const previousDataDir = await swapIn(fresh, target, state);
    return { manifest, dataDir: target, previousDataDir };
  } catch (e) {
    await rm(fresh, { recursive: true, force: true }).catch(() => {});
    throw isFileSystemError(e) ? backupIoError(`restoring ${file} into ${target}`, target, e) : e;
  }
}
