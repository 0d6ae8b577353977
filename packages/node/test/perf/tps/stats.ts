/**
 * Pure arithmetic of the TPS report: percentiles, the steady-state window, per-second series and
 * efficiency. No I/O, so it is unit tested on its own (packages/node/test/unit/tpsReport.test.ts).
 */

/** One transaction as the load generator saw it (times in ms since the run started). */
export interface TxTiming {
  /** When the transaction was due to be sent (open loop: its slot in the schedule). */
  releasedMs: number;
  /** When the block holding it was seen committed; absent if it never was. */
  committedMs?: number;
}

export interface BlockSeen {
  height: number;
  /** ms since the run started. */
  observedMs: number;
  txs: number;
}

export interface LatencySummary {
  samples: number;
  p50: number;
  p95: number;
  p99: number;
  max: number;
}

export interface SecondPoint {
  /** Seconds since the run started (the end of the one-second bucket). */
  t: number;
  committedTxs: number;
  /** Latency of the transactions committed in this second (ms); null when none were. */
  p50Ms: number | null;
  p99Ms: number | null;
}

/** Nearest-rank percentile of an ascending array (0 for an empty one). */
export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return 0;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank - 1))]!;
}

export function summarize(latencies: readonly number[]): LatencySummary {
  const sorted = [...latencies].sort((a, b) => a - b);
  return {
    samples: sorted.length,
    p50: Math.round(percentile(sorted, 50)),
    p95: Math.round(percentile(sorted, 95)),
    p99: Math.round(percentile(sorted, 99)),
    max: Math.round(sorted.at(-1) ?? 0),
  };
}

/**
 * Steady state: transactions committed inside [fromMs, toMs), per second, and the latency of those
 * released inside it. Warm-up (connections, JIT, the first full blocks) and the drain after the
 * load stops are outside.
 */
export function steadyState(
  txs: readonly TxTiming[],
  fromMs: number,
  toMs: number,
): { seconds: number; committed: number; txPerSecond: number; latencyMs: LatencySummary } {
  const seconds = Math.max(0, toMs - fromMs) / 1000;
  let committed = 0;
  const latencies: number[] = [];
  for (const tx of txs) {
    if (tx.committedMs === undefined) continue;
    if (tx.committedMs >= fromMs && tx.committedMs < toMs) committed++;
    if (tx.releasedMs >= fromMs && tx.releasedMs < toMs) latencies.push(tx.committedMs - tx.releasedMs);
  }
  return {
    seconds,
    committed,
    txPerSecond: seconds === 0 ? 0 : committed / seconds,
    latencyMs: summarize(latencies),
  };
}

/** Committed transactions and their latency per one-second bucket, from 0 to `untilMs`. */
export function perSecond(txs: readonly TxTiming[], untilMs: number): SecondPoint[] {
  const buckets = Math.max(0, Math.ceil(untilMs / 1000));
  const latencies: number[][] = Array.from({ length: buckets }, () => []);
  for (const tx of txs) {
    if (tx.committedMs === undefined) continue;
    const b = Math.floor(tx.committedMs / 1000);
    if (b >= 0 && b < buckets) latencies[b]!.push(tx.committedMs - tx.releasedMs);
  }
  return latencies.map((l, i) => {
    const sorted = l.sort((a, b) => a - b);
    return {
      t: i + 1,
      committedTxs: sorted.length,
      p50Ms: sorted.length === 0 ? null : Math.round(percentile(sorted, 50)),
      p99Ms: sorted.length === 0 ? null : Math.round(percentile(sorted, 99)),
    };
  });
}

/** Intervals between consecutive committed blocks seen inside [fromMs, toMs), in ms. */
export function blockTimes(
  blocks: readonly BlockSeen[],
  fromMs: number,
  toMs: number,
): LatencySummary & {
  blocks: number;
  meanMs: number;
  meanTxsPerBlock: number;
} {
  const inside = blocks.filter((b) => b.observedMs >= fromMs && b.observedMs < toMs);
  const intervals: number[] = [];
  for (let i = 1; i < inside.length; i++) {
    // Blocks seen in one poll share a time: spread the interval over the heights it covered.
    const heights = inside[i]!.height - inside[i - 1]!.height;
    if (heights > 0) intervals.push((inside[i]!.observedMs - inside[i - 1]!.observedMs) / heights);
  }
  const txs = inside.reduce((a, b) => a + b.txs, 0);
  return {
    ...summarize(intervals),
    blocks: inside.length,
    meanMs: intervals.length === 0 ? 0 : Math.round(intervals.reduce((a, b) => a + b, 0) / intervals.length),
    meanTxsPerBlock: inside.length === 0 ? 0 : Math.round(txs / inside.length),
  };
}

/**
 * Efficiency against the hardware: every validator executes every transaction, so `validators`
 * processes share `cores` cores; the best a network can do is the one-core EVM ceiling times the
 * cores each validator gets (at most one: execution is single-threaded).
 */
export function efficiency(
  txPerSecond: number,
  ceilingTxPerSecond: number,
  cores: number,
  validators: number,
) {
  const bound = (ceilingTxPerSecond * Math.min(cores, validators)) / validators;
  return bound <= 0 ? 0 : txPerSecond / bound;
}
