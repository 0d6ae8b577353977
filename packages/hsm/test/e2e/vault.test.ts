/**
 * The HashiCorp Vault (transit) provider against the Vault emulator (emulators/vault.ts): no Vault
 * server is obtainable here, so every test name says "(emulator)".
 */
import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import nodeVault from "node-vault";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { startVaultEmulator, type VaultEmulator } from "../../emulators/vault.ts";
import { createVaultKeyWrapper, createVaultSigner } from "../../src/providers/vault/index.ts";
import { verifySignature } from "../../src/signature.ts";
import { hsmErrorOf, signerCompliance } from "../compliance/signerCompliance.ts";
import {
  TEST_RETRY,
  type TokenFiles,
  tokenFiles,
  vaultComplianceTarget,
  vaultConfig,
} from "../fixtures/vaultFixtures.ts";

describe("vault (emulator) ed25519, default mount", () => {
  signerCompliance(vaultComplianceTarget({ algorithm: "ed25519", mount: "transit" }), {
    disableKey: false,
    faults: true,
  });
});

describe("vault (emulator) ecdsa-p256, mount validators/transit", () => {
  signerCompliance(vaultComplianceTarget({ algorithm: "ecdsa-p256", mount: "validators/transit" }), {
    disableKey: false,
    faults: true,
  });
});

/** A fresh emulator with ed25519 key validator-1, P-256 key validator-p256 and wrap key storage-wrap. */
function withEmulator(): { emulator: () => VaultEmulator; files: () => TokenFiles; tokenFile: () => string } {
  let emulator: VaultEmulator;
  let files: TokenFiles;
  let tokenFile: string;
  beforeAll(async () => {
    emulator = await startVaultEmulator();
    emulator.createKey("validator-1", "ed25519");
    emulator.createKey("validator-p256", "ecdsa-p256");
    emulator.createKey("storage-wrap", "aes256-gcm96");
    files = tokenFiles();
    tokenFile = files.write("token", emulator.rootToken);
  });
  afterEach(async () => {
    emulator.injectFaults({ throttle: 0, serverErrors: 0, delayMs: 0, sealed: false });
    await emulator.start();
  });
  afterAll(async () => {
    await emulator?.close();
    files?.remove();
  });
  return { emulator: () => emulator, files: () => files, tokenFile: () => tokenFile };
}

describe("vault (emulator) itself", () => {
  const env = withEmulator();

  it("refuses a missing or wrong token with Vault's 403 body, and accepts the root token", async () => {
    const url = `${env.emulator().address}/v1/transit/keys/validator-1`;
    for (const headers of [{}, { "X-Vault-Token": "hvs.not-a-token" }]) {
      const res = await fetch(url, { headers });
      expect(res.status).toBe(403);
      expect(await res.json()).toEqual({ errors: ["permission denied"] });
    }
    const ok = await fetch(url, { headers: { "X-Vault-Token": env.emulator().rootToken } });
    expect(ok.status).toBe(200);
    const body = (await ok.json()) as Record<string, unknown>;
    expect(Object.keys(body).sort()).toEqual(
      [
        "auth",
        "data",
        "lease_duration",
        "lease_id",
        "mount_type",
        "renewable",
        "request_id",
        "warnings",
        "wrap_info",
      ].sort(),
    );
    expect(body).toMatchObject({ lease_id: "", renewable: false, wrap_info: null, auth: null });
    expect((body.data as Record<string, unknown>).type).toBe("ed25519");
  });

  it("answers node-vault like Vault: 404 for a missing key, 400 'signing key not found' on sign, health without a token", async () => {
    const client = nodeVault({ endpoint: env.emulator().address, token: env.emulator().rootToken });
    await expect(client.read("transit/keys/nope")).rejects.toMatchObject({ response: { statusCode: 404 } });
    await expect(client.write("transit/sign/nope", { input: "AAAA" })).rejects.toMatchObject({
      response: { statusCode: 400, body: { errors: ["signing key not found"] } },
    });
    const health = await fetch(`${env.emulator().address}/v1/sys/health`);
    expect(health.status).toBe(200);
    expect(await health.json()).toMatchObject({ initialized: true, sealed: false });
  });

  it("verifies, through its verify endpoint, what the provider signed (both key types)", async () => {
    const client = nodeVault({ endpoint: env.emulator().address, token: env.emulator().rootToken });
    for (const keyName of ["validator-1", "validator-p256"]) {
      const signer = await createVaultSigner(vaultConfig(env.emulator(), env.tokenFile(), { keyName }));
      const message = randomBytes(100);
      await signer.sign(message);
      const signed = env
        .emulator()
        .requests.filter((r) => r.path === `transit/sign/${keyName}`)
        .at(-1)!;
      const answer = await client.write(`transit/sign/${keyName}`, signed.body);
      const verified = await client.write(`transit/verify/${keyName}`, {
        ...signed.body,
        signature: answer.data.signature,
      });
      expect(verified.data.valid).toBe(true);
      const other = await client.write(`transit/verify/${keyName}`, {
        ...signed.body,
        input: Buffer.from(randomBytes(32)).toString("base64"),
        signature: answer.data.signature,
      });
      expect(other.data.valid).toBe(false);
      await signer.close();
    }
  });
});

