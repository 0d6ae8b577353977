/**
 * Block sync: a node that is behind (new, restarted, partitioned) asks peers that are ahead for
 * committed blocks with their commit certificates, in batches, and hands them to the consensus
 * host, which verifies every certificate against the validator set before executing and
 * committing. A peer whose blocks do not verify is penalised and another is asked; nothing from a
 * single peer is trusted that cannot be checked.
 *
 * A peer one height ahead may only be faster than us at deciding the same height, so a sync to
 * catch up one block waits a moment (`graceMs`) for our own engine to decide it.
 */
import type { Logger } from "pino";
import type { Chain } from "../chain/chain.ts";
import type { ApplyResult, CommittedBlock } from "../consensusHost/host.ts";

export interface BlockSyncOptions {
  /** Blocks per request. */
  batchBlocks: number;
  /** How long to wait before syncing a single block our engine may still decide itself. */
  graceMs: number;
}

export interface BlockSyncModules {
  chain: Chain;
  logger: Logger;
  apply(blocks: CommittedBlock[]): Promise<ApplyResult>;
  peersAhead(height: number): { id: string; headHeight: number }[];
  request(peer: string, fromHeight: number, maxBlocks: number): Promise<CommittedBlock[]>;
  penalise(peer: string, reason: string): void;
  now?(): number;
}

export interface SyncStatus {
  syncing: boolean;
  /** The highest head a peer reported. */
  highestPeerHeight: number;
  /** Blocks behind the best peer. */
  lag: number;
  blocksSynced: number;
  /** Blocks/s over the current (or last) sync run. */
  rate: number;
}

export class BlockSync {
  private readonly opts: BlockSyncOptions;
  private readonly m: BlockSyncModules;
  private readonly now: () => number;
  private running: Promise<void> | null = null;
  private stopped = false;
  private highest = 0;
  private blocksSynced = 0;
  private lastRate = 0;
  private graceTimer: NodeJS.Timeout | null = null;
  private readonly failures = new Map<string, number>();

  constructor(opts: BlockSyncOptions, modules: BlockSyncModules) {
    this.opts = opts;
    this.m = modules;
    this.now = modules.now ?? Date.now;
  }

  status(): SyncStatus {
    const head = this.m.chain.head.height;
    return {
      syncing: this.running !== null,
      highestPeerHeight: this.highest,
      lag: Math.max(0, this.highest - head),
      blocksSynced: this.blocksSynced,
      rate: this.lastRate,
    };
  }

  /** True while far enough behind that serving "latest" would mislead clients. */
  isSyncing(): boolean {
    return this.running !== null && this.highest - this.m.chain.head.height > 1;
  }

  stop(): void {
    this.stopped = true;
    if (this.graceTimer !== null) clearTimeout(this.graceTimer);
  }

  /** A peer reported its head (status frame), or sent consensus messages for a later height. */
  peerAt(headHeight: number): void {
    if (this.stopped) return;
    if (headHeight > this.highest) this.highest = headHeight;
    const head = this.m.chain.head.height;
    if (headHeight <= head || this.running !== null) return;
    if (headHeight > head + 1) {
      this.trigger();
    } else if (this.graceTimer === null) {
      this.graceTimer = setTimeout(() => {
        this.graceTimer = null;
        if (this.highest > this.m.chain.head.height) this.trigger();
      }, this.opts.graceMs);
      this.graceTimer.unref();
    }
  }

  private trigger(): void {
    if (this.running !== null || this.stopped) return;
    this.running = this.run()
      .catch((e) => this.m.logger.error({ err: (e as Error).message }, "block sync failed"))
      .finally(() => {
        this.running = null;
      });
  }

  private async run(): Promise<void> {
    const startHead = this.m.chain.head.height;
    const started = this.now();
    let lastReport = started;
    let rounds = 0;
    while (!this.stopped) {
      const head = this.m.chain.head.height;
      const candidates = this.m.peersAhead(head);
      if (candidates.length === 0) break;
      // The peer furthest ahead, skipping ones that just failed us (each gets another chance later).
      const peer = candidates.find((c) => (this.failures.get(c.id) ?? 0) <= this.now()) ?? candidates[0]!;
      const count = Math.min(this.opts.batchBlocks, peer.headHeight - head);
      let blocks: CommittedBlock[];
      try {
        blocks = await this.m.request(peer.id, head + 1, count);
      } catch (e) {
        this.failures.set(peer.id, this.now() + 2_000);
        this.m.logger.warn(
          { peer: peer.id, err: (e as Error).message },
          "sync request failed; trying another peer",
        );
        if (++rounds > 50) break;
        await new Promise((r) => setTimeout(r, 200));
        continue;
      }
      if (blocks.length === 0) {
        this.failures.set(peer.id, this.now() + 2_000);
        if (++rounds > 50) break;
        await new Promise((r) => setTimeout(r, 200));
        continue;
      }
      const result = await this.m.apply(blocks);
      this.blocksSynced += result.committed;
      if (!result.ok) {
        if (result.invalid) {
          this.m.penalise(peer.id, result.reason);
          this.m.logger.warn({ peer: peer.id, reason: result.reason }, "refused blocks from a peer");
        }
        this.failures.set(peer.id, this.now() + 2_000);
        // Not the peer's fault (we are halted or stopping): stop rather than spin.
        if (!result.invalid && result.committed === 0) break;
        if (++rounds > 50) break;
        await new Promise((r) => setTimeout(r, 200));
        continue;
      }
      rounds = 0;
      const now = this.now();
      const done = this.m.chain.head.height - startHead;
      this.lastRate = done / Math.max(0.001, (now - started) / 1000);
      if (now - lastReport >= 5_000) {
        lastReport = now;
        this.m.logger.info(
          {
            height: this.m.chain.head.height,
            target: this.highest,
            blocksPerSecond: Math.round(this.lastRate),
          },
          "syncing blocks",
        );
      }
    }
    const synced = this.m.chain.head.height - startHead;
    if (synced > 0)
      this.m.logger.info(
        {
          from: startHead,
          to: this.m.chain.head.height,
          blocks: synced,
          seconds: (this.now() - started) / 1000,
          blocksPerSecond: Math.round(this.lastRate),
        },
        "block sync finished",
      );
  }
}
