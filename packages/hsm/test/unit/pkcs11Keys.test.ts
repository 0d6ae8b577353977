/**
 * What the PKCS#11 provider reads from a token's key attributes, without a token: the algorithm
 * from CKA_KEY_TYPE and CKA_EC_PARAMS, and the public key from CKA_EC_POINT in every encoding
 * tokens use. The inputs are real encodings (node:crypto keys); the token-level cases are in
 * test/e2e/pkcs11Keys.test.ts.
 */
import { createECDH, generateKeyPairSync } from "node:crypto";
import pkcs11js from "pkcs11js";
import { describe, expect, it } from "vitest";
import { HsmError } from "../../src/errors.ts";
import {
  CKK_EC_EDWARDS,
  ED25519_NAME_DER,
  ED25519_OID_DER,
  P256_OID_DER,
} from "../../src/providers/pkcs11/constants.ts";
import {
  algorithmOf,
  describeKeyType,
  publicKeyFromEcPoint,
  readBool,
  readUlong,
} from "../../src/providers/pkcs11/keys.ts";

const meta = { provider: "pkcs11" as const, keyId: "pkcs11:token=t;object=k" };
const WHAT = 'key "k" on token "t"';
const SECP256K1_OID_DER = Buffer.from("06052b8104000a", "hex");
const ED448_OID_DER = Buffer.from("06032b6571", "hex");

function hsmError(f: () => unknown): HsmError {
  try {
    f();
  } catch (e) {
    if (e instanceof HsmError) return e;
    throw e;
  }
  throw new Error("expected an HsmError");
}

/** A DER OCTET STRING around `content` (short or 0x81 long form, as tokens return CKA_EC_POINT). */
function octetString(content: Buffer): Buffer {
  const length = content.length < 0x80 ? [content.length] : [0x81, content.length];
  return Buffer.concat([Buffer.from([0x04, ...length]), content]);
}

describe("algorithmOf (CKA_KEY_TYPE, CKA_EC_PARAMS)", () => {
  it("accepts Ed25519 by OID or by curve name, and P-256 by OID", () => {
    expect(algorithmOf(CKK_EC_EDWARDS, ED25519_OID_DER, WHAT, meta)).toBe("ed25519");
    expect(algorithmOf(CKK_EC_EDWARDS, ED25519_NAME_DER, WHAT, meta)).toBe("ed25519");
    expect(algorithmOf(pkcs11js.CKK_EC, P256_OID_DER, WHAT, meta)).toBe("ecdsa-p256");
  });

  it("refuses Ed448 and an Edwards key without CKA_EC_PARAMS, naming the parameters", () => {
    const ed448 = hsmError(() => algorithmOf(CKK_EC_EDWARDS, ED448_OID_DER, WHAT, meta));
    expect(ed448.code).toBe("HSM_UNSUPPORTED_KEY");
    expect(ed448.message).toBe(
      `${WHAT} is an Edwards-curve key on a curve other than Ed25519 (CKA_EC_PARAMS 06032b6571)`,
    );
    expect(ed448.meta).toEqual(meta);
    const missing = hsmError(() => algorithmOf(CKK_EC_EDWARDS, undefined, WHAT, meta));
    expect(missing.message).toContain("(CKA_EC_PARAMS missing)");
  });

  it("refuses EC keys on other curves, or with no curve, and lists what is supported", () => {
    const k1 = hsmError(() => algorithmOf(pkcs11js.CKK_EC, SECP256K1_OID_DER, WHAT, meta));
    expect(k1.code).toBe("HSM_UNSUPPORTED_KEY");
    expect(k1.message).toContain("CKA_EC_PARAMS 06052b8104000a");
    expect(k1.message).toContain("supported: Ed25519, P-256");
    const none = hsmError(() => algorithmOf(pkcs11js.CKK_EC, undefined, WHAT, meta));
    expect(none.message).toContain("(CKA_EC_PARAMS missing)");
  });

  it("refuses RSA, AES, unknown and absent key types by name", () => {
    for (const [keyType, name] of [
      [pkcs11js.CKK_RSA, "CKK_RSA"],
      [pkcs11js.CKK_AES, "CKK_AES"],
      [0x7fff_0001, "0x7fff0001"],
      [undefined, "unknown"],
    ] as const) {
      const e = hsmError(() => algorithmOf(keyType, P256_OID_DER, WHAT, meta));
      expect(e.code).toBe("HSM_UNSUPPORTED_KEY");
      expect(e.message).toBe(
        `${WHAT} has key type ${name}; supported: Ed25519 (CKK_EC_EDWARDS), P-256 (CKK_EC)`,
      );
    }
  });

  it("names CKK_EC_EDWARDS, which pkcs11js does not export", () => {
    expect(describeKeyType(CKK_EC_EDWARDS)).toBe("CKK_EC_EDWARDS");
    expect(describeKeyType(pkcs11js.CKK_EC)).toMatch(/^CKK_EC(DSA)?$/); // one value, two names
  });
});

