import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { gunzipSync, gzipSync } from "node:zlib";
import type { KeyWrapper } from "@vitalstream/hsm";
import { create as createTar } from "tar";
import { describe, expect, it } from "vitest";
import {
  BackupError,
  type BackupManifest,
  type BackupProgress,
  readBackupManifest,
  restoreBackupArchive,
  writeBackupArchive,
} from "../../src/backup/index.ts";
import { EncryptedStore, META_DATA_KEY, type StoreSnapshot } from "../../src/store/encryptedStore.ts";
import { StoreError } from "../../src/store/errors.ts";
import { Prefix, prefixName } from "../../src/store/prefixes.ts";
import { passphraseWrapper, tempDir } from "../fixtures/store.ts";

const WRITER = fileURLToPath(new URL("../fixtures/storeWriter.ts", import.meta.url));
const MARKER = "patient-4c1e-PLAINTEXT-MARKER";
const text = (s: string) => new TextEncoder().encode(s);
const read = (b: Uint8Array | undefined) => (b === undefined ? undefined : new TextDecoder().decode(b));
const DATA_BUCKETS = Object.values(Prefix).filter((p) => p !== Prefix.Meta);

async function errorOf<E extends Error>(
  type: new (...args: never[]) => E,
  f: () => Promise<unknown>,
): Promise<E> {
  try {
    await f();
  } catch (e) {
    if (e instanceof type) return e;
    throw e;
  }
  throw new Error(`expected a ${type.name}`);
}
const backupErrorOf = (f: () => Promise<unknown>) => errorOf(BackupError, f);

async function fresh() {
  const dir = tempDir();
  const keyWrapper = await passphraseWrapper(dir);
  const path = join(dir, "db");
  const store = await EncryptedStore.open({ path, create: true }, { keyWrapper });
  return { dir, path, keyWrapper, store };
}

const key = (i: number) => text(`k-${String(i).padStart(6, "0")}`);

/** `count` records spread over four buckets, each value carrying MARKER; Block/"head" holds `height`. */
async function fill(store: EncryptedStore, count: number, height = 42): Promise<void> {
  const buckets = [Prefix.Block, Prefix.Receipt, Prefix.Log, Prefix.Account];
  let batch = store.batch();
  for (let i = 0; i < count; i++) {
    batch.put(buckets[i % buckets.length]!, key(i), text(`${MARKER}-${i}-${"x".repeat(i % 300)}`));
    if (i % 500 === 499) {
      await batch.write();
      batch = store.batch();
    }
  }
  batch.put(Prefix.Block, text("head"), text(String(height)));
  await batch.write();
}

/** Every record of every data bucket, decrypted: "Bucket/hexkey" -> value. */
async function contents(store: EncryptedStore | StoreSnapshot): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (const bucket of DATA_BUCKETS)
    for await (const [k, v] of store.range(bucket))
      out.set(`${prefixName(bucket)}/${Buffer.from(k).toString("hex")}`, read(v)!);
  return out;
}

async function rawRecords(store: EncryptedStore): Promise<Map<string, string>> {
  const snapshot = await store.snapshot();
  const out = new Map<string, string>();
  try {
    for await (const [k, v] of snapshot.rawEntries())
      out.set(Buffer.from(k).toString("hex"), Buffer.from(v).toString("hex"));
  } finally {
    await snapshot.close();
  }
  return out;
}

/** The head as a node would describe it: read from the snapshot itself. */
async function describeHead(snapshot: StoreSnapshot) {
  return {
    chainId: "vitalstream-test",
    height: Number(read(await snapshot.get(Prefix.Block, text("head")))),
    blockHash: `0x${"ab".repeat(32)}`,
    stateRoot: `0x${"cd".repeat(32)}`,
  };
}

async function backup(
  store: EncryptedStore,
  output: string,
  opts: { onProgress?(p: BackupProgress): void; overwrite?: boolean } = {},
): Promise<BackupManifest> {
  const snapshot = await store.snapshot();
  try {
    return await writeBackupArchive(snapshot, output, { describe: describeHead, ...opts });
  } finally {
    await snapshot.close();
  }
}

