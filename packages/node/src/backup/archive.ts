/**
 * Backup archives: a gzip'd tar holding `manifest.json` and `records.bin` (see records.ts).
 *
 * - Written from a `StoreSnapshot`, so the archive is one consistent point in time while the node
 *   keeps writing. Values stay encrypted exactly as in LevelDB; the Meta records travel too, so the
 *   data key is in the archive, wrapped by the node's KeyWrapper and useless without it.
 * - Streamed: records.bin goes to a work file next to the output while it is hashed, then is
 *   tarred; memory does not grow with the store.
 * - Written to `<output>.partial`, fsynced, then renamed: the final name only ever holds a whole
 *   archive.
 * - Read back through one path (`scanBackupArchive`) that checks everything: gzip, tar, the
 *   manifest, the framing of every record, and records.bin's size, sha256 and count against the
 *   manifest. Every failure is a `BackupError` naming the file and the problem.
 */
import { createHash } from "node:crypto";
import { createWriteStream } from "node:fs";
import { type FileHandle, mkdtemp, open, rename, rm, writeFile } from "node:fs/promises";
import { basename, dirname, join, resolve } from "node:path";
import { pipeline } from "node:stream/promises";
import { constants as zlibConstants } from "node:zlib";
import { create as createTar, Parser, type ReadEntry } from "tar";
import { META_DATA_KEY, type StoreSnapshot } from "../store/encryptedStore.ts";
import { BackupError, backupIoError } from "./errors.ts";
import { fsyncPath, isFileSystemError, pathExists } from "./files.ts";
import {
  BACKUP_FORMAT,
  BACKUP_VERSION,
  type BackupHead,
  type BackupManifest,
  backupHeadSchema,
  backupManifestSchema,
  MANIFEST_ENTRY,
  MAX_MANIFEST_BYTES,
  RECORDS_ENTRY,
  schemaProblem,
} from "./manifest.ts";
import {
  encodeRecord,
  encodeRecordsHeader,
  encodeRecordsTrailer,
  MAX_KEY_BYTES,
  MAX_VALUE_BYTES,
  type RawRecord,
  RecordDecoder,
  RecordFramingError,
} from "./records.ts";

export interface BackupProgress {
  /** Records written or read so far. */
  records: number;
  /** Bytes of records.bin written or read so far. */
  bytes: number;
}

export interface WriteBackupOptions {
  /** The chain head held by `snapshot`, read from that same snapshot. */
  describe(snapshot: StoreSnapshot): Promise<BackupHead>;
  onProgress?(progress: BackupProgress): void;
  /** Replace an existing file at the output path (default: refuse with BACKUP_TARGET_EXISTS). */
  overwrite?: boolean;
}

const PROGRESS_EVERY_RECORDS = 1000;
/** records.bin is written in chunks of about this size, not one write per record. */
const WRITE_CHUNK_BYTES = 1024 * 1024;
const READ_CHUNK_BYTES = 1024 * 1024;
/**
 * Encrypted values do not compress, so string matching (deflate's costly part, ~40 MB/s) gains
 * nothing; Huffman coding alone still shrinks keys and framing, at ~140 MB/s.
 */
const GZIP_OPTIONS = { level: 1, strategy: zlibConstants.Z_HUFFMAN_ONLY };
const GZIP_MAGIC = Buffer.from([0x1f, 0x8b]);

interface WrappedKeyOwner {
  provider: string;
  keyId: string;
}

/** Which key wraps the data key, from the envelope's public fields; never the wrapped bytes. */
function wrappedKeyOwner(envelope: Uint8Array): WrappedKeyOwner {
  try {
    const parsed = JSON.parse(Buffer.from(envelope).toString("utf8")) as Record<string, unknown>;
    return {
      provider: typeof parsed.provider === "string" ? parsed.provider : "unknown",
      keyId: typeof parsed.keyId === "string" ? parsed.keyId : "unknown",
    };
  } catch {
    return { provider: "unknown", keyId: "unknown" };
  }
}

function isDataKeyRecord(key: Uint8Array): boolean {
  return Buffer.compare(key, META_DATA_KEY) === 0;
}

interface DumpedRecords {
  count: number;
  bytes: number;
  sha256: string;
  dataKey: WrappedKeyOwner;
}

