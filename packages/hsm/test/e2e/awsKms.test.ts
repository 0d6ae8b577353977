/**
 * The AWS KMS provider against the AWS KMS emulator (a loopback server speaking the KMS wire
 * protocol with real SigV4 checks; not AWS itself): the shared Signer compliance suite for both key
 * specs, then what is particular to KMS, the emulator's own authentication, and the key wrapper.
 */
import { randomBytes, randomUUID } from "node:crypto";
import { DecryptCommand, EncryptCommand, KMSClient, SignCommand } from "@aws-sdk/client-kms";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { type AwsKmsEmulator, startAwsKmsEmulator } from "../../emulators/awsKms.ts";
import {
  createAwsKmsKeyWrapper,
  createAwsKmsSigner,
  STORAGE_KEY_ENCRYPTION_CONTEXT,
} from "../../src/providers/awsKms/index.ts";
import { P256_ORDER, verifySignature } from "../../src/signature.ts";
import { hsmErrorOf, signerCompliance } from "../compliance/signerCompliance.ts";
import { awsKmsComplianceTarget, kmsConfig, wrongSecret } from "../fixtures/awsKms.ts";
import { rawKmsCall } from "../fixtures/awsKmsRaw.ts";

describe("aws-kms (emulator) ed25519", () => {
  signerCompliance(() => awsKmsComplianceTarget("ECC_NIST_EDWARDS25519"), { disableKey: true, faults: true });
});

describe("aws-kms (emulator) ecdsa-p256", () => {
  signerCompliance(() => awsKmsComplianceTarget("ECC_NIST_P256"), { disableKey: true, faults: true });
});

let emulator: AwsKmsEmulator;
beforeAll(async () => {
  emulator = await startAwsKmsEmulator({ withSessionToken: true });
});
afterAll(() => emulator.close());
afterEach(async () => {
  emulator.injectFaults({ throttle: 0, serverErrors: 0, delayMs: 0 });
  await emulator.idle(); // requests of a timed-out attempt must not leak into the next test
});

const creds = () => ({ credentials: emulator.credentials });
const secrets = () => [emulator.credentials.secretAccessKey, emulator.credentials.sessionToken!];
const signCalls = () => emulator.requests().filter((r) => r.operation === "Sign");

function expectNoSecret(text: string): void {
  for (const s of secrets()) expect(text).not.toContain(s);
}

