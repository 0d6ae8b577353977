/**
 * Typed backup errors: each names the file or directory and what is wrong with it, never record
 * contents or key material. `meta.path` is always the file or directory concerned.
 */
export type BackupErrorCode =
  /** The archive file does not exist. */
  | "BACKUP_NOT_FOUND"
  /** Not a gzip'd tar, damaged or truncated, an entry missing, bad framing or a bad manifest. */
  | "BACKUP_CORRUPT"
  /** records.bin does not match the size, sha256 or record count in the manifest. */
  | "BACKUP_CHECKSUM_MISMATCH"
  /** A format or version this node does not read. */
  | "BACKUP_UNSUPPORTED_VERSION"
  /** The output archive, or the directory to restore into, already exists (without force). */
  | "BACKUP_TARGET_EXISTS"
  /** The directory to restore into is the store of a running node (its LevelDB lock is held). */
  | "BACKUP_TARGET_IN_USE"
  /** The verify hook rejected the restored store; nothing was swapped in. */
  | "BACKUP_VERIFY_FAILED"
  /** A caller error: an invalid head from `describe`, a store without a data key, a huge record. */
  | "BACKUP_INVALID_ARGUMENT"
  /** A file system failure (space, permissions, a vanished directory). */
  | "BACKUP_IO";

export class BackupError extends Error {
  readonly code: BackupErrorCode;
  readonly meta: Record<string, unknown>;

  constructor(
    code: BackupErrorCode,
    message: string,
    meta: Record<string, unknown> = {},
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = "BackupError";
    this.code = code;
    this.meta = meta;
  }
}

const IO_HINTS: Record<string, string> = {
  ENOSPC: "the disk is full",
  EACCES: "permission denied",
  EPERM: "permission denied",
  ENOENT: "no such file or directory",
  EXDEV: "source and target are on different file systems",
  EBUSY: "it is busy (a mount point?)",
};

/** A file system error as a BackupError that says what was being done, with errno's code. */
export function backupIoError(action: string, path: string, e: unknown): BackupError {
  if (e instanceof BackupError) return e;
  const code = (e as { code?: string }).code ?? "error";
  const hint = IO_HINTS[code];
  return new BackupError(
    "BACKUP_IO",
    `${action} failed (${code})${hint === undefined ? "" : `: ${hint}`}`,
    { path, cause: code },
    { cause: e },
  );
}
