/**
 * The load generator: a process of its own, so that its CPU is not the validators'. It pre-signs
 * every transaction before the clock starts, then submits them over JSON-RPC (batches of up to
 * 100) to all validators, and watches committed blocks to time each transaction.
 *
 *   node packages/node/test/perf/tps/loadGenerator.ts <job.json>
 *
 * The job (written by benchmark.ts) names the RPC URLs, accounts and their next nonces, the
 * workload and the mode:
 * - open loop: transactions are due at a fixed rate, whatever the network does; latency is counted
 *   from when each was due, so a network that falls behind shows it (no coordinated omission);
 * - closed loop: each account keeps `windowPerAccount` transactions in flight and sends the next
 *   one when one commits: the network's saturation throughput.
 * Each account sends to one validator (account i to validator i mod n), which keeps its nonces in
 * order on the way in; gossip carries them to the others.
 *
 * Writes the result JSON to `job.out`; progress goes to stderr.
 */
import { readFileSync, writeFileSync } from "node:fs";
import { createExecutor } from "../../../src/execution/executor.ts";
import { txCommon } from "../../../src/execution/txCommon.ts";
import type { BlockSeen, TxTiming } from "./stats.ts";
import {
  type LoadAccount,
  type SignedTx,
  signTransactions,
  type WorkloadName,
  workload,
} from "./workload.ts";

export interface LoadJob {
  urls: string[];
  evmChainId: number;
  contract: string;
  workload: WorkloadName;
  batchSize: number;
  accounts: (LoadAccount & { nonce: number })[];
  mode: "open" | "closed";
  /** Open loop: transactions per second. */
  rate?: number;
  /** Closed loop: transactions each account keeps in flight. */
  windowPerAccount?: number;
  /** Closed loop: the most it could commit per second (sizes how many transactions to pre-sign). */
  maxTxPerSecond?: number;
  durationS: number;
  /** After the load stops, how long to wait for the last transactions to commit. */
  drainS: number;
  out: string;
}

export interface LoadResult {
  mode: "open" | "closed";
  workload: WorkloadName;
  eventsPerTx: number;
  /** Epoch ms of the run's start; every other time is ms since then. */
  startedAtEpochMs: number;
  loadEndMs: number;
  endMs: number;
  signing: { txs: number; seconds: number };
  released: number;
  accepted: number;
  rejected: number;
  rejections: string[];
  committed: number;
  /** Accepted, but not committed by the end of the drain. */
  lost: number;
  /** Committed with status 0 (reverted). */
  reverted: number;
  txs: TxTiming[];
  blocks: BlockSeen[];
  /** The next nonce of each account after the run (for the next run). */
  nextNonces: number[];
}

const BATCH = 100;
const POLL_MS = 20;

interface Tracked extends SignedTx {
  account: number;
  releasedMs?: number;
  committedMs?: number;
  accepted?: boolean;
}

async function rpc<T>(url: string, body: unknown, timeoutMs = 30_000): Promise<T> {
  const r = await fetch(url, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
    signal: AbortSignal.timeout(timeoutMs),
  });
  if (!r.ok) throw new Error(`${url}: HTTP ${r.status}`);
  return (await r.json()) as T;
}

type RpcAnswer<T> = { id: number; result?: T; error?: { code: number; message: string } };

