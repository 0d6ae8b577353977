/**
 * The Azure Key Vault provider against the Key Vault + Entra emulator (not Azure): the real
 * `@azure/keyvault-keys` and `@azure/identity` ClientSecretCredential, over HTTPS with the
 * emulator's CA trusted, talking the wire protocol (401 challenge, bearer tokens, error bodies).
 */
import { randomBytes } from "node:crypto";
import { request } from "node:https";
import { ClientSecretCredential } from "@azure/identity";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startAzureKeyVaultEmulator } from "../../emulators/azureKeyVault.ts";
import type { AzureKeyVaultConfig } from "../../src/config.ts";
import { providerConfigFromEnv } from "../../src/config.ts";
import type { HsmError } from "../../src/errors.ts";
import type { KeyWrapper, Signer } from "../../src/interface.ts";
import {
  azureErrorToHsmError,
  createAzureKeyVaultKeyWrapper,
  createAzureKeyVaultSigner,
} from "../../src/providers/azureKeyVault/index.ts";
import { verifySignature } from "../../src/signature.ts";
import { hsmErrorOf, signerCompliance } from "../compliance/signerCompliance.ts";
import { type AzureFixture, startAzureFixture } from "../fixtures/azureKeyVault.ts";

const SIGNING_KEY = "validator-p256";
const WRAP_KEY = "storage-wrap-rsa";

describe("azure-keyvault (emulator) ecdsa-p256", () => {
  signerCompliance(
    async () => {
      const fx = await startAzureFixture();
      const emu = fx.emulator;
      emu.createEcKey(SIGNING_KEY);
      return {
        label: "azure-keyvault (emulator) ecdsa-p256",
        algorithm: "ecdsa-p256",
        signer: () => createAzureKeyVaultSigner(fx.config({ keyName: SIGNING_KEY })),
        badCredentialsSigner: () =>
          createAzureKeyVaultSigner(fx.config({ keyName: SIGNING_KEY }, { wrongSecret: true })),
        missingKeySigner: () => createAzureKeyVaultSigner(fx.config({ keyName: "no-such-key" })),
        stopBackend: () => emu.stop(),
        startBackend: () => emu.start(),
        disableKey: async () => emu.disableKey(SIGNING_KEY),
        enableKey: async () => emu.enableKey(SIGNING_KEY),
        injectFaults: (faults) => emu.injectFaults(faults),
        secrets: () => fx.secrets(),
        close: () => fx.close(),
      };
    },
    { disableKey: true, faults: true },
  );
});

interface RawResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/** A request that bypasses the SDK (and its challenge handling), trusting only the emulator CA. */
function raw(
  fx: AzureFixture,
  method: string,
  path: string,
  headers: Record<string, string> = {},
  body?: string,
): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const req = request(
      `${fx.emulator.vaultUrl}${path}`,
      { method, headers, ca: fx.emulator.caPem },
      (res) => {
        let text = "";
        res.setEncoding("utf8");
        res.on("data", (chunk: string) => {
          text += chunk;
        });
        res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: text }));
      },
    );
    req.on("error", reject);
    req.end(body);
  });
}

async function tokenFor(fx: AzureFixture, secret: string): Promise<RawResponse> {
  const form = new URLSearchParams({
    grant_type: "client_credentials",
    client_id: fx.emulator.clientId,
    client_secret: secret,
    scope: "https://vault.azure.net/.default",
  }).toString();
  return raw(
    fx,
    "POST",
    `/${fx.emulator.tenantId}/oauth2/v2.0/token`,
    { "content-type": "application/x-www-form-urlencoded" },
    form,
  );
}

