/**
 * One simulated run: n real engines on a seeded network with faults, checked after every event.
 *
 * Safety phase (until `healAt`): loss, duplication, reordering, partitions, crashes, byzantine
 * validators. Checkers: agreement, validity, no honest double-sign, every certificate verifies,
 * evidence only ever names byzantine validators.
 * Liveness phase: partitions heal, crashed validators restart, loss stops (delays stay bounded,
 * byzantine validators keep misbehaving); every honest validator must then commit
 * `livenessHeights` more heights within `livenessBudgetMs` of logical time.
 */
import { createHash } from "node:crypto";
import { toHex } from "../src/bytes.ts";
import { verifyCertificate } from "../src/certificate.ts";
import { sha256 } from "../src/crypto.ts";
import { decodeMessage } from "../src/encoding.ts";
import { MessageType } from "../src/types.ts";
import { ValidatorSet } from "../src/validatorSet.ts";
import { createSimCrypto, type SimCryptoName } from "./crypto.ts";
import { EventQueue } from "./eventQueue.ts";
import { type HostEnvironment, type HostObserver, type Packet, SimHost } from "./host.ts";
import { Prng } from "./prng.ts";
import { type ByzantineBehaviour, generateScenario, type Scenario } from "./scenario.ts";
import { isValidValue } from "./value.ts";

export const SIM_CHAIN_ID = "vitalstream-sim";

export interface SimulationConfig {
  seed: number;
  validators: number;
  byzantine: number;
  crypto?: SimCryptoName;
  /** Restrict byzantine validators to these behaviours. */
  behaviours?: readonly ByzantineBehaviour[];
  /** TEST ONLY: run every engine with the locking rule switched off. */
  unsafeIgnoreLocks?: boolean;
  /** Adjust the generated scenario (tests that need a particular shape). */
  tweak?: (scenario: Scenario) => void;
}

export type ViolationKind =
  | "agreement"
  | "validity"
  | "double-sign"
  | "guard-refusal"
  | "certificate"
  | "evidence"
  | "liveness";

export interface Violation {
  kind: ViolationKind;
  detail: string;
  atMs: number;
}

export interface SimulationStats {
  heights: number;
  maxCommitRound: number;
  messagesSent: number;
  messagesPerHeight: number;
  evidence: number;
  commitsViaSync: number;
  livenessMs: number | null;
  events: number;
  endMs: number;
}

export interface SimulationResult {
  config: Omit<SimulationConfig, "tweak">;
  ok: boolean;
  violations: Violation[];
  stats: SimulationStats;
  /** SHA-256 over every commit and violation in order: equal digests mean an identical run. */
  traceDigest: string;
}

export function replayCommand(config: Omit<SimulationConfig, "tweak">): string {
  const parts = [
    `npm run sim -- --validators ${config.validators} --byzantine ${config.byzantine} --seed ${config.seed}`,
  ];
  if (config.crypto && config.crypto !== "hmac") parts.push(`--crypto ${config.crypto}`);
  if (config.behaviours) parts.push(`--behaviours ${config.behaviours.join(",")}`);
  if (config.unsafeIgnoreLocks) parts.push("--unsafe-ignore-locks");
  return parts.join(" ");
}

