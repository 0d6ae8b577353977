import { describe, expect, it } from "vitest";
import { hashKey } from "../../src/bytes.ts";
import { verifyCertificate } from "../../src/certificate.ts";
import { sha256 } from "../../src/crypto.ts";
import { createEngine, type Engine, type EngineAction } from "../../src/engine.ts";
import { ConsensusError } from "../../src/errors.ts";
import { verifyEvidence } from "../../src/evidence.ts";
import { type ConsensusMessage, MessageType, Step } from "../../src/types.ts";
import { ValidatorSet, validatorSetChangeHeight } from "../../src/validatorSet.ts";
import {
  CHAIN_ID,
  drive,
  engineFor,
  type Fixture,
  ofType,
  ownVotes,
  proposal,
  TIMEOUTS,
  validators,
  value,
  verify,
  vote,
} from "../fixtures/validators.ts";

const P = MessageType.Prevote;
const C = MessageType.Precommit;
const V = value("block v");
const W = value("block w");

/** Validator 3 of four equal validators; at height 1 the proposer of round r is r mod 4. */
function subject(opts: { unsafeIgnoreLocks?: boolean } = {}) {
  const f = validators([10, 10, 10, 10]);
  const engine = engineFor(f, 3, opts);
  const actions: EngineAction[] = [];
  const step = (input: Parameters<Engine["step"]>[0]) => {
    const out = drive(engine, f, 3, engine.step(input));
    actions.push(...out);
    return out;
  };
  const msg = (message: ConsensusMessage) => step({ type: "message", message });
  step({ type: "startHeight", height: 1, validatorSet: f.set });
  return { f, engine, step, msg, actions };
}

/** Drives the subject to lock V in round 0 and move to round 1. */
function lockVInRound0(s: ReturnType<typeof subject>) {
  s.msg(proposal(s.f, 0, 1, 0, V));
  s.step({ type: "valueValidated", height: 1, valueHash: V.hash, valid: true });
  s.msg(vote(s.f, 0, P, 1, 0, V.hash));
  s.msg(vote(s.f, 1, P, 1, 0, V.hash));
  expect(s.engine.status()).toMatchObject({ lockedRound: 0, validRound: 0, step: Step.Precommit });
  s.msg(vote(s.f, 0, C, 1, 0, null));
  s.msg(vote(s.f, 1, C, 1, 0, null));
  s.step({ type: "timeout", height: 1, round: 0, step: Step.Precommit });
  expect(s.engine.status()?.round).toBe(1);
}

describe("engine: proposer rotation at height 1", () => {
  it("rotates round robin among equal validators", () => {
    const { set } = validators([10, 10, 10, 10]);
    expect([0, 1, 2, 3, 4, 5].map((r) => set.proposer(r))).toEqual([0, 1, 2, 3, 0, 1]);
  });
});

describe("engine: a single validator", () => {
  it("commits on its own votes", () => {
    const f = validators([1]);
    const engine = engineFor(f, 0);
    const start = drive(engine, f, 0, engine.step({ type: "startHeight", height: 1, validatorSet: f.set }));
    expect(ofType(start, "requestProposal")).toEqual([{ type: "requestProposal", height: 1, round: 0 }]);
    const out = drive(
      engine,
      f,
      0,
      engine.step({ type: "proposalValue", height: 1, round: 0, value: V.value }),
    );
    const [commit] = ofType(out, "commit");
    expect(commit?.valueHash).toEqual(V.hash);
    expect(
      verifyCertificate(commit!.certificate, { chainId: CHAIN_ID, validatorSet: f.set, verify }).ok,
    ).toBe(true);
  });
});