describe("vault (emulator) token file", () => {
  const env = withEmulator();

  it("missing, empty or multi-line token file: HSM_INVALID_CONFIG naming the path, never the content", async () => {
    const missing = `${env.files().dir}/no-such-token`;
    const e1 = await hsmErrorOf(() => createVaultSigner(vaultConfig(env.emulator(), missing)));
    expect(e1.code).toBe("HSM_INVALID_CONFIG");
    expect(e1.message).toContain(missing);

    const empty = env.files().write("empty", " \n\t\n");
    const e2 = await hsmErrorOf(() => createVaultSigner(vaultConfig(env.emulator(), empty)));
    expect(e2.code).toBe("HSM_INVALID_CONFIG");
    expect(e2.message).toContain(empty);
    expect(e2.message).toContain("empty");

    const secret = "hvs.SECRETfirstLine";
    const twoLines = env.files().write("two-lines", `${secret}\nhvs.SECRETsecond\n`);
    const e3 = await hsmErrorOf(() =>
      createVaultKeyWrapper(vaultConfig(env.emulator(), twoLines, { keyName: "storage-wrap" })),
    );
    expect(e3.code).toBe("HSM_INVALID_CONFIG");
    expect(e3.message).toContain(twoLines);
    expect(`${e3.message} ${JSON.stringify(e3.meta)}`).not.toContain("SECRET");
  });

  it("picks up a token replaced in the file (Vault Agent sink) after Vault refuses the old one", async () => {
    const emulator = env.emulator();
    const oldToken = emulator.createToken({ "transit/*": ["read", "update"] });
    const file = env.files().write("agent-sink", oldToken);
    const signer = await createVaultSigner(vaultConfig(emulator, file));
    const publicKey = await signer.publicKey();

    emulator.revokeToken(oldToken);
    const refused = await hsmErrorOf(() => signer.sign(randomBytes(32)));
    expect(refused.code).toBe("HSM_AUTH_FAILED");
    expect(refused.message).toContain(file);
    expect(refused.message).toContain("transit/sign/validator-1");
    expect(`${refused.message} ${JSON.stringify(refused.meta)}`).not.toContain(oldToken);

    const newToken = emulator.createToken({ "transit/*": ["read", "update"] });
    env.files().write("agent-sink", `${newToken}\n`);
    const message = randomBytes(32);
    expect(verifySignature("ed25519", publicKey, message, await signer.sign(message))).toBe(true);
    expect((await signer.health()).ok).toBe(true);
    await signer.close();
  });
});

describe("vault (emulator) with the policy from docs/hsm/vault.md", () => {
  const env = withEmulator();
  const doc = readFileSync(new URL("../../../../docs/hsm/vault.md", import.meta.url), "utf8");
  const policy = /```hcl\n([\s\S]*?)```/.exec(doc)?.[1] ?? "";

  it("is enough to sign, check health, and wrap and unwrap the storage key", async () => {
    expect(policy).toContain("transit/sign/validator-1");
    const file = env.files().write("policy-token", env.emulator().createToken(policy));
    const signer = await createVaultSigner(vaultConfig(env.emulator(), file));
    const message = randomBytes(64);
    expect(verifySignature("ed25519", await signer.publicKey(), message, await signer.sign(message))).toBe(
      true,
    );
    expect((await signer.health()).ok).toBe(true);
    const wrapper = await createVaultKeyWrapper(
      vaultConfig(env.emulator(), file, { keyName: "storage-wrap" }),
    );
    const dataKey = randomBytes(32);
    expect(Buffer.from(await wrapper.unwrap(await wrapper.wrap(dataKey)))).toEqual(dataKey);
    await signer.close();
    await wrapper.close();
  });

  it("without the sign rule: HSM_AUTH_FAILED naming the path and the capability it needs", async () => {
    const withoutSign = policy.replace(/path "transit\/sign\/validator-1"[^}]*}/, "");
    const file = env.files().write("no-sign-token", env.emulator().createToken(withoutSign));
    const signer = await createVaultSigner(vaultConfig(env.emulator(), file));
    const e = await hsmErrorOf(() => signer.sign(randomBytes(32)));
    expect(e.code).toBe("HSM_AUTH_FAILED");
    expect(e.message).toContain('"update" on "transit/sign/validator-1"');
    await signer.close();
  });
});

