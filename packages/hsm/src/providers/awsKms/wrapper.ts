/**
 * Wraps the node's storage data key with a symmetric KMS key (Encrypt / Decrypt, SYMMETRIC_DEFAULT)
 * under a fixed encryption context, and stores the ciphertext in a self-describing JSON envelope.
 * Decrypt always names the configured key, so a blob wrapped under any other key is refused.
 */
import { DecryptCommand, DescribeKeyCommand, EncryptCommand } from "@aws-sdk/client-kms";
import type { AwsKmsConfig } from "../../config.ts";
import type { HsmErrorMeta } from "../../errors.ts";
import { HsmError } from "../../errors.ts";
import type { KeyWrapper, WrappedKeyEnvelope } from "../../interface.ts";
import { type AwsKmsDeps, KmsConnection } from "./client.ts";
import { kmsHsmError, PROVIDER } from "./errors.ts";

/** Bound into every ciphertext: a blob made for another purpose does not decrypt here. */
export const STORAGE_KEY_ENCRYPTION_CONTEXT: Readonly<Record<string, string>> = Object.freeze({
  purpose: "vitalstream-storage-key",
});

export const ENVELOPE_FORMAT = "vitalstream-wrapped-key";
const ENCRYPTION_ALGORITHM = "SYMMETRIC_DEFAULT";
/** KMS Encrypt takes at most this many plaintext bytes. */
const KMS_MAX_PLAINTEXT_BYTES = 4096;

export interface AwsKmsWrappedKeyEnvelope extends WrappedKeyEnvelope {
  provider: "aws-kms";
  /** ARN of the key that encrypted the data key. */
  keyId: string;
  encryptionAlgorithm: typeof ENCRYPTION_ALGORITHM;
  /** The KMS ciphertext blob, base64. */
  ciphertext: string;
}

const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

class AwsKmsKeyWrapper implements KeyWrapper {
  readonly provider = PROVIDER;
  readonly keyId: string;
  private readonly kms: KmsConnection;

  constructor(kms: KmsConnection) {
    this.kms = kms;
    this.keyId = kms.config.keyId;
  }

  async wrap(dataKey: Uint8Array): Promise<Uint8Array> {
    this.kms.assertOpen();
    if (dataKey.length === 0 || dataKey.length > KMS_MAX_PLAINTEXT_BYTES) {
      throw kmsHsmError(
        "HSM_UNSUPPORTED_KEY",
        this.kms.context("Encrypt"),
        `KMS wraps 1 to ${KMS_MAX_PLAINTEXT_BYTES} bytes, got ${dataKey.length}`,
        { reason: "plaintext-size" },
      );
    }
    const out = await this.kms.call("Encrypt", (client, abortSignal) =>
      client.send(
        new EncryptCommand({
          KeyId: this.kms.target,
          Plaintext: dataKey,
          EncryptionContext: { ...STORAGE_KEY_ENCRYPTION_CONTEXT },
          EncryptionAlgorithm: ENCRYPTION_ALGORITHM,
        }),
        { abortSignal },
      ),
    );
    if (out.CiphertextBlob === undefined || out.CiphertextBlob.length === 0) {
      throw kmsHsmError("HSM_BAD_RESPONSE", this.kms.context("Encrypt"), "KMS returned no ciphertext");
    }
    const envelope: AwsKmsWrappedKeyEnvelope = {
      format: ENVELOPE_FORMAT,
      version: 1,
      provider: PROVIDER,
      keyId: out.KeyId ?? this.kms.target,
      encryptionAlgorithm: ENCRYPTION_ALGORITHM,
      ciphertext: Buffer.from(out.CiphertextBlob).toString("base64"),
    };
    return new TextEncoder().encode(JSON.stringify(envelope));
  }

  async unwrap(blob: Uint8Array): Promise<Uint8Array> {
    this.kms.assertOpen();
    const envelope = this.parseEnvelope(blob);
    try {
      const out = await this.kms.call("Decrypt", (client, abortSignal) =>
        client.send(
          new DecryptCommand({
            KeyId: this.kms.target,
            CiphertextBlob: Buffer.from(envelope.ciphertext, "base64"),
            EncryptionContext: { ...STORAGE_KEY_ENCRYPTION_CONTEXT },
            EncryptionAlgorithm: ENCRYPTION_ALGORITHM,
          }),
          { abortSignal },
        ),
      );
      if (out.Plaintext === undefined)
        throw kmsHsmError("HSM_BAD_RESPONSE", this.kms.context("Decrypt"), "KMS returned no plaintext");
      return Uint8Array.from(out.Plaintext);
    } catch (e) {
      if (e instanceof HsmError && e.code === "HSM_UNWRAP_FAILED" && envelope.keyId !== this.kms.target) {
        throw kmsHsmError(
          "HSM_UNWRAP_FAILED",
          this.kms.context("Decrypt"),
          `the blob says it was wrapped with key ${envelope.keyId}, which is not the configured wrapping key; set AWS_KMS_WRAP_KEY_ID to the key that wrapped it (${e.meta.awsError ?? "decrypt failed"})`,
          { ...e.meta, envelopeKeyId: envelope.keyId },
        );
      }
      throw e;
    }
  }

