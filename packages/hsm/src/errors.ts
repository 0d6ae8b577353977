/**
 * One error type for the package, with a code per failure an operator must tell apart. Messages
 * are log-safe: they name the provider, the key id and what to check, never a token, PIN,
 * passphrase or key material.
 */
import type { ProviderName } from "./interface.ts";

export type HsmErrorCode =
  | "HSM_INVALID_CONFIG"
  | "HSM_AUTH_FAILED"
  | "HSM_KEY_NOT_FOUND"
  | "HSM_KEY_DISABLED"
  | "HSM_KEY_REVOKED"
  | "HSM_UNSUPPORTED_KEY"
  | "HSM_UNREACHABLE"
  | "HSM_TIMEOUT"
  | "HSM_THROTTLED"
  | "HSM_BACKEND_ERROR"
  | "HSM_BAD_RESPONSE"
  | "HSM_KEYSTORE_CORRUPT"
  | "HSM_UNWRAP_FAILED"
  | "HSM_DOUBLE_SIGN_REFUSED"
  | "HSM_GUARD_STORE_FAILED"
  | "HSM_GUARD_INTERCHANGE_INVALID"
  | "HSM_CLOSED";

/** Codes worth retrying with backoff: the backend may recover. */
export const RETRYABLE_CODES: ReadonlySet<HsmErrorCode> = new Set([
  "HSM_UNREACHABLE",
  "HSM_TIMEOUT",
  "HSM_THROTTLED",
  "HSM_BACKEND_ERROR",
]);

export interface HsmErrorMeta {
  provider?: ProviderName;
  keyId?: string;
  /** HTTP status or PKCS#11 return value, when there is one. */
  status?: number | string;
  [key: string]: unknown;
}

export class HsmError extends Error {
  readonly code: HsmErrorCode;
  readonly meta: HsmErrorMeta;

  constructor(code: HsmErrorCode, message: string, meta: HsmErrorMeta = {}, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "HsmError";
    this.code = code;
    this.meta = meta;
  }

  get retryable(): boolean {
    return RETRYABLE_CODES.has(this.code);
  }
}

export function isHsmError(e: unknown, code?: HsmErrorCode): e is HsmError {
  return e instanceof HsmError && (code === undefined || e.code === code);
}
