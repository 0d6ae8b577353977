/**
 * `npm run bench:network`: the p2p layer and the consensus it carries, on loopback.
 *
 * 1. messaging: real `Network` instances in this process (TCP + yamux, Noise or TLS), each with a
 *    node key from a random seed; the payload is a real signed prevote (Ed25519, node:crypto).
 *    - round trip: A broadcasts a vote, every peer's consensus handler broadcasts its own signed
 *      vote for the same height at once, A waits for all of them (sequential, p50/p99);
 *    - throughput: A broadcasts 50,000 votes (20,000 to 3 peers) as fast as its send queue
 *      drains (at most WINDOW frames handed to the network but not yet written to a stream),
 *      counted on arrival;
 *    - the same flood against the node's default peer limits (5,000 frames/s): what a receiver
 *      drops, and whether it bans the sender;
 *    - the sync protocol alone: requestBlocks against blocks served from memory.
 *    Peer rate limits are raised for the other rows so that they measure the transport.
 * 2. commit: 4 `vitalstream start` processes on loopback, default consensus timeouts, empty blocks
 *    proposed at once (emptyBlockIntervalMs 0, commitIntervalMs 0): the block time is then the
 *    consensus latency. Per-height commit intervals come from each node's log ("committed block"),
 *    block hashes are compared across all 4 at sampled heights (exit 1 if they differ).
 * 3. sync: validator-3 is stopped while the others commit (and AuditLog.record transactions are
 *    submitted), then restarted: time until its head reaches the others' head at restart. Then its
 *    chain store is deleted and it syncs the whole chain from genesis.
 *
 * Environment: BENCH_SECONDS (commit sampling, default 20), BENCH_DOWN_SECONDS (validator-3 down,
 * default 15), BENCH_TXS (transactions while it is down, default 2000, 0 for none),
 * BENCH_KEEP_DIR=1 (keep the temp dir with every node's log), BENCH_NODE_LOG_LEVEL (e.g. debug),
 * BENCH_SKIP_MESSAGING=1.
 *
 * Writes ci_artifacts/network_benchmark.json; progress goes to stderr, the report to stdout.
 */
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { generateKeyPairSync, type KeyObject, randomBytes, sign } from "node:crypto";
import {
  closeSync,
  fsyncSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readFileSync,
  rmSync,
  writeFileSync,
  writeSync,
} from "node:fs";
import { createRequire } from "node:module";
import { createServer } from "node:net";
import { cpus, loadavg, tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { createFeeMarket1559Tx } from "@ethereumjs/tx";
import { createAddressFromString, hexToBytes } from "@ethereumjs/util";
import { generateKeyPairFromSeed } from "@libp2p/crypto/keys";
import { peerIdFromPrivateKey } from "@libp2p/peer-id";
import {
  type ConsensusMessage,
  encodeMessage,
  MessageType,
  signBytes,
  type VoteMessage,
} from "@vitalstream/consensus";
import { auditLogArtifact } from "@vitalstream/contracts";
import { Interface, id } from "ethers";
import { createExecutor } from "../../src/execution/executor.ts";
import { Network, type NetworkHandlers, type NetworkOptions } from "../../src/network/network.ts";
import { defaultPeerLimits, type PeerLimits } from "../../src/network/peerScore.ts";
import { AUDIT_LOG_ADDRESS, type DevAccount, initNetwork } from "../../src/runtime/init.ts";
import { createLogger } from "../../src/runtime/logger.ts";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "../../../..");
const BIN = join(ROOT, "packages/node/bin/vitalstream.js");
const BENCH_SECONDS = Number(process.env.BENCH_SECONDS ?? 20);
const DOWN_SECONDS = Number(process.env.BENCH_DOWN_SECONDS ?? 15);
const SYNC_TXS = Number(process.env.BENCH_TXS ?? 2000);
/** Keep the temp dir (genesis, configs, node logs) for a post-mortem. */
const KEEP_DIR = process.env.BENCH_KEEP_DIR === "1";
/** The validators' log level (default info: the bench reads their "committed block" lines). */
const NODE_LOG_LEVEL = process.env.BENCH_NODE_LOG_LEVEL ?? "info";
/** Skip the in-process messaging part (iterate on the validator part alone). */
const SKIP_MESSAGING = process.env.BENCH_SKIP_MESSAGING === "1";
const TXS_PER_ACCOUNT = 50;
const ROUND_TRIPS = 2000;
const WARMUP = 200;
const FLOOD = 50_000;
/** Votes broadcast to 3 peers (4 nodes in one process: each vote is 3 deliveries). */
const MESH_FLOOD = 20_000;
/** Frames handed to the network that it has not yet written to a stream. */
const WINDOW = 4096;
/** Blocks per sync request (the node's default p2p.syncBatchBlocks). */
const SYNC_BATCH = 256;
/** About a 4-validator commit certificate (4 Ed25519 signatures and the header). */
const CERTIFICATE_BYTES = 320;
const CHAIN_ID = "vitalstream-bench";
const VALIDATORS = 4;
const COMMIT_GOAL_MS = 50;
const benchStart = performance.now();
const log = (m: string) =>
  process.stderr.write(`[${((performance.now() - benchStart) / 1000).toFixed(1).padStart(5)}s] ${m}\n`);
