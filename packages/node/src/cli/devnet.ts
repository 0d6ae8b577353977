/**
 * `vitalstream devnet` (`npm start`): a local network of validators, each a separate
 * `vitalstream start` process, under one directory. The first run creates it (`init`); later
 * runs resume the same chain. Prints where everything is, then one live status line; Ctrl-C stops
 * every validator cleanly.
 */
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, openSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { provisionPkcs11Key } from "@vitalstream/hsm";
import { initNetwork } from "../runtime/init.ts";

export interface DevnetOptions {
  dir: string;
  validators: number;
  observers: number;
  rpcBasePort: number;
  p2pBasePort: number;
  /** Prometheus metrics of validator-0 (validator i: base + i) on first run; absent: none. */
  metricsBasePort?: number;
  devAccounts: number;
  /** Where validator keys live on first run: local keystores, or SoftHSM2 tokens (PKCS#11). */
  hsm: "local" | "softhsm";
  statusLine: boolean;
}

const BIN = fileURLToPath(new URL("../../bin/vitalstream.js", import.meta.url));

interface Member {
  name: string;
  dir: string;
  rpc: string;
  log: string;
  child?: ChildProcess;
  exited?: string;
}

interface NodeStatus {
  head: { height: number };
  round: number;
  peers: number;
}

function readJson<T>(path: string): T {
  return JSON.parse(readFileSync(path, "utf8")) as T;
}

async function post(url: string, method: string, params: unknown[]): Promise<unknown> {
  const r = await fetch(url, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ jsonrpc: "2.0", id: 1, method, params }),
    signal: AbortSignal.timeout(1000),
  });
  return ((await r.json()) as { result?: unknown }).result;
}

async function status(url: string): Promise<NodeStatus | null> {
  try {
    const r = await fetch(`${url}/consensus/status`, { signal: AbortSignal.timeout(1000) });
    return (await r.json()) as NodeStatus;
  } catch {
    return null;
  }
}

/**
 * SoftHSM2 for the devnet: one token per validator under <dir>/softhsm, each holding an Ed25519
 * consensus key generated inside it. Returns the provider configs for init, and the environment
 * (SOFTHSM2_CONF) every validator process needs.
 */
export async function provisionSoftHsm(
  dir: string,
  validators: number,
  out: (line: string) => void,
): Promise<{ signerConfigs: Record<string, unknown>[]; env: Record<string, string> }> {
  const util = ["/usr/bin/softhsm2-util", "/usr/local/bin/softhsm2-util"].find((p) => existsSync(p));
  const library = [
    "/usr/lib/softhsm/libsofthsm2.so",
    "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
    "/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so",
  ].find((p) => existsSync(p));
  if (util === undefined || library === undefined)
    throw new Error("--hsm softhsm needs SoftHSM2 (apt-get install softhsm2)");
  const hsmDir = join(dir, "softhsm");
  mkdirSync(join(hsmDir, "tokens"), { recursive: true });
  const conf = join(hsmDir, "softhsm2.conf");
  writeFileSync(
    conf,
    `directories.tokendir = ${join(hsmDir, "tokens")}\nobjectstore.backend = file\nlog.level = ERROR\n`,
  );
  process.env.SOFTHSM2_CONF = conf;
  const signerConfigs: Record<string, unknown>[] = [];
  for (let i = 0; i < validators; i++) {
    const label = `validator-${i}`;
    const pin = randomBytes(12).toString("hex");
    const pinFile = join(hsmDir, `${label}.pin`);
    writeFileSync(pinFile, `${pin}\n`, { mode: 0o600 });
    execFileSync(
      util,
      ["--init-token", "--free", "--label", label, "--pin", pin, "--so-pin", randomBytes(12).toString("hex")],
      { env: { ...process.env, SOFTHSM2_CONF: conf }, stdio: ["ignore", "ignore", "pipe"] },
    );
    const signer = { provider: "pkcs11", library, tokenLabel: label, pinFile, keyLabel: "consensus" };
    out(`  ${label}: generating an Ed25519 key inside SoftHSM2 token "${label}"`);
    await provisionPkcs11Key({ ...signer, algorithm: "ed25519" } as Parameters<typeof provisionPkcs11Key>[0]);
    signerConfigs.push(signer);
  }
  return { signerConfigs, env: { SOFTHSM2_CONF: conf } };
}

