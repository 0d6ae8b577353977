/**
 * `npm run bench:hsm`: signs/s and p50/p99 latency per provider, with and without the double-sign
 * guard. Emulated backends are labelled "(emulator)": their figures measure our client, the SDK
 * and loopback HTTP, not the cloud service. SoftHSM2 and the local keystore are the real thing.
 * Raw and guarded signing alternate in blocks so that machine noise hits both alike.
 * Writes ci_artifacts/hsm_benchmark.json. Goal: the guard adds under 10% to SoftHSM latency.
 */
import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { cpus } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { createGuardedSigner } from "../../src/guard/doubleSignGuard.ts";
import type { Signer } from "../../src/interface.ts";
import { createAzureKeyVaultSigner } from "../../src/providers/azureKeyVault/index.ts";
import { createLocalSigner } from "../../src/providers/local/signer.ts";
import { createPkcs11Signer, provisionPkcs11Key } from "../../src/providers/pkcs11/index.ts";
import { awsKmsComplianceTarget } from "../fixtures/awsKms.ts";
import { startAzureFixture } from "../fixtures/azureKeyVault.ts";
import { localKeystore } from "../fixtures/local.ts";
import { findSoftHsm, SoftHsm } from "../fixtures/softhsm.ts";
import { vaultComplianceTarget } from "../fixtures/vaultFixtures.ts";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "../../../..");
const GOAL_GUARD_OVERHEAD = 0.1;

