import { describe, expect, it } from "vitest";
import { ConsensusError } from "../../src/errors.ts";
import {
  type ConsensusOptions,
  defaultConsensusOptions,
  timeoutDuration,
  validateConsensusOptions,
} from "../../src/options.ts";

const valid: ConsensusOptions = { chainId: "test-chain", ...defaultConsensusOptions };

function refusal(opts: ConsensusOptions): string {
  try {
    validateConsensusOptions(opts);
  } catch (e) {
    expect(e).toBeInstanceOf(ConsensusError);
    expect((e as ConsensusError).code).toBe("CONSENSUS_ERROR_INVALID_OPTIONS");
    return (e as Error).message;
  }
  throw new Error("accepted");
}

describe("consensus options", () => {
  it("accept the defaults", () => {
    expect(() => validateConsensusOptions(valid)).not.toThrow();
  });

  it("refuse an empty or over-long chain id", () => {
    expect(refusal({ ...valid, chainId: "" })).toMatch(/chainId must be 1 to 64 bytes/);
    expect(refusal({ ...valid, chainId: "é".repeat(33) })).toMatch(/chainId must be 1 to 64 bytes/);
  });

  it("refuse negative or non-finite timeouts, naming the one", () => {
    expect(refusal({ ...valid, timeouts: { ...valid.timeouts, prevoteMs: -1 } })).toBe(
      "timeouts.prevoteMs must be a non-negative number",
    );
    expect(refusal({ ...valid, timeouts: { ...valid.timeouts, proposeDeltaMs: Number.NaN } })).toBe(
      "timeouts.proposeDeltaMs must be a non-negative number",
    );
  });

  it("refuse memory bounds that bound nothing", () => {
    for (const maxRoundsAhead of [0, 1.5, Number.POSITIVE_INFINITY])
      expect(refusal({ ...valid, maxRoundsAhead })).toBe("maxRoundsAhead must be a positive integer");
    for (const maxNextHeightMessages of [-1, Number.NaN, Number.POSITIVE_INFINITY, 2.5])
      expect(refusal({ ...valid, maxNextHeightMessages })).toBe(
        "maxNextHeightMessages must be a non-negative integer",
      );
    expect(() => validateConsensusOptions({ ...valid, maxNextHeightMessages: 0 })).not.toThrow();
  });

  it("grow each step's timeout linearly with the round", () => {
    const t = valid.timeouts;
    expect(timeoutDuration(t, 1, 0)).toBe(t.proposeMs);
    expect(timeoutDuration(t, 2, 3)).toBe(t.prevoteMs + 3 * t.prevoteDeltaMs);
    expect(timeoutDuration(t, 3, 2)).toBe(t.precommitMs + 2 * t.precommitDeltaMs);
  });
});
