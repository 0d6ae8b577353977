/**
 * Finding a token by its label (slot ids are not stable: `softhsm2-util --init-token --free` and
 * many HSMs assign them), reading the PIN file, and logging in.
 */
import pkcs11js from "pkcs11js";
import { HsmError, type HsmErrorMeta } from "../../errors.ts";
import { readSecretFile } from "../../secretFile.ts";
import { CKS_RO_USER_FUNCTIONS, CKS_RW_USER_FUNCTIONS } from "./constants.ts";
import { ckrOf, toHsmError } from "./errors.ts";
import { type Pkcs11, type Pkcs11Module, pinFingerprint } from "./module.ts";

export interface TokenRef {
  slot: Buffer;
  label: string;
  serial: string;
  /** Identifies the token within one library generation (for the login bookkeeping). */
  key: string;
}

/** RFC 7512 percent-encoding of a path attribute value. */
function uriValue(value: string): string {
  return Array.from(Buffer.from(value, "utf8"))
    .map((b) => {
      const c = String.fromCharCode(b);
      return /[A-Za-z0-9\-._~:[\]@!$'()*+,=&]/.test(c) && b < 0x80
        ? c
        : `%${b.toString(16).toUpperCase().padStart(2, "0")}`;
    })
    .join("");
}

/** `pkcs11:token=<label>;object=<keyLabel>`: names the key, never a secret. */
export function pkcs11KeyUri(tokenLabel: string, keyLabel: string): string {
  return `pkcs11:token=${uriValue(tokenLabel)};object=${uriValue(keyLabel)}`;
}

export interface FindTokenOptions {
  /**
   * The token was found before: its absence now is an outage (HSM_UNREACHABLE), not a
   * configuration error (HSM_KEY_NOT_FOUND).
   */
  wasPresent: boolean;
  meta: HsmErrorMeta;
}

export function findToken(
  pkcs11: Pkcs11,
  library: string,
  tokenLabel: string,
  opts: FindTokenOptions,
): TokenRef {
  let slots: Buffer[];
  try {
    slots = pkcs11.C_GetSlotList(true);
  } catch (e) {
    throw toHsmError(e, `C_GetSlotList of ${library}`, opts.meta);
  }
  const found: TokenRef[] = [];
  const others: string[] = [];
  let unlabelled = 0;
  for (const slot of slots) {
    let info: ReturnType<Pkcs11["C_GetTokenInfo"]>;
    try {
      info = pkcs11.C_GetTokenInfo(slot);
    } catch {
      continue; // a slot whose token cannot be read is not the one we want
    }
    const label = info.label.trimEnd();
    const serial = info.serialNumber.trim();
    if (label === tokenLabel) found.push({ slot, label, serial, key: `${slot.toString("hex")}/${serial}` });
    else if (label === "") unlabelled++;
    else others.push(JSON.stringify(label));
  }
  if (found.length > 1) {
    throw new HsmError(
      "HSM_INVALID_CONFIG",
      `${found.length} PKCS#11 tokens are labelled ${JSON.stringify(tokenLabel)} (serials ${found.map((t) => t.serial).join(", ")}): token labels must be unique`,
      opts.meta,
    );
  }
  const token = found[0];
  if (token !== undefined) return token;
  const present = `tokens present: ${others.length > 0 ? others.join(", ") : "none"}${unlabelled > 0 ? ` (and ${unlabelled} uninitialised)` : ""}`;
  if (opts.wasPresent) {
    throw new HsmError(
      "HSM_UNREACHABLE",
      `PKCS#11 token ${JSON.stringify(tokenLabel)} is no longer present in ${library}; ${present}`,
      opts.meta,
    );
  }
  throw new HsmError(
    "HSM_KEY_NOT_FOUND",
    `PKCS#11 token ${JSON.stringify(tokenLabel)} not found in ${library}; ${present}`,
    {
      ...opts.meta,
      tokenLabel,
    },
  );
}

/** The user PIN from its file (trimmed). Errors name the file, never its content. */
export function readPin(pinFile: string, meta: HsmErrorMeta): string {
  return readSecretFile({ path: pinFile, what: "PIN", variable: "PKCS11_PIN_FILE", meta });
}

export function openSession(pkcs11: Pkcs11, token: TokenRef, meta: HsmErrorMeta): Buffer {
  try {
    return pkcs11.C_OpenSession(token.slot, pkcs11js.CKF_RW_SESSION | pkcs11js.CKF_SERIAL_SESSION);
  } catch (e) {
    throw toHsmError(e, `C_OpenSession on token ${JSON.stringify(token.label)}`, meta);
  }
}

/**
 * Makes sure the application is logged in to the token as the user. Login is per token and
 * application, not per session: a new session of a logged-in token is logged in already, and a
 * second C_Login answers CKR_USER_ALREADY_LOGGED_IN without checking the PIN. So a PIN that
 * differs from the one that logged in is refused here.
 */
export function ensureLoggedIn(
  mod: Pkcs11Module,
  session: Buffer,
  token: TokenRef,
  pinFile: string,
  meta: HsmErrorMeta,
): void {
  const pin = readPin(pinFile, meta);
  const fingerprint = pinFingerprint(pin);
  const refuseIfOtherPin = () => {
    const known = mod.loginFingerprint(token.key);
    if (known !== undefined && known !== fingerprint) {
      throw new HsmError(
        "HSM_AUTH_FAILED",
        `PKCS#11 token ${JSON.stringify(token.label)} is logged in by this process with a different PIN than the one in ${pinFile}`,
        { ...meta, status: "CKR_PIN_INCORRECT" },
      );
    }
  };
  let state: number;
  try {
    state = mod.pkcs11.C_GetSessionInfo(session).state;
  } catch (e) {
    throw toHsmError(e, `C_GetSessionInfo on token ${JSON.stringify(token.label)}`, meta);
  }
  if (state === CKS_RW_USER_FUNCTIONS || state === CKS_RO_USER_FUNCTIONS) {
    refuseIfOtherPin();
    return;
  }
  try {
    mod.pkcs11.C_Login(session, pkcs11js.CKU_USER, pin);
    mod.recordLogin(token.key, fingerprint);
  } catch (e) {
    if (ckrOf(e) === pkcs11js.CKR_USER_ALREADY_LOGGED_IN) {
      refuseIfOtherPin();
      return;
    }
    throw toHsmError(e, `C_Login to token ${JSON.stringify(token.label)} with the PIN from ${pinFile}`, meta);
  }
}
