/**
 * PKCS#11 return values (CKR_*) as HsmErrors, and what the session pool should do about each.
 * Messages name the token, the key label and the CKR name; never a PIN.
 */
import pkcs11js from "pkcs11js";
import { HsmError, type HsmErrorCode, type HsmErrorMeta } from "../../errors.ts";
import { CKR_AEAD_DECRYPT_FAILED } from "./constants.ts";

const names = new Map<number, string>();
for (const [name, value] of Object.entries(pkcs11js)) {
  if (name.startsWith("CKR_") && typeof value === "number" && !names.has(value)) names.set(value, name);
}
names.set(CKR_AEAD_DECRYPT_FAILED, "CKR_AEAD_DECRYPT_FAILED");

export function ckrName(code: number): string {
  return names.get(code) ?? `CKR_0x${code.toString(16).padStart(8, "0")}`;
}

/** The CKR value of a pkcs11js error, or undefined for anything else (TypeError, load failure...). */
export function ckrOf(e: unknown): number | undefined {
  if (e instanceof Error && e.name === "Pkcs11Error") {
    const code = (e as Error & { code?: unknown }).code;
    if (typeof code === "number") return code;
  }
  return undefined;
}

/**
 * What a failed call means for the pool:
 *  - auth: the PIN is wrong, locked or expired; retrying cannot help.
 *  - session: this session is gone or stuck; open another (and log in again).
 *  - object: the key handle is stale (the token was re-read); find the key again.
 *  - device: the token or the library may be gone; probe the token, re-initialise if it is.
 *  - other: a definite answer about this request.
 */
export type FailureKind = "auth" | "session" | "object" | "device" | "other";

const K = pkcs11js;
const AUTH = new Set([
  K.CKR_PIN_INCORRECT,
  K.CKR_PIN_INVALID,
  K.CKR_PIN_LEN_RANGE,
  K.CKR_PIN_EXPIRED,
  K.CKR_PIN_LOCKED,
  K.CKR_USER_PIN_NOT_INITIALIZED,
]);
const SESSION = new Set([
  K.CKR_SESSION_HANDLE_INVALID,
  K.CKR_SESSION_CLOSED,
  K.CKR_USER_NOT_LOGGED_IN,
  K.CKR_OPERATION_ACTIVE,
  K.CKR_OPERATION_NOT_INITIALIZED,
]);
const OBJECT = new Set([K.CKR_OBJECT_HANDLE_INVALID, K.CKR_KEY_HANDLE_INVALID, K.CKR_KEY_CHANGED]);
/** The device answered that it (or the library's view of it) is not there. */
const UNREACHABLE = new Set([
  K.CKR_DEVICE_ERROR,
  K.CKR_DEVICE_MEMORY,
  K.CKR_DEVICE_REMOVED,
  K.CKR_TOKEN_NOT_PRESENT,
  K.CKR_TOKEN_NOT_RECOGNIZED,
  K.CKR_SLOT_ID_INVALID,
  K.CKR_CRYPTOKI_NOT_INITIALIZED,
]);
/** Generic failures: SoftHSM answers CKR_GENERAL_ERROR when its token directory vanished. */
const GENERIC = new Set([K.CKR_GENERAL_ERROR, K.CKR_FUNCTION_FAILED]);
/** The key cannot do what was asked: a configuration problem, not an outage. */
const UNSUPPORTED = new Set([
  K.CKR_MECHANISM_INVALID,
  K.CKR_MECHANISM_PARAM_INVALID,
  K.CKR_KEY_TYPE_INCONSISTENT,
  K.CKR_KEY_FUNCTION_NOT_PERMITTED,
]);

export function failureKind(ckr: number | undefined): FailureKind {
  if (ckr === undefined) return "other";
  if (AUTH.has(ckr)) return "auth";
  if (SESSION.has(ckr)) return "session";
  if (OBJECT.has(ckr)) return "object";
  if (UNREACHABLE.has(ckr) || GENERIC.has(ckr)) return "device";
  return "other";
}

/** The HsmError code for a CKR value (the pool may still escalate generic failures to unreachable). */
export function hsmCodeFor(ckr: number): HsmErrorCode {
  if (AUTH.has(ckr)) return "HSM_AUTH_FAILED";
  if (UNREACHABLE.has(ckr) || SESSION.has(ckr) || OBJECT.has(ckr)) return "HSM_UNREACHABLE";
  if (UNSUPPORTED.has(ckr)) return "HSM_UNSUPPORTED_KEY";
  return "HSM_BACKEND_ERROR";
}

/**
 * Turns anything a pkcs11js call threw into an HsmError. `action` says what was being done
 * ("C_Login on token \"x\""); HsmErrors pass through unchanged.
 */
export function toHsmError(
  e: unknown,
  action: string,
  meta: HsmErrorMeta,
  override?: HsmErrorCode,
): HsmError {
  if (e instanceof HsmError) return e;
  const ckr = ckrOf(e);
  if (ckr === undefined) {
    const what = e instanceof Error ? e.message : String(e);
    return new HsmError(override ?? "HSM_BACKEND_ERROR", `${action} failed: ${what}`, meta, { cause: e });
  }
  const name = ckrName(ckr);
  const code = override ?? hsmCodeFor(ckr);
  return new HsmError(
    code,
    `${action} failed: ${name}${hint(code)}`,
    { ...meta, status: name, ckr },
    { cause: e },
  );
}

function hint(code: HsmErrorCode): string {
  switch (code) {
    case "HSM_AUTH_FAILED":
      return " (check the user PIN in the PIN file, and that the PIN is not locked)";
    case "HSM_UNREACHABLE":
      return " (the token is not available: check the HSM, its connection and the PKCS#11 library)";
    case "HSM_UNSUPPORTED_KEY":
      return " (the key or the token does not support this mechanism)";
    default:
      return "";
  }
}
