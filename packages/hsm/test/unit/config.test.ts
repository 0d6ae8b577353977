import { describe, expect, it } from "vitest";
import { parseProviderConfig, providerConfigFromEnv } from "../../src/config.ts";
import { HsmError } from "../../src/errors.ts";
import { withRetry } from "../../src/retry.ts";
import { hsmErrorOf } from "../compliance/signerCompliance.ts";

describe("provider configuration from the seed-compatible environment", () => {
  it("reads every provider's variables", () => {
    expect(
      providerConfigFromEnv({ HSM_PROVIDER: "aws_kms", AWS_KMS_KEY_ID: "alias/v1", AWS_REGION: "eu-west-1" }),
    ).toEqual({
      provider: "aws-kms",
      keyId: "alias/v1",
      region: "eu-west-1",
    });
    expect(
      providerConfigFromEnv(
        { HSM_PROVIDER: "aws_kms", AWS_KMS_WRAP_KEY_ID: "alias/wrap", AWS_REGION: "eu-west-1" },
        "wrapper",
      ),
    ).toMatchObject({ keyId: "alias/wrap" });
    expect(
      providerConfigFromEnv({
        HSM_PROVIDER: "vault",
        VAULT_ADDR: "https://vault:8200",
        VAULT_TOKEN_FILE: "/run/t",
        VAULT_KEY_NAME: "v1",
      }),
    ).toEqual({
      provider: "vault",
      address: "https://vault:8200",
      tokenFile: "/run/t",
      keyName: "v1",
      mount: "transit",
    });
    expect(
      providerConfigFromEnv({
        HSM_PROVIDER: "pkcs11",
        PKCS11_LIBRARY: "/usr/lib/softhsm/libsofthsm2.so",
        PKCS11_TOKEN_LABEL: "t",
        PKCS11_PIN_FILE: "/run/pin",
        PKCS11_KEY_LABEL: "k",
      }),
    ).toMatchObject({ provider: "pkcs11", poolSize: 4 });
    expect(
      providerConfigFromEnv({
        HSM_PROVIDER: "azure_keyvault",
        AZURE_KEYVAULT_URL: "https://v.vault.azure.net",
        AZURE_KEYVAULT_KEY_NAME: "k",
        AZURE_TENANT_ID: "t",
        AZURE_CLIENT_ID: "c",
        AZURE_CLIENT_SECRET_FILE: "/run/s",
      }),
    ).toMatchObject({ provider: "azure-keyvault", keyName: "k", clientSecretFile: "/run/s" });
    expect(
      providerConfigFromEnv({
        HSM_PROVIDER: "local",
        LOCAL_KEYSTORE_PATH: "/k.json",
        LOCAL_KEYSTORE_PASSPHRASE_FILE: "/p",
      }),
    ).toEqual({
      provider: "local",
      keystorePath: "/k.json",
      passphraseFile: "/p",
    });
  });

  it("says what is missing or wrong, without echoing values", async () => {
    expect((await hsmErrorOf(async () => providerConfigFromEnv({}))).message).toContain(
      "HSM_PROVIDER is not set",
    );
    expect(
      (await hsmErrorOf(async () => providerConfigFromEnv({ HSM_PROVIDER: "yubikey" }))).message,
    ).toContain("is not one of");
    const e = await hsmErrorOf(async () =>
      providerConfigFromEnv({ HSM_PROVIDER: "aws_kms", AWS_REGION: "eu-west-1" }),
    );
    expect(e.code).toBe("HSM_INVALID_CONFIG");
    expect(e.message).toContain("keyId");
    const pin = await hsmErrorOf(async () =>
      providerConfigFromEnv({ HSM_PROVIDER: "pkcs11", PKCS11_PIN: "123456" }),
    );
    expect(pin.message).toContain("PKCS11_PIN_FILE");
    expect(pin.message).not.toContain("123456");
    const url = await hsmErrorOf(async () =>
      parseProviderConfig({ provider: "vault", address: "not a url", tokenFile: "f", keyName: "k" }),
    );
    expect(url.message).toContain("address");
  });

  it("production refuses secrets in environment variables", async () => {
    const env = {
      HSM_PROVIDER: "vault",
      VAULT_ADDR: "https://vault:8200",
      VAULT_TOKEN_FILE: "/t",
      VAULT_KEY_NAME: "k",
      VAULT_TOKEN: "s.secret",
    };
    expect(providerConfigFromEnv(env).provider).toBe("vault");
    const e = await hsmErrorOf(async () => providerConfigFromEnv(env, "signer", { production: true }));
    expect(e.message).toContain("VAULT_TOKEN");
    expect(e.message).not.toContain("s.secret");
  });
});

describe("retries", () => {
  const fast = { attempts: 4, baseDelayMs: 1, maxDelayMs: 2, attemptTimeoutMs: 1000 };

  it("retries retryable errors with bounded attempts and passes others through at once", async () => {
    let calls = 0;
    expect(
      await withRetry(fast, async () => {
        calls++;
        if (calls < 3) throw new HsmError("HSM_THROTTLED", "slow down");
        return "ok";
      }),
    ).toBe("ok");
    expect(calls).toBe(3);
    calls = 0;
    const e = await hsmErrorOf(() =>
      withRetry(fast, async () => {
        calls++;
        throw new HsmError("HSM_BACKEND_ERROR", "500");
      }),
    );
    expect([e.code, calls]).toEqual(["HSM_BACKEND_ERROR", 4]);
    calls = 0;
    await hsmErrorOf(() =>
      withRetry(fast, async () => {
        calls++;
        throw new HsmError("HSM_AUTH_FAILED", "no");
      }),
    );
    expect(calls).toBe(1);
  });
});

describe("secret files", () => {
  it("reads one secret, names the file and setting on error, never the content", async () => {
    const { readSecretFile } = await import("../../src/secretFile.ts");
    const { writeFileSync } = await import("node:fs");
    const { join } = await import("node:path");
    const { tempDir } = await import("../fixtures/local.ts");
    const dir = tempDir();
    const file = (name: string, content: string) => {
      const p = join(dir, name);
      writeFileSync(p, content);
      return p;
    };
    expect(readSecretFile({ path: file("pin", "123456\n"), what: "PIN", variable: "PKCS11_PIN_FILE" })).toBe(
      "123456",
    );
    expect(
      readSecretFile({
        path: file("pass", "open sesame \n"),
        what: "passphrase",
        variable: "X",
        trim: "newline",
      }),
    ).toBe("open sesame ");
    const two = await hsmErrorOf(async () =>
      readSecretFile({ path: file("two", "abc\ndef\n"), what: "PIN", variable: "PKCS11_PIN_FILE" }),
    );
    expect(two.message).toContain("more than one line");
    expect(two.message).not.toContain("abc");
    const empty = await hsmErrorOf(async () =>
      readSecretFile({ path: file("empty", " \n"), what: "token", variable: "VAULT_TOKEN_FILE" }),
    );
    expect(empty.message).toContain("VAULT_TOKEN_FILE");
    const missing = await hsmErrorOf(async () =>
      readSecretFile({ path: join(dir, "nope"), what: "token", variable: "VAULT_TOKEN_FILE" }),
    );
    expect(missing.message).toContain("ENOENT");
    const spaced = await hsmErrorOf(async () =>
      readSecretFile({
        path: file("sp", "s.abc def"),
        what: "token",
        variable: "VAULT_TOKEN_FILE",
        singleToken: true,
      }),
    );
    expect(spaced.message).toContain("exactly one token");
  });
});