const sleep = (ms: number) => new Promise<void>((d) => setTimeout(d, ms));
const immediate = () => new Promise<void>((d) => setImmediate(d));
const secp = createRequire(import.meta.url)("secp256k1/bindings") as typeof import("secp256k1");

class BenchError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "BenchError";
  }
}

function percentile(sorted: number[], p: number): number {
  return sorted.length === 0
    ? 0
    : sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

const round = (n: number, digits = 0) => Number(n.toFixed(digits));

function summary(samples: number[], digits: number): Record<string, number> {
  const sorted = [...samples].sort((a, b) => a - b);
  return {
    p50: round(percentile(sorted, 50), digits),
    p90: round(percentile(sorted, 90), digits),
    p99: round(percentile(sorted, 99), digits),
    max: round(sorted.at(-1) ?? 0, digits),
    mean: round(sorted.reduce((a, b) => a + b, 0) / Math.max(1, sorted.length), digits),
  };
}

function gitCommit(): string | null {
  try {
    return execFileSync("git", ["rev-parse", "HEAD"], {
      cwd: ROOT,
      encoding: "utf8",
      stdio: ["ignore", "pipe", "ignore"],
    }).trim();
  } catch {
    return null;
  }
}

function portFree(port: number): Promise<boolean> {
  return new Promise((done) => {
    const server = createServer();
    server.once("error", () => done(false));
    server.listen(port, "127.0.0.1", () => server.close(() => done(true)));
  });
}

/** A base port with `count` free ports from it (racy, like every free-port probe; good enough here). */
async function freePortRange(count: number): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const base = 20_000 + Math.floor(Math.random() * 40_000);
    let free = true;
    for (let i = 0; i < count && free; i++) free = await portFree(base + i);
    if (free) return base;
  }
  throw new BenchError(`no ${count} consecutive free ports found`);
}

async function waitFor<T>(
  what: string,
  timeoutMs: number,
  probe: () => Promise<T | null> | T | null,
): Promise<T> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== null) return value;
    if (performance.now() > deadline)
      throw new BenchError(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(20);
  }
}

const CLOCK_TICKS = (() => {
  try {
    return Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).trim()) || 100;
  } catch {
    return 100;
  }
})();

/** CPU seconds (user + system) a process has used so far, from /proc (Linux); null elsewhere. */
function cpuSeconds(pid: number | undefined): number | null {
  if (pid === undefined) return null;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS;
  } catch {
    return null;
  }
}

/** fsync latency of the disk the validators write to: every WAL append and block commit waits for one. */
function fsyncProbe(dir: string): Record<string, number> {
  const file = join(dir, "fsync-probe");
  const fd = openSync(file, "w");
  const data = randomBytes(256);
  const samples: number[] = [];
  try {
    for (let i = 0; i < 100; i++) {
      const started = performance.now();
      writeSync(fd, data);
      fsyncSync(fd);
      samples.push(performance.now() - started);
    }
  } finally {
    closeSync(fd);
    rmSync(file, { force: true });
  }
  return summary(samples, 2);
}

// ------------------------------------------------------------------ 1. messaging

interface VoteSigner {
  index: number;
  key: KeyObject;
}

function signer(index: number): VoteSigner {
  return { index, key: generateKeyPairSync("ed25519").privateKey };
}

/** Signed prevotes of one validator for heights 1..count (index h-1), all for one block hash. */
function signedVotes(s: VoteSigner, count: number, valueHash: Uint8Array): VoteMessage[] {
  const votes: VoteMessage[] = [];
  for (let height = 1; height <= count; height++) {
    const unsigned = {
      type: MessageType.Prevote,
      chainId: CHAIN_ID,
      height,
      round: 0,
      valueHash,
      validatorIndex: s.index,
    };
    votes.push({ ...unsigned, signature: new Uint8Array(sign(null, signBytes(unsigned), s.key)) });
  }
  return votes;
}

interface BenchPeer {
  net: Network;
  onConsensus(message: ConsensusMessage, peer: string): void;
}

const quietLogger = createLogger({ level: "error", destination: 2 });

async function startPeers(
  count: number,
  encryption: NetworkOptions["encryption"],
  limits: PeerLimits,
  serveBlocks: NetworkHandlers["serveBlocks"] = async function* () {
    yield* [];
  },
): Promise<BenchPeer[]> {
  const base = await freePortRange(count);
  const keys = await Promise.all(
    Array.from({ length: count }, () => generateKeyPairFromSeed("Ed25519", randomBytes(32))),
  );
  const ids = keys.map((k) => peerIdFromPrivateKey(k).toString());
  const peers = keys.map((privateKey, i) => {
    const peer: BenchPeer = { net: null as unknown as Network, onConsensus: () => {} };
    peer.net = new Network(
      {
        chainId: CHAIN_ID,
        listen: [`/ip4/127.0.0.1/tcp/${base + i}`],
        peers: ids.flatMap((nodeId, j) =>
          j === i ? [] : [{ nodeId, address: `/ip4/127.0.0.1/tcp/${base + j}` }],
        ),
        permitted: new Set(ids),
        encryption,
        maxFrameBytes: 16 * 1024 * 1024,
        maxQueueBytes: 64 * 1024 * 1024,
        wire: {
          maxValueBytes: 4 * 1024 * 1024,
          maxTxsPerFrame: 512,
          maxTxBytes: 128 * 1024,
          maxSyncBlocks: 1000,
        },
        limits,
        statusIntervalMs: 1000,
        reconnectIntervalMs: 500,
        syncTimeoutMs: 30_000,
      },
      {
        privateKey,
        logger: quietLogger,
        handlers: {
          consensus: (message, from) => peer.onConsensus(message, from),
          transactions: () => {},
          status: () => {},
          localStatus: () => ({
            headHeight: 0,
            headHash: new Uint8Array(32),
            height: 1,
            round: 0,
            step: 0,
            observer: false,
          }),
          serveBlocks,
        },
      },
    );
    return peer;
  });
  await Promise.all(peers.map((p) => p.net.start()));
  await waitFor("the peers to connect", 15_000, () =>
    peers.every((p) => p.net.peerCount() === count - 1) ? true : null,
  );
  return peers;
}