describe("vault (emulator) key rotation", () => {
  const env = withEmulator();

  it("a signer keeps the version it started with; a new signer takes the latest", async () => {
    const emulator = env.emulator();
    emulator.createKey("rotating", "ecdsa-p256");
    const before = await createVaultSigner(vaultConfig(emulator, env.tokenFile(), { keyName: "rotating" }));
    const oldKey = await before.publicKey();
    expect(emulator.rotateKey("rotating")).toBe(2);

    const message = randomBytes(48);
    expect(verifySignature("ecdsa-p256", oldKey, message, await before.sign(message))).toBe(true);
    expect(emulator.requests.at(-1)).toMatchObject({
      path: "transit/sign/rotating",
      body: { key_version: 1 },
    });
    expect((await before.health()).ok).toBe(true);

    const after = await createVaultSigner(vaultConfig(emulator, env.tokenFile(), { keyName: "rotating" }));
    const newKey = await after.publicKey();
    expect(Buffer.from(newKey)).not.toEqual(Buffer.from(oldKey));
    expect(verifySignature("ecdsa-p256", newKey, message, await after.sign(message))).toBe(true);
    expect(emulator.requests.at(-1)).toMatchObject({ body: { key_version: 2 } });

    emulator.configureKey("rotating", { minEncryptionVersion: 2 });
    const retired = await hsmErrorOf(() => before.sign(randomBytes(32)));
    expect(retired.code).toBe("HSM_KEY_DISABLED");
    expect(retired.message).toContain("min_encryption_version");
    expect(await before.health()).toMatchObject({ ok: false, code: "HSM_KEY_DISABLED" });
    expect((await after.sign(message)).length).toBe(64);
    await before.close();
    await after.close();
  });

  it("a key deleted and re-created under the same name is refused, not signed with", async () => {
    const emulator = env.emulator();
    emulator.createKey("recreated", "ed25519");
    const signer = await createVaultSigner(vaultConfig(emulator, env.tokenFile(), { keyName: "recreated" }));
    emulator.deleteKey("recreated");
    expect((await hsmErrorOf(() => signer.sign(randomBytes(32)))).code).toBe("HSM_KEY_NOT_FOUND");
    emulator.createKey("recreated", "ed25519");
    const e = await hsmErrorOf(() => signer.sign(randomBytes(32)));
    expect(e.code).toBe("HSM_BAD_RESPONSE");
    expect(e.message).toContain("re-created");
    expect(await signer.health()).toMatchObject({ ok: false, code: "HSM_BAD_RESPONSE" });
    await signer.close();
  });
});

