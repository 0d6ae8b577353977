/**
 * The TPS benchmark (run it through scripts/generate_tps_benchmark.sh or npm run bench:tps; `--help` lists options).
 *
 * 1. init: a network of N validators (Noise, encrypted stores, local keystores or SoftHSM2 tokens)
 *    with many funded, permitted accounts, in a temporary directory, on free loopback ports;
 * 2. ceiling: each workload executed by the EVM alone, in this process, on one core (what one
 *    validator could commit at best), measured before the validators start;
 * 3. start: N `vitalstream start` processes; wait until they commit with full peering;
 * 4. deploy: AuditLog through JSON-RPC (a create transaction), then WRITER_ROLE for every load
 *    account (grantRole transactions);
 * 5. per workload: a closed-loop run to saturation, then an open-loop run at a fixed rate (80% of
 *    the saturation unless given), each driven by a separate load-generator process
 *    (loadGenerator.ts); the validators' CPU and RSS are sampled from /proc meanwhile;
 * 6. report: ci_artifacts/tps_benchmark_report.json and .svg.
 *
 * Exit codes: 0 the benchmark ran (goals met or not: the report says); 1 it could not run (a
 * validator died, nothing committed, bad options); 3 it ran but transactions failed (rejected,
 * reverted or lost).
 */
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { cpus, loadavg, tmpdir, totalmem } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { auditLogArtifact } from "@vitalstream/contracts";
import { AbiCoder, Interface, id } from "ethers";
import { genesisBlock, parseGenesis } from "../../../src/chain/genesis.ts";
import { provisionSoftHsm } from "../../../src/cli/devnet.ts";
import { createExecutor } from "../../../src/execution/executor.ts";
import { MemoryState } from "../../../src/execution/state.ts";
import { txCommon } from "../../../src/execution/txCommon.ts";
import { AUDIT_LOG_ADDRESS, type DevAccount, initNetwork } from "../../../src/runtime/init.ts";
import type { LoadJob, LoadResult } from "./loadGenerator.ts";
import { blockTimes, efficiency, perSecond, steadyState } from "./stats.ts";
import { type ChartRun, renderChart } from "./svg.ts";
import { signTransactions, signTx, type WorkloadName, workload } from "./workload.ts";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "../../../../..");
const BIN = join(ROOT, "packages/node/bin/vitalstream.js");
const LOADGEN = join(ROOT, "packages/node/test/perf/tps/loadGenerator.ts");
const CLOCK_TICKS = 100;

const USAGE = `usage: scripts/generate_tps_benchmark.sh [options]

  --quick              short runs (about 2 minutes in all): what CI runs
  --validators N       validator processes (default 4)
  --duration S         seconds of load per run (default 60; --quick 12)
  --rate R             open-loop rate for 'record' in tx/s (default 80% of its measured saturation)
  --batch-rate R       open-loop rate for 'recordBatch' in tx/s (default 80% of its saturation)
  --batch-size N       audit events per recordBatch transaction (default 50, at most 128)
  --workloads LIST     record,recordBatch (default both)
  --accounts N         permitted load accounts (default 256)
  --hsm local|softhsm  where validator keys live (default local keystores)
  --out DIR            where the report goes (default ci_artifacts/)
  --keep               keep the network directory (configs, logs) for a post-mortem
  --help               this text

Writes tps_benchmark_report.json and tps_benchmark_report.svg. Progress goes to stderr.
Exit: 0 ran (the report says which goals were met), 1 could not run, 3 transactions failed.`;

class BenchmarkError extends Error {}

