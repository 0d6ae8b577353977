/**
 * deploy/config/to-kubernetes.ts, run for real on a network made by `vitalstream init` and
 * `vitalstream certs`: it writes what the ConfigMap and the keys Secret hold, every config is one
 * the node accepts, and the example in deploy/config is exactly its output for validator-0.
 */
import { execFileSync, spawnSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseNodeConfig } from "../../packages/node/src/runtime/config.ts";
import { DEPLOY, ROOT } from "./k8s.ts";

const tmp = mkdtempSync(join(tmpdir(), "vs-to-k8s-"));
const net = join(tmp, "net");
const example = JSON.parse(readFileSync(join(DEPLOY, "config/vitalstream-validator-0.json"), "utf8"));
const storageKeys = [0, 1, 2, 3].map((i) => ({
  ...example.storageKey,
  keyId: example.storageKey.keyId.replace("validator-0", `validator-${i}`),
}));
const pods = [0, 1, 2, 3].map((i) => `vitalstream-validator-${i}`);

function vitalstream(...args: string[]): void {
  execFileSync(process.execPath, [join(ROOT, "packages/node/bin/vitalstream.js"), ...args], {
    stdio: "pipe",
  });
}

function toKubernetes(out: string, keys: unknown[]) {
  writeFileSync(join(tmp, "storage-keys.json"), JSON.stringify(keys));
  const r = spawnSync(
    process.execPath,
    [
      join(DEPLOY, "config/to-kubernetes.ts"),
      "--net",
      net,
      "--storage-keys",
      join(tmp, "storage-keys.json"),
      "--out",
      out,
    ],
    { encoding: "utf8" },
  );
  return { code: r.status, stderr: r.stderr };
}

beforeAll(() => {
  vitalstream("init", "--dir", net, "--validators", "4", "--dev-accounts", "1");
  vitalstream("certs", "--dir", net);
  // Production signers: init wrote local keystores (it would read these keys' public halves from Vault).
  for (let i = 0; i < 4; i++) {
    const file = join(net, `validator-${i}`, "config.json");
    const config = JSON.parse(readFileSync(file, "utf8"));
    config.signer = {
      provider: "vault",
      address: "https://vault.example.internal:8200",
      tokenFile: "/home/operator/vault-token",
      keyName: `validator-${i}`,
    };
    writeFileSync(file, JSON.stringify(config));
  }
}, 120_000);
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe("deploy/config/to-kubernetes.ts", () => {
  const out = join(tmp, "k8s");
  let run: { code: number | null; stderr: string };
  beforeAll(() => {
    run = toKubernetes(out, storageKeys);
  });

  it("writes the ConfigMap's files and the keys Secret's files", () => {
    expect(run.code, run.stderr).toBe(0);
    expect(readdirSync(join(out, "config")).sort()).toEqual(
      [
        "genesis.json",
        "backup-verify.json",
        "ca.pem",
        "revoked.json",
        ...pods.flatMap((p) => [`${p}.json`, `${p}.cert.pem`]),
      ].sort(),
    );
    expect(readdirSync(join(out, "config"))).not.toContain("ca.key");
    expect(readdirSync(join(out, "secrets")).sort()).toEqual(
      pods.flatMap((p) => [`${p}.admin-token`, `${p}.node-key`]).sort(),
    );
    for (const [i, p] of pods.entries()) {
      expect(readFileSync(join(out, "secrets", `${p}.node-key`), "utf8")).toBe(
        readFileSync(join(net, `validator-${i}`, "node-key"), "utf8"),
      );
      expect(statSync(join(out, "secrets", `${p}.node-key`)).mode & 0o777).toBe(0o600);
    }
    expect(run.stderr).toContain(
      `the Secret vitalstream-validator-hsm must hold: ${pods.map((p) => `${p}.vault-token`).join(", ")}`,
    );
  });

  it("writes configs the node accepts, each dialling the other three by DNS name", () => {
    const genesis = JSON.parse(readFileSync(join(net, "genesis.json"), "utf8"));
    for (const [i, p] of pods.entries()) {
      const config = parseNodeConfig(
        JSON.parse(readFileSync(join(out, "config", `${p}.json`), "utf8")),
        "/etc/vitalstream",
      );
      expect(config.production).toBe(true);
      expect(config.signer).toMatchObject({ tokenFile: `/var/run/secrets/vitalstream/${p}.vault-token` });
      expect(config.p2p.peers).toEqual(
        genesis.validators.flatMap((v: { nodeId: string }, j: number) =>
          j === i
            ? []
            : [
                {
                  nodeId: v.nodeId,
                  address: `/dns4/vitalstream-validator-${j}.vitalstream-validator.vitalstream.svc.cluster.local/tcp/26656`,
                },
              ],
        ),
      );
    }
  });

  it("and deploy/config/vitalstream-validator-0.json is its output for validator-0", () => {
    const made = JSON.parse(readFileSync(join(out, "config", `${pods[0]}.json`), "utf8"));
    made.signer = example.signer;
    made.p2p.peers = made.p2p.peers.map((p: { address: string }, k: number) => ({
      nodeId: `REPLACE-with-validator-${k + 1}-nodeId-from-genesis`,
      address: p.address,
    }));
    expect(made).toEqual(example);
    const verify = JSON.parse(readFileSync(join(out, "config", "backup-verify.json"), "utf8"));
    expect(verify).toEqual(JSON.parse(readFileSync(join(DEPLOY, "config/backup-verify.json"), "utf8")));
  });

  it("refuses a local storage key (production) and never overwrites", () => {
    const local = toKubernetes(
      join(tmp, "k8s-local"),
      storageKeys.map(() => ({ provider: "local", passphraseFile: "p" })),
    );
    expect(local.code).toBe(1);
    expect(local.stderr).toMatch(
      /error: vitalstream-validator-0: the local keystore is refused in production/,
    );
    const again = toKubernetes(out, storageKeys);
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/EEXIST/);
  });
});
