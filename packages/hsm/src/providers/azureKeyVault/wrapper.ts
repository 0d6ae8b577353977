/**
 * Wraps the node's storage data key with an Azure Key Vault RSA key (RSA-OAEP-256, done by the
 * vault so that the operation is authorised and audited there). The envelope records the key
 * version used, so envelopes written before a rotation still unwrap with their own version.
 */
import { CryptographyClient, KeyClient, type KeyVaultKey } from "@azure/keyvault-keys";
import type { AzureKeyVaultConfig } from "../../config.ts";
import { retryOptions } from "../../config.ts";
import { HsmError } from "../../errors.ts";
import type { KeyWrapper, WrappedKeyEnvelope } from "../../interface.ts";
import { withRetry } from "../../retry.ts";
import {
  type AzureKeyVaultDeps,
  checkedVersion,
  fetchKey,
  keyIdentifier,
  resolveCredential,
  sdkClientOptions,
} from "./clients.ts";
import { azureCall } from "./errors.ts";

const PROVIDER = "azure-keyvault" as const;
const FORMAT = "vitalstream-wrapped-key";
export const AZURE_WRAP_ALGORITHM = "RSA-OAEP-256";

export interface AzureWrappedKeyEnvelope extends WrappedKeyEnvelope {
  provider: "azure-keyvault";
  /** `<vault>/keys/<name>/<version>`: the exact key version that wrapped the data key. */
  keyId: string;
  alg: typeof AZURE_WRAP_ALGORITHM;
  /** Base64 of the vault's wrapkey result. */
  ciphertext: string;
}

function checkWrappingKey(key: KeyVaultKey, keyId: string): void {
  const kty = String(key.keyType ?? key.key?.kty ?? "unknown");
  if (kty !== "RSA" && kty !== "RSA-HSM") {
    throw new HsmError(
      "HSM_UNSUPPORTED_KEY",
      `azure-keyvault: key ${keyId} is ${kty}; wrapping the storage key needs an RSA key (RSA-HSM or RSA, 2048 bits or more)`,
      {
        provider: PROVIDER,
        keyId,
      },
    );
  }
  const missing = ["wrapKey", "unwrapKey"].filter(
    (op) => key.keyOperations && !key.keyOperations.includes(op as "wrapKey"),
  );
  if (missing.length > 0) {
    throw new HsmError(
      "HSM_UNSUPPORTED_KEY",
      `azure-keyvault: key ${keyId} does not allow ${missing.join(" and ")} (key_ops: ${key.keyOperations?.join(", ")})`,
      {
        provider: PROVIDER,
        keyId,
      },
    );
  }
}

/** The envelope's fields, or an HSM_UNWRAP_FAILED that says what is wrong with it. */
export function parseAzureEnvelope(
  blob: Uint8Array,
  keyPrefix: string,
): { envelope: AzureWrappedKeyEnvelope; version: string; ciphertext: Buffer } {
  const refuse = (why: string) =>
    new HsmError("HSM_UNWRAP_FAILED", `azure-keyvault: not a usable wrapped-key envelope: ${why}`, {
      provider: PROVIDER,
      keyId: keyPrefix,
    });
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(blob).toString("utf8"));
  } catch {
    throw refuse(`it is not JSON (${blob.length} bytes)`);
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed))
    throw refuse("it is not a JSON object");
  const e = parsed as Record<string, unknown>;
  if (e.format !== FORMAT) throw refuse(`format is ${JSON.stringify(e.format)}, expected "${FORMAT}"`);
  if (e.version !== 1)
    throw refuse(`envelope version ${JSON.stringify(e.version)} is not supported (expected 1)`);
  if (e.provider !== PROVIDER)
    throw refuse(
      `it was written by provider ${JSON.stringify(e.provider)}; configure that provider to unwrap it`,
    );
  if (e.alg !== AZURE_WRAP_ALGORITHM)
    throw refuse(`algorithm ${JSON.stringify(e.alg)} is not ${AZURE_WRAP_ALGORITHM}`);
  if (typeof e.keyId !== "string" || !e.keyId.toLowerCase().startsWith(`${keyPrefix.toLowerCase()}/`)) {
    throw refuse(`it was wrapped by ${JSON.stringify(e.keyId)}, not by a version of ${keyPrefix}`);
  }
  const version = e.keyId.slice(keyPrefix.length + 1);
  if (!/^[0-9a-zA-Z]{1,64}$/.test(version))
    throw refuse(`key version ${JSON.stringify(version)} is malformed`);
  if (
    typeof e.ciphertext !== "string" ||
    e.ciphertext === "" ||
    !/^[A-Za-z0-9+/]+={0,2}$/.test(e.ciphertext)
  ) {
    throw refuse("ciphertext is missing or not base64");
  }
  return { envelope: e as AzureWrappedKeyEnvelope, version, ciphertext: Buffer.from(e.ciphertext, "base64") };
}

