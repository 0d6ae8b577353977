/**
 * Wraps the node's 32-byte storage data key with an AES-256 key that never leaves the token:
 * CKM_AES_GCM (C_Encrypt / C_Decrypt) with a fresh random 96-bit IV, a 128-bit tag and the AAD
 * "vitalstream-storage-key". GCM rather than CKM_AES_KEY_WRAP(_PAD): the data key lives in the
 * node's memory, not on the token, so it is data to encrypt, and GCM authenticates it with an AAD
 * that binds the ciphertext to its purpose. SoftHSM2 2.6.1 implements CKM_AES_GCM with the
 * PKCS#11 2.40 CK_GCM_PARAMS (the one with ulIvBits).
 */
import { randomBytes } from "node:crypto";
import pkcs11js from "pkcs11js";
import type { Pkcs11Config } from "../../config.ts";
import { HsmError, type HsmErrorMeta } from "../../errors.ts";
import type { KeyWrapper, WrappedKeyEnvelope } from "../../interface.ts";
import {
  CKR_AEAD_DECRYPT_FAILED,
  DATA_KEY_BYTES,
  WRAP_AAD,
  WRAP_IV_BYTES,
  WRAP_TAG_BITS,
} from "./constants.ts";
import { ckrName, ckrOf } from "./errors.ts";
import { findWrapKey } from "./keys.ts";
import type { Pkcs11Module } from "./module.ts";
import { openPkcs11Key } from "./openKey.ts";
import type { Pkcs11Options } from "./options.ts";
import type { SessionPool } from "./sessionPool.ts";

export const PKCS11_WRAP_MECHANISM = "CKM_AES_GCM";

export interface Pkcs11WrappedKeyEnvelope extends WrappedKeyEnvelope {
  provider: "pkcs11";
  mechanism: typeof PKCS11_WRAP_MECHANISM;
  /** base64 of the 12-byte IV. */
  iv: string;
  /** base64 of the encrypted data key followed by the 16-byte tag. */
  ciphertext: string;
}

const TAG_BYTES = WRAP_TAG_BITS / 8;
/** What a tag mismatch looks like across tokens (SoftHSM2 answers CKR_GENERAL_ERROR). */
const DECRYPT_REJECTED = new Set([
  pkcs11js.CKR_ENCRYPTED_DATA_INVALID,
  pkcs11js.CKR_ENCRYPTED_DATA_LEN_RANGE,
  pkcs11js.CKR_DATA_INVALID,
  pkcs11js.CKR_DATA_LEN_RANGE,
  pkcs11js.CKR_SIGNATURE_INVALID,
  pkcs11js.CKR_GENERAL_ERROR,
  pkcs11js.CKR_FUNCTION_FAILED,
  CKR_AEAD_DECRYPT_FAILED,
]);

function gcm(iv: Buffer) {
  return {
    mechanism: pkcs11js.CKM_AES_GCM,
    parameter: {
      type: pkcs11js.CK_PARAMS_AES_GCM_v240,
      iv,
      ivBits: WRAP_IV_BYTES * 8,
      aad: WRAP_AAD,
      tagBits: WRAP_TAG_BITS,
    },
  };
}

function base64Field(
  envelope: Record<string, unknown>,
  field: string,
  bytes: number,
  corrupt: (why: string) => HsmError,
): Buffer {
  const value = envelope[field];
  if (typeof value !== "string" || !/^[A-Za-z0-9+/]*={0,2}$/.test(value))
    throw corrupt(`"${field}" is not base64`);
  const out = Buffer.from(value, "base64");
  if (out.length !== bytes) throw corrupt(`"${field}" must be ${bytes} bytes, got ${out.length}`);
  return out;
}

/** Parses and checks an envelope; anything malformed is HSM_KEYSTORE_CORRUPT, a foreign key HSM_INVALID_CONFIG. */
export function parsePkcs11Envelope(
  blob: Uint8Array,
  keyId: string,
  meta: HsmErrorMeta,
): { iv: Buffer; ciphertext: Buffer } {
  const corrupt = (why: string) =>
    new HsmError(
      "HSM_KEYSTORE_CORRUPT",
      `the wrapped storage key is not a valid vitalstream-wrapped-key envelope: ${why}`,
      meta,
    );
  let parsed: unknown;
  try {
    parsed = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(blob));
  } catch {
    throw corrupt("not UTF-8 JSON");
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed))
    throw corrupt("not a JSON object");
  const envelope = parsed as Record<string, unknown>;
  if (envelope.format !== "vitalstream-wrapped-key")
    throw corrupt(`"format" is ${JSON.stringify(envelope.format)}`);
  if (envelope.version !== 1) throw corrupt(`unsupported version ${JSON.stringify(envelope.version)}`);
  if (envelope.provider !== "pkcs11") {
    throw new HsmError(
      "HSM_INVALID_CONFIG",
      `the storage key was wrapped by provider ${JSON.stringify(envelope.provider)}, but the configured provider is pkcs11`,
      meta,
    );
  }
  if (envelope.keyId !== keyId) {
    throw new HsmError(
      "HSM_INVALID_CONFIG",
      `the storage key was wrapped with ${JSON.stringify(envelope.keyId)}, but this wrapper uses ${keyId}`,
      meta,
    );
  }
  if (envelope.mechanism !== PKCS11_WRAP_MECHANISM)
    throw corrupt(`unsupported mechanism ${JSON.stringify(envelope.mechanism)}`);
  return {
    iv: base64Field(envelope, "iv", WRAP_IV_BYTES, corrupt),
    ciphertext: base64Field(envelope, "ciphertext", DATA_KEY_BYTES + TAG_BYTES, corrupt),
  };
}

