/**
 * Creating keys on a token (for tests now, for `vitalstream keys` later): a signing key pair whose
 * private half is a sensitive, non-extractable token object, and an AES-256 key for wrapping the
 * storage key. Both are generated inside the token; the attributes are read back and checked.
 */
import { randomBytes } from "node:crypto";
import pkcs11js from "pkcs11js";
import { HsmError, type HsmErrorMeta } from "../../errors.ts";
import type { SignatureAlgorithm } from "../../interface.ts";
import { CKM_EC_EDWARDS_KEY_PAIR_GEN, CKM_EDDSA, ED25519_OID_DER, P256_OID_DER } from "./constants.ts";
import { toHsmError } from "./errors.ts";
import { findObjects, findSigningKey, findWrapKey, readAttributes, readBool } from "./keys.ts";
import { type Pkcs11, Pkcs11Module } from "./module.ts";
import { ensureLoggedIn, findToken, openSession, pkcs11KeyUri, type TokenRef } from "./token.ts";

export interface Pkcs11KeyTarget {
  /** Path of the PKCS#11 library. */
  library: string;
  tokenLabel: string;
  /** File holding the user PIN. */
  pinFile: string;
  /** CKA_LABEL of the new key (of both halves of a key pair). */
  keyLabel: string;
}

export interface ProvisionedSigningKey {
  keyId: string;
  algorithm: SignatureAlgorithm;
  /** Raw public key (Ed25519 32 bytes, P-256 65-byte SEC1). */
  publicKey: Uint8Array;
}

type Session = { pkcs11: Pkcs11; session: Buffer; token: TokenRef };

async function withUserSession<T>(
  target: Pkcs11KeyTarget,
  meta: HsmErrorMeta,
  fn: (s: Session) => T,
): Promise<T> {
  const mod = await Pkcs11Module.open(target.library);
  try {
    return await mod.run((pkcs11) => {
      const token = findToken(pkcs11, target.library, target.tokenLabel, { wasPresent: false, meta });
      const session = openSession(pkcs11, token, meta);
      try {
        ensureLoggedIn(mod, session, token, target.pinFile, meta);
        return fn({ pkcs11, session, token });
      } finally {
        try {
          pkcs11.C_CloseSession(session);
        } catch {
          // closed already
        }
      }
    });
  } finally {
    await mod.release();
  }
}

function refuseExistingLabel(
  { pkcs11, session }: Session,
  target: Pkcs11KeyTarget,
  meta: HsmErrorMeta,
): void {
  const existing = findObjects(pkcs11, session, [{ type: pkcs11js.CKA_LABEL, value: target.keyLabel }], meta);
  if (existing.length > 0) {
    throw new HsmError(
      "HSM_INVALID_CONFIG",
      `token ${JSON.stringify(target.tokenLabel)} already holds ${existing.length} object(s) labelled ${JSON.stringify(target.keyLabel)}: refusing to create another key with that label`,
      meta,
    );
  }
}

function requireMechanisms({ pkcs11, token }: Session, needed: [number, string][], meta: HsmErrorMeta): void {
  let supported: number[];
  try {
    supported = pkcs11.C_GetMechanismList(token.slot);
  } catch (e) {
    throw toHsmError(e, `C_GetMechanismList on token ${JSON.stringify(token.label)}`, meta);
  }
  const missing = needed.filter(([m]) => !supported.includes(m)).map(([, name]) => name);
  if (missing.length > 0) {
    throw new HsmError(
      "HSM_UNSUPPORTED_KEY",
      `token ${JSON.stringify(token.label)} does not support ${missing.join(", ")}`,
      meta,
    );
  }
}

/** Reads the protection attributes back: a token that ignored the template must not keep the key. */
function checkProtected(
  { pkcs11, session }: Session,
  objects: Buffer[],
  what: string,
  meta: HsmErrorMeta,
): void {
  for (const object of objects) {
    const a = readAttributes(
      pkcs11,
      session,
      object,
      [pkcs11js.CKA_SENSITIVE, pkcs11js.CKA_EXTRACTABLE, pkcs11js.CKA_TOKEN],
      meta,
    );
    if (
      readBool(a.get(pkcs11js.CKA_SENSITIVE)) !== true ||
      readBool(a.get(pkcs11js.CKA_EXTRACTABLE)) !== false ||
      readBool(a.get(pkcs11js.CKA_TOKEN)) !== true
    ) {
      for (const o of objects) {
        try {
          pkcs11.C_DestroyObject(session, o);
        } catch {
          // best effort: the error below says what happened
        }
      }
      throw new HsmError(
        "HSM_UNSUPPORTED_KEY",
        `the token did not create ${what} as a sensitive, non-extractable token object; it was deleted`,
        meta,
      );
    }
  }
}

/**
 * Generates a signing key pair on the token: CKA_TOKEN, CKA_PRIVATE, CKA_SENSITIVE and CKA_SIGN
 * true, CKA_EXTRACTABLE false on the private key; both halves carry `keyLabel` and one random
 * CKA_ID. Refuses when an object with that label exists.
 */