export async function createAzureKeyVaultKeyWrapper(
  config: AzureKeyVaultConfig,
  deps: AzureKeyVaultDeps = {},
): Promise<KeyWrapper> {
  const retry = retryOptions(config.retry);
  const { credential, secrets } = await resolveCredential(config, deps);
  const options = sdkClientOptions(config.vaultUrl);
  const keyClient = new KeyClient(config.vaultUrl, credential, options);
  const keyPrefix = keyIdentifier(config.vaultUrl, config.keyName);
  const configuredId = keyIdentifier(config.vaultUrl, config.keyName, config.keyVersion);

  const key = await fetchKey(keyClient, config.keyName, config.keyVersion, retry, {
    keyId: configuredId,
    redact: secrets,
  });
  const version = checkedVersion(key, config, configuredId);
  const keyId = keyIdentifier(config.vaultUrl, config.keyName, version);
  checkWrappingKey(key, keyId);

  // One client per key version, created synchronously (so concurrent unwraps share it). Other
  // versions are built from their identifier: the SDK GETs the key on first use.
  const clients = new Map<string, CryptographyClient>([
    [version, new CryptographyClient(key, credential, options)],
  ]);
  const clientFor = (v: string) => {
    let client = clients.get(v);
    if (!client) {
      client = new CryptographyClient(keyIdentifier(config.vaultUrl, config.keyName, v), credential, options);
      clients.set(v, client);
    }
    return client;
  };
  let closed = false;
  const ensureOpen = () => {
    if (closed)
      throw new HsmError("HSM_CLOSED", `azure-keyvault: key wrapper for ${keyId} is closed`, {
        provider: PROVIDER,
        keyId,
      });
  };
  const call = <T>(
    operation: "wrapKey" | "unwrapKey",
    id: string,
    run: (signal: AbortSignal) => Promise<T>,
  ) =>
    withRetry(retry, (signal) =>
      azureCall(
        { keyId: id, operation, signal, attemptTimeoutMs: retry.attemptTimeoutMs, redact: secrets },
        () => run(signal),
      ),
    );

  return {
    provider: PROVIDER,
    keyId,

    async wrap(dataKey) {
      ensureOpen();
      if (dataKey.length === 0) {
        throw new RangeError("azure-keyvault: refusing to wrap an empty data key");
      }
      const result = await call("wrapKey", keyId, (signal) =>
        clientFor(version).wrapKey(AZURE_WRAP_ALGORITHM, dataKey, { abortSignal: signal }),
      );
      const envelope: AzureWrappedKeyEnvelope = {
        format: FORMAT,
        version: 1,
        provider: PROVIDER,
        keyId,
        alg: AZURE_WRAP_ALGORITHM,
        ciphertext: Buffer.from(result.result).toString("base64"),
      };
      return new TextEncoder().encode(JSON.stringify(envelope));
    },

    async unwrap(blob) {
      ensureOpen();
      const { envelope, version: wrappedWith, ciphertext } = parseAzureEnvelope(blob, keyPrefix);
      const id = keyIdentifier(config.vaultUrl, config.keyName, wrappedWith);
      try {
        const result = await call("unwrapKey", id, (signal) =>
          clientFor(wrappedWith).unwrapKey(envelope.alg, ciphertext, { abortSignal: signal }),
        );
        return Uint8Array.from(result.result);
      } catch (e) {
        // The vault answers 400 when OAEP decoding fails: the ciphertext was altered or is not ours.
        if (e instanceof HsmError && e.code === "HSM_BAD_RESPONSE" && e.meta.status === 400) {
          throw new HsmError(
            "HSM_UNWRAP_FAILED",
            `azure-keyvault: ${id} could not unwrap the data key: the envelope was altered or was not wrapped by this key`,
            e.meta,
            { cause: e },
          );
        }
        throw e;
      }
    },

    async close() {
      closed = true;
    },
  };
}