/** A store with records and a closed archive of it. */
async function archived(count = 200) {
  const env = await fresh();
  await fill(env.store, count);
  const archive = join(env.dir, "backup.tar.gz");
  const manifest = await backup(env.store, archive);
  const expected = await contents(env.store);
  await env.store.close();
  return { ...env, archive, manifest, expected };
}

async function openStore(path: string, keyWrapper: KeyWrapper): Promise<EncryptedStore> {
  return EncryptedStore.open({ path }, { keyWrapper });
}

const noVerify = { verify: async () => {} };

/** The tar entries of a .tar.gz (ustar headers, as node-tar writes them). */
function tarEntries(archive: Buffer): {
  tar: Buffer;
  entries: Map<string, { offset: number; size: number }>;
} {
  const tar = gunzipSync(archive);
  const entries = new Map<string, { offset: number; size: number }>();
  for (let at = 0; at + 512 <= tar.length && tar[at] !== 0; ) {
    const name = tar
      .subarray(at, at + 100)
      .toString("latin1")
      .replace(/\0.*$/s, "");
    const size = Number.parseInt(
      tar
        .subarray(at + 124, at + 136)
        .toString("latin1")
        .trim(),
      8,
    );
    entries.set(name, { offset: at + 512, size });
    at += 512 + Math.ceil(size / 512) * 512;
  }
  return { tar, entries };
}

function entryBytes(archive: string, name: string): Buffer {
  const { tar, entries } = tarEntries(readFileSync(archive));
  const entry = entries.get(name)!;
  return Buffer.from(tar.subarray(entry.offset, entry.offset + entry.size));
}

/** A .tar.gz holding exactly `files`, built with the same tar library. */
async function makeArchive(dir: string, files: Record<string, Buffer | string>): Promise<string> {
  const work = join(dir, `work-${randomBytes(4).toString("hex")}`);
  mkdirSync(work);
  for (const [name, content] of Object.entries(files)) writeFileSync(join(work, name), content);
  const file = join(dir, `${randomBytes(4).toString("hex")}.tar.gz`);
  await createTar({ file, gzip: true, cwd: work }, Object.keys(files));
  return file;
}

function leftovers(dir: string): string[] {
  return readdirSync(dir).filter((f) => /\.(restore-|work-|partial)/.test(f));
}

describe("store snapshots", () => {
  it("read the store as it was, whatever is written or deleted afterwards", async () => {
    const { store } = await fresh();
    await fill(store, 20);
    const before = await contents(store);
    const rawBefore = await rawRecords(store);
    const snapshot = await store.snapshot();
    await store
      .batch()
      .put(Prefix.Block, text("head"), text("43"))
      .put(Prefix.Code, text("late"), text("written after the snapshot"))
      .del(Prefix.Block, key(0))
      .write();
    expect(read(await snapshot.get(Prefix.Block, text("head")))).toBe("42");
    expect(read(await snapshot.get(Prefix.Block, key(0)))).toBe(`${MARKER}-0-`);
    expect(await snapshot.get(Prefix.Code, text("late"))).toBeUndefined();
    expect(await contents(snapshot)).toEqual(before);
    const raw = new Map<string, string>();
    for await (const [k, v] of snapshot.rawEntries())
      raw.set(Buffer.from(k).toString("hex"), Buffer.from(v).toString("hex"));
    expect(raw).toEqual(rawBefore);
    expect(raw.has(Buffer.from(META_DATA_KEY).toString("hex"))).toBe(true);
    // while the store itself moved on
    expect(read(await store.get(Prefix.Block, text("head")))).toBe("43");
    await snapshot.close();
    await snapshot.close();
    const closed = await errorOf(StoreError, () => snapshot.get(Prefix.Block, text("head")));
    expect(closed.code).toBe("STORE_CLOSED");
    const closedRaw = await errorOf(StoreError, async () => {
      for await (const _ of snapshot.rawEntries());
    });
    expect(closedRaw.code).toBe("STORE_CLOSED");
    await store.close();
  });
});

