/**
 * A scenario is everything a seed decides before the run: voting powers, who is byzantine and how,
 * the network's fault profile, partitions and crashes. All of it comes from the seed.
 */
import type { TimeoutOptions } from "../src/options.ts";
import { Prng } from "./prng.ts";

export type ByzantineBehaviour =
  | "silent"
  | "equivocate"
  | "badSignature"
  | "replay"
  | "garbage"
  | "invalidValue"
  | "lieInSync"
  /** As proposer, forget the valid value and propose a fresh one (an attack on locks). */
  | "amnesia"
  /** Send precommits to a random subset only, so that some honest validators commit and others do not. */
  | "selectivePrecommit"
  /**
   * The coordinated attack on locks: honest validators are split into groups A, B and C per height;
   * colluders send their proposal and prevotes to A and B only and their precommits to A only, so
   * that A commits while B and C move on. Only the locking rule keeps B from then accepting a
   * different value (add "amnesia" to propose one).
   */
  | "lockAttack";

export const BYZANTINE_BEHAVIOURS: readonly ByzantineBehaviour[] = [
  "silent",
  "equivocate",
  "badSignature",
  "replay",
  "garbage",
  "invalidValue",
  "lieInSync",
  "amnesia",
  "selectivePrecommit",
  "lockAttack",
];

export interface Partition {
  at: number;
  until: number;
  /** side[i] is the group of validator i; messages cross groups only when healed. */
  side: number[];
}

export interface Crash {
  node: number;
  at: number;
  until: number;
}

export interface Scenario {
  seed: number;
  validators: number;
  powers: number[];
  byzantine: Map<number, ByzantineBehaviour[]>;
  lossRate: number;
  duplicateRate: number;
  minDelayMs: number;
  maxDelayMs: number;
  /** Chance that a message takes the slow path (up to slowDelayMs): reordering and stragglers. */
  slowRate: number;
  slowDelayMs: number;
  partitions: Partition[];
  crashes: Crash[];
  /** End of the fault phase: partitions heal, crashed nodes restart, loss stops. */
  healAt: number;
  /** After healing, every honest validator must commit this many more heights ... */
  livenessHeights: number;
  /** ... within this many milliseconds of logical time. */
  livenessBudgetMs: number;
  commitIntervalMs: number;
  timeouts: TimeoutOptions;
}

export interface ScenarioRequest {
  seed: number;
  validators: number;
  byzantine: number;
  /** Restrict byzantine validators to these behaviours (all of them, every run). */
  behaviours?: readonly ByzantineBehaviour[];
}

export function maxByzantine(n: number): number {
  return Math.floor((n - 1) / 3);
}

export function generateScenario(req: ScenarioRequest): Scenario {
  const { seed, validators: n } = req;
  if (!Number.isInteger(n) || n < 1) throw new RangeError("validators must be a positive integer");
  if (req.byzantine < 0 || req.byzantine > maxByzantine(n)) {
    throw new RangeError(`at most ${maxByzantine(n)} byzantine validators for n=${n} (n >= 3f + 1)`);
  }
  const prng = new Prng(seed);
  const equal = prng.chance(0.5);
  const powers = Array.from({ length: n }, () => (equal ? 10 : prng.range(1, 10)));

  // Byzantine validators: random, then moved to the weakest if they would hold 1/3 of the power.
  const total = () => powers.reduce((a, b) => a + b, 0);
  let chosen = prng.shuffle([...Array(n).keys()]).slice(0, req.byzantine);
  const power = (ids: number[]) => ids.reduce((s, i) => s + powers[i]!, 0);
  if (power(chosen) * 3 >= total()) {
    chosen = [...Array(n).keys()].sort((a, b) => powers[a]! - powers[b]! || a - b).slice(0, req.byzantine);
    while (power(chosen) * 3 >= total()) for (const i of chosen) powers[i] = 1;
  }
  const byzantine = new Map<number, ByzantineBehaviour[]>();
  for (const i of chosen) {
    const count = prng.range(1, 3);
    const drawn = prng.shuffle([...BYZANTINE_BEHAVIOURS]).slice(0, count);
    byzantine.set(i, req.behaviours ? [...req.behaviours] : drawn);
  }

  const healAt = prng.range(2000, 8000);
  const partitions: Partition[] = [];
  for (let k = prng.int(3); k > 0; k--) {
    const at = prng.int(healAt);
    const side = Array.from({ length: n }, () => prng.int(2));
    partitions.push({ at, until: Math.min(healAt, at + prng.range(300, 4000)), side });
  }
  const honest = [...Array(n).keys()].filter((i) => !byzantine.has(i));
  const crashes: Crash[] = [];
  for (let k = prng.int(4); k > 0 && honest.length > 0; k--) {
    const at = prng.int(healAt);
    crashes.push({ node: prng.pick(honest), at, until: Math.min(healAt, at + prng.range(50, 3000)) });
  }
  return {
    seed,
    validators: n,
    powers,
    byzantine,
    lossRate: prng.pick([0, 0.02, 0.1, 0.25]),
    duplicateRate: prng.pick([0, 0.05, 0.2]),
    minDelayMs: prng.range(1, 5),
    maxDelayMs: prng.range(5, 60),
    slowRate: prng.pick([0, 0.05, 0.2]),
    slowDelayMs: prng.range(100, 1500),
    partitions,
    crashes,
    healAt,
    livenessHeights: 3,
    livenessBudgetMs: 60_000,
    commitIntervalMs: prng.range(20, 200),
    timeouts: {
      proposeMs: 300,
      proposeDeltaMs: 100,
      prevoteMs: 150,
      prevoteDeltaMs: 100,
      precommitMs: 150,
      precommitDeltaMs: 100,
    },
  };
}
