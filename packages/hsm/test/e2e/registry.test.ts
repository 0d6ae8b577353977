/**
 * The registry end to end: the seed-compatible environment variables select and configure a real
 * provider (a SoftHSM2 token, the Vault emulator), and the guard wraps what the registry returns.
 */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { startVaultEmulator } from "../../emulators/vault.ts";
import { createGuardedSigner } from "../../src/guard/doubleSignGuard.ts";
import { provisionPkcs11Key, provisionPkcs11WrapKey } from "../../src/providers/pkcs11/index.ts";
import { createKeyWrapperFromEnv, createSignerFromEnv } from "../../src/registry.ts";
import { verifySignature } from "../../src/signature.ts";
import { hsmErrorOf } from "../compliance/signerCompliance.ts";
import { tempDir } from "../fixtures/local.ts";
import { findSoftHsm, SoftHsm } from "../fixtures/softhsm.ts";

const msg = new TextEncoder().encode("canonical sign bytes");

describe("registry: HSM_PROVIDER=pkcs11 with a real SoftHSM2 token", () => {
  const install = findSoftHsm();
  if ("missing" in install)
    throw new Error(`softhsm2 is required (apt-get install softhsm2): ${install.missing}`);
  const hsm = SoftHsm.create(install);
  const token = hsm.initToken("registry-token");
  afterAll(() => hsm.destroy());

  it("signs through the guard and wraps the storage key", async () => {
    const target = { library: hsm.library, tokenLabel: token.label, pinFile: token.pinFile };
    await provisionPkcs11Key({ ...target, keyLabel: "validator", algorithm: "ed25519" });
    await provisionPkcs11WrapKey({ ...target, keyLabel: "storage-wrap" });
    const env = {
      HSM_PROVIDER: "pkcs11",
      PKCS11_LIBRARY: hsm.library,
      PKCS11_TOKEN_LABEL: token.label,
      PKCS11_PIN_FILE: token.pinFile,
      PKCS11_KEY_LABEL: "validator",
      PKCS11_WRAP_KEY_LABEL: "storage-wrap",
    };
    const signer = await createSignerFromEnv(env, { production: true });
    expect(signer.provider).toBe("pkcs11");
    const guard = await createGuardedSigner(signer, { journalPath: join(tempDir(), "journal") });
    const sig = await guard.sign({ chainId: "c", height: 1, round: 0, step: 2, payload: msg });
    expect(verifySignature("ed25519", await signer.publicKey(), msg, sig)).toBe(true);
    const wrapper = await createKeyWrapperFromEnv(env, { production: true });
    const key = new Uint8Array(32).fill(7);
    expect(await wrapper.unwrap(await wrapper.wrap(key))).toEqual(key);
    await guard.close();
    await wrapper.close();
    await signer.close();
  });
});

describe("registry: HSM_PROVIDER=vault against the Vault emulator", () => {
  it("signs with the configured key; a PIN or token in the environment is refused in production", async () => {
    const vault = await startVaultEmulator();
    try {
      vault.createKey("validator", "ecdsa-p256");
      const tokenFile = join(tempDir(), "token");
      writeFileSync(tokenFile, `${vault.rootToken}\n`, { mode: 0o600 });
      const env = {
        HSM_PROVIDER: "vault",
        VAULT_ADDR: vault.address,
        VAULT_TOKEN_FILE: tokenFile,
        VAULT_KEY_NAME: "validator",
      };
      const signer = await createSignerFromEnv(env);
      expect(signer.algorithm).toBe("ecdsa-p256");
      expect(verifySignature("ecdsa-p256", await signer.publicKey(), msg, await signer.sign(msg))).toBe(true);
      await signer.close();
      const e = await hsmErrorOf(() =>
        createSignerFromEnv({ ...env, VAULT_TOKEN: vault.rootToken }, { production: true }),
      );
      expect(e.message).toContain("VAULT_TOKEN");
      expect(e.message).not.toContain(vault.rootToken);
    } finally {
      await vault.close();
    }
  });
});
