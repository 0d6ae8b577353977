/**
 * The BFT engine: the Tendermint algorithm (Buchman, Kwon, Milosevic, "The latest gossip on BFT
 * consensus", arXiv:1807.04938, Algorithm 1) as a pure, synchronous state machine.
 *
 * `step(input)` returns the actions the host must carry out. The engine owns no timers, sockets,
 * disks, clocks, randomness or keys: time arrives as `timeout` inputs, its own signed messages come
 * back as `message` inputs exactly like a peer's, and signature checks and value hashing are
 * injected pure functions. Given the same inputs it produces the same actions, which is what makes
 * WAL replay and the seeded simulator possible.
 *
 * Line numbers in comments (L22, L36, ...) refer to Algorithm 1 of the paper.
 */
import { hashKey, toHex } from "./bytes.ts";
import { buildCertificate } from "./certificate.ts";
import { signBytes } from "./encoding.ts";
import { ConsensusError, type MessageError, messageError } from "./errors.ts";
import { duplicateProposalEvidence, duplicateVoteEvidence } from "./evidence.ts";
import {
  type ConsensusOptions,
  defaultConsensusOptions,
  timeoutDuration,
  validateConsensusOptions,
} from "./options.ts";
import {
  type CommitCertificate,
  type ConsensusMessage,
  type Evidence,
  type Hash,
  type HashFn,
  MessageType,
  type ProposalMessage,
  Step,
  type UnsignedMessage,
  type VerifyFn,
  type VoteMessage,
  type VoteType,
} from "./types.ts";
import type { ValidatorSet } from "./validatorSet.ts";
import { VoteSet } from "./voteSet.ts";

export type EngineInput =
  | { type: "startHeight"; height: number; validatorSet: ValidatorSet }
  | { type: "message"; message: ConsensusMessage }
  | { type: "timeout"; height: number; round: number; step: Step }
  | { type: "proposalValue"; height: number; round: number; value: Uint8Array }
  | { type: "valueValidated"; height: number; valueHash: Hash; valid: boolean };

export type EngineAction =
  | { type: "broadcast"; message: ConsensusMessage }
  | { type: "scheduleTimeout"; height: number; round: number; step: Step; durationMs: number }
  /** Sign `signBytes` (through the double-sign guard) and feed the signed message back in. */
  | { type: "requestSignature"; message: UnsignedMessage; signBytes: Uint8Array; value?: Uint8Array }
  | { type: "requestProposal"; height: number; round: number }
  | { type: "validateValue"; height: number; round: number; valueHash: Hash; value: Uint8Array }
  | {
      type: "commit";
      height: number;
      round: number;
      value: Uint8Array;
      valueHash: Hash;
      certificate: CommitCertificate;
    }
  | { type: "evidence"; evidence: Evidence }
  | { type: "rejected"; error: MessageError; validatorIndex: number | null };

export interface EngineInit extends Partial<Omit<ConsensusOptions, "chainId">> {
  chainId: string;
  /** This node's validator key; `null` for a node that follows without voting. */
  selfPublicKey: Uint8Array | null;
}

export interface EngineModules {
  verify: VerifyFn;
  hashValue: HashFn;
}

/** A snapshot for status RPCs and metrics: plain numbers, no references into the engine. */
export interface EngineStatus {
  height: number;
  round: number;
  step: Step;
  lockedRound: number;
  validRound: number;
  decided: boolean;
  validatorIndex: number;
}

export interface EngineCounters {
  messagesAccepted: number;
  messagesRejected: number;
  roundsStarted: number;
  evidenceFound: number;
  heightsDecided: number;
}

type Validity = "unknown" | "pending" | "valid" | "invalid";

interface KnownValue {
  value: Uint8Array;
  hash: Hash;
  validity: Validity;
}

interface RoundState {
  /** Proposals from the round's proposer: the first, plus at most one conflicting (evidence). */
  proposals: ProposalMessage[];
  prevotes: VoteSet;
  precommits: VoteSet;
  prevoteTimeoutScheduled: boolean;
  precommitTimeoutScheduled: boolean;
  /** L36 fired ("for the first time"). */
  validUpdated: boolean;
}