async function dumpRecords(
  snapshot: StoreSnapshot,
  path: string,
  onProgress: ((progress: BackupProgress) => void) | undefined,
): Promise<DumpedRecords> {
  const hash = createHash("sha256");
  let count = 0;
  let bytes = 0;
  let dataKey: WrappedKeyOwner | undefined;
  async function* chunks(): AsyncGenerator<Buffer> {
    let pending: Buffer[] = [];
    let pendingBytes = 0;
    const add = (part: Buffer) => {
      hash.update(part);
      bytes += part.length;
      pending.push(part);
      pendingBytes += part.length;
    };
    const take = () => {
      const out = Buffer.concat(pending, pendingBytes);
      pending = [];
      pendingBytes = 0;
      return out;
    };
    add(encodeRecordsHeader());
    for await (const [key, value] of snapshot.rawEntries()) {
      if (key.length === 0 || key.length > MAX_KEY_BYTES || value.length > MAX_VALUE_BYTES)
        throw new BackupError(
          "BACKUP_INVALID_ARGUMENT",
          `record ${Buffer.from(key.subarray(0, 40)).toString("hex")} (key ${key.length} B, value ${value.length} B) is beyond the backup format's limits (key 1-${MAX_KEY_BYTES} B, value up to ${MAX_VALUE_BYTES} B)`,
          { path },
        );
      if (isDataKeyRecord(key)) dataKey = wrappedKeyOwner(value);
      add(encodeRecord(key, value));
      count++;
      if (count % PROGRESS_EVERY_RECORDS === 0) onProgress?.({ records: count, bytes });
      if (pendingBytes >= WRITE_CHUNK_BYTES) yield take();
    }
    add(encodeRecordsTrailer(count));
    yield take();
  }
  await pipeline(chunks, createWriteStream(path, { flags: "wx", mode: 0o600 }));
  if (dataKey === undefined)
    throw new BackupError(
      "BACKUP_INVALID_ARGUMENT",
      "the snapshot holds no wrapped data key (Meta/dataKey): it is not an initialised store",
      {},
    );
  return { count, bytes, sha256: hash.digest("hex"), dataKey };
}

/** The head as it will read back from manifest.json (JSON values only), or a named error. */
function checkedHead(output: string, described: BackupHead): BackupHead {
  const invalid = (why: string) =>
    new BackupError("BACKUP_INVALID_ARGUMENT", `the chain head to record in ${output} is invalid (${why})`, {
      path: output,
    });
  const parsed = backupHeadSchema.safeParse(described);
  if (!parsed.success) throw invalid(schemaProblem(parsed.error));
  try {
    return JSON.parse(JSON.stringify(parsed.data)) as BackupHead;
  } catch (e) {
    throw invalid(`not JSON: ${e instanceof Error ? e.message : String(e)}`);
  }
}

/**
 * Writes a backup of `snapshot` to `outputPath` (a `.tar.gz`) and returns its manifest. The caller
 * owns the snapshot (and closes it); `describe` is called once, before the records are copied.
 */
export async function writeBackupArchive(
  snapshot: StoreSnapshot,
  outputPath: string,
  opts: WriteBackupOptions,
): Promise<BackupManifest> {
  const output = resolve(outputPath);
  const partial = `${output}.partial`;
  const refuseExisting = async () => {
    if (!opts.overwrite && (await pathExists(output)))
      throw new BackupError(
        "BACKUP_TARGET_EXISTS",
        `${output} already exists: choose another file or allow overwriting it`,
        { path: output },
      );
  };
  await refuseExisting();
  const head = checkedHead(output, await opts.describe(snapshot));
  let work: string;
  try {
    work = await mkdtemp(join(dirname(output), `.${basename(output)}.work-`));
  } catch (e) {
    throw backupIoError(`creating a work directory next to ${output}`, output, e);
  }
  try {
    const records = await dumpRecords(snapshot, join(work, RECORDS_ENTRY), opts.onProgress);
    const manifest: BackupManifest = {
      format: BACKUP_FORMAT,
      version: BACKUP_VERSION,
      createdAt: new Date().toISOString(),
      head,
      records: { file: RECORDS_ENTRY, count: records.count, bytes: records.bytes, sha256: records.sha256 },
      dataKey: {
        ...records.dataKey,
        note:
          `values in ${RECORDS_ENTRY} are encrypted as in the store; their data key is in this archive ` +
          `only wrapped by ${records.dataKey.provider} key ${records.dataKey.keyId}: restoring needs that key`,
      },
    };
    await writeFile(join(work, MANIFEST_ENTRY), `${JSON.stringify(manifest, null, 2)}\n`, {
      flag: "wx",
      mode: 0o600,
    });
    await rm(partial, { force: true });
    await createTar({ file: partial, gzip: GZIP_OPTIONS, cwd: work, portable: true, mode: 0o600 }, [
      MANIFEST_ENTRY,
      RECORDS_ENTRY,
    ]);
    await fsyncPath(partial);
    await refuseExisting();
    await rename(partial, output);
    await fsyncPath(dirname(output));
    opts.onProgress?.({ records: records.count, bytes: records.bytes });
    return manifest;
  } catch (e) {
    await rm(partial, { force: true }).catch(() => {});
    throw isFileSystemError(e) ? backupIoError(`writing the backup ${output}`, output, e) : e;
  } finally {
    await rm(work, { recursive: true, force: true }).catch(() => {});
  }
}

