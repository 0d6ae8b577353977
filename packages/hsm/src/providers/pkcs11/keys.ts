/**
 * Finding keys by CKA_LABEL and reading what the signer needs: the algorithm (from CKA_KEY_TYPE and
 * CKA_EC_PARAMS) and the raw public key (from CKA_EC_POINT, which tokens return either raw or
 * wrapped in a DER OCTET STRING).
 */
import { ECDH } from "node:crypto";
import pkcs11js from "pkcs11js";
import { HsmError, type HsmErrorMeta } from "../../errors.ts";
import type { SignatureAlgorithm } from "../../interface.ts";
import { rawPublicKeyFromSpki } from "../../signature.ts";
import {
  CKA_PUBLIC_KEY_INFO,
  CKK_EC_EDWARDS,
  DATA_KEY_BYTES,
  ED25519_NAME_DER,
  ED25519_OID_DER,
  P256_OID_DER,
} from "./constants.ts";
import { ckrOf, toHsmError } from "./errors.ts";
import type { Pkcs11 } from "./module.ts";

type Template = Parameters<Pkcs11["C_FindObjectsInit"]>[1];

export function findObjects(
  pkcs11: Pkcs11,
  session: Buffer,
  template: Template,
  meta: HsmErrorMeta,
): Buffer[] {
  try {
    pkcs11.C_FindObjectsInit(session, template);
    try {
      return pkcs11.C_FindObjects(session, 8);
    } finally {
      pkcs11.C_FindObjectsFinal(session);
    }
  } catch (e) {
    throw toHsmError(e, "C_FindObjects", meta);
  }
}

/** The values of the attributes, by type; absent or unreadable attributes are left out. */
export function readAttributes(
  pkcs11: Pkcs11,
  session: Buffer,
  object: Buffer,
  types: number[],
  meta: HsmErrorMeta,
): Map<number, Buffer> {
  const out = new Map<number, Buffer>();
  for (const type of types) {
    try {
      const [attr] = pkcs11.C_GetAttributeValue(session, object, [{ type }]);
      if (attr !== undefined) out.set(type, attr.value);
    } catch (e) {
      const ckr = ckrOf(e);
      // Not defined for this object, or sensitive: simply not there.
      if (ckr === pkcs11js.CKR_ATTRIBUTE_TYPE_INVALID || ckr === pkcs11js.CKR_ATTRIBUTE_SENSITIVE) continue;
      throw toHsmError(e, "C_GetAttributeValue", meta);
    }
  }
  return out;
}

/** CK_ULONG as stored by the platform (8 bytes on LP64, 4 on Windows). */
export function readUlong(value: Buffer | undefined): number | undefined {
  if (value === undefined) return undefined;
  if (value.length === 8) return Number(value.readBigUInt64LE());
  if (value.length === 4) return value.readUInt32LE();
  return undefined;
}

export function readBool(value: Buffer | undefined): boolean | undefined {
  return value === undefined || value.length === 0 ? undefined : value[0] !== 0;
}

export function describeKeyType(keyType: number | undefined): string {
  if (keyType === undefined) return "unknown";
  if (keyType === CKK_EC_EDWARDS) return "CKK_EC_EDWARDS";
  for (const [name, value] of Object.entries(pkcs11js))
    if (name.startsWith("CKK_") && value === keyType) return name;
  return `0x${keyType.toString(16)}`;
}

export function algorithmOf(
  keyType: number | undefined,
  ecParams: Buffer | undefined,
  what: string,
  meta: HsmErrorMeta,
): SignatureAlgorithm {
  if (keyType === CKK_EC_EDWARDS) {
    if (ecParams !== undefined && (ecParams.equals(ED25519_OID_DER) || ecParams.equals(ED25519_NAME_DER)))
      return "ed25519";
    throw new HsmError(
      "HSM_UNSUPPORTED_KEY",
      `${what} is an Edwards-curve key on a curve other than Ed25519 (CKA_EC_PARAMS ${ecParams?.toString("hex") ?? "missing"})`,
      meta,
    );
  }
  if (keyType === pkcs11js.CKK_EC) {
    if (ecParams?.equals(P256_OID_DER)) return "ecdsa-p256";
    throw new HsmError(
      "HSM_UNSUPPORTED_KEY",
      `${what} is an EC key on a curve other than P-256 (CKA_EC_PARAMS ${ecParams?.toString("hex") ?? "missing"}); supported: Ed25519, P-256`,
      meta,
    );
  }
  throw new HsmError(
    "HSM_UNSUPPORTED_KEY",
    `${what} has key type ${describeKeyType(keyType)}; supported: Ed25519 (CKK_EC_EDWARDS), P-256 (CKK_EC)`,
    meta,
  );
}

