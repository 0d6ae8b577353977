/**
 * The PKCS#11 provider against a real SoftHSM2 token (no mocks): the shared signer compliance
 * suite for Ed25519 and P-256, then what is specific to PKCS#11: non-extractable keys, the session
 * pool under load and after its sessions are closed behind its back, the token going away and
 * coming back, error mapping, and the storage-key wrapper.
 */
import { randomBytes } from "node:crypto";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import pkcs11js from "pkcs11js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { HsmError } from "../../src/errors.ts";
import type { SignatureAlgorithm } from "../../src/interface.ts";
import {
  createPkcs11KeyWrapper,
  createPkcs11Signer,
  isPkcs11Available,
  pkcs11KeyUri,
  pkcs11ModuleStats,
  provisionPkcs11Key,
  provisionPkcs11WrapKey,
} from "../../src/providers/pkcs11/index.ts";
import { type Pkcs11, Pkcs11Module } from "../../src/providers/pkcs11/module.ts";
import { verifySignature } from "../../src/signature.ts";
import { hsmErrorOf, signerCompliance } from "../compliance/signerCompliance.ts";
import { findSoftHsm, SoftHsm, type SoftHsmInstall, type SoftHsmToken } from "../fixtures/softhsm.ts";

const install = findSoftHsm();

if ("missing" in install) {
  const why = `SoftHSM2 is required for the PKCS#11 tests: ${install.missing}. Install it with: apt-get install softhsm2`;
  if (process.env.CI === "true") {
    describe("pkcs11 (SoftHSM2)", () => {
      it("has SoftHSM2 installed", () => {
        throw new Error(why);
      });
    });
  } else {
    console.warn(`\n*** pkcs11 (SoftHSM2) skipped: softhsm2 not installed. ${why} ***\n`);
    describe.skip("pkcs11 (SoftHSM2): skipped: softhsm2 not installed", () => {
      it("needs SoftHSM2", () => {});
    });
  }
} else {
  pkcs11Suites(install);
}

const KEY = "validator";
const WRAP_KEY = "storage-wrap";

type TokenName = SignatureAlgorithm | "wrap" | "spare";

interface Fixture {
  hsm: SoftHsm;
  tokens: Record<TokenName, SoftHsmToken>;
  publicKeys: Record<SignatureAlgorithm, Uint8Array>;
}

