/** Shared by the process tests: run the CLI, start and stop validator processes, talk JSON-RPC. */
import { type ChildProcess, execFile, spawn } from "node:child_process";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { auditLogArtifact } from "@vitalstream/contracts";
import { Interface, id, JsonRpcProvider, type Wallet } from "ethers";

const run = promisify(execFile);
export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
export const BIN = join(ROOT, "packages/node/bin");
export const AUDIT_LOG = "0x000000000000000000000000000000000000a0d1";
const auditLog = new Interface(auditLogArtifact.abi);

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `vitalstream` (or an alias such as blockchain-backup.js) to completion. */
export async function cli(
  args: string[],
  bin = "vitalstream.js",
  env: NodeJS.ProcessEnv = {},
): Promise<CliResult> {
  try {
    const r = await run(process.execPath, [join(BIN, bin), ...args], {
      env: { ...process.env, ...env },
      maxBuffer: 32 * 1024 * 1024,
    });
    return { code: 0, stdout: r.stdout, stderr: r.stderr };
  } catch (e) {
    const err = e as { code: number; stdout: string; stderr: string };
    return { code: err.code, stdout: err.stdout, stderr: err.stderr };
  }
}

/** `vitalstream start --config` as a child process, resolved once /ready answers 200. */
export async function startValidator(
  config: string,
  url: string,
  env: NodeJS.ProcessEnv = {},
): Promise<ChildProcess> {
  const child = spawn(process.execPath, [join(BIN, "vitalstream.js"), "start", "--config", config], {
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, ...env },
  });
  let output = "";
  child.stdout!.on("data", (d) => {
    output += d;
  });
  child.stderr!.on("data", (d) => {
    output += d;
  });
  for (let i = 0; i < 300; i++) {
    if (child.exitCode !== null) throw new Error(`node exited: ${output.slice(-2000)}`);
    try {
      if ((await fetch(`${url}/ready`)).status === 200) return child;
    } catch {}
    await new Promise((d) => setTimeout(d, 100));
  }
  throw new Error(`node not ready: ${output.slice(-2000)}`);
}

export async function stop(child: ChildProcess, signal: NodeJS.Signals = "SIGTERM"): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((d) => child.once("exit", d));
  child.kill(signal);
  await exited;
}

export async function waitFor<T>(what: string, probe: () => Promise<T | undefined>, ms = 30_000): Promise<T> {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    const value = await probe().catch(() => undefined);
    if (value !== undefined) return value;
    await new Promise((d) => setTimeout(d, 100));
  }
  throw new Error(`timed out waiting for ${what}`);
}

/** One JSON-RPC call over plain fetch (no client-side caching or polling); errors throw. */
export async function rpcCall(url: string, method: string, params: unknown[] = []): Promise<unknown> {
  const response = await fetch(url, {
    method: "POST",
    body: JSON.stringify({ jsonrpc: "2.0", id: 1, method, params }),
  });
  const body = (await response.json()) as { result?: unknown; error?: { message: string } };
  if (body.error !== undefined) throw new Error(body.error.message);
  return body.result;
}

export function provider(url: string): JsonRpcProvider {
  return new JsonRpcProvider(url, undefined, { staticNetwork: true, pollingInterval: 50, cacheTimeout: -1 });
}

export async function head(url: string): Promise<{ height: number; hash: string; stateRoot: string }> {
  const block = (await rpcCall(url, "eth_getBlockByNumber", ["latest", false])) as {
    number: string;
    hash: string;
    stateRoot: string;
  };
  return { height: Number(block.number), hash: block.hash, stateRoot: block.stateRoot };
}

/** The committed height from the REST status, or undefined while the node is not answering. */
export async function statusHeight(url: string): Promise<number | undefined> {
  const r = await fetch(`${url}/consensus/status`);
  return ((await r.json()) as { head: { height: number } }).head.height;
}

/** A signed AuditLog.record on the predeploy (zero gas price, as the devnet allows). */
export function signRecord(
  wallet: Wallet,
  chainId: number | bigint,
  nonce: number,
  subject: string,
): Promise<string> {
  return wallet.signTransaction({
    type: 2,
    chainId,
    nonce,
    to: AUDIT_LOG,
    gasLimit: 300_000,
    maxFeePerGas: 0,
    maxPriorityFeePerGas: 0,
    data: auditLog.encodeFunctionData("record", [id(subject), id("record.write"), id("doc")]),
  });
}
