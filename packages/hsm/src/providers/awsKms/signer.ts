/**
 * A Signer backed by an asymmetric AWS KMS key: ECC_NIST_EDWARDS25519 (pure Ed25519, MessageType
 * RAW) or ECC_NIST_P256 (ECDSA over the SHA-256 digest, MessageType DIGEST, DER converted to low-S
 * r||s). The key is resolved once, at creation, to its ARN and public key; every signature is
 * checked against that public key before it is returned, so a misbehaving endpoint or a retargeted
 * alias cannot make this validator sign with another key.
 */
import {
  GetPublicKeyCommand,
  type GetPublicKeyCommandOutput,
  SignCommand,
  type SignCommandInput,
} from "@aws-sdk/client-kms";
import type { AwsKmsConfig } from "../../config.ts";
import { HsmError } from "../../errors.ts";
import type { SignatureAlgorithm, Signer, SignerHealth } from "../../interface.ts";
import { derToRawP256, rawPublicKeyFromSpki, sha256, verifySignature } from "../../signature.ts";
import { type AwsKmsDeps, KmsConnection } from "./client.ts";
import { kmsHsmError, PROVIDER } from "./errors.ts";

/** KMS refuses RAW messages longer than this (bytes). */
export const KMS_MAX_RAW_MESSAGE_BYTES = 4096;

const KEY_SPECS: Record<
  string,
  { algorithm: SignatureAlgorithm; signingAlgorithm: "ED25519_SHA_512" | "ECDSA_SHA_256" }
> = {
  ECC_NIST_EDWARDS25519: { algorithm: "ed25519", signingAlgorithm: "ED25519_SHA_512" },
  ECC_NIST_P256: { algorithm: "ecdsa-p256", signingAlgorithm: "ECDSA_SHA_256" },
};

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((v, i) => v === b[i]);
}

class AwsKmsSigner implements Signer {
  readonly provider = PROVIDER;
  readonly keyId: string;
  readonly algorithm: SignatureAlgorithm;
  private readonly kms: KmsConnection;
  private readonly signingAlgorithm: "ED25519_SHA_512" | "ECDSA_SHA_256";
  private readonly rawPublicKey: Uint8Array;

  constructor(kms: KmsConnection, spec: (typeof KEY_SPECS)[string], rawPublicKey: Uint8Array) {
    this.kms = kms;
    this.keyId = kms.config.keyId;
    this.algorithm = spec.algorithm;
    this.signingAlgorithm = spec.signingAlgorithm;
    this.rawPublicKey = rawPublicKey;
  }

  async publicKey(): Promise<Uint8Array> {
    return Uint8Array.from(this.rawPublicKey);
  }

  async sign(message: Uint8Array): Promise<Uint8Array> {
    this.kms.assertOpen();
    const input: SignCommandInput = {
      KeyId: this.kms.target,
      SigningAlgorithm: this.signingAlgorithm,
      Message: undefined,
    };
    if (this.algorithm === "ed25519") {
      if (message.length === 0 || message.length > KMS_MAX_RAW_MESSAGE_BYTES) {
        throw kmsHsmError(
          "HSM_UNSUPPORTED_KEY",
          this.kms.context("Sign"),
          `KMS signs Ed25519 messages of 1 to ${KMS_MAX_RAW_MESSAGE_BYTES} bytes only (MessageType RAW), got ${message.length} bytes`,
          { reason: "message-size", bytes: message.length },
        );
      }
      input.Message = message;
      input.MessageType = "RAW";
    } else {
      input.Message = sha256(message);
      input.MessageType = "DIGEST";
    }
    const out = await this.kms.call("Sign", (client, abortSignal) =>
      client.send(new SignCommand(input), { abortSignal }),
    );
    const bad = (why: string) => kmsHsmError("HSM_BAD_RESPONSE", this.kms.context("Sign"), why);
    if (out.KeyId !== undefined && out.KeyId !== this.kms.target)
      throw bad(`KMS signed with another key (${out.KeyId})`);
    if (out.Signature === undefined) throw bad("KMS returned no signature");
    let signature: Uint8Array;
    if (this.algorithm === "ed25519") {
      if (out.Signature.length !== 64)
        throw bad(`Ed25519 signature must be 64 bytes, got ${out.Signature.length}`);
      signature = Uint8Array.from(out.Signature);
    } else {
      try {
        signature = derToRawP256(out.Signature);
      } catch (e) {
        if (e instanceof HsmError) throw bad(e.message);
        throw e;
      }
    }
    if (!verifySignature(this.algorithm, this.rawPublicKey, message, signature)) {
      throw bad(
        "the signature from KMS does not verify against the public key read at startup; was the key replaced?",
      );
    }
    return signature;
  }

