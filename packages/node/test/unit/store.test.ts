import { spawn } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { EncryptedStore, storeKey } from "../../src/store/encryptedStore.ts";
import { StoreError } from "../../src/store/errors.ts";
import { Prefix } from "../../src/store/prefixes.ts";
import { passphraseWrapper, tempDir } from "../fixtures/store.ts";

const WRITER = fileURLToPath(new URL("../fixtures/storeWriter.ts", import.meta.url));
const text = (s: string) => new TextEncoder().encode(s);
const read = (b: Uint8Array | undefined) => (b === undefined ? undefined : new TextDecoder().decode(b));

async function storeErrorOf(f: () => Promise<unknown>): Promise<StoreError> {
  try {
    await f();
  } catch (e) {
    if (e instanceof StoreError) return e;
    throw e;
  }
  throw new Error("expected a StoreError");
}

async function fresh() {
  const dir = tempDir();
  const keyWrapper = await passphraseWrapper(dir);
  const path = join(dir, "db");
  const store = await EncryptedStore.open({ path, create: true }, { keyWrapper });
  return { dir, path, keyWrapper, store };
}

describe("encrypted store", () => {
  it("round-trips values by bucket and key, and survives a reopen", async () => {
    const { path, keyWrapper, store } = await fresh();
    await store
      .batch()
      .put(Prefix.Block, text("h1"), text("block one"))
      .put(Prefix.Receipt, text("h1"), text("receipt"))
      .write();
    expect(read(await store.get(Prefix.Block, text("h1")))).toBe("block one");
    expect(read(await store.get(Prefix.Receipt, text("h1")))).toBe("receipt");
    expect(await store.get(Prefix.Block, text("h2"))).toBeUndefined();
    await store.batch().del(Prefix.Receipt, text("h1")).write();
    await store.close();
    const again = await EncryptedStore.open({ path }, { keyWrapper });
    expect(read(await again.get(Prefix.Block, text("h1")))).toBe("block one");
    expect(await again.get(Prefix.Receipt, text("h1"))).toBeUndefined();
    await again.close();
  });

  it("keeps nothing in clear on disk", async () => {
    const { path, store } = await fresh();
    const secret = "patient-7f3a-diagnosis-PLAINTEXT-MARKER";
    const batch = store.batch();
    for (let i = 0; i < 50; i++) batch.put(Prefix.Log, text(`k${i}`), text(`${secret}-${i}`));
    await batch.write();
    await store.close();
    for (const f of readdirSync(path))
      expect(readFileSync(join(path, f)).includes(Buffer.from(secret))).toBe(false);
  });

  it("names a tampered record, and a value moved to another key, instead of returning wrong data", async () => {
    const { store } = await fresh();
    await store
      .batch()
      .put(Prefix.Block, text("a"), text("value a"))
      .put(Prefix.Block, text("b"), text("value b"))
      .write();
    const raw = store.rawDatabase();
    const sealed = (await raw.get(storeKey(Prefix.Block, text("a"))))!;
    const flipped = Uint8Array.from(sealed);
    flipped[20] = flipped[20]! ^ 1;
    await raw.put(storeKey(Prefix.Block, text("a")), flipped);
    const e = await storeErrorOf(() => store.get(Prefix.Block, text("a")));
    expect(e.code).toBe("STORE_CORRUPT_RECORD");
    expect(e.message).toContain("Block/61");
    expect(e.meta).toMatchObject({ bucket: "Block", key: "61" });
    await raw.put(storeKey(Prefix.Block, text("b")), sealed); // a's valid ciphertext under b's key
    expect((await storeErrorOf(() => store.get(Prefix.Block, text("b")))).code).toBe("STORE_CORRUPT_RECORD");
    await store.close();
  });

  it("refuses the wrong key wrapper, a missing store, and a second process", async () => {
    const { dir, path, store } = await fresh();
    await store.batch().put(Prefix.Block, text("x"), text("y")).write();
    const busy = await storeErrorOf(async () =>
      EncryptedStore.open({ path }, { keyWrapper: await passphraseWrapper(dir) }),
    );
    expect(busy.code).toBe("STORE_LOCKED");
    await store.close();
    const other = await passphraseWrapper(dir, "a different passphrase");
    const e = await storeErrorOf(() => EncryptedStore.open({ path }, { keyWrapper: other }));
    expect(e.code).toBe("STORE_KEY_UNAVAILABLE");
    expect(e.message).toContain("local");
    expect(e.message).not.toContain("a different passphrase");
    const missing = await storeErrorOf(async () =>
      EncryptedStore.open({ path: join(dir, "nothing") }, { keyWrapper: other }),
    );
    expect(missing.code).toBe("STORE_NOT_INITIALISED");
  });

  it("iterates a bucket in key order, in ranges and in reverse", async () => {
    const { store } = await fresh();
    const batch = store.batch();
    for (const k of ["c", "a", "b", "d"]) batch.put(Prefix.TxLocation, text(k), text(k.toUpperCase()));
    batch.put(Prefix.Code, text("a"), text("other bucket"));
    await batch.write();
    const all: string[] = [];
    for await (const [k, v] of store.range(Prefix.TxLocation)) all.push(`${read(k)}=${read(v)}`);
    expect(all).toEqual(["a=A", "b=B", "c=C", "d=D"]);
    const some: string[] = [];
    for await (const [k] of store.range(Prefix.TxLocation, { gte: text("b"), lt: text("d"), reverse: true }))
      some.push(read(k)!);
    expect(some).toEqual(["c", "b"]);
    await store.close();
  });

  it("keeps batches atomic through kill -9 (a real process killed mid-write)", async () => {
    const dir = tempDir();
    const passFile = join(dir, "pass");
    (await import("node:fs")).writeFileSync(passFile, "crash test passphrase\n");
    const path = join(dir, "db");
    const child = spawn(process.execPath, [WRITER, path, passFile], { stdio: ["ignore", "pipe", "inherit"] });
    await new Promise<void>((resolve) =>
      child.stdout.on("data", (d: Buffer) => d.toString().includes("WRITING") && resolve()),
    );
    await new Promise((r) => setTimeout(r, 150));
    child.kill("SIGKILL");
    await new Promise((r) => child.on("exit", r));
    const { createKeyWrapper } = await import("@vitalstream/hsm");
    const store = await EncryptedStore.open(
      { path },
      { keyWrapper: await createKeyWrapper({ provider: "local", passphraseFile: passFile }) },
    );
    const perBatch = new Map<string, number>();
    for await (const [, v] of store.range(Prefix.Receipt))
      perBatch.set(read(v)!, (perBatch.get(read(v)!) ?? 0) + 1);
    expect(perBatch.size).toBeGreaterThan(3);
    for (const [, count] of perBatch) expect(count).toBe(200); // every batch whole, none partial
    await store.close();
  });
});