interface HeightState {
  height: number;
  set: ValidatorSet;
  selfIndex: number;
  round: number;
  step: Step;
  lockedKey: string | null;
  lockedRound: number;
  validKey: string | null;
  validRound: number;
  decided: boolean;
  values: Map<string, KnownValue>;
  rounds: Map<number, RoundState>;
  /** The highest round each validator has sent a verified message for (L55). */
  senderMaxRound: number[];
  proposalRequested: Set<number>;
  proposed: Set<number>;
  evidenceSeen: Set<string>;
}

export function createEngine(init: EngineInit, modules: EngineModules): Engine {
  return new Engine(init, modules);
}

export class Engine {
  private readonly opts: ConsensusOptions;
  private readonly selfKey: Uint8Array | null;
  private readonly verify: VerifyFn;
  private readonly hashValue: HashFn;
  private s: HeightState | null = null;
  private nextHeightBuffer: ConsensusMessage[] = [];
  private out: EngineAction[] = [];
  readonly counters: EngineCounters = {
    messagesAccepted: 0,
    messagesRejected: 0,
    roundsStarted: 0,
    evidenceFound: 0,
    heightsDecided: 0,
  };

  constructor(init: EngineInit, modules: EngineModules) {
    const { selfPublicKey, ...rest } = init;
    this.opts = { ...defaultConsensusOptions, ...rest };
    validateConsensusOptions(this.opts);
    this.selfKey = selfPublicKey === null ? null : Uint8Array.from(selfPublicKey);
    this.verify = modules.verify;
    this.hashValue = modules.hashValue;
  }

  status(): EngineStatus | null {
    const s = this.s;
    if (s === null) return null;
    return {
      height: s.height,
      round: s.round,
      step: s.step,
      lockedRound: s.lockedRound,
      validRound: s.validRound,
      decided: s.decided,
      validatorIndex: s.selfIndex,
    };
  }

  /**
   * Verified votes of the current height for one round and type, for the network's vote gossip
   * (a peer missing the prevotes of a proposal's polRound cannot accept it: send them).
   */
  votes(round: number, type: VoteType): VoteMessage[] {
    const rs = this.s?.rounds.get(round);
    if (rs === undefined) return [];
    return (type === MessageType.Prevote ? rs.prevotes : rs.precommits).all();
  }

  /** Verified proposals of the current height for one round (the first, and any conflicting one). */
  proposals(round: number): ProposalMessage[] {
    return [...(this.s?.rounds.get(round)?.proposals ?? [])];
  }

  /**
   * Rounds of the current height for which this engine holds messages, and those among them with
   * a precommit quorum for a value: what the network's gossip should re-send to a peer that lags.
   */
  knownRounds(): { rounds: number[]; decidingRounds: number[] } {
    const s = this.s;
    if (s === null) return { rounds: [], decidingRounds: [] };
    const rounds = [...s.rounds.keys()].sort((a, b) => a - b);
    const decidingRounds = rounds.filter((r) => {
      const key = s.rounds.get(r)!.precommits.quorumKey;
      return key !== null && key !== "nil";
    });
    return { rounds, decidingRounds };
  }

  /**
   * What `step` will do with this message: handle it at the current height, buffer it for the
   * next height, or drop it. A host's WAL must record exactly what the engine consumes (current
   * and buffered messages): replaying a message the engine had dropped would change its path.
   */
  disposition(m: ConsensusMessage): "current" | "next" | "dropped" {
    const s = this.s;
    if (s === null || m.chainId !== this.opts.chainId) return "dropped";
    if (m.height === s.height + 1) {
      return this.nextHeightBuffer.length < this.opts.maxNextHeightMessages ? "next" : "dropped";
    }
    return m.height === s.height && !s.decided ? "current" : "dropped";
  }