describe("azure-keyvault (emulator): protocol and error mapping", () => {
  let fx: AzureFixture;
  let signer: Signer;
  const errors: HsmError[] = [];
  const collect = async (f: () => Promise<unknown>) => {
    const e = await hsmErrorOf(f);
    errors.push(e);
    return e;
  };

  beforeAll(async () => {
    fx = await startAzureFixture();
    fx.emulator.createEcKey(SIGNING_KEY);
    signer = await createAzureKeyVaultSigner(fx.config({ keyName: SIGNING_KEY }));
  });
  afterAll(async () => {
    await signer?.close();
    await fx?.close();
  });

  it("the emulator refuses a missing or forged bearer token, and accepts only a token it issued", async () => {
    const path = `/keys/${SIGNING_KEY}?api-version=7.6`;
    const missing = await raw(fx, "GET", path);
    expect(missing.status).toBe(401);
    expect(missing.headers["www-authenticate"]).toBe(
      `Bearer authorization="${fx.emulator.authorityHost}/${fx.emulator.tenantId}", resource="https://vault.azure.net"`,
    );
    expect(JSON.parse(missing.body).error.code).toBe("Unauthorized");

    const forged = await raw(fx, "GET", path, {
      authorization: `Bearer emu.${randomBytes(32).toString("base64url")}`,
    });
    expect(forged.status).toBe(401);
    const sign = await raw(
      fx,
      "POST",
      `/keys/${SIGNING_KEY}//sign?api-version=7.6`,
      { authorization: "Bearer forged", "content-type": "application/json" },
      JSON.stringify({ alg: "ES256", value: randomBytes(32).toString("base64url") }),
    );
    expect(sign.status).toBe(401);

    const refused = await tokenFor(fx, fx.wrongSecret);
    expect(refused.status).toBe(401);
    expect(JSON.parse(refused.body).error).toBe("invalid_client");

    const granted = await tokenFor(fx, fx.emulator.clientSecret);
    expect(granted.status).toBe(200);
    const token = JSON.parse(granted.body).access_token as string;
    const ok = await raw(fx, "GET", path, { authorization: `Bearer ${token}` });
    expect(ok.status).toBe(200);
    expect(JSON.parse(ok.body).key.crv).toBe("P-256");
  });

  it("speaks the Key Vault protocol: bodiless challenge first, then bearer requests with api-version", async () => {
    const before = fx.emulator.requests.length;
    const fresh = await createAzureKeyVaultSigner(fx.config({ keyName: SIGNING_KEY }));
    await fresh.sign(randomBytes(10));
    const seen = fx.emulator.requests.slice(before);
    const dataPlane = seen.filter((r) => r.path.startsWith("/keys/"));
    expect(dataPlane[0]).toMatchObject({ method: "GET", status: 401, hadBearerToken: false });
    expect(
      seen.some((r) => r.method === "POST" && r.path.endsWith("/oauth2/v2.0/token") && r.status === 200),
    ).toBe(true);
    expect(dataPlane.every((r) => r.apiVersion !== null)).toBe(true);
    const version = fresh.keyId.split("/").pop();
    expect(
      dataPlane.some(
        (r) =>
          r.method === "POST" &&
          r.path === `/keys/${SIGNING_KEY}/${version}/sign` &&
          r.status === 200 &&
          r.hadBearerToken,
      ),
    ).toBe(true);
    await fresh.close();
  });

  it("a fresh signer signs concurrently from its first request (concurrent challenge handshakes)", async () => {
    const fresh = await createAzureKeyVaultSigner(fx.config({ keyName: SIGNING_KEY }));
    const publicKey = await fresh.publicKey();
    const msgs = Array.from({ length: 16 }, () => randomBytes(24));
    const sigs = await Promise.all(msgs.map((m) => fresh.sign(m)));
    sigs.forEach((sig, i) => {
      expect(verifySignature("ecdsa-p256", publicKey, msgs[i]!, sig)).toBe(true);
    });
    await fresh.close();
  });

  it("a token the vault no longer accepts: HSM_AUTH_FAILED", async () => {
    const issuedBefore = fx.emulator.issuedTokens().length;
    const s = await createAzureKeyVaultSigner(fx.config({ keyName: SIGNING_KEY }));
    fx.emulator.revokeTokens(fx.emulator.issuedTokens().slice(issuedBefore));
    try {
      const e = await collect(() => s.sign(randomBytes(32)));
      expect(e.code).toBe("HSM_AUTH_FAILED");
      expect(e.message).toContain("401");
    } finally {
      await s.close();
    }
    // A new credential gets a new token: the vault accepts it again.
    const again = await createAzureKeyVaultSigner(fx.config({ keyName: SIGNING_KEY }));
    expect((await again.sign(randomBytes(8))).length).toBe(64);
    await again.close();
  });

  it("refuses keys that are not EC P-256 (no Ed25519 in Key Vault): HSM_UNSUPPORTED_KEY", async () => {
    fx.emulator.createEcKey("validator-p384", "P-384");
    fx.emulator.createRsaKey("validator-rsa");
    fx.emulator.createEcKey("validator-verify-only", "P-256", ["verify"]);
    for (const keyName of ["validator-p384", "validator-rsa", "validator-verify-only"]) {
      const e = await collect(() => createAzureKeyVaultSigner(fx.config({ keyName })));
      expect(e.code, e.message).toBe("HSM_UNSUPPORTED_KEY");
      expect(e.message).toContain(keyName);
    }
  });

  it("permission denied (403 Forbidden): HSM_AUTH_FAILED naming the missing permission", async () => {
    fx.emulator.setPermissions(["get", "verify"]);
    try {
      const e = await collect(() => signer.sign(randomBytes(32)));
      expect(e.code).toBe("HSM_AUTH_FAILED");
      expect(e.message).toContain("permission denied");
      expect(e.message).toContain("keys/sign");
      expect(e.meta.status).toBe(403);
    } finally {
      fx.emulator.setPermissions(["get", "sign", "verify", "wrapKey", "unwrapKey", "encrypt", "decrypt"]);
    }
  });

  it("a slow vault: HSM_TIMEOUT after bounded attempts", async () => {
    const s = await createAzureKeyVaultSigner(
      fx.config({
        keyName: SIGNING_KEY,
        retry: { attempts: 2, baseDelayMs: 5, maxDelayMs: 10, attemptTimeoutMs: 150 },
      }),
    );
    const before = fx.emulator.requests.filter((r) => r.path.endsWith("/sign")).length;
    fx.emulator.injectFaults({ delayMs: 600 });
    try {
      const e = await collect(() => s.sign(randomBytes(32)));
      expect(e.code).toBe("HSM_TIMEOUT");
      expect(e.message).toContain(SIGNING_KEY);
    } finally {
      fx.emulator.injectFaults({ delayMs: 0 });
      await s.close();
    }
    await new Promise((resolve) => setTimeout(resolve, 700));
    const attempts = fx.emulator.requests.filter((r) => r.path.endsWith("/sign")).length - before;
    expect(attempts).toBeLessThanOrEqual(2);
  });

  it("health reports a disabled key and an unreachable vault without throwing", async () => {
    fx.emulator.disableKey(SIGNING_KEY);
    try {
      expect(await signer.health()).toMatchObject({ ok: false, code: "HSM_KEY_DISABLED" });
    } finally {
      fx.emulator.enableKey(SIGNING_KEY);
    }
    await fx.emulator.stop();
    try {
      expect(await signer.health()).toMatchObject({ ok: false, code: "HSM_UNREACHABLE" });
    } finally {
      await fx.emulator.start();
    }
    expect(await signer.health()).toMatchObject({ ok: true });
  });

  it("pins the key version: a rotation does not change what a running signer signs with", async () => {
    const publicKey = await signer.publicKey();
    fx.emulator.createEcKey(SIGNING_KEY);
    const msg = randomBytes(50);
    expect(verifySignature("ecdsa-p256", publicKey, msg, await signer.sign(msg))).toBe(true);
    const rotated = await createAzureKeyVaultSigner(fx.config({ keyName: SIGNING_KEY }));
    expect(rotated.keyId).not.toBe(signer.keyId);
    expect(Buffer.from(await rotated.publicKey()).equals(Buffer.from(publicKey))).toBe(false);
    const pinned = await createAzureKeyVaultSigner(
      fx.config({ keyName: SIGNING_KEY, keyVersion: signer.keyId.split("/").pop()! }),
    );
    expect(pinned.keyId).toBe(signer.keyId);
    expect(Buffer.from(await pinned.publicKey()).equals(Buffer.from(publicKey))).toBe(true);
    await rotated.close();
    await pinned.close();
  });

  it("the documented environment variables give a working signer (credential from the secret file)", async () => {
    const env = {
      HSM_PROVIDER: "azure_keyvault",
      AZURE_KEYVAULT_URL: fx.emulator.vaultUrl,
      AZURE_KEYVAULT_KEY_NAME: SIGNING_KEY,
      AZURE_TENANT_ID: fx.emulator.tenantId,
      AZURE_CLIENT_ID: fx.emulator.clientId,
      AZURE_CLIENT_SECRET_FILE: fx.secretFile,
      AZURE_AUTHORITY_HOST: fx.emulator.authorityHost,
    };
    const config = providerConfigFromEnv(env) as AzureKeyVaultConfig;
    const s = await createAzureKeyVaultSigner(config);
    const msg = randomBytes(40);
    expect(verifySignature("ecdsa-p256", await s.publicKey(), msg, await s.sign(msg))).toBe(true);
    await s.close();
  });

  it("accepts an injected credential (deps.credential)", async () => {
    const credential = new ClientSecretCredential(
      fx.emulator.tenantId,
      fx.emulator.clientId,
      fx.emulator.clientSecret,
      {
        authorityHost: fx.emulator.authorityHost,
        disableInstanceDiscovery: true,
      },
    );
    const { clientSecretFile: _unused, ...config } = fx.config({ keyName: SIGNING_KEY });
    const s = await createAzureKeyVaultSigner(config, { credential });
    expect((await s.sign(randomBytes(16))).length).toBe(64);
    await s.close();
  });

  it("rejects an incomplete or unreadable service principal configuration: HSM_INVALID_CONFIG", async () => {
    const { tenantId: _t, ...noTenant } = fx.config({ keyName: SIGNING_KEY });
    expect((await collect(() => createAzureKeyVaultSigner(noTenant))).code).toBe("HSM_INVALID_CONFIG");
    const e = await collect(() =>
      createAzureKeyVaultSigner(fx.config({ keyName: SIGNING_KEY, clientSecretFile: "/nonexistent/secret" })),
    );
    expect(e.code).toBe("HSM_INVALID_CONFIG");
    expect(e.message).toContain("/nonexistent/secret");
  });

  it("a closed signer refuses to sign: HSM_CLOSED", async () => {
    const s = await createAzureKeyVaultSigner(fx.config({ keyName: SIGNING_KEY }));
    await s.close();
    expect((await hsmErrorOf(() => s.sign(randomBytes(8)))).code).toBe("HSM_CLOSED");
    expect(await s.health()).toMatchObject({ ok: false, code: "HSM_CLOSED" });
  });

  it("credential problems: wrong client id or tenant is HSM_AUTH_FAILED, an unreachable authority HSM_UNREACHABLE", async () => {
    const wrongClient = await collect(() =>
      createAzureKeyVaultSigner(
        fx.config({ keyName: SIGNING_KEY, clientId: "00000000-0000-0000-0000-000000000001" }),
      ),
    );
    expect(wrongClient.code).toBe("HSM_AUTH_FAILED");
    expect(wrongClient.message).toContain("AADSTS700016");
    const otherTenant = await collect(() =>
      createAzureKeyVaultSigner(
        fx.config({ keyName: SIGNING_KEY, tenantId: "00000000-0000-0000-0000-000000000002" }),
      ),
    );
    expect(otherTenant.code).toBe("HSM_AUTH_FAILED");
    expect(otherTenant.message).toContain(fx.emulator.tenantId);
    const gone = await startAzureKeyVaultEmulator();
    await gone.close();
    const unreachable = await collect(() =>
      createAzureKeyVaultSigner(fx.config({ keyName: SIGNING_KEY, authorityHost: gone.authorityHost })),
    );
    expect(unreachable.code).toBe("HSM_UNREACHABLE");
    expect(unreachable.message).toContain("authorityHost");
  });

  it("keeps TLS verification: a vault whose CA is not trusted is refused (HSM_UNREACHABLE)", async () => {
    const untrusted = await startAzureKeyVaultEmulator();
    try {
      untrusted.createEcKey(SIGNING_KEY);
      const e = await collect(() =>
        createAzureKeyVaultSigner({ ...fx.config({ keyName: SIGNING_KEY }), vaultUrl: untrusted.vaultUrl }),
      );
      expect(e.code).toBe("HSM_UNREACHABLE");
      expect(e.message).toContain("NODE_EXTRA_CA_CERTS");
      expect(untrusted.requests.length).toBe(0);
    } finally {
      await untrusted.close();
    }
  });

  it("never puts a secret or a token in an error (message, metadata or cause)", () => {
    expect(errors.length).toBeGreaterThan(0);
    for (const e of errors) {
      const text = `${e.message} ${JSON.stringify(e.meta)} ${String(e.cause)}`;
      for (const secret of fx.secrets()) expect(text).not.toContain(secret);
    }
  });
});

