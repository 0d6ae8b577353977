/** HashiCorp Vault / OpenBao transit: a Signer (ed25519, ecdsa-p256) and a KeyWrapper (AEAD keys). */

export { type ResolvedVaultConfig, resolveVaultConfig } from "./options.ts";
export { createVaultSigner } from "./signer.ts";
export { createVaultKeyWrapper, type VaultWrappedKeyEnvelope } from "./wrapper.ts";
