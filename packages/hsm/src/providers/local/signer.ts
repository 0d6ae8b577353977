/** The `local` signer: a key unlocked from the encrypted keystore, signing with node:crypto. */

import { createPublicKey, sign } from "node:crypto";
import { performance } from "node:perf_hooks";
import type { LocalConfig } from "../../config.ts";
import { HsmError } from "../../errors.ts";
import type { Signer, SignerHealth } from "../../interface.ts";
import { readSecretFile } from "../../secretFile.ts";
import { normaliseP256, rawPublicKeyFromKeyObject } from "../../signature.ts";
import { unlockKeystore } from "./keystore.ts";

export async function createLocalSigner(config: LocalConfig): Promise<Signer> {
  if (config.keystorePath === undefined) {
    throw new HsmError("HSM_INVALID_CONFIG", "the local signer needs keystorePath (LOCAL_KEYSTORE_PATH)");
  }
  const passphrase = readSecretFile({
    path: config.passphraseFile,
    what: "keystore passphrase",
    variable: "LOCAL_KEYSTORE_PASSPHRASE_FILE",
    meta: { provider: "local" },
    trim: "newline",
  });
  const { file, privateKey } = unlockKeystore(config.keystorePath, passphrase);
  const publicKey = rawPublicKeyFromKeyObject(createPublicKey(privateKey), file.algorithm);
  const keyId = `local:${config.keystorePath}`;
  let closed = false;
  const check = () => {
    if (closed) throw new HsmError("HSM_CLOSED", "the local signer is closed", { provider: "local", keyId });
  };
  return {
    provider: "local",
    keyId,
    algorithm: file.algorithm,
    async publicKey() {
      return Uint8Array.from(publicKey);
    },
    async sign(message) {
      check();
      if (file.algorithm === "ed25519") return new Uint8Array(sign(null, message, privateKey));
      return normaliseP256(
        new Uint8Array(sign("sha256", message, { key: privateKey, dsaEncoding: "ieee-p1363" })),
      );
    },
    async health(): Promise<SignerHealth> {
      const started = performance.now();
      return closed
        ? { ok: false, provider: "local", keyId, latencyMs: 0, code: "HSM_CLOSED", detail: "closed" }
        : { ok: true, provider: "local", keyId, latencyMs: performance.now() - started };
    },
    async close() {
      closed = true;
    },
  };
}