export async function runDevnet(opts: DevnetOptions): Promise<void> {
  const dir = resolve(opts.dir);
  const out = (line: string) => process.stdout.write(`${line}\n`);
  const childEnv: NodeJS.ProcessEnv = { ...process.env };
  if (!existsSync(join(dir, "genesis.json"))) {
    out(
      `creating a ${opts.validators}-validator devnet${opts.observers > 0 ? ` with ${opts.observers} observer(s)` : ""} in ${dir}`,
    );
    mkdirSync(dir, { recursive: true });
    const hsm = opts.hsm === "softhsm" ? await provisionSoftHsm(dir, opts.validators, out) : undefined;
    Object.assign(childEnv, hsm?.env);
    await initNetwork({
      dir,
      validators: opts.validators,
      observers: opts.observers,
      rpcBasePort: opts.rpcBasePort,
      p2pBasePort: opts.p2pBasePort,
      ...(opts.metricsBasePort === undefined ? {} : { metricsBasePort: opts.metricsBasePort }),
      devAccounts: opts.devAccounts,
      ...(hsm === undefined ? {} : { signerConfigs: hsm.signerConfigs }),
      onProgress: (m) => out(`  ${m}`),
    });
  } else {
    out(`resuming the devnet in ${dir}`);
    const conf = join(dir, "softhsm", "softhsm2.conf");
    if (existsSync(conf)) childEnv.SOFTHSM2_CONF = conf;
  }
  const genesis = readJson<{
    chainId: string;
    evmChainId: number;
    validators: { name: string }[];
    contracts: Record<string, string>;
  }>(join(dir, "genesis.json"));
  const names = [
    ...genesis.validators.map((v) => v.name),
    ...readdirSync(dir).filter((d) => /^observer-\d+$/.test(d) && existsSync(join(dir, d, "config.json"))),
  ];
  const members: Member[] = names.map((name) => {
    const mdir = join(dir, name);
    const config = readJson<{ rpc: { host: string; port: number } }>(join(mdir, "config.json"));
    return {
      name,
      dir: mdir,
      rpc: `http://${config.rpc.host}:${config.rpc.port}`,
      log: join(mdir, "node.log"),
    };
  });

  let stopping = false;
  for (const m of members) {
    const logFd = openSync(m.log, "a");
    const child = spawn(process.execPath, [BIN, "start", "--config", join(m.dir, "config.json")], {
      stdio: ["ignore", logFd, logFd],
      env: childEnv,
    });
    m.child = child;
    child.on("exit", (code, signal) => {
      m.exited = signal ?? `exit ${code}`;
      if (!stopping) process.stderr.write(`\n${m.name} stopped (${m.exited}); its log: ${m.log}\n`);
    });
  }

  const accountsFile = join(dir, "accounts.json");
  out("");
  out(`chain ${genesis.chainId}, EVM chain id ${genesis.evmChainId}`);
  for (const m of members) {
    const config = readJson<{ p2p?: { listen?: string[] }; metrics?: { host?: string; port?: number } }>(
      join(m.dir, "config.json"),
    );
    const metrics =
      config.metrics === undefined
        ? ""
        : `  metrics http://${config.metrics.host ?? "127.0.0.1"}:${config.metrics.port ?? 9090}/metrics`;
    out(`  ${m.name}: JSON-RPC ${m.rpc}  p2p ${config.p2p?.listen?.[0] ?? "off"}${metrics}  log ${m.log}`);
  }
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

  // Transactions per second over the last 10 s of committed blocks (counted from block bodies).
  const recent: { at: number; txs: number }[] = [];
  let counted = -1;
  let printed = -1;
  const timer = setInterval(async () => {
    const statuses = await Promise.all(members.map((m) => (m.exited === undefined ? status(m.rpc) : null)));
    const live = statuses.filter((s): s is NodeStatus => s !== null);
    const best = live.reduce<NodeStatus | null>(
      (a, s) => (a === null || s.head.height > a.head.height ? s : a),
      null,
    );
    const now = Date.now();
    if (best !== null) {
      const source = members[statuses.indexOf(best)]!.rpc;
      if (counted < 0) counted = best.head.height;
      for (let h = Math.max(counted + 1, best.head.height - 50); h <= best.head.height; h++) {
        try {
          const n = (await post(source, "eth_getBlockTransactionCountByNumber", [
            `0x${h.toString(16)}`,
          ])) as string;
          recent.push({ at: now, txs: Number(n) });
        } catch {
          break;
        }
        counted = h;
      }
    }
    while (recent.length > 0 && recent[0]!.at < now - 10_000) recent.shift();
    const txRate = recent.reduce((a, r) => a + r.txs, 0) / 10;
    if (!opts.statusLine || !process.stdout.isTTY) {
      // Not a terminal (a log file, CI): one line per 100 blocks instead of a live line.
      const hundred = best === null ? -1 : Math.floor(best.head.height / 100);
      if (best !== null && hundred > printed) {
        printed = hundred;
        out(`height ${best.head.height}  peers ${best.peers}  nodes up ${live.length}/${members.length}`);
      }
      return;
    }
    const minPeers = live.length === 0 ? 0 : Math.min(...live.map((s) => s.peers));
    const line =
      best === null
        ? `waiting for ${members[0]!.rpc} ...`
        : `height ${best.head.height}  round ${best.round}  peers ${minPeers}/${members.length - 1}  nodes up ${live.length}/${members.length}  ${txRate.toFixed(0)} tx/s`;
    process.stdout.write(`\r${line.padEnd(90)}`);
  }, 1000);

  await new Promise<void>((done) => {
    const stop = () => {
      if (stopping) return;
      stopping = true;
      clearInterval(timer);
      out("\nstopping the devnet ...");
      let remaining = members.filter((m) => m.child !== undefined && m.exited === undefined).length;
      if (remaining === 0) done();
      for (const m of members) {
        if (m.child === undefined || m.exited !== undefined) continue;
        m.child.once("exit", () => {
          remaining--;
          if (remaining === 0) done();
        });
        m.child.kill("SIGTERM");
        setTimeout(() => m.child?.kill("SIGKILL"), 15_000).unref();
      }
    };
    process.on("SIGINT", stop);
    process.on("SIGTERM", stop);
    // If every node died on its own, stop too (the logs say why).
    const watch = setInterval(() => {
      if (members.every((m) => m.exited !== undefined)) {
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