class Pkcs11KeyWrapper implements KeyWrapper {
  readonly provider = "pkcs11" as const;
  readonly keyId: string;
  private readonly pool: SessionPool<Buffer>;
  private readonly mod: Pkcs11Module;
  private readonly meta: HsmErrorMeta;
  private closing: Promise<void> | null = null;

  constructor(keyId: string, pool: SessionPool<Buffer>, mod: Pkcs11Module, meta: HsmErrorMeta) {
    this.keyId = keyId;
    this.pool = pool;
    this.mod = mod;
    this.meta = meta;
  }

  async wrap(dataKey: Uint8Array): Promise<Uint8Array> {
    if (dataKey.length !== DATA_KEY_BYTES) {
      throw new HsmError(
        "HSM_INVALID_CONFIG",
        `the storage data key must be ${DATA_KEY_BYTES} bytes, got ${dataKey.length}`,
        this.meta,
      );
    }
    const iv = randomBytes(WRAP_IV_BYTES);
    const plain = Buffer.from(dataKey);
    try {
      const ciphertext = await this.pool.withSession(
        `wrapping the storage key with ${this.keyId}`,
        (p, lease) => {
          p.C_EncryptInit(lease.session, gcm(iv), lease.connection.keys);
          return p.C_EncryptAsync(lease.session, plain, Buffer.alloc(DATA_KEY_BYTES + TAG_BYTES));
        },
      );
      if (ciphertext.length !== DATA_KEY_BYTES + TAG_BYTES) {
        throw new HsmError(
          "HSM_BAD_RESPONSE",
          `AES-GCM returned ${ciphertext.length} bytes, expected ${DATA_KEY_BYTES + TAG_BYTES}`,
          this.meta,
        );
      }
      const envelope: Pkcs11WrappedKeyEnvelope = {
        format: "vitalstream-wrapped-key",
        version: 1,
        provider: "pkcs11",
        keyId: this.keyId,
        mechanism: PKCS11_WRAP_MECHANISM,
        iv: iv.toString("base64"),
        ciphertext: Buffer.from(ciphertext).toString("base64"),
      };
      return new TextEncoder().encode(`${JSON.stringify(envelope)}\n`);
    } finally {
      plain.fill(0);
    }
  }

  async unwrap(blob: Uint8Array): Promise<Uint8Array> {
    const { iv, ciphertext } = parsePkcs11Envelope(blob, this.keyId, this.meta);
    const plain = await this.pool.withSession(
      `unwrapping the storage key with ${this.keyId}`,
      async (p, lease) => {
        p.C_DecryptInit(lease.session, gcm(iv), lease.connection.keys);
        try {
          return await p.C_DecryptAsync(lease.session, ciphertext, Buffer.alloc(ciphertext.length));
        } catch (e) {
          const ckr = ckrOf(e);
          // A tag mismatch, unless the token itself stopped answering (then the pool recovers).
          if (ckr === undefined || !DECRYPT_REJECTED.has(ckr) || !tokenAnswers()) throw e;
          lease.discard = true; // the session's decrypt state after a failure is the token's business
          const status = ckrName(ckr);
          throw new HsmError(
            "HSM_UNWRAP_FAILED",
            `the wrapped storage key does not authenticate under ${this.keyId} (${status}): it was altered, or wrapped with another key`,
            { ...this.meta, status, ckr },
            { cause: e },
          );
        }
        function tokenAnswers(): boolean {
          try {
            p.C_GetTokenInfo(lease.connection.token.slot);
            return true;
          } catch {
            return false;
          }
        }
      },
    );
    if (plain.length !== DATA_KEY_BYTES) {
      throw new HsmError(
        "HSM_UNWRAP_FAILED",
        `the unwrapped storage key is ${plain.length} bytes, expected ${DATA_KEY_BYTES}`,
        this.meta,
      );
    }
    const out = Uint8Array.from(plain);
    plain.fill(0);
    return out;
  }

  close(): Promise<void> {
    this.closing ??= (async () => {
      await this.pool.close();
      await this.mod.release();
    })();
    return this.closing;
  }
}

/** Opens the storage-key wrapper on the AES-256 key labelled `config.keyLabel`. */
export async function createPkcs11KeyWrapper(
  config: Pkcs11Config,
  options: Partial<Pkcs11Options> = {},
): Promise<KeyWrapper> {
  const { keyId, pool, mod, meta } = await openPkcs11Key<Buffer>(config, options, {
    resolve: (p, session, cfg, keyMeta) => findWrapKey(p, session, cfg.tokenLabel, cfg.keyLabel, keyMeta),
    // Secret keys have no public part to compare; a replaced key shows up as HSM_UNWRAP_FAILED.
    sameKey: () => true,
  });
  return new Pkcs11KeyWrapper(keyId, pool, mod, meta);
}
