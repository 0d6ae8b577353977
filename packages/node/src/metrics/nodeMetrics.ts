/**
 * The node's Prometheus metrics (prom-client). The pure packages report plain numbers (the
 * consensus host's counters, the mempool's stats, the network's counters); this is the one place
 * that turns them into metrics, read when Prometheus scrapes. Names carry their units; the first six
 * are the names operators' existing alerts use.
 *
 * Created before the store opens (the storage key's unwrap is an HSM operation too), attached to
 * the running parts once they exist.
 */

import { statfsSync } from "node:fs";
import { readdir, stat } from "node:fs/promises";
import { join } from "node:path";
import type { Signer } from "@vitalstream/hsm";
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from "prom-client";
import type { Chain, ChainHead } from "../chain/chain.ts";
import type { ConsensusHost } from "../consensusHost/host.ts";
import type { Mempool } from "../mempool/mempool.ts";
import type { BlockSync } from "../network/blockSync.ts";
import type { Network } from "../network/network.ts";
import type { ConsortiumPki } from "../network/pki.ts";
import type { HsmObserver, HsmOperation } from "./instrumentedSigner.ts";
import { defaultMetricsOptions, type MetricsOptions } from "./options.ts";

export interface MetricsSources {
  chain: Chain;
  host: ConsensusHost;
  mempool: Mempool;
  network: Network | null;
  sync: BlockSync | null;
  /** The instrumented provider (health checks count as HSM operations); null on an observer. */
  signer: Signer | null;
  pki: ConsortiumPki | null;
  /** The data directory (disk space) and the store inside it (its size). */
  dataDir: string;
  storePath: string;
}

/** Seconds; from a fast local signer (~50 us) to a slow cloud KMS round trip. */
const LATENCY_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];
const BLOCK_BUCKETS = [0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60];

export class NodeMetrics implements HsmObserver {
  readonly registry = new Registry();
  private readonly opts: MetricsOptions;
  private sources: MetricsSources | null = null;
  private readonly timers: NodeJS.Timeout[] = [];
  private unsubscribe: (() => void) | null = null;
  /** (time s, transactions committed so far), one a second, for blockchain_tps. */
  private readonly txSamples: { at: number; txs: number }[] = [];
  private lastHeadAt: number | null = null;
  /** Certificates are read one block at a time, in order, off the commit path. */
  private certificates: Promise<void> = Promise.resolve();
  private readonly hsmOps: Counter<"provider" | "operation" | "result">;
  private readonly signerLatency: Histogram<"provider" | "operation">;
  private readonly blockTime: Gauge;
  private readonly blockInterval: Histogram;
  private readonly missedVotes: Counter<"validator">;
  private readonly missedProposals: Counter<"validator">;
  private readonly storeSize: Gauge;