async function stopPeers(peers: BenchPeer[]): Promise<void> {
  await Promise.all(peers.map((p) => p.net.stop()));
}

/**
 * A broadcasts votes[h]; each peer answers with its own vote for height h (broadcast to all, as
 * consensus does); a round trip ends when A has every answer. Heights first..first+count-1.
 */
async function roundTrips(
  peers: BenchPeer[],
  votes: VoteMessage[],
  replies: VoteMessage[][],
  first: number,
  count: number,
): Promise<number[]> {
  const [a, ...others] = peers;
  let pending: { height: number; remaining: number; done(): void } | null = null;
  others.forEach((p, i) => {
    p.onConsensus = (m) => {
      if (m.validatorIndex === 0) p.net.broadcast(replies[i]![m.height - 1]!);
    };
  });
  a!.onConsensus = (m) => {
    if (
      pending !== null &&
      m.height === pending.height &&
      m.validatorIndex !== 0 &&
      --pending.remaining === 0
    )
      pending.done();
  };
  const latencies: number[] = [];
  for (let h = first; h < first + count; h++) {
    const started = performance.now();
    let timer: NodeJS.Timeout | undefined;
    await new Promise<void>((done, fail) => {
      pending = { height: h, remaining: others.length, done };
      timer = setTimeout(() => fail(new BenchError(`round trip at height ${h} got no answer in 5 s`)), 5000);
      a!.net.broadcast(votes[h - 1]!);
    });
    clearTimeout(timer);
    latencies.push(performance.now() - started);
  }
  return latencies;
}

interface FloodResult {
  peers: number;
  sent: number;
  delivered: number[];
  /** Every vote was handed to the network and reached every peer. */
  complete: boolean;
  seconds: number;
  /** Votes per second that reached every peer. */
  messagesPerSecond: number;
  /** Frames per second arriving, summed over peers. */
  deliveriesPerSecond: number;
  droppedBySenderQueue: number;
  droppedByReceivers: number;
  disconnects: number;
}

async function flood(peers: BenchPeer[], votes: VoteMessage[]): Promise<FloodResult> {
  const [a, ...receivers] = peers;
  const sender = a!.net;
  const delivered = receivers.map(() => 0);
  let lastArrival = 0;
  receivers.forEach((p, i) => {
    p.onConsensus = (m) => {
      if (m.validatorIndex !== 0) return;
      delivered[i]!++;
      lastArrival = performance.now();
    };
  });
  a!.onConsensus = () => {};
  const dropped0 = sender.counters.framesDropped;
  const receiverDropped0 = receivers.map((p) => p.net.counters.framesDropped);
  const disconnects0 = receivers.map((p) => p.net.counters.disconnects);
  const out0 = sender.counters.framesOut;
  const fanout = receivers.length;
  const started = performance.now();
  let sent = 0;
  let written = 0;
  let progressAt = started;
  // Stops early when a receiver drops the sender (the default-limits row) or nothing is written.
  while (sent < votes.length && sender.peerCount() === fanout) {
    while (sent < votes.length && sent * fanout - (sender.counters.framesOut - out0) < WINDOW)
      sender.broadcast(votes[sent++]!);
    await immediate();
    if (sender.counters.framesOut !== written) {
      written = sender.counters.framesOut;
      progressAt = performance.now();
    } else if (performance.now() - progressAt > 3000) break;
  }
  // Everything is handed over; wait for the last arrivals (or for them to stop coming).
  let seen = -1;
  let quietSince = performance.now();
  for (;;) {
    const total = delivered.reduce((x, y) => x + y, 0);
    if (total === votes.length * fanout) break;
    if (total !== seen) {
      seen = total;
      quietSince = performance.now();
    } else if (performance.now() - quietSince > 1000) break;
    await sleep(5);
  }
  const seconds = (lastArrival - started) / 1000;
  return {
    peers: fanout,
    sent,
    delivered,
    complete: sent === votes.length && delivered.every((d) => d === votes.length),
    seconds: round(seconds, 3),
    messagesPerSecond: Math.round(Math.min(...delivered) / seconds),
    deliveriesPerSecond: Math.round(delivered.reduce((x, y) => x + y, 0) / seconds),
    droppedBySenderQueue: sender.counters.framesDropped - dropped0,
    droppedByReceivers: receivers.reduce(
      (s, p, i) => s + p.net.counters.framesDropped - receiverDropped0[i]!,
      0,
    ),
    disconnects: receivers.reduce((s, p, i) => s + p.net.counters.disconnects - disconnects0[i]!, 0),
  };
}

