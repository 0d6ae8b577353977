// Runs the Hardhat side as real processes so that the root `npm test` (vitest) covers it:
// the mocha suite, the artifacts staleness check, and a deploy to a devnet-like JSON-RPC node
// followed by record -> export -> offline verification.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Contract, JsonRpcProvider, Wallet } from "ethers";
import { afterAll, describe, expect, it } from "vitest";
import { auditLogArtifact } from "../src/artifacts.ts";
import { DEVNET_CHAIN_ID, DEVNET_DEPLOYER } from "../src/devnet.ts";
import { AUDIT_EVENT_TOPIC } from "../src/events.ts";
import { packageDir, run, runHardhat, startHardhatNode } from "./fixtures/process.ts";

const tmp = mkdtempSync(join(tmpdir(), "contracts-e2e-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      server.close(() => resolve(typeof address === "object" && address ? address.port : 0));
    });
  });
}

/** At least as many tests as `it(` calls in the spec files (a skipped file would fall short). */
function declaredSpecs(): number {
  return ["AuditLog.spec.ts", "ConsentRegistry.spec.ts"]
    .map((f) => readFileSync(join(packageDir, "test", "hardhat", f), "utf8").match(/^\s+it\(/gm)?.length ?? 0)
    .reduce((a, b) => a + b, 0);
}

describe("Hardhat", () => {
  it("runs the mocha suite: all passing, none failing or pending", async () => {
    const r = await runHardhat(["test"]);
    const passing = Number(/(\d+) passing/.exec(r.stdout)?.[1] ?? 0);
    expect(r.stdout, r.stderr).not.toMatch(/\d+ failing/);
    expect(r.stdout).not.toMatch(/\d+ pending/);
    expect(r.code, `${r.stdout}\n${r.stderr}`).toBe(0);
    expect(passing).toBeGreaterThan(0);
    expect(passing).toBeGreaterThanOrEqual(declaredSpecs());
  });

  it("src/artifacts.ts matches the fresh build", async () => {
    // `hardhat test` above compiled into artifacts/
    const r = await run(["scripts/generate-artifacts.ts", "--check"]);
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
  });

  it("deploys with `hardhat run scripts/deploy.ts --network devnet`, then records, exports and verifies", async () => {
    const node = await startHardhatNode(await freePort());
    try {
      const deploy = await runHardhat(["run", "scripts/deploy.ts", "--network", "devnet"], {
        DEVNET_RPC_URL: node.url,
        DEPLOYMENTS_DIR: tmp,
      });
      expect(deploy.code, deploy.stderr).toBe(0);
      const summary = JSON.parse(deploy.stdout) as {
        chainId: string;
        deployer: string;
        auditLog: { address: string };
      };
      expect(summary).toMatchObject({ chainId: String(DEVNET_CHAIN_ID), deployer: DEVNET_DEPLOYER.address });
      expect(JSON.parse(readFileSync(join(tmp, `devnet-${DEVNET_CHAIN_ID}.json`), "utf8"))).toEqual(summary);

      // A client with nothing but the exported artifact and the devnet constants.
      const provider = new JsonRpcProvider(node.url, DEVNET_CHAIN_ID, {
        staticNetwork: true,
        cacheTimeout: -1,
      });
      const wallet = new Wallet(DEVNET_DEPLOYER.privateKey, provider);
      const auditLog = new Contract(summary.auditLog.address, auditLogArtifact.abi, wallet);
      expect(await provider.getCode(summary.auditLog.address)).toBe(auditLogArtifact.deployedBytecode);
      const id = (s: string) => `0x${Buffer.from(s.padEnd(32, "\0")).toString("hex")}`;
      await (await auditLog.getFunction("record")(id("patient-1"), id("read"), id("doc-1"))).wait();
      const entries = [2, 3, 4].map((i) => ({
        subject: id(`patient-${i}`),
        action: id("update"),
        dataHash: id(`doc-${i}`),
      }));
      await (await auditLog.getFunction("recordBatch")(entries)).wait();
      const [count, head] = (await auditLog.getFunction("checkpoint")()) as [bigint, string];
      expect(count).toBe(4n);

      const logs = await provider.getLogs({
        address: summary.auditLog.address,
        topics: [AUDIT_EVENT_TOPIC],
        fromBlock: 0,
      });
      const exported = { checkpoint: { count: count.toString(), head }, logs: logs.map((l) => l.toJSON()) };
      const good = join(tmp, "export.json");
      writeFileSync(good, JSON.stringify(exported));
      const ok = await run(["scripts/verify-audit-log.ts", good]);
      expect(ok.stdout).toBe(`ok: 4 events verified; count 4, head ${head}\n`);
      expect(ok.code).toBe(0);

      const tampered = join(tmp, "tampered.json");
      writeFileSync(tampered, JSON.stringify({ ...exported, logs: exported.logs.filter((_, i) => i !== 1) }));
      const bad = await run(["scripts/verify-audit-log.ts", tampered]);
      expect(bad.stdout).toMatch(/^FAIL gap at seq 2 /);
      expect(bad.code).toBe(1);
    } finally {
      node.stop();
    }
  });
});