  constructor(opts: Partial<MetricsOptions> = {}) {
    this.opts = { ...defaultMetricsOptions, ...opts };
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry });
    const self = this;
    const gauge = (name: string, help: string, read: (s: MetricsSources) => number | undefined) =>
      new Gauge({
        name,
        help,
        registers,
        collect() {
          const s = self.sources;
          const v = s === null ? undefined : read(s);
          if (v !== undefined && Number.isFinite(v)) this.set(v);
        },
      });
    /** A counter mirroring a monotonic plain number of a pure part. */
    const mirrored = (name: string, help: string, read: (s: MetricsSources) => number) => {
      let seen = 0;
      return new Counter({
        name,
        help,
        registers,
        collect() {
          const s = self.sources;
          if (s === null) return;
          const v = read(s);
          if (v > seen) this.inc(v - seen);
          seen = v;
        },
      });
    };

    // The names operators' alerts already use.
    gauge("blockchain_tps", "Transactions committed per second over the last window", () => this.tps());
    this.blockTime = new Gauge({
      name: "blockchain_block_time_seconds",
      help: "Seconds between the last two blocks this node committed",
      registers,
    });
    gauge(
      "blockchain_consensus_latency_ms",
      "Milliseconds from the start of the last height this node's engine decided to its decision",
      (s) => s.host.counters.lastConsensusMs,
    );
    gauge("blockchain_peer_count", "Connected, verified peers", (s) => s.network?.peerCount() ?? 0);
    this.hsmOps = new Counter({
      name: "blockchain_hsm_operations_total",
      help: "Calls to the key provider (HSM or KMS) by provider, operation and result (ok or error)",
      labelNames: ["provider", "operation", "result"],
      registers,
    });
    gauge(
      "blockchain_tls_connections_active",
      "Open p2p connections secured with TLS 1.3 (0 when the network uses Noise)",
      (s) => (s.network === null ? 0 : (s.network.connectionsByEncryption().get("/tls/1.0.0") ?? 0)),
    );

    // Consensus.
    gauge("blockchain_height", "Height of the last committed block", (s) => s.chain.head.height);
    gauge("blockchain_round", "Round of the height in progress", (s) => s.host.status().round);
    gauge(
      "blockchain_rounds_per_height",
      "Rounds the last committed height needed (1: decided in its first round)",
      (s) => s.host.counters.lastRounds,
    );
    gauge("blockchain_halted", "1 when consensus halted on an error (see the log), else 0", (s) =>
      s.host.status().halted === null ? 0 : 1,
    );
    gauge("blockchain_is_validator", "1 when this node votes, 0 for an observer", (s) =>
      s.host.status().validatorIndex === null ? 0 : 1,
    );
    mirrored(
      "blockchain_blocks_committed_total",
      "Blocks committed",
      (s) => s.host.counters.heightsCommitted,
    );
    mirrored(
      "blockchain_transactions_committed_total",
      "Transactions committed (with a receipt)",
      (s) => s.host.counters.txsCommitted,
    );
    mirrored(
      "blockchain_rounds_started_total",
      "Consensus rounds started",
      (s) => s.host.counters.roundsStarted,
    );
    mirrored(
      "blockchain_byzantine_evidence_total",
      "Equivocations (conflicting signed votes) this node has seen",
      (s) => s.host.counters.evidence,
    );
    mirrored(
      "blockchain_proposals_refused_total",
      "Proposals this node refused as invalid",
      (s) => s.host.counters.proposalsRefused,
    );
    this.missedVotes = new Counter({
      name: "blockchain_validator_missed_votes_total",
      help: "Committed blocks whose commit certificate lacks this validator's precommit",
      labelNames: ["validator"],
      registers,
    });
    this.missedProposals = new Counter({
      name: "blockchain_validator_missed_proposals_total",
      help: "Rounds this validator was the proposer of and that did not commit (the block came in a later round)",
      labelNames: ["validator"],
      registers,
    });
    this.blockInterval = new Histogram({
      name: "blockchain_block_interval_seconds",
      help: "Seconds between consecutive blocks this node committed",
      buckets: BLOCK_BUCKETS,
      registers,
    });
    gauge(
      "blockchain_commit_duration_ms",
      "Milliseconds to execute and write the last committed block",
      (s) => s.host.counters.lastCommitMs,
    );

    // Transactions, sync, storage.
    gauge("blockchain_mempool_transactions", "Transactions in the mempool", (s) => s.mempool.stats().txs);
    gauge("blockchain_mempool_bytes", "Bytes of transactions in the mempool", (s) => s.mempool.stats().bytes);
    gauge("blockchain_sync_lag_blocks", "Blocks behind the highest head a peer reported", (s) => {
      const st = s.sync?.status();
      return st === undefined ? 0 : Math.max(0, st.highestPeerHeight - s.chain.head.height);
    });
    this.storeSize = new Gauge({
      name: "blockchain_store_size_bytes",
      help: "Bytes the encrypted store takes on disk",
      registers,
    });
    gauge(
      "blockchain_disk_free_bytes",
      "Bytes available to the node on the data directory's filesystem",
      (s) => disk(s.dataDir)?.free,
    );
    gauge(
      "blockchain_disk_total_bytes",
      "Size of the data directory's filesystem",
      (s) => disk(s.dataDir)?.total,
    );

    // Keys and certificates.
    this.signerLatency = new Histogram({
      name: "blockchain_signer_latency_seconds",
      help: "Latency of calls to the key provider, by provider and operation",
      labelNames: ["provider", "operation"],
      buckets: LATENCY_BUCKETS,
      registers,
    });

    // Network.
    mirrored("blockchain_p2p_disconnects_total", "Peers this node disconnected and banned", (s) =>
      s.network === null ? 0 : s.network.counters.disconnects,
    );
    mirrored("blockchain_p2p_frames_dropped_total", "Frames dropped by per-peer rate limits", (s) =>
      s.network === null ? 0 : s.network.counters.framesDropped,
    );
    mirrored("blockchain_p2p_certificates_refused_total", "Peer certificates refused", (s) =>
      s.network === null ? 0 : s.network.counters.refusedCertificates,
    );
  }

  /** HsmObserver: one call to the key provider. */
  operation(provider: string, operation: HsmOperation, ok: boolean, seconds: number): void {
    this.hsmOps.inc({ provider, operation, result: ok ? "ok" : "error" });
    this.signerLatency.observe({ provider, operation }, seconds);
  }

  attach(sources: MetricsSources): void {
    this.sources = sources;
    // Series that exist only where they mean something: an unset gauge would read 0 and fire alerts.
    const notAfter = sources.pki?.ownNotAfter();
    if (notAfter !== undefined)
      new Gauge({
        name: "blockchain_tls_certificate_expiry_timestamp_seconds",
        help: "When this node's consortium certificate expires (Unix seconds; absent without PKI)",
        registers: [this.registry],
      }).set(notAfter.getTime() / 1000);
    const signerHealthy =
      sources.signer === null
        ? null
        : new Gauge({
            name: "blockchain_signer_healthy",
            help: "1 when the last health check of the signing key's provider passed (absent on an observer)",
            registers: [this.registry],
          });
    const sample = () => {
      const now = performance.now() / 1000;
      this.txSamples.push({ at: now, txs: sources.host.counters.txsCommitted });
      while (this.txSamples.length > 0 && this.txSamples[0]!.at < now - this.opts.tpsWindowSeconds - 1)
        this.txSamples.shift();
    };
    sample();
    this.every(1_000, sample);
    const checkSigner = async () => {
      if (sources.signer === null || signerHealthy === null) return;
      try {
        signerHealthy.set((await sources.signer.health()).ok ? 1 : 0);
      } catch {
        signerHealthy.set(0);
      }
    };
    void checkSigner();
    this.every(this.opts.signerHealthIntervalMs, () => void checkSigner());
    const measureStore = async () => {
      const size = await directorySize(sources.storePath);
      if (size !== undefined) this.storeSize.set(size);
    };
    void measureStore();
    this.every(this.opts.storeSizeIntervalMs, () => void measureStore());
    this.unsubscribe = sources.chain.onHead((head) => this.onHead(head));
  }

  stop(): void {
    for (const t of this.timers) clearInterval(t);
    this.timers.length = 0;
    this.unsubscribe?.();
    this.unsubscribe = null;
  }

  /** The exposition text, and its content type. */
  async render(): Promise<{ contentType: string; body: string }> {
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }

  private every(ms: number, run: () => void): void {
    const t = setInterval(run, ms);
    t.unref();
    this.timers.push(t);
  }

  private tps(): number {
    const first = this.txSamples[0];
    const now = performance.now() / 1000;
    const txs = this.sources?.host.counters.txsCommitted ?? 0;
    if (first === undefined || now - first.at < 0.5) return 0;
    return (txs - first.txs) / (now - first.at);
  }

  private onHead(head: ChainHead): void {
    const now = performance.now() / 1000;
    if (this.lastHeadAt !== null) {
      this.blockTime.set(now - this.lastHeadAt);
      this.blockInterval.observe(now - this.lastHeadAt);
    }
    this.lastHeadAt = now;
    const sources = this.sources;
    if (sources === null || head.height === 0) return;
    this.certificates = this.certificates
      .then(() => this.countMissed(sources, head.height))
      .catch(() => undefined);
  }

  /** Who was absent from a block's commit certificate, and whose proposal rounds failed. */
  private async countMissed(s: MetricsSources, height: number): Promise<void> {
    const [cert, set] = await Promise.all([s.chain.getCertificate(height), s.chain.getValidatorSet(height)]);
    if (cert === undefined || set === undefined) return;
    const name = (i: number) => s.chain.genesis.validators[i]?.name ?? `validator-${i}`;
    const signed = new Set(cert.signatures.map((x) => x.validatorIndex));
    for (let i = 0; i < set.validators.length; i++)
      if (!signed.has(i)) this.missedVotes.inc({ validator: name(i) });
    for (let round = 0; round < cert.round; round++)
      this.missedProposals.inc({ validator: name(set.proposer(round)) });
  }
}

function disk(path: string): { free: number; total: number } | undefined {
  try {
    const s = statfsSync(path);
    return { free: s.bavail * s.bsize, total: s.blocks * s.bsize };
  } catch {
    return undefined;
  }
}

/** LevelDB keeps a flat directory of files. */
async function directorySize(dir: string): Promise<number | undefined> {
  try {
    let total = 0;
    for (const entry of await readdir(dir, { withFileTypes: true }))
      if (entry.isFile()) total += (await stat(join(dir, entry.name)).catch(() => ({ size: 0 }))).size;
    return total;
  } catch {
    return undefined;
  }
}
