/**
 * The consortium PKI with real processes: `vitalstream certs` issues every validator a certificate
 * binding its node id; the network runs over TLS 1.3 with certificates checked on connect; a
 * revoked validator is cut off while the rest keep committing; a node whose own certificate
 * expired refuses to start with one clear line.
 */
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import "reflect-metadata";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { issueNodeCertificate, loadDevCa } from "../../packages/node/src/network/devPki.ts";
import { cli, waitFor } from "./helpers.ts";
import { ProcessNet } from "./processNet.ts";

const VALIDATORS = ["validator-0", "validator-1", "validator-2", "validator-3"];
let net: ProcessNet;
let nodeIds: string[];

async function allReach(names: string[], target: number, ms = 60_000): Promise<void> {
  await waitFor(
    `${names.join(", ")} to reach ${target}`,
    async () => {
      const hs = await Promise.all(names.map((n) => net.height(n)));
      return hs.every((h) => h !== undefined && h >= target) ? true : undefined;
    },
    ms,
  );
}

async function top(names: string[]): Promise<number> {
  return Math.max(...(await Promise.all(names.map((n) => net.height(n)))).map((h) => h ?? 0));
}

beforeAll(async () => {
  net = await ProcessNet.init({ validators: 4 });
  const certs = await cli(["certs", "--dir", net.dir, "--days", "30"]);
  expect(certs.code, certs.stderr).toBe(0);
  nodeIds = JSON.parse(readFileSync(join(net.dir, "genesis.json"), "utf8")).validators.map(
    (v: { nodeId: string }) => v.nodeId,
  );
  for (const m of net.members) {
    const config = JSON.parse(readFileSync(m.config, "utf8"));
    expect(config.p2p.pki.certFile).toBe("node-cert.pem");
    config.p2p.encryption = "tls";
    writeFileSync(m.config, JSON.stringify(config, null, 2));
  }
  net.startAll();
  await allReach(VALIDATORS, 3);
}, 120_000);

afterAll(async () => {
  await net?.stopAll();
});

describe("consortium PKI over TLS", () => {
  it("validators with CA-issued certificates connect and agree; a 30-day certificate warns", async () => {
    for (const n of VALIDATORS) expect((await net.status(n))!.peers).toBe(3);
    const end = await top(VALIDATORS);
    await allReach(VALIDATORS, end);
    await net.assertSameChain(VALIDATORS, end);
    expect(net.log("validator-0")).toMatch(/"encryption":"tls","pki":true/);
    expect(net.log("validator-0")).toMatch(/certificate expires soon/);
  });

  it("a revoked validator is disconnected at once (list reloaded live) and refused; the rest commit", async () => {
    const revoked = join(net.dir, "pki", "revoked.json");
    writeFileSync(
      revoked,
      JSON.stringify({ revoked: [{ keyId: nodeIds[3], reason: "key compromise drill" }] }),
    );
    for (const n of VALIDATORS.slice(0, 3))
      await waitFor(`${n} to drop validator-3`, async () =>
        /peer certificate no longer valid[^\n]*|refused peer certificate/.test(net.log(n)) ? true : undefined,
      );
    expect(net.log("validator-0")).toMatch(/revoked/);
    await waitFor("validator-3 to have no peers", async () =>
      (await net.status("validator-3"))?.peers === 0 ? true : undefined,
    );
    const at = await top(VALIDATORS.slice(0, 3));
    await allReach(VALIDATORS.slice(0, 3), at + 3);
    // It stays out: reconnect attempts are refused at the certificate check or the ban.
    await new Promise((d) => setTimeout(d, 3_000));
    expect((await net.status("validator-0"))!.peers).toBe(2);
    const v3 = (await net.height("validator-3"))!;
    expect(v3).toBeLessThan(await top(VALIDATORS.slice(0, 3)));
    writeFileSync(revoked, JSON.stringify({ revoked: [] }));
  }, 120_000);

  it("a node whose own certificate expired refuses to start with one clear line", async () => {
    await net.kill("validator-3", "SIGTERM");
    const ca = await loadDevCa(join(net.dir, "pki", "ca.pem"), join(net.dir, "pki", "ca.key"));
    const seed = readFileSync(join(net.member("validator-3").dir, "node-key"), "utf8").trim();
    const expired = await issueNodeCertificate(
      ca,
      { name: "validator-3", nodeId: nodeIds[3]!, nodeKeySeedHex: seed },
      { notBefore: new Date(Date.now() - 10 * 86_400_000), notAfter: new Date(Date.now() - 86_400_000) },
    );
    writeFileSync(join(net.member("validator-3").dir, "node-cert.pem"), expired.pem);
    const r = await cli(["start", "--config", net.member("validator-3").config]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^error: own certificate refused: .*expired/m);
    expect(r.stderr).not.toMatch(/\n\s+at /);
  });
});