describe("engine: the happy path with every validator", () => {
  for (const algorithms of [undefined, ["ecdsa-p256", "ed25519", "ecdsa-p256", "ed25519"] as const]) {
    it(`four validators commit the round-0 proposal (${algorithms ? "mixed Ed25519/P-256" : "Ed25519"})`, () => {
      const f = validators([10, 20, 30, 40], algorithms ? [...algorithms] : undefined);
      const engines = f.keys.map((_, i) => engineFor(f, i));
      const inbox: { to: number; input: Parameters<Engine["step"]>[0] }[] = [];
      const commits: EngineAction[][] = engines.map(() => []);
      const run = (i: number, actions: EngineAction[]) => {
        for (const a of drive(engines[i]!, f, i, actions)) {
          if (a.type === "broadcast")
            for (let j = 0; j < 4; j++)
              if (j !== i) inbox.push({ to: j, input: { type: "message", message: a.message } });
          if (a.type === "requestProposal")
            inbox.push({
              to: i,
              input: { type: "proposalValue", height: 1, round: a.round, value: V.value },
            });
          if (a.type === "validateValue")
            inbox.push({
              to: i,
              input: { type: "valueValidated", height: 1, valueHash: a.valueHash, valid: true },
            });
          if (a.type === "commit") commits[i]!.push(a);
        }
      };
      engines.forEach((e, i) => {
        run(i, e.step({ type: "startHeight", height: 1, validatorSet: f.set }));
      });
      while (inbox.length > 0) {
        const { to, input } = inbox.shift()!;
        run(to, engines[to]!.step(input));
      }
      for (const c of commits) {
        expect(c).toHaveLength(1);
        const commit = c[0] as Extract<EngineAction, { type: "commit" }>;
        expect(commit.round).toBe(0);
        expect(commit.valueHash).toEqual(V.hash);
        const checked = verifyCertificate(commit.certificate, {
          chainId: CHAIN_ID,
          validatorSet: f.set,
          verify,
          height: 1,
        });
        expect(checked.ok).toBe(true);
      }
    });
  }
});

describe("engine: locking (the paper's L22/L28/L36)", () => {
  it("locks when it precommits and then refuses a fresh value (L22)", () => {
    const s = subject();
    lockVInRound0(s);
    s.msg(proposal(s.f, 1, 1, 1, W));
    s.step({ type: "valueValidated", height: 1, valueHash: W.hash, valid: true });
    const [prevote] = ownVotes(s.actions, P).filter((v) => v.round === 1);
    expect(prevote?.valueHash).toBeNull();
  });

  it("with the locking rule switched off (test-only option) it prevotes the fresh value", () => {
    const s = subject({ unsafeIgnoreLocks: true });
    lockVInRound0(s);
    s.msg(proposal(s.f, 1, 1, 1, W));
    s.step({ type: "valueValidated", height: 1, valueHash: W.hash, valid: true });
    const [prevote] = ownVotes(s.actions, P).filter((v) => v.round === 1);
    expect(prevote?.valueHash).toEqual(W.hash);
  });

  it("unlocks for a value with a newer proof of lock (L28: lockedRound <= polRound)", () => {
    const s = subject();
    lockVInRound0(s);
    // Two validators (more than 1/3) are already in round 2: skip there (L55).
    s.msg(vote(s.f, 0, P, 1, 2, null));
    s.msg(vote(s.f, 1, P, 1, 2, null));
    expect(s.engine.status()?.round).toBe(2);
    s.msg(proposal(s.f, 2, 1, 2, W, 1));
    s.step({ type: "valueValidated", height: 1, valueHash: W.hash, valid: true });
    expect(ownVotes(s.actions, P).filter((v) => v.round === 2)).toHaveLength(0); // no proof of lock yet
    for (const i of [0, 1, 2]) s.msg(vote(s.f, i, P, 1, 1, W.hash));
    const [prevote] = ownVotes(s.actions, P).filter((v) => v.round === 2);
    expect(prevote?.valueHash).toEqual(W.hash);
  });

  it("keeps its lock against an older proof of lock (lockedRound > polRound)", () => {
    const s = subject();
    lockVInRound0(s);
    // Round 1: W gathers a prevote quorum including us, so we relock on W at round 1 (L36).
    s.msg(proposal(s.f, 1, 1, 1, W));
    s.step({ type: "valueValidated", height: 1, valueHash: W.hash, valid: true });
    for (const i of [0, 1, 2]) s.msg(vote(s.f, i, P, 1, 1, W.hash));
    expect(s.engine.status()).toMatchObject({ lockedRound: 1, round: 1 });
    // Round 2: the proposer offers V with a proof of lock from round 0, older than our lock.
    s.msg(vote(s.f, 0, P, 1, 2, null));
    s.msg(vote(s.f, 1, P, 1, 2, null));
    s.msg(proposal(s.f, 2, 1, 2, V, 0));
    s.msg(vote(s.f, 2, P, 1, 0, V.hash));
    const [prevote] = ownVotes(s.actions, P).filter((v) => v.round === 2);
    expect(prevote?.valueHash).toBeNull();
  });

  it("as proposer, re-proposes its valid value with its valid round", () => {
    const s = subject();
    lockVInRound0(s);
    s.msg(vote(s.f, 0, P, 1, 3, null));
    s.msg(vote(s.f, 1, P, 1, 3, null));
    expect(s.engine.status()?.round).toBe(3);
    const own = ofType(s.actions, "broadcast")
      .map((a) => a.message)
      .filter((m) => m.type === MessageType.Proposal);
    expect(own).toHaveLength(1);
    expect(own[0]).toMatchObject({ round: 3, polRound: 0, valueHash: V.hash });
    expect(ofType(s.actions, "requestProposal")).toHaveLength(0);
  });
});