describe("vault (emulator) failures and configuration", () => {
  const env = withEmulator();

  it("sealed: HSM_BACKEND_ERROR that says so, unhealthy; unsealed: signs again", async () => {
    const signer = await createVaultSigner(vaultConfig(env.emulator(), env.tokenFile()));
    env.emulator().injectFaults({ sealed: true });
    const e = await hsmErrorOf(() => signer.sign(randomBytes(32)));
    expect(e.code).toBe("HSM_BACKEND_ERROR");
    expect(e.message).toContain("sealed");
    const health = await signer.health();
    expect(health).toMatchObject({ ok: false, code: "HSM_BACKEND_ERROR" });
    expect(health.detail).toContain("sealed");
    env.emulator().injectFaults({ sealed: false });
    expect((await signer.sign(randomBytes(32))).length).toBe(64);
    await signer.close();
  });

  it("a slow Vault: HSM_TIMEOUT after bounded attempts", async () => {
    const retry = { ...TEST_RETRY, attemptTimeoutMs: 150 };
    const signer = await createVaultSigner(vaultConfig(env.emulator(), env.tokenFile(), { retry }));
    env.emulator().injectFaults({ delayMs: 600 });
    const started = Date.now();
    const e = await hsmErrorOf(() => signer.sign(randomBytes(32)));
    expect(e.code).toBe("HSM_TIMEOUT");
    expect(Date.now() - started).toBeLessThan(
      retry.attempts * (retry.attemptTimeoutMs + retry.maxDelayMs) + 300,
    );
    const health = await signer.health();
    expect(health).toMatchObject({ ok: false, code: "HSM_TIMEOUT" });
    await signer.close();
  });

  it("rate limited beyond the retries: HSM_THROTTLED", async () => {
    const signer = await createVaultSigner(vaultConfig(env.emulator(), env.tokenFile()));
    env.emulator().injectFaults({ throttle: 10 });
    expect((await hsmErrorOf(() => signer.sign(randomBytes(32)))).code).toBe("HSM_THROTTLED");
    await signer.close();
  });

  it("nothing listening: HSM_UNREACHABLE at creation", async () => {
    const dead = await startVaultEmulator();
    await dead.close();
    const e = await hsmErrorOf(() => createVaultSigner(vaultConfig(dead, env.tokenFile())));
    expect(e.code).toBe("HSM_UNREACHABLE");
    expect(e.message).toContain(dead.address);
  });

  it("a key that cannot sign or cannot wrap: HSM_UNSUPPORTED_KEY", async () => {
    const e1 = await hsmErrorOf(() =>
      createVaultSigner(vaultConfig(env.emulator(), env.tokenFile(), { keyName: "storage-wrap" })),
    );
    expect(e1.code).toBe("HSM_UNSUPPORTED_KEY");
    expect(e1.message).toContain("aes256-gcm96");
    const e2 = await hsmErrorOf(() => createVaultKeyWrapper(vaultConfig(env.emulator(), env.tokenFile())));
    expect(e2.code).toBe("HSM_UNSUPPORTED_KEY");
  });

  it("names and addresses that would escape the key's path are invalid configuration", async () => {
    const emulator = env.emulator();
    for (const overrides of [
      { keyName: "../../sys/seal" },
      { mount: "transit/../sys" },
      { address: emulator.address.replace("http://", "http://user:pass@") },
    ]) {
      const e = await hsmErrorOf(() => createVaultSigner(vaultConfig(emulator, env.tokenFile(), overrides)));
      expect(e.code).toBe("HSM_INVALID_CONFIG");
      expect(e.message).not.toContain("pass@");
    }
  });

  it("health reads the key and never signs", async () => {
    const signer = await createVaultSigner(vaultConfig(env.emulator(), env.tokenFile()));
    const from = env.emulator().requests.length;
    for (let i = 0; i < 3; i++) expect((await signer.health()).ok).toBe(true);
    const paths = env
      .emulator()
      .requests.slice(from)
      .map((r) => `${r.method} ${r.path}`);
    expect(paths).toEqual(Array(3).fill("GET transit/keys/validator-1"));
    await signer.close();
    expect((await signer.health()).code).toBe("HSM_CLOSED");
    expect((await hsmErrorOf(() => signer.sign(randomBytes(8)))).code).toBe("HSM_CLOSED");
  });

  it("sends X-Vault-Namespace when configured, and only then (VAULT_NAMESPACE in the environment is ignored)", async () => {
    const namespaced = await startVaultEmulator({ namespace: "ops/validators" });
    namespaced.createKey("validator-1", "ed25519");
    const file = env.files().write("ns-token", namespaced.rootToken);
    try {
      const signer = await createVaultSigner(vaultConfig(namespaced, file, { namespace: "ops/validators" }));
      expect(signer.keyId).toBe(`${namespaced.address}/ops/validators/transit/keys/validator-1`);
      await signer.sign(randomBytes(16));
      expect(namespaced.requests.at(-1)?.namespace).toBe("ops/validators");
      await signer.close();

      process.env.VAULT_NAMESPACE = "somewhere/else";
      const e = await hsmErrorOf(() => createVaultSigner(vaultConfig(namespaced, file)));
      expect(e.code).toBe("HSM_KEY_NOT_FOUND");
      expect(e.message).toContain("VAULT_NAMESPACE");
      expect(namespaced.requests.at(-1)?.namespace).toBeUndefined();
    } finally {
      delete process.env.VAULT_NAMESPACE;
      await namespaced.close();
    }
  });
});