describe("CK_ULONG and CK_BBOOL attribute values", () => {
  it("reads 8-byte (LP64) and 4-byte (Windows) CK_ULONGs, and nothing else", () => {
    const eight = Buffer.alloc(8);
    eight.writeBigUInt64LE(0x40n);
    const four = Buffer.alloc(4);
    four.writeUInt32LE(0x1f);
    expect(readUlong(eight)).toBe(0x40);
    expect(readUlong(four)).toBe(0x1f);
    expect(readUlong(Buffer.alloc(2))).toBeUndefined();
    expect(readUlong(Buffer.alloc(0))).toBeUndefined();
    expect(readUlong(undefined)).toBeUndefined();
  });

  it("reads CK_BBOOL: any non-zero byte is true, empty is unknown", () => {
    expect(readBool(Buffer.from([1]))).toBe(true);
    expect(readBool(Buffer.from([0xff]))).toBe(true);
    expect(readBool(Buffer.from([0]))).toBe(false);
    expect(readBool(Buffer.alloc(0))).toBeUndefined();
    expect(readBool(undefined)).toBeUndefined();
  });
});

describe("publicKeyFromEcPoint (CKA_EC_POINT)", () => {
  const ed = generateKeyPairSync("ed25519").publicKey.export({ format: "jwk" });
  const edRaw = Buffer.from(ed.x!, "base64url");
  const ecdh = createECDH("prime256v1");
  ecdh.generateKeys();
  const uncompressed = ecdh.getPublicKey();
  const compressed = ecdh.getPublicKey(undefined, "compressed");

  it("Ed25519: raw 32 bytes or wrapped in an OCTET STRING", () => {
    expect(Buffer.from(publicKeyFromEcPoint(edRaw, "ed25519", WHAT, meta))).toEqual(edRaw);
    expect(Buffer.from(publicKeyFromEcPoint(octetString(edRaw), "ed25519", WHAT, meta))).toEqual(edRaw);
  });

  it("Ed25519: anything else is HSM_BAD_RESPONSE with its length", () => {
    for (const point of [edRaw.subarray(0, 31), Buffer.concat([edRaw, Buffer.from([0])]), uncompressed]) {
      const e = hsmError(() => publicKeyFromEcPoint(point, "ed25519", WHAT, meta));
      expect(e.code).toBe("HSM_BAD_RESPONSE");
      expect(e.message).toBe(`${WHAT}: CKA_EC_POINT is not an Ed25519 point (${point.length} bytes)`);
    }
    // An OCTET STRING whose length byte lies is not unwrapped.
    const lying = octetString(edRaw);
    lying[1] = 31;
    expect(hsmError(() => publicKeyFromEcPoint(lying, "ed25519", WHAT, meta)).code).toBe("HSM_BAD_RESPONSE");
  });

  it("P-256: a compressed point that is not on the curve is HSM_BAD_RESPONSE, not a backend error", () => {
    const offCurve = Buffer.alloc(33);
    offCurve[0] = 0x02;
    offCurve[32] = 1; // x = 1: 1 + a + b is not a square mod p
    const e = hsmError(() => publicKeyFromEcPoint(offCurve, "ecdsa-p256", WHAT, meta));
    expect(e.code).toBe("HSM_BAD_RESPONSE");
    expect(e.message).toBe(`${WHAT}: CKA_EC_POINT is not a point on P-256`);
  });

  it("P-256: raw or wrapped (short and long form), and compressed points are decompressed", () => {
    const expected = Buffer.from(uncompressed);
    expect(Buffer.from(publicKeyFromEcPoint(uncompressed, "ecdsa-p256", WHAT, meta))).toEqual(expected);
    expect(Buffer.from(publicKeyFromEcPoint(octetString(uncompressed), "ecdsa-p256", WHAT, meta))).toEqual(
      expected,
    );
    const longForm = Buffer.concat([Buffer.from([0x04, 0x81, 65]), uncompressed]);
    expect(Buffer.from(publicKeyFromEcPoint(longForm, "ecdsa-p256", WHAT, meta))).toEqual(expected);
    expect(Buffer.from(publicKeyFromEcPoint(compressed, "ecdsa-p256", WHAT, meta))).toEqual(expected);
    expect(Buffer.from(publicKeyFromEcPoint(octetString(compressed), "ecdsa-p256", WHAT, meta))).toEqual(
      expected,
    );
  });

  it("P-256: an Ed25519 point, a hybrid (06) point or a truncated one is HSM_BAD_RESPONSE", () => {
    const hybrid = Buffer.from(uncompressed);
    hybrid[0] = 0x06;
    for (const point of [edRaw, hybrid, uncompressed.subarray(0, 64), Buffer.alloc(0)]) {
      const e = hsmError(() => publicKeyFromEcPoint(point, "ecdsa-p256", WHAT, meta));
      expect(e.code).toBe("HSM_BAD_RESPONSE");
      expect(e.message).toBe(`${WHAT}: CKA_EC_POINT is not a P-256 point (${point.length} bytes)`);
    }
  });
});
