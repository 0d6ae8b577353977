/**
 * One compliance suite that every Signer provider must pass (js-libp2p style): sign and verify
 * (node:crypto and an independent implementation), normalised signatures, health, wrong
 * credentials, missing key, backend down then back, throttling and 5xx retries, concurrent
 * signing, revocation, and the double-sign guard around it.
 */
import { createHash, randomBytes } from "node:crypto";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { p256 } from "@noble/curves/nist.js";
import * as ed from "@noble/ed25519";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { HsmError } from "../../src/errors.ts";
import { createGuardedSigner } from "../../src/guard/doubleSignGuard.ts";
import type { SignatureAlgorithm, Signer } from "../../src/interface.ts";
import { RevocationList } from "../../src/revocation.ts";
import { P256_ORDER, sha256, verifySignature } from "../../src/signature.ts";

export interface Faults {
  /** The next N requests are answered as throttled (429 / ThrottlingException). */
  throttle?: number;
  /** The next N requests get a 5xx. */
  serverErrors?: number;
}

export interface ComplianceTarget {
  /** Shown in test names; emulated backends say so, e.g. "aws-kms (emulator)". */
  label: string;
  algorithm: SignatureAlgorithm;
  /** A working signer (a new instance per call). */
  signer(): Promise<Signer>;
  /** Credentials are wrong: creating it, or its first call, fails with HSM_AUTH_FAILED. */
  badCredentialsSigner(): Promise<Signer>;
  /** The key does not exist: creating it, or its first call, fails with HSM_KEY_NOT_FOUND. */
  missingKeySigner(): Promise<Signer>;
  /** Make the backend unreachable / reachable again. */
  stopBackend(): Promise<void>;
  startBackend(): Promise<void>;
  /** Optional capabilities of the backend. */
  disableKey?(): Promise<void>;
  enableKey?(): Promise<void>;
  injectFaults?(faults: Faults): void;
  /** Secrets (tokens, PINs, passphrases, client secrets) that must never appear in an error. */
  secrets(): string[];
  close(): Promise<void>;
}

/** Runs `f` and returns the HsmError it throws (failing the test if it does not throw one). */
export async function hsmErrorOf(f: () => Promise<unknown>): Promise<HsmError> {
  try {
    await f();
  } catch (e) {
    if (e instanceof HsmError) return e;
    throw new Error(
      `expected an HsmError, got: ${e instanceof Error ? `${e.name}: ${e.message}` : String(e)}`,
    );
  }
  throw new Error("expected an HsmError, but the call succeeded");
}

// @noble/ed25519 3.x needs a SHA-512 implementation for its synchronous API.
ed.hashes.sha512 = (message: Uint8Array) => new Uint8Array(createHash("sha512").update(message).digest());

function independentVerify(
  alg: SignatureAlgorithm,
  pub: Uint8Array,
  msg: Uint8Array,
  sig: Uint8Array,
): boolean {
  if (alg === "ed25519") return ed.verify(sig, msg, pub);
  return p256.verify(sig, sha256(msg), pub, { prehash: false, lowS: true });
}

/** What a backend can do; tests for absent capabilities are not registered (never "skipped"). */
export interface Capabilities {
  /** The backend has a disabled-key state (KMS, Key Vault, Vault; not PKCS#11 or a keystore). */
  disableKey: boolean;
  /** The test double can inject throttling and 5xx (remote emulators). */
  faults: boolean;
  /** There is a backend that can go away (false for a keystore unlocked into memory). */
  backendOutage?: boolean;
}

