/**
 * A validator set: quorum math and deterministic weighted round-robin proposer selection
 * (the proposer-priority algorithm of CometBFT: every round each validator's priority grows by its
 * power, the highest becomes proposer and pays the total power back).
 *
 * A set is immutable. `proposer(round)` is the proposer of a round at the set's height;
 * `next()` is the set for the following height (priorities advanced by one). When the membership
 * changes, the node builds the new set with `withUpdates`; see docs/consensus.md for when changes
 * take effect (a change committed in block H applies from height H + 2).
 */
import { toHex } from "./bytes.ts";
import { ConsensusError } from "./errors.ts";
import type { SignatureAlgorithm, Validator } from "./types.ts";

/**
 * A validator-set change committed in block H governs consensus from height
 * H + VALIDATOR_SET_CHANGE_DELAY. Height H + 1 is already under way with the old set (its
 * proposer was chosen and votes may be in flight) when H's transactions execute, so the change
 * waits one more height, as in CometBFT.
 */
export const VALIDATOR_SET_CHANGE_DELAY = 2;

export function validatorSetChangeHeight(committedAt: number): number {
  return committedAt + VALIDATOR_SET_CHANGE_DELAY;
}

/** Keeps priority arithmetic far below 2^53. */
export const MAX_TOTAL_VOTING_POWER = 2 ** 40;
const PRIORITY_WINDOW_FACTOR = 2;

const KEY_LENGTH: Record<SignatureAlgorithm, number> = { ed25519: 32, "ecdsa-p256": 65 };

export interface ValidatorUpdate {
  publicKey: Uint8Array;
  algorithm: SignatureAlgorithm;
  /** 0 removes the validator. */
  votingPower: number;
}

export class ValidatorSet {
  readonly validators: readonly Validator[];
  readonly totalPower: number;
  /** Base priorities at this height; round r's proposer is chosen by r + 1 increments from here. */
  readonly priorities: readonly number[];
  private readonly byKey: Map<string, number>;
  private readonly proposerCache = new Map<number, number>();

  private constructor(validators: readonly Validator[], priorities: readonly number[]) {
    this.validators = validators;
    this.priorities = priorities;
    this.totalPower = validators.reduce((sum, v) => sum + v.votingPower, 0);
    this.byKey = new Map(validators.map((v, i) => [toHex(v.publicKey), i]));
  }

  /** A new set (genesis): validators in the given order, all priorities zero. */
  static create(validators: readonly Validator[]): ValidatorSet {
    checkValidators(validators);
    const copy = validators.map((v) => ({ ...v, publicKey: Uint8Array.from(v.publicKey) }));
    return new ValidatorSet(
      copy,
      copy.map(() => 0),
    );
  }

  /** Restores a set with known priorities (from storage). */
  static restore(validators: readonly Validator[], priorities: readonly number[]): ValidatorSet {
    checkValidators(validators);
    if (priorities.length !== validators.length || !priorities.every(Number.isSafeInteger)) {
      throw new ConsensusError("CONSENSUS_ERROR_INVALID_VALIDATOR_SET", "priorities do not match validators");
    }
    return new ValidatorSet(validators, priorities);
  }

  get size(): number {
    return this.validators.length;
  }

  indexOf(publicKey: Uint8Array): number {
    return this.byKey.get(toHex(publicKey)) ?? -1;
  }

  powerOf(index: number): number {
    return this.validators[index]?.votingPower ?? 0;
  }

  /** More than two thirds of the total voting power. */
  hasQuorum(power: number): boolean {
    return power * 3 > this.totalPower * 2;
  }

  /** More than one third: at least one honest validator is among them. */
  hasOneThird(power: number): boolean {
    return power * 3 > this.totalPower;
  }

  /** The smallest power that is a quorum. */
  get quorumPower(): number {
    return Math.floor((this.totalPower * 2) / 3) + 1;
  }

  proposer(round: number): number {
    const cached = this.proposerCache.get(round);
    if (cached !== undefined) return cached;
    const { proposer: index } = incrementPriorities(this.validators, this.priorities, round + 1);
    if (this.proposerCache.size < 1024) this.proposerCache.set(round, index);
    return index;
  }

