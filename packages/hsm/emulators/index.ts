/**
 * Protocol-faithful emulators of the remote key services, for tests and local devnets only.
 * They speak the real wire protocols on loopback (SigV4-checked AWS KMS, HTTPS Azure Key Vault
 * with the Entra token endpoint, HashiCorp Vault Transit) and are never production backends.
 */
export * from "./awsKms.ts";
export * from "./azureKeyVault.ts";
export { createTestTls } from "./tlsCert.ts";
export * from "./vault.ts";