export function runSimulation(config: SimulationConfig): SimulationResult {
  const scenario = generateScenario(config);
  config.tweak?.(scenario);
  const prng = new Prng(scenario.seed ^ 0x5eed);
  const netPrng = prng.fork();
  const crypto = createSimCrypto(config.crypto ?? "hmac");
  const keys = scenario.powers.map(() => crypto.createKey(prng));
  const genesis = ValidatorSet.create(
    keys.map((k, i) => ({
      publicKey: k.publicKey,
      algorithm: k.algorithm,
      votingPower: scenario.powers[i]!,
    })),
  );
  const sets: ValidatorSet[] = [genesis];
  const validatorSetAt = (height: number): ValidatorSet => {
    while (sets.length < height) sets.push(sets[sets.length - 1]!.next());
    return sets[height - 1]!;
  };

  const queue = new EventQueue();
  let now = 0;
  const violations: Violation[] = [];
  const trace = createHash("sha256");
  const decided = new Map<number, string>();
  const signedBy = new Map<string, string>();
  const stats: SimulationStats = {
    heights: 0,
    maxCommitRound: 0,
    messagesSent: 0,
    messagesPerHeight: 0,
    evidence: 0,
    commitsViaSync: 0,
    livenessMs: null,
    events: 0,
    endMs: 0,
  };
  const violate = (kind: ViolationKind, detail: string) => {
    violations.push({ kind, detail, atMs: now });
    trace.update(`violation ${kind} ${detail} ${now}\n`);
  };

  const observer: HostObserver = {
    signed(host, m, bytes) {
      const slot = `${host.index}/${m.height}/${m.round}/${m.type}`;
      const hex = toHex(bytes);
      const previous = signedBy.get(slot);
      if (previous !== undefined && previous !== hex)
        violate("double-sign", `validator ${host.index} signed two messages for ${slot}`);
      signedBy.set(slot, hex);
    },
    guardRefused(host, detail) {
      violate(
        "guard-refusal",
        `engine of validator ${host.index} asked to sign a conflicting message: ${detail}`,
      );
    },
    committed(host, height, value, certificate, via) {
      const hash = toHex(sha256(value));
      trace.update(`commit ${host.index} ${height} ${hash} ${certificate.round} ${via} ${now}\n`);
      if (via === "sync") stats.commitsViaSync++;
      stats.heights = Math.max(stats.heights, height);
      stats.maxCommitRound = Math.max(stats.maxCommitRound, certificate.round);
      const cert = verifyCertificate(certificate, {
        chainId: SIM_CHAIN_ID,
        validatorSet: validatorSetAt(height),
        verify: crypto.verify,
        height,
        valueHash: sha256(value),
      });
      if (!cert.ok) violate("certificate", `validator ${host.index} height ${height}: ${cert.error.detail}`);
      if (!isValidValue(value, height))
        violate("validity", `validator ${host.index} committed an invalid value at height ${height}`);
      const first = decided.get(height);
      if (first === undefined) decided.set(height, hash);
      else if (first !== hash)
        violate(
          "agreement",
          `validator ${host.index} committed ${hash.slice(0, 12)} at height ${height}, another honest validator ${first.slice(0, 12)}`,
        );
    },
    evidence(host, accused, detail) {
      stats.evidence++;
      if (accused === null)
        violate("evidence", `validator ${host.index} produced evidence that does not verify: ${detail}`);
      else if (!scenario.byzantine.has(accused))
        violate("evidence", `validator ${host.index} accused honest validator ${accused}`);
    },
    sent(count) {
      stats.messagesSent += count;
    },
  };

  const partitioned = (a: number, b: number): boolean =>
    scenario.partitions.some((p) => now >= p.at && now < p.until && p.side[a] !== p.side[b]);

  const hosts: SimHost[] = [];
  const lockAttack = [...scenario.byzantine.values()].some((b) => b.includes("lockAttack"));
  const honestIds = scenario.powers.map((_, i) => i).filter((i) => !scenario.byzantine.has(i));
  const plans = new Map<number, { a: Set<number>; b: Set<number>; c: Set<number> }>();
  const env: HostEnvironment = {
    chainId: SIM_CHAIN_ID,
    now: () => now,
    faultPhase: () => now < scenario.healAt,
    schedule: (delay, run) => queue.push(now + Math.max(0, delay), run),
    send(from, to, packet: Packet) {
      if (partitioned(from, to)) return;
      const faulty = now < scenario.healAt;
      // Before the network heals the adversary controls timing (the asynchronous period of the
      // BFT model): colluding with a lockAttack, it holds back group A's messages to B and C.
      let adversaryDelay = 0;
      if (faulty && lockAttack) {
        // The height the receiver is deciding is under attack: A's precommits for it, anything A
        // says about later heights, and A's sync answers are held back from B and C until healing.
        const h = hosts[to]!.currentHeight;
        const plan = env.attackPlan(h);
        if (plan.a.has(from) && !plan.a.has(to)) {
          let hold = packet.kind === "syncResponse";
          if (packet.kind === "consensus") {
            const m = decodeMessage(packet.bytes);
            hold =
              m.ok &&
              (m.value.height > h || (m.value.height === h && m.value.type === MessageType.Precommit));
          }
          if (hold) adversaryDelay = scenario.healAt - now;
        }
      }
      if (faulty && netPrng.chance(scenario.lossRate)) return;
      const copies = netPrng.chance(scenario.duplicateRate) ? 2 : 1;
      for (let c = 0; c < copies; c++) {
        let delay = scenario.minDelayMs + netPrng.next() * (scenario.maxDelayMs - scenario.minDelayMs);
        if (netPrng.chance(scenario.slowRate)) delay += netPrng.next() * scenario.slowDelayMs;
        queue.push(now + delay + adversaryDelay, () => hosts[to]!.receive(from, packet));
      }
    },
    validatorSetAt,
    attackPlan(height) {
      let plan = plans.get(height);
      if (plan === undefined) {
        // Derived from the seed and the height only: every colluder computes the same split.
        const p = new Prng((scenario.seed * 2654435761 + height) >>> 0);
        const ids = p.shuffle(honestIds.slice());
        const aSize = Math.max(1, Math.floor(ids.length / 3));
        const bSize = Math.max(0, Math.ceil((2 * ids.length) / 3) - aSize);
        plan = {
          a: new Set(ids.slice(0, aSize)),
          b: new Set(ids.slice(aSize, aSize + bSize)),
          c: new Set(ids.slice(aSize + bSize)),
        };
        if (plans.size > 10_000) plans.clear();
        plans.set(height, plan);
      }
      return plan;
    },
    hashValue: sha256,
    verify: crypto.verify,
    engineOptions: {
      chainId: SIM_CHAIN_ID,
      timeouts: scenario.timeouts,
      unsafeIgnoreLocks: config.unsafeIgnoreLocks ?? false,
    },
    commitIntervalMs: scenario.commitIntervalMs,
    observer,
  };
  keys.forEach((key, i) => {
    hosts.push(new SimHost(i, key, scenario.byzantine.get(i) ?? [], env, prng.fork()));
  });
  const honest = hosts.filter((h) => !h.byzantine);

  for (const c of scenario.crashes) {
    queue.push(c.at, () => hosts[c.node]!.crash());
    queue.push(c.until, () => hosts[c.node]!.restart());
  }
  let target = Number.POSITIVE_INFINITY;
  queue.push(scenario.healAt, () => {
    for (const h of hosts) h.restart();
    target = Math.max(...honest.map((h) => h.committedHeight)) + scenario.livenessHeights;
  });
  for (const h of hosts) queue.push(0, () => h.start());

  const deadline = scenario.healAt + scenario.livenessBudgetMs;
  for (;;) {
    const event = queue.pop();
    if (event === undefined) break;
    if (event.at > deadline) {
      now = deadline;
      break;
    }
    now = event.at;
    stats.events++;
    event.run();
    if (violations.length > 0) break;
    if (now >= scenario.healAt && honest.every((h) => h.committedHeight >= target)) {
      stats.livenessMs = now - scenario.healAt;
      break;
    }
  }
  stats.endMs = now;
  if (violations.length === 0 && stats.livenessMs === null) {
    const lagging = honest
      .filter((h) => h.committedHeight < target)
      .map((h) => `${h.index}@${h.committedHeight}`);
    violate(
      "liveness",
      `honest validators ${lagging.join(", ")} did not reach height ${target} within ${scenario.livenessBudgetMs} ms after healing`,
    );
  }
  stats.messagesPerHeight = stats.heights > 0 ? Math.round(stats.messagesSent / stats.heights) : 0;
  const { tweak: _tweak, ...plain } = config;
  return { config: plain, ok: violations.length === 0, violations, stats, traceDigest: trace.digest("hex") };
}