describe("aws-kms (emulator) signer specifics", () => {
  it("refuses Ed25519 messages over 4096 bytes (the KMS RAW limit) before calling KMS, and signs 4096", async () => {
    const key = emulator.createKey("ECC_NIST_EDWARDS25519");
    const signer = await createAwsKmsSigner(kmsConfig(emulator, key.keyId), creds());
    emulator.clearRequests();
    const e = await hsmErrorOf(() => signer.sign(randomBytes(4097)));
    expect(e.code).toBe("HSM_UNSUPPORTED_KEY");
    expect(e.message).toContain("4096");
    expect(e.message).toContain(key.keyId);
    expect(e.meta).toMatchObject({ provider: "aws-kms", reason: "message-size", bytes: 4097 });
    expect(signCalls()).toHaveLength(0);
    const msg = randomBytes(4096);
    expect(verifySignature("ed25519", await signer.publicKey(), msg, await signer.sign(msg))).toBe(true);
    await signer.close();
  });

  it("signs P-256 messages of any size (it sends the SHA-256 digest)", async () => {
    const key = emulator.createKey("ECC_NIST_P256");
    const signer = await createAwsKmsSigner(kmsConfig(emulator, key.arn), creds());
    const msg = randomBytes(10_000);
    expect(verifySignature("ecdsa-p256", await signer.publicKey(), msg, await signer.sign(msg))).toBe(true);
    await signer.close();
  });

  it("normalises KMS's DER ECDSA signatures, about half of which are high-S", async () => {
    const key = emulator.createKey("ECC_NIST_P256");
    const client = new KMSClient({
      region: emulator.region,
      endpoint: emulator.endpoint,
      credentials: emulator.credentials,
    });
    let highS = 0;
    for (let i = 0; i < 40; i++) {
      const out = await client.send(
        new SignCommand({
          KeyId: key.keyId,
          Message: randomBytes(32),
          MessageType: "DIGEST",
          SigningAlgorithm: "ECDSA_SHA_256",
        }),
      );
      expect(out.Signature![0]).toBe(0x30); // DER, as KMS returns it
      const der = Buffer.from(out.Signature!);
      const rLen = der[3]!;
      const s = BigInt(`0x${der.subarray(6 + rLen).toString("hex")}`);
      if (s > P256_ORDER >> 1n) highS++;
    }
    client.destroy();
    expect(highS).toBeGreaterThan(0);
  });

  it("addresses the key by its ARN once resolved: an alias that moves does not change the signing key", async () => {
    const first = emulator.createKey("ECC_NIST_EDWARDS25519");
    const second = emulator.createKey("ECC_NIST_EDWARDS25519");
    emulator.setAlias("alias/validator-1", first.keyId);
    const signer = await createAwsKmsSigner(kmsConfig(emulator, "alias/validator-1"), creds());
    expect(signer.keyId).toBe("alias/validator-1");
    const pub = await signer.publicKey();
    emulator.setAlias("alias/validator-1", second.keyId);
    const msg = randomBytes(64);
    expect(verifySignature("ed25519", pub, msg, await signer.sign(msg))).toBe(true);
    expect((await signer.health()).ok).toBe(true);
    await signer.close();
  });

  it("unknown access key id: HSM_AUTH_FAILED, naming the key and what to check", async () => {
    const key = emulator.createKey("ECC_NIST_EDWARDS25519");
    const e = await hsmErrorOf(() =>
      createAwsKmsSigner(kmsConfig(emulator, key.keyId), {
        credentials: {
          accessKeyId: "AKIAUNKNOWNUNKNOWN00",
          secretAccessKey: emulator.credentials.secretAccessKey,
        },
      }),
    );
    expect(e.code).toBe("HSM_AUTH_FAILED");
    expect(e.meta.awsError).toBe("UnrecognizedClientException");
    expect(e.message).toContain(key.keyId);
    expect(e.message).toMatch(/access key/);
    expectNoSecret(`${e.message} ${JSON.stringify(e.meta)}`);
  });

  it("wrong secret or session token: HSM_AUTH_FAILED without the secrets in the error", async () => {
    const key = emulator.createKey("ECC_NIST_P256");
    const c = emulator.credentials;
    for (const bad of [
      { ...c, secretAccessKey: wrongSecret(c.secretAccessKey) },
      { ...c, sessionToken: wrongSecret(c.sessionToken!) },
    ]) {
      const e = await hsmErrorOf(() =>
        createAwsKmsSigner(kmsConfig(emulator, key.keyId), { credentials: bad }),
      );
      expect(e.code).toBe("HSM_AUTH_FAILED");
      expect(["InvalidSignatureException", "UnrecognizedClientException"]).toContain(e.meta.awsError);
      expectNoSecret(`${e.message} ${JSON.stringify(e.meta)}`);
      expect(`${e.message} ${JSON.stringify(e.meta)}`).not.toContain(bad.secretAccessKey);
      expect(`${e.message} ${JSON.stringify(e.meta)}`).not.toContain(bad.sessionToken);
    }
  });

  it("gives up after exactly the configured attempts (the SDK's own retries are off)", async () => {
    const key = emulator.createKey("ECC_NIST_EDWARDS25519");
    const signer = await createAwsKmsSigner(kmsConfig(emulator, key.keyId, { attempts: 3 }), creds());
    emulator.clearRequests();
    emulator.injectFaults({ serverErrors: 100 });
    const e = await hsmErrorOf(() => signer.sign(randomBytes(32)));
    expect(e.code).toBe("HSM_BACKEND_ERROR");
    expect(e.meta).toMatchObject({ status: 500, awsError: "KMSInternalException" });
    expect(signCalls()).toHaveLength(3);

    emulator.injectFaults({ serverErrors: 0, throttle: 2 });
    emulator.clearRequests();
    await signer.sign(randomBytes(32));
    expect(signCalls().map((r) => r.errorType ?? r.status)).toEqual([
      "ThrottlingException",
      "ThrottlingException",
      200,
    ]);

    emulator.injectFaults({ throttle: 100 });
    expect((await hsmErrorOf(() => signer.sign(randomBytes(32)))).code).toBe("HSM_THROTTLED");
    await signer.close();
  });

  it("a KMS slower than the attempt deadline: HSM_TIMEOUT", async () => {
    const key = emulator.createKey("ECC_NIST_EDWARDS25519");
    const signer = await createAwsKmsSigner(
      kmsConfig(emulator, key.keyId, { attempts: 2, attemptTimeoutMs: 100 }),
      creds(),
    );
    emulator.injectFaults({ delayMs: 400 });
    const started = Date.now();
    const e = await hsmErrorOf(() => signer.sign(randomBytes(32)));
    expect(e.code).toBe("HSM_TIMEOUT");
    expect(e.message).toContain("100 ms");
    expect(Date.now() - started).toBeLessThan(1500);
    const h = await signer.health();
    expect(h).toMatchObject({ ok: false, code: "HSM_TIMEOUT" });
    emulator.injectFaults({ delayMs: 0 });
    expect((await signer.sign(randomBytes(32))).length).toBe(64);
    await signer.close();
  });

  it("a key pending deletion: HSM_KEY_DISABLED, and unhealthy", async () => {
    const key = emulator.createKey("ECC_NIST_P256");
    const signer = await createAwsKmsSigner(kmsConfig(emulator, key.keyId), creds());
    emulator.scheduleKeyDeletion(key.keyId);
    const e = await hsmErrorOf(() => signer.sign(randomBytes(32)));
    expect(e.code).toBe("HSM_KEY_DISABLED");
    expect(e.meta.awsError).toBe("KMSInvalidStateException");
    expect(await signer.health()).toMatchObject({ ok: false, code: "HSM_KEY_DISABLED" });
    expect((await hsmErrorOf(() => createAwsKmsSigner(kmsConfig(emulator, key.keyId), creds()))).code).toBe(
      "HSM_KEY_DISABLED",
    );
    await signer.close();
  });

  it("a symmetric key, or a key id that is not a key: clear errors at creation", async () => {
    const symmetric = emulator.createKey("SYMMETRIC_DEFAULT");
    expect(
      (await hsmErrorOf(() => createAwsKmsSigner(kmsConfig(emulator, symmetric.keyId), creds()))).code,
    ).toBe("HSM_UNSUPPORTED_KEY");
    for (const keyId of [
      "alias/nope",
      "not-a-key",
      `arn:aws:kms:${emulator.region}:${emulator.accountId}:key/${randomUUID()}`,
    ]) {
      const e = await hsmErrorOf(() => createAwsKmsSigner(kmsConfig(emulator, keyId), creds()));
      expect(e.code).toBe("HSM_KEY_NOT_FOUND");
      expect(e.message).toContain(keyId);
      expect(e.message).toContain("AWS_KMS_KEY_ID");
    }
  });

  it("health is a GetPublicKey round trip and never signs", async () => {
    const key = emulator.createKey("ECC_NIST_EDWARDS25519");
    const signer = await createAwsKmsSigner(kmsConfig(emulator, key.keyId), creds());
    emulator.clearRequests();
    const h = await signer.health();
    expect(h).toMatchObject({ ok: true, provider: "aws-kms", keyId: key.keyId });
    const ops = emulator.requests().map((r) => r.operation);
    expect(ops.length).toBeGreaterThan(0); // a loaded machine may retry; it must never sign
    expect(ops.every((op) => op === "GetPublicKey")).toBe(true);
    await signer.close();
    expect(await signer.health()).toMatchObject({ ok: false, code: "HSM_CLOSED" });
    expect((await hsmErrorOf(() => signer.sign(randomBytes(8)))).code).toBe("HSM_CLOSED");
  });

  it("an endpoint where nothing listens: HSM_UNREACHABLE naming the endpoint", async () => {
    const down = await startAwsKmsEmulator();
    const key = down.createKey("ECC_NIST_EDWARDS25519");
    await down.close();
    const e = await hsmErrorOf(() =>
      createAwsKmsSigner(kmsConfig(down, key.keyId), { credentials: down.credentials }),
    );
    expect(e.code).toBe("HSM_UNREACHABLE");
    expect(e.message).toContain(down.endpoint);
    expect(e.meta.errno).toBe("ECONNREFUSED");
  });
});

