/**
 * manifest.json: what a backup archive holds. JSON so that an operator can read it (`tar -xzOf
 * FILE manifest.json`), validated with zod on the way in and on the way out.
 */
import { z } from "zod";

export const BACKUP_FORMAT = "vitalstream-backup";
export const BACKUP_VERSION = 1 as const;
export const MANIFEST_ENTRY = "manifest.json";
export const RECORDS_ENTRY = "records.bin";
/** A manifest is a few hundred bytes; anything this big is not ours. */
export const MAX_MANIFEST_BYTES = 1024 * 1024;

const sha256Hex = z.string().regex(/^[0-9a-f]{64}$/, "must be 64 lowercase hex digits");
const count = z.number().int().min(0).max(Number.MAX_SAFE_INTEGER);

/** The chain head the snapshot holds, computed by the caller from that same snapshot. */
export interface BackupHead {
  chainId: string;
  height: number;
  blockHash: string;
  stateRoot: string;
  /** Anything else the caller wants an operator to see (JSON values only). */
  [field: string]: unknown;
}

export interface BackupManifest {
  format: typeof BACKUP_FORMAT;
  version: typeof BACKUP_VERSION;
  /** ISO 8601. */
  createdAt: string;
  head: BackupHead;
  records: { file: typeof RECORDS_ENTRY; count: number; bytes: number; sha256: string };
  dataKey: { provider: string; keyId: string; note: string };
}

export const backupHeadSchema: z.ZodType<BackupHead> = z.looseObject({
  chainId: z.string().min(1),
  height: count,
  blockHash: z.string().min(1),
  stateRoot: z.string().min(1),
});

export const backupManifestSchema: z.ZodType<BackupManifest> = z.object({
  format: z.literal(BACKUP_FORMAT),
  version: z.literal(BACKUP_VERSION),
  createdAt: z.iso.datetime(),
  head: backupHeadSchema,
  records: z.object({
    file: z.literal(RECORDS_ENTRY),
    count,
    /** Size of records.bin. */
    bytes: count,
    sha256: sha256Hex,
  }),
  /** Which key unwraps the data key that travels (wrapped) in the archive. Never a secret. */
  dataKey: z.object({
    provider: z.string(),
    keyId: z.string(),
    note: z.string(),
  }),
});

/** A short reason for an operator: the first problem zod found, with its path. */
export function schemaProblem(error: z.ZodError): string {
  const issue = error.issues[0];
  if (issue === undefined) return "invalid";
  const where = issue.path.length > 0 ? issue.path.join(".") : "(top level)";
  return `${where}: ${issue.message}`;
}
