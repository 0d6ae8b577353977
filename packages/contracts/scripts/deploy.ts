// Deploys AuditLog and ConsentRegistry and grants their roles.
//
//   npx hardhat run scripts/deploy.ts --network devnet
//
// The deployer (DEVNET_PRIVATE_KEY, by default the DEV ONLY devnet key) becomes admin of both
// contracts. AUDIT_WRITERS and CONSENT_RECORDERS (comma-separated addresses) get the writer and
// recorder roles; both default to the deployer. Prints a JSON summary on stdout and writes it to
// deployments/<network>-<chainId>.json (DEPLOYMENTS_DIR overrides the folder). Errors are one line, no stack trace; exit code 1.
import { mkdirSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import type {} from "@nomicfoundation/hardhat-ethers";
import hre from "hardhat";
import { compilerSettings } from "../src/artifacts.ts";

const { ethers, network } = hre;

function addresses(variable: string, fallback: string): string[] {
  const raw = process.env[variable]?.trim();
  const list = raw ? raw.split(",").map((a) => a.trim()) : [fallback];
  for (const address of list) {
    if (!ethers.isAddress(address)) throw new Error(`${variable}: "${address}" is not an address`);
  }
  return list.map((a) => ethers.getAddress(a));
}

async function main(): Promise<void> {
  const [deployer] = await ethers.getSigners();
  if (!deployer) throw new Error(`network ${network.name} has no account to deploy from`);
  const writers = addresses("AUDIT_WRITERS", deployer.address);
  const recorders = addresses("CONSENT_RECORDERS", deployer.address);
  const { chainId } = await ethers.provider.getNetwork();

  const auditLog = await ethers.deployContract("AuditLog", [deployer.address]);
  const consentRegistry = await ethers.deployContract("ConsentRegistry", [deployer.address]);
  await Promise.all([auditLog.waitForDeployment(), consentRegistry.waitForDeployment()]);

  const writerRole = await auditLog.getFunction("WRITER_ROLE")();
  for (const writer of writers) await (await auditLog.getFunction("grantRole")(writerRole, writer)).wait();
  const recorderRole = await consentRegistry.getFunction("RECORDER_ROLE")();
  for (const recorder of recorders)
    await (await consentRegistry.getFunction("grantRole")(recorderRole, recorder)).wait();

  const summary = {
    network: network.name,
    chainId: chainId.toString(),
    deployer: deployer.address,
    blockNumber: await ethers.provider.getBlockNumber(),
    compiler: compilerSettings,
    auditLog: { address: await auditLog.getAddress(), writers },
    consentRegistry: { address: await consentRegistry.getAddress(), recorders },
  };
  const text = JSON.stringify(summary, null, 2);
  const dir =
    process.env.DEPLOYMENTS_DIR || join(dirname(fileURLToPath(import.meta.url)), "..", "deployments");
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, `${network.name}-${chainId}.json`), `${text}\n`);
  console.log(text);
}

try {
  await main();
} catch (e) {
  const message = e instanceof Error ? e.message.split("\n")[0] : String(e);
  console.error(`deploy failed on network ${network.name}: ${message}`);
  process.exitCode = 1;
}
