/**
 * `vitalstream devnet` (`npm start`): a local network of validators, each a separate
 * `vitalstream start` process, under one directory. The first run creates it (`init`); later
 * runs resume the same chain. Prints where everything is, then one live status line; Ctrl-C stops
 * every validator cleanly.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync, openSync, readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { initNetwork } from "../runtime/init.ts";

export interface DevnetOptions {
  dir: string;
  validators: number;
  rpcBasePort: number;
  devAccounts: number;
  statusLine: boolean;
}

const BIN = fileURLToPath(new URL("../../bin/vitalstream.js", import.meta.url));

interface Validator {
  name: string;
  dir: string;
  rpc: string;
  log: string;
  child?: ChildProcess;
  exited?: string;
}

function readJson<T>(path: string): T {
  return JSON.parse(readFileSync(path, "utf8")) as T;
}

async function status(
  url: string,
): Promise<{ head: { height: number }; round: number; peers: number } | null> {
  try {
    const r = await fetch(`${url}/consensus/status`, { signal: AbortSignal.timeout(1000) });
    return (await r.json()) as { head: { height: number }; round: number; peers: number };
  } catch {
    return null;
  }
}

export async function runDevnet(opts: DevnetOptions): Promise<void> {
  const dir = resolve(opts.dir);
  const out = (line: string) => process.stdout.write(`${line}\n`);
  if (!existsSync(join(dir, "genesis.json"))) {
    out(`creating a ${opts.validators}-validator devnet in ${dir}`);
    await initNetwork({
      dir,
      validators: opts.validators,
      rpcBasePort: opts.rpcBasePort,
      devAccounts: opts.devAccounts,
      onProgress: (m) => out(`  ${m}`),
    });
  } else {
    out(`resuming the devnet in ${dir}`);
  }
  const genesis = readJson<{
    chainId: string;
    evmChainId: number;
    validators: { name: string }[];
    contracts: Record<string, string>;
  }>(join(dir, "genesis.json"));
  const validators: Validator[] = genesis.validators.map((v) => {
    const vdir = join(dir, v.name);
    const config = readJson<{ rpc: { host: string; port: number } }>(join(vdir, "config.json"));
    return {
      name: v.name,
      dir: vdir,
      rpc: `http://${config.rpc.host}:${config.rpc.port}`,
      log: join(vdir, "node.log"),
    };
  });

  let stopping = false;
  for (const v of validators) {
    const logFd = openSync(v.log, "a");
    const child = spawn(process.execPath, [BIN, "start", "--config", join(v.dir, "config.json")], {
      stdio: ["ignore", logFd, logFd],
      env: process.env,
    });
    v.child = child;
    child.on("exit", (code, signal) => {
      v.exited = signal ?? `exit ${code}`;
      if (!stopping) process.stderr.write(`\n${v.name} stopped (${v.exited}); its log: ${v.log}\n`);
    });
  }

  const accountsFile = join(dir, "accounts.json");
  out("");
  out(`chain ${genesis.chainId}, EVM chain id ${genesis.evmChainId}`);
  for (const v of validators) out(`  ${v.name}: JSON-RPC ${v.rpc}  log ${v.log}`);
  for (const [name, address] of Object.entries(genesis.contracts)) out(`  ${name} predeployed at ${address}`);
  if (existsSync(accountsFile)) {
    const accounts = readJson<{ accounts: { address: string; privateKey: string }[] }>(accountsFile).accounts;
    out("");
    out("Development accounts (funded, permitted; DEVELOPMENT ONLY, public keys; also in accounts.json):");
    for (const [i, a] of accounts.slice(0, 10).entries()) out(`  (${i}) ${a.address}  ${a.privateKey}`);
    if (accounts.length > 10) out(`  ... ${accounts.length - 10} more in ${accountsFile}`);
  }
  out("");
  out("Ctrl-C stops the devnet; npm start again resumes it.");

  let lastHeight = -1;
  let lastTime = Date.now();
  let lastTxs = 0;
  const timer = setInterval(async () => {
    const s = await status(validators[0]!.rpc);
    if (!opts.statusLine || !process.stdout.isTTY) {
      if (s !== null && s.head.height !== lastHeight && s.head.height % 100 === 0)
        out(`height ${s.head.height}`);
      if (s !== null) lastHeight = s.head.height;
      return;
    }
    const now = Date.now();
    let txRate = 0;
    try {
      const r = await fetch(validators[0]!.rpc, {
        method: "POST",
        body: JSON.stringify({
          jsonrpc: "2.0",
          id: 1,
          method: "eth_getBlockByNumber",
          params: ["latest", false],
        }),
        signal: AbortSignal.timeout(1000),
      });
      const block = ((await r.json()) as { result: { transactions: string[] } }).result;
      const txs = block.transactions.length;
      txRate =
        s !== null && s.head.height !== lastHeight ? (txs + lastTxs) / 2 / ((now - lastTime) / 1000) : 0;
      lastTxs = txs;
    } catch {}
    const up = validators.filter((v) => v.exited === undefined).length;
    const line =
      s === null
        ? `waiting for ${validators[0]!.rpc} ...`
        : `height ${s.head.height}  round ${s.round}  peers ${s.peers}  validators up ${up}/${validators.length}  ~${txRate.toFixed(0)} tx/s`;
    process.stdout.write(`\r${line.padEnd(90)}`);
    if (s !== null && s.head.height !== lastHeight) {
      lastHeight = s.head.height;
      lastTime = now;
    }
  }, 1000);

  await new Promise<void>((done) => {
    const stop = () => {
      if (stopping) return;
      stopping = true;
      clearInterval(timer);
      out("\nstopping validators ...");
      let remaining = validators.filter((v) => v.child !== undefined && v.exited === undefined).length;
      if (remaining === 0) done();
      for (const v of validators) {
        if (v.child === undefined || v.exited !== undefined) continue;
        v.child.once("exit", () => {
          remaining--;
          if (remaining === 0) done();
        });
        v.child.kill("SIGTERM");
        setTimeout(() => v.child?.kill("SIGKILL"), 15_000).unref();
      }
    };
    process.on("SIGINT", stop);
    process.on("SIGTERM", stop);
    // If every validator died on its own, stop too (the logs say why).
    const watch = setInterval(() => {
      if (validators.every((v) => v.exited !== undefined)) {
        clearInterval(watch);
        if (!stopping) {
          process.exitCode = 1;
          stop();
        }
      }
    }, 500);
    watch.unref();
  });
  out("devnet stopped");
}
