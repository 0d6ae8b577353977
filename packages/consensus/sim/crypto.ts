/**
 * Signature schemes for simulated validators.
 * - `hmac` (default): a keyed SHA-256 MAC that only the simulator can verify. It keeps thousands of
 *   seeds fast; byzantine nodes hold only their own keys, so they can forge nothing.
 * - `ed25519`: real node:crypto Ed25519 keys derived from the seed (what a node uses).
 */
import { createHash, createHmac, createPrivateKey, createPublicKey, sign } from "node:crypto";
import { toHex } from "../src/bytes.ts";
import { createNodeCryptoVerify } from "../src/crypto.ts";
import type { SignatureAlgorithm, VerifyFn } from "../src/types.ts";
import type { Prng } from "./prng.ts";

export type SimCryptoName = "hmac" | "ed25519";

export interface SimKey {
  publicKey: Uint8Array;
  algorithm: SignatureAlgorithm;
  sign(message: Uint8Array): Uint8Array;
}

export interface SimCrypto {
  name: SimCryptoName;
  createKey(prng: Prng): SimKey;
  verify: VerifyFn;
}

export function createSimCrypto(name: SimCryptoName): SimCrypto {
  return name === "ed25519" ? ed25519Crypto() : hmacCrypto();
}

function hmacCrypto(): SimCrypto {
  const secrets = new Map<string, Uint8Array>();
  return {
    name: "hmac",
    createKey(prng) {
      const secret = prng.bytes(32);
      const publicKey = new Uint8Array(
        createHash("sha256").update("vitalstream-sim-pk").update(secret).digest(),
      );
      secrets.set(toHex(publicKey), secret);
      return {
        publicKey,
        algorithm: "ed25519",
        sign: (message) => new Uint8Array(createHmac("sha256", secret).update(message).digest()),
      };
    },
    verify(_algorithm, publicKey, message, signature) {
      const secret = secrets.get(toHex(publicKey));
      if (secret === undefined || signature.length !== 32) return false;
      const expected = createHmac("sha256", secret).update(message).digest();
      return expected.equals(signature);
    },
  };
}

const ED25519_PKCS8_PREFIX = Buffer.from("302e020100300506032b657004220420", "hex");

/** An Ed25519 key from a 32-byte seed, with node:crypto. */
export function ed25519KeyFromSeed(seed: Uint8Array): SimKey {
  const privateKey = createPrivateKey({
    key: Buffer.concat([ED25519_PKCS8_PREFIX, Buffer.from(seed)]),
    format: "der",
    type: "pkcs8",
  });
  const jwk = createPublicKey(privateKey).export({ format: "jwk" });
  const publicKey = new Uint8Array(Buffer.from(jwk.x!, "base64url"));
  return {
    publicKey,
    algorithm: "ed25519",
    sign: (message) => new Uint8Array(sign(null, message, privateKey)),
  };
}

function ed25519Crypto(): SimCrypto {
  return {
    name: "ed25519",
    createKey: (prng) => ed25519KeyFromSeed(prng.bytes(32)),
    verify: createNodeCryptoVerify(),
  };
}
