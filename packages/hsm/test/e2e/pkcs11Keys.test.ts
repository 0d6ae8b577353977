/**
 * The PKCS#11 provider against a real SoftHSM2 token, for what an operator gets wrong on the token
 * (keys made by hand or by other tools: duplicate labels, keys that may not sign, mismatched
 * pairs, wrong wrapping keys) and for the pool's bounds (operation and session timeouts) and a key
 * swapped under its label while the node runs.
 */
import { randomBytes } from "node:crypto";
import pkcs11js from "pkcs11js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CKM_EC_EDWARDS_KEY_PAIR_GEN, ED25519_OID_DER } from "../../src/providers/pkcs11/constants.ts";
import {
  createPkcs11KeyWrapper,
  createPkcs11Signer,
  isPkcs11Available,
  pkcs11ModuleStats,
  provisionPkcs11Key,
} from "../../src/providers/pkcs11/index.ts";
import { type Pkcs11, Pkcs11Module } from "../../src/providers/pkcs11/module.ts";
import { verifySignature } from "../../src/signature.ts";
import { hsmErrorOf } from "../compliance/signerCompliance.ts";
import { findSoftHsm, SoftHsm, type SoftHsmToken } from "../fixtures/softhsm.ts";

const install = findSoftHsm();
if ("missing" in install)
  throw new Error(`softhsm2 is required (apt-get install softhsm2): ${install.missing}`);

const hsm = SoftHsm.create(install);
const library = hsm.library;
let token: SoftHsmToken;

type Attrs = { type: number; value: boolean | number | string | Buffer }[];

/** Direct access to the token, as another tool or an operator would have. */
async function raw<T>(fn: (p: Pkcs11, session: Buffer) => T): Promise<T> {
  const mod = await Pkcs11Module.open(library);
  try {
    await mod.ready();
    const p = mod.pkcs11;
    const slot = p.C_GetSlotList(true).find((s) => p.C_GetTokenInfo(s).label.trimEnd() === token.label);
    if (slot === undefined) throw new Error(`token ${token.label} not found`);
    const session = p.C_OpenSession(slot, pkcs11js.CKF_RW_SESSION | pkcs11js.CKF_SERIAL_SESSION);
    try {
      try {
        p.C_Login(session, pkcs11js.CKU_USER, token.pin);
      } catch (e) {
        if ((e as { code?: number }).code !== pkcs11js.CKR_USER_ALREADY_LOGGED_IN) throw e;
      }
      return fn(p, session);
    } finally {
      p.C_CloseSession(session);
    }
  } finally {
    await mod.release();
  }
}

/** An Ed25519 pair made by hand: `extra` overrides the defaults of either half. */
function edPair(
  p: Pkcs11,
  session: Buffer,
  label: string,
  extra: { public?: Attrs; private?: Attrs; publicId?: Buffer } = {},
): { privateKey: Buffer; publicKey: Buffer } {
  const id = randomBytes(8);
  return p.C_GenerateKeyPair(
    session,
    { mechanism: CKM_EC_EDWARDS_KEY_PAIR_GEN },
    [
      { type: pkcs11js.CKA_TOKEN, value: true },
      { type: pkcs11js.CKA_LABEL, value: label },
      { type: pkcs11js.CKA_ID, value: extra.publicId ?? id },
      { type: pkcs11js.CKA_VERIFY, value: true },
      { type: pkcs11js.CKA_EC_PARAMS, value: ED25519_OID_DER },
      ...(extra.public ?? []),
    ],
    [
      { type: pkcs11js.CKA_TOKEN, value: true },
      { type: pkcs11js.CKA_PRIVATE, value: true },
      { type: pkcs11js.CKA_SENSITIVE, value: true },
      { type: pkcs11js.CKA_LABEL, value: label },
      { type: pkcs11js.CKA_ID, value: id },
      { type: pkcs11js.CKA_SIGN, value: true },
      ...(extra.private ?? []),
    ],
  );
}

function aesKey(p: Pkcs11, session: Buffer, label: string, bytes: number, extra: Attrs = []): Buffer {
  return p.C_GenerateKey(session, { mechanism: pkcs11js.CKM_AES_KEY_GEN }, [
    { type: pkcs11js.CKA_TOKEN, value: true },
    { type: pkcs11js.CKA_PRIVATE, value: true },
    { type: pkcs11js.CKA_SENSITIVE, value: true },
    { type: pkcs11js.CKA_VALUE_LEN, value: bytes },
    { type: pkcs11js.CKA_LABEL, value: label },
    { type: pkcs11js.CKA_ENCRYPT, value: true },
    { type: pkcs11js.CKA_DECRYPT, value: true },
    ...extra,
  ]);
}