function pkcs11Suites(install: SoftHsmInstall): void {
  // One SoftHSM2 configuration and token directory for this file, set before the library loads.
  const hsm = SoftHsm.create(install);
  const library = hsm.library;
  let fixture: Promise<Fixture> | undefined;

  /** All tokens first (SoftHSM2 reads its token directory at C_Initialize), then the keys. */
  const setup = () =>
    (fixture ??= (async () => {
      const tokens = {
        ed25519: hsm.initToken("vs-ed25519"),
        "ecdsa-p256": hsm.initToken("vs-ecdsa-p256"),
        wrap: hsm.initToken("vs-wrap"),
        spare: hsm.initToken("vs-spare"),
      };
      const publicKeys = {} as Record<SignatureAlgorithm, Uint8Array>;
      for (const algorithm of ["ed25519", "ecdsa-p256"] as const) {
        const t = tokens[algorithm];
        const key = await provisionPkcs11Key({
          library,
          tokenLabel: t.label,
          pinFile: t.pinFile,
          keyLabel: KEY,
          algorithm,
        });
        publicKeys[algorithm] = key.publicKey;
      }
      await provisionPkcs11WrapKey({
        library,
        tokenLabel: "vs-wrap",
        pinFile: tokens.wrap.pinFile,
        keyLabel: WRAP_KEY,
      });
      await provisionPkcs11Key({
        library,
        tokenLabel: "vs-spare",
        pinFile: tokens.spare.pinFile,
        keyLabel: KEY,
        algorithm: "ed25519",
      });
      return { hsm, tokens, publicKeys };
    })());

  const config = (t: SoftHsmToken, keyLabel = KEY, poolSize = 4) => ({
    provider: "pkcs11" as const,
    library,
    tokenLabel: t.label,
    pinFile: t.pinFile,
    keyLabel,
    poolSize,
  });

  /** Direct access to the shared library, as another part of the process (or an operator) would have. */
  async function raw<T>(t: SoftHsmToken, fn: (p: Pkcs11, session: Buffer, slot: Buffer) => T): Promise<T> {
    const mod = await Pkcs11Module.open(library);
    try {
      await mod.ready();
      const p = mod.pkcs11;
      const slot = p.C_GetSlotList(true).find((s) => p.C_GetTokenInfo(s).label.trimEnd() === t.label);
      if (slot === undefined) throw new Error(`token ${t.label} not found`);
      const session = p.C_OpenSession(slot, pkcs11js.CKF_RW_SESSION | pkcs11js.CKF_SERIAL_SESSION);
      try {
        try {
          p.C_Login(session, pkcs11js.CKU_USER, t.pin);
        } catch (e) {
          if ((e as { code?: number }).code !== pkcs11js.CKR_USER_ALREADY_LOGGED_IN) throw e;
        }
        return fn(p, session, slot);
      } finally {
        try {
          p.C_CloseSession(session);
        } catch {
          // closed by fn (C_CloseAllSessions)
        }
      }
    } finally {
      await mod.release();
    }
  }

  const find = (p: Pkcs11, session: Buffer, cls: number, label: string) => {
    p.C_FindObjectsInit(session, [
      { type: pkcs11js.CKA_CLASS, value: cls },
      { type: pkcs11js.CKA_LABEL, value: label },
    ]);
    const found = p.C_FindObjects(session, 4);
    p.C_FindObjectsFinal(session);
    return found;
  };
  const bool = (p: Pkcs11, session: Buffer, object: Buffer, type: number) =>
    p.C_GetAttributeValue(session, object, [{ type }])[0]!.value[0] !== 0;
  const ckrThrown = (f: () => unknown): string => {
    try {
      f();
    } catch (e) {
      return (e as Error).message;
    }
    return "no error";
  };
  const noSecretIn = (e: HsmError, t: SoftHsmToken) => {
    const text = `${e.message} ${JSON.stringify(e.meta)}`;
    for (const secret of [t.pin, t.soPin, t.wrongPin]) expect(text).not.toContain(secret);
  };

  afterAll(() => {
    hsm.destroy();
  });

  for (const algorithm of ["ed25519", "ecdsa-p256"] as const) {
    describe(`pkcs11 (SoftHSM2) ${algorithm}`, () => {
      signerCompliance(
        async () => {
          const f = await setup();
          const t = f.tokens[algorithm];
          return {
            label: `pkcs11 (SoftHSM2) ${algorithm}`,
            algorithm,
            signer: () => createPkcs11Signer(config(t)),
            badCredentialsSigner: () => createPkcs11Signer({ ...config(t), pinFile: t.wrongPinFile }),
            missingKeySigner: () => createPkcs11Signer(config(t, "no-such-key")),
            // "The HSM goes away and comes back", in process: SoftHSM2 keeps each token in a
            // directory, and moving that directory out of the token directory is pulling the
            // device. The library itself then reports it gone (C_GetTokenInfo: CKR_GENERAL_ERROR,
            // the key handle: CKR_OBJECT_HANDLE_INVALID), exactly as a vendor library reports a
            // dead device, and, like many of them, it only sees the token again once it is
            // re-initialised. So the signer must notice, answer HSM_UNREACHABLE, and recover by
            // itself (C_Finalize + C_Initialize, find the token by label, log in, find the key)
            // once the directory is back. Closing sessions behind its back (C_CloseAllSessions) is
            // the milder fault; it is tested separately below because the pool recovers from it
            // within the same call, so signing never fails.
            stopBackend: async () => f.hsm.unplug(t.label),
            startBackend: async () => f.hsm.plugIn(t.label),
            secrets: () => [t.pin, t.soPin, t.wrongPin],
            close: async () => {},
          };
        },
        { disableKey: false, faults: false },
      );
    });
  }

  describe("pkcs11 (SoftHSM2) provider", () => {
    let f: Fixture;
    beforeAll(async () => {
      f = await setup();
    });

    it("is available, and says why not for a wrong library path", () => {
      expect(isPkcs11Available(library)).toEqual({ available: true });
      const missing = isPkcs11Available("/nonexistent/libpkcs11.so");
      expect(missing.available).toBe(false);
      expect(missing.reason).toContain("/nonexistent/libpkcs11.so");
    });

    it("provisions signing keys that are sensitive and can never leave the token", async () => {
      const t = f.tokens.ed25519;
      await raw(t, (p, session) => {
        const [privateKey] = find(p, session, pkcs11js.CKO_PRIVATE_KEY, KEY);
        expect(privateKey).toBeDefined();
        const key = privateKey!;
        expect(bool(p, session, key, pkcs11js.CKA_EXTRACTABLE)).toBe(false);
        expect(bool(p, session, key, pkcs11js.CKA_NEVER_EXTRACTABLE)).toBe(true);
        expect(bool(p, session, key, pkcs11js.CKA_SENSITIVE)).toBe(true);
        expect(bool(p, session, key, pkcs11js.CKA_ALWAYS_SENSITIVE)).toBe(true);
        expect(bool(p, session, key, pkcs11js.CKA_TOKEN)).toBe(true);
        expect(bool(p, session, key, pkcs11js.CKA_PRIVATE)).toBe(true);
        expect(bool(p, session, key, pkcs11js.CKA_SIGN)).toBe(true);
        expect(ckrThrown(() => p.C_GetAttributeValue(session, key, [{ type: pkcs11js.CKA_VALUE }]))).toBe(
          "CKR_ATTRIBUTE_SENSITIVE",
        );
        // Not even wrapped under a key the caller controls.
        const kek = p.C_GenerateKey(session, { mechanism: pkcs11js.CKM_AES_KEY_GEN }, [
          { type: pkcs11js.CKA_TOKEN, value: false },
          { type: pkcs11js.CKA_VALUE_LEN, value: 32 },
          { type: pkcs11js.CKA_WRAP, value: true },
          { type: pkcs11js.CKA_EXTRACTABLE, value: true },
          { type: pkcs11js.CKA_SENSITIVE, value: false },
        ]);
        const wrapped = ckrThrown(() =>
          p.C_WrapKey(session, { mechanism: pkcs11js.CKM_AES_KEY_WRAP_PAD }, kek, key, Buffer.alloc(256)),
        );
        expect(wrapped).toMatch(/^CKR_KEY_UNEXTRACTABLE|^CKR_KEY_NOT_WRAPPABLE/);
      });
    });

    it("provisions the wrapping key as a non-extractable AES-256 key", async () => {
      await raw(f.tokens.wrap, (p, session) => {
        const [key] = find(p, session, pkcs11js.CKO_SECRET_KEY, WRAP_KEY);
        expect(key).toBeDefined();
        expect(bool(p, session, key!, pkcs11js.CKA_EXTRACTABLE)).toBe(false);
        expect(bool(p, session, key!, pkcs11js.CKA_SENSITIVE)).toBe(true);
        expect(bool(p, session, key!, pkcs11js.CKA_ENCRYPT)).toBe(true);
        expect(bool(p, session, key!, pkcs11js.CKA_WRAP)).toBe(false);
        expect(ckrThrown(() => p.C_GetAttributeValue(session, key!, [{ type: pkcs11js.CKA_VALUE }]))).toBe(
          "CKR_ATTRIBUTE_SENSITIVE",
        );
      });
    });

    it("refuses to provision a second key under an existing label", async () => {
      const t = f.tokens.ed25519;
      const e = await hsmErrorOf(() =>
        provisionPkcs11Key({
          library,
          tokenLabel: t.label,
          pinFile: t.pinFile,
          keyLabel: KEY,
          algorithm: "ed25519",
        }),
      );
      expect(e.code).toBe("HSM_INVALID_CONFIG");
      expect(e.message).toContain("already holds");
    });

    it("names the key with an RFC 7512 URI and returns the provisioned public key", async () => {
      expect(pkcs11KeyUri("my token", "a;b/c")).toBe("pkcs11:token=my%20token;object=a%3Bb%2Fc");
      for (const algorithm of ["ed25519", "ecdsa-p256"] as const) {
        const signer = await createPkcs11Signer(config(f.tokens[algorithm]));
        try {
          expect(signer.provider).toBe("pkcs11");
          expect(signer.keyId).toBe(`pkcs11:token=vs-${algorithm};object=${KEY}`);
          expect(signer.algorithm).toBe(algorithm);
          expect(Buffer.from(await signer.publicKey()).equals(Buffer.from(f.publicKeys[algorithm]))).toBe(
            true,
          );
        } finally {
          await signer.close();
        }
      }
    });

    for (const algorithm of ["ed25519", "ecdsa-p256"] as const) {
      it(`signs 500 messages in parallel across the pool (${algorithm}), all verify`, async () => {
        const signer = await createPkcs11Signer(config(f.tokens[algorithm]));
        try {
          const publicKey = await signer.publicKey();
          const messages = Array.from({ length: 500 }, (_, i) => randomBytes(16 + (i % 200)));
          const started = performance.now();
          const signatures = await Promise.all(messages.map((m) => signer.sign(m)));
          const seconds = (performance.now() - started) / 1000;
          console.info(
            `pkcs11 (SoftHSM2) ${algorithm}: 500 parallel signs over 4 sessions, ${Math.round(500 / seconds)} signs/s`,
          );
          signatures.forEach((sig, i) => {
            expect(verifySignature(algorithm, publicKey, messages[i]!, sig)).toBe(true);
          });
          const m = signer.metrics();
          expect(m.sessionsOpen).toBe(4);
          expect(m.sessionsIdle).toBe(4);
          expect(m.waiting).toBe(0);
          expect(m.operationFailuresTotal).toBe(0);
        } finally {
          await signer.close();
        }
      });
    }

    it("recovers when its sessions are closed behind its back (C_CloseAllSessions)", async () => {
      const t = f.tokens.ed25519;
      const signer = await createPkcs11Signer(config(t));
      try {
        const publicKey = await signer.publicKey();
        await Promise.all(Array.from({ length: 8 }, () => signer.sign(randomBytes(32))));
        const resetsBefore = pkcs11ModuleStats(library)!.resetsTotal;
        for (let round = 0; round < 3; round++) {
          await raw(t, (p, _session, slot) => p.C_CloseAllSessions(slot)); // also logs the token out
          const messages = Array.from({ length: 100 }, () => randomBytes(40));
          const signatures = await Promise.all(messages.map((m) => signer.sign(m)));
          signatures.forEach((sig, i) => {
            expect(verifySignature("ed25519", publicKey, messages[i]!, sig)).toBe(true);
          });
        }
        const m = signer.metrics();
        expect(m.sessionRecoveriesTotal).toBeGreaterThanOrEqual(3);
        expect(m.operationFailuresTotal).toBe(0);
        expect(pkcs11ModuleStats(library)!.resetsTotal).toBe(resetsBefore); // sessions only: no library reset
        await raw(t, (p, _session, slot) => p.C_CloseAllSessions(slot));
        expect((await signer.health()).ok).toBe(true); // health recovers too
      } finally {
        await signer.close();
      }
    });

    it("token gone under load: every call fails cleanly with HSM_UNREACHABLE, then all recover", async () => {
      const t = f.tokens["ecdsa-p256"];
      const signer = await createPkcs11Signer(config(t));
      try {
        const publicKey = await signer.publicKey();
        f.hsm.unplug(t.label);
        try {
          const outcomes = await Promise.allSettled(
            Array.from({ length: 40 }, () => signer.sign(randomBytes(32))),
          );
          for (const o of outcomes) {
            expect(o.status).toBe("rejected");
            expect((o as PromiseRejectedResult).reason).toMatchObject({ code: "HSM_UNREACHABLE" });
          }
          const h = await signer.health();
          expect(h).toMatchObject({ ok: false, code: "HSM_UNREACHABLE" });
          expect(h.detail).toContain(t.label);
        } finally {
          f.hsm.plugIn(t.label);
        }
        expect(await signer.health()).toMatchObject({ ok: true }); // health alone reconnects
        const messages = Array.from({ length: 40 }, () => randomBytes(32));
        const signatures = await Promise.all(messages.map((m) => signer.sign(m)));
        signatures.forEach((sig, i) => {
          expect(verifySignature("ecdsa-p256", publicKey, messages[i]!, sig)).toBe(true);
        });
        expect(signer.metrics().reconnectsTotal).toBeGreaterThanOrEqual(1);
      } finally {
        await signer.close();
      }
    });

    describe("errors", () => {
      it("wrong PIN on a token no one is logged in to: HSM_AUTH_FAILED, no PIN in the error", async () => {
        const t = f.tokens.spare;
        const e = await hsmErrorOf(() => createPkcs11Signer({ ...config(t), pinFile: t.wrongPinFile }));
        expect(e.code).toBe("HSM_AUTH_FAILED");
        expect(e.meta.status).toBe("CKR_PIN_INCORRECT");
        expect(e.message).toContain(t.wrongPinFile);
        noSecretIn(e, t);
      });

      it("wrong PIN while the token is logged in by another signer: still HSM_AUTH_FAILED", async () => {
        const t = f.tokens.spare;
        const good = await createPkcs11Signer(config(t));
        try {
          const e = await hsmErrorOf(() => createPkcs11Signer({ ...config(t), pinFile: t.wrongPinFile }));
          expect(e.code).toBe("HSM_AUTH_FAILED");
          noSecretIn(e, t);
          expect((await good.sign(randomBytes(8))).length).toBe(64); // the good one is unaffected
        } finally {
          await good.close();
        }
      });

      it("PIN file missing or empty: HSM_INVALID_CONFIG naming the file", async () => {
        const t = f.tokens.spare;
        const missing = join(f.hsm.dir, "no-such.pin");
        const e1 = await hsmErrorOf(() => createPkcs11Signer({ ...config(t), pinFile: missing }));
        expect(e1.code).toBe("HSM_INVALID_CONFIG");
        expect(e1.message).toContain(missing);
        const empty = join(f.hsm.dir, "empty.pin");
        writeFileSync(empty, " \n", { mode: 0o600 });
        const e2 = await hsmErrorOf(() => createPkcs11Signer({ ...config(t), pinFile: empty }));
        expect(e2.code).toBe("HSM_INVALID_CONFIG");
        expect(e2.message).toContain(empty);
      });

      it("unknown token label: HSM_KEY_NOT_FOUND listing the tokens that exist", async () => {
        const e = await hsmErrorOf(() =>
          createPkcs11Signer({ ...config(f.tokens.spare), tokenLabel: "vs-nope" }),
        );
        expect(e.code).toBe("HSM_KEY_NOT_FOUND");
        expect(e.message).toContain('"vs-nope"');
        for (const label of ["vs-ed25519", "vs-ecdsa-p256", "vs-wrap", "vs-spare"])
          expect(e.message).toContain(`"${label}"`);
      });

      it("unknown key label: HSM_KEY_NOT_FOUND naming the label and the token", async () => {
        const e = await hsmErrorOf(() => createPkcs11Signer(config(f.tokens.spare, "nope-key")));
        expect(e.code).toBe("HSM_KEY_NOT_FOUND");
        expect(e.message).toContain('"nope-key"');
        expect(e.message).toContain('"vs-spare"');
        // The wrapper wants a secret key: a signing key's label is not one.
        const w = await hsmErrorOf(() => createPkcs11KeyWrapper(config(f.tokens.spare, KEY)));
        expect(w.code).toBe("HSM_KEY_NOT_FOUND");
      });

      it("library that cannot be loaded: HSM_INVALID_CONFIG naming the path", async () => {
        for (const path of ["/nonexistent/libsofthsm2.so", f.hsm.confPath]) {
          const e = await hsmErrorOf(() => createPkcs11Signer({ ...config(f.tokens.spare), library: path }));
          expect(e.code).toBe("HSM_INVALID_CONFIG");
          expect(e.message).toContain(path);
        }
      });

      it("a key of another type or curve: HSM_UNSUPPORTED_KEY", async () => {
        const t = f.tokens.spare;
        await raw(t, (p, session) => {
          p.C_GenerateKeyPair(
            session,
            { mechanism: pkcs11js.CKM_EC_KEY_PAIR_GEN },
            [
              { type: pkcs11js.CKA_TOKEN, value: true },
              { type: pkcs11js.CKA_LABEL, value: "secp256k1" },
              { type: pkcs11js.CKA_EC_PARAMS, value: Buffer.from("06052b8104000a", "hex") },
            ],
            [
              { type: pkcs11js.CKA_TOKEN, value: true },
              { type: pkcs11js.CKA_PRIVATE, value: true },
              { type: pkcs11js.CKA_SIGN, value: true },
              { type: pkcs11js.CKA_LABEL, value: "secp256k1" },
            ],
          );
        });
        const e = await hsmErrorOf(() => createPkcs11Signer(config(t, "secp256k1")));
        expect(e.code).toBe("HSM_UNSUPPORTED_KEY");
        expect(e.message).toContain("P-256");
      });

      it("invalid configuration: HSM_INVALID_CONFIG", async () => {
        const e = await hsmErrorOf(() => createPkcs11Signer({ ...config(f.tokens.spare), poolSize: 0 }));
        expect(e.code).toBe("HSM_INVALID_CONFIG");
        expect(e.message).toContain("poolSize");
      });
    });

    describe("storage key wrapper", () => {
      const wrapper = () => createPkcs11KeyWrapper(config(f.tokens.wrap, WRAP_KEY));
      const text = (b: Uint8Array) => new TextDecoder().decode(b);
      const bytes = (o: unknown) => new TextEncoder().encode(typeof o === "string" ? o : JSON.stringify(o));

      it("wraps with AES-256-GCM into a self-describing envelope and unwraps it", async () => {
        const w = await wrapper();
        try {
          const dataKey = randomBytes(32);
          const blob = await w.wrap(dataKey);
          const envelope = JSON.parse(text(blob));
          expect(envelope).toMatchObject({
            format: "vitalstream-wrapped-key",
            version: 1,
            provider: "pkcs11",
            keyId: `pkcs11:token=vs-wrap;object=${WRAP_KEY}`,
            mechanism: "CKM_AES_GCM",
          });
          expect(Buffer.from(envelope.iv, "base64").length).toBe(12);
          expect(Buffer.from(envelope.ciphertext, "base64").length).toBe(48);
          expect(text(blob)).not.toContain(dataKey.toString("base64"));
          expect(Buffer.from(await w.unwrap(blob)).equals(dataKey)).toBe(true);
          const again = JSON.parse(text(await w.wrap(dataKey)));
          expect(again.iv).not.toBe(envelope.iv); // a fresh IV every time
          // A second wrapper (a restarted node) unwraps it too.
          const other = await wrapper();
          try {
            expect(Buffer.from(await other.unwrap(blob)).equals(dataKey)).toBe(true);
          } finally {
            await other.close();
          }
        } finally {
          await w.close();
        }
      });

      it("tampered ciphertext or IV: HSM_UNWRAP_FAILED", async () => {
        const w = await wrapper();
        try {
          const envelope = JSON.parse(text(await w.wrap(randomBytes(32))));
          for (const field of ["ciphertext", "iv"]) {
            for (const position of [0, field === "iv" ? 11 : 47]) {
              const b = Buffer.from(envelope[field], "base64");
              b[position] = b[position]! ^ 0x01;
              const e = await hsmErrorOf(() =>
                w.unwrap(bytes({ ...envelope, [field]: b.toString("base64") })),
              );
              expect(e.code).toBe("HSM_UNWRAP_FAILED");
            }
          }
          expect((await w.unwrap(bytes(envelope))).length).toBe(32); // sessions still fine after failures
        } finally {
          await w.close();
        }
      });

      it("garbage or foreign envelopes: named errors", async () => {
        const w = await wrapper();
        try {
          const envelope = JSON.parse(text(await w.wrap(randomBytes(32))));
          const corrupt = [
            "garbage",
            "",
            "[]",
            "null",
            new Uint8Array([0xff, 0xfe, 0x00]),
            { ...envelope, format: "something-else" },
            { ...envelope, version: 2 },
            { ...envelope, mechanism: "CKM_AES_CBC_PAD" },
            { ...envelope, iv: "not base64!" },
            {
              ...envelope,
              ciphertext: Buffer.from(envelope.ciphertext, "base64").subarray(0, 40).toString("base64"),
            },
            { ...envelope, ciphertext: undefined },
          ];
          for (const blob of corrupt) {
            const e = await hsmErrorOf(() => w.unwrap(blob instanceof Uint8Array ? blob : bytes(blob)));
            expect(e.code, JSON.stringify(blob)).toBe("HSM_KEYSTORE_CORRUPT");
            expect(e.message).toContain("not a valid vitalstream-wrapped-key envelope");
          }
          const foreignKey = await hsmErrorOf(() =>
            w.unwrap(bytes({ ...envelope, keyId: "pkcs11:token=vs-wrap;object=other" })),
          );
          expect(foreignKey.code).toBe("HSM_INVALID_CONFIG");
          expect(foreignKey.message).toContain("object=other");
          const foreignProvider = await hsmErrorOf(() =>
            w.unwrap(bytes({ ...envelope, provider: "aws-kms" })),
          );
          expect(foreignProvider.code).toBe("HSM_INVALID_CONFIG");
          expect((await hsmErrorOf(() => w.wrap(randomBytes(16)))).code).toBe("HSM_INVALID_CONFIG");
        } finally {
          await w.close();
        }
      });
    });

    describe("lifecycle", () => {
      it("signer and wrapper share one initialised library; the last close finalises it", async () => {
        const signer = await createPkcs11Signer(config(f.tokens.ed25519));
        const w = await createPkcs11KeyWrapper(config(f.tokens.wrap, WRAP_KEY));
        expect(pkcs11ModuleStats(library)).toMatchObject({ users: 2, initialized: true });
        await w.close();
        await w.close(); // idempotent
        expect((await signer.sign(randomBytes(8))).length).toBe(64);
        await signer.close();
        expect(pkcs11ModuleStats(library)).toMatchObject({ users: 0, initialized: false, inFlight: 0 });
        const e = await hsmErrorOf(() => signer.sign(randomBytes(8)));
        expect(e.code).toBe("HSM_CLOSED");
        expect((await signer.health()).ok).toBe(false);
      });

      it("closing waits for signatures in flight", async () => {
        const signer = await createPkcs11Signer(config(f.tokens.ed25519));
        const publicKey = await signer.publicKey();
        const messages = Array.from({ length: 50 }, () => randomBytes(32));
        const settled = Promise.allSettled(messages.map((m) => signer.sign(m)));
        await new Promise((resolve) => setImmediate(resolve)); // the first four are on the token now
        await signer.close();
        const outcomes = await settled;
        outcomes.forEach((o, i) => {
          if (o.status === "rejected") expect(o.reason).toMatchObject({ code: "HSM_CLOSED" });
          else expect(verifySignature("ed25519", publicKey, messages[i]!, o.value)).toBe(true);
        });
        expect(outcomes.some((o) => o.status === "fulfilled")).toBe(true);
        expect(outcomes.some((o) => o.status === "rejected")).toBe(true);
        expect(pkcs11ModuleStats(library)).toMatchObject({ users: 0, inFlight: 0 });
      });
    });
  });
}