function options() {
  const { values } = parseArgs({
    options: {
      quick: { type: "boolean", default: false },
      validators: { type: "string", default: "4" },
      duration: { type: "string" },
      rate: { type: "string" },
      "batch-rate": { type: "string" },
      "batch-size": { type: "string", default: "50" },
      workloads: { type: "string", default: "record,recordBatch" },
      accounts: { type: "string", default: "256" },
      hsm: { type: "string", default: "local" },
      out: { type: "string", default: join(ROOT, "ci_artifacts") },
      keep: { type: "boolean", default: false },
      help: { type: "boolean", default: false },
    },
  });
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    process.exit(0);
  }
  const int = (name: string, v: string | undefined, min: number, max: number): number | undefined => {
    if (v === undefined) return undefined;
    const n = Number(v);
    if (!Number.isInteger(n) || n < min || n > max)
      throw new BenchmarkError(`--${name} must be an integer in ${min}..${max}, got "${v}"`);
    return n;
  };
  const workloads = values.workloads.split(",").map((w) => w.trim());
  for (const w of workloads)
    if (w !== "record" && w !== "recordBatch")
      throw new BenchmarkError(`--workloads: unknown workload "${w}" (record, recordBatch)`);
  if (values.hsm !== "local" && values.hsm !== "softhsm")
    throw new BenchmarkError(`--hsm must be local or softhsm, got "${values.hsm}"`);
  return {
    quick: values.quick,
    validators: int("validators", values.validators, 1, 16)!,
    durationS: int("duration", values.duration, 5, 3600) ?? (values.quick ? 12 : 60),
    rate: int("rate", values.rate, 1, 100_000),
    batchRate: int("batch-rate", values["batch-rate"], 1, 10_000),
    batchSize: int("batch-size", values["batch-size"], 1, 128)!,
    workloads: workloads as WorkloadName[],
    accounts: int("accounts", values.accounts, 1, 5000)!,
    hsm: values.hsm as "local" | "softhsm",
    out: resolve(values.out),
    keep: values.keep,
  };
}
type Options = ReturnType<typeof options>;

const started = performance.now();
function progress(message: string): void {
  const t = ((performance.now() - started) / 1000).toFixed(1).padStart(6);
  process.stderr.write(`[tps ${t}s] ${message}\n`);
}

async function freeBase(count: number): Promise<number> {
  const tryPort = (port: number) =>
    new Promise<boolean>((done) => {
      const s = createServer();
      s.once("error", () => done(false));
      s.listen(port, "127.0.0.1", () => s.close(() => done(true)));
    });
  for (let attempt = 0; attempt < 50; attempt++) {
    const base = 20_000 + Math.floor(Math.random() * 20_000);
    let ok = true;
    for (let i = 0; i < count && ok; i++) ok = await tryPort(base + i);
    if (ok) return base;
  }
  throw new BenchmarkError(`no ${count} consecutive free loopback ports found`);
}

type RpcAnswer<T> = { id: number; result?: T; error?: { message: string } };

async function rpc<T>(url: string, method: string, params: unknown[] = []): Promise<T> {
  const r = await fetch(url, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ jsonrpc: "2.0", id: 1, method, params }),
    signal: AbortSignal.timeout(30_000),
  });
  const a = (await r.json()) as RpcAnswer<T>;
  if (a.error !== undefined) throw new BenchmarkError(`${method} on ${url}: ${a.error.message}`);
  return a.result as T;
}

async function until<T>(what: string, probe: () => Promise<T | undefined>, ms: number): Promise<T> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    const v = await probe().catch(() => undefined);
    if (v !== undefined) return v;
    await new Promise((d) => setTimeout(d, 100));
  }
  throw new BenchmarkError(`timed out after ${ms / 1000} s waiting for ${what}`);
}

// ---------------------------------------------------------------------------------- ceiling

/** The workload executed by the EVM alone (in-memory state from the same genesis), one core. */
async function ceiling(
  genesisFile: string,
  name: WorkloadName,
  batchSize: number,
  accounts: DevAccount[],
  txCount: number,
): Promise<{ txPerSecond: number; eventsPerSecond: number; txs: number; seconds: number }> {
  const doc = parseGenesis(JSON.parse(readFileSync(genesisFile, "utf8")));
  const executor = await createExecutor({
    chainId: BigInt(doc.evmChainId),
    blockGasLimit: BigInt(doc.consensus.blockGasLimit),
  });
  const common = txCommon(executor.common);
  const w = workload(name, batchSize);
  const perAccount = Math.ceil(txCount / accounts.length);
  const byAccount = accounts.map((a) => signTransactions(w, a, 0, perAccount, AUDIT_LOG_ADDRESS, common));
  // Interleave accounts as a mempool would, nonces in order.
  const txs: Uint8Array[] = [];
  for (let n = 0; n < perAccount; n++)
    for (const list of byAccount)
      if (txs.length < txCount) txs.push(Buffer.from(list[n]!.raw.slice(2), "hex"));
  const genesis = genesisBlock(doc);
  const state = new MemoryState();
  state.apply(genesis.changes);
  let parent = genesis.stateRoot;
  const perBlock = name === "record" ? 500 : 20;
  const t0 = performance.now();
  for (let i = 0; i < txs.length; i += perBlock) {
    const result = await executor.executeBlock(
      {
        height: BigInt(i / perBlock + 1),
        timestamp: 1_800_000_000n,
        coinbase: new Uint8Array(20),
        txs: txs.slice(i, i + perBlock),
        parentStateRoot: parent,
      },
      state,
    );
    if (result.outcomes.some((o) => !o.ok || o.receipt.status !== 1))
      throw new BenchmarkError(`a ${name} transaction failed in the EVM-alone run: the workload is wrong`);
    state.apply(result.changes);
    parent = result.stateRoot;
  }
  const seconds = (performance.now() - t0) / 1000;
  return {
    txPerSecond: txs.length / seconds,
    eventsPerSecond: (txs.length * w.eventsPerTx) / seconds,
    txs: txs.length,
    seconds,
  };
}