interface Target {
  name: string;
  emulated: boolean;
  open(): Promise<{ signer: Signer; close(): Promise<void> }>;
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

const round = (x: number, d = 3) => Math.round(x * 10 ** d) / 10 ** d;

async function measure(t: Target, n: number, journalDir: string) {
  const { signer, close } = await t.open();
  const guard = await createGuardedSigner(signer, {
    journalPath: join(journalDir, `${t.name.replace(/\W+/g, "-")}.jsonl`),
  });
  const payload = randomBytes(160); // about the size of canonical vote sign bytes
  for (let i = 0; i < 20; i++) await signer.sign(payload); // warm up
  const raw: number[] = [];
  const guarded: number[] = [];
  let height = 1;
  const block = 25;
  for (let done = 0; done < n; done += block) {
    for (let i = 0; i < block; i++) {
      const t0 = performance.now();
      await signer.sign(payload);
      raw.push(performance.now() - t0);
    }
    for (let i = 0; i < block; i++) {
      const req = { chainId: "bench", height: height++, round: 0, step: 2, payload };
      const t0 = performance.now();
      await guard.sign(req);
      guarded.push(performance.now() - t0);
    }
  }
  const concurrency = 16;
  const total = Math.max(n, 64);
  const t0 = performance.now();
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next++ < total) await signer.sign(payload);
    }),
  );
  const concurrentPerSecond = total / ((performance.now() - t0) / 1000);
  await guard.close();
  await close();
  raw.sort((a, b) => a - b);
  guarded.sort((a, b) => a - b);
  const sum = (xs: number[]) => xs.reduce((s, x) => s + x, 0);
  return {
    provider: t.name,
    emulated: t.emulated,
    algorithm: signer.algorithm,
    samples: raw.length,
    raw: {
      p50Ms: round(percentile(raw, 50)),
      p99Ms: round(percentile(raw, 99)),
      signsPerSecond: round(raw.length / (sum(raw) / 1000), 0),
    },
    guarded: {
      p50Ms: round(percentile(guarded, 50)),
      p99Ms: round(percentile(guarded, 99)),
      signsPerSecond: round(guarded.length / (sum(guarded) / 1000), 0),
    },
    guardOverheadP50: round(percentile(guarded, 50) / percentile(raw, 50) - 1),
    concurrentSignsPerSecond: round(concurrentPerSecond, 0),
    concurrency,
  };
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: { quick: { type: "boolean" }, out: { type: "string" }, help: { type: "boolean", short: "h" } },
  });
  if (values.help) {
    console.log("Usage: npm run bench:hsm -- [--quick] [--out FILE]");
    return 0;
  }
  const n = values.quick ? 100 : 400;
  const softhsm = findSoftHsm();
  if ("missing" in softhsm) {
    console.error(`bench:hsm: SoftHSM2 is required (apt-get install softhsm2): ${softhsm.missing}`);
    return 2;
  }
  const hsm = SoftHsm.create(softhsm);
  const token = hsm.initToken("bench");
  const pkcs11 = (algorithm: "ed25519" | "ecdsa-p256"): Target => ({
    name: `pkcs11 (SoftHSM2) ${algorithm}`,
    emulated: false,
    async open() {
      const base = {
        library: hsm.library,
        tokenLabel: token.label,
        pinFile: token.pinFile,
        keyLabel: `bench-${algorithm}`,
      };
      await provisionPkcs11Key({ ...base, algorithm });
      const signer = await createPkcs11Signer({ provider: "pkcs11", ...base, poolSize: 4 });
      return { signer, close: () => signer.close() };
    },
  });
  const local = (algorithm: "ed25519" | "ecdsa-p256"): Target => ({
    name: `local keystore ${algorithm}`,
    emulated: false,
    async open() {
      const ks = localKeystore(algorithm);
      const signer = await createLocalSigner({
        provider: "local",
        keystorePath: ks.keystorePath,
        passphraseFile: ks.passphraseFile,
      });
      return { signer, close: () => signer.close() };
    },
  });
  const fromTarget = (
    name: string,
    make: () => Promise<{ signer(): Promise<Signer>; close(): Promise<void> }>,
  ): Target => ({
    name,
    emulated: true,
    async open() {
      const t = await make();
      const signer = await t.signer();
      return {
        signer,
        close: async () => {
          await signer.close();
          await t.close();
        },
      };
    },
  });
  const targets: Target[] = [
    pkcs11("ed25519"),
    pkcs11("ecdsa-p256"),
    local("ed25519"),
    local("ecdsa-p256"),
    fromTarget("aws-kms (emulator) ed25519", () => awsKmsComplianceTarget("ECC_NIST_EDWARDS25519")),
    fromTarget("aws-kms (emulator) ecdsa-p256", () => awsKmsComplianceTarget("ECC_NIST_P256")),
    fromTarget("vault (emulator) ed25519", vaultComplianceTarget({ algorithm: "ed25519", mount: "transit" })),
    fromTarget(
      "vault (emulator) ecdsa-p256",
      vaultComplianceTarget({ algorithm: "ecdsa-p256", mount: "transit" }),
    ),
    {
      name: "azure-keyvault (emulator) ecdsa-p256",
      emulated: true,
      async open() {
        const fx = await startAzureFixture();
        fx.emulator.createEcKey("bench");
        const signer = await createAzureKeyVaultSigner(fx.config({ keyName: "bench" }));
        return {
          signer,
          close: async () => {
            await signer.close();
            await fx.close();
          },
        };
      },
    },
  ];
  const journalDir = mkdtempSync(join(ROOT, "ci_artifacts", ".bench-journal-"));
  const results = [];
  for (const t of targets) {
    process.stderr.write(`bench:hsm ${t.name}: ${n} raw + ${n} guarded signs ... `);
    const r = await measure(t, n, journalDir);
    process.stderr.write(
      `p50 ${r.raw.p50Ms} ms raw, ${r.guarded.p50Ms} ms guarded, ${r.concurrentSignsPerSecond} signs/s at concurrency 16\n`,
    );
    results.push(r);
  }
  execFileSync("rm", ["-rf", journalDir]);
  hsm.destroy();
  const soft = results.find((r) => r.provider === "pkcs11 (SoftHSM2) ed25519")!;
  let commit: string | null = null;
  try {
    commit = execFileSync("git", ["rev-parse", "HEAD"], {
      cwd: ROOT,
      encoding: "utf8",
      stdio: ["ignore", "pipe", "ignore"],
    }).trim();
  } catch {}
  const report = {
    benchmark: "hsm",
    generatedAt: new Date().toISOString(),
    environment: {
      node: process.version,
      cpuModel: cpus()[0]?.model ?? "unknown",
      cores: cpus().length,
      gitCommit: commit,
    },
    parameters: {
      samplesPerMode: n,
      payloadBytes: 160,
      guard: "journal fsynced per new slot, on the project's disk (ci_artifacts/)",
      note: "emulated providers measure the client, SDK and loopback HTTP, not the cloud service",
    },
    results,
    goal: {
      description: "the guard adds under 10% to SoftHSM (Ed25519) signing latency (p50)",
      guardOverheadP50: soft.guardOverheadP50,
      threshold: GOAL_GUARD_OVERHEAD,
      met: soft.guardOverheadP50 < GOAL_GUARD_OVERHEAD,
    },
  };
  const out = values.out ? resolve(values.out) : resolve(ROOT, "ci_artifacts/hsm_benchmark.json");
  mkdirSync(dirname(out), { recursive: true });
  writeFileSync(out, `${JSON.stringify(report, null, 2)}\n`);
  console.log(
    `\ngoal (guard overhead on SoftHSM p50 < 10%): ${report.goal.met ? "met" : "NOT met"} (${round(soft.guardOverheadP50 * 100, 1)}%); report: ${out}`,
  );
  return 0;
}

process.exitCode = await main();