describe("backup archives", () => {
  it("round-trip every record of every bucket, Meta included, into a store the same key opens", async () => {
    const { dir, store, keyWrapper } = await fresh();
    await fill(store, 2500);
    // Values far larger than a read chunk, and more data than one restore batch.
    const large = store.batch();
    for (let i = 0; i < 4; i++) large.put(Prefix.Code, key(i), text(`${i}`.repeat(1536 * 1024)));
    await large.write();
    const expected = await contents(store);
    const expectedRaw = await rawRecords(store);
    const archive = join(dir, "out", "backup.tar.gz");
    mkdirSync(join(dir, "out"));
    const written: BackupProgress[] = [];
    const manifest = await backup(store, archive, { onProgress: (p) => written.push(p) });
    await store.close();

    expect(manifest).toMatchObject({
      format: "vitalstream-backup",
      version: 1,
      head: { chainId: "vitalstream-test", height: 42 },
      records: { file: "records.bin", count: expectedRaw.size },
      dataKey: { provider: keyWrapper.provider, keyId: keyWrapper.keyId },
    });
    expect(manifest.records.sha256).toMatch(/^[0-9a-f]{64}$/);
    expect(Date.now() - Date.parse(manifest.createdAt)).toBeLessThan(60_000);
    expect(readdirSync(join(dir, "out"))).toEqual(["backup.tar.gz"]);
    expect(await readBackupManifest(archive)).toEqual(manifest);
    const onDisk = JSON.parse(entryBytes(archive, "manifest.json").toString("utf8"));
    expect(onDisk).toEqual(manifest);

    expect(written.length).toBeGreaterThanOrEqual(3);
    expect(written.at(-1)).toEqual({ records: manifest.records.count, bytes: manifest.records.bytes });
    for (let i = 1; i < written.length; i++)
      expect(written[i]!.records).toBeGreaterThanOrEqual(written[i - 1]!.records);

    const target = join(dir, "restored", "db");
    const verified: { path: string; height: number; sample: string | undefined }[] = [];
    const restoredProgress: BackupProgress[] = [];
    const result = await restoreBackupArchive(archive, target, {
      onProgress: (p) => restoredProgress.push(p),
      verify: async (path, m) => {
        expect(existsSync(target)).toBe(false); // nothing swapped in before verify says yes
        const candidate = await openStore(path, keyWrapper);
        verified.push({ path, height: m.head.height, sample: read(await candidate.get(Prefix.Log, key(2))) });
        await candidate.close();
      },
    });
    expect(verified).toEqual([
      {
        path: expect.stringMatching(/restored\/db\.restore-[0-9a-f]+$/),
        height: 42,
        sample: `${MARKER}-2-xx`,
      },
    ]);
    expect(result).toEqual({ manifest, dataDir: target, previousDataDir: undefined });
    expect(restoredProgress.at(-1)).toEqual({
      records: manifest.records.count,
      bytes: manifest.records.bytes,
    });
    expect(restoredProgress.length).toBeGreaterThanOrEqual(3);
    expect(readdirSync(join(dir, "restored"))).toEqual(["db"]);

    const restored = await openStore(target, keyWrapper);
    expect(await contents(restored)).toEqual(expected);
    expect(await rawRecords(restored)).toEqual(expectedRaw);
    await restored.close();
  });

  it("hold exactly the snapshot while the store keeps being written during the backup", async () => {
    const { dir, store, keyWrapper } = await fresh();
    await fill(store, 3000);
    const expected = await contents(store);
    const snapshot = await store.snapshot();
    let writing = true;
    let concurrentWrites = 0;
    const writer = (async () => {
      for (let i = 0; writing; i++) {
        await store
          .batch()
          .put(Prefix.Code, text(`late-${i}`), text(`late ${i}`))
          .put(Prefix.Receipt, key(1), text(`overwritten ${i}`))
          .write();
        concurrentWrites++;
      }
    })();
    const archive = join(dir, "backup.tar.gz");
    const manifest = await writeBackupArchive(snapshot, archive, {
      describe: async (s) => {
        // Written and awaited before a single record is copied: still not in the archive.
        await store
          .batch()
          .put(Prefix.Block, text("head"), text("43"))
          .put(Prefix.Code, text("after-snapshot"), text("x"))
          .del(Prefix.Block, key(0))
          .write();
        return describeHead(s);
      },
    });
    writing = false;
    await writer;
    await snapshot.close();
    expect(concurrentWrites).toBeGreaterThan(0);
    expect(read(await store.get(Prefix.Code, text("after-snapshot")))).toBe("x");
    expect(await store.get(Prefix.Block, key(0))).toBeUndefined();
    await store.close();

    expect(manifest.head.height).toBe(42);
    const target = join(dir, "restored");
    await restoreBackupArchive(archive, target, noVerify);
    const restored = await openStore(target, keyWrapper);
    const got = await contents(restored);
    expect(got.size).toBe(expected.size);
    expect(got).toEqual(expected);
    expect(read(await restored.get(Prefix.Block, text("head")))).toBe("42");
    expect(read(await restored.get(Prefix.Receipt, key(1)))).toBe(`${MARKER}-1-x`);
    expect(await restored.get(Prefix.Code, text("late-0"))).toBeUndefined();
    await restored.close();
  });

  it("keep values encrypted: no plaintext in the archive, and no key material in the manifest", async () => {
    const { dir, store } = await fresh();
    await fill(store, 100);
    const envelope = JSON.parse(read(await store.rawDatabase().get(META_DATA_KEY))!) as Record<
      string,
      unknown
    >;
    const archive = join(dir, "backup.tar.gz");
    await backup(store, archive);
    await store.close();
    const { tar } = tarEntries(readFileSync(archive));
    expect(tar.includes(Buffer.from(MARKER))).toBe(false);
    // the search does find what is stored in clear: keys, and the manifest
    expect(tar.includes(Buffer.from(key(7)))).toBe(true);
    expect(tar.includes(Buffer.from('"format": "vitalstream-backup"'))).toBe(true);
    const manifestText = entryBytes(archive, "manifest.json").toString("utf8");
    const secretFields = Object.entries(envelope).filter(
      ([name, value]) =>
        !["format", "version", "provider", "keyId"].includes(name) && typeof value === "string",
    );
    expect(secretFields.length).toBeGreaterThan(0);
    for (const [, value] of secretFields) expect(manifestText).not.toContain(value);
  });

  it("refuse to overwrite an existing file, and leave no partial archive or work files when they fail", async () => {
    const { dir, store } = await fresh();
    await fill(store, 50);
    const archive = join(dir, "backup.tar.gz");
    writeFileSync(archive, "an older backup");
    const exists = await backupErrorOf(() => backup(store, archive));
    expect(exists.code).toBe("BACKUP_TARGET_EXISTS");
    expect(exists.message).toContain(archive);
    expect(readFileSync(archive, "utf8")).toBe("an older backup");
    await backup(store, archive, { overwrite: true });
    expect((await readBackupManifest(archive)).head.height).toBe(42);

    const snapshot = await store.snapshot();
    const failing = join(dir, "failing.tar.gz");
    await expect(
      writeBackupArchive(snapshot, failing, {
        describe: async () => {
          throw new Error("no head yet");
        },
      }),
    ).rejects.toThrow("no head yet");
    const invalid = await backupErrorOf(() =>
      writeBackupArchive(snapshot, failing, {
        describe: async () => ({ chainId: "", height: -1, blockHash: "0x", stateRoot: "0x" }),
      }),
    );
    expect(invalid.code).toBe("BACKUP_INVALID_ARGUMENT");
    const notJson = await backupErrorOf(() =>
      writeBackupArchive(snapshot, failing, {
        describe: async (s) => ({ ...(await describeHead(s)), gasUsed: 10n }),
      }),
    );
    expect(notJson.code).toBe("BACKUP_INVALID_ARGUMENT");
    expect(notJson.message).toContain("not JSON");
    await snapshot.close();
    const closed = await errorOf(StoreError, () =>
      writeBackupArchive(snapshot, failing, { describe: async () => describeHead(snapshot) }),
    );
    expect(closed.code).toBe("STORE_CLOSED");
    expect(existsSync(failing)).toBe(false);
    expect(leftovers(dir)).toEqual([]);
    await store.close();
  });
});