  step(input: EngineInput): EngineAction[] {
    this.out = [];
    switch (input.type) {
      case "startHeight":
        this.startHeight(input.height, input.validatorSet);
        break;
      case "message":
        this.onMessage(input.message);
        break;
      case "timeout":
        this.onTimeout(input.height, input.round, input.step);
        break;
      case "proposalValue":
        this.onProposalValue(input.height, input.round, input.value);
        break;
      case "valueValidated":
        this.onValueValidated(input.height, input.valueHash, input.valid);
        break;
    }
    const actions = this.out;
    this.out = [];
    return actions;
  }

  // ---------------------------------------------------------------- inputs

  private startHeight(height: number, set: ValidatorSet): void {
    if (!Number.isSafeInteger(height) || height < 1) {
      throw new ConsensusError("CONSENSUS_ERROR_INVALID_INPUT", `cannot start height ${height}`);
    }
    if (this.s !== null && height <= this.s.height) {
      throw new ConsensusError(
        "CONSENSUS_ERROR_INVALID_INPUT",
        `height ${height} is not after ${this.s.height}`,
        {
          current: this.s.height,
        },
      );
    }
    this.s = {
      height,
      set,
      selfIndex: this.selfKey === null ? -1 : set.indexOf(this.selfKey),
      round: 0,
      step: Step.Propose,
      lockedKey: null,
      lockedRound: -1,
      validKey: null,
      validRound: -1,
      decided: false,
      values: new Map(),
      rounds: new Map(),
      senderMaxRound: new Array(set.size).fill(-1),
      proposalRequested: new Set(),
      proposed: new Set(),
      evidenceSeen: new Set(),
    };
    const buffered = this.nextHeightBuffer;
    this.nextHeightBuffer = [];
    this.startRound(0);
    for (const m of buffered) if (m.height === height) this.onMessage(m);
    this.evaluate();
  }

  private onMessage(m: ConsensusMessage): void {
    const s = this.s;
    if (s === null) return;
    if (m.chainId !== this.opts.chainId) {
      this.reject(
        messageError("MESSAGE_WRONG_CHAIN", `message is for chain ${JSON.stringify(m.chainId)}`),
        m,
      );
      return;
    }
    if (m.height === s.height + 1) {
      if (this.nextHeightBuffer.length < this.opts.maxNextHeightMessages) this.nextHeightBuffer.push(m);
      return;
    }
    if (m.height !== s.height || s.decided) return; // stale or far ahead: block sync's business
    const validator = s.set.validators[m.validatorIndex];
    if (validator === undefined) {
      this.reject(
        messageError("MESSAGE_UNKNOWN_VALIDATOR", `no validator ${m.validatorIndex} at height ${s.height}`),
        m,
      );
      return;
    }
    let bytes: Uint8Array;
    try {
      bytes = signBytes(m);
    } catch (e) {
      this.reject(messageError("MESSAGE_MALFORMED", (e as Error).message), m);
      return;
    }
    let valid = false;
    try {
      valid = this.verify(validator.algorithm, validator.publicKey, bytes, m.signature);
    } catch {
      valid = false;
    }
    if (!valid) {
      this.reject(
        messageError("MESSAGE_BAD_SIGNATURE", `signature of validator ${m.validatorIndex} does not verify`),
        m,
      );
      return;
    }
    if (m.round > s.senderMaxRound[m.validatorIndex]!) {
      s.senderMaxRound[m.validatorIndex] = m.round;
      if (m.round > s.round) this.trySkipRound();
    }
    if (m.round > s.round + this.opts.maxRoundsAhead) return;
    const accepted = m.type === MessageType.Proposal ? this.addProposal(m) : this.addVote(m);
    if (!accepted) return;
    this.counters.messagesAccepted++;
    if (m.validatorIndex === s.selfIndex) this.out.push({ type: "broadcast", message: m });
    this.evaluate();
  }

