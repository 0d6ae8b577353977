/**
 * Default crypto for hosts: node:crypto (OpenSSL) verification of Ed25519 and ECDSA P-256 and
 * SHA-256 value hashing. The engine does not import this; hosts inject it.
 */
import { createHash, createPublicKey, type KeyObject, verify } from "node:crypto";
import { toHex } from "./bytes.ts";
import type { HashFn, SignatureAlgorithm, VerifyFn } from "./types.ts";

const P256_ORDER = 0xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551n;
const P256_HALF_ORDER = P256_ORDER >> 1n;

export const sha256: HashFn = (value) => new Uint8Array(createHash("sha256").update(value).digest());

function toBase64Url(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString("base64url");
}

/** A raw public key as a node:crypto KeyObject (Ed25519: 32 bytes; P-256: 65-byte SEC1). */
export function publicKeyObject(algorithm: SignatureAlgorithm, publicKey: Uint8Array): KeyObject {
  if (algorithm === "ed25519") {
    if (publicKey.length !== 32) throw new RangeError("Ed25519 public keys are 32 bytes");
    return createPublicKey({ key: { kty: "OKP", crv: "Ed25519", x: toBase64Url(publicKey) }, format: "jwk" });
  }
  if (publicKey.length !== 65 || publicKey[0] !== 0x04)
    throw new RangeError("P-256 public keys are 65-byte SEC1");
  return createPublicKey({
    key: {
      kty: "EC",
      crv: "P-256",
      x: toBase64Url(publicKey.subarray(1, 33)),
      y: toBase64Url(publicKey.subarray(33, 65)),
    },
    format: "jwk",
  });
}

/** True when a raw r||s P-256 signature has s in the lower half of the group order. */
export function isLowS(signature: Uint8Array): boolean {
  if (signature.length !== 64) return false;
  const s = BigInt(`0x${toHex(signature.subarray(32))}`);
  return s > 0n && s <= P256_HALF_ORDER;
}

/**
 * Verification with node:crypto. Key objects are cached (a validator set is small and stable).
 * P-256 signatures must be raw r||s with low S: one valid encoding per signature.
 */
export function createNodeCryptoVerify(maxCachedKeys = 4096): VerifyFn {
  const cache = new Map<string, KeyObject | null>();
  return (algorithm, publicKey, message, signature) => {
    const id = `${algorithm}:${toHex(publicKey)}`;
    let key = cache.get(id);
    if (key === undefined) {
      try {
        key = publicKeyObject(algorithm, publicKey);
      } catch {
        key = null;
      }
      if (cache.size >= maxCachedKeys) cache.clear();
      cache.set(id, key);
    }
    if (key === null) return false;
    if (algorithm === "ed25519") {
      if (signature.length !== 64) return false;
      return verify(null, message, key, signature);
    }
    if (!isLowS(signature)) return false;
    return verify("sha256", message, { key, dsaEncoding: "ieee-p1363" }, signature);
  };
}
