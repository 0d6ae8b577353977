/**
 * A validator Signer backed by an Azure Key Vault (or Managed HSM) EC P-256 key. Azure has no
 * Ed25519, so the algorithm is always ecdsa-p256: the message is hashed here (SHA-256) and the
 * vault signs the digest with ES256, returning raw r||s that is normalised to low S.
 *
 * The key is fetched once, at creation: its public key, type and key_ops are checked and its
 * version is pinned, so every signature matches `publicKey()` even if the key is rotated later
 * (a restart picks up the new version).
 */
import { CryptographyClient, KeyClient, type KeyVaultKey } from "@azure/keyvault-keys";
import type { AzureKeyVaultConfig } from "../../config.ts";
import { retryOptions } from "../../config.ts";
import { HsmError } from "../../errors.ts";
import type { Signer, SignerHealth } from "../../interface.ts";
import { withRetry } from "../../retry.ts";
import { normaliseP256, p256Point, sha256, verifySignature } from "../../signature.ts";
import {
  type AzureKeyVaultDeps,
  checkedVersion,
  fetchKey,
  keyIdentifier,
  resolveCredential,
  sdkClientOptions,
} from "./clients.ts";
import { azureCall, toHsmError } from "./errors.ts";

const PROVIDER = "azure-keyvault" as const;

function signingPublicKey(key: KeyVaultKey, keyId: string): Uint8Array {
  const jwk = key.key;
  const kty = String(key.keyType ?? jwk?.kty ?? "unknown");
  const crv = jwk?.crv ? `/${jwk.crv}` : "";
  if ((kty !== "EC" && kty !== "EC-HSM") || jwk?.crv !== "P-256") {
    throw new HsmError(
      "HSM_UNSUPPORTED_KEY",
      `azure-keyvault: key ${keyId} is ${kty}${crv}; the validator signer needs an EC P-256 key (Key Vault has no Ed25519): create it with kty EC-HSM (or EC) and curve P-256`,
      { provider: PROVIDER, keyId },
    );
  }
  if (key.keyOperations && !key.keyOperations.includes("sign")) {
    throw new HsmError(
      "HSM_UNSUPPORTED_KEY",
      `azure-keyvault: key ${keyId} does not allow sign (key_ops: ${key.keyOperations.join(", ")})`,
      {
        provider: PROVIDER,
        keyId,
      },
    );
  }
  if (!jwk.x || !jwk.y) {
    throw new HsmError(
      "HSM_BAD_RESPONSE",
      `azure-keyvault: key ${keyId} came back without its public coordinates`,
      { provider: PROVIDER, keyId },
    );
  }
  return p256Point(jwk.x, jwk.y);
}

function disabledReason(key: KeyVaultKey, now: Date): string | undefined {
  const { enabled, notBefore, expiresOn } = key.properties;
  if (enabled === false) return "key is disabled in Key Vault";
  if (notBefore && now < notBefore) return `key is not valid before ${notBefore.toISOString()}`;
  if (expiresOn && now > expiresOn) return `key expired at ${expiresOn.toISOString()}`;
  return undefined;
}

export async function createAzureKeyVaultSigner(
  config: AzureKeyVaultConfig,
  deps: AzureKeyVaultDeps = {},
): Promise<Signer> {
  const retry = retryOptions(config.retry);
  const { credential, secrets } = await resolveCredential(config, deps);
  const options = sdkClientOptions(config.vaultUrl);
  const keyClient = new KeyClient(config.vaultUrl, credential, options);
  const configuredId = keyIdentifier(config.vaultUrl, config.keyName, config.keyVersion);

  const key = await fetchKey(keyClient, config.keyName, config.keyVersion, retry, {
    keyId: configuredId,
    redact: secrets,
  });
  const version = checkedVersion(key, config, configuredId);
  const keyId = keyIdentifier(config.vaultUrl, config.keyName, version);
  const publicKey = signingPublicKey(key, keyId);
  // Built from the fetched key: the SDK does not GET it again before each sign.
  const crypto = new CryptographyClient(key, credential, options);
  let closed = false;

  const ctx = (operation: "get" | "sign", signal?: AbortSignal) => ({
    keyId,
    operation,
    signal,
    attemptTimeoutMs: retry.attemptTimeoutMs,
    redact: secrets,
  });
  const ensureOpen = () => {
    if (closed)
      throw new HsmError("HSM_CLOSED", `azure-keyvault: signer for ${keyId} is closed`, {
        provider: PROVIDER,
        keyId,
      });
  };

  return {
    provider: PROVIDER,
    keyId,
    algorithm: "ecdsa-p256",

    async publicKey() {
      ensureOpen();
      return Uint8Array.from(publicKey);
    },

    async sign(message) {
      ensureOpen();
      const digest = sha256(message);
      const result = await withRetry(retry, (signal) =>
        azureCall(ctx("sign", signal), () => crypto.sign("ES256", digest, { abortSignal: signal })),
      );
      let signature: Uint8Array;
      try {
        signature = normaliseP256(result.result);
      } catch (e) {
        throw new HsmError(
          "HSM_BAD_RESPONSE",
          `azure-keyvault: sign on ${keyId} returned a malformed signature`,
          { provider: PROVIDER, keyId },
          { cause: e },
        );
      }
      // A signature peers would reject must never leave the node.
      if (!verifySignature("ecdsa-p256", publicKey, message, signature)) {
        throw new HsmError(
          "HSM_BAD_RESPONSE",
          `azure-keyvault: sign on ${keyId} returned a signature that does not verify`,
          { provider: PROVIDER, keyId },
        );
      }
      return signature;
    },

    async health(): Promise<SignerHealth> {
      const started = performance.now();
      const report = (code?: string, detail?: string): SignerHealth => ({
        ok: code === undefined,
        provider: PROVIDER,
        keyId,
        latencyMs: performance.now() - started,
        ...(code === undefined ? {} : { code, detail }),
      });
      if (closed) return report("HSM_CLOSED", "signer is closed");
      try {
        // Bounded retries here too: one connection reset by a restarted vault must not report it down.
        const current = await fetchKey(keyClient, config.keyName, version, retry, { keyId, redact: secrets });
        const reason = disabledReason(current, new Date());
        return reason ? report("HSM_KEY_DISABLED", `${keyId}: ${reason}`) : report();
      } catch (e) {
        const error = toHsmError(e, ctx("get"));
        return report(error.code, error.message);
      }
    },

    async close() {
      closed = true;
    },
  };
}