describe("AWS KMS emulator: SigV4 is verified, not assumed", () => {
  const describeKey = (keyId: string) => ({ KeyId: keyId });

  it("accepts a correctly signed request", async () => {
    const key = emulator.createKey("SYMMETRIC_DEFAULT");
    const res = await rawKmsCall(emulator, "DescribeKey", describeKey(key.keyId));
    expect(res.status).toBe(200);
    expect(res.headers["content-type"]).toBe("application/x-amz-json-1.1");
    expect(res.json.KeyMetadata).toMatchObject({
      Arn: key.arn,
      KeyState: "Enabled",
      KeySpec: "SYMMETRIC_DEFAULT",
    });
  });

  it("rejects a request whose signature is wrong by one hex digit", async () => {
    const key = emulator.createKey("SYMMETRIC_DEFAULT");
    const res = await rawKmsCall(emulator, "DescribeKey", describeKey(key.keyId), {
      tamper: (r) => {
        r.headers.authorization = r.headers.authorization!.replace(
          /Signature=(.)/,
          (_, c: string) => `Signature=${c === "0" ? "1" : "0"}`,
        );
      },
    });
    expect(res.status).toBe(400);
    expect(res.headers["x-amzn-requestid"]).toBeDefined();
    expect(res.json).toEqual({
      __type: "InvalidSignatureException",
      message: expect.stringContaining("The request signature we calculated does not match"),
    });
  });

  it("rejects a signed request whose body, target or date was changed afterwards", async () => {
    const key = emulator.createKey("SYMMETRIC_DEFAULT");
    const other = emulator.createKey("SYMMETRIC_DEFAULT");
    const tampers = [
      (r: { headers: Record<string, string>; body: string }) => {
        r.body = r.body.replace(key.keyId, other.keyId);
      },
      (r: { headers: Record<string, string>; body: string }) => {
        r.headers["x-amz-target"] = "TrentService.DisableKey";
      },
      (r: { headers: Record<string, string>; body: string }) => {
        const date = r.headers["x-amz-date"]!;
        const seconds = (Number(date.slice(13, 15)) + 1) % 60;
        r.headers["x-amz-date"] = `${date.slice(0, 13)}${String(seconds).padStart(2, "0")}Z`;
      },
    ];
    for (const tamper of tampers) {
      const res = await rawKmsCall(emulator, "DescribeKey", describeKey(key.keyId), { tamper });
      expect(res.status).toBe(400);
      expect(res.json.__type).toBe("InvalidSignatureException");
    }
    expect(
      (await rawKmsCall(emulator, "DescribeKey", describeKey(key.keyId))).json.KeyMetadata,
    ).toMatchObject({ KeyState: "Enabled" });
  });

  it("answers unknown access keys, wrong tokens, missing and stale signatures as KMS does", async () => {
    const key = emulator.createKey("SYMMETRIC_DEFAULT");
    const c = emulator.credentials;
    const cases = [
      {
        opts: { credentials: { ...c, accessKeyId: "AKIAIOSFODNN7EXAMPLE" } },
        type: "UnrecognizedClientException",
      },
      { opts: { credentials: { ...c, sessionToken: "not-the-token" } }, type: "UnrecognizedClientException" },
      {
        opts: { credentials: { ...c, secretAccessKey: wrongSecret(c.secretAccessKey) } },
        type: "InvalidSignatureException",
      },
      { opts: { unsigned: true }, type: "MissingAuthenticationTokenException" },
      {
        opts: { signingDate: new Date(Date.now() - 10 * 60_000) },
        type: "InvalidSignatureException",
        message: /Signature expired/,
      },
      { opts: { region: "eu-west-1" }, type: "InvalidSignatureException", message: /region/ },
    ];
    for (const { opts, type, message } of cases) {
      const res = await rawKmsCall(emulator, "DescribeKey", describeKey(key.keyId), opts);
      expect(res.status, type).toBe(400);
      expect(res.json.__type).toBe(type);
      if (message) expect(String(res.json.message)).toMatch(message);
    }
  });

  it("answers KMS errors with their wire shapes and statuses", async () => {
    const res = await rawKmsCall(emulator, "DescribeKey", describeKey(randomUUID()));
    expect(res.status).toBe(400);
    expect(res.json).toEqual({
      __type: "NotFoundException",
      message: expect.stringMatching(/^Key 'arn:aws:kms:.*' does not exist$/),
    });
    emulator.injectFaults({ serverErrors: 1 });
    const internal = await rawKmsCall(emulator, "DescribeKey", describeKey(randomUUID()));
    expect(internal.status).toBe(500);
    expect(internal.json.__type).toBe("KMSInternalException");
    emulator.injectFaults({ throttle: 1 });
    const throttled = await rawKmsCall(emulator, "DescribeKey", describeKey(randomUUID()));
    expect([throttled.status, throttled.json.__type]).toEqual([400, "ThrottlingException"]);
    const created = await rawKmsCall(emulator, "CreateKey", {
      KeySpec: "ECC_NIST_P256",
      KeyUsage: "SIGN_VERIFY",
    });
    expect(created.json.KeyMetadata).toMatchObject({
      KeySpec: "ECC_NIST_P256",
      SigningAlgorithms: ["ECDSA_SHA_256"],
    });
  });
});