/**
 * The sync protocol alone: B serves `count` synthetic blocks (the same bytes at every height) and
 * A fetches them in requests of SYNC_BATCH, as BlockSync does; nothing is verified or stored.
 */
async function syncTransport(
  encryption: NetworkOptions["encryption"],
  blockBytes: number,
  count: number,
): Promise<Record<string, unknown>> {
  const block = new Uint8Array(randomBytes(blockBytes));
  const certificate = new Uint8Array(randomBytes(CERTIFICATE_BYTES));
  const peers = await startPeers(2, encryption, unlimited, async function* (fromHeight, maxBlocks) {
    const last = Math.min(count, fromHeight + maxBlocks - 1);
    for (let h = fromHeight; h <= last; h++) yield { block, certificate };
  });
  try {
    const server = peers[1]!.net.nodeId;
    const started = performance.now();
    let next = 1;
    let requests = 0;
    while (next <= count) {
      const got = await peers[0]!.net.requestBlocks(server, next, Math.min(SYNC_BATCH, count - next + 1));
      if (got.length === 0) throw new BenchError(`sync request from ${next} returned nothing`);
      next += got.length;
      requests++;
    }
    const seconds = (performance.now() - started) / 1000;
    return {
      encryption,
      blockBytes,
      certificateBytes: CERTIFICATE_BYTES,
      blocks: count,
      requests,
      seconds: round(seconds, 3),
      blocksPerSecond: Math.round(count / seconds),
      megabytesPerSecond: round((count * (blockBytes + CERTIFICATE_BYTES)) / seconds / 1e6, 1),
    };
  } finally {
    await stopPeers(peers);
  }
}

const unlimited: PeerLimits = {
  ...defaultPeerLimits,
  framesPerSecond: 1e9,
  bytesPerSecond: 1e12,
};

async function messaging(): Promise<Record<string, unknown>> {
  log("messaging: signing votes (Ed25519, node:crypto)");
  const valueHash = new Uint8Array(randomBytes(32));
  const signers = Array.from({ length: 4 }, (_, i) => signer(i));
  const votes = signedVotes(signers[0]!, FLOOD, valueHash);
  const replies = signers.slice(1).map((s) => signedVotes(s, WARMUP + ROUND_TRIPS, valueHash));
  const voteBytes = encodeMessage(votes[0]!).length + 1;

  const rows: Record<string, unknown>[] = [];
  for (const { encryption, nodes, floodVotes } of [
    { encryption: "noise", nodes: 2, floodVotes: FLOOD },
    { encryption: "tls", nodes: 2, floodVotes: FLOOD },
    { encryption: "noise", nodes: 4, floodVotes: MESH_FLOOD },
  ] as const) {
    const label = `${encryption}, ${nodes} nodes`;
    log(`messaging (${label}): connecting`);
    const peers = await startPeers(nodes, encryption, unlimited);
    try {
      await roundTrips(peers, votes, replies, 1, WARMUP);
      log(`messaging (${label}): ${ROUND_TRIPS} sequential round trips`);
      const rtt = summary(await roundTrips(peers, votes, replies, WARMUP + 1, ROUND_TRIPS), 3);
      log(`  p50 ${rtt.p50} ms, p99 ${rtt.p99} ms`);
      log(`messaging (${label}): flooding ${floodVotes} votes`);
      const f = await flood(peers, votes.slice(0, floodVotes));
      log(
        `  ${f.messagesPerSecond} votes/s to each of ${f.peers} peer(s) (delivered ${f.delivered.join(", ")})`,
      );
      if (!f.complete) throw new BenchError(`flood incomplete (${label}): ${JSON.stringify(f)}`);
      rows.push({
        encryption,
        nodes,
        roundTripMs: rtt,
        roundTrips: ROUND_TRIPS,
        roundTrip:
          nodes === 2
            ? "A broadcasts a vote; B answers with its own vote for that height"
            : "A broadcasts a vote; all 3 peers answer (each broadcasts to all); done when A has all 3",
        throughput: f,
      });
    } finally {
      await stopPeers(peers);
    }
  }

  log(
    `messaging (noise, default peer limits ${defaultPeerLimits.framesPerSecond} frames/s): flooding ${FLOOD}`,
  );
  const limited = await startPeers(2, "noise", defaultPeerLimits);
  let defaultLimits: FloodResult;
  try {
    defaultLimits = await flood(limited, votes);
  } finally {
    await stopPeers(limited);
  }
  log(
    `  delivered ${defaultLimits.delivered[0]}, dropped ${defaultLimits.droppedByReceivers}, disconnects ${defaultLimits.disconnects}`,
  );
  const sync: Record<string, unknown>[] = [];
  for (const [encryption, blockBytes, count] of [
    ["noise", 200, 10_000],
    ["noise", 256 * 1024, 200],
    ["tls", 256 * 1024, 200],
  ] as const) {
    log(`sync protocol alone (${encryption}): ${count} blocks of ${blockBytes} bytes`);
    const row = await syncTransport(encryption, blockBytes, count);
    log(`  ${row.blocksPerSecond} blocks/s, ${row.megabytesPerSecond} MB/s`);
    sync.push(row);
  }
  return {
    transport:
      "libp2p TCP + yamux on 127.0.0.1, every node in this one process (sender and receivers share a thread)",
    payload: "a signed Ed25519 prevote, wire-encoded (signatures not verified by the receiver here)",
    frameBytes: voteBytes,
    window: WINDOW,
    peerLimits: "raised (1e9 frames/s) so the rows measure the transport; see defaultLimits",
    rows,
    defaultLimits: { limits: defaultPeerLimits, ...defaultLimits },
    syncProtocol: {
      what: "requestBlocks in batches of 256 against a serveBlocks that yields from memory: no verification, no store",
      rows: sync,
    },
  };
}