// ---------------------------------------------------------------------------------- processes

interface Validator {
  name: string;
  url: string;
  log: string;
  child: ChildProcess;
  exited?: string;
  samples: { epochMs: number; cpuS: number; rssBytes: number }[];
}

function procSample(pid: number): { cpuS: number; rssBytes: number } | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    const cpuS = (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS;
    const rss = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    return { cpuS, rssBytes: rss === null ? 0 : Number(rss[1]) * 1024 };
  } catch {
    return null;
  }
}

function logTail(file: string): string {
  try {
    return readFileSync(file, "utf8").split("\n").slice(-15).join("\n");
  } catch {
    return "(no log)";
  }
}

function assertRunning(validators: Validator[]): void {
  const dead = validators.find((v) => v.exited !== undefined);
  if (dead !== undefined)
    throw new BenchmarkError(
      `${dead.name} stopped (${dead.exited}); the end of its log:\n${logTail(dead.log)}`,
    );
}

/** CPU % (of one core) and RSS of each validator between two epoch times, from the samples. */
function resourceUse(validators: Validator[], fromEpochMs: number, toEpochMs: number) {
  return validators.map((v) => {
    const inside = v.samples.filter((s) => s.epochMs >= fromEpochMs && s.epochMs <= toEpochMs);
    const first = inside[0];
    const last = inside.at(-1);
    const cpuPercent =
      first === undefined || last === undefined || last.epochMs === first.epochMs
        ? null
        : Math.round((100 * (last.cpuS - first.cpuS)) / ((last.epochMs - first.epochMs) / 1000));
    const rss = inside.map((s) => s.rssBytes);
    return {
      name: v.name,
      cpuPercent,
      rssMiBMax: rss.length === 0 ? null : Math.round(Math.max(...rss) / 2 ** 20),
      rssMiBMean: rss.length === 0 ? null : Math.round(rss.reduce((a, b) => a + b, 0) / rss.length / 2 ** 20),
    };
  });
}

// ---------------------------------------------------------------------------------- deploy

async function waitReceipt(url: string, hash: string, validators: Validator[]) {
  return until(
    `the receipt of ${hash}`,
    async () => {
      assertRunning(validators);
      return (
        (await rpc<{ status: string; contractAddress: string | null } | null>(
          url,
          "eth_getTransactionReceipt",
          [hash],
        )) ?? undefined
      );
    },
    60_000,
  );
}