function findAll(p: Pkcs11, session: Buffer, label: string): Buffer[] {
  p.C_FindObjectsInit(session, [{ type: pkcs11js.CKA_LABEL, value: label }]);
  try {
    return p.C_FindObjects(session, 16);
  } finally {
    p.C_FindObjectsFinal(session);
  }
}

const config = (keyLabel: string, extra: { poolSize?: number } = {}) => ({
  provider: "pkcs11" as const,
  library,
  tokenLabel: token.label,
  pinFile: token.pinFile,
  keyLabel,
  poolSize: extra.poolSize ?? 2,
});

beforeAll(() => {
  token = hsm.initToken("vs-keys");
});
afterAll(() => hsm.destroy());

describe("pkcs11 (SoftHSM2): keys an operator set up wrongly", () => {
  // First in this file: nothing has loaded the library in this process yet.
  it("a startup check loads the library without initialising it (tokens are read later)", () => {
    expect(pkcs11ModuleStats(library)).toBeUndefined();
    expect(isPkcs11Available(library)).toEqual({ available: true });
    expect(pkcs11ModuleStats(library)).toMatchObject({ users: 0, initialized: false });
  });

  it("two private keys with one label: HSM_INVALID_CONFIG, labels must be unique", async () => {
    await raw((p, s) => {
      edPair(p, s, "twin");
      edPair(p, s, "twin");
    });
    const e = await hsmErrorOf(() => createPkcs11Signer(config("twin")));
    expect(e.code).toBe("HSM_INVALID_CONFIG");
    expect(e.message).toContain(
      '2 private keys are labelled "twin" on token "vs-keys": labels must be unique',
    );
  });

  it("one private key but two public keys with its label: HSM_INVALID_CONFIG", async () => {
    await raw((p, s) => {
      const { privateKey } = edPair(p, s, "two-publics");
      const other = edPair(p, s, "two-publics");
      p.C_DestroyObject(s, other.privateKey);
      expect(privateKey.length).toBeGreaterThan(0);
    });
    const e = await hsmErrorOf(() => createPkcs11Signer(config("two-publics")));
    expect(e.code).toBe("HSM_INVALID_CONFIG");
    expect(e.message).toContain('2 public keys are labelled "two-publics"');
  });

  it("a public key from another pair (different CKA_ID) under the label: HSM_INVALID_CONFIG", async () => {
    await raw((p, s) => edPair(p, s, "mismatched", { publicId: randomBytes(8) }));
    const e = await hsmErrorOf(() => createPkcs11Signer(config("mismatched")));
    expect(e.code).toBe("HSM_INVALID_CONFIG");
    expect(e.message).toContain("different CKA_ID values: they are not one key pair");
  });

  it("a private key with CKA_SIGN false: HSM_UNSUPPORTED_KEY", async () => {
    await raw((p, s) => edPair(p, s, "no-sign", { private: [{ type: pkcs11js.CKA_SIGN, value: false }] }));
    const e = await hsmErrorOf(() => createPkcs11Signer(config("no-sign")));
    expect(e.code).toBe("HSM_UNSUPPORTED_KEY");
    expect(e.message).toContain('key "no-sign" on token "vs-keys" may not sign (CKA_SIGN is false)');
  });

  it("a key that wants the PIN for every signature (CKA_ALWAYS_AUTHENTICATE): HSM_UNSUPPORTED_KEY", async () => {
    await raw((p, s) =>
      edPair(p, s, "always-auth", { private: [{ type: pkcs11js.CKA_ALWAYS_AUTHENTICATE, value: true }] }),
    );
    const e = await hsmErrorOf(() => createPkcs11Signer(config("always-auth")));
    expect(e.code).toBe("HSM_UNSUPPORTED_KEY");
    expect(e.message).toContain("CKA_ALWAYS_AUTHENTICATE");
  });

  it("a private key with no public key anywhere: HSM_KEY_NOT_FOUND saying the private key exists", async () => {
    await raw((p, s) => {
      const { publicKey } = edPair(p, s, "orphan");
      p.C_DestroyObject(s, publicKey);
    });
    // SoftHSM2 2.6 leaves the private key's CKA_PUBLIC_KEY_INFO empty: no public key anywhere.
    const e = await hsmErrorOf(() => createPkcs11Signer(config("orphan")));
    expect(e.code).toBe("HSM_KEY_NOT_FOUND");
    expect(e.message).toContain(
      'no public key labelled "orphan" on PKCS#11 token "vs-keys" (the private key exists)',
    );
    expect(e.meta.keyLabel).toBe("orphan");
  });

  it("a wrapping key that is AES-128 or may not decrypt: HSM_UNSUPPORTED_KEY naming the problem", async () => {
    await raw((p, s) => {
      aesKey(p, s, "aes-128", 16);
      aesKey(p, s, "encrypt-only", 32, [{ type: pkcs11js.CKA_DECRYPT, value: false }]);
      aesKey(p, s, "wrap-twin", 32);
      aesKey(p, s, "wrap-twin", 32);
    });
    const short = await hsmErrorOf(() => createPkcs11KeyWrapper(config("aes-128")));
    expect(short.code).toBe("HSM_UNSUPPORTED_KEY");
    expect(short.message).toContain("of 128 bits; the storage key wrapper needs an AES-256 key");
    const encryptOnly = await hsmErrorOf(() => createPkcs11KeyWrapper(config("encrypt-only")));
    expect(encryptOnly.code).toBe("HSM_UNSUPPORTED_KEY");
    expect(encryptOnly.message).toContain("must allow CKA_ENCRYPT and CKA_DECRYPT");
    const twins = await hsmErrorOf(() => createPkcs11KeyWrapper(config("wrap-twin")));
    expect(twins.code).toBe("HSM_INVALID_CONFIG");
    expect(twins.message).toContain('2 secret keys are labelled "wrap-twin"');
  });
});