  private addProposal(p: ProposalMessage): boolean {
    const s = this.s!;
    if (p.validatorIndex !== s.set.proposer(p.round)) {
      this.reject(
        messageError(
          "MESSAGE_NOT_PROPOSER",
          `validator ${p.validatorIndex} is not the proposer of round ${p.round}`,
        ),
        p,
      );
      return false;
    }
    const hash = this.hashValue(p.value);
    const key = hashKey(p.valueHash);
    if (hashKey(hash) !== key) {
      this.reject(messageError("MESSAGE_VALUE_HASH_MISMATCH", "proposal value does not match its hash"), p);
      return false;
    }
    const rs = this.roundState(p.round);
    const same = rs.proposals.find((q) => q.polRound === p.polRound && hashKey(q.valueHash) === key);
    if (same !== undefined) return false;
    if (rs.proposals.length > 0) {
      this.reportEvidence(`${MessageType.Proposal}/${p.round}/${p.validatorIndex}`, () =>
        duplicateProposalEvidence(rs.proposals[0]!, p),
      );
      if (rs.proposals.length >= 2) return false;
    }
    rs.proposals.push(p);
    const own = p.validatorIndex === s.selfIndex;
    const known = s.values.get(key);
    if (known === undefined) {
      s.values.set(key, { value: p.value, hash: p.valueHash, validity: own ? "valid" : "unknown" });
    } else if (own) {
      known.validity = "valid";
    }
    this.ensureValidation(key, p.round);
    return true;
  }

  private addVote(v: VoteMessage): boolean {
    const rs = this.roundState(v.round);
    const set = v.type === MessageType.Prevote ? rs.prevotes : rs.precommits;
    const key = hashKey(v.valueHash);
    const result = set.add(v, key === "nil" || this.s!.values.has(key), key);
    if (result.kind === "conflict") {
      this.reportEvidence(`${v.type}/${v.round}/${v.validatorIndex}`, () =>
        duplicateVoteEvidence(result.existing, v),
      );
      return result.counted;
    }
    return result.kind === "added";
  }

  private onTimeout(height: number, round: number, step: Step): void {
    const s = this.s;
    if (s === null || height !== s.height || round !== s.round || s.decided) return;
    if (step === Step.Propose && s.step === Step.Propose) {
      this.vote(MessageType.Prevote, null); // OnTimeoutPropose
    } else if (step === Step.Prevote && s.step === Step.Prevote) {
      this.vote(MessageType.Precommit, null); // OnTimeoutPrevote
    } else if (step === Step.Precommit) {
      this.startRound(round + 1); // OnTimeoutPrecommit
    }
    this.evaluate();
  }

  private onProposalValue(height: number, round: number, value: Uint8Array): void {
    const s = this.s;
    if (s === null || height !== s.height || round !== s.round || s.decided) return;
    if (s.step !== Step.Propose || s.selfIndex !== s.set.proposer(round) || s.proposed.has(round)) return;
    const hash = this.hashValue(value);
    const key = hashKey(hash);
    if (!s.values.has(key)) s.values.set(key, { value, hash, validity: "valid" });
    this.propose(round, key, -1);
    this.evaluate();
  }

  private onValueValidated(height: number, valueHash: Hash, valid: boolean): void {
    const s = this.s;
    if (s === null || height !== s.height) return;
    const known = s.values.get(hashKey(valueHash));
    if (known === undefined || known.validity === "valid" || known.validity === "invalid") return;
    known.validity = valid ? "valid" : "invalid";
    this.evaluate();
  }

  // ---------------------------------------------------------------- the algorithm

  private startRound(round: number): void {
    const s = this.s!;
    s.round = round;
    s.step = Step.Propose;
    this.counters.roundsStarted++;
    if (s.selfIndex >= 0 && s.set.proposer(round) === s.selfIndex && !s.proposed.has(round)) {
      if (s.validKey !== null) {
        this.propose(round, s.validKey, s.validRound);
      } else if (!s.proposalRequested.has(round)) {
        s.proposalRequested.add(round);
        this.out.push({ type: "requestProposal", height: s.height, round });
      }
    }
    this.scheduleTimeout(round, Step.Propose);
  }