describe("reading a damaged archive", () => {
  it("names a byte changed inside records.bin as a checksum mismatch, in a value or in the framing", async () => {
    const { dir, archive } = await archived();
    const { tar, entries } = tarEntries(readFileSync(archive));
    const records = entries.get("records.bin")!;
    // header (12 B), then the first record: key length, key, value length, value
    const firstKeyLength = tar.readUInt32BE(records.offset + 12);
    const inValue = records.offset + 12 + 4 + firstKeyLength + 4 + 3;
    const inFraming = records.offset + 12 + 2;
    for (const at of [inValue, inFraming]) {
      const tampered = Buffer.from(tar);
      tampered[at] = tampered[at]! ^ 0x01;
      const file = join(dir, `tampered-${at}.tar.gz`);
      writeFileSync(file, gzipSync(tampered));
      const e = await backupErrorOf(() => readBackupManifest(file));
      expect(e.code).toBe("BACKUP_CHECKSUM_MISMATCH");
      expect(e.message).toContain(file);
      expect(e.message).toContain("records.bin");
    }
  });

  it("names damaged gzip data, truncation at any point, non-gzip files and missing entries", async () => {
    const { dir, archive, manifest } = await archived();
    const bytes = readFileSync(archive);
    const write = (name: string, content: Buffer | string) => {
      const file = join(dir, name);
      writeFileSync(file, content);
      return file;
    };
    const corrupt = async (file: string, reason: RegExp) => {
      const e = await backupErrorOf(() => readBackupManifest(file));
      expect({ code: e.code, message: e.message }).toEqual({
        code: "BACKUP_CORRUPT",
        message: expect.stringMatching(reason),
      });
      expect(e.message).toContain(file);
    };

    const flipped = Buffer.from(bytes);
    flipped[Math.floor(bytes.length / 2)] = flipped[Math.floor(bytes.length / 2)]! ^ 0xff;
    await corrupt(write("flipped.tar.gz", flipped), /gzip data is damaged|truncated|header|records\.bin/);
    for (const keep of [1, 10, 100, Math.floor(bytes.length / 2), bytes.length - 9, bytes.length - 1])
      await corrupt(write(`cut-${keep}.tar.gz`, bytes.subarray(0, keep)), /truncated|not gzip/);
    await corrupt(write("garbage.tar.gz", randomBytes(4096)), /not gzip/);
    await corrupt(write("empty.tar.gz", ""), /empty/);
    await corrupt(write("gzipped-garbage.tar.gz", gzipSync(randomBytes(4096))), /tar/);

    const records = entryBytes(archive, "records.bin");
    const manifestJson = entryBytes(archive, "manifest.json");
    await corrupt(await makeArchive(dir, { "records.bin": records }), /no manifest\.json/);
    await corrupt(await makeArchive(dir, { "manifest.json": manifestJson }), /no records\.bin/);
    await corrupt(
      await makeArchive(dir, { "manifest.json": manifestJson, "records.bin": records, "extra.txt": "hi" }),
      /unexpected entry "extra\.txt"/,
    );
    await corrupt(
      await makeArchive(dir, { "manifest.json": "{ not json", "records.bin": records }),
      /manifest\.json is not valid JSON/,
    );

    const miscounted = JSON.stringify({ ...manifest, records: { ...manifest.records, count: 7 } });
    const e = await backupErrorOf(async () =>
      readBackupManifest(await makeArchive(dir, { "manifest.json": miscounted, "records.bin": records })),
    );
    expect(e.code).toBe("BACKUP_CHECKSUM_MISMATCH");
    expect(e.message).toMatch(/holds \d+ records, the manifest says 7/);

    const future = JSON.stringify({ ...manifest, version: 2 });
    const v2 = await backupErrorOf(async () =>
      readBackupManifest(await makeArchive(dir, { "manifest.json": future, "records.bin": records })),
    );
    expect(v2.code).toBe("BACKUP_UNSUPPORTED_VERSION");

    const missing = await backupErrorOf(() => readBackupManifest(join(dir, "nothing.tar.gz")));
    expect(missing.code).toBe("BACKUP_NOT_FOUND");
    expect(missing.message).toContain(join(dir, "nothing.tar.gz"));
    // the original is still fine
    expect(await readBackupManifest(archive)).toEqual(manifest);
  });

  it("restores nothing from a damaged archive: no target, no temporary directory", async () => {
    const { dir, archive } = await archived();
    const { tar, entries } = tarEntries(readFileSync(archive));
    const tampered = Buffer.from(tar);
    const at = entries.get("records.bin")!.offset + 200;
    tampered[at] = tampered[at]! ^ 0x01;
    const file = join(dir, "tampered.tar.gz");
    writeFileSync(file, gzipSync(tampered));
    let verified = false;
    const target = join(dir, "restored");
    const e = await backupErrorOf(() =>
      restoreBackupArchive(file, target, {
        verify: async () => {
          verified = true;
        },
      }),
    );
    expect(e.code).toBe("BACKUP_CHECKSUM_MISMATCH");
    expect(verified).toBe(false);
    expect(existsSync(target)).toBe(false);
    expect(leftovers(dir)).toEqual([]);
  });
});