describe("aws-kms (emulator) key wrapper", () => {
  it("wraps into a JSON envelope and unwraps it", async () => {
    const key = emulator.createKey("SYMMETRIC_DEFAULT");
    const wrapper = await createAwsKmsKeyWrapper(kmsConfig(emulator, key.keyId), creds());
    expect(wrapper).toMatchObject({ provider: "aws-kms", keyId: key.keyId });
    const dataKey = randomBytes(32);
    const blob = await wrapper.wrap(dataKey);
    const envelope = JSON.parse(new TextDecoder().decode(blob));
    expect(envelope).toMatchObject({
      format: "vitalstream-wrapped-key",
      version: 1,
      provider: "aws-kms",
      keyId: key.arn,
    });
    expect(Buffer.from(envelope.ciphertext, "base64").includes(dataKey)).toBe(false);
    expect(Buffer.from(await wrapper.unwrap(blob))).toEqual(dataKey);
    expect(Buffer.from(await wrapper.wrap(dataKey))).not.toEqual(Buffer.from(blob));
    const many = await Promise.all(
      Array.from({ length: 20 }, () => randomBytes(32)).map(async (k) => [
        k,
        await wrapper.unwrap(await wrapper.wrap(k)),
      ]),
    );
    for (const [a, b] of many) expect(Buffer.from(b!)).toEqual(a);
    await wrapper.close();
  });

  it("tampered ciphertext: HSM_UNWRAP_FAILED", async () => {
    const key = emulator.createKey("SYMMETRIC_DEFAULT");
    const wrapper = await createAwsKmsKeyWrapper(kmsConfig(emulator, key.keyId), creds());
    const envelope = JSON.parse(new TextDecoder().decode(await wrapper.wrap(randomBytes(32))));
    const ct = Buffer.from(envelope.ciphertext, "base64");
    ct[ct.length - 1]! ^= 1;
    envelope.ciphertext = ct.toString("base64");
    const e = await hsmErrorOf(() => wrapper.unwrap(new TextEncoder().encode(JSON.stringify(envelope))));
    expect(e.code).toBe("HSM_UNWRAP_FAILED");
    expect(e.meta.awsError).toBe("InvalidCiphertextException");
    await wrapper.close();
  });

  it("garbage envelopes: HSM_UNWRAP_FAILED with a named reason, before any KMS call", async () => {
    const key = emulator.createKey("SYMMETRIC_DEFAULT");
    const wrapper = await createAwsKmsKeyWrapper(kmsConfig(emulator, key.keyId), creds());
    const good = JSON.parse(new TextDecoder().decode(await wrapper.wrap(randomBytes(32))));
    const enc = (v: unknown) => new TextEncoder().encode(JSON.stringify(v));
    const cases: [Uint8Array, string][] = [
      [randomBytes(48), "not-json"],
      [new TextEncoder().encode("{not json"), "not-json"],
      [enc([1, 2]), "not-an-envelope"],
      [enc({ ...good, format: "something-else" }), "wrong-format"],
      [enc({ ...good, version: 2 }), "unsupported-version"],
      [enc({ ...good, provider: "vault" }), "wrong-provider"],
      [enc({ ...good, keyId: undefined }), "missing-key-id"],
      [enc({ ...good, ciphertext: "%%% not base64 %%%" }), "bad-ciphertext"],
      [enc({ ...good, ciphertext: undefined }), "bad-ciphertext"],
    ];
    emulator.clearRequests();
    for (const [blob, reason] of cases) {
      const e = await hsmErrorOf(() => wrapper.unwrap(blob));
      expect(e.code, reason).toBe("HSM_UNWRAP_FAILED");
      expect(e.meta.reason).toBe(reason);
      expect(e.message).toContain("not a usable wrapped key");
    }
    expect(emulator.requests()).toHaveLength(0);
    await wrapper.close();
  });

  it("a blob made under another encryption context: HSM_UNWRAP_FAILED", async () => {
    const key = emulator.createKey("SYMMETRIC_DEFAULT");
    const wrapper = await createAwsKmsKeyWrapper(kmsConfig(emulator, key.keyId), creds());
    const client = new KMSClient({
      region: emulator.region,
      endpoint: emulator.endpoint,
      credentials: emulator.credentials,
    });
    const dataKey = randomBytes(32);
    const other = await client.send(
      new EncryptCommand({
        KeyId: key.keyId,
        Plaintext: dataKey,
        EncryptionContext: { purpose: "something-else" },
      }),
    );
    const right = await client.send(
      new EncryptCommand({
        KeyId: key.keyId,
        Plaintext: dataKey,
        EncryptionContext: { ...STORAGE_KEY_ENCRYPTION_CONTEXT },
      }),
    );
    const envelope = (ct: Uint8Array) =>
      new TextEncoder().encode(
        JSON.stringify({
          format: "vitalstream-wrapped-key",
          version: 1,
          provider: "aws-kms",
          keyId: key.arn,
          ciphertext: Buffer.from(ct).toString("base64"),
        }),
      );
    const e = await hsmErrorOf(() => wrapper.unwrap(envelope(other.CiphertextBlob!)));
    expect(e.code).toBe("HSM_UNWRAP_FAILED");
    expect(Buffer.from(await wrapper.unwrap(envelope(right.CiphertextBlob!)))).toEqual(dataKey);
    // And the emulator itself insists on the context, as KMS does.
    await expect(
      client.send(new DecryptCommand({ CiphertextBlob: right.CiphertextBlob! })),
    ).rejects.toMatchObject({ name: "InvalidCiphertextException" });
    client.destroy();
    await wrapper.close();
  });

  it("a blob wrapped with another key: HSM_UNWRAP_FAILED naming both keys", async () => {
    const a = emulator.createKey("SYMMETRIC_DEFAULT");
    const b = emulator.createKey("SYMMETRIC_DEFAULT");
    const wrapperA = await createAwsKmsKeyWrapper(kmsConfig(emulator, a.keyId), creds());
    const wrapperB = await createAwsKmsKeyWrapper(kmsConfig(emulator, b.keyId), creds());
    const blob = await wrapperA.wrap(randomBytes(32));
    const e = await hsmErrorOf(() => wrapperB.unwrap(blob));
    expect(e.code).toBe("HSM_UNWRAP_FAILED");
    expect(e.meta.awsError).toBe("IncorrectKeyException");
    expect(e.message).toContain(a.arn);
    expect(e.message).toContain(b.keyId);
    expect(e.message).toContain("AWS_KMS_WRAP_KEY_ID");
    await wrapperA.close();
    await wrapperB.close();
  });

  it("refuses unusable keys at creation, and a disabled key at unwrap", async () => {
    const signing = emulator.createKey("ECC_NIST_EDWARDS25519");
    expect(
      (await hsmErrorOf(() => createAwsKmsKeyWrapper(kmsConfig(emulator, signing.keyId), creds()))).code,
    ).toBe("HSM_UNSUPPORTED_KEY");
    expect(
      (await hsmErrorOf(() => createAwsKmsKeyWrapper(kmsConfig(emulator, randomUUID()), creds()))).code,
    ).toBe("HSM_KEY_NOT_FOUND");
    const key = emulator.createKey("SYMMETRIC_DEFAULT");
    const bad = {
      credentials: {
        ...emulator.credentials,
        secretAccessKey: wrongSecret(emulator.credentials.secretAccessKey),
      },
    };
    const auth = await hsmErrorOf(() => createAwsKmsKeyWrapper(kmsConfig(emulator, key.keyId), bad));
    expect(auth.code).toBe("HSM_AUTH_FAILED");
    expectNoSecret(`${auth.message} ${JSON.stringify(auth.meta)}`);
    const wrapper = await createAwsKmsKeyWrapper(kmsConfig(emulator, key.keyId), creds());
    const blob = await wrapper.wrap(randomBytes(32));
    emulator.disableKey(key.keyId);
    expect((await hsmErrorOf(() => wrapper.unwrap(blob))).code).toBe("HSM_KEY_DISABLED");
    expect(
      (await hsmErrorOf(() => createAwsKmsKeyWrapper(kmsConfig(emulator, key.keyId), creds()))).code,
    ).toBe("HSM_KEY_DISABLED");
    emulator.enableKey(key.keyId);
    expect((await wrapper.unwrap(blob)).length).toBe(32);
    expect((await hsmErrorOf(() => wrapper.wrap(new Uint8Array(0)))).code).toBe("HSM_UNSUPPORTED_KEY");
    await wrapper.close();
    expect((await hsmErrorOf(() => wrapper.unwrap(blob))).code).toBe("HSM_CLOSED");
  });
});
