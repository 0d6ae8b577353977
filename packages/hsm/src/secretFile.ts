/**
 * Reading secrets (PINs, tokens, passphrases, client secrets) from the files that hold them: the
 * one place that decides what such a file may contain and how its errors read. Errors name the
 * file and the setting that points at it, never the content.
 */
import { readFileSync } from "node:fs";
import { HsmError, type HsmErrorMeta } from "./errors.ts";

export interface SecretFileSpec {
  path: string;
  /** What the secret is, for messages: "PIN", "token", "keystore passphrase"... */
  what: string;
  /** The setting that names the file, e.g. PKCS11_PIN_FILE. */
  variable: string;
  meta?: HsmErrorMeta;
  /**
   * "whitespace" (default) trims both ends: tokens, PINs and client secrets never contain any.
   * "newline" strips only a final line break: a passphrase may end in a space.
   */
  trim?: "whitespace" | "newline";
  /** The secret must be one printable-ASCII token (no spaces or line breaks). */
  singleToken?: boolean;
}

const PRINTABLE_TOKEN = /^[\x21-\x7e]+$/;

export function readSecretFile(spec: SecretFileSpec): string {
  const where = `the ${spec.what} file ${spec.path} (${spec.variable})`;
  let raw: string;
  try {
    raw = readFileSync(spec.path, "utf8");
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code ?? "unreadable";
    throw new HsmError(
      "HSM_INVALID_CONFIG",
      `cannot read ${where}: ${code}; check the path and that the node's user may read it`,
      spec.meta,
    );
  }
  const secret = spec.trim === "newline" ? raw.replace(/\r?\n$/, "") : raw.trim();
  if (secret === "" || (spec.trim === "newline" && secret.trim() === "")) {
    throw new HsmError("HSM_INVALID_CONFIG", `${where} is empty`, spec.meta);
  }
  if (spec.singleToken && !PRINTABLE_TOKEN.test(secret)) {
    throw new HsmError(
      "HSM_INVALID_CONFIG",
      `${where} must hold exactly one token (printable ASCII, no spaces or line breaks)`,
      spec.meta,
    );
  }
  if (secret.includes("\n"))
    throw new HsmError("HSM_INVALID_CONFIG", `${where} holds more than one line`, spec.meta);
  return secret;
}