describe("vault (emulator) key wrapper", () => {
  const env = withEmulator();
  const wrapConfig = () => vaultConfig(env.emulator(), env.tokenFile(), { keyName: "storage-wrap" });

  it("wraps and unwraps the storage key in a vitalstream-wrapped-key envelope", async () => {
    const wrapper = await createVaultKeyWrapper(wrapConfig());
    const dataKey = randomBytes(32);
    const blob = await wrapper.wrap(dataKey);
    const envelope = JSON.parse(new TextDecoder().decode(blob));
    expect(envelope).toMatchObject({
      format: "vitalstream-wrapped-key",
      version: 1,
      provider: "vault",
      keyId: `${env.emulator().address}/transit/keys/storage-wrap`,
      mount: "transit",
      keyName: "storage-wrap",
      algorithm: "aes256-gcm96",
      keyVersion: 1,
    });
    expect(envelope.ciphertext).toMatch(/^vault:v1:[A-Za-z0-9+/]+=*$/);
    expect(new TextDecoder().decode(blob)).not.toContain(dataKey.toString("base64"));
    expect(Buffer.from(await wrapper.unwrap(blob))).toEqual(dataKey);

    env.emulator().rotateKey("storage-wrap");
    const again = await createVaultKeyWrapper(wrapConfig());
    expect(Buffer.from(await again.unwrap(blob))).toEqual(dataKey);
    expect(JSON.parse(new TextDecoder().decode(await again.wrap(dataKey))).keyVersion).toBe(2);
    await wrapper.close();
    await again.close();
  });

  it("a tampered ciphertext, or one made for another purpose, does not unwrap: HSM_UNWRAP_FAILED", async () => {
    const wrapper = await createVaultKeyWrapper(wrapConfig());
    const envelope = JSON.parse(new TextDecoder().decode(await wrapper.wrap(randomBytes(32))));
    const [prefix, version, payload] = envelope.ciphertext.split(":");
    const bytes = Buffer.from(payload, "base64");
    bytes[20] = bytes[20]! ^ 0x01;
    const tampered = { ...envelope, ciphertext: `${prefix}:${version}:${bytes.toString("base64")}` };
    const e1 = await hsmErrorOf(() => wrapper.unwrap(new TextEncoder().encode(JSON.stringify(tampered))));
    expect(e1.code).toBe("HSM_UNWRAP_FAILED");
    expect(e1.message).toContain("message authentication failed");

    const client = nodeVault({ endpoint: env.emulator().address, token: env.emulator().rootToken });
    const plain = await client.write("transit/encrypt/storage-wrap", {
      plaintext: randomBytes(32).toString("base64"),
    });
    const foreign = { ...envelope, ciphertext: plain.data.ciphertext };
    const e2 = await hsmErrorOf(() => wrapper.unwrap(new TextEncoder().encode(JSON.stringify(foreign))));
    expect(e2.code).toBe("HSM_UNWRAP_FAILED");
    await wrapper.close();
  });

  it("a garbage envelope fails with a named reason", async () => {
    const wrapper = await createVaultKeyWrapper(wrapConfig());
    const good = JSON.parse(new TextDecoder().decode(await wrapper.wrap(randomBytes(32))));
    const cases: [unknown, string][] = [
      ["not json at all", "not a JSON envelope"],
      [[1, 2, 3], "not a JSON object"],
      [{ ...good, format: "something-else" }, '"vitalstream-wrapped-key"'],
      [{ ...good, version: 2 }, "version 2"],
      [{ ...good, provider: "aws-kms" }, '"aws-kms"'],
      [{ ...good, keyName: "other-key" }, "other-key"],
      [{ ...good, ciphertext: "vault:v1:%%%" }, "vault:v<N>:<base64>"],
    ];
    for (const [value, reason] of cases) {
      const text = typeof value === "string" ? value : JSON.stringify(value);
      const e = await hsmErrorOf(() => wrapper.unwrap(new TextEncoder().encode(text)));
      expect(e.code).toBe("HSM_UNWRAP_FAILED");
      expect(e.message).toContain(reason);
    }
    const notUtf8 = await hsmErrorOf(() => wrapper.unwrap(Uint8Array.from([0xff, 0xfe, 0x00])));
    expect(notUtf8.code).toBe("HSM_UNWRAP_FAILED");
    await wrapper.close();
  });

  it("a missing wrapping key is HSM_KEY_NOT_FOUND and is not created behind the operator's back", async () => {
    const e = await hsmErrorOf(() =>
      createVaultKeyWrapper(vaultConfig(env.emulator(), env.tokenFile(), { keyName: "typo-wrap" })),
    );
    expect(e.code).toBe("HSM_KEY_NOT_FOUND");
    const res = await fetch(`${env.emulator().address}/v1/transit/keys/typo-wrap`, {
      headers: { "X-Vault-Token": env.emulator().rootToken },
    });
    expect(res.status).toBe(404);
  });
});