// ---------------------------------------------------------------------------------------------
// Reading

export interface ScanBackupOptions {
  /**
   * Called with the records as they are decoded (in key order, before the checksum could be
   * checked: the caller must discard them if the scan fails). A returned promise holds the
   * archive back until it settles.
   */
  onRecords?(records: RawRecord[]): Promise<void> | undefined;
  onProgress?(progress: BackupProgress): void;
}

function corrupt(file: string, problem: string): BackupError {
  return new BackupError("BACKUP_CORRUPT", `${file} is not a readable backup archive: ${problem}`, {
    path: file,
  });
}

function parseManifest(file: string, bytes: Buffer): BackupManifest {
  let json: unknown;
  try {
    json = JSON.parse(bytes.toString("utf8"));
  } catch {
    throw corrupt(file, `${MANIFEST_ENTRY} is not valid JSON`);
  }
  const fields = (typeof json === "object" && json !== null ? json : {}) as Record<string, unknown>;
  if (fields.format !== BACKUP_FORMAT)
    throw corrupt(
      file,
      `${MANIFEST_ENTRY} is not a VitalStream backup manifest (format ${String(JSON.stringify(fields.format)).slice(0, 40)})`,
    );
  if (fields.version !== BACKUP_VERSION)
    throw new BackupError(
      "BACKUP_UNSUPPORTED_VERSION",
      `${file} is backup format version ${String(JSON.stringify(fields.version)).slice(0, 20)}; this node reads version ${BACKUP_VERSION}`,
      { path: file, version: fields.version },
    );
  const parsed = backupManifestSchema.safeParse(json);
  if (!parsed.success) throw corrupt(file, `${MANIFEST_ENTRY} is invalid (${schemaProblem(parsed.error)})`);
  return parsed.data;
}

/** Hashes and decodes records.bin as it streams by; `finish` compares with the manifest. */
class RecordsCheck {
  private readonly hash = createHash("sha256");
  private readonly decoder = new RecordDecoder();
  private framingError: RecordFramingError | undefined;
  private dataKey: WrappedKeyOwner | undefined;
  bytes = 0;

  get records(): number {
    return this.decoder.count;
  }

  /** After a framing error, keeps hashing (to tell damage from a bad writer) but decodes nothing. */
  push(chunk: Buffer): RawRecord[] {
    this.hash.update(chunk);
    this.bytes += chunk.length;
    if (this.framingError !== undefined) return [];
    try {
      const records = this.decoder.push(chunk);
      for (const [key, value] of records) if (isDataKeyRecord(key)) this.dataKey = wrappedKeyOwner(value);
      return records;
    } catch (e) {
      if (!(e instanceof RecordFramingError)) throw e;
      this.framingError = e;
      return [];
    }
  }

