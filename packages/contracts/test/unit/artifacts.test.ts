import { join } from "node:path";
import * as contracts from "@vitalstream/contracts";
import { HDNodeWallet, Interface } from "ethers";
import { describe, expect, it } from "vitest";
import { repoRoot, run } from "../fixtures/process.ts";

describe("package exports", () => {
  it("exports ABI and bytecode of both contracts", () => {
    for (const artifact of [contracts.auditLogArtifact, contracts.consentRegistryArtifact]) {
      expect(artifact.bytecode).toMatch(/^0x[0-9a-f]{1000,}$/);
      expect(artifact.deployedBytecode).toMatch(/^0x[0-9a-f]{1000,}$/);
      expect(() => new Interface(artifact.abi)).not.toThrow();
    }
    const audit = new Interface(contracts.auditLogArtifact.abi);
    for (const name of ["record", "recordBatch", "count", "head", "checkpoint", "eventAt", "chainHead"]) {
      expect(audit.getFunction(name), name).not.toBeNull();
    }
    const consent = new Interface(contracts.consentRegistryArtifact.abi);
    for (const name of ["grantConsent", "revokeConsent", "hasConsent", "getConsent", "consentKey"]) {
      expect(consent.getFunction(name), name).not.toBeNull();
    }
    expect(contracts.compilerSettings).toEqual({
      solc: "0.8.28+commit.7893614a",
      evmVersion: "cancun",
      optimizerRuns: 200,
    });
  });

  it("exports the helpers", () => {
    expect(typeof contracts.verifyAuditChain).toBe("function");
    expect(typeof contracts.decodeAuditEvent).toBe("function");
    expect(typeof contracts.chainHead).toBe("function");
    expect(contracts.GENESIS_HEAD).toMatch(/^0x[0-9a-f]{64}$/);
  });

  it("is importable as @vitalstream/contracts from another workspace", async () => {
    const script = [
      'import { auditLogArtifact, verifyAuditChain } from "@vitalstream/contracts";',
      'import { runVerifyAuditLog } from "@vitalstream/contracts/cli";',
      "console.log(JSON.stringify([auditLogArtifact.contractName, verifyAuditChain([]).ok, typeof runVerifyAuditLog]));",
    ].join("\n");
    const r = await run(["--input-type=module", "-e", script], { cwd: join(repoRoot, "packages", "node") });
    expect(r.stderr).toBe("");
    expect(JSON.parse(r.stdout)).toEqual(["AuditLog", true, "function"]);
  });
});

describe("devnet parameters", () => {
  it("derive the deployer from the documented DEV ONLY mnemonic", () => {
    const wallet = HDNodeWallet.fromPhrase(
      contracts.DEVNET_MNEMONIC,
      undefined,
      contracts.DEVNET_DEPLOYER.path,
    );
    expect(wallet.address).toBe(contracts.DEVNET_DEPLOYER.address);
    expect(wallet.privateKey).toBe(contracts.DEVNET_DEPLOYER.privateKey);
    expect(contracts.DEVNET_CHAIN_ID).toBe(13_372_026);
    expect(contracts.DEVNET_RPC_URL).toBe("http://127.0.0.1:8545");
    expect(contracts.DEVNET_DEPLOYER.balanceWei > 0n).toBe(true);
  });
});