export async function runLoad(job: LoadJob, progress: (m: string) => void): Promise<LoadResult> {
  const w = workload(job.workload, job.batchSize);
  const executor = await createExecutor({ chainId: BigInt(job.evmChainId) });
  const common = txCommon(executor.common);
  const n = job.accounts.length;

  // How many to sign: the open loop's schedule; for the closed loop, what the caller's bound on
  // throughput lets through in the duration (running out ends the run early, and says so).
  const perAccount =
    job.mode === "open"
      ? Math.ceil(((job.rate ?? 0) * job.durationS) / n) + 1
      : Math.ceil(((job.maxTxPerSecond ?? 2000) * job.durationS) / n) + (job.windowPerAccount ?? 1);
  const signStart = performance.now();
  const queues: Tracked[][] = [];
  for (const [i, a] of job.accounts.entries()) {
    queues.push(
      signTransactions(w, a, a.nonce, perAccount, job.contract, common).map((t) => ({ ...t, account: i })),
    );
    if (i % 32 === 31 || i === n - 1) progress(`  signed ${(i + 1) * perAccount} transactions`);
  }
  const signing = { txs: n * perAccount, seconds: (performance.now() - signStart) / 1000 };
  const byHash = new Map<string, Tracked>();
  for (const q of queues) for (const t of q) byHash.set(t.hash, t);

  const t0 = performance.now();
  const startedAtEpochMs = Date.now();
  const now = () => performance.now() - t0;
  const next = new Array<number>(n).fill(0);
  const inFlight = new Array<number>(n).fill(0);
  const outbox: Tracked[][] = job.urls.map(() => []);
  const rejections: string[] = [];
  let released = 0;
  let accepted = 0;
  let rejected = 0;
  let committed = 0;
  let reverted = 0;
  let loading = true;
  let exhausted = false;
  const blocks: BlockSeen[] = [];

  const release = (account: number, at: number): boolean => {
    const q = queues[account]!;
    if (next[account]! >= q.length) {
      exhausted = true;
      return false;
    }
    const tx = q[next[account]!++]!;
    tx.releasedMs = at;
    inFlight[account]!++;
    released++;
    outbox[account % job.urls.length]!.push(tx);
    return true;
  };

  // Senders: per validator, up to two batches in flight.
  const sender = async (v: number) => {
    while (loading || outbox[v]!.length > 0) {
      const batch = outbox[v]!.splice(0, BATCH);
      if (batch.length === 0) {
        await new Promise((d) => setTimeout(d, 2));
        continue;
      }
      let answers: RpcAnswer<string>[];
      try {
        answers = await rpc<RpcAnswer<string>[]>(
          job.urls[v]!,
          batch.map((t, i) => ({ jsonrpc: "2.0", id: i, method: "eth_sendRawTransaction", params: [t.raw] })),
        );
      } catch (e) {
        answers = batch.map((_, i) => ({ id: i, error: { code: 0, message: (e as Error).message } }));
      }
      for (const a of answers) {
        const tx = batch[a.id];
        if (tx === undefined) continue;
        if (a.error === undefined) {
          tx.accepted = true;
          accepted++;
        } else {
          tx.accepted = false;
          rejected++;
          inFlight[tx.account]!--;
          if (rejections.length < 20) rejections.push(`${tx.hash}: ${a.error.message}`);
        }
      }
    }
  };

  // The commit watcher: every new block on validator 0, its transaction hashes.
  const firstHeight = Number(
    (await rpc<{ result: string }>(job.urls[0]!, { jsonrpc: "2.0", id: 1, method: "eth_blockNumber" }))
      .result,
  );
  let height = firstHeight;
  let watching = true;
  const watcher = async () => {
    while (watching) {
      let head: number;
      try {
        head = Number(
          (await rpc<{ result: string }>(job.urls[0]!, { jsonrpc: "2.0", id: 1, method: "eth_blockNumber" }))
            .result,
        );
      } catch {
        await new Promise((d) => setTimeout(d, POLL_MS));
        continue;
      }
      for (let from = height + 1; from <= head; from += BATCH) {
        const to = Math.min(head, from + BATCH - 1);
        const request = [];
        for (let h = from; h <= to; h++)
          request.push({
            jsonrpc: "2.0",
            id: h,
            method: "eth_getBlockByNumber",
            params: [`0x${h.toString(16)}`, false],
          });
        const answers = await rpc<RpcAnswer<{ transactions: string[] }>[]>(job.urls[0]!, request);
        const at = now();
        answers.sort((a, b) => a.id - b.id);
        for (const a of answers) {
          const hashes = a.result?.transactions ?? [];
          blocks.push({ height: a.id, observedMs: at, txs: hashes.length });
          for (const hash of hashes) {
            const tx = byHash.get(hash);
            if (tx === undefined || tx.committedMs !== undefined) continue;
            tx.committedMs = at;
            committed++;
            inFlight[tx.account]!--;
          }
        }
        height = to;
      }
      await new Promise((d) => setTimeout(d, POLL_MS));
    }
  };

  const watching$ = watcher();
  const senders$ = job.urls.map((_, v) => sender(v));
  const durationMs = job.durationS * 1000;
  let lastReport = 0;
  let cursor = 0;
  while (now() < durationMs && !exhausted) {
    const t = now();
    if (job.mode === "open") {
      const due = Math.floor(((job.rate ?? 0) * t) / 1000);
      while (released < due && !exhausted) {
        // Round robin over accounts; one at its nonce window waits for the next turn.
        let tries = 0;
        while (inFlight[cursor]! >= 64 && tries++ < n) cursor = (cursor + 1) % n;
        if (tries > n) break;
        release(cursor, (1000 * released) / (job.rate ?? 1));
        cursor = (cursor + 1) % n;
      }
    } else {
      for (let a = 0; a < n; a++) while (inFlight[a]! < (job.windowPerAccount ?? 1) && release(a, t)) {}
    }
    if (t - lastReport >= 5000) {
      lastReport = t;
      progress(
        `  ${(t / 1000).toFixed(0)} s: released ${released}, accepted ${accepted}, committed ${committed}, rejected ${rejected}`,
      );
    }
    await new Promise((d) => setTimeout(d, 5));
  }
  if (exhausted) progress("  ran out of pre-signed transactions: the run ends early");
  loading = false;
  const loadEndMs = now();
  await Promise.all(senders$);
  const drainUntil = now() + job.drainS * 1000;
  while (committed < accepted && now() < drainUntil) await new Promise((d) => setTimeout(d, 50));
  watching = false;
  await watching$;
  const endMs = now();

  // Every committed transaction's receipt: a revert is a failure too.
  const done = [...byHash.values()].filter((t) => t.committedMs !== undefined);
  for (let i = 0; i < done.length; i += BATCH) {
    const slice = done.slice(i, i + BATCH);
    const answers = await rpc<RpcAnswer<{ status: string } | null>[]>(
      job.urls[0]!,
      slice.map((t, k) => ({ jsonrpc: "2.0", id: k, method: "eth_getTransactionReceipt", params: [t.hash] })),
    );
    for (const a of answers) if (a.result?.status !== "0x1") reverted++;
  }

  const sent = [...byHash.values()].filter((t) => t.releasedMs !== undefined);
  return {
    mode: job.mode,
    workload: job.workload,
    eventsPerTx: w.eventsPerTx,
    startedAtEpochMs,
    loadEndMs,
    endMs,
    signing,
    released,
    accepted,
    rejected,
    rejections,
    committed,
    lost: sent.filter((t) => t.accepted === true && t.committedMs === undefined).length,
    reverted,
    txs: sent.map((t) => ({
      releasedMs: Math.round(t.releasedMs! * 10) / 10,
      ...(t.committedMs === undefined ? {} : { committedMs: Math.round(t.committedMs * 10) / 10 }),
    })),
    blocks,
    nextNonces: job.accounts.map((a, i) => a.nonce + next[i]!),
  };
}

if (import.meta.main) {
  const file = process.argv[2];
  if (file === undefined) {
    process.stderr.write("usage: node packages/node/test/perf/tps/loadGenerator.ts <job.json>\n");
    process.exit(2);
  }
  try {
    const job = JSON.parse(readFileSync(file, "utf8")) as LoadJob;
    const result = await runLoad(job, (m) => process.stderr.write(`${m}\n`));
    writeFileSync(job.out, JSON.stringify(result));
  } catch (e) {
    process.stderr.write(`load generator failed: ${(e as Error).message}\n`);
    process.exit(1);
  }
}