  /** The set for the next height: same members, priorities advanced by one. */
  next(): ValidatorSet {
    return new ValidatorSet(
      this.validators,
      incrementPriorities(this.validators, this.priorities, 1).priorities,
    );
  }

  /**
   * Applies membership changes. New validators start at a priority of -1.125 x total power (as in
   * CometBFT) so that joining does not make them the immediate proposer.
   */
  withUpdates(updates: readonly ValidatorUpdate[]): ValidatorSet {
    const members = this.validators.map((v, i) => ({ v, p: this.priorities[i]! }));
    for (const u of updates) {
      const key = toHex(u.publicKey);
      const at = members.findIndex((m) => toHex(m.v.publicKey) === key);
      if (u.votingPower === 0) {
        if (at >= 0) members.splice(at, 1);
        continue;
      }
      const v = {
        publicKey: Uint8Array.from(u.publicKey),
        algorithm: u.algorithm,
        votingPower: u.votingPower,
      };
      if (at >= 0) members[at] = { v, p: members[at]!.p };
      else members.push({ v, p: Number.NaN });
    }
    const validators = members.map((m) => m.v);
    checkValidators(validators);
    const total = validators.reduce((s, v) => s + v.votingPower, 0);
    const start = -Math.floor((total * 9) / 8);
    const priorities = members.map((m) => (Number.isNaN(m.p) ? start : m.p));
    return new ValidatorSet(validators, centre(rescale(priorities, total)));
  }
}

function checkValidators(validators: readonly Validator[]): void {
  const fail = (message: string): never => {
    throw new ConsensusError("CONSENSUS_ERROR_INVALID_VALIDATOR_SET", message);
  };
  if (validators.length === 0) fail("a validator set needs at least one validator");
  const seen = new Set<string>();
  let total = 0;
  validators.forEach((v, i) => {
    if (v.algorithm !== "ed25519" && v.algorithm !== "ecdsa-p256") fail(`validator ${i}: unknown algorithm`);
    if (v.publicKey.length !== KEY_LENGTH[v.algorithm])
      fail(`validator ${i}: public key has the wrong length`);
    if (!Number.isSafeInteger(v.votingPower) || v.votingPower <= 0)
      fail(`validator ${i}: voting power must be a positive integer`);
    const key = toHex(v.publicKey);
    if (seen.has(key)) fail(`validator ${i}: duplicate public key`);
    seen.add(key);
    total += v.votingPower;
  });
  if (total > MAX_TOTAL_VOTING_POWER) fail(`total voting power exceeds ${MAX_TOTAL_VOTING_POWER}`);
}

function maxPriorityIndex(priorities: readonly number[]): number {
  let best = 0;
  for (let i = 1; i < priorities.length; i++) if (priorities[i]! > priorities[best]!) best = i;
  return best;
}

/** Keeps the spread of priorities within 2 x total power (bounded arithmetic, fair rotation). */
function rescale(priorities: number[], total: number): number[] {
  const max = Math.max(...priorities);
  const min = Math.min(...priorities);
  const diff = max - min;
  const limit = PRIORITY_WINDOW_FACTOR * total;
  if (diff <= limit) return priorities;
  const ratio = Math.ceil(diff / limit);
  return priorities.map((p) => Math.trunc(p / ratio));
}

function centre(priorities: number[]): number[] {
  const avg = Math.trunc(priorities.reduce((s, p) => s + p, 0) / priorities.length);
  return priorities.map((p) => p - avg);
}

/** Runs `times` proposer elections; returns the new priorities and the last one elected. */
function incrementPriorities(
  validators: readonly Validator[],
  start: readonly number[],
  times: number,
): { priorities: number[]; proposer: number } {
  const total = validators.reduce((s, v) => s + v.votingPower, 0);
  const p = centre(rescale([...start], total));
  let proposer = 0;
  for (let t = 0; t < times; t++) {
    for (let i = 0; i < p.length; i++) p[i] = p[i]! + validators[i]!.votingPower;
    proposer = maxPriorityIndex(p);
    p[proposer] = p[proposer]! - total;
  }
  return { priorities: p, proposer };
}
