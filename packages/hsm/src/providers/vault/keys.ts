/**
 * Reading what `GET <mount>/keys/<name>` returns, and the `vault:v<N>:<base64>` strings that
 * sign, encrypt and decrypt exchange. Anything unexpected is HSM_BAD_RESPONSE: a validator signs
 * only with a key it fully understands.
 */
import { createPublicKey } from "node:crypto";
import { HsmError } from "../../errors.ts";
import type { SignatureAlgorithm } from "../../interface.ts";
import { rawPublicKeyFromKeyObject } from "../../signature.ts";
import type { VaultData } from "./client.ts";
import { vaultError } from "./errors.ts";

export interface TransitKeyInfo {
  type: string;
  latestVersion: number;
  minEncryptionVersion: number;
  minDecryptionVersion: number;
  derived: boolean;
  /** Per version: the asymmetric key entry (`{name, public_key, ...}`) or a creation time. */
  versions: Record<string, unknown>;
}

/** The transit key types whose AEAD Vault can wrap a data key with (and bind associated data). */
export const WRAPPING_KEY_TYPES: ReadonlySet<string> = new Set([
  "aes256-gcm96",
  "aes128-gcm96",
  "chacha20-poly1305",
  "xchacha20-poly1305",
]);

const SIGNING_TYPES: Record<string, SignatureAlgorithm> = { ed25519: "ed25519", "ecdsa-p256": "ecdsa-p256" };

type Ctx = { keyId: string };

function bad(ctx: Ctx, what: string): HsmError {
  return vaultError("HSM_BAD_RESPONSE", ctx, `unexpected key description from Vault: ${what}`);
}

function version(value: unknown): number | undefined {
  return typeof value === "number" && Number.isSafeInteger(value) && value >= 0 ? value : undefined;
}

export function parseKeyInfo(data: VaultData, ctx: Ctx): TransitKeyInfo {
  const type = data.type;
  const latestVersion = version(data.latest_version);
  const versions = data.keys;
  if (typeof type !== "string") throw bad(ctx, "no key type");
  if (latestVersion === undefined || latestVersion < 1) throw bad(ctx, "no latest_version");
  if (typeof versions !== "object" || versions === null || Array.isArray(versions)) throw bad(ctx, "no keys");
  return {
    type,
    latestVersion,
    minEncryptionVersion: version(data.min_encryption_version) ?? 0,
    minDecryptionVersion: version(data.min_decryption_version) ?? 0,
    derived: data.derived === true,
    versions: versions as Record<string, unknown>,
  };
}

export function signingAlgorithm(info: TransitKeyInfo, ctx: Ctx): SignatureAlgorithm {
  const algorithm = SIGNING_TYPES[info.type];
  if (algorithm === undefined) {
    throw vaultError(
      "HSM_UNSUPPORTED_KEY",
      ctx,
      `transit key type "${info.type}" cannot sign consensus messages: create the key with type=ed25519 or type=ecdsa-p256`,
    );
  }
  if (info.derived) {
    throw vaultError(
      "HSM_UNSUPPORTED_KEY",
      ctx,
      "derived (per-context) keys are not supported: create the signing key without derived=true",
    );
  }
  return algorithm;
}

/** The raw public key (Ed25519 32 bytes, P-256 65-byte SEC1) of one key version. */
export function versionPublicKey(
  info: TransitKeyInfo,
  keyVersion: number,
  algorithm: SignatureAlgorithm,
  ctx: Ctx,
): Uint8Array {
  const entry = info.versions[String(keyVersion)];
  const encoded =
    typeof entry === "object" && entry !== null ? (entry as { public_key?: unknown }).public_key : undefined;
  if (typeof encoded !== "string" || encoded === "")
    throw bad(ctx, `no public_key for version ${keyVersion}`);
  if (algorithm === "ed25519") {
    const raw = strictBase64(encoded);
    if (raw === undefined || raw.length !== 32)
      throw bad(ctx, `Ed25519 public_key of version ${keyVersion} is not 32 bytes`);
    return raw;
  }
  try {
    return rawPublicKeyFromKeyObject(createPublicKey({ key: encoded, format: "pem" }), "ecdsa-p256");
  } catch (e) {
    if (e instanceof HsmError && e.code === "HSM_UNSUPPORTED_KEY") throw vaultError(e.code, ctx, e.message);
    throw bad(ctx, `P-256 public_key of version ${keyVersion} is not a PEM public key`);
  }
}

const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/** Standard padded base64 only (Buffer.from would silently skip junk). */
export function strictBase64(text: string): Uint8Array | undefined {
  if (!BASE64.test(text)) return undefined;
  return new Uint8Array(Buffer.from(text, "base64"));
}

const VAULT_VALUE = /^vault:v([1-9][0-9]{0,9}):(.+)$/;

/** Splits `vault:v<N>:<base64>`; undefined when it is not exactly that. */
export function parseVaultValue(value: unknown): { keyVersion: number; bytes: Uint8Array } | undefined {
  if (typeof value !== "string") return undefined;
  const match = VAULT_VALUE.exec(value);
  if (match === null) return undefined;
  const bytes = strictBase64(match[2]!);
  if (bytes === undefined || bytes.length === 0) return undefined;
  return { keyVersion: Number(match[1]), bytes };
}