// ------------------------------------------------------------------ 2./3. validator processes

interface Validator {
  name: string;
  dir: string;
  rpc: string;
  child: ChildProcess | null;
  exited: Promise<void>;
}

interface NodeStatus {
  height: number;
  round: number;
  peers: number;
  halted: string | null;
  head: { height: number; hash: string };
}

const running = new Set<ChildProcess>();

function start(v: Validator, logName: string): void {
  const fd = openSync(join(v.dir, logName), "a");
  const child = spawn(process.execPath, [BIN, "start", "--config", join(v.dir, "config.json")], {
    stdio: ["ignore", fd, fd],
  });
  closeSync(fd);
  running.add(child);
  v.child = child;
  v.exited = new Promise((done) =>
    child.once("exit", () => {
      running.delete(child);
      done();
    }),
  );
}

async function stop(v: Validator): Promise<void> {
  const child = v.child;
  if (child === null) return;
  v.child = null;
  if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
  const timer = setTimeout(() => child.kill("SIGKILL"), 10_000);
  await v.exited;
  clearTimeout(timer);
}

async function status(v: Validator): Promise<NodeStatus | null> {
  try {
    const r = await fetch(`${v.rpc}/consensus/status`, { signal: AbortSignal.timeout(1000) });
    return (await r.json()) as NodeStatus;
  } catch {
    return null;
  }
}

async function rpc(v: Validator, method: string, params: unknown[]): Promise<unknown> {
  const r = await fetch(v.rpc, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ jsonrpc: "2.0", id: 1, method, params }),
    signal: AbortSignal.timeout(5000),
  });
  const body = (await r.json()) as { result?: unknown; error?: { message: string } };
  if (body.error !== undefined) throw new BenchError(`${v.name} ${method}: ${body.error.message}`);
  return body.result;
}

async function heads(validators: Validator[]): Promise<number[]> {
  return Promise.all(validators.map(async (v) => (await status(v))?.head.height ?? -1));
}

interface LogLine {
  msg?: string;
  time?: string;
  height?: number;
  txs?: number;
  [field: string]: unknown;
}

function readLog(file: string): LogLine[] {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch {
    return [];
  }
  const lines: LogLine[] = [];
  for (const line of text.split("\n")) {
    if (!line.startsWith("{")) continue;
    try {
      lines.push(JSON.parse(line) as LogLine);
    } catch {
      // a line cut off by the kill, or not JSON
    }
  }
  return lines;
}

/** height -> commit time (ms since the epoch) and transactions, from a node's "committed block" lines. */
function commits(file: string): Map<number, { timeMs: number; txs: number }> {
  const out = new Map<number, { timeMs: number; txs: number }>();
  for (const l of readLog(file))
    if (l.msg === "committed block" && typeof l.height === "number" && typeof l.time === "string")
      out.set(l.height, { timeMs: Date.parse(l.time), txs: l.txs ?? 0 });
  return out;
}

/** Block hashes at `heights` on every validator; the heights where they differ. */
async function compareHashes(
  validators: Validator[],
  heights: number[],
): Promise<{ height: number; hashes: string[] }[]> {
  const differ: { height: number; hashes: string[] }[] = [];
  for (const h of heights) {
    const hashes = await Promise.all(
      validators.map(async (v) => {
        const block = (await rpc(v, "eth_getBlockByNumber", [`0x${h.toString(16)}`, false])) as {
          hash: string;
        } | null;
        return block?.hash ?? "missing";
      }),
    );
    if (new Set(hashes).size !== 1) differ.push({ height: h, hashes });
  }
  return differ;
}

function sampleHeights(from: number, to: number, count: number): number[] {
  const out = new Set<number>();
  for (let i = 0; i < count; i++) out.add(Math.round(from + ((to - from) * i) / Math.max(1, count - 1)));
  return [...out];
}

async function signTransactions(
  accounts: DevAccount[],
  evmChainId: number,
  count: number,
): Promise<string[]> {
  const executor = await createExecutor({ chainId: BigInt(evmChainId) });
  const iface = new Interface(auditLogArtifact.abi);
  const contract = createAddressFromString(AUDIT_LOG_ADDRESS);
  const out: string[] = [];
  for (let n = 0; n < TXS_PER_ACCOUNT && out.length < count; n++)
    for (const account of accounts) {
      if (out.length === count) break;
      const tx = createFeeMarket1559Tx(
        {
          nonce: BigInt(n),
          to: contract,
          data: hexToBytes(
            iface.encodeFunctionData("record", [
              id(`subject-${out.length}`),
              id("record.read"),
              id(`doc-${out.length}`),
            ]) as `0x${string}`,
          ),
          gasLimit: 300_000n,
          maxFeePerGas: 0n,
          maxPriorityFeePerGas: 0n,
          chainId: BigInt(evmChainId),
        },
        { common: executor.common },
      );
      const { signature, recid } = secp.ecdsaSign(
        tx.getHashedMessageToSign(),
        hexToBytes(account.privateKey as `0x${string}`),
      );
      const raw = tx.addSignature(BigInt(recid), signature.slice(0, 32), signature.slice(32)).serialize();
      out.push(`0x${Buffer.from(raw).toString("hex")}`);
    }
  return out;
}

