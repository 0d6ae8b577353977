/**
 * Normalising what backends return into the one form per algorithm that validators send:
 * Ed25519 64 bytes; P-256 raw r||s with low S. And public keys into raw form.
 */
import { createHash, createPublicKey, type KeyObject, verify } from "node:crypto";
import { HsmError } from "./errors.ts";
import type { SignatureAlgorithm } from "./interface.ts";

export const P256_ORDER = 0xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551n;
const HALF_ORDER = P256_ORDER >> 1n;

function toBigInt(bytes: Uint8Array): bigint {
  return bytes.length === 0 ? 0n : BigInt(`0x${Buffer.from(bytes).toString("hex")}`);
}

function to32(n: bigint): Uint8Array {
  return Uint8Array.from(Buffer.from(n.toString(16).padStart(64, "0"), "hex"));
}

/** Raw r||s (64 bytes) with s moved to the lower half of the group order. */
export function normaliseP256(rawRS: Uint8Array): Uint8Array {
  if (rawRS.length !== 64)
    throw new HsmError("HSM_BAD_RESPONSE", `P-256 signature must be 64 bytes, got ${rawRS.length}`);
  const s = toBigInt(rawRS.subarray(32));
  if (s === 0n || s >= P256_ORDER) throw new HsmError("HSM_BAD_RESPONSE", "P-256 signature has an invalid s");
  if (s <= HALF_ORDER) return Uint8Array.from(rawRS);
  const out = new Uint8Array(64);
  out.set(rawRS.subarray(0, 32), 0);
  out.set(to32(P256_ORDER - s), 32);
  return out;
}

/** A DER ECDSA signature (SEQUENCE { INTEGER r, INTEGER s }) as normalised raw r||s. */
export function derToRawP256(der: Uint8Array): Uint8Array {
  const fail = (): never => {
    throw new HsmError("HSM_BAD_RESPONSE", "malformed DER ECDSA signature");
  };
  let i = 0;
  const byte = () => (i < der.length ? der[i++]! : fail());
  const length = () => {
    const first = byte();
    if (first < 0x80) return first;
    if (first !== 0x81) return fail();
    return byte();
  };
  if (byte() !== 0x30) fail();
  if (length() !== der.length - i) fail();
  const integer = () => {
    if (byte() !== 0x02) fail();
    const len = length();
    if (len === 0 || len > 33 || i + len > der.length) fail();
    const v = toBigInt(der.subarray(i, i + len));
    i += len;
    return v;
  };
  const r = integer();
  const s = integer();
  if (i !== der.length || r === 0n || r >= P256_ORDER) fail();
  const raw = new Uint8Array(64);
  raw.set(to32(r), 0);
  raw.set(to32(s), 32);
  return normaliseP256(raw);
}

/** Raw public key from a DER SubjectPublicKeyInfo (what KMS GetPublicKey returns). */
export function rawPublicKeyFromSpki(spki: Uint8Array, algorithm: SignatureAlgorithm): Uint8Array {
  let key: KeyObject;
  try {
    key = createPublicKey({ key: Buffer.from(spki), format: "der", type: "spki" });
  } catch (e) {
    throw new HsmError(
      "HSM_BAD_RESPONSE",
      "public key is not a valid SubjectPublicKeyInfo",
      {},
      { cause: e },
    );
  }
  return rawPublicKeyFromKeyObject(key, algorithm);
}

export function rawPublicKeyFromKeyObject(key: KeyObject, algorithm: SignatureAlgorithm): Uint8Array {
  const jwk = key.export({ format: "jwk" });
  if (algorithm === "ed25519") {
    if (jwk.kty !== "OKP" || jwk.crv !== "Ed25519" || !jwk.x) {
      throw new HsmError("HSM_UNSUPPORTED_KEY", `expected an Ed25519 key, got ${jwk.kty}/${jwk.crv}`);
    }
    return Uint8Array.from(Buffer.from(jwk.x, "base64url"));
  }
  if (jwk.kty !== "EC" || jwk.crv !== "P-256" || !jwk.x || !jwk.y) {
    throw new HsmError("HSM_UNSUPPORTED_KEY", `expected a P-256 key, got ${jwk.kty}/${jwk.crv}`);
  }
  return p256Point(Buffer.from(jwk.x, "base64url"), Buffer.from(jwk.y, "base64url"));
}

/** 0x04 || x || y from coordinates (left-padded to 32 bytes each). */
export function p256Point(x: Uint8Array, y: Uint8Array): Uint8Array {
  if (x.length > 32 || y.length > 32)
    throw new HsmError("HSM_BAD_RESPONSE", "P-256 coordinate longer than 32 bytes");
  const out = new Uint8Array(65);
  out[0] = 4;
  out.set(x, 33 - x.length);
  out.set(y, 65 - y.length);
  return out;
}

export function publicKeyObject(algorithm: SignatureAlgorithm, raw: Uint8Array): KeyObject {
  if (algorithm === "ed25519") {
    return createPublicKey({
      key: { kty: "OKP", crv: "Ed25519", x: Buffer.from(raw).toString("base64url") },
      format: "jwk",
    });
  }
  if (raw.length !== 65 || raw[0] !== 4)
    throw new HsmError("HSM_BAD_RESPONSE", "P-256 public key must be 65-byte SEC1");
  return createPublicKey({
    key: {
      kty: "EC",
      crv: "P-256",
      x: Buffer.from(raw.subarray(1, 33)).toString("base64url"),
      y: Buffer.from(raw.subarray(33)).toString("base64url"),
    },
    format: "jwk",
  });
}

/** node:crypto verification of the normalised form (what peers will do). */
export function verifySignature(
  algorithm: SignatureAlgorithm,
  publicKey: Uint8Array,
  message: Uint8Array,
  signature: Uint8Array,
): boolean {
  try {
    const key = publicKeyObject(algorithm, publicKey);
    if (algorithm === "ed25519") return signature.length === 64 && verify(null, message, key, signature);
    if (signature.length !== 64 || toBigInt(signature.subarray(32)) > HALF_ORDER) return false;
    return verify("sha256", message, { key, dsaEncoding: "ieee-p1363" }, signature);
  } catch {
    return false;
  }
}

export function sha256(data: Uint8Array): Uint8Array {
  return new Uint8Array(createHash("sha256").update(data).digest());
}
