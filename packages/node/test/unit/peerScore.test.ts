/** Per-peer rate limits and misbehaviour score, with time passed in (no clocks, no waits). */
import { describe, expect, it } from "vitest";
import { defaultPeerLimits, Offence, type PeerLimits, PeerScore } from "../../src/network/peerScore.ts";

const LIMITS: PeerLimits = {
  framesPerSecond: 10,
  bytesPerSecond: 1_000,
  disconnectScore: 100,
  decayPerSecond: 1,
  banMs: 60_000,
};
const T0 = 1_700_000_000_000;

/** How many one-byte frames are admitted at `nowMs` before the first refusal. */
function drain(score: PeerScore, nowMs: number, bytes = 1): number {
  let n = 0;
  while (score.admit(bytes, nowMs)) n++;
  return n;
}

describe("PeerScore: token bucket", () => {
  it("admits a burst of twice the frame rate, then refuses", () => {
    const s = new PeerScore(LIMITS, T0);
    expect(drain(s, T0)).toBe(20);
    expect(s.admit(1, T0)).toBe(false);
    expect(s.admit(1, T0)).toBe(false);
  });

  it("refills at the frame rate over injected time", () => {
    const s = new PeerScore(LIMITS, T0);
    drain(s, T0);
    expect(s.admit(1, T0 + 50)).toBe(false); // half a token
    expect(drain(s, T0 + 100)).toBe(1);
    expect(drain(s, T0 + 600)).toBe(5);
    expect(drain(s, T0 + 1_600)).toBe(10);
  });

  it("never holds more than the burst, however long the peer was idle", () => {
    const s = new PeerScore(LIMITS, T0);
    expect(drain(s, T0 + 3_600_000)).toBe(20);
  });

  it("does not refill when time goes backwards", () => {
    const s = new PeerScore(LIMITS, T0 + 10_000);
    drain(s, T0 + 10_000);
    expect(s.admit(1, T0)).toBe(false);
    expect(s.admit(1, T0 + 10_000)).toBe(false);
    expect(drain(s, T0 + 10_100)).toBe(1);
  });

  it("limits bytes: a burst of twice the byte rate, refilled over time", () => {
    const s = new PeerScore(LIMITS, T0);
    expect(s.admit(1_500, T0)).toBe(true);
    expect(s.admit(600, T0)).toBe(false); // 500 bytes left
    expect(s.admit(500, T0)).toBe(true);
    expect(s.admit(1, T0)).toBe(false);
    expect(s.admit(1_000, T0 + 999)).toBe(false);
    expect(s.admit(1_000, T0 + 1_000)).toBe(true);
  });

  it("a refused frame costs no tokens", () => {
    const s = new PeerScore(LIMITS, T0);
    expect(s.admit(5_000, T0)).toBe(false);
    expect(drain(s, T0, 100)).toBe(20); // frame tokens run out first: 20 x 100 = 2000 bytes
  });

  it("a frame larger than the byte burst is never admitted", () => {
    const s = new PeerScore(LIMITS, T0);
    for (let t = 0; t <= 10; t++) expect(s.admit(2 * LIMITS.bytesPerSecond + 1, T0 + t * 10_000)).toBe(false);
  });
});

describe("PeerScore: misbehaviour", () => {
  it("malformed frames cost 25: the fourth one reaches the disconnect score of 100", () => {
    expect(Offence.malformed).toBe(25);
    const s = new PeerScore(LIMITS, T0);
    expect(s.penalise("malformed", T0)).toBe(false);
    expect(s.penalise("malformed", T0)).toBe(false);
    expect(s.penalise("malformed", T0)).toBe(false);
    expect(s.value(T0)).toBe(75);
    expect(s.penalise("malformed", T0)).toBe(true);
    expect(s.value(T0)).toBe(100);
    expect(s.offences).toEqual({ malformed: 4, invalid: 0, flooding: 0, oversized: 0 });
  });

  it("the score decays over time, so spread-out mistakes do not disconnect", () => {
    const s = new PeerScore(LIMITS, T0);
    for (let i = 0; i < 3; i++) s.penalise("malformed", T0);
    expect(s.value(T0 + 10_000)).toBe(65);
    expect(s.penalise("malformed", T0 + 10_000)).toBe(false); // 90
    expect(s.value(T0 + 10_000)).toBe(90);
    expect(s.value(T0 + 100_000)).toBe(0); // never negative
    // Four malformed frames 30 s apart never add up to 100.
    const spread = new PeerScore(LIMITS, T0);
    for (let i = 0; i < 20; i++) expect(spread.penalise("malformed", T0 + i * 30_000)).toBe(false);
  });

  it("decay follows decayPerSecond", () => {
    const s = new PeerScore({ ...LIMITS, decayPerSecond: 5 }, T0);
    s.penalise("invalid", T0);
    expect(s.value(T0 + 1_000)).toBe(5);
    expect(s.value(T0 + 2_000)).toBe(0);
  });

  it("an oversized frame is immediately fatal", () => {
    const s = new PeerScore(LIMITS, T0);
    expect(s.penalise("oversized", T0)).toBe(true);
    expect(new PeerScore(defaultPeerLimits, T0).penalise("oversized", T0)).toBe(true);
  });

  it("invalid costs 10 and flooding 1; every kind counts toward the same score", () => {
    const s = new PeerScore(LIMITS, T0);
    for (let i = 0; i < 9; i++) expect(s.penalise("invalid", T0)).toBe(false);
    for (let i = 0; i < 9; i++) expect(s.penalise("flooding", T0)).toBe(false);
    expect(s.value(T0)).toBe(99);
    expect(s.penalise("flooding", T0)).toBe(true);
    expect(s.offences).toEqual({ malformed: 0, invalid: 9, flooding: 10, oversized: 0 });
  });

  it("a lower disconnect score disconnects sooner", () => {
    const s = new PeerScore({ ...LIMITS, disconnectScore: 30 }, T0);
    expect(s.penalise("malformed", T0)).toBe(false);
    expect(s.penalise("invalid", T0)).toBe(true);
  });
});