async function submit(v: Validator, txs: string[]): Promise<void> {
  for (let i = 0; i < txs.length; i += 100) {
    const r = await fetch(v.rpc, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(
        txs.slice(i, i + 100).map((raw, j) => ({
          jsonrpc: "2.0",
          id: j,
          method: "eth_sendRawTransaction",
          params: [raw],
        })),
      ),
    });
    const answers = (await r.json()) as { error?: { message: string } }[];
    const refused = answers.find((a) => a.error !== undefined);
    if (refused !== undefined) throw new BenchError(`a transaction was refused: ${refused.error!.message}`);
  }
}

async function commitLatency(validators: Validator[]): Promise<Record<string, unknown>> {
  log(`commit: waiting for all ${VALIDATORS} validators to reach height 5 with ${VALIDATORS - 1} peers`);
  await waitFor("height 5 on every validator", 60_000, async () => {
    const s = await Promise.all(validators.map(status));
    return s.every((x) => x !== null && x.head.height >= 5 && x.peers === VALIDATORS - 1) ? true : null;
  });
  const startHeads = await heads(validators);
  const cpu0 = validators.map((v) => cpuSeconds(v.child?.pid));
  const windowStart = Date.now();
  const t0 = performance.now();
  log(`commit: sampling ${BENCH_SECONDS} s from height ${Math.min(...startHeads)}`);
  for (let s = 5; s < BENCH_SECONDS; s += 5) {
    await sleep(5000);
    log(`  heights ${(await heads(validators)).join(" ")}`);
  }
  await sleep((BENCH_SECONDS % 5 || 5) * 1000);
  const endHeads = await heads(validators);
  const windowEnd = Date.now();
  const seconds = (performance.now() - t0) / 1000;
  const cpu = validators.map((v, i) => {
    const now = cpuSeconds(v.child?.pid);
    const before = cpu0[i];
    return now === null || before === null || before === undefined ? null : now - before;
  });
  if (endHeads.some((h) => h < 0))
    throw new BenchError(`a validator stopped answering: heads ${endHeads.join(" ")}`);
  const heights = endHeads[0]! - startHeads[0]!;
  const heightsPerSecond = heights / seconds;
  const cpuTotal = cpu.every((c) => c !== null) ? cpu.reduce((a: number, b) => a + (b ?? 0), 0) : null;
  const laggards = validators
    .map((v, i) => ({ name: v.name, head: endHeads[i]! }))
    .filter((l) => l.head < Math.max(...endHeads) - 5);
  if (cpuTotal !== null)
    log(
      `  CPU ${((1000 * cpuTotal) / VALIDATORS / Math.max(1, heights)).toFixed(1)} ms per height per validator; host ${((100 * cpuTotal) / seconds / cpus().length).toFixed(0)}% busy`,
    );
  if (laggards.length > 0) log(`  WARNING: validators behind the others: ${JSON.stringify(laggards)}`);

  const intervals: number[] = [];
  const perValidator = validators.map((v) => {
    const c = commits(join(v.dir, "node.log"));
    const own: number[] = [];
    for (const [h, { timeMs }] of c) {
      const previous = c.get(h - 1);
      if (previous !== undefined && timeMs >= windowStart && timeMs <= windowEnd)
        own.push(timeMs - previous.timeMs);
    }
    intervals.push(...own);
    return { name: v.name, heights: own.length, intervalMs: summary(own, 1) };
  });
  const all = summary(intervals, 1);
  log(`  ${heightsPerSecond.toFixed(1)} heights/s; commit interval p50 ${all.p50} ms, p99 ${all.p99} ms`);

  const checked = sampleHeights(Math.max(1, startHeads[0]!), Math.min(...endHeads), 6);
  log(`commit: comparing block hashes at heights ${checked.join(", ")}`);
  const differ = await compareHashes(validators, checked);
  return {
    validators: VALIDATORS,
    timeouts: "defaults (propose 3000 ms, prevote 1000 ms, precommit 1000 ms)",
    emptyBlockIntervalMs: 0,
    commitIntervalMs: 0,
    seconds: round(seconds, 1),
    fromHeight: startHeads[0],
    toHeight: endHeads[0],
    heightsPerSecond: round(heightsPerSecond, 1),
    intervalMs: all,
    intervalSource:
      '"committed block" log time (ms resolution), previous height to this one, all validators pooled',
    perValidator,
    cpu:
      cpuTotal === null
        ? null
        : {
            coreSecondsPerValidator: cpu.map((c) => round(c ?? 0, 2)),
            msPerHeightPerValidator: round((1000 * cpuTotal) / VALIDATORS / Math.max(1, heights), 1),
            hostUtilisation: round(cpuTotal / seconds / cpus().length, 2),
          },
    laggards,
    hashCheck: { heights: checked, agree: differ.length === 0, differ },
    goal: { goal: `empty-block commit p50 < ${COMMIT_GOAL_MS} ms`, met: all.p50! < COMMIT_GOAL_MS },
  };
}