  /** Re-checks every rule until none fires: the "upon" clauses of Algorithm 1. */
  private evaluate(): void {
    const s = this.s!;
    while (!s.decided) {
      if (this.tryDecide()) return;
      if (!this.tryCurrentRound()) return;
    }
  }

  /** L49: a proposal and 2f+1 precommits for its value in any round decide the height. */
  private tryDecide(): boolean {
    const s = this.s!;
    for (const [round, rs] of s.rounds) {
      const key = rs.precommits.quorumKey;
      if (key === null || key === "nil") continue; // (a byzantine-free quorum admits only one key)
      const known = s.values.get(key);
      if (known === undefined) continue; // block sync will bring it
      if (known.validity !== "valid") {
        this.ensureValidation(key, round);
        continue;
      }
      s.decided = true;
      this.counters.heightsDecided++;
      this.out.push({
        type: "commit",
        height: s.height,
        round,
        value: known.value,
        valueHash: known.hash,
        certificate: buildCertificate(rs.precommits.votesFor(key)),
      });
      return true;
    }
    return false;
  }

  /** L55: messages from more than 1/3 of the power in a later round pull us to that round. */
  private trySkipRound(): void {
    const s = this.s!;
    const ahead: { round: number; power: number }[] = [];
    s.senderMaxRound.forEach((round, i) => {
      if (round > s.round) ahead.push({ round, power: s.set.powerOf(i) });
    });
    ahead.sort((a, b) => b.round - a.round);
    let power = 0;
    for (const a of ahead) {
      power += a.power;
      if (s.set.hasOneThird(power)) {
        this.startRound(a.round);
        return;
      }
    }
  }

  /** Rules for the current round; returns true when the state changed. */
  private tryCurrentRound(): boolean {
    const s = this.s!;
    const r = s.round;
    const rs = this.roundState(r);
    const proposal = rs.proposals[0];

    if (s.step === Step.Propose && proposal !== undefined) {
      const key = hashKey(proposal.valueHash);
      const ignoreLocks = this.opts.unsafeIgnoreLocks === true;
      if (proposal.polRound === -1) {
        // L22
        const validity = this.ensureValidation(key, r);
        if (validity === "valid" || validity === "invalid") {
          const acceptable = s.lockedRound === -1 || s.lockedKey === key || ignoreLocks;
          this.vote(MessageType.Prevote, validity === "valid" && acceptable ? proposal.valueHash : null);
          return true;
        }
      } else if (this.rounds(proposal.polRound)?.prevotes.hasQuorumFor(key)) {
        // L28
        const validity = this.ensureValidation(key, r);
        if (validity === "valid" || validity === "invalid") {
          const acceptable = s.lockedRound <= proposal.polRound || s.lockedKey === key || ignoreLocks;
          this.vote(MessageType.Prevote, validity === "valid" && acceptable ? proposal.valueHash : null);
          return true;
        }
      }
    }

    // L34
    if (s.step === Step.Prevote && !rs.prevoteTimeoutScheduled && rs.prevotes.hasQuorumAny()) {
      rs.prevoteTimeoutScheduled = true;
      this.scheduleTimeout(r, Step.Prevote);
    }

    // L36
    const prevoteKey = rs.prevotes.quorumKey;
    if (s.step >= Step.Prevote && !rs.validUpdated && prevoteKey !== null && prevoteKey !== "nil") {
      const p = rs.proposals.find((q) => hashKey(q.valueHash) === prevoteKey);
      if (p !== undefined && this.ensureValidation(prevoteKey, r) === "valid") {
        rs.validUpdated = true;
        if (s.step === Step.Prevote) {
          s.lockedKey = prevoteKey;
          s.lockedRound = r;
          this.vote(MessageType.Precommit, p.valueHash);
        }
        s.validKey = prevoteKey;
        s.validRound = r;
        return true;
      }
    }

    // L44
    if (s.step === Step.Prevote && prevoteKey === "nil") {
      this.vote(MessageType.Precommit, null);
      return true;
    }

    // L47
    if (!rs.precommitTimeoutScheduled && rs.precommits.hasQuorumAny()) {
      rs.precommitTimeoutScheduled = true;
      this.scheduleTimeout(r, Step.Precommit);
    }
    return false;
  }