describe("azure-keyvault (emulator) key wrapper, RSA-OAEP-256", () => {
  let fx: AzureFixture;
  let wrapper: KeyWrapper;
  const dataKey = randomBytes(32);
  let blob: Uint8Array;

  beforeAll(async () => {
    fx = await startAzureFixture();
    fx.emulator.createRsaKey(WRAP_KEY);
    wrapper = await createAzureKeyVaultKeyWrapper(fx.config({ keyName: WRAP_KEY }));
    blob = await wrapper.wrap(dataKey);
  });
  afterAll(async () => {
    await wrapper?.close();
    await fx?.close();
  });

  const envelope = () => JSON.parse(Buffer.from(blob).toString("utf8")) as Record<string, unknown>;
  const reencode = (e: Record<string, unknown>) => new TextEncoder().encode(JSON.stringify(e));

  it("round-trips the data key through a self-describing envelope", async () => {
    expect(envelope()).toMatchObject({
      format: "vitalstream-wrapped-key",
      version: 1,
      provider: "azure-keyvault",
      keyId: wrapper.keyId,
      alg: "RSA-OAEP-256",
    });
    expect(wrapper.keyId).toMatch(new RegExp(`/keys/${WRAP_KEY}/[0-9a-f]{32}$`));
    expect(Buffer.from(await wrapper.unwrap(blob)).equals(dataKey)).toBe(true);
    const again = await createAzureKeyVaultKeyWrapper(fx.config({ keyName: WRAP_KEY }));
    expect(Buffer.from(await again.unwrap(blob)).equals(dataKey)).toBe(true);
    await again.close();
  });

  it("tampered ciphertext: HSM_UNWRAP_FAILED", async () => {
    const e = envelope();
    const ct = Buffer.from(String(e.ciphertext), "base64");
    ct[10] = ct[10]! ^ 0x01;
    const err = await hsmErrorOf(() => wrapper.unwrap(reencode({ ...e, ciphertext: ct.toString("base64") })));
    expect(err.code).toBe("HSM_UNWRAP_FAILED");
    expect(err.message).toContain(WRAP_KEY);
  });

  it("garbage or foreign envelopes: HSM_UNWRAP_FAILED saying what is wrong", async () => {
    const cases: Array<[Uint8Array, string]> = [
      [randomBytes(64), "not JSON"],
      [new TextEncoder().encode("[1,2]"), "not a JSON object"],
      [reencode({ ...envelope(), format: "something-else" }), "format"],
      [reencode({ ...envelope(), provider: "aws-kms" }), "aws-kms"],
      [reencode({ ...envelope(), keyId: "https://evil.example/keys/x/0123" }), "wrapped by"],
      [reencode({ ...envelope(), ciphertext: "%%%" }), "base64"],
    ];
    for (const [input, why] of cases) {
      const err = await hsmErrorOf(() => wrapper.unwrap(input));
      expect(err.code).toBe("HSM_UNWRAP_FAILED");
      expect(err.message).toContain(why);
    }
  });

  it("envelopes written before a rotation still unwrap with their own key version", async () => {
    fx.emulator.createRsaKey(WRAP_KEY);
    const rotated = await createAzureKeyVaultKeyWrapper(fx.config({ keyName: WRAP_KEY }));
    expect(rotated.keyId).not.toBe(wrapper.keyId);
    expect(Buffer.from(await rotated.unwrap(blob)).equals(dataKey)).toBe(true);
    const newBlob = await rotated.wrap(dataKey);
    expect(Buffer.from(await wrapper.unwrap(newBlob)).equals(dataKey)).toBe(true);
    await rotated.close();
  });

  it("a disabled wrapping key cannot unwrap: HSM_KEY_DISABLED", async () => {
    const version = wrapper.keyId.split("/").pop()!;
    fx.emulator.disableKey(WRAP_KEY, version);
    try {
      expect((await hsmErrorOf(() => wrapper.unwrap(blob))).code).toBe("HSM_KEY_DISABLED");
    } finally {
      fx.emulator.enableKey(WRAP_KEY, version);
    }
  });

  it("refuses a non-RSA key, wrong credentials and a missing key", async () => {
    fx.emulator.createEcKey("not-rsa");
    const cases: Array<[AzureKeyVaultConfig, string]> = [
      [fx.config({ keyName: "not-rsa" }), "HSM_UNSUPPORTED_KEY"],
      [fx.config({ keyName: WRAP_KEY }, { wrongSecret: true }), "HSM_AUTH_FAILED"],
      [fx.config({ keyName: "no-such-wrap-key" }), "HSM_KEY_NOT_FOUND"],
    ];
    for (const [config, code] of cases) {
      const err = await hsmErrorOf(() => createAzureKeyVaultKeyWrapper(config));
      expect(err.code, err.message).toBe(code);
      for (const secret of fx.secrets()) expect(err.message).not.toContain(secret);
    }
  });
});