/** Strips a DER OCTET STRING around an EC point if there is one. */
function unwrapOctetString(value: Buffer): Buffer {
  if (value.length >= 2 && value[0] === 0x04) {
    const len = value[1]!;
    if (len < 0x80 && len === value.length - 2) return value.subarray(2);
    if (len === 0x81 && value.length >= 3 && value[2] === value.length - 3) return value.subarray(3);
  }
  return value;
}

/** Raw public key from CKA_EC_POINT: Ed25519 32 bytes, P-256 65-byte uncompressed SEC1. */
export function publicKeyFromEcPoint(
  point: Buffer,
  algorithm: SignatureAlgorithm,
  what: string,
  meta: HsmErrorMeta,
): Uint8Array {
  if (algorithm === "ed25519") {
    const raw = point.length === 32 ? point : unwrapOctetString(point);
    if (raw.length !== 32)
      throw new HsmError(
        "HSM_BAD_RESPONSE",
        `${what}: CKA_EC_POINT is not an Ed25519 point (${point.length} bytes)`,
        meta,
      );
    return Uint8Array.from(raw);
  }
  // A raw uncompressed point is 65 bytes starting with 04; wrapped it is 04 41 04 ...
  const raw = point.length === 65 && point[0] === 0x04 ? point : unwrapOctetString(point);
  if (raw.length === 65 && raw[0] === 0x04) return Uint8Array.from(raw);
  if (raw.length === 33 && (raw[0] === 0x02 || raw[0] === 0x03)) {
    try {
      return Uint8Array.from(
        ECDH.convertKey(raw, "prime256v1", undefined, undefined, "uncompressed") as Buffer,
      );
    } catch {
      // OpenSSL's own message ("Failed to convert Buffer to EC_POINT") reads as a backend fault.
      throw new HsmError("HSM_BAD_RESPONSE", `${what}: CKA_EC_POINT is not a point on P-256`, meta);
    }
  }
  throw new HsmError(
    "HSM_BAD_RESPONSE",
    `${what}: CKA_EC_POINT is not a P-256 point (${point.length} bytes)`,
    meta,
  );
}

export interface SigningKey {
  privateKey: Buffer;
  algorithm: SignatureAlgorithm;
  publicKey: Uint8Array;
}

/**
 * The private key labelled `keyLabel` and its public key (the CKO_PUBLIC_KEY with the same label,
 * or the private key's CKA_PUBLIC_KEY_INFO on tokens that keep no public key object).
 */
export function findSigningKey(
  pkcs11: Pkcs11,
  session: Buffer,
  tokenLabel: string,
  keyLabel: string,
  meta: HsmErrorMeta,
): SigningKey {
  const what = `key ${JSON.stringify(keyLabel)} on token ${JSON.stringify(tokenLabel)}`;
  const privates = findObjects(
    pkcs11,
    session,
    [
      { type: pkcs11js.CKA_CLASS, value: pkcs11js.CKO_PRIVATE_KEY },
      { type: pkcs11js.CKA_LABEL, value: keyLabel },
    ],
    meta,
  );
  if (privates.length === 0) {
    throw new HsmError(
      "HSM_KEY_NOT_FOUND",
      `no private key labelled ${JSON.stringify(keyLabel)} on PKCS#11 token ${JSON.stringify(tokenLabel)}`,
      {
        ...meta,
        keyLabel,
      },
    );
  }
  if (privates.length > 1) {
    throw new HsmError(
      "HSM_INVALID_CONFIG",
      `${privates.length} private keys are labelled ${JSON.stringify(keyLabel)} on token ${JSON.stringify(tokenLabel)}: labels must be unique`,
      meta,
    );
  }
  const privateKey = privates[0]!;
  const attrs = readAttributes(
    pkcs11,
    session,
    privateKey,
    [
      pkcs11js.CKA_KEY_TYPE,
      pkcs11js.CKA_EC_PARAMS,
      pkcs11js.CKA_SIGN,
      pkcs11js.CKA_ID,
      pkcs11js.CKA_ALWAYS_AUTHENTICATE,
      CKA_PUBLIC_KEY_INFO,
    ],
    meta,
  );
  const algorithm = algorithmOf(
    readUlong(attrs.get(pkcs11js.CKA_KEY_TYPE)),
    attrs.get(pkcs11js.CKA_EC_PARAMS),
    what,
    meta,
  );
  if (readBool(attrs.get(pkcs11js.CKA_SIGN)) === false) {
    throw new HsmError("HSM_UNSUPPORTED_KEY", `${what} may not sign (CKA_SIGN is false)`, meta);
  }
  if (readBool(attrs.get(pkcs11js.CKA_ALWAYS_AUTHENTICATE)) === true) {
    // Such a key wants the PIN again for every signature (CKU_CONTEXT_SPECIFIC): not for a validator.
    throw new HsmError(
      "HSM_UNSUPPORTED_KEY",
      `${what} has CKA_ALWAYS_AUTHENTICATE set; provision validator keys without it`,
      meta,
    );
  }

  const publics = findObjects(
    pkcs11,
    session,
    [
      { type: pkcs11js.CKA_CLASS, value: pkcs11js.CKO_PUBLIC_KEY },
      { type: pkcs11js.CKA_LABEL, value: keyLabel },
    ],
    meta,
  );
  if (publics.length > 1) {
    throw new HsmError(
      "HSM_INVALID_CONFIG",
      `${publics.length} public keys are labelled ${JSON.stringify(keyLabel)} on token ${JSON.stringify(tokenLabel)}: labels must be unique`,
      meta,
    );
  }
  const publicObject = publics[0];
  if (publicObject !== undefined) {
    const pub = readAttributes(pkcs11, session, publicObject, [pkcs11js.CKA_EC_POINT, pkcs11js.CKA_ID], meta);
    const privateId = attrs.get(pkcs11js.CKA_ID);
    const publicId = pub.get(pkcs11js.CKA_ID);
    if (
      privateId !== undefined &&
      publicId !== undefined &&
      privateId.length > 0 &&
      publicId.length > 0 &&
      !privateId.equals(publicId)
    ) {
      throw new HsmError(
        "HSM_INVALID_CONFIG",
        `the public and private keys labelled ${JSON.stringify(keyLabel)} have different CKA_ID values: they are not one key pair`,
        meta,
      );
    }
    const point = pub.get(pkcs11js.CKA_EC_POINT);
    if (point === undefined)
      throw new HsmError("HSM_BAD_RESPONSE", `${what}: the public key has no CKA_EC_POINT`, meta);
    return { privateKey, algorithm, publicKey: publicKeyFromEcPoint(point, algorithm, what, meta) };
  }
  const spki = attrs.get(CKA_PUBLIC_KEY_INFO);
  if (spki !== undefined && spki.length > 0)
    return { privateKey, algorithm, publicKey: rawPublicKeyFromSpki(spki, algorithm) };
  throw new HsmError(
    "HSM_KEY_NOT_FOUND",
    `no public key labelled ${JSON.stringify(keyLabel)} on PKCS#11 token ${JSON.stringify(tokenLabel)} (the private key exists)`,
    {
      ...meta,
      keyLabel,
    },
  );
}

