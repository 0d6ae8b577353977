import { describe, expect, it } from "vitest";
import { ConsensusError } from "../../src/errors.ts";
import { MAX_TOTAL_VOTING_POWER, ValidatorSet } from "../../src/validatorSet.ts";
import { ed25519Key, p256Key, validators } from "../fixtures/validators.ts";

function counts(set: ValidatorSet, heights: number): number[] {
  const out = new Array(set.size).fill(0);
  let s = set;
  for (let h = 0; h < heights; h++) {
    out[s.proposer(0)]++;
    s = s.next();
  }
  return out;
}

describe("quorum math", () => {
  it.each([
    [1, 1, 1],
    [3, 3, 2],
    [4, 3, 2],
    [7, 5, 3],
    [10, 7, 4],
    [100, 67, 34],
  ])("total %i: quorum is %i, more than a third is %i", (total, quorum, third) => {
    const { set } = validators(Array(total).fill(1));
    expect(set.quorumPower).toBe(quorum);
    expect(set.hasQuorum(quorum)).toBe(true);
    expect(set.hasQuorum(quorum - 1)).toBe(false);
    expect(set.hasOneThird(third)).toBe(true);
    expect(set.hasOneThird(third - 1)).toBe(false);
  });

  it("weighs by voting power, not by head count", () => {
    const { set } = validators([70, 10, 10, 10]);
    expect(set.hasQuorum(70)).toBe(true); // 70 of 100
    expect(set.hasQuorum(30)).toBe(false);
    expect(set.hasOneThird(30)).toBe(false);
  });
});

describe("weighted round-robin proposer", () => {
  it("chooses each validator in proportion to its power", () => {
    const { set } = validators([1, 2, 3, 4]);
    expect(counts(set, 1000)).toEqual([100, 200, 300, 400]);
  });

  it("is plain round robin for equal power, and interleaves rather than bunches", () => {
    const { set } = validators([5, 5, 5]);
    expect(counts(set, 9)).toEqual([3, 3, 3]);
    const heavy = validators([3, 1]).set;
    const order: number[] = [];
    let s = heavy;
    for (let h = 0; h < 8; h++) {
      order.push(s.proposer(0));
      s = s.next();
    }
    expect(order.filter((i) => i === 1)).toHaveLength(2);
    expect(order.join("")).not.toMatch(/11/);
  });

  it("rotates across rounds of one height as across heights", () => {
    const { set } = validators([1, 2, 3, 4]);
    const rounds = Array.from({ length: 20 }, (_, r) => set.proposer(r));
    const heights: number[] = [];
    let s = set;
    for (let h = 0; h < 20; h++) {
      heights.push(s.proposer(0));
      s = s.next();
    }
    expect(rounds).toEqual(heights);
  });

  it("is a pure function of the set (same answer from a restored copy)", () => {
    const { set } = validators([3, 1, 4, 1, 5]);
    const later = set.next().next().next();
    const restored = ValidatorSet.restore(later.validators, later.priorities);
    expect([0, 1, 2, 3, 4, 5].map((r) => restored.proposer(r))).toEqual(
      [0, 1, 2, 3, 4, 5].map((r) => later.proposer(r)),
    );
  });

  it("a joining validator does not propose at once", () => {
    const { set } = validators([10, 10, 10]);
    const joiner = ed25519Key("joiner");
    const grown = set.withUpdates([{ publicKey: joiner.publicKey, algorithm: "ed25519", votingPower: 10 }]);
    expect(grown.size).toBe(4);
    expect(grown.proposer(0)).not.toBe(3);
    // It starts behind (priority -1.125 x total) and then gets its fair share.
    for (const c of counts(grown, 400)) expect(Math.abs(c - 100)).toBeLessThanOrEqual(1);
    const shrunk = grown.withUpdates([{ publicKey: joiner.publicKey, algorithm: "ed25519", votingPower: 0 }]);
    expect(shrunk.size).toBe(3);
  });
});

describe("validation of a set", () => {
  const k = ed25519Key("a");
  it.each([
    ["empty", []],
    ["zero power", [{ publicKey: k.publicKey, algorithm: "ed25519", votingPower: 0 }]],
    ["fractional power", [{ publicKey: k.publicKey, algorithm: "ed25519", votingPower: 1.5 }]],
    ["short key", [{ publicKey: new Uint8Array(31), algorithm: "ed25519", votingPower: 1 }]],
    ["P-256 key of Ed25519 length", [{ publicKey: k.publicKey, algorithm: "ecdsa-p256", votingPower: 1 }]],
    [
      "duplicate key",
      [
        { publicKey: k.publicKey, algorithm: "ed25519", votingPower: 1 },
        { publicKey: k.publicKey, algorithm: "ed25519", votingPower: 1 },
      ],
    ],
    [
      "too much power",
      [{ publicKey: k.publicKey, algorithm: "ed25519", votingPower: MAX_TOTAL_VOTING_POWER + 1 }],
    ],
  ])("refuses %s with a typed error", (_name, vals) => {
    expect(() => ValidatorSet.create(vals as never)).toThrow(ConsensusError);
  });

  it("accepts mixed Ed25519 and P-256 validators and finds them by key", () => {
    const a = ed25519Key("a");
    const b = p256Key();
    const set = ValidatorSet.create([
      { publicKey: a.publicKey, algorithm: "ed25519", votingPower: 1 },
      { publicKey: b.publicKey, algorithm: "ecdsa-p256", votingPower: 2 },
    ]);
    expect(set.indexOf(b.publicKey)).toBe(1);
    expect(set.indexOf(new Uint8Array(32))).toBe(-1);
    expect(set.totalPower).toBe(3);
  });
});
