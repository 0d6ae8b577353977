import { readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { createKeystore, unlockKeystore } from "../../src/providers/local/keystore.ts";
import { createLocalSigner } from "../../src/providers/local/signer.ts";
import { createLocalKeyWrapper } from "../../src/providers/local/wrapper.ts";
import { createKeyWrapper, createSigner } from "../../src/registry.ts";
import { verifySignature } from "../../src/signature.ts";
import { hsmErrorOf, signerCompliance } from "../compliance/signerCompliance.ts";
import { localKeystore, TEST_SCRYPT_N, tempDir } from "../fixtures/local.ts";

for (const algorithm of ["ed25519", "ecdsa-p256"] as const) {
  describe(`local keystore ${algorithm}`, () => {
    signerCompliance(
      async () => {
        const ks = localKeystore(algorithm);
        const wrongPass = join(ks.dir, "wrong");
        writeFileSync(wrongPass, "not the passphrase\n");
        return {
          label: `local ${algorithm}`,
          algorithm,
          signer: () =>
            createLocalSigner({
              provider: "local",
              keystorePath: ks.keystorePath,
              passphraseFile: ks.passphraseFile,
            }),
          badCredentialsSigner: () =>
            createLocalSigner({
              provider: "local",
              keystorePath: ks.keystorePath,
              passphraseFile: wrongPass,
            }),
          missingKeySigner: () =>
            createLocalSigner({
              provider: "local",
              keystorePath: join(ks.dir, "missing.json"),
              passphraseFile: ks.passphraseFile,
            }),
          stopBackend: async () => {},
          startBackend: async () => {},
          secrets: () => [ks.passphrase],
          close: async () => {},
        };
      },
      { disableKey: false, faults: false, backendOutage: false },
    );
  });
}

describe("local keystore file", () => {
  it("is versioned JSON, private to its owner, and never holds the key in clear", () => {
    const ks = localKeystore("ed25519");
    const text = readFileSync(ks.keystorePath, "utf8");
    const file = JSON.parse(text);
    expect(file).toMatchObject({
      format: "vitalstream-keystore",
      version: 1,
      algorithm: "ed25519",
      keyId: "validator-1",
    });
    expect(file.crypto).toMatchObject({ kdf: "scrypt", cipher: "aes-256-gcm" });
    expect(statSync(ks.keystorePath).mode & 0o777).toBe(0o600);
    const { privateKey } = unlockKeystore(ks.keystorePath, ks.passphrase);
    const raw = privateKey.export({ format: "der", type: "pkcs8" }).subarray(-32).toString("hex");
    expect(text).not.toContain(raw);
  });

  it("refuses to overwrite a key and refuses short passphrases", async () => {
    const ks = localKeystore("ed25519");
    const e1 = await hsmErrorOf(async () =>
      createKeystore({
        path: ks.keystorePath,
        passphrase: "long enough pass",
        algorithm: "ed25519",
        keyId: "x",
      }),
    );
    expect(e1.code).toBe("HSM_INVALID_CONFIG");
    const e2 = await hsmErrorOf(async () =>
      createKeystore({
        path: join(tempDir(), "k.json"),
        passphrase: "short",
        algorithm: "ed25519",
        keyId: "x",
      }),
    );
    expect(e2.message).toContain("at least 8");
  });

  it("detects edits: a swapped public key or a flipped byte fails, garbage is named", async () => {
    const ks = localKeystore("ed25519");
    const file = JSON.parse(readFileSync(ks.keystorePath, "utf8"));
    const other = localKeystore("ed25519");
    const otherPub = JSON.parse(readFileSync(other.keystorePath, "utf8")).publicKey;
    writeFileSync(ks.keystorePath, JSON.stringify({ ...file, publicKey: otherPub }));
    expect((await hsmErrorOf(async () => unlockKeystore(ks.keystorePath, ks.passphrase))).code).toBe(
      "HSM_AUTH_FAILED",
    );
    const flipped = file.crypto.ciphertext.replace(/^./, (c: string) => (c === "0" ? "1" : "0"));
    writeFileSync(
      ks.keystorePath,
      JSON.stringify({ ...file, crypto: { ...file.crypto, ciphertext: flipped } }),
    );
    expect((await hsmErrorOf(async () => unlockKeystore(ks.keystorePath, ks.passphrase))).code).toBe(
      "HSM_AUTH_FAILED",
    );
    writeFileSync(ks.keystorePath, "{ not json");
    const e = await hsmErrorOf(async () => unlockKeystore(ks.keystorePath, ks.passphrase));
    expect(e.code).toBe("HSM_KEYSTORE_CORRUPT");
    expect(e.message).not.toContain(ks.passphrase);
  });

  it("is created through the registry and refused in production mode", async () => {
    const ks = localKeystore("ecdsa-p256");
    const config = { provider: "local", keystorePath: ks.keystorePath, passphraseFile: ks.passphraseFile };
    const signer = await createSigner(config);
    const msg = new TextEncoder().encode("vote");
    expect(verifySignature("ecdsa-p256", ks.publicKey, msg, await signer.sign(msg))).toBe(true);
    const e = await hsmErrorOf(() => createSigner(config, { production: true }));
    expect(e.code).toBe("HSM_INVALID_CONFIG");
    expect(e.message).toContain("production");
    expect((await hsmErrorOf(() => createKeyWrapper(config, { production: true }))).code).toBe(
      "HSM_INVALID_CONFIG",
    );
  });
});

describe("local key wrapper", () => {
  it("wraps and unwraps the storage key; wrong passphrase, edits and garbage fail by name", async () => {
    const ks = localKeystore("ed25519");
    const wrapper = await createLocalKeyWrapper(
      { provider: "local", passphraseFile: ks.passphraseFile },
      { scryptN: TEST_SCRYPT_N },
    );
    const dataKey = new Uint8Array(32).map((_, i) => i * 7);
    const blob = await wrapper.wrap(dataKey);
    expect(new TextDecoder().decode(blob)).not.toContain(Buffer.from(dataKey).toString("base64"));
    expect(await wrapper.unwrap(blob)).toEqual(dataKey);
    const wrongFile = join(ks.dir, "wrong");
    writeFileSync(wrongFile, "another passphrase\n");
    const wrong = await createLocalKeyWrapper({ provider: "local", passphraseFile: wrongFile });
    expect((await hsmErrorOf(() => wrong.unwrap(blob))).code).toBe("HSM_UNWRAP_FAILED");
    const env = JSON.parse(new TextDecoder().decode(blob));
    const tampered = new TextEncoder().encode(
      JSON.stringify({ ...env, tag: Buffer.alloc(16).toString("base64") }),
    );
    expect((await hsmErrorOf(() => wrapper.unwrap(tampered))).code).toBe("HSM_UNWRAP_FAILED");
    for (const garbage of [
      "",
      "null",
      "{}",
      '{"format":"vitalstream-wrapped-key","version":1,"provider":"vault"}',
    ]) {
      expect((await hsmErrorOf(() => wrapper.unwrap(new TextEncoder().encode(garbage)))).code).toBe(
        "HSM_UNWRAP_FAILED",
      );
    }
    expect((await hsmErrorOf(() => wrapper.wrap(new Uint8Array(16)))).code).toBe("HSM_INVALID_CONFIG");
  });
});