/** The AES-256 secret key labelled `keyLabel`, checked to be usable for encrypt and decrypt. */
export function findWrapKey(
  pkcs11: Pkcs11,
  session: Buffer,
  tokenLabel: string,
  keyLabel: string,
  meta: HsmErrorMeta,
): Buffer {
  const what = `key ${JSON.stringify(keyLabel)} on token ${JSON.stringify(tokenLabel)}`;
  const keys = findObjects(
    pkcs11,
    session,
    [
      { type: pkcs11js.CKA_CLASS, value: pkcs11js.CKO_SECRET_KEY },
      { type: pkcs11js.CKA_LABEL, value: keyLabel },
    ],
    meta,
  );
  if (keys.length === 0) {
    throw new HsmError(
      "HSM_KEY_NOT_FOUND",
      `no secret key labelled ${JSON.stringify(keyLabel)} on PKCS#11 token ${JSON.stringify(tokenLabel)}`,
      { ...meta, keyLabel },
    );
  }
  if (keys.length > 1) {
    throw new HsmError(
      "HSM_INVALID_CONFIG",
      `${keys.length} secret keys are labelled ${JSON.stringify(keyLabel)} on token ${JSON.stringify(tokenLabel)}: labels must be unique`,
      meta,
    );
  }
  const key = keys[0]!;
  const attrs = readAttributes(
    pkcs11,
    session,
    key,
    [pkcs11js.CKA_KEY_TYPE, pkcs11js.CKA_VALUE_LEN, pkcs11js.CKA_ENCRYPT, pkcs11js.CKA_DECRYPT],
    meta,
  );
  const keyType = readUlong(attrs.get(pkcs11js.CKA_KEY_TYPE));
  const length = readUlong(attrs.get(pkcs11js.CKA_VALUE_LEN));
  if (keyType !== pkcs11js.CKK_AES || (length !== undefined && length !== DATA_KEY_BYTES)) {
    throw new HsmError(
      "HSM_UNSUPPORTED_KEY",
      `${what} is ${describeKeyType(keyType)}${length === undefined ? "" : ` of ${length * 8} bits`}; the storage key wrapper needs an AES-256 key`,
      meta,
    );
  }
  if (
    readBool(attrs.get(pkcs11js.CKA_ENCRYPT)) === false ||
    readBool(attrs.get(pkcs11js.CKA_DECRYPT)) === false
  ) {
    throw new HsmError(
      "HSM_UNSUPPORTED_KEY",
      `${what} must allow CKA_ENCRYPT and CKA_DECRYPT (AES-GCM wrapping of the storage key)`,
      meta,
    );
  }
  return key;
}