describe("restoring", () => {
  it("refuses a data dir held open by a store in this process, before doing any work", async () => {
    const { dir, archive, keyWrapper } = await archived();
    const target = join(dir, "live");
    const live = await EncryptedStore.open({ path: target, create: true }, { keyWrapper });
    await live.batch().put(Prefix.Block, text("live"), text("still here")).write();
    let verified = false;
    const e = await backupErrorOf(() =>
      restoreBackupArchive(archive, target, {
        force: true,
        verify: async () => {
          verified = true;
        },
      }),
    );
    expect(e.code).toBe("BACKUP_TARGET_IN_USE");
    expect(e.message).toContain(target);
    expect(verified).toBe(false);
    expect(leftovers(dir)).toEqual([]);
    expect(readdirSync(dir).filter((f) => f.includes("before-restore"))).toEqual([]);
    expect(read(await live.get(Prefix.Block, text("live")))).toBe("still here");
    await live.close();
  });

  it("refuses a data dir held by another running process", async () => {
    const { dir, archive } = await archived();
    const passFile = join(dir, "writer-pass");
    writeFileSync(passFile, "writer passphrase\n");
    const target = join(dir, "running");
    const child = spawn(process.execPath, [WRITER, target, passFile], {
      stdio: ["ignore", "pipe", "inherit"],
    });
    try {
      await new Promise<void>((resolve) =>
        child.stdout.on("data", (d: Buffer) => d.toString().includes("WRITING") && resolve()),
      );
      const e = await backupErrorOf(() =>
        restoreBackupArchive(archive, target, { ...noVerify, force: true }),
      );
      expect(e.code).toBe("BACKUP_TARGET_IN_USE");
      expect(leftovers(dir)).toEqual([]);
    } finally {
      child.kill("SIGKILL");
      await new Promise((r) => child.on("exit", r));
    }
  });

  it("replaces an existing data dir only with force, keeping the old one as .before-restore-*", async () => {
    const { dir, archive, keyWrapper, expected } = await archived();
    const target = join(dir, "existing");
    const old = await EncryptedStore.open({ path: target, create: true }, { keyWrapper });
    await old.batch().put(Prefix.Code, text("old-only"), text("operator data")).write();
    await old.close();

    const e = await backupErrorOf(() => restoreBackupArchive(archive, target, noVerify));
    expect(e.code).toBe("BACKUP_TARGET_EXISTS");
    expect(e.message).toContain(target);
    const untouched = await openStore(target, keyWrapper);
    expect(read(await untouched.get(Prefix.Code, text("old-only")))).toBe("operator data");
    await untouched.close();
    expect(leftovers(dir)).toEqual([]);

    const result = await restoreBackupArchive(archive, target, { ...noVerify, force: true });
    expect(result.previousDataDir).toMatch(/existing\.before-restore-\d{4}-\d\d-\d\dT[\d-]+Z$/);
    const previous = await openStore(result.previousDataDir!, keyWrapper);
    expect(read(await previous.get(Prefix.Code, text("old-only")))).toBe("operator data");
    await previous.close();
    const restored = await openStore(target, keyWrapper);
    expect(await restored.get(Prefix.Code, text("old-only"))).toBeUndefined();
    expect(await contents(restored)).toEqual(expected);
    await restored.close();
    expect(leftovers(dir)).toEqual([]);
  });

  it("restores into an empty directory without force", async () => {
    const { dir, archive, keyWrapper, expected } = await archived();
    const target = join(dir, "empty");
    mkdirSync(target);
    const result = await restoreBackupArchive(archive, target, noVerify);
    expect(result.previousDataDir).toBeUndefined();
    const restored = await openStore(target, keyWrapper);
    expect(await contents(restored)).toEqual(expected);
    await restored.close();
  });

  it("leaves the data dir untouched and no temporary directory behind when verify fails", async () => {
    const { dir, archive, keyWrapper } = await archived();
    const absent = join(dir, "absent");
    const failing = {
      force: true,
      verify: async () => {
        throw new Error("state root mismatch at height 42");
      },
    };
    const e = await backupErrorOf(() => restoreBackupArchive(archive, absent, failing));
    expect(e.code).toBe("BACKUP_VERIFY_FAILED");
    expect(e.message).toContain("state root mismatch at height 42");
    expect(existsSync(absent)).toBe(false);

    const target = join(dir, "existing");
    const old = await EncryptedStore.open({ path: target, create: true }, { keyWrapper });
    await old.batch().put(Prefix.Code, text("old-only"), text("operator data")).write();
    await old.close();
    expect((await backupErrorOf(() => restoreBackupArchive(archive, target, failing))).code).toBe(
      "BACKUP_VERIFY_FAILED",
    );
    const untouched = await openStore(target, keyWrapper);
    expect(read(await untouched.get(Prefix.Code, text("old-only")))).toBe("operator data");
    await untouched.close();

    const leftOpen = await backupErrorOf(() =>
      restoreBackupArchive(archive, absent, {
        verify: async (path) => {
          await openStore(path, keyWrapper); // and never closed
        },
      }),
    );
    expect(leftOpen.code).toBe("BACKUP_VERIFY_FAILED");
    expect(leftOpen.message).toContain("open");
    expect(existsSync(absent)).toBe(false);
    expect(leftovers(dir)).toEqual([]);
    expect(readdirSync(dir).filter((f) => f.includes("before-restore"))).toEqual([]);
  });

  it("names a missing archive before touching the data dir", async () => {
    const { dir } = await fresh();
    const e = await backupErrorOf(() =>
      restoreBackupArchive(join(dir, "missing.tar.gz"), join(dir, "target"), noVerify),
    );
    expect(e.code).toBe("BACKUP_NOT_FOUND");
    expect(existsSync(join(dir, "target"))).toBe(false);
  });
});