async function deployAuditLog(
  url: string,
  evmChainId: number,
  admin: DevAccount,
  writers: DevAccount[],
  validators: Validator[],
): Promise<string> {
  const executor = await createExecutor({ chainId: BigInt(evmChainId) });
  const common = txCommon(executor.common);
  let nonce = Number(await rpc<string>(url, "eth_getTransactionCount", [admin.address, "latest"]));
  const create = signTx(common, admin.privateKey, {
    nonce: nonce++,
    data:
      auditLogArtifact.bytecode + AbiCoder.defaultAbiCoder().encode(["address"], [admin.address]).slice(2),
    gasLimit: 8_000_000n,
  });
  await rpc(url, "eth_sendRawTransaction", [create.raw]);
  const receipt = await waitReceipt(url, create.hash, validators);
  if (receipt.status !== "0x1" || receipt.contractAddress === null)
    throw new BenchmarkError("deploying AuditLog through JSON-RPC failed (receipt status 0)");
  const contract = receipt.contractAddress;
  progress(`  AuditLog deployed at ${contract}; granting WRITER_ROLE to ${writers.length} load accounts`);
  const iface = new Interface(auditLogArtifact.abi);
  for (let i = 0; i < writers.length; i += 60) {
    const chunk = writers.slice(i, i + 60).map((w) =>
      signTx(common, admin.privateKey, {
        nonce: nonce++,
        to: contract,
        data: iface.encodeFunctionData("grantRole", [id("WRITER_ROLE"), w.address]),
        gasLimit: 200_000n,
      }),
    );
    const r = await fetch(url, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(
        chunk.map((t, k) => ({ jsonrpc: "2.0", id: k, method: "eth_sendRawTransaction", params: [t.raw] })),
      ),
    });
    const answers = (await r.json()) as RpcAnswer<string>[];
    const refused = answers.find((a) => a.error !== undefined);
    if (refused !== undefined) throw new BenchmarkError(`grantRole refused: ${refused.error!.message}`);
    for (const t of chunk) {
      const rc = await waitReceipt(url, t.hash, validators);
      if (rc.status !== "0x1") throw new BenchmarkError("a grantRole transaction reverted");
    }
  }
  const last = writers.at(-1)!;
  const has = await rpc<string>(url, "eth_call", [
    { to: contract, data: iface.encodeFunctionData("hasRole", [id("WRITER_ROLE"), last.address]) },
    "latest",
  ]);
  if (BigInt(has) !== 1n) throw new BenchmarkError("WRITER_ROLE was not granted");
  return contract;
}

// ---------------------------------------------------------------------------------- runs

async function nonces(url: string, accounts: DevAccount[]): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < accounts.length; i += 100) {
    const r = await fetch(url, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(
        accounts.slice(i, i + 100).map((a, k) => ({
          jsonrpc: "2.0",
          id: k,
          method: "eth_getTransactionCount",
          params: [a.address, "latest"],
        })),
      ),
    });
    const answers = ((await r.json()) as RpcAnswer<string>[]).sort((a, b) => a.id - b.id);
    for (const a of answers) out.push(Number(a.result));
  }
  return out;
}

async function runLoadGenerator(job: LoadJob, dir: string, validators: Validator[]): Promise<LoadResult> {
  const jobFile = join(dir, `load-${job.workload}-${job.mode}.json`);
  writeFileSync(jobFile, JSON.stringify(job));
  const child = spawn(process.execPath, [LOADGEN, jobFile], { stdio: ["ignore", "inherit", "pipe"] });
  child.stderr!.on("data", (d: Buffer) => {
    for (const line of d.toString().split("\n")) if (line.trim() !== "") progress(`  ${line.trim()}`);
  });
  const watch = setInterval(() => {
    if (validators.some((v) => v.exited !== undefined)) child.kill("SIGTERM");
  }, 500);
  const code = await new Promise<number | null>((done) => child.once("exit", done));
  clearInterval(watch);
  assertRunning(validators);
  if (code !== 0) throw new BenchmarkError(`the load generator failed (exit ${code}); see above`);
  return JSON.parse(readFileSync(job.out, "utf8")) as LoadResult;
}

function summarizeRun(result: LoadResult, validators: Validator[], rate: number | null) {
  const warmupMs = Math.max(2000, result.loadEndMs * 0.2);
  const steady = steadyState(result.txs, warmupMs, result.loadEndMs);
  const failures = result.rejected + result.lost + result.reverted;
  return {
    summary: {
      mode: result.mode,
      ...(rate === null ? {} : { rateTxPerSecond: rate }),
      loadSeconds: Number((result.loadEndMs / 1000).toFixed(1)),
      steadyStateSeconds: Number(steady.seconds.toFixed(1)),
      txPerSecond: Math.round(steady.txPerSecond),
      eventsPerSecond: Math.round(steady.txPerSecond * result.eventsPerTx),
      latencyMs: steady.latencyMs,
      blockTimeMs: blockTimes(result.blocks, warmupMs, result.loadEndMs),
      transactions: {
        released: result.released,
        accepted: result.accepted,
        committed: result.committed,
        rejected: result.rejected,
        reverted: result.reverted,
        lost: result.lost,
        failures,
        rejections: result.rejections,
      },
      validators: resourceUse(
        validators,
        result.startedAtEpochMs + warmupMs,
        result.startedAtEpochMs + result.loadEndMs,
      ),
      presigned: { txs: result.signing.txs, seconds: Number(result.signing.seconds.toFixed(1)) },
    },
    chart: {
      points: perSecond(result.txs, result.endMs),
      loadEndS: result.loadEndMs / 1000,
      steadyFromS: warmupMs / 1000,
    },
    failures,
  };
}

