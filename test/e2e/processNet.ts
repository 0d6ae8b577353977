/**
 * A network of validator (and observer) processes for the multi-validator tests: `vitalstream
 * init`, one `vitalstream start` child per node with its output captured in a file (so tests can
 * assert log lines), kill -9 / SIGSTOP / restart, and cross-node block hash comparison.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, openSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { BIN, cli, rpcCall } from "./helpers.ts";

export interface NetMember {
  name: string;
  dir: string;
  config: string;
  url: string;
  metricsUrl: string;
  logFile: string;
  child: ChildProcess | null;
}

export class ProcessNet {
  readonly dir: string;
  readonly members: NetMember[] = [];
  readonly rpcPort: number;
  readonly p2pPort: number;
  /** Prometheus /metrics of validator-0; node i listens on metricsPort + i. */
  readonly metricsPort: number;

  private constructor(dir: string, rpcPort: number, p2pPort: number, metricsPort: number) {
    this.dir = dir;
    this.rpcPort = rpcPort;
    this.p2pPort = p2pPort;
    this.metricsPort = metricsPort;
  }

  /** `vitalstream init` for `validators` + `observers` nodes on fresh ports. */
  static async init(opts: {
    validators: number;
    observers?: number;
    emptyBlockIntervalMs?: number;
    extraArgs?: string[];
  }): Promise<ProcessNet> {
    const dir = mkdtempSync(join(tmpdir(), "vs-pnet-"));
    // Ports spread by process id and time: parallel test files each get their own range.
    const base = 41_000 + ((process.pid * 37 + Date.now()) % 600) * 12;
    const net = new ProcessNet(dir, base, base + 10_000, base + 5_000);
    const r = await cli([
      "init",
      "--dir",
      dir,
      "--validators",
      String(opts.validators),
      "--observers",
      String(opts.observers ?? 0),
      "--rpc-base-port",
      String(net.rpcPort),
      "--p2p-base-port",
      String(net.p2pPort),
      "--metrics-base-port",
      String(net.metricsPort),
      "--dev-accounts",
      "8",
      "--empty-block-interval",
      String(opts.emptyBlockIntervalMs ?? 200),
      ...(opts.extraArgs ?? []),
    ]);
    if (r.code !== 0) throw new Error(`init failed: ${r.stderr}`);
    const names = [
      ...Array.from({ length: opts.validators }, (_, i) => `validator-${i}`),
      ...Array.from({ length: opts.observers ?? 0 }, (_, i) => `observer-${i}`),
    ];
    for (const [i, name] of names.entries()) {
      const mdir = join(dir, name);
      net.members.push({
        name,
        dir: mdir,
        config: join(mdir, "config.json"),
        url: `http://127.0.0.1:${net.rpcPort + i}`,
        metricsUrl: `http://127.0.0.1:${net.metricsPort + i}/metrics`,
        logFile: join(mdir, "test-node.log"),
        child: null,
      });
    }
    return net;
  }

  member(name: string): NetMember {
    const m = this.members.find((x) => x.name === name);
    if (m === undefined) throw new Error(`no member ${name}`);
    return m;
  }

  accounts(): { address: string; privateKey: string }[] {
    return JSON.parse(readFileSync(join(this.dir, "accounts.json"), "utf8")).accounts;
  }

  /** Starts a node process (appending to its log file); does not wait for it. */
  start(name: string): NetMember {
    const m = this.member(name);
    if (m.child !== null && m.child.exitCode === null && m.child.signalCode === null)
      throw new Error(`${name} is running`);
    const fd = openSync(m.logFile, "a");
    m.child = spawn(process.execPath, [join(BIN, "vitalstream.js"), "start", "--config", m.config], {
      stdio: ["ignore", fd, fd],
    });
    return m;
  }

  startAll(names = this.members.map((m) => m.name)): void {
    for (const n of names) this.start(n);
  }

  running(name: string): boolean {
    const c = this.member(name).child;
    return c !== null && c.exitCode === null && c.signalCode === null;
  }

  async kill(name: string, signal: NodeJS.Signals = "SIGKILL"): Promise<void> {
    const m = this.member(name);
    const c = m.child;
    if (c === null || c.exitCode !== null || c.signalCode !== null) return;
    const exited = new Promise((d) => c.once("exit", d));
    c.kill(signal);
    await exited;
  }

  signal(name: string, signal: "SIGSTOP" | "SIGCONT"): void {
    this.member(name).child?.kill(signal);
  }

  async stopAll(): Promise<void> {
    for (const m of this.members) {
      if (m.child !== null && m.child.signalCode === null && m.child.exitCode === null)
        m.child.kill("SIGCONT");
    }
    await Promise.all(this.members.map((m) => this.kill(m.name, "SIGTERM")));
  }

  log(name: string): string {
    try {
      return readFileSync(this.member(name).logFile, "utf8");
    } catch {
      return "";
    }
  }

  async height(name: string): Promise<number | undefined> {
    try {
      const r = await fetch(`${this.member(name).url}/consensus/status`, {
        signal: AbortSignal.timeout(2000),
      });
      return ((await r.json()) as { head: { height: number } }).head.height;
    } catch {
      return undefined;
    }
  }

  async status(
    name: string,
  ): Promise<{ head: { height: number }; peers: number; round: number } | undefined> {
    try {
      const r = await fetch(`${this.member(name).url}/consensus/status`, {
        signal: AbortSignal.timeout(2000),
      });
      return (await r.json()) as { head: { height: number }; peers: number; round: number };
    } catch {
      return undefined;
    }
  }

  /** Block hashes for heights [from, to] from one node (JSON-RPC batches). */
  async hashes(name: string, from: number, to: number): Promise<string[]> {
    const out: string[] = [];
    for (let start = from; start <= to; start += 100) {
      const end = Math.min(to, start + 99);
      const batch = [];
      for (let h = start; h <= end; h++)
        batch.push({
          jsonrpc: "2.0",
          id: h,
          method: "eth_getBlockByNumber",
          params: [`0x${h.toString(16)}`, false],
        });
      const r = await fetch(this.member(name).url, { method: "POST", body: JSON.stringify(batch) });
      const answers = (await r.json()) as { id: number; result: { hash: string } | null }[];
      answers.sort((a, b) => a.id - b.id);
      for (const a of answers) {
        if (a.result === null) throw new Error(`${name} has no block ${a.id}`);
        out.push(a.result.hash);
      }
    }
    return out;
  }

  /** Asserts-by-throwing that every listed node has the same hash at every height in [1, to]. */
  async assertSameChain(names: string[], to: number): Promise<void> {
    const reference = await this.hashes(names[0]!, 1, to);
    for (const n of names.slice(1)) {
      const other = await this.hashes(n, 1, to);
      const diff = other.findIndex((h, i) => h !== reference[i]);
      if (diff >= 0) throw new Error(`${n} differs from ${names[0]} at height ${diff + 1}`);
    }
  }

  receipt(name: string, hash: string): Promise<unknown> {
    return rpcCall(this.member(name).url, "eth_getTransactionReceipt", [hash]);
  }
}
