/**
 * Provider configuration: one schema per provider, from a config file or from the
 * seed-compatible environment variables (`HSM_PROVIDER=aws_kms|azure_keyvault|vault|pkcs11|local`).
 * Secrets are never configuration values: tokens, PINs, passphrases and client secrets are read
 * from files whose paths are configured.
 */
import { z } from "zod";
import { HsmError } from "./errors.ts";
import { defaultRetryOptions, type RetryOptions } from "./retry.ts";

const retry = z
  .object({
    attempts: z.number().int().min(1).max(20),
    baseDelayMs: z.number().min(0),
    maxDelayMs: z.number().min(0),
    attemptTimeoutMs: z.number().min(1),
  })
  .partial()
  .optional();

const algorithm = z.enum(["ed25519", "ecdsa-p256"]);
const url = z.string().url();

export const localConfigSchema = z.object({
  provider: z.literal("local"),
  /** The encrypted keystore (signing); not needed for wrapping the storage key. */
  keystorePath: z.string().min(1).optional(),
  passphraseFile: z.string().min(1),
});

export const awsKmsConfigSchema = z.object({
  provider: z.literal("aws-kms"),
  /** Key id, ARN or alias of the signing key (or of the symmetric key, for wrapping). */
  keyId: z.string().min(1),
  region: z.string().min(1),
  /** A KMS-compatible endpoint (VPC endpoint, LocalStack, the test emulator). */
  endpoint: url.optional(),
  retry,
});

export const azureKeyVaultConfigSchema = z.object({
  provider: z.literal("azure-keyvault"),
  vaultUrl: url,
  keyName: z.string().min(1),
  keyVersion: z.string().min(1).optional(),
  tenantId: z.string().min(1).optional(),
  clientId: z.string().min(1).optional(),
  /** File holding the service principal's client secret; absent: the default credential chain. */
  clientSecretFile: z.string().min(1).optional(),
  /** Microsoft Entra authority (sovereign clouds, the test emulator). */
  authorityHost: url.optional(),
  retry,
});

export const vaultConfigSchema = z.object({
  provider: z.literal("vault"),
  address: url,
  tokenFile: z.string().min(1),
  mount: z.string().min(1).default("transit"),
  keyName: z.string().min(1),
  namespace: z.string().min(1).optional(),
  retry,
});

export const pkcs11ConfigSchema = z.object({
  provider: z.literal("pkcs11"),
  library: z.string().min(1),
  tokenLabel: z.string().min(1),
  /** The user PIN, read from this file; never from an environment variable. */
  pinFile: z.string().min(1),
  keyLabel: z.string().min(1),
  /** Sessions kept open for concurrent signing. */
  poolSize: z.number().int().min(1).max(64).default(4),
});

export const providerConfigSchema = z.discriminatedUnion("provider", [
  localConfigSchema,
  awsKmsConfigSchema,
  azureKeyVaultConfigSchema,
  vaultConfigSchema,
  pkcs11ConfigSchema,
]);

export type LocalConfig = z.infer<typeof localConfigSchema>;
export type AwsKmsConfig = z.infer<typeof awsKmsConfigSchema>;
export type AzureKeyVaultConfig = z.infer<typeof azureKeyVaultConfigSchema>;
export type VaultConfig = z.infer<typeof vaultConfigSchema>;
export type Pkcs11Config = z.infer<typeof pkcs11ConfigSchema>;
export type ProviderConfig = z.infer<typeof providerConfigSchema>;
export { algorithm as algorithmSchema };

export function retryOptions(partial: Partial<RetryOptions> | undefined): RetryOptions {
  return { ...defaultRetryOptions, ...partial };
}

/** Validates a provider config; errors name the field and never echo values. */
export function parseProviderConfig(input: unknown): ProviderConfig {
  const result = providerConfigSchema.safeParse(input);
  if (result.success) return result.data;
  const problems = result.error.issues.map((i) => `${i.path.join(".") || "(root)"}: ${i.message}`).join("; ");
  throw new HsmError("HSM_INVALID_CONFIG", `invalid key provider configuration: ${problems}`);
}

const ENV_PROVIDERS: Record<string, ProviderConfig["provider"]> = {
  local: "local",
  aws_kms: "aws-kms",
  azure_keyvault: "azure-keyvault",
  vault: "vault",
  pkcs11: "pkcs11",
};

export type EnvPurpose = "signer" | "wrapper";

