export {
  type BackupProgress,
  readBackupManifest,
  type ScanBackupOptions,
  scanBackupArchive,
  type WriteBackupOptions,
  writeBackupArchive,
} from "./archive.ts";
export * from "./errors.ts";
export {
  BACKUP_FORMAT,
  BACKUP_VERSION,
  type BackupHead,
  type BackupManifest,
  MANIFEST_ENTRY,
  RECORDS_ENTRY,
} from "./manifest.ts";
export { type RestoreBackupOptions, type RestoreResult, restoreBackupArchive } from "./restore.ts";
