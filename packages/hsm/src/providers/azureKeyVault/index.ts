/** Azure Key Vault / Managed HSM: the validator signer (EC P-256) and the storage-key wrapper (RSA). */
export type { AzureKeyVaultDeps } from "./clients.ts";
export { type AzureErrorContext, type AzureOperation, toHsmError as azureErrorToHsmError } from "./errors.ts";
export { createAzureKeyVaultSigner } from "./signer.ts";
export {
  AZURE_WRAP_ALGORITHM,
  type AzureWrappedKeyEnvelope,
  createAzureKeyVaultKeyWrapper,
  parseAzureEnvelope,
} from "./wrapper.ts";