/** Restarts `v`, returns how long until its head reaches the others' head at restart. */
async function catchUp(
  v: Validator,
  others: Validator[],
  logName: string,
  fromHeight: number,
): Promise<Record<string, unknown>> {
  const target = Math.max(...(await heads(others)));
  const started = performance.now();
  start(v, logName);
  let rpcUpSeconds = 0;
  let lastReport = started;
  const reached = await waitFor(`${v.name} to reach height ${target}`, 120_000, async () => {
    const s = await status(v);
    if (s === null) {
      if (v.child === null || v.child.exitCode !== null)
        throw new BenchError(`${v.name} exited during restart (see ${join(v.dir, logName)})`);
      return null;
    }
    if (rpcUpSeconds === 0) rpcUpSeconds = (performance.now() - started) / 1000;
    if (performance.now() - lastReport > 2000) {
      lastReport = performance.now();
      log(`  ${v.name} at ${s.head.height} of ${target}`);
    }
    return s.head.height >= target ? performance.now() : null;
  });
  const seconds = (reached - started) / 1000;
  const blocks = target - fromHeight;
  const source = commits(join(others[0]!.dir, "node.log"));
  let txs = 0;
  for (let h = fromHeight + 1; h <= target; h++) txs += source.get(h)?.txs ?? 0;
  // The sync run that got it there may go on past the target (the head moved): wait for its summary.
  const finished = () => readLog(join(v.dir, logName)).some((l) => l.msg === "block sync finished");
  await waitFor("the block sync summary", 15_000, () => (finished() ? true : null)).catch(() => undefined);
  const lines = readLog(join(v.dir, logName));
  const syncRuns = lines
    .filter((l) => l.msg === "block sync finished")
    .map((l) => ({ blocks: l.blocks, seconds: l.seconds, blocksPerSecond: l.blocksPerSecond }));
  const storeCheck = lines.find((l) => l.msg === "store authenticated");
  const afterRpc = seconds - rpcUpSeconds;
  log(
    `  ${blocks} blocks (${txs} txs) in ${seconds.toFixed(2)} s from spawn: ${(blocks / seconds).toFixed(0)} blocks/s`,
  );
  return {
    fromHeight,
    targetHeight: target,
    blocks,
    txs,
    secondsFromSpawn: round(seconds, 3),
    blocksPerSecond: round(blocks / seconds, 1),
    txPerSecond: round(txs / seconds, 1),
    rpcUpSeconds: round(rpcUpSeconds, 3),
    storeAuthenticatedMs: storeCheck?.ms ?? null,
    afterRpcUp: {
      seconds: round(afterRpc, 3),
      blocksPerSecond: round(blocks / afterRpc, 1),
      txPerSecond: round(txs / afterRpc, 1),
    },
    syncRuns,
  };
}

async function syncRate(
  validators: Validator[],
  accounts: DevAccount[],
  txs: string[],
): Promise<Record<string, unknown>> {
  const v3 = validators[VALIDATORS - 1]!;
  const others = validators.slice(0, VALIDATORS - 1);
  const stoppedAt = (await status(v3))?.head.height ?? 0;
  log(`sync: stopping ${v3.name} at height ${stoppedAt}; the others commit for ${DOWN_SECONDS} s`);
  await stop(v3);
  const downStart = await heads(others);
  if (txs.length > 0) {
    log(`sync: submitting ${txs.length} AuditLog.record transactions from ${accounts.length} accounts`);
    await submit(others[0]!, txs);
  }
  for (let s = 0; s < DOWN_SECONDS; s += 5) {
    await sleep(Math.min(5, DOWN_SECONDS - s) * 1000);
    log(`  heights ${(await heads(others)).join(" ")}`);
  }
  const downEnd = await heads(others);
  const behind = Math.max(...downEnd) - stoppedAt;
  log(`sync: restarting ${v3.name} (${behind} blocks behind)`);
  const restart = await catchUp(v3, others, "node-restart.log", stoppedAt);
  const restartDiffer = await compareHashes(
    [others[0]!, v3],
    sampleHeights(stoppedAt + 1, restart.targetHeight as number, 4),
  );

  log(`sync: stopping ${v3.name} and deleting its chain store (full sync from genesis)`);
  await stop(v3);
  rmSync(join(v3.dir, "data", "chain"), { recursive: true, force: true });
  const full = await catchUp(v3, others, "node-resync.log", 0);
  const fullDiffer = await compareHashes([others[0]!, v3], sampleHeights(1, full.targetHeight as number, 6));
  return {
    down: {
      seconds: DOWN_SECONDS,
      blocksCommittedByOthers: Math.max(...downEnd) - Math.max(...downStart),
      heightsPerSecondWithThree: round((Math.max(...downEnd) - Math.max(...downStart)) / DOWN_SECONDS, 1),
      transactionsSubmitted: txs.length,
    },
    restart: { ...restart, hashCheckAgree: restartDiffer.length === 0, differ: restartDiffer },
    fullResync: { ...full, hashCheckAgree: fullDiffer.length === 0, differ: fullDiffer },
    note: "secondsFromSpawn includes process start, store open and authentication (verifyOnStart), RPC and p2p start; afterRpcUp starts when /consensus/status first answers",
  };
}

