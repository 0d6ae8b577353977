/**
 * The PKCS#11 Signer: Ed25519 with CKM_EDDSA over the message, P-256 with CKM_ECDSA over a
 * SHA-256 computed here (many tokens, SoftHSM2 among them, lack CKM_ECDSA_SHA256), raw r||s
 * normalised to low S. Key handles and sessions live in a SessionPool that recovers from lost
 * sessions and from the token going away and coming back.
 */
import { performance } from "node:perf_hooks";
import pkcs11js from "pkcs11js";
import type { Pkcs11Config } from "../../config.ts";
import { HsmError, type HsmErrorMeta } from "../../errors.ts";
import type { SignatureAlgorithm, Signer, SignerHealth } from "../../interface.ts";
import { normaliseP256, sha256 } from "../../signature.ts";
import { CKM_EDDSA } from "./constants.ts";
import { toHsmError } from "./errors.ts";
import { findSigningKey, type SigningKey } from "./keys.ts";
import type { Pkcs11Module } from "./module.ts";
import { openPkcs11Key } from "./openKey.ts";
import type { Pkcs11Options } from "./options.ts";
import type { SessionPool, SessionPoolMetrics } from "./sessionPool.ts";

export interface Pkcs11Signer extends Signer {
  /** Plain numbers about the session pool (the node turns them into metrics). */
  metrics(): SessionPoolMetrics;
}

const SIGNATURE_BYTES = 64;

class Pkcs11SignerImpl implements Pkcs11Signer {
  readonly provider = "pkcs11" as const;
  readonly keyId: string;
  readonly algorithm: SignatureAlgorithm;
  private readonly pool: SessionPool<SigningKey>;
  private readonly mod: Pkcs11Module;
  private readonly rawPublicKey: Uint8Array;
  private readonly meta: HsmErrorMeta;
  private closing: Promise<void> | null = null;

  constructor(
    keyId: string,
    key: SigningKey,
    pool: SessionPool<SigningKey>,
    mod: Pkcs11Module,
    meta: HsmErrorMeta,
  ) {
    this.keyId = keyId;
    this.algorithm = key.algorithm;
    this.rawPublicKey = key.publicKey;
    this.pool = pool;
    this.mod = mod;
    this.meta = meta;
  }

  async publicKey(): Promise<Uint8Array> {
    return Uint8Array.from(this.rawPublicKey);
  }

  async sign(message: Uint8Array): Promise<Uint8Array> {
    // Copied: the library reads it on another thread while the caller's buffer may change.
    const data = this.algorithm === "ed25519" ? Buffer.from(message) : Buffer.from(sha256(message));
    const mechanism = { mechanism: this.algorithm === "ed25519" ? CKM_EDDSA : pkcs11js.CKM_ECDSA };
    const signature = await this.pool.withSession(`signing with ${this.keyId}`, (p, lease) => {
      p.C_SignInit(lease.session, mechanism, lease.connection.keys.privateKey);
      return p.C_SignAsync(lease.session, data, Buffer.alloc(SIGNATURE_BYTES));
    });
    if (signature.length !== SIGNATURE_BYTES) {
      throw new HsmError(
        "HSM_BAD_RESPONSE",
        `${this.keyId} returned a ${signature.length}-byte signature, expected ${SIGNATURE_BYTES}`,
        this.meta,
      );
    }
    return this.algorithm === "ed25519" ? Uint8Array.from(signature) : normaliseP256(signature);
  }

  async health(): Promise<SignerHealth> {
    const started = performance.now();
    const base = { provider: this.provider, keyId: this.keyId };
    try {
      await this.pool.withSession(
        `health check of ${this.keyId}`,
        (p, lease) => {
          if (!this.pool.isLoggedIn(p.C_GetSessionInfo(lease.session).state)) this.pool.ensureLoggedIn(lease);
          const token = p.C_GetTokenInfo(lease.connection.token.slot);
          if (token.flags & pkcs11js.CKF_USER_PIN_LOCKED) {
            throw new HsmError(
              "HSM_AUTH_FAILED",
              `the user PIN of token ${JSON.stringify(lease.connection.token.label)} is locked`,
              this.meta,
            );
          }
        },
        2,
      );
      return { ...base, ok: true, latencyMs: performance.now() - started };
    } catch (e) {
      const err = toHsmError(e, `health check of ${this.keyId}`, this.meta);
      return {
        ...base,
        ok: false,
        latencyMs: performance.now() - started,
        code: err.code,
        detail: err.message,
      };
    }
  }

  metrics(): SessionPoolMetrics {
    return this.pool.metrics();
  }

  close(): Promise<void> {
    this.closing ??= (async () => {
      await this.pool.close();
      await this.mod.release();
    })();
    return this.closing;
  }
}

/**
 * Opens a signer on the key labelled `config.keyLabel` of the token labelled `config.tokenLabel`.
 * Fails here (not on the first sign) when the library, the token, the PIN or the key is wrong.
 */
export async function createPkcs11Signer(
  config: Pkcs11Config,
  options: Partial<Pkcs11Options> = {},
): Promise<Pkcs11Signer> {
  const { keyId, key, pool, mod, meta } = await openPkcs11Key<SigningKey>(config, options, {
    resolve: (p, session, cfg, keyMeta) => findSigningKey(p, session, cfg.tokenLabel, cfg.keyLabel, keyMeta),
    sameKey: (a, b) =>
      a.algorithm === b.algorithm && Buffer.from(a.publicKey).equals(Buffer.from(b.publicKey)),
  });
  return new Pkcs11SignerImpl(keyId, key, pool, mod, meta);
}