export function signerCompliance(setup: () => Promise<ComplianceTarget>, capabilities: Capabilities): void {
  let t: ComplianceTarget;
  let signer: Signer;
  let publicKey: Uint8Array;
  const errors: HsmError[] = [];
  const expectCode = async (f: () => Promise<unknown>, ...codes: string[]) => {
    const e = await hsmErrorOf(f);
    errors.push(e);
    expect(codes, `got ${e.code}: ${e.message}`).toContain(e.code);
    return e;
  };

  beforeAll(async () => {
    t = await setup();
    signer = await t.signer();
    publicKey = await signer.publicKey();
  });
  afterAll(async () => {
    await signer?.close();
    await t?.close();
  });

  describe("signer compliance", () => {
    it("reports provider, key id, algorithm and a raw public key", () => {
      expect(signer.algorithm).toBe(t.algorithm);
      expect(signer.keyId.length).toBeGreaterThan(0);
      if (t.algorithm === "ed25519") expect(publicKey.length).toBe(32);
      else {
        expect(publicKey.length).toBe(65);
        expect(publicKey[0]).toBe(4);
      }
    });

    it("signs messages that verify with node:crypto and with an independent implementation", async () => {
      for (let i = 0; i < 12; i++) {
        const msg = randomBytes(1 + ((i * 97) % 900));
        const sig = await signer.sign(msg);
        expect(sig.length).toBe(64);
        expect(verifySignature(t.algorithm, publicKey, msg, sig)).toBe(true);
        expect(independentVerify(t.algorithm, publicKey, msg, sig)).toBe(true);
        const other = Uint8Array.from(msg);
        other[0] = other[0]! ^ 1;
        expect(verifySignature(t.algorithm, publicKey, other, sig)).toBe(false);
      }
    });

    it("returns one normalised form (P-256: raw r||s with low S)", async () => {
      for (let i = 0; i < (t.algorithm === "ecdsa-p256" ? 24 : 2); i++) {
        const sig = await signer.sign(randomBytes(40));
        expect(sig.length).toBe(64);
        if (t.algorithm === "ecdsa-p256") {
          const s = BigInt(`0x${Buffer.from(sig.subarray(32)).toString("hex")}`);
          expect(s <= P256_ORDER >> 1n).toBe(true);
        }
      }
    });

    it("reports health without signing", async () => {
      const h = await signer.health();
      expect(h).toMatchObject({ ok: true, provider: signer.provider, keyId: signer.keyId });
      expect(h.latencyMs).toBeGreaterThanOrEqual(0);
    });

    it("signs concurrently", async () => {
      const msgs = Array.from({ length: 48 }, (_, i) => randomBytes(32 + i));
      const sigs = await Promise.all(msgs.map((m) => signer.sign(m)));
      sigs.forEach((sig, i) => {
        expect(verifySignature(t.algorithm, publicKey, msgs[i]!, sig)).toBe(true);
      });
    });

    it("wrong credentials: HSM_AUTH_FAILED", async () => {
      await expectCode(async () => {
        const s = await t.badCredentialsSigner();
        try {
          await s.sign(randomBytes(32));
        } finally {
          await s.close();
        }
      }, "HSM_AUTH_FAILED");
    });

    it("missing key: HSM_KEY_NOT_FOUND", async () => {
      await expectCode(async () => {
        const s = await t.missingKeySigner();
        try {
          await s.sign(randomBytes(32));
        } finally {
          await s.close();
        }
      }, "HSM_KEY_NOT_FOUND");
    });

    if (capabilities.disableKey)
      it("disabled key: HSM_KEY_DISABLED, and signs again once enabled", async () => {
        if (!t.disableKey || !t.enableKey)
          throw new Error("target declares disableKey but does not implement it");
        await t.disableKey();
        await expectCode(() => signer.sign(randomBytes(32)), "HSM_KEY_DISABLED");
        await t.enableKey();
        expect((await signer.sign(randomBytes(32))).length).toBe(64);
      });

    if (capabilities.backendOutage !== false)
      it("backend down: fails with a clear error and unhealthy status; back up: signs again", async () => {
        await t.stopBackend();
        try {
          await expectCode(() => signer.sign(randomBytes(32)), "HSM_UNREACHABLE", "HSM_TIMEOUT");
          const h = await signer.health();
          expect(h.ok).toBe(false);
          expect(h.code).toBeDefined();
        } finally {
          await t.startBackend();
        }
        const msg = randomBytes(32);
        expect(verifySignature(t.algorithm, publicKey, msg, await signer.sign(msg))).toBe(true);
        expect((await signer.health()).ok).toBe(true);
      });

    if (capabilities.faults)
      it("retries throttling and 5xx, and gives up after bounded attempts", async () => {
        if (!t.injectFaults) throw new Error("target declares faults but does not implement injectFaults");
        t.injectFaults({ throttle: 2 });
        const msg = randomBytes(32);
        expect(verifySignature(t.algorithm, publicKey, msg, await signer.sign(msg))).toBe(true);
        t.injectFaults({ serverErrors: 100 });
        try {
          await expectCode(() => signer.sign(randomBytes(32)), "HSM_BACKEND_ERROR");
        } finally {
          t.injectFaults({ serverErrors: 0, throttle: 0 });
        }
      });

    it("never puts a secret in an error message", () => {
      expect(errors.length).toBeGreaterThan(0);
      for (const e of errors) {
        for (const secret of t.secrets()) {
          if (secret.length < 4) continue;
          expect(`${e.message} ${JSON.stringify(e.meta)}`).not.toContain(secret);
        }
      }
    });
  });

  describe("with the double-sign guard and the revocation list", () => {
    const dir = () => mkdtempSync(join(tmpdir(), "guard-"));

    it("signs once per slot: identical again is fine, a conflict or a regression is refused", async () => {
      const guard = await createGuardedSigner(signer, { journalPath: join(dir(), "journal") });
      const a = randomBytes(60);
      const sig = await guard.sign({ chainId: "c", height: 5, round: 0, step: 2, payload: a });
      expect(verifySignature(t.algorithm, publicKey, a, sig)).toBe(true);
      expect(
        verifySignature(
          t.algorithm,
          publicKey,
          a,
          await guard.sign({ chainId: "c", height: 5, round: 0, step: 2, payload: a }),
        ),
      ).toBe(true);
      await expectCode(
        () => guard.sign({ chainId: "c", height: 5, round: 0, step: 2, payload: randomBytes(60) }),
        "HSM_DOUBLE_SIGN_REFUSED",
      );
      await expectCode(
        () => guard.sign({ chainId: "c", height: 5, round: 0, step: 1, payload: randomBytes(60) }),
        "HSM_DOUBLE_SIGN_REFUSED",
      );
      await expectCode(
        () => guard.sign({ chainId: "c", height: 4, round: 7, step: 3, payload: randomBytes(60) }),
        "HSM_DOUBLE_SIGN_REFUSED",
      );
      expect(
        (await guard.sign({ chainId: "c", height: 5, round: 1, step: 2, payload: randomBytes(60) })).length,
      ).toBe(64);
      await guard.close();
    });

    it("never signs with a revoked key (by public key or by key id)", async () => {
      for (const entry of [{ publicKey: Buffer.from(publicKey).toString("hex") }, { keyId: signer.keyId }]) {
        const revocation = RevocationList.fromEntries([entry]);
        const guard = await createGuardedSigner(signer, { journalPath: join(dir(), "journal"), revocation });
        await expectCode(
          () => guard.sign({ chainId: "c", height: 1, round: 0, step: 1, payload: randomBytes(8) }),
          "HSM_KEY_REVOKED",
        );
        await guard.close();
      }
    });
  });
}