describe("engine: timeouts and steps", () => {
  it("prevotes nil when the proposal does not arrive in time, and timeouts grow per round", () => {
    const s = subject();
    const [t0] = ofType(s.actions, "scheduleTimeout");
    expect(t0).toMatchObject({ round: 0, step: Step.Propose, durationMs: TIMEOUTS.proposeMs });
    s.step({ type: "timeout", height: 1, round: 0, step: Step.Propose });
    expect(ownVotes(s.actions, P)[0]?.valueHash).toBeNull();
    // 2f+1 prevotes of any kind start the prevote timeout (L34); it precommits nil.
    s.msg(vote(s.f, 0, P, 1, 0, V.hash));
    s.msg(vote(s.f, 1, P, 1, 0, null));
    const prevoteTimeout = ofType(s.actions, "scheduleTimeout").find((t) => t.step === Step.Prevote);
    expect(prevoteTimeout).toMatchObject({ round: 0, durationMs: TIMEOUTS.prevoteMs });
    s.step({ type: "timeout", height: 1, round: 0, step: Step.Prevote });
    expect(ownVotes(s.actions, C)[0]?.valueHash).toBeNull();
    s.msg(vote(s.f, 0, C, 1, 0, null));
    s.msg(vote(s.f, 1, C, 1, 0, V.hash));
    s.step({ type: "timeout", height: 1, round: 0, step: Step.Precommit });
    const round1 = ofType(s.actions, "scheduleTimeout").find((t) => t.round === 1 && t.step === Step.Propose);
    expect(round1?.durationMs).toBe(TIMEOUTS.proposeMs + TIMEOUTS.proposeDeltaMs);
  });

  it("ignores stale timeouts", () => {
    const s = subject();
    const before = s.actions.length;
    expect(s.step({ type: "timeout", height: 1, round: 5, step: Step.Propose })).toEqual([]);
    expect(s.step({ type: "timeout", height: 9, round: 0, step: Step.Propose })).toEqual([]);
    expect(s.actions.length).toBe(before);
  });

  it("precommits nil on a prevote quorum for nil (L44)", () => {
    const s = subject();
    s.step({ type: "timeout", height: 1, round: 0, step: Step.Propose });
    s.msg(vote(s.f, 0, P, 1, 0, null));
    s.msg(vote(s.f, 1, P, 1, 0, null));
    expect(ownVotes(s.actions, C)[0]?.valueHash).toBeNull();
  });

  it("prevotes nil for an invalid value", () => {
    const s = subject();
    s.msg(proposal(s.f, 0, 1, 0, V));
    const [validate] = ofType(s.actions, "validateValue");
    expect(validate?.valueHash).toEqual(V.hash);
    expect(ownVotes(s.actions, P)).toHaveLength(0); // waits for the application's verdict
    s.step({ type: "valueValidated", height: 1, valueHash: V.hash, valid: false });
    expect(ownVotes(s.actions, P)[0]?.valueHash).toBeNull();
  });

  it("commits in a later round on 2f+1 precommits even while behind (L49)", () => {
    const s = subject();
    s.msg(proposal(s.f, 0, 1, 0, V));
    s.step({ type: "valueValidated", height: 1, valueHash: V.hash, valid: true });
    for (const i of [0, 1, 2]) s.msg(vote(s.f, i, C, 1, 0, V.hash));
    const [commit] = ofType(s.actions, "commit");
    expect(commit).toMatchObject({ height: 1, round: 0 });
    expect(commit?.certificate.signatures.map((x) => x.validatorIndex)).toEqual([0, 1, 2]);
  });

  it("skips to a later round only on more than 1/3 of the power (L55)", () => {
    const s = subject();
    s.msg(vote(s.f, 0, P, 1, 4, null));
    expect(s.engine.status()?.round).toBe(0);
    s.msg(vote(s.f, 1, C, 1, 6, null));
    expect(s.engine.status()?.round).toBe(4);
  });
});

