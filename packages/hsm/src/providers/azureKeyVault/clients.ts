/**
 * What the Azure Key Vault signer and wrapper share: the credential, SDK client options, key
 * identifiers, and fetching a key with bounded retries.
 */
import { ClientSecretCredential, DefaultAzureCredential, type TokenCredential } from "@azure/identity";
import type { KeyClient, KeyClientOptions, KeyVaultKey } from "@azure/keyvault-keys";
import type { AzureKeyVaultConfig } from "../../config.ts";
import { HsmError } from "../../errors.ts";
import type { RetryOptions } from "../../retry.ts";
import { withRetry } from "../../retry.ts";
import { readSecretFile } from "../../secretFile.ts";
import { type AzureErrorContext, type AzureOperation, azureCall } from "./errors.ts";

/** Live dependencies (tests, or a node that already holds a credential). */
export interface AzureKeyVaultDeps {
  credential?: TokenCredential;
}

export interface ResolvedCredential {
  credential: TokenCredential;
  /** Values to scrub from every error message. */
  secrets: string[];
}

const LOOPBACK = new Set(["127.0.0.1", "localhost", "[::1]", "::1"]);

/** The vault URL without a trailing slash: the prefix of every key identifier. */
export function vaultBase(vaultUrl: string): string {
  return vaultUrl.replace(/\/+$/, "");
}

export function keyIdentifier(vaultUrl: string, keyName: string, version?: string): string {
  return `${vaultBase(vaultUrl)}/keys/${keyName}${version ? `/${version}` : ""}`;
}

/**
 * SDK options: no SDK retries (withRetry bounds the attempts and their deadlines), and the
 * challenge's resource must match the vault's domain except on loopback (the test emulator
 * answers for https://vault.azure.net from 127.0.0.1).
 */
export function sdkClientOptions(vaultUrl: string): KeyClientOptions {
  return {
    retryOptions: { maxRetries: 0 },
    disableChallengeResourceVerification: LOOPBACK.has(new URL(vaultUrl).hostname),
  };
}

/**
 * `deps.credential`, else a service principal whose secret is read from `clientSecretFile`,
 * else DefaultAzureCredential (managed identity, workload identity, Azure CLI...).
 */
export async function resolveCredential(
  config: AzureKeyVaultConfig,
  deps: AzureKeyVaultDeps,
): Promise<ResolvedCredential> {
  if (deps.credential) return { credential: deps.credential, secrets: [] };
  const { tenantId, clientId, clientSecretFile, authorityHost } = config;
  if (clientSecretFile === undefined) {
    const credential = new DefaultAzureCredential({
      ...(tenantId ? { tenantId } : {}),
      ...(authorityHost ? { authorityHost } : {}),
      ...(clientId ? { managedIdentityClientId: clientId, workloadIdentityClientId: clientId } : {}),
    });
    return { credential, secrets: [] };
  }
  if (!tenantId || !clientId) {
    throw new HsmError(
      "HSM_INVALID_CONFIG",
      "azure-keyvault: clientSecretFile needs tenantId and clientId (AZURE_TENANT_ID, AZURE_CLIENT_ID)",
      {
        provider: "azure-keyvault",
      },
    );
  }
  const secret = readSecretFile({
    path: clientSecretFile,
    what: "client secret",
    variable: "AZURE_CLIENT_SECRET_FILE",
    meta: { provider: "azure-keyvault" },
  });
  const credential = new ClientSecretCredential(tenantId, clientId, secret, {
    ...(authorityHost ? { authorityHost } : {}),
    disableInstanceDiscovery: true,
    retryOptions: { maxRetries: 0 },
  });
  return { credential, secrets: [secret] };
}

/** GET the key (one version, or the latest) with bounded retries. */
export function fetchKey(
  keyClient: KeyClient,
  keyName: string,
  version: string | undefined,
  retry: RetryOptions,
  ctx: Omit<AzureErrorContext, "signal" | "operation" | "attemptTimeoutMs"> & { operation?: AzureOperation },
): Promise<KeyVaultKey> {
  return withRetry(retry, (signal) =>
    azureCall({ operation: "get", ...ctx, signal, attemptTimeoutMs: retry.attemptTimeoutMs }, () =>
      keyClient.getKey(keyName, { ...(version ? { version } : {}), abortSignal: signal }),
    ),
  );
}

/** The key's version, checked to come from the configured vault (tokens go where the id points). */
export function checkedVersion(key: KeyVaultKey, config: AzureKeyVaultConfig, keyId: string): string {
  const version = key.properties.version;
  let sameVault = false;
  try {
    sameVault = new URL(key.id ?? "").origin === new URL(config.vaultUrl).origin;
  } catch {
    sameVault = false;
  }
  if (!version || !sameVault || key.name.toLowerCase() !== config.keyName.toLowerCase()) {
    throw new HsmError(
      "HSM_BAD_RESPONSE",
      `azure-keyvault: the vault answered for ${keyId} with a key of another vault, name or no version`,
      {
        provider: "azure-keyvault",
        keyId,
      },
    );
  }
  return version;
}
