/**
 * The TPS report's arithmetic and chart (packages/node/test/perf/tps): what the published figures
 * are computed with. The benchmark itself runs in .ci/run (scripts/generate_tps_benchmark.sh).
 */
import { XMLValidator } from "fast-xml-parser";
import { describe, expect, it } from "vitest";
import {
  blockTimes,
  efficiency,
  percentile,
  perSecond,
  steadyState,
  summarize,
  type TxTiming,
} from "../perf/tps/stats.ts";
import { niceMax, renderChart } from "../perf/tps/svg.ts";

describe("TPS statistics", () => {
  it("percentiles are nearest-rank over the sorted samples", () => {
    const xs = Array.from({ length: 100 }, (_, i) => i + 1);
    expect(percentile(xs, 50)).toBe(50);
    expect(percentile(xs, 99)).toBe(99);
    expect(percentile(xs, 100)).toBe(100);
    expect(percentile([7], 99)).toBe(7);
    expect(percentile([], 50)).toBe(0);
    expect(summarize([30, 10, 20])).toEqual({ samples: 3, p50: 20, p95: 30, p99: 30, max: 30 });
  });

  it("steady state counts commits inside the window and latency of transactions released inside it", () => {
    const txs: TxTiming[] = [
      { releasedMs: 0, committedMs: 900 }, // committed in warm-up: not counted
      { releasedMs: 500, committedMs: 1500 }, // released in warm-up: throughput yes, latency no
      { releasedMs: 1200, committedMs: 1400 },
      { releasedMs: 2000, committedMs: 2600 },
      { releasedMs: 2500 }, // never committed
      { releasedMs: 2900, committedMs: 3100 }, // committed after the window: latency yes
    ];
    const s = steadyState(txs, 1000, 3000);
    expect(s.seconds).toBe(2);
    expect(s.committed).toBe(3);
    expect(s.txPerSecond).toBe(1.5);
    expect(s.latencyMs.samples).toBe(3);
    expect(s.latencyMs.p50).toBe(200);
    expect(s.latencyMs.max).toBe(600);
  });

  it("per-second series put each commit in its second, with that second's latency", () => {
    const points = perSecond(
      [
        { releasedMs: 100, committedMs: 300 },
        { releasedMs: 200, committedMs: 999 },
        { releasedMs: 1500, committedMs: 2100 },
        { releasedMs: 1600 },
      ],
      3000,
    );
    expect(points.map((p) => p.committedTxs)).toEqual([2, 0, 1]);
    expect(points[0]).toEqual({ t: 1, committedTxs: 2, p50Ms: 200, p99Ms: 799 });
    expect(points[1]!.p50Ms).toBeNull();
    expect(points[2]!.p99Ms).toBe(600);
  });

  it("block times spread a poll that saw several heights over them", () => {
    const b = blockTimes(
      [
        { height: 10, observedMs: 0, txs: 5 },
        { height: 11, observedMs: 100, txs: 5 },
        { height: 13, observedMs: 500, txs: 10 }, // two heights in one poll: 200 ms each
        { height: 14, observedMs: 5000, txs: 0 }, // outside the window
      ],
      0,
      1000,
    );
    expect(b.blocks).toBe(3);
    expect(b.samples).toBe(2);
    expect(b.p50).toBe(100);
    expect(b.max).toBe(200);
    expect(b.meanTxsPerBlock).toBe(7);
  });

  it("efficiency is against the one-core ceiling shared by the validators", () => {
    // 4 validators on 2 cores: each gets half a core, so the bound is ceiling / 2.
    expect(efficiency(400, 800, 2, 4)).toBe(1);
    expect(efficiency(100, 800, 2, 4)).toBe(0.25);
    // More cores than validators: execution is single-threaded, one core each at best.
    expect(efficiency(800, 800, 16, 4)).toBe(1);
    expect(efficiency(10, 0, 2, 4)).toBe(0);
  });
});

describe("TPS chart", () => {
  it("rounds axes to 1, 2 or 5 times a power of ten", () => {
    expect(niceMax(0)).toBe(1);
    expect(niceMax(7)).toBe(10);
    expect(niceMax(130)).toBe(200);
    expect(niceMax(1436)).toBe(2000);
    expect(niceMax(4100)).toBe(5000);
  });

  it("renders a well-formed SVG with one panel per run, escaping titles", () => {
    const points = perSecond(
      Array.from({ length: 50 }, (_, i) => ({ releasedMs: i * 100, committedMs: i * 100 + 250 })),
      6000,
    );
    const svg = renderChart("record <& batch>", "4 validators", [
      { title: "closed", points, loadEndS: 5, steadyFromS: 1 },
      { title: "open", points, loadEndS: 5, steadyFromS: 1 },
    ]);
    expect(svg).toContain("record &#60;&#38; batch&#62;");
    expect(svg.match(/font-weight="bold">(closed|open)</g)).toHaveLength(2);
    expect(svg).not.toContain("NaN");
    expect(XMLValidator.validate(svg)).toBe(true);
  });
});