async function validatorNetwork(
  dir: string,
): Promise<{ commit: Record<string, unknown>; sync: Record<string, unknown> }> {
  const rpcBase = await freePortRange(VALIDATORS);
  let p2pBase = await freePortRange(VALIDATORS);
  while (Math.abs(p2pBase - rpcBase) < VALIDATORS) p2pBase = await freePortRange(VALIDATORS);
  const accountCount = Math.ceil(SYNC_TXS / TXS_PER_ACCOUNT);
  log(
    `init: ${VALIDATORS} validators in ${dir} (rpc ${rpcBase}+, p2p ${p2pBase}+), ${accountCount} dev accounts`,
  );
  const init = await initNetwork({
    dir,
    validators: VALIDATORS,
    rpcBasePort: rpcBase,
    p2pBasePort: p2pBase,
    emptyBlockIntervalMs: 0,
    commitIntervalMs: 0,
    devAccounts: Math.max(1, accountCount),
    scryptN: 1024,
  });
  if (NODE_LOG_LEVEL !== "info")
    for (const vdir of init.validatorDirs) {
      const file = join(vdir, "config.json");
      const config = JSON.parse(readFileSync(file, "utf8")) as { log: { level: string } };
      config.log.level = NODE_LOG_LEVEL;
      writeFileSync(file, `${JSON.stringify(config, null, 2)}\n`);
    }
  const txs = SYNC_TXS > 0 ? await signTransactions(init.accounts, init.genesis.evmChainId, SYNC_TXS) : [];
  const validators: Validator[] = init.validatorDirs.map((vdir, i) => ({
    name: `validator-${i}`,
    dir: vdir,
    rpc: `http://127.0.0.1:${rpcBase + i}`,
    child: null,
    exited: Promise.resolve(),
  }));
  try {
    log("starting the validator processes");
    for (const v of validators) start(v, "node.log");
    const commit = await commitLatency(validators);
    const sync = await syncRate(validators, init.accounts, txs);
    return { commit, sync };
  } finally {
    await Promise.all(validators.map(stop));
  }
}

// ------------------------------------------------------------------ main

const tempDirs: string[] = [];

function cleanupNow(): void {
  for (const child of running) child.kill("SIGKILL");
  if (KEEP_DIR) for (const d of tempDirs) log(`kept ${d}`);
  else for (const d of tempDirs) rmSync(d, { recursive: true, force: true });
  tempDirs.length = 0;
}

async function main(): Promise<void> {
  const onSignal = (signal: NodeJS.Signals) => {
    log(`${signal}: stopping the validators`);
    for (const child of running) child.kill("SIGTERM");
    setTimeout(() => {
      cleanupNow();
      process.exit(130);
    }, 3000).unref();
    void Promise.all([...running].map((c) => new Promise((d) => c.once("exit", d)))).then(() => {
      cleanupNow();
      process.exit(130);
    });
  };
  process.once("SIGINT", onSignal);
  process.once("SIGTERM", onSignal);
  process.once("exit", () => {
    for (const child of running) child.kill("SIGKILL");
  });

  const started = performance.now();
  const loadAtStart = loadavg().map((l) => round(l, 2));
  const dir = mkdtempSync(join(tmpdir(), "vs-bench-network-"));
  tempDirs.push(dir);
  try {
    const fsyncMs = fsyncProbe(dir);
    log(`fsync on ${tmpdir()}: p50 ${fsyncMs.p50} ms, p99 ${fsyncMs.p99} ms`);
    const messages = SKIP_MESSAGING ? { skipped: true } : await messaging();
    const { commit, sync } = await validatorNetwork(dir);
    const hashCheck = commit.hashCheck as { agree: boolean };
    const syncAgree =
      (sync.restart as { hashCheckAgree: boolean }).hashCheckAgree &&
      (sync.fullResync as { hashCheckAgree: boolean }).hashCheckAgree;
    const report = {
      benchmark: "network",
      generatedAt: new Date().toISOString(),
      environment: {
        node: process.version,
        cpuModel: cpus()[0]?.model ?? "unknown",
        cores: cpus().length,
        platform: `${process.platform}-${process.arch}`,
        gitCommit: gitCommit(),
        fsyncMs,
        /** 1/5/15-minute load averages: other work on the host skews every figure here. */
        loadAverage: { atStart: loadAtStart, atEnd: loadavg().map((l) => round(l, 2)) },
      },
      parameters: {
        benchSeconds: BENCH_SECONDS,
        downSeconds: DOWN_SECONDS,
        syncTransactions: SYNC_TXS,
        roundTrips: ROUND_TRIPS,
        floodVotes: FLOOD,
        meshFloodVotes: MESH_FLOOD,
      },
      messaging: messages,
      commit,
      sync,
      goals: [commit.goal],
      totalSeconds: round((performance.now() - started) / 1000, 1),
    };
    const out = resolve(ROOT, "ci_artifacts/network_benchmark.json");
    mkdirSync(dirname(out), { recursive: true });
    writeFileSync(out, `${JSON.stringify(report, null, 2)}\n`);
    process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
    log(`wrote ${out}`);
    if (!hashCheck.agree || !syncAgree) {
      log("FAILED: validators disagree on a block hash (see hashCheck / differ in the report)");
      process.exitCode = 1;
    }
  } finally {
    cleanupNow();
  }
}

try {
  await main();
} catch (e) {
  log(`network bench failed: ${(e as Error).stack ?? e}`);
  cleanupNow();
  process.exit(1);
}
