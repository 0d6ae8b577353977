import { createPublicKey, generateKeyPairSync, sign } from "node:crypto";
import { describe, expect, it } from "vitest";
import {
  derToRawP256,
  normaliseP256,
  P256_ORDER,
  rawPublicKeyFromKeyObject,
  rawPublicKeyFromSpki,
  verifySignature,
} from "../../src/signature.ts";
import { hsmErrorOf } from "../compliance/signerCompliance.ts";

describe("signature normalisation", () => {
  const { privateKey, publicKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
  const raw = rawPublicKeyFromKeyObject(publicKey, "ecdsa-p256");

  it("turns DER signatures from backends into raw low-S r||s that node:crypto verifies", () => {
    let sawHighS = false;
    for (let i = 0; i < 64; i++) {
      const msg = Buffer.from(`message ${i}`);
      const der = sign("sha256", msg, privateKey);
      const p1363 = sign("sha256", msg, { key: privateKey, dsaEncoding: "ieee-p1363" });
      if (BigInt(`0x${p1363.subarray(32).toString("hex")}`) > P256_ORDER >> 1n) sawHighS = true;
      const normalised = derToRawP256(der);
      expect(verifySignature("ecdsa-p256", raw, msg, normalised)).toBe(true);
      expect(BigInt(`0x${Buffer.from(normalised.subarray(32)).toString("hex")}`) <= P256_ORDER >> 1n).toBe(
        true,
      );
      expect(verifySignature("ecdsa-p256", raw, msg, normaliseP256(p1363))).toBe(true);
    }
    expect(sawHighS).toBe(true); // the high-S branch was exercised
  });

  it("refuses high-S signatures in verification (one encoding per signature)", () => {
    const msg = Buffer.from("x");
    const low = normaliseP256(sign("sha256", msg, { key: privateKey, dsaEncoding: "ieee-p1363" }));
    const s = BigInt(`0x${Buffer.from(low.subarray(32)).toString("hex")}`);
    const high = Uint8Array.from(low);
    high.set(Buffer.from((P256_ORDER - s).toString(16).padStart(64, "0"), "hex"), 32);
    expect(verifySignature("ecdsa-p256", raw, msg, high)).toBe(false);
  });

  it("names malformed DER and keys of the wrong type", async () => {
    for (const bad of [Uint8Array.of(), Uint8Array.of(0x30, 0x02, 0x02, 0x00), Uint8Array.of(0x31, 0x00)]) {
      expect((await hsmErrorOf(async () => derToRawP256(bad))).code).toBe("HSM_BAD_RESPONSE");
    }
    const ed = generateKeyPairSync("ed25519").publicKey;
    const spki = new Uint8Array(ed.export({ format: "der", type: "spki" }));
    expect(rawPublicKeyFromSpki(spki, "ed25519").length).toBe(32);
    expect((await hsmErrorOf(async () => rawPublicKeyFromSpki(spki, "ecdsa-p256"))).code).toBe(
      "HSM_UNSUPPORTED_KEY",
    );
    expect(rawPublicKeyFromKeyObject(createPublicKey(privateKey), "ecdsa-p256")).toEqual(raw);
  });
});