export async function provisionPkcs11Key(
  target: Pkcs11KeyTarget & { algorithm: SignatureAlgorithm },
): Promise<ProvisionedSigningKey> {
  const keyId = pkcs11KeyUri(target.tokenLabel, target.keyLabel);
  const meta: HsmErrorMeta = { provider: "pkcs11", keyId };
  const ed = target.algorithm === "ed25519";
  return withUserSession(target, meta, (s) => {
    refuseExistingLabel(s, target, meta);
    requireMechanisms(
      s,
      ed
        ? [
            [CKM_EC_EDWARDS_KEY_PAIR_GEN, "CKM_EC_EDWARDS_KEY_PAIR_GEN"],
            [CKM_EDDSA, "CKM_EDDSA"],
          ]
        : [
            [pkcs11js.CKM_EC_KEY_PAIR_GEN, "CKM_EC_KEY_PAIR_GEN"],
            [pkcs11js.CKM_ECDSA, "CKM_ECDSA"],
          ],
      meta,
    );
    const id = randomBytes(16);
    const common = [
      { type: pkcs11js.CKA_TOKEN, value: true },
      { type: pkcs11js.CKA_LABEL, value: target.keyLabel },
      { type: pkcs11js.CKA_ID, value: id },
    ];
    let pair: { privateKey: Buffer; publicKey: Buffer };
    try {
      pair = s.pkcs11.C_GenerateKeyPair(
        s.session,
        { mechanism: ed ? CKM_EC_EDWARDS_KEY_PAIR_GEN : pkcs11js.CKM_EC_KEY_PAIR_GEN },
        [
          ...common,
          { type: pkcs11js.CKA_PRIVATE, value: false },
          { type: pkcs11js.CKA_VERIFY, value: true },
          { type: pkcs11js.CKA_EC_PARAMS, value: ed ? ED25519_OID_DER : P256_OID_DER },
        ],
        [
          ...common,
          { type: pkcs11js.CKA_PRIVATE, value: true },
          { type: pkcs11js.CKA_SENSITIVE, value: true },
          { type: pkcs11js.CKA_EXTRACTABLE, value: false },
          { type: pkcs11js.CKA_SIGN, value: true },
          { type: pkcs11js.CKA_DERIVE, value: false },
        ],
      );
    } catch (e) {
      throw toHsmError(e, `generating ${target.algorithm} key ${keyId}`, meta);
    }
    checkProtected(s, [pair.privateKey], `private key ${keyId}`, meta);
    const key = findSigningKey(s.pkcs11, s.session, target.tokenLabel, target.keyLabel, meta);
    return { keyId, algorithm: key.algorithm, publicKey: key.publicKey };
  });
}

/**
 * Generates the AES-256 key that wraps the storage key: sensitive, non-extractable, allowed to
 * encrypt and decrypt (AES-GCM over the data key) and nothing else.
 */
export async function provisionPkcs11WrapKey(target: Pkcs11KeyTarget): Promise<{ keyId: string }> {
  const keyId = pkcs11KeyUri(target.tokenLabel, target.keyLabel);
  const meta: HsmErrorMeta = { provider: "pkcs11", keyId };
  return withUserSession(target, meta, (s) => {
    refuseExistingLabel(s, target, meta);
    requireMechanisms(
      s,
      [
        [pkcs11js.CKM_AES_KEY_GEN, "CKM_AES_KEY_GEN"],
        [pkcs11js.CKM_AES_GCM, "CKM_AES_GCM"],
      ],
      meta,
    );
    let key: Buffer;
    try {
      key = s.pkcs11.C_GenerateKey(s.session, { mechanism: pkcs11js.CKM_AES_KEY_GEN }, [
        { type: pkcs11js.CKA_CLASS, value: pkcs11js.CKO_SECRET_KEY },
        { type: pkcs11js.CKA_KEY_TYPE, value: pkcs11js.CKK_AES },
        { type: pkcs11js.CKA_VALUE_LEN, value: 32 },
        { type: pkcs11js.CKA_TOKEN, value: true },
        { type: pkcs11js.CKA_PRIVATE, value: true },
        { type: pkcs11js.CKA_SENSITIVE, value: true },
        { type: pkcs11js.CKA_EXTRACTABLE, value: false },
        { type: pkcs11js.CKA_ENCRYPT, value: true },
        { type: pkcs11js.CKA_DECRYPT, value: true },
        { type: pkcs11js.CKA_WRAP, value: false },
        { type: pkcs11js.CKA_UNWRAP, value: false },
        { type: pkcs11js.CKA_SIGN, value: false },
        { type: pkcs11js.CKA_VERIFY, value: false },
        { type: pkcs11js.CKA_DERIVE, value: false },
        { type: pkcs11js.CKA_LABEL, value: target.keyLabel },
        { type: pkcs11js.CKA_ID, value: randomBytes(16) },
      ]);
    } catch (e) {
      throw toHsmError(e, `generating AES-256 key ${keyId}`, meta);
    }
    checkProtected(s, [key], `AES key ${keyId}`, meta);
    findWrapKey(s.pkcs11, s.session, target.tokenLabel, target.keyLabel, meta);
    return { keyId };
  });
}
