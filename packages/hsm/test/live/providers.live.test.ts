/**
 * Live tests against real backends, opt-in per provider:
 *   VITALSTREAM_LIVE_PROVIDERS=aws_kms,azure_keyvault,vault,pkcs11
 * plus that provider's usual variables (see docs/hsm/). Each listed provider must have a signing
 * key; its wrapping key (the *_WRAP_* variable) is tested when set. Unlisted providers are
 * reported as skipped, never as passed.
 */
import { randomBytes } from "node:crypto";
import { describe, expect, it } from "vitest";
import { createKeyWrapperFromEnv, createSignerFromEnv } from "../../src/registry.ts";
import { verifySignature } from "../../src/signature.ts";

const WRAP_VARIABLE: Record<string, string> = {
  aws_kms: "AWS_KMS_WRAP_KEY_ID",
  azure_keyvault: "AZURE_KEYVAULT_WRAP_KEY_NAME",
  vault: "VAULT_WRAP_KEY_NAME",
  pkcs11: "PKCS11_WRAP_KEY_LABEL",
};
const enabled = new Set(
  (process.env.VITALSTREAM_LIVE_PROVIDERS ?? "")
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean),
);

for (const provider of Object.keys(WRAP_VARIABLE)) {
  const env = { ...process.env, HSM_PROVIDER: provider };
  const live = enabled.has(provider);
  describe(`live ${provider}`, () => {
    it.skipIf(!live)(
      live
        ? "signs, verifies and reports health against the real backend"
        : `skipped: set VITALSTREAM_LIVE_PROVIDERS=${provider} and its variables`,
      async () => {
        const signer = await createSignerFromEnv(env);
        try {
          const msg = randomBytes(120);
          const sig = await signer.sign(msg);
          expect(verifySignature(signer.algorithm, await signer.publicKey(), msg, sig)).toBe(true);
          expect((await signer.health()).ok).toBe(true);
        } finally {
          await signer.close();
        }
      },
    );
    const wrapConfigured = live && process.env[WRAP_VARIABLE[provider]!] !== undefined;
    it.skipIf(!wrapConfigured)(
      wrapConfigured
        ? "wraps and unwraps a storage key"
        : `skipped: set ${WRAP_VARIABLE[provider]} (with ${provider} live) to test wrapping`,
      async () => {
        const wrapper = await createKeyWrapperFromEnv(env);
        try {
          const key = randomBytes(32);
          expect(Buffer.from(await wrapper.unwrap(await wrapper.wrap(key)))).toEqual(key);
        } finally {
          await wrapper.close();
        }
      },
    );
  });
}