  async health(): Promise<SignerHealth> {
    const started = performance.now();
    const base = { provider: this.provider, keyId: this.keyId };
    const elapsed = () => Math.max(0, performance.now() - started);
    try {
      // One attempt: health reports the backend as it is now, it does not ride out failures.
      const out = await this.kms.call(
        "GetPublicKey",
        (client, abortSignal) =>
          client.send(new GetPublicKeyCommand({ KeyId: this.kms.target }), { abortSignal }),
        { attempts: 1 },
      );
      if (
        out.PublicKey === undefined ||
        !sameBytes(rawPublicKeyFromSpki(out.PublicKey, this.algorithm), this.rawPublicKey)
      ) {
        return {
          ...base,
          ok: false,
          latencyMs: elapsed(),
          code: "HSM_BAD_RESPONSE",
          detail: "the key's public key changed since startup",
        };
      }
      return { ...base, ok: true, latencyMs: elapsed() };
    } catch (e) {
      const err =
        e instanceof HsmError
          ? e
          : kmsHsmError("HSM_BAD_RESPONSE", this.kms.context("GetPublicKey"), "health check failed");
      return { ...base, ok: false, latencyMs: elapsed(), code: err.code, detail: err.message };
    }
  }

  async close(): Promise<void> {
    this.kms.close();
  }
}

/** Checks what GetPublicKey said about the key and returns its spec and raw public key. */
function describeSigningKey(kms: KmsConnection, out: GetPublicKeyCommandOutput) {
  const ctx = kms.context("GetPublicKey");
  const keySpec = out.KeySpec ?? out.CustomerMasterKeySpec;
  const spec = keySpec === undefined ? undefined : KEY_SPECS[keySpec];
  if (out.KeyUsage !== "SIGN_VERIFY" || spec === undefined) {
    throw kmsHsmError(
      "HSM_UNSUPPORTED_KEY",
      ctx,
      `key spec ${keySpec ?? "unknown"} with usage ${out.KeyUsage ?? "unknown"} cannot sign consensus messages; create an asymmetric SIGN_VERIFY key with spec ECC_NIST_EDWARDS25519 or ECC_NIST_P256`,
      { keySpec, keyUsage: out.KeyUsage },
    );
  }
  if (out.SigningAlgorithms !== undefined && !out.SigningAlgorithms.includes(spec.signingAlgorithm)) {
    throw kmsHsmError("HSM_UNSUPPORTED_KEY", ctx, `the key does not offer ${spec.signingAlgorithm}`, {
      keySpec,
    });
  }
  if (out.PublicKey === undefined)
    throw kmsHsmError("HSM_BAD_RESPONSE", ctx, "GetPublicKey returned no public key");
  let raw: Uint8Array;
  try {
    raw = rawPublicKeyFromSpki(out.PublicKey, spec.algorithm);
  } catch (e) {
    if (e instanceof HsmError) throw kmsHsmError(e.code, ctx, e.message, { keySpec });
    throw e;
  }
  return { spec, raw };
}

/**
 * Connects to KMS, reads the key's spec and public key (kms:GetPublicKey) and returns a Signer.
 * Fails with HSM_AUTH_FAILED, HSM_KEY_NOT_FOUND, HSM_KEY_DISABLED or HSM_UNSUPPORTED_KEY when the
 * key cannot be used, so a misconfigured validator stops at startup.
 */
export async function createAwsKmsSigner(config: AwsKmsConfig, deps: AwsKmsDeps = {}): Promise<Signer> {
  const kms = new KmsConnection(config, deps);
  try {
    const out = await kms.call("GetPublicKey", (client, abortSignal) =>
      client.send(new GetPublicKeyCommand({ KeyId: config.keyId }), { abortSignal }),
    );
    if (out.KeyId !== undefined) kms.keyArn = out.KeyId;
    const { spec, raw } = describeSigningKey(kms, out);
    return new AwsKmsSigner(kms, spec, raw);
  } catch (e) {
    kms.close();
    throw e;
  }
}
