/**
 * The `local` key wrapper: the storage data key encrypted with AES-256-GCM under a scrypt key
 * derived from a passphrase file. For development; production wraps with KMS, Vault or an HSM.
 */
import { createCipheriv, createDecipheriv, randomBytes } from "node:crypto";
import type { LocalConfig } from "../../config.ts";
import { HsmError } from "../../errors.ts";
import type { KeyWrapper, WrappedKeyEnvelope } from "../../interface.ts";
import { readSecretFile } from "../../secretFile.ts";
import { DEFAULT_SCRYPT_N, deriveKey, type ScryptParams } from "./keystore.ts";

const AAD = Buffer.from("vitalstream-storage-key");

interface LocalEnvelope extends WrappedKeyEnvelope {
  provider: "local";
  kdfparams: ScryptParams;
  iv: string;
  ciphertext: string;
  tag: string;
}

export async function createLocalKeyWrapper(
  config: LocalConfig,
  opts: { scryptN?: number } = {},
): Promise<KeyWrapper> {
  const passphrase = readSecretFile({
    path: config.passphraseFile,
    what: "passphrase",
    variable: "LOCAL_KEYSTORE_PASSPHRASE_FILE",
    meta: { provider: "local" },
    trim: "newline",
  });
  const keyId = `local:${config.passphraseFile}`;
  const bad = (detail: string): never => {
    throw new HsmError("HSM_UNWRAP_FAILED", `wrapped storage key: ${detail}`, { provider: "local", keyId });
  };
  return {
    provider: "local",
    keyId,
    async wrap(dataKey) {
      if (dataKey.length !== 32)
        throw new HsmError("HSM_INVALID_CONFIG", "the storage data key must be 32 bytes");
      const kdfparams: ScryptParams = {
        n: opts.scryptN ?? DEFAULT_SCRYPT_N,
        r: 8,
        p: 1,
        dklen: 32,
        salt: randomBytes(16).toString("hex"),
      };
      const iv = randomBytes(12);
      const cipher = createCipheriv("aes-256-gcm", deriveKey(passphrase, kdfparams), iv);
      cipher.setAAD(AAD);
      const ciphertext = Buffer.concat([cipher.update(dataKey), cipher.final()]);
      const envelope: LocalEnvelope = {
        format: "vitalstream-wrapped-key",
        version: 1,
        provider: "local",
        keyId,
        kdfparams,
        iv: iv.toString("base64"),
        ciphertext: ciphertext.toString("base64"),
        tag: cipher.getAuthTag().toString("base64"),
      };
      return new TextEncoder().encode(JSON.stringify(envelope));
    },
    async unwrap(blob) {
      let e: LocalEnvelope;
      try {
        e = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(blob));
      } catch {
        return bad("not a JSON envelope");
      }
      if (e?.format !== "vitalstream-wrapped-key" || e.version !== 1)
        bad("not a version 1 wrapped-key envelope");
      if (e.provider !== "local") bad(`wrapped by provider ${JSON.stringify(e.provider)}, not local`);
      const p = e.kdfparams;
      if (
        !p ||
        ![p.n, p.r, p.p].every(Number.isSafeInteger) ||
        p.dklen !== 32 ||
        p.n > 2 ** 22 ||
        typeof p.salt !== "string"
      ) {
        bad("bad scrypt parameters");
      }
      try {
        const decipher = createDecipheriv(
          "aes-256-gcm",
          deriveKey(passphrase, p),
          Buffer.from(e.iv, "base64"),
        );
        decipher.setAAD(AAD);
        decipher.setAuthTag(Buffer.from(e.tag, "base64"));
        const key = Buffer.concat([decipher.update(Buffer.from(e.ciphertext, "base64")), decipher.final()]);
        if (key.length !== 32) bad("the unwrapped key is not 32 bytes");
        return new Uint8Array(key);
      } catch (err) {
        if (err instanceof HsmError) throw err;
        return bad("authentication failed (wrong passphrase, or the envelope was modified)");
      }
    },
    async close() {},
  };
}
