/**
 * The votes of one type in one round, counted by voting power.
 *
 * As in the paper, votes are counted per value: a validator counts at most once for each value.
 * An equivocating validator's vote for v still counts toward v (honest peers may have relayed it),
 * which quorum intersection makes safe while byzantine power stays below one third. Its first vote
 * is always kept; further conflicting votes are kept only when the caller says they are relevant
 * (nil, or a value proposed at this height), so memory stays bounded. Every conflict is reported.
 */
import { hashKey } from "./bytes.ts";
import type { Hash, VoteMessage } from "./types.ts";
import type { ValidatorSet } from "./validatorSet.ts";

export type AddVoteResult =
  | { kind: "added" }
  | { kind: "duplicate" }
  /** A second vote for another value: evidence. `counted` says whether it now counts. */
  | { kind: "conflict"; existing: VoteMessage; counted: boolean };

export class VoteSet {
  private readonly byValidator: (Map<string, VoteMessage> | undefined)[];
  private readonly powerByKey = new Map<string, number>();
  private readonly set: ValidatorSet;
  /** Power of the distinct validators that voted, whatever for. */
  totalPower = 0;
  /** The first key ("nil" or value hash hex) that more than 2/3 voted for. */
  quorumKey: string | null = null;

  constructor(set: ValidatorSet) {
    this.set = set;
    this.byValidator = new Array(set.size);
  }

  add(vote: VoteMessage, relevant: boolean, key = hashKey(vote.valueHash)): AddVoteResult {
    const mine = this.byValidator[vote.validatorIndex];
    const power = this.set.powerOf(vote.validatorIndex);
    if (mine === undefined) {
      this.byValidator[vote.validatorIndex] = new Map([[key, vote]]);
      this.totalPower += power;
      this.count(key, power);
      return { kind: "added" };
    }
    if (mine.has(key)) return { kind: "duplicate" };
    const existing = mine.values().next().value as VoteMessage;
    if (!relevant) return { kind: "conflict", existing, counted: false };
    mine.set(key, vote);
    this.count(key, power);
    return { kind: "conflict", existing, counted: true };
  }

  private count(key: string, power: number): void {
    const sum = (this.powerByKey.get(key) ?? 0) + power;
    this.powerByKey.set(key, sum);
    if (this.quorumKey === null && this.set.hasQuorum(sum)) this.quorumKey = key;
  }

  powerFor(hash: Hash | null): number {
    return this.powerByKey.get(hashKey(hash)) ?? 0;
  }

  hasQuorumFor(key: string): boolean {
    return this.set.hasQuorum(this.powerByKey.get(key) ?? 0);
  }

  hasQuorumAny(): boolean {
    return this.set.hasQuorum(this.totalPower);
  }

  /** Every kept vote (conflicting ones included), by validator index. */
  all(): VoteMessage[] {
    const out: VoteMessage[] = [];
    for (const votes of this.byValidator) if (votes !== undefined) out.push(...votes.values());
    return out;
  }

  /** Votes for one key, sorted by validator index. */
  votesFor(key: string): VoteMessage[] {
    const out: VoteMessage[] = [];
    for (const votes of this.byValidator) {
      const v = votes?.get(key);
      if (v !== undefined) out.push(v);
    }
    return out;
  }
}