describe("engine: bad input is a value, never a throw", () => {
  function rejectedCode(s: ReturnType<typeof subject>, m: ConsensusMessage): string | undefined {
    const out = s.msg(m);
    return ofType(out, "rejected")[0]?.error.code;
  }

  it("rejects bad signatures, impostor proposers, other chains, unknown validators, wrong hashes", () => {
    const s = subject();
    const good = vote(s.f, 1, P, 1, 0, V.hash);
    const badSig = { ...good, signature: good.signature.map((b, i) => (i === 0 ? b ^ 1 : b)) };
    expect(rejectedCode(s, badSig)).toBe("MESSAGE_BAD_SIGNATURE");
    expect(rejectedCode(s, { ...good, validatorIndex: 2 })).toBe("MESSAGE_BAD_SIGNATURE");
    expect(rejectedCode(s, proposal(s.f, 1, 1, 0, V))).toBe("MESSAGE_NOT_PROPOSER");
    expect(rejectedCode(s, { ...good, chainId: "other-chain" })).toBe("MESSAGE_WRONG_CHAIN");
    expect(rejectedCode(s, { ...good, validatorIndex: 9 })).toBe("MESSAGE_UNKNOWN_VALIDATOR");
    expect(rejectedCode(s, { ...proposal(s.f, 0, 1, 0, V), value: W.value })).toBe(
      "MESSAGE_VALUE_HASH_MISMATCH",
    );
    expect(s.engine.status()).toMatchObject({ round: 0, step: Step.Propose, lockedRound: -1 });
    expect(s.engine.counters.messagesRejected).toBe(6);
    expect(s.engine.counters.messagesAccepted).toBe(0);
  });

  it("survives random field values without throwing", () => {
    const s = subject();
    const base = vote(s.f, 1, P, 1, 0, V.hash);
    const weird = [Number.NaN, -1, 2 ** 40, 1.5, Number.MAX_SAFE_INTEGER, 0];
    for (const height of weird)
      for (const round of weird)
        for (const validatorIndex of weird) {
          expect(() => s.msg({ ...base, height, round, validatorIndex })).not.toThrow();
        }
    expect(s.engine.status()).toMatchObject({ height: 1, round: 0 });
  });

  it("refuses to go back in height (a host bug, so it throws a typed error)", () => {
    const s = subject();
    expect(() => s.step({ type: "startHeight", height: 1, validatorSet: s.f.set })).toThrow(ConsensusError);
  });
});

describe("engine: equivocation", () => {
  it("turns two different votes by one validator into verifiable evidence", () => {
    const s = subject();
    s.msg(vote(s.f, 1, P, 1, 0, V.hash));
    s.msg(vote(s.f, 1, P, 1, 0, V.hash)); // an identical resend is not evidence
    expect(ofType(s.actions, "evidence")).toHaveLength(0);
    s.msg(vote(s.f, 1, P, 1, 0, W.hash));
    const [e] = ofType(s.actions, "evidence");
    expect(e?.evidence.kind).toBe("duplicateVote");
    expect(verifyEvidence(e!.evidence, { chainId: CHAIN_ID, validatorSet: s.f.set, verify })).toEqual({
      ok: true,
      value: 1,
    });
  });

  it("turns two proposals for one round into evidence", () => {
    const s = subject();
    s.msg(proposal(s.f, 0, 1, 0, V));
    s.msg(proposal(s.f, 0, 1, 0, W));
    const [e] = ofType(s.actions, "evidence");
    expect(e?.evidence.kind).toBe("duplicateProposal");
    expect(verifyEvidence(e!.evidence, { chainId: CHAIN_ID, validatorSet: s.f.set, verify }).ok).toBe(true);
  });

  it("counts an equivocator's vote for each value it voted for (as the paper counts messages)", () => {
    const s = subject();
    s.msg(proposal(s.f, 0, 1, 0, V));
    s.step({ type: "valueValidated", height: 1, valueHash: V.hash, valid: true });
    s.msg(vote(s.f, 1, P, 1, 0, null)); // validator 1 first says nil to us ...
    s.msg(vote(s.f, 1, P, 1, 0, V.hash)); // ... and V to others, who relay it
    s.msg(vote(s.f, 0, P, 1, 0, V.hash));
    expect(s.engine.status()).toMatchObject({ lockedRound: 0 }); // 0, 1 and 3 prevoted V
  });
});