  finish(file: string, manifest: BackupManifest): void {
    const expected = manifest.records;
    const sha256 = this.hash.digest("hex");
    if (this.bytes !== expected.bytes || sha256 !== expected.sha256) {
      const why =
        this.bytes !== expected.bytes
          ? `it is ${this.bytes} bytes, the manifest says ${expected.bytes}`
          : "its sha256 differs from the manifest's";
      throw new BackupError(
        "BACKUP_CHECKSUM_MISMATCH",
        `${file}: ${RECORDS_ENTRY} does not match its manifest (${why}): the archive was modified or damaged`,
        { path: file, expectedSha256: expected.sha256, actualSha256: sha256 },
      );
    }
    try {
      if (this.framingError !== undefined) throw this.framingError;
      this.decoder.finish();
    } catch (e) {
      if (!(e instanceof RecordFramingError)) throw e;
      if (e.unsupportedVersion)
        throw new BackupError("BACKUP_UNSUPPORTED_VERSION", `${file}: ${RECORDS_ENTRY}: ${e.message}`, {
          path: file,
        });
      throw corrupt(file, `${RECORDS_ENTRY}: ${e.message}`);
    }
    if (this.decoder.count !== expected.count)
      throw new BackupError(
        "BACKUP_CHECKSUM_MISMATCH",
        `${file}: ${RECORDS_ENTRY} holds ${this.decoder.count} records, the manifest says ${expected.count}`,
        { path: file },
      );
    if (this.dataKey === undefined)
      throw corrupt(
        file,
        `${RECORDS_ENTRY} holds no wrapped data key (Meta/dataKey): nothing could decrypt it`,
      );
    if (this.dataKey.provider !== manifest.dataKey.provider || this.dataKey.keyId !== manifest.dataKey.keyId)
      throw corrupt(
        file,
        `the manifest names ${manifest.dataKey.provider} key ${manifest.dataKey.keyId} but the data key is wrapped by ${this.dataKey.provider} key ${this.dataKey.keyId}`,
      );
  }
}

interface EntryConsumer {
  /** A returned promise pauses the entry (and so the whole archive) until it settles. */
  data(chunk: Buffer): Promise<void> | undefined;
  end(): void;
}

/** A tar or zlib failure in words an operator can act on. */
function describeReadFailure(file: string, e: unknown): BackupError {
  if (e instanceof BackupError) return e;
  const err = e as { code?: string; tarCode?: string; message?: string };
  const message = err.message ?? String(e);
  if (isFileSystemError(e)) return backupIoError(`reading ${file}`, file, e);
  if (err.code === "Z_BUF_ERROR" || /unexpected end of file|truncated/i.test(message))
    return corrupt(file, `it is truncated (${message})`);
  if (typeof err.code === "string" && err.code.startsWith("Z_"))
    return corrupt(file, `the gzip data is damaged (${message})`);
  if (err.tarCode === "TAR_ENTRY_INVALID") return corrupt(file, `a tar header is damaged (${message})`);
  if (err.tarCode === "TAR_BAD_ARCHIVE") return corrupt(file, `it holds no tar archive (${message})`);
  return corrupt(file, message);
}

/**
 * Feeds the file through tar's Parser (strict: every warning is an error), with backpressure from
 * the consumers, and settles once: when the archive ends or at the first failure.
 */
async function readTarEntries(
  file: string,
  handle: FileHandle,
  consumerFor: (entry: ReadEntry) => EntryConsumer | undefined,
): Promise<void> {
  // Boxed, so that even `throw undefined` from a consumer counts as a failure.
  let failure: { error: unknown } | undefined;
  let signalFailure = () => {};
  const failed = new Promise<void>((resolve) => {
    signalFailure = resolve;
  });
  const fail = (e: unknown) => {
    if (failure !== undefined) return;
    failure = { error: e };
    signalFailure();
  };
  const inFlight = new Set<Promise<void>>();

  const parser = new Parser({
    strict: true,
    onReadEntry: (entry) => {
      let consumer: EntryConsumer | undefined;
      try {
        consumer = consumerFor(entry);
      } catch (e) {
        fail(e);
      }
      if (consumer === undefined || failure !== undefined) {
        entry.resume();
        return;
      }
      const sink = consumer;
      entry.on("data", (chunk: Buffer) => {
        if (failure !== undefined) return;
        let pending: Promise<void> | undefined;
        try {
          pending = sink.data(chunk);
        } catch (e) {
          fail(e);
          return;
        }
        if (pending === undefined) return;
        entry.pause();
        const settled: Promise<void> = pending
          .then(() => {
            if (failure === undefined) entry.resume();
          }, fail)
          .finally(() => inFlight.delete(settled));
        inFlight.add(settled);
      });
      entry.on("end", () => {
        if (failure !== undefined) return;
        try {
          sink.end();
        } catch (e) {
          fail(e);
        }
      });
    },
  });
  parser.on("error", fail);
  const ended = new Promise<void>((resolve) => parser.on("end", () => resolve()));
  const drained = () => new Promise<void>((resolve) => parser.once("drain", () => resolve()));

  try {
    for await (const chunk of handle.createReadStream({ start: 0, highWaterMark: READ_CHUNK_BYTES })) {
      if (failure !== undefined) break;
      if (!parser.write(chunk as Buffer)) await Promise.race([drained(), failed]);
      if (failure !== undefined) break;
    }
  } catch (e) {
    fail(backupIoError(`reading ${file}`, file, e));
  }
  if (failure === undefined) {
    parser.end();
    await Promise.race([ended, failed]);
  }
  await Promise.allSettled([...inFlight]);
  if (failure !== undefined) {
    parser.abort(new Error("stopped"));
    throw describeReadFailure(file, failure.error);
  }
}

