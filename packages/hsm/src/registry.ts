/**
 * The signer registry: one call turns a provider configuration into a Signer or KeyWrapper.
 * Providers are loaded on demand, so a node configured for Vault never loads the PKCS#11 addon
 * or the cloud SDKs it does not use.
 */
import { type ProviderConfig, parseProviderConfig, providerConfigFromEnv } from "./config.ts";
import { HsmError } from "./errors.ts";
import type { KeyWrapper, Signer } from "./interface.ts";

export interface RegistryOptions {
  /** Production refuses the local keystore: keys belong in an HSM or a KMS. */
  production?: boolean;
}

function checkProduction(config: ProviderConfig, opts: RegistryOptions): void {
  if (opts.production && config.provider === "local") {
    throw new HsmError(
      "HSM_INVALID_CONFIG",
      "production mode refuses the local keystore: configure HSM_PROVIDER=aws_kms, azure_keyvault, vault or pkcs11",
    );
  }
}

export async function createSigner(input: unknown, opts: RegistryOptions = {}): Promise<Signer> {
  const config = parseProviderConfig(input);
  checkProduction(config, opts);
  switch (config.provider) {
    case "local":
      return (await import("./providers/local/index.ts")).createLocalSigner(config);
    case "aws-kms":
      return (await import("./providers/awsKms/index.ts")).createAwsKmsSigner(config);
    case "azure-keyvault":
      return (await import("./providers/azureKeyVault/index.ts")).createAzureKeyVaultSigner(config);
    case "vault":
      return (await import("./providers/vault/index.ts")).createVaultSigner(config);
    case "pkcs11":
      return (await import("./providers/pkcs11/index.ts")).createPkcs11Signer(config);
  }
}

export async function createKeyWrapper(input: unknown, opts: RegistryOptions = {}): Promise<KeyWrapper> {
  const config = parseProviderConfig(input);
  checkProduction(config, opts);
  switch (config.provider) {
    case "local":
      return (await import("./providers/local/index.ts")).createLocalKeyWrapper(config);
    case "aws-kms":
      return (await import("./providers/awsKms/index.ts")).createAwsKmsKeyWrapper(config);
    case "azure-keyvault":
      return (await import("./providers/azureKeyVault/index.ts")).createAzureKeyVaultKeyWrapper(config);
    case "vault":
      return (await import("./providers/vault/index.ts")).createVaultKeyWrapper(config);
    case "pkcs11":
      return (await import("./providers/pkcs11/index.ts")).createPkcs11KeyWrapper(config);
  }
}

/** The signer named by the seed-compatible environment variables (HSM_PROVIDER=...). */
export function createSignerFromEnv(
  env: NodeJS.ProcessEnv = process.env,
  opts: RegistryOptions = {},
): Promise<Signer> {
  return createSigner(providerConfigFromEnv(env, "signer", opts), opts);
}

/** The storage-key wrapper named by the environment (the *_WRAP_* key variables). */
export function createKeyWrapperFromEnv(
  env: NodeJS.ProcessEnv = process.env,
  opts: RegistryOptions = {},
): Promise<KeyWrapper> {
  return createKeyWrapper(providerConfigFromEnv(env, "wrapper", opts), opts);
}