  // ---------------------------------------------------------------- helpers

  private propose(round: number, key: string, polRound: number): void {
    const s = this.s!;
    const known = s.values.get(key)!;
    s.proposed.add(round);
    const message: UnsignedMessage = {
      type: MessageType.Proposal,
      chainId: this.opts.chainId,
      height: s.height,
      round,
      polRound,
      valueHash: known.hash,
      validatorIndex: s.selfIndex,
    };
    this.out.push({ type: "requestSignature", message, signBytes: signBytes(message), value: known.value });
  }

  /** Moves to the step after the vote and, when this node is a validator, asks for a signature. */
  private vote(type: VoteType, valueHash: Hash | null): void {
    const s = this.s!;
    s.step = type === MessageType.Prevote ? Step.Prevote : Step.Precommit;
    if (s.selfIndex < 0) return;
    const message: UnsignedMessage = {
      type,
      chainId: this.opts.chainId,
      height: s.height,
      round: s.round,
      valueHash,
      validatorIndex: s.selfIndex,
    };
    this.out.push({ type: "requestSignature", message, signBytes: signBytes(message) });
  }

  private scheduleTimeout(round: number, step: Step): void {
    const s = this.s!;
    this.out.push({
      type: "scheduleTimeout",
      height: s.height,
      round,
      step,
      durationMs: timeoutDuration(this.opts.timeouts, step, round),
    });
  }

  private ensureValidation(key: string, round: number): Validity {
    const s = this.s!;
    const known = s.values.get(key);
    if (known === undefined) return "unknown";
    if (known.validity === "unknown") {
      known.validity = "pending";
      this.out.push({
        type: "validateValue",
        height: s.height,
        round,
        valueHash: known.hash,
        value: known.value,
      });
    }
    return known.validity;
  }

  private roundState(round: number): RoundState {
    const s = this.s!;
    let rs = s.rounds.get(round);
    if (rs === undefined) {
      rs = {
        proposals: [],
        prevotes: new VoteSet(s.set),
        precommits: new VoteSet(s.set),
        prevoteTimeoutScheduled: false,
        precommitTimeoutScheduled: false,
        validUpdated: false,
      };
      s.rounds.set(round, rs);
    }
    return rs;
  }

  private rounds(round: number): RoundState | undefined {
    return this.s!.rounds.get(round);
  }

  private reportEvidence(id: string, make: () => Evidence): void {
    const s = this.s!;
    if (s.evidenceSeen.has(id)) return;
    s.evidenceSeen.add(id);
    this.counters.evidenceFound++;
    this.out.push({ type: "evidence", evidence: make() });
  }

  private reject(error: MessageError, m: ConsensusMessage): void {
    this.counters.messagesRejected++;
    this.out.push({
      type: "rejected",
      error,
      validatorIndex: Number.isInteger(m.validatorIndex) ? m.validatorIndex : null,
    });
  }
}

/** Builds the signed message a host feeds back after carrying out a `requestSignature`. */
export function signedMessage(
  action: Extract<EngineAction, { type: "requestSignature" }>,
  signature: Uint8Array,
): ConsensusMessage {
  if (action.message.type === MessageType.Proposal) {
    return { ...action.message, signature, value: action.value ?? new Uint8Array(0) };
  }
  return { ...action.message, signature };
}

/** A short, log-safe description of a message (no value bytes). */
export function describeMessage(m: ConsensusMessage): string {
  const kind =
    m.type === MessageType.Proposal ? "proposal" : m.type === MessageType.Prevote ? "prevote" : "precommit";
  const value = m.valueHash === null ? "nil" : toHex(m.valueHash).slice(0, 12);
  return `${kind} h=${m.height} r=${m.round} v=${value} from=${m.validatorIndex}`;
}
