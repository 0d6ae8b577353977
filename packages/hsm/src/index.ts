export * from "./config.ts";
export * from "./errors.ts";
export * from "./guard/doubleSignGuard.ts";
export * from "./guard/interchange.ts";
export type { JournalHeader, SignRecord } from "./guard/journal.ts";
export * from "./interface.ts";
// Provider-specific helpers (provisioning, keystore creation); signers come from the registry.
export { createKeystore, readKeystore, unlockKeystore } from "./providers/local/index.ts";
export { provisionPkcs11Key } from "./providers/pkcs11/index.ts";
export * from "./registry.ts";
export * from "./retry.ts";
export * from "./revocation.ts";
export * from "./secretFile.ts";
export * from "./signature.ts";
