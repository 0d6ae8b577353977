/**
 * A Signer backed by a HashiCorp Vault (or OpenBao) transit key.
 *
 * The key version is pinned when the signer is created: the validator's public key is part of
 * the validator set, so a rotation in Vault must not silently change what this node signs with.
 * Every request passes `key_version`, and every signature is verified against the pinned public
 * key before it leaves (cheap, and it catches a key deleted and re-created under the same name).
 * A rotated key is picked up by restarting the node after the new public key is registered.
 */
import type { VaultConfig } from "../../config.ts";
import { HsmError } from "../../errors.ts";
import type { SignatureAlgorithm, Signer, SignerHealth } from "../../interface.ts";
import { withRetry } from "../../retry.ts";
import { derToRawP256, sha256, verifySignature } from "../../signature.ts";
import { createVaultTransport, type VaultData, type VaultTransport } from "./client.ts";
import { vaultError } from "./errors.ts";
import { parseKeyInfo, parseVaultValue, signingAlgorithm, versionPublicKey } from "./keys.ts";
import { resolveVaultConfig } from "./options.ts";

interface PinnedKey {
  algorithm: SignatureAlgorithm;
  keyVersion: number;
  publicKey: Uint8Array;
}

function samePublicKey(a: Uint8Array, b: Uint8Array): boolean {
  return Buffer.from(a).equals(Buffer.from(b));
}

/** Checks the key as Vault describes it now against the pinned version (for health). */
function checkPinnedKey(data: VaultData, pinned: PinnedKey, keyId: string): void {
  const ctx = { keyId };
  const info = parseKeyInfo(data, ctx);
  if (signingAlgorithm(info, ctx) !== pinned.algorithm) {
    throw vaultError("HSM_UNSUPPORTED_KEY", ctx, `the key's type changed to "${info.type}" since start-up`);
  }
  if (info.latestVersion < pinned.keyVersion || info.versions[String(pinned.keyVersion)] === undefined) {
    throw vaultError(
      "HSM_KEY_NOT_FOUND",
      ctx,
      `version ${pinned.keyVersion}, which this node signs with, no longer exists: was the key deleted and re-created?`,
    );
  }
  if (!samePublicKey(versionPublicKey(info, pinned.keyVersion, pinned.algorithm, ctx), pinned.publicKey)) {
    throw vaultError(
      "HSM_BAD_RESPONSE",
      ctx,
      `the public key of version ${pinned.keyVersion} changed since start-up: the key was re-created; do not sign with it before the validator set knows it`,
    );
  }
  if (info.minEncryptionVersion > pinned.keyVersion) {
    throw vaultError(
      "HSM_KEY_DISABLED",
      ctx,
      `version ${pinned.keyVersion}, which this node signs with, is below min_encryption_version ${info.minEncryptionVersion} (retired)`,
    );
  }
}

export async function createVaultSigner(config: VaultConfig): Promise<Signer> {
  const cfg = resolveVaultConfig(config);
  const transport: VaultTransport = await createVaultTransport(cfg);
  const keyPath = transport.path("keys");
  const signPath = transport.path("sign");
  const ctx = { keyId: cfg.keyId };

  const data = await withRetry(cfg.retry, (signal) => transport.read(keyPath, "read-key", signal));
  const info = parseKeyInfo(data, ctx);
  const algorithm = signingAlgorithm(info, ctx);
  const pinned: PinnedKey = {
    algorithm,
    keyVersion: info.latestVersion,
    publicKey: versionPublicKey(info, info.latestVersion, algorithm, ctx),
  };
  let closed = false;

  const requestBody = (message: Uint8Array): VaultData =>
    algorithm === "ed25519"
      ? { input: Buffer.from(message).toString("base64"), key_version: pinned.keyVersion }
      : {
          // The digest travels instead of the message; the hash is named in the body (not the URL)
          // so that the token's policy needs only `<mount>/sign/<name>`.
          input: Buffer.from(sha256(message)).toString("base64"),
          prehashed: true,
          hash_algorithm: "sha2-256",
          marshaling_algorithm: "asn1",
          key_version: pinned.keyVersion,
        };

  const decodeSignature = (value: unknown): Uint8Array => {
    const parsed = parseVaultValue(value);
    if (parsed === undefined) {
      throw vaultError("HSM_BAD_RESPONSE", ctx, 'the sign answer has no "vault:v<N>:<base64>" signature');
    }
    if (parsed.keyVersion !== pinned.keyVersion) {
      throw vaultError(
        "HSM_BAD_RESPONSE",
        ctx,
        `Vault signed with version ${parsed.keyVersion}, not the requested ${pinned.keyVersion}`,
      );
    }
    if (algorithm === "ed25519") {
      if (parsed.bytes.length !== 64)
        throw vaultError("HSM_BAD_RESPONSE", ctx, "Ed25519 signature is not 64 bytes");
      return parsed.bytes;
    }
    try {
      return derToRawP256(parsed.bytes);
    } catch (e) {
      throw vaultError("HSM_BAD_RESPONSE", ctx, e instanceof Error ? e.message : "malformed P-256 signature");
    }
  };

  const ensureOpen = () => {
    if (closed) throw vaultError("HSM_CLOSED", ctx, "the signer is closed");
  };

  return {
    provider: "vault",
    keyId: cfg.keyId,
    algorithm,

    async publicKey() {
      return Uint8Array.from(pinned.publicKey);
    },

    async sign(message: Uint8Array) {
      ensureOpen();
      const body = requestBody(message);
      const answer = await withRetry(cfg.retry, (signal) => transport.write(signPath, body, "sign", signal));
      const signature = decodeSignature(answer.signature);
      if (!verifySignature(algorithm, pinned.publicKey, message, signature)) {
        throw vaultError(
          "HSM_BAD_RESPONSE",
          ctx,
          `the signature from Vault does not verify against version ${pinned.keyVersion}'s public key: was the key re-created?`,
        );
      }
      return signature;
    },

    async health(): Promise<SignerHealth> {
      const started = performance.now();
      const report = (fields: Partial<SignerHealth>): SignerHealth => ({
        ok: false,
        provider: "vault",
        keyId: cfg.keyId,
        latencyMs: performance.now() - started,
        ...fields,
      });
      try {
        ensureOpen();
        const signal = AbortSignal.timeout(cfg.retry.attemptTimeoutMs);
        checkPinnedKey(await transport.read(keyPath, "read-key", signal), pinned, cfg.keyId);
        return report({ ok: true });
      } catch (e) {
        const error =
          e instanceof HsmError
            ? e
            : vaultError(
                "HSM_BACKEND_ERROR",
                ctx,
                `health check failed unexpectedly (${e instanceof Error ? e.name : typeof e})`,
              );
        return report({ code: error.code, detail: error.message });
      }
    },

    async close() {
      closed = true;
    },
  };
}