async function openArchive(file: string): Promise<FileHandle> {
  let handle: FileHandle;
  try {
    handle = await open(file, "r");
  } catch (e) {
    if ((e as { code?: string }).code === "ENOENT")
      throw new BackupError("BACKUP_NOT_FOUND", `no backup archive at ${file}`, { path: file });
    throw backupIoError(`opening ${file}`, file, e);
  }
  try {
    const stat = await handle.stat();
    if (!stat.isFile()) throw corrupt(file, "it is not a regular file");
    if (stat.size === 0) throw corrupt(file, "it is empty");
    const { buffer, bytesRead } = await handle.read(Buffer.alloc(GZIP_MAGIC.length), 0, GZIP_MAGIC.length, 0);
    if (bytesRead < GZIP_MAGIC.length || !buffer.equals(GZIP_MAGIC))
      throw corrupt(file, "it is not gzip data (a backup is a .tar.gz file)");
    return handle;
  } catch (e) {
    await handle.close();
    throw e instanceof BackupError ? e : backupIoError(`reading ${file}`, file, e);
  }
}

/**
 * Reads and checks a whole archive, handing its records to `onRecords` as they stream by, and
 * returns the manifest once everything matched.
 */
export async function scanBackupArchive(
  inputPath: string,
  opts: ScanBackupOptions = {},
): Promise<BackupManifest> {
  const file = resolve(inputPath);
  const handle = await openArchive(file);
  let manifest: BackupManifest | undefined;
  const seen = new Set<string>();
  const records = new RecordsCheck();
  let reported = 0;
  const report = () => {
    reported = records.records;
    opts.onProgress?.({ records: records.records, bytes: records.bytes });
  };

  try {
    await readTarEntries(file, handle, (entry) => {
      const name = entry.path.replace(/^\.\//, "");
      // `tar -czf x.tar.gz -C dir .` adds the directory itself: harmless.
      if (entry.type === "Directory" && (name === "" || name === ".")) return undefined;
      if (entry.type !== "File" && entry.type !== "OldFile")
        throw corrupt(file, `unexpected ${entry.type} entry ${JSON.stringify(entry.path)}`);
      if (seen.has(name)) throw corrupt(file, `${name} appears twice`);
      seen.add(name);
      if (name === MANIFEST_ENTRY) {
        if (entry.size > MAX_MANIFEST_BYTES)
          throw corrupt(file, `${MANIFEST_ENTRY} is ${entry.size} bytes, far too large for a manifest`);
        const parts: Buffer[] = [];
        return {
          data: (chunk) => {
            parts.push(chunk);
            return undefined;
          },
          end: () => {
            manifest = parseManifest(file, Buffer.concat(parts));
          },
        };
      }
      if (name === RECORDS_ENTRY) {
        return {
          data: (chunk) => {
            const decoded = records.push(chunk);
            if (records.records - reported >= PROGRESS_EVERY_RECORDS) report();
            return decoded.length > 0 ? opts.onRecords?.(decoded) : undefined;
          },
          end: () => {},
        };
      }
      throw corrupt(file, `unexpected entry ${JSON.stringify(entry.path.slice(0, 100))}`);
    });
  } finally {
    await handle.close().catch(() => {});
  }
  if (!seen.has(MANIFEST_ENTRY) || manifest === undefined) throw corrupt(file, `it has no ${MANIFEST_ENTRY}`);
  if (!seen.has(RECORDS_ENTRY)) throw corrupt(file, `it has no ${RECORDS_ENTRY}`);
  records.finish(file, manifest);
  report();
  return manifest;
}

/** The manifest of the archive at `inputPath`, once the whole archive has been checked. */
export async function readBackupManifest(
  inputPath: string,
  opts: { onProgress?(progress: BackupProgress): void } = {},
): Promise<BackupManifest> {
  return scanBackupArchive(inputPath, { onProgress: opts.onProgress });
}