describe("pkcs11 (SoftHSM2): bounds and a key swapped while running", () => {
  // Ed25519 signs the whole message on the token: a large one keeps the session busy for a while.
  const big = randomBytes(48 * 1024 * 1024);

  beforeAll(async () => {
    await provisionPkcs11Key({
      library,
      tokenLabel: token.label,
      pinFile: token.pinFile,
      keyLabel: "busy",
      algorithm: "ed25519",
    });
  });

  it("an operation slower than operationTimeoutMs: HSM_TIMEOUT; its session is retired when it ends", async () => {
    const signer = await createPkcs11Signer(config("busy", { poolSize: 1 }), { operationTimeoutMs: 5 });
    try {
      const e = await hsmErrorOf(() => signer.sign(big));
      expect(e.code).toBe("HSM_TIMEOUT");
      expect(e.message).toBe('PKCS#11 operation on token "vs-keys" did not finish within 5 ms');
      expect(signer.metrics().operationFailuresTotal).toBe(1);
      // The late call still owns its session; once it ends the session is closed, and a new one serves.
      await expect.poll(() => signer.metrics().sessionsOpen, { timeout: 5000 }).toBe(0);
      const msg = randomBytes(32);
      expect(verifySignature("ed25519", await signer.publicKey(), msg, await signer.sign(msg))).toBe(true);
    } finally {
      await signer.close();
    }
  });

  it("no session free within acquireTimeoutMs: HSM_TIMEOUT naming the pool size", async () => {
    const signer = await createPkcs11Signer(config("busy", { poolSize: 1 }), { acquireTimeoutMs: 20 });
    try {
      const slow = signer.sign(big);
      const e = await hsmErrorOf(() => signer.sign(randomBytes(8)));
      expect(e.code).toBe("HSM_TIMEOUT");
      expect(e.message).toBe('no PKCS#11 session on token "vs-keys" became free within 20 ms (pool of 1)');
      expect(signer.metrics().waiting).toBe(0); // the timed-out waiter left the queue
      expect((await slow).length).toBe(64);
    } finally {
      await signer.close();
    }
  });

  it("another key provisioned under the label while running: refused, never signed with", async () => {
    const provision = () =>
      provisionPkcs11Key({
        library,
        tokenLabel: token.label,
        pinFile: token.pinFile,
        keyLabel: "swapped",
        algorithm: "ed25519",
      });
    await provision();
    const signer = await createPkcs11Signer(config("swapped"));
    try {
      await signer.sign(randomBytes(8));
      await raw((p, s) => {
        for (const o of findAll(p, s, "swapped")) p.C_DestroyObject(s, o);
      });
      await provision();
      const e = await hsmErrorOf(() => signer.sign(randomBytes(8)));
      expect(e.code).toBe("HSM_KEY_NOT_FOUND");
      expect(e.message).toContain(
        'the key this provider was opened with is no longer on token "vs-keys": a different key now carries its label',
      );
      // It keeps refusing: the swap is not forgotten on the next call.
      expect((await hsmErrorOf(() => signer.sign(randomBytes(8)))).code).toBe("HSM_KEY_NOT_FOUND");
    } finally {
      await signer.close();
    }
  });
});
