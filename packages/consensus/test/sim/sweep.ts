/** Shared by the per-size sweep files (one file each so vitest runs them in parallel). */
import { expect, it } from "vitest";
import { replayCommand, runSimulation } from "../../sim/simulation.ts";

export function sweep(validators: number, byzantine: number, seeds: number): void {
  it(`n=${validators}, byzantine=${byzantine}: ${seeds} seeds keep agreement, validity and liveness`, () => {
    const failures: string[] = [];
    let heights = 0;
    let evidence = 0;
    for (let seed = 1; seed <= seeds; seed++) {
      const r = runSimulation({ seed, validators, byzantine });
      heights += r.stats.heights;
      evidence += r.stats.evidence;
      if (!r.ok)
        failures.push(
          `${r.violations[0]!.kind}: ${r.violations[0]!.detail}\n  replay: ${replayCommand(r.config)}`,
        );
    }
    expect(failures, failures.join("\n")).toEqual([]);
    // The runs did real work: heights were committed, and byzantine runs produced evidence.
    expect(heights / seeds).toBeGreaterThan(3);
    if (byzantine > 0) expect(evidence).toBeGreaterThan(0);
  });
}
