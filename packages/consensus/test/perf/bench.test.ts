import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

const BENCH = fileURLToPath(new URL("./consensus.bench.ts", import.meta.url));

describe("npm run bench:consensus", () => {
  it("writes a JSON report for n = 4, 7, 10, 16 (figures are not asserted: machines are noisy)", () => {
    const out = join(mkdtempSync(join(tmpdir(), "bench-")), "consensus_benchmark.json");
    const stdout = execFileSync(process.execPath, [BENCH, "--quick", "--out", out], {
      encoding: "utf8",
      stdio: ["ignore", "pipe", "pipe"],
    });
    expect(stdout).toContain("signature share");
    const report = JSON.parse(readFileSync(out, "utf8"));
    expect(report.results.map((r: { validators: number }) => r.validators)).toEqual([4, 7, 10, 16]);
    for (const r of report.results) {
      expect(r.heightsPerSecond).toBeGreaterThan(0);
      expect(r.signatureShare).toBeGreaterThan(0);
      expect(r.signatureShare).toBeLessThanOrEqual(1);
      // One proposal and 2n votes per height: the protocol's message count, not a timing.
      expect(r.messagesPerHeight).toBe(2 * r.validators + 1);
    }
    expect(report.environment.node).toMatch(/^v\d+/);
    expect(typeof report.goal.met).toBe("boolean");
  });
});