/**
 * Reads the seed-compatible variables. For the storage-key wrapper (`purpose: "wrapper"`) the
 * key names come from the *_WRAP_* variables.
 */
/** Variables that would put a secret in the process environment; production refuses them. */
export const SECRET_ENV_VARIABLES = [
  "AWS_SECRET_ACCESS_KEY",
  "AWS_SESSION_TOKEN",
  "AZURE_CLIENT_SECRET",
  "VAULT_TOKEN",
] as const;

export function providerConfigFromEnv(
  env: NodeJS.ProcessEnv,
  purpose: EnvPurpose = "signer",
  opts: { production?: boolean } = {},
): ProviderConfig {
  if (opts.production) {
    const present = SECRET_ENV_VARIABLES.filter((name) => env[name] !== undefined && env[name] !== "");
    if (present.length > 0) {
      throw new HsmError(
        "HSM_INVALID_CONFIG",
        `production mode refuses secrets in environment variables (${present.join(", ")}): use a workload identity, or the *_FILE settings`,
      );
    }
  }
  const raw = env.HSM_PROVIDER;
  if (raw === undefined || raw === "") {
    throw new HsmError(
      "HSM_INVALID_CONFIG",
      `HSM_PROVIDER is not set (one of ${Object.keys(ENV_PROVIDERS).join(", ")})`,
    );
  }
  const provider = ENV_PROVIDERS[raw];
  if (provider === undefined) {
    throw new HsmError(
      "HSM_INVALID_CONFIG",
      `HSM_PROVIDER=${JSON.stringify(raw)} is not one of ${Object.keys(ENV_PROVIDERS).join(", ")}`,
    );
  }
  if (env.PKCS11_PIN !== undefined) {
    throw new HsmError(
      "HSM_INVALID_CONFIG",
      "PKCS11_PIN must not be set: the PIN is read from PKCS11_PIN_FILE",
    );
  }
  const wrap = purpose === "wrapper";
  const pick = (signerVar: string, wrapperVar: string) => (wrap ? env[wrapperVar] : env[signerVar]);
  const candidate: Record<string, unknown> = { provider };
  switch (provider) {
    case "local":
      candidate.keystorePath = wrap ? undefined : env.LOCAL_KEYSTORE_PATH;
      candidate.passphraseFile = env.LOCAL_KEYSTORE_PASSPHRASE_FILE;
      break;
    case "aws-kms":
      candidate.keyId = pick("AWS_KMS_KEY_ID", "AWS_KMS_WRAP_KEY_ID");
      candidate.region = env.AWS_REGION ?? env.AWS_DEFAULT_REGION;
      candidate.endpoint = env.AWS_KMS_ENDPOINT;
      break;
    case "azure-keyvault":
      candidate.vaultUrl = env.AZURE_KEYVAULT_URL;
      candidate.keyName = pick("AZURE_KEYVAULT_KEY_NAME", "AZURE_KEYVAULT_WRAP_KEY_NAME");
      candidate.keyVersion = wrap ? undefined : env.AZURE_KEYVAULT_KEY_VERSION;
      candidate.tenantId = env.AZURE_TENANT_ID;
      candidate.clientId = env.AZURE_CLIENT_ID;
      candidate.clientSecretFile = env.AZURE_CLIENT_SECRET_FILE;
      candidate.authorityHost = env.AZURE_AUTHORITY_HOST;
      break;
    case "vault":
      candidate.address = env.VAULT_ADDR;
      candidate.tokenFile = env.VAULT_TOKEN_FILE;
      candidate.mount = env.VAULT_TRANSIT_MOUNT;
      candidate.keyName = pick("VAULT_KEY_NAME", "VAULT_WRAP_KEY_NAME");
      candidate.namespace = env.VAULT_NAMESPACE;
      break;
    case "pkcs11":
      candidate.library = env.PKCS11_LIBRARY;
      candidate.tokenLabel = env.PKCS11_TOKEN_LABEL;
      candidate.pinFile = env.PKCS11_PIN_FILE;
      candidate.keyLabel = pick("PKCS11_KEY_LABEL", "PKCS11_WRAP_KEY_LABEL");
      candidate.poolSize = env.PKCS11_POOL_SIZE === undefined ? undefined : Number(env.PKCS11_POOL_SIZE);
      break;
  }
  for (const k of Object.keys(candidate)) if (candidate[k] === undefined) delete candidate[k];
  return parseProviderConfig(candidate);
}
