/**
 * Options of the PKCS#11 provider that are not part of the operator's provider configuration
 * (config.ts): bounds on waiting and retrying. Defaults suit a local or LAN-attached HSM.
 */
import { type Pkcs11Config, parseProviderConfig } from "../../config.ts";
import { HsmError } from "../../errors.ts";

export interface Pkcs11Options {
  /** Attempts per operation, including the first. */
  attempts: number;
  /** First delay before retrying after a device failure (doubles per attempt). */
  retryDelayMs: number;
  /** Longest wait for a free session. */
  acquireTimeoutMs: number;
  /** Longest one PKCS#11 operation may run before the caller gets HSM_TIMEOUT. */
  operationTimeoutMs: number;
}

export const defaultPkcs11Options: Pkcs11Options = {
  attempts: 3,
  retryDelayMs: 50,
  acquireTimeoutMs: 30_000,
  operationTimeoutMs: 10_000,
};

/** Validates a configuration the way the config loader does (callers may build it by hand). */
export function checkPkcs11Config(config: Pkcs11Config): Pkcs11Config {
  const parsed = parseProviderConfig({ ...config, provider: "pkcs11" });
  if (parsed.provider !== "pkcs11") throw new HsmError("HSM_INVALID_CONFIG", "not a PKCS#11 configuration");
  return parsed;
}