// ---------------------------------------------------------------------------------- main

async function main(): Promise<number> {
  const o: Options = options();
  const cores = cpus().length;
  const dir = mkdtempSync(join(tmpdir(), "vs-tps-"));
  const validators: Validator[] = [];
  let sampler: NodeJS.Timeout | undefined;
  progress(
    `TPS benchmark${o.quick ? " (quick)" : ""}: ${o.validators} validators, ${o.workloads.join(" + ")}, ${o.durationS} s per run, ${o.hsm} keys, ${cores} cores; network in ${dir}`,
  );
  try {
    const rpcBase = await freeBase(o.validators);
    let p2pBase = await freeBase(o.validators);
    while (Math.abs(p2pBase - rpcBase) < o.validators) p2pBase = await freeBase(o.validators);
    const childEnv: NodeJS.ProcessEnv = { ...process.env };
    let signerConfigs: Record<string, unknown>[] | undefined;
    if (o.hsm === "softhsm") {
      progress("provisioning SoftHSM2 tokens (an Ed25519 key generated inside each)");
      const hsm = await provisionSoftHsm(dir, o.validators, (m) => progress(m));
      signerConfigs = hsm.signerConfigs;
      Object.assign(childEnv, hsm.env);
    }
    progress(`init: ${o.validators} validators, ${o.accounts + 1} funded and permitted accounts`);
    const init = await initNetwork({
      dir,
      validators: o.validators,
      devAccounts: o.accounts + 1,
      rpcBasePort: rpcBase,
      p2pBasePort: p2pBase,
      // Keystore key derivation only slows every start; signing speed does not depend on it.
      scryptN: 1024,
      ...(signerConfigs === undefined ? {} : { signerConfigs }),
    });
    const [admin, ...loadAccounts] = init.accounts as [DevAccount, ...DevAccount[]];

    const ceilings: Partial<Record<WorkloadName, Awaited<ReturnType<typeof ceiling>>>> = {};
    for (const name of o.workloads) {
      const count =
        name === "record" ? (o.quick ? 2000 : 6000) : Math.ceil((o.quick ? 3000 : 9000) / o.batchSize);
      progress(`ceiling: ${count} ${name} transactions through the EVM alone (one core)`);
      const c = await ceiling(init.genesisFile, name, o.batchSize, loadAccounts, count);
      ceilings[name] = c;
      progress(`  ${c.txPerSecond.toFixed(0)} tx/s, ${c.eventsPerSecond.toFixed(0)} audit events/s`);
    }

    progress(`starting ${o.validators} validator processes`);
    for (const vdir of init.validatorDirs) {
      const config = JSON.parse(readFileSync(join(vdir, "config.json"), "utf8")) as {
        rpc: { host: string; port: number };
      };
      const name = vdir.split("/").at(-1)!;
      const log = join(vdir, "node.log");
      const fd = openSync(log, "a");
      const child = spawn(process.execPath, [BIN, "start", "--config", join(vdir, "config.json")], {
        stdio: ["ignore", fd, fd],
        env: childEnv,
      });
      const v: Validator = {
        name,
        url: `http://${config.rpc.host}:${config.rpc.port}`,
        log,
        child,
        samples: [],
      };
      child.once("exit", (code, signal) => {
        v.exited = signal ?? `exit ${code}`;
      });
      validators.push(v);
    }
    sampler = setInterval(() => {
      for (const v of validators) {
        const s = v.child.pid === undefined ? null : procSample(v.child.pid);
        if (s !== null) v.samples.push({ epochMs: Date.now(), ...s });
      }
    }, 500);
    for (const v of validators)
      await until(
        `${v.name} to be ready (log: ${v.log})`,
        async () => {
          assertRunning(validators);
          const s = (await (await fetch(`${v.url}/consensus/status`)).json()) as {
            head: { height: number };
            peers: number;
          };
          return s.head.height >= 2 && s.peers >= o.validators - 1 ? true : undefined;
        },
        90_000,
      );
    progress("  all validators commit with full peering");

    progress("deploy: AuditLog through JSON-RPC");
    const contract = await deployAuditLog(
      validators[0]!.url,
      init.genesis.evmChainId,
      admin,
      loadAccounts,
      validators,
    );

    const urls = validators.map((v) => v.url);
    const results: Record<string, unknown> = {};
    const charts: ChartRun[] = [];
    let failures = 0;
    for (const name of o.workloads) {
      const w = workload(name, o.batchSize);
      const c = ceilings[name]!;
      // Closed loop: enough in flight to keep blocks full, not so much that the pool overflows.
      const inFlightTarget = name === "record" ? 800 : 60;
      const closedAccounts = loadAccounts.slice(0, Math.min(loadAccounts.length, inFlightTarget));
      const windowPerAccount = Math.min(64, Math.ceil(inFlightTarget / closedAccounts.length));
      const base: Omit<LoadJob, "mode" | "accounts" | "out"> = {
        urls,
        evmChainId: init.genesis.evmChainId,
        contract,
        workload: name,
        batchSize: o.batchSize,
        durationS: o.durationS,
        drainS: o.quick ? 20 : 60,
      };
      progress(
        `${name}: closed loop to saturation (${closedAccounts.length} accounts x ${windowPerAccount} in flight)`,
      );
      let next = await nonces(urls[0]!, closedAccounts);
      const closed = await runLoadGenerator(
        {
          ...base,
          mode: "closed",
          windowPerAccount,
          // Pre-sign what the hardware could commit at best, with room; running out ends early.
          maxTxPerSecond: Math.ceil(
            ((c.txPerSecond * Math.min(cores, o.validators)) / o.validators) * 1.5 + 50,
          ),
          accounts: closedAccounts.map((a, i) => ({ ...a, nonce: next[i]! })),
          out: join(dir, `result-${name}-closed.json`),
        },
        dir,
        validators,
      );
      const saturation = summarizeRun(closed, validators, null);
      failures += saturation.failures;
      progress(
        `  saturation: ${saturation.summary.txPerSecond} tx/s (${saturation.summary.eventsPerSecond} events/s), p99 ${saturation.summary.latencyMs.p99} ms, failures ${saturation.failures}`,
      );
      charts.push({ title: `${name}: closed loop (saturation)`, ...saturation.chart });

      const given = name === "record" ? o.rate : o.batchRate;
      const rate = given ?? Math.max(1, Math.round(saturation.summary.txPerSecond * 0.8));
      progress(`${name}: open loop at ${rate} tx/s${given === undefined ? " (80% of saturation)" : ""}`);
      next = await nonces(urls[0]!, loadAccounts);
      const open = await runLoadGenerator(
        {
          ...base,
          mode: "open",
          rate,
          accounts: loadAccounts.map((a, i) => ({ ...a, nonce: next[i]! })),
          out: join(dir, `result-${name}-open.json`),
        },
        dir,
        validators,
      );
      const openRun = summarizeRun(open, validators, rate);
      failures += openRun.failures;
      progress(
        `  open loop: ${openRun.summary.txPerSecond} tx/s, latency p50 ${openRun.summary.latencyMs.p50} / p95 ${openRun.summary.latencyMs.p95} / p99 ${openRun.summary.latencyMs.p99} ms, failures ${openRun.failures}`,
      );
      charts.push({ title: `${name}: open loop at ${rate} tx/s`, ...openRun.chart });
      results[name] = {
        eventsPerTx: w.eventsPerTx,
        ceiling: {
          txPerSecond: Math.round(c.txPerSecond),
          eventsPerSecond: Math.round(c.eventsPerSecond),
          transactions: c.txs,
        },
        saturation: saturation.summary,
        openLoop: openRun.summary,
        efficiency: Number(
          efficiency(saturation.summary.txPerSecond, c.txPerSecond, cores, o.validators).toFixed(3),
        ),
        perSecond: { saturation: saturation.chart.points, openLoop: openRun.chart.points },
      };
    }
    clearInterval(sampler);
    sampler = undefined;
    progress("stopping the validators");
    await stopAll(validators);

    const record = results.record as
      | { saturation: { txPerSecond: number }; openLoop: { latencyMs: { p99: number } } }
      | undefined;
    const batch = results.recordBatch as { saturation: { eventsPerSecond: number } } | undefined;
    const goals = {
      recordTxPerSecondAtLeast: 1000,
      recordBatchEventsPerSecondAtLeast: 25_000,
      p99LatencyMsAtOpenLoopUnder: 2000,
      failures: 0,
      recordTxPerSecondMet: record === undefined ? null : record.saturation.txPerSecond >= 1000,
      recordBatchEventsPerSecondMet: batch === undefined ? null : batch.saturation.eventsPerSecond >= 25_000,
      p99LatencyMet: record === undefined ? null : record.openLoop.latencyMs.p99 < 2000,
      failuresMet: failures === 0,
    };
    const report = {
      benchmark: "tps",
      createdAt: new Date().toISOString(),
      parameters: {
        quick: o.quick,
        validators: o.validators,
        durationSecondsPerRun: o.durationS,
        workloads: o.workloads,
        batchSize: o.batchSize,
        loadAccounts: loadAccounts.length,
        hsm: o.hsm,
        encryption: "noise",
        store: "classic-level, AES-256-GCM",
        keystoreScryptN: 1024,
        consensusTimeouts: "defaults",
      },
      environment: environment(cores),
      workloads: results,
      goals,
      notes: [
        "steady state excludes the first 20% of each run (at least 2 s) and the drain after the load stops",
        "latency: from when a transaction was due to be sent (open loop: its slot in the schedule) to when validator-0 served the block holding it",
        "efficiency = saturation tx/s / (ceiling x min(cores, validators) / validators): every validator executes every transaction on its own core at best",
      ],
    };
    mkdirSync(o.out, { recursive: true });
    writeFileSync(join(o.out, "tps_benchmark_report.json"), `${JSON.stringify(report, null, 2)}\n`);
    const headline = o.workloads
      .map((n) => {
        const r = results[n] as { saturation: { txPerSecond: number; eventsPerSecond: number } };
        return `${n} ${r.saturation.txPerSecond} tx/s (${r.saturation.eventsPerSecond} events/s)`;
      })
      .join(", ");
    writeFileSync(
      join(o.out, "tps_benchmark_report.svg"),
      renderChart(
        `VitalStream TPS: ${headline}`,
        `${o.validators} validators on ${cores} cores (${report.environment.cpu}), ${o.hsm} keys, Noise, encrypted store; ${report.environment.gitCommit.slice(0, 12)}, ${report.createdAt}`,
        charts,
      ),
    );
    progress(`wrote ${join(o.out, "tps_benchmark_report.json")} and .svg`);
    process.stdout.write(
      `${JSON.stringify({ workloads: Object.fromEntries(Object.entries(results).map(([k, v]) => [k, { ...(v as object), perSecond: undefined }])), goals }, null, 2)}\n`,
    );
    if (failures > 0) {
      progress(`FAILED: ${failures} transactions were rejected, reverted or lost (see the report)`);
      return 3;
    }
    return 0;
  } finally {
    if (sampler !== undefined) clearInterval(sampler);
    await stopAll(validators);
    if (o.keep) progress(`kept ${dir}`);
    else rmSync(dir, { recursive: true, force: true });
  }
}

async function stopAll(validators: Validator[]): Promise<void> {
  await Promise.all(
    validators.map(async (v) => {
      if (v.exited !== undefined) return;
      const exited = new Promise((d) => v.child.once("exit", d));
      v.child.kill("SIGTERM");
      const force = setTimeout(() => v.child.kill("SIGKILL"), 15_000);
      await exited;
      clearTimeout(force);
    }),
  );
}

function environment(cores: number) {
  let gitCommit = "unknown";
  try {
    gitCommit = execFileSync("git", ["rev-parse", "HEAD"], { cwd: ROOT, encoding: "utf8" }).trim();
  } catch {}
  return {
    cpu: cpus()[0]?.model ?? "unknown",
    cores,
    memoryGiB: Math.round(totalmem() / 2 ** 30),
    node: process.version,
    platform: `${process.platform} ${process.arch}`,
    loadAverageAtEnd: loadavg().map((l) => Number(l.toFixed(2))),
    gitCommit,
  };
}

try {
  process.exitCode = await main();
} catch (e) {
  process.stderr.write(`\nTPS benchmark failed: ${(e as Error).message}\n`);
  process.exitCode = 1;
}