describe("engine: heights", () => {
  it("says what it will do with a message, for the host's WAL", () => {
    const s = subject();
    expect(s.engine.disposition(vote(s.f, 1, P, 1, 0, null))).toBe("current");
    expect(s.engine.disposition(vote(s.f, 1, P, 2, 0, null))).toBe("next");
    expect(s.engine.disposition(vote(s.f, 1, P, 3, 0, null))).toBe("dropped");
    expect(s.engine.disposition({ ...vote(s.f, 1, P, 1, 0, null), chainId: "other" })).toBe("dropped");
    s.msg(proposal(s.f, 0, 1, 0, V));
    s.step({ type: "valueValidated", height: 1, valueHash: V.hash, valid: true });
    for (const i of [0, 1, 2]) s.msg(vote(s.f, i, C, 1, 0, V.hash));
    expect(s.engine.status()?.decided).toBe(true);
    expect(s.engine.disposition(vote(s.f, 1, P, 1, 0, null))).toBe("dropped");
  });

  it("buffers messages for the next height and uses them when it starts", () => {
    const s = subject();
    s.msg(proposal(s.f, s.f.set.next().proposer(0), 2, 0, W));
    expect(ofType(s.actions, "validateValue")).toHaveLength(0);
    const out = s.step({ type: "startHeight", height: 2, validatorSet: s.f.set.next() });
    expect(ofType(out, "validateValue")[0]?.valueHash).toEqual(W.hash);
  });

  it("uses each height's own validator set: a new member counts only from its activation height", () => {
    const f = validators([10, 10, 10, 10, 10]);
    const four = ValidatorSet.create(f.set.validators.slice(0, 4));
    const five = four.withUpdates([{ ...f.set.validators[4]!, votingPower: 10 }]);
    expect(validatorSetChangeHeight(1)).toBe(3);
    const engine = engineFor(f, 0);
    engine.step({ type: "startHeight", height: 1, validatorSet: four });
    const early = engine.step({ type: "message", message: vote(f, 4, P, 1, 0, null) });
    expect(ofType(early, "rejected")[0]?.error.code).toBe("MESSAGE_UNKNOWN_VALIDATOR");
    engine.step({ type: "startHeight", height: 3, validatorSet: five });
    expect(engine.step({ type: "message", message: vote(f, 4, P, 3, 0, null) })).toEqual([]);
    expect(engine.counters.messagesAccepted).toBe(1);
  });

  it("a non-validator follows without ever asking for a signature", () => {
    const f = validators([1, 1, 1, 1]);
    const engine = createEngine(
      { chainId: CHAIN_ID, selfPublicKey: null, timeouts: TIMEOUTS },
      { verify, hashValue: sha256 },
    );
    const actions = [...engine.step({ type: "startHeight", height: 1, validatorSet: f.set })];
    actions.push(...engine.step({ type: "message", message: proposal(f, 0, 1, 0, V) }));
    actions.push(...engine.step({ type: "valueValidated", height: 1, valueHash: V.hash, valid: true }));
    for (const i of [0, 1, 2])
      actions.push(...engine.step({ type: "message", message: vote(f, i, C, 1, 0, V.hash) }));
    expect(ofType(actions, "requestSignature")).toHaveLength(0);
    expect(ofType(actions, "commit")).toHaveLength(1);
    expect(hashKey(ofType(actions, "commit")[0]!.valueHash)).toBe(hashKey(V.hash));
  });
});

export type { Fixture };