  private parseEnvelope(blob: Uint8Array): AwsKmsWrappedKeyEnvelope {
    const invalid = (reason: string, why: string, meta: HsmErrorMeta = {}) =>
      kmsHsmError("HSM_UNWRAP_FAILED", this.kms.context("Decrypt"), `not a usable wrapped key: ${why}`, {
        reason,
        ...meta,
      });
    let parsed: unknown;
    try {
      parsed = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(blob));
    } catch {
      throw invalid(
        "not-json",
        `expected a JSON ${ENVELOPE_FORMAT} envelope (${blob.length} bytes of something else)`,
      );
    }
    if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
      throw invalid("not-an-envelope", "the JSON is not an object");
    }
    const e = parsed as Record<string, unknown>;
    if (e.format !== ENVELOPE_FORMAT) throw invalid("wrong-format", `format is not "${ENVELOPE_FORMAT}"`);
    if (e.version !== 1)
      throw invalid(
        "unsupported-version",
        `envelope version ${JSON.stringify(e.version)} is not supported (expected 1)`,
      );
    if (e.provider !== PROVIDER) {
      throw invalid(
        "wrong-provider",
        `it was wrapped by provider ${JSON.stringify(e.provider)}, not aws-kms; configure that provider to unwrap it`,
        { envelopeProvider: typeof e.provider === "string" ? e.provider : undefined },
      );
    }
    if (typeof e.keyId !== "string" || e.keyId === "") throw invalid("missing-key-id", "keyId is missing");
    if (e.encryptionAlgorithm !== undefined && e.encryptionAlgorithm !== ENCRYPTION_ALGORITHM) {
      throw invalid(
        "unsupported-algorithm",
        `encryption algorithm ${JSON.stringify(e.encryptionAlgorithm)} is not ${ENCRYPTION_ALGORITHM}`,
      );
    }
    if (typeof e.ciphertext !== "string" || e.ciphertext === "" || !BASE64.test(e.ciphertext)) {
      throw invalid("bad-ciphertext", "ciphertext is missing or not base64");
    }
    return { ...e, encryptionAlgorithm: ENCRYPTION_ALGORITHM } as AwsKmsWrappedKeyEnvelope;
  }

  async close(): Promise<void> {
    this.kms.close();
  }
}

/**
 * Connects to KMS and checks (kms:DescribeKey) that the key is an enabled SYMMETRIC_DEFAULT
 * ENCRYPT_DECRYPT key, so that a misconfigured node stops at startup rather than at first unwrap.
 */
export async function createAwsKmsKeyWrapper(
  config: AwsKmsConfig,
  deps: AwsKmsDeps = {},
): Promise<KeyWrapper> {
  const kms = new KmsConnection(config, deps);
  try {
    const out = await kms.call("DescribeKey", (client, abortSignal) =>
      client.send(new DescribeKeyCommand({ KeyId: config.keyId }), { abortSignal }),
    );
    const md = out.KeyMetadata;
    if (md === undefined)
      throw kmsHsmError(
        "HSM_BAD_RESPONSE",
        kms.context("DescribeKey"),
        "DescribeKey returned no key metadata",
      );
    if (md.Arn !== undefined) kms.keyArn = md.Arn;
    const ctx = kms.context("DescribeKey");
    const keySpec = md.KeySpec ?? md.CustomerMasterKeySpec;
    if (md.KeyUsage !== "ENCRYPT_DECRYPT" || keySpec !== "SYMMETRIC_DEFAULT") {
      throw kmsHsmError(
        "HSM_UNSUPPORTED_KEY",
        ctx,
        `key spec ${keySpec ?? "unknown"} with usage ${md.KeyUsage ?? "unknown"} cannot wrap the storage key; use a SYMMETRIC_DEFAULT ENCRYPT_DECRYPT key`,
        { keySpec, keyUsage: md.KeyUsage },
      );
    }
    if (md.KeyState !== undefined && md.KeyState !== "Enabled") {
      throw kmsHsmError(
        "HSM_KEY_DISABLED",
        ctx,
        `the key is ${md.KeyState}; enable it (kms:EnableKey) or cancel its scheduled deletion`,
        {
          keyState: md.KeyState,
        },
      );
    }
    return new AwsKmsKeyWrapper(kms);
  } catch (e) {
    kms.close();
    throw e;
  }
}
