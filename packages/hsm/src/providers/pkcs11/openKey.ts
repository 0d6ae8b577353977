/**
 * What the signer and the wrapper share when they open: check the config and the PIN file before
 * touching the library, open the module, start a session pool that resolves the key, and undo all
 * of it on failure with an error that names the key.
 */
import type { Pkcs11Config } from "../../config.ts";
import type { HsmErrorMeta } from "../../errors.ts";
import { toHsmError } from "./errors.ts";
import { type Pkcs11, Pkcs11Module } from "./module.ts";
import { checkPkcs11Config, defaultPkcs11Options, type Pkcs11Options } from "./options.ts";
import { SessionPool } from "./sessionPool.ts";
import { pkcs11KeyUri, readPin } from "./token.ts";

export interface OpenedKey<K> {
  keyId: string;
  meta: HsmErrorMeta;
  key: K;
  pool: SessionPool<K>;
  mod: Pkcs11Module;
}

export async function openPkcs11Key<K>(
  config: Pkcs11Config,
  options: Partial<Pkcs11Options>,
  find: {
    resolve(p: Pkcs11, session: Buffer, cfg: Pkcs11Config, meta: HsmErrorMeta): K;
    /** Whether a key found again after a session loss is the same key. */
    sameKey(a: K, b: K): boolean;
  },
): Promise<OpenedKey<K>> {
  const cfg = checkPkcs11Config(config);
  const keyId = pkcs11KeyUri(cfg.tokenLabel, cfg.keyLabel);
  const meta: HsmErrorMeta = { provider: "pkcs11", keyId };
  readPin(cfg.pinFile, meta); // a missing or empty PIN file is a configuration error, before any library call
  const mod = await Pkcs11Module.open(cfg.library);
  const pool = new SessionPool<K>(
    mod,
    {
      library: cfg.library,
      tokenLabel: cfg.tokenLabel,
      pinFile: cfg.pinFile,
      size: cfg.poolSize,
      meta,
      resolve: (p, session) => find.resolve(p, session, cfg, meta),
      sameKey: find.sameKey,
    },
    { ...defaultPkcs11Options, ...options },
  );
  try {
    const key = await pool.start();
    return { keyId, meta, key, pool, mod };
  } catch (e) {
    await pool.close();
    await mod.release();
    throw toHsmError(e, `opening ${keyId}`, meta);
  }
}