describe("azure-keyvault error mapping (SDK error shapes, no backend)", () => {
  const ctx = {
    keyId: "https://v.vault.azure.net/keys/k/1",
    operation: "sign" as const,
    attemptTimeoutMs: 100,
    redact: ["s3cr3t-value"],
  };
  const rest = (statusCode: number | undefined, message: string, code?: string, inner?: string) =>
    Object.assign(new Error(message), {
      name: "RestError",
      statusCode,
      code,
      details: { error: { code, message, innerError: inner ? { code: inner } : undefined } },
    });

  it("maps statuses, service codes and transport failures to HsmError codes", () => {
    const cases: Array<[unknown, string]> = [
      [rest(401, "AKV10000: Request is missing a Bearer or PoP token.", "Unauthorized"), "HSM_AUTH_FAILED"],
      [rest(403, "Caller is not authorized", "Forbidden", "ForbiddenByRbac"), "HSM_AUTH_FAILED"],
      [
        rest(403, "Operation sign is not allowed on a disabled key.", "Forbidden", "KeyDisabled"),
        "HSM_KEY_DISABLED",
      ],
      [rest(400, "Operation sign is not allowed on a disabled key.", "BadParameter"), "HSM_KEY_DISABLED"],
      [
        rest(404, "A key with (name/id) k was not found in this key vault.", "KeyNotFound"),
        "HSM_KEY_NOT_FOUND",
      ],
      [rest(429, "Too many requests", "Throttled"), "HSM_THROTTLED"],
      [rest(503, "Service unavailable", "ServiceUnavailable"), "HSM_BACKEND_ERROR"],
      [rest(400, "Invalid digest", "BadParameter"), "HSM_BAD_RESPONSE"],
      [rest(undefined, "connect ECONNREFUSED 10.0.0.1:443", "ECONNREFUSED"), "HSM_UNREACHABLE"],
      [rest(undefined, "socket hang up", "ECONNRESET"), "HSM_UNREACHABLE"],
      [Object.assign(new Error("The operation was aborted."), { name: "AbortError" }), "HSM_TIMEOUT"],
      [
        Object.assign(new Error("invalid_client: AADSTS7000215: Invalid client secret provided."), {
          name: "AuthenticationRequiredError",
        }),
        "HSM_AUTH_FAILED",
      ],
      [Object.assign(new Error("no credential"), { name: "CredentialUnavailableError" }), "HSM_AUTH_FAILED"],
      [new Error("Operation sign is not supported on key https://v/keys/k/1"), "HSM_UNSUPPORTED_KEY"],
    ];
    for (const [error, code] of cases) {
      const mapped = azureErrorToHsmError(error, ctx);
      expect(mapped.code, mapped.message).toBe(code);
      expect(mapped.message).toContain(ctx.keyId);
      expect(mapped.meta).toMatchObject({ provider: "azure-keyvault", keyId: ctx.keyId });
    }
  });

  it("an aborted attempt is a timeout whatever the SDK threw", () => {
    const controller = new AbortController();
    controller.abort();
    expect(
      azureErrorToHsmError(rest(undefined, "anything", "ECONNRESET"), { ...ctx, signal: controller.signal })
        .code,
    ).toBe("HSM_TIMEOUT");
  });

  it("scrubs secrets and bearer tokens, and keeps the SDK error (with its headers) out of the cause", () => {
    const leaky = Object.assign(
      rest(500, "echo: client_secret=s3cr3t-value Authorization: Bearer eyJ0eXAi.abc.def", "InternalError"),
      {
        request: { headers: { authorization: "Bearer eyJ0eXAi.abc.def" } },
      },
    );
    const mapped = azureErrorToHsmError(leaky, ctx);
    const text = `${mapped.message} ${JSON.stringify(mapped.meta)} ${String(mapped.cause)} ${JSON.stringify(mapped.cause)}`;
    expect(text).not.toContain("s3cr3t-value");
    expect(text).not.toContain("eyJ0eXAi");
    expect(mapped.cause).not.toBe(leaky);
  });
});
