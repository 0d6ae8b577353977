/**
 * A simulated validator host: what `packages/node` does for real, with simulated I/O. It owns the
 * engine, a write-ahead log of engine inputs, a double-sign guard, the committed chain and block
 * sync. Crash drops everything that is not durable; restart replays the WAL through the same
 * engine code path.
 *
 * Durability model (as in CometBFT): every input is appended to the WAL before it is handled;
 * the WAL is fsynced before a signature is requested and when an own signed message is logged, so
 * a crash loses at most a tail of peer messages and timeouts that led to no signature.
 */
import { hashKey, toHex } from "../src/bytes.ts";
import { verifyCertificate } from "../src/certificate.ts";
import {
  decodeCertificate,
  decodeMessage,
  encodeCertificate,
  encodeMessage,
  signBytes,
} from "../src/encoding.ts";
import {
  createEngine,
  type Engine,
  type EngineAction,
  type EngineInput,
  signedMessage,
} from "../src/engine.ts";
import { verifyEvidence } from "../src/evidence.ts";
import {
  type CommitCertificate,
  type ConsensusMessage,
  type Hash,
  MessageType,
  type UnsignedMessage,
  type VoteMessage,
} from "../src/types.ts";
import type { ValidatorSet } from "../src/validatorSet.ts";
import type { SimKey } from "./crypto.ts";
import type { Prng } from "./prng.ts";
import type { ByzantineBehaviour } from "./scenario.ts";
import { isValidValue, makeValue } from "./value.ts";

export type Packet =
  | { kind: "consensus"; bytes: Uint8Array }
  | { kind: "syncRequest"; height: number }
  | { kind: "syncResponse"; height: number; value: Uint8Array; certificate: Uint8Array };

/** What a host may use of the simulation around it. */
export interface HostEnvironment {
  chainId: string;
  now(): number;
  /** True before the network heals (byzantine strategies may depend on it). */
  faultPhase(): boolean;
  schedule(delayMs: number, run: () => void): void;
  send(from: number, to: number, packet: Packet): void;
  validatorSetAt(height: number): ValidatorSet;
  hashValue(value: Uint8Array): Hash;
  verify: import("../src/types.ts").VerifyFn;
  engineOptions: Omit<import("../src/engine.ts").EngineInit, "selfPublicKey">;
  /** Pause between a commit and the next height (CometBFT's timeout_commit). */
  commitIntervalMs: number;
  /** What colluding byzantine validators agree on for a height: honest groups A and B (C is the rest). */
  attackPlan(height: number): { a: ReadonlySet<number>; b: ReadonlySet<number>; c: ReadonlySet<number> };
  /** Checkers: every observable event of an honest host is reported here. */
  observer: HostObserver;
}

export interface HostObserver {
  signed(host: SimHost, message: UnsignedMessage, bytes: Uint8Array): void;
  guardRefused(host: SimHost, detail: string): void;
  committed(
    host: SimHost,
    height: number,
    value: Uint8Array,
    certificate: CommitCertificate,
    via: "engine" | "sync",
  ): void;
  evidence(host: SimHost, accused: number | null, detail: string): void;
  sent(count: number): void;
}

interface CommittedBlock {
  value: Uint8Array;
  certificate: CommitCertificate;
}

const SYNC_RETRY_MS = 150;
const REPLAY_MEMORY = 256;
const REGOSSIP_MS = 300;

export class SimHost {
  readonly index: number;
  readonly key: SimKey;
  readonly behaviours: ReadonlySet<ByzantineBehaviour>;
  private readonly env: HostEnvironment;
  private readonly prng: Prng;
  up = true;
  private epoch = 0;
  private engine: Engine;

  // Durable state: survives crashes.
  private wal: EngineInput[] = [];
  private walDurable = 0;
  /** Messages the engine buffered for the next height (durable once that height's block is). */
  private nextWal: EngineInput[] = [];
  private readonly guard = new Map<string, string>();
  private guardHighWater = [0, 0, 0];
  readonly chain = new Map<number, CommittedBlock>();
  committedHeight = 0;

  // Volatile state.
  private queue: { input: EngineInput; durable: boolean }[] = [];
  private processing = false;
  private syncInFlightUntil = -1;
  private syncPeerCursor = 0;
  private readonly seen: Uint8Array[] = [];
  private ownMessages: ConsensusMessage[] = [];
  private lastProgress = "";

  constructor(
    index: number,
    key: SimKey,
    behaviours: readonly ByzantineBehaviour[],
    env: HostEnvironment,
    prng: Prng,
  ) {
    this.index = index;
    this.key = key;
    this.behaviours = new Set(behaviours);
    this.env = env;
    this.prng = prng;
    this.engine = this.newEngine();
  }

  get byzantine(): boolean {
    return this.behaviours.size > 0;
  }

  get currentHeight(): number {
    return this.committedHeight + 1;
  }

  start(): void {
    this.engine = this.newEngine();
    const replay = this.wal.slice(0, this.walDurable);
    this.wal = [];
    this.walDurable = 0;
    this.nextWal = [];
    this.ownMessages = [];
    this.runEngine(
      {
        type: "startHeight",
        height: this.currentHeight,
        validatorSet: this.env.validatorSetAt(this.currentHeight),
      },
      false,
      false,
    );
    for (const input of replay) this.enqueue(input, true);
    this.scheduleRegossip();
  }

  /**
   * While a height makes no progress, re-gossip what we hold for it, as CometBFT's gossip does and
   * as the paper assumes (correct processes relay what they receive): links lose messages, and a
   * peer may hold the only copy of a vote it will never send again (it moved to the next height).
   * We re-send our own messages of the last two rounds, and the proposals and votes we verified
   * for the last two rounds, our valid round (the proof of lock) and any round with a precommit
   * quorum (the commit a lagging peer needs).
   */
  private scheduleRegossip(): void {
    this.later(REGOSSIP_MS, () => {
      const status = this.engine.status();
      const progress = `${this.committedHeight}/${status?.round}/${status?.step}`;
      if (progress === this.lastProgress && status !== null) {
        const top = Math.max(status.round, ...this.ownMessages.map((m) => m.round));
        for (const m of this.ownMessages) if (m.round >= top - 1) this.broadcast(m);
        if (!this.byzantine) {
          const { rounds, decidingRounds } = this.engine.knownRounds();
          const relay = new Set([...rounds.filter((r) => r >= top - 1 && r <= top), ...decidingRounds]);
          if (status.validRound >= 0) relay.add(status.validRound);
          for (const r of relay) {
            const messages: ConsensusMessage[] = [
              ...this.engine.proposals(r),
              ...this.engine.votes(r, MessageType.Prevote),
              ...this.engine.votes(r, MessageType.Precommit),
            ];
            // Our own votes too: our prevote may be the one that completes a peer's proof of lock,
            // and the own-message path above covers only the last two rounds.
            for (const m of messages) this.sendAll({ kind: "consensus", bytes: encodeMessage(m) });
          }
        }
      }
      this.lastProgress = progress;
      this.scheduleRegossip();
    });
  }

  crash(): void {
    if (!this.up) return;
    this.up = false;
    this.epoch++;
    this.wal.length = this.walDurable;
    this.nextWal = [];
    this.queue = [];
    this.processing = false;
    this.syncInFlightUntil = -1;
  }

  restart(): void {
    if (this.up) return;
    this.up = true;
    this.start();
  }

  receive(from: number, packet: Packet): void {
    if (!this.up) return;
    switch (packet.kind) {
      case "consensus":
        this.onConsensusBytes(from, packet.bytes);
        break;
      case "syncRequest":
        this.onSyncRequest(from, packet.height);
        break;
      case "syncResponse":
        this.onSyncResponse(packet);
        break;
    }
  }

  // ---------------------------------------------------------------- engine plumbing

  private newEngine(): Engine {
    return createEngine(
      { ...this.env.engineOptions, selfPublicKey: this.key.publicKey },
      { verify: this.env.verify, hashValue: this.env.hashValue },
    );
  }

  /** Inputs are handled one at a time, in order; inputs produced while handling one wait. */
  private enqueue(input: EngineInput, durable = false): void {
    this.queue.push({ input, durable });
    if (this.processing) return;
    this.processing = true;
    const epoch = this.epoch;
    while (this.queue.length > 0 && epoch === this.epoch) {
      const next = this.queue.shift()!;
      this.runEngine(next.input, true, next.durable);
    }
    if (epoch === this.epoch) this.processing = false;
  }

  private runEngine(input: EngineInput, log: boolean, durable: boolean): void {
    if (log) {
      // Log exactly what the engine consumes; messages it buffers for the next height wait in
      // their own log, which becomes the WAL when that height starts.
      const where = input.type === "message" ? this.engine.disposition(input.message) : "current";
      if (where === "current") {
        this.wal.push(input);
        if (durable) this.walDurable = this.wal.length;
      } else if (where === "next") {
        this.nextWal.push(input);
      }
    }
    const epoch = this.epoch;
    for (const action of this.engine.step(input)) {
      if (epoch !== this.epoch) return;
      this.perform(action);
    }
  }

  private later(delayMs: number, run: () => void): void {
    const epoch = this.epoch;
    this.env.schedule(delayMs, () => {
      if (this.up && epoch === this.epoch) run();
    });
  }

  private perform(action: EngineAction): void {
    switch (action.type) {
      case "broadcast":
        if (action.message.height === this.currentHeight) this.ownMessages.push(action.message);
        this.broadcast(action.message);
        break;
      case "scheduleTimeout": {
        const { height, round, step } = action;
        this.later(action.durationMs, () => this.enqueue({ type: "timeout", height, round, step }));
        break;
      }
      case "requestSignature":
        this.sign(action);
        break;
      case "requestProposal": {
        const { height, round } = action;
        const valid = !(this.behaviours.has("invalidValue") && this.prng.chance(0.5));
        const value = makeValue({ height, round, proposer: this.index, valid }, this.prng.bytes(8));
        this.later(this.prng.range(0, 5), () =>
          this.enqueue({ type: "proposalValue", height, round, value }),
        );
        break;
      }
      case "validateValue": {
        const { height, value, valueHash } = action;
        const valid = isValidValue(value, height);
        this.later(this.prng.range(0, 5), () =>
          this.enqueue({ type: "valueValidated", height, valueHash, valid }),
        );
        break;
      }
      case "commit":
        this.commit(action.height, action.value, action.certificate, "engine");
        break;
      case "evidence": {
        const result = verifyEvidence(action.evidence, {
          chainId: this.env.chainId,
          validatorSet: this.env.validatorSetAt(action.evidence.a.height),
          verify: this.env.verify,
        });
        if (!this.byzantine) {
          this.env.observer.evidence(
            this,
            result.ok ? result.value : null,
            result.ok ? "" : result.error.detail,
          );
        }
        break;
      }
      case "rejected":
        break; // a real node lowers the sender's peer score here
    }
  }

  /** The double-sign guard, then the signature (after a simulated HSM latency). */
  private sign(action: Extract<EngineAction, { type: "requestSignature" }>): void {
    const m = action.message;
    if (!this.byzantine) {
      this.walDurable = this.wal.length;
      const hrs = [m.height, m.round, m.type];
      const slot = hrs.join("/");
      const digest = toHex(action.signBytes);
      const previous = this.guard.get(slot);
      if (previous !== undefined && previous !== digest) {
        this.env.observer.guardRefused(this, `conflicting payload for ${slot}`);
        return;
      }
      if (previous === undefined && compareHrs(hrs, this.guardHighWater) < 0) {
        this.env.observer.guardRefused(this, `regression to ${slot} below ${this.guardHighWater.join("/")}`);
        return;
      }
      this.guard.set(slot, digest);
      if (compareHrs(hrs, this.guardHighWater) > 0) this.guardHighWater = hrs;
    }
    const signature = this.key.sign(action.signBytes);
    if (!this.byzantine) this.env.observer.signed(this, m, action.signBytes);
    this.later(this.prng.range(0, 2), () =>
      this.enqueue({ type: "message", message: signedMessage(action, signature) }, true),
    );
  }

  private commit(
    height: number,
    value: Uint8Array,
    certificate: CommitCertificate,
    via: "engine" | "sync",
  ): void {
    if (height !== this.currentHeight) return;
    this.chain.set(height, { value, certificate });
    this.committedHeight = height;
    this.wal = [];
    this.walDurable = 0;
    this.ownMessages = [];
    if (!this.byzantine) this.env.observer.committed(this, height, value, certificate, via);
    // Like CometBFT's timeout_commit: a pause before the next height gathers late votes.
    this.later(this.env.commitIntervalMs, () => {
      if (this.committedHeight !== height) return;
      // The new height's WAL starts with what the engine buffered for it (messages that arrived
      // during this height and the commit interval), written durably as the height begins.
      this.wal = this.nextWal.filter((x) => x.type === "message" && x.message.height === height + 1);
      this.nextWal = [];
      this.walDurable = this.wal.length;
      this.runEngine(
        { type: "startHeight", height: height + 1, validatorSet: this.env.validatorSetAt(height + 1) },
        false,
        false,
      );
    });
  }

  // ---------------------------------------------------------------- network

  private sendAll(packet: Packet, except: ReadonlySet<number> = new Set()): void {
    let count = 0;
    for (let to = 0; to < this.env.validatorSetAt(1).size; to++) {
      if (to === this.index || except.has(to)) continue;
      this.env.send(this.index, to, packet);
      count++;
    }
    this.env.observer.sent(count);
  }

  private broadcast(message: ConsensusMessage): void {
    if (!this.byzantine) {
      this.sendAll({ kind: "consensus", bytes: encodeMessage(message) });
      return;
    }
    this.byzantineBroadcast(message);
  }

  private onConsensusBytes(from: number, bytes: Uint8Array): void {
    const decoded = decodeMessage(bytes);
    if (!decoded.ok) return; // a real node lowers the sender's peer score here
    const m = decoded.value;
    if (this.behaviours.has("replay") && this.seen.length < REPLAY_MEMORY) this.seen.push(bytes);
    if (m.height > this.currentHeight) this.maybeSync(from, m.height);
    this.enqueue({ type: "message", message: m });
  }

  /** A peer at a later height has a certificate for ours: ask for it (not too often). */
  private maybeSync(hint: number, peerHeight: number): void {
    const now = this.env.now();
    if (now < this.syncInFlightUntil) return;
    this.syncInFlightUntil = now + SYNC_RETRY_MS;
    const height = this.currentHeight;
    // A peer one height ahead may just be faster than our precommits: give them a moment.
    const delay = peerHeight === height + 1 ? SYNC_RETRY_MS / 2 : 0;
    const n = this.env.validatorSetAt(1).size;
    if (n < 2) return;
    const peer =
      this.syncPeerCursor++ % 2 === 0 ? hint : (this.index + 1 + (this.syncPeerCursor % (n - 1))) % n;
    this.later(delay, () => {
      if (this.currentHeight === height) this.env.send(this.index, peer, { kind: "syncRequest", height });
    });
  }

  private onSyncRequest(from: number, height: number): void {
    const block = this.chain.get(height);
    if (block === undefined) return;
    if (this.behaviours.has("lockAttack") && this.env.faultPhase()) return; // keep B and C in the dark
    let value = block.value;
    if (this.behaviours.has("lieInSync")) {
      value = makeValue({ height, round: 0, proposer: this.index, valid: true }, this.prng.bytes(8));
    }
    this.env.send(this.index, from, {
      kind: "syncResponse",
      height,
      value,
      certificate: encodeCertificate(block.certificate),
    });
  }

  private onSyncResponse(packet: Extract<Packet, { kind: "syncResponse" }>): void {
    if (packet.height !== this.currentHeight) return;
    const cert = decodeCertificate(packet.certificate);
    if (!cert.ok) return;
    const verified = verifyCertificate(cert.value, {
      chainId: this.env.chainId,
      validatorSet: this.env.validatorSetAt(packet.height),
      verify: this.env.verify,
      height: packet.height,
      valueHash: this.env.hashValue(packet.value),
    });
    if (!verified.ok) return; // never trust a peer for what we cannot verify
    this.syncInFlightUntil = -1;
    this.commit(packet.height, packet.value, cert.value, "sync");
  }

  // ---------------------------------------------------------------- byzantine behaviour

  private byzantineBroadcast(original: ConsensusMessage): void {
    let message = original;
    const b = this.behaviours;
    if (b.has("silent")) return;
    const n = this.env.validatorSetAt(1).size;
    const peers = [...Array(n).keys()].filter((i) => i !== this.index);
    if (b.has("amnesia") && message.type === MessageType.Proposal && message.polRound >= 0) {
      message = this.conflictingTwin(message);
    }
    if (b.has("lockAttack") && (message.type !== MessageType.Proposal || message.polRound === -1)) {
      const plan = this.env.attackPlan(message.height);
      const colluder = (to: number) => !this.honest(to);
      const bytes = encodeMessage(message);
      if (message.type === MessageType.Precommit && message.valueHash !== null) {
        // The real precommit to A (who then commits); a nil precommit to B and C, so that they
        // see a precommit quorum of any kind and move to the next round without committing.
        const nil: UnsignedMessage = { ...message, valueHash: null };
        const { signature: _s, ...unsignedNil } = nil as VoteMessage;
        const nilBytes = encodeMessage({ ...unsignedNil, signature: this.key.sign(signBytes(unsignedNil)) });
        for (const to of peers) {
          this.env.send(this.index, to, {
            kind: "consensus",
            bytes: plan.a.has(to) || colluder(to) ? bytes : nilBytes,
          });
        }
        this.env.observer.sent(peers.length);
      } else {
        const targets = peers.filter((to) =>
          message.type === MessageType.Precommit
            ? plan.a.has(to) || colluder(to)
            : plan.a.has(to) || plan.b.has(to) || colluder(to),
        );
        for (const to of targets) this.env.send(this.index, to, { kind: "consensus", bytes });
        this.env.observer.sent(targets.length);
      }
    } else if (b.has("selectivePrecommit") && message.type === MessageType.Precommit) {
      const bytes = encodeMessage(message);
      const some = this.prng.shuffle([...peers]).slice(0, this.prng.range(1, Math.max(1, peers.length - 1)));
      for (const to of some) this.env.send(this.index, to, { kind: "consensus", bytes });
      this.env.observer.sent(some.length);
    } else if (b.has("equivocate") && this.prng.chance(0.7)) {
      const twin = this.conflictingTwin(message);
      const half = new Set(this.prng.shuffle([...peers]).slice(0, Math.ceil(peers.length / 2)));
      const twinBytes = encodeMessage(twin);
      for (const to of peers)
        this.env.send(this.index, to, {
          kind: "consensus",
          bytes: half.has(to) ? twinBytes : encodeMessage(message),
        });
      this.env.observer.sent(peers.length);
    } else if (b.has("badSignature") && this.prng.chance(0.5)) {
      const forged = { ...message, signature: Uint8Array.from(message.signature) };
      forged.signature[this.prng.int(forged.signature.length)]! ^= 1 << this.prng.int(8);
      if (this.prng.chance(0.5)) forged.validatorIndex = this.prng.int(n); // impersonation attempt
      this.sendAll({ kind: "consensus", bytes: encodeMessage(forged) });
      this.sendAll({ kind: "consensus", bytes: encodeMessage(message) });
    } else {
      this.sendAll({ kind: "consensus", bytes: encodeMessage(message) });
    }
    if (b.has("replay") && this.seen.length > 0) {
      for (let k = this.prng.range(1, 3); k > 0; k--) {
        this.env.send(this.index, this.prng.pick(peers), {
          kind: "consensus",
          bytes: this.prng.pick(this.seen),
        });
      }
    }
    if (b.has("garbage") && this.prng.chance(0.3)) {
      const real = encodeMessage(message);
      const junk = this.prng.chance(0.5)
        ? real.subarray(0, this.prng.int(real.length))
        : this.prng.bytes(this.prng.range(0, 200));
      this.env.send(this.index, this.prng.pick(peers), { kind: "consensus", bytes: junk });
    }
  }

  private honest(index: number): boolean {
    const plan = this.env.attackPlan(1);
    return plan.a.has(index) || plan.b.has(index) || plan.c.has(index);
  }

  /** A second, conflicting message for the same height/round/type, signed with our key. */
  private conflictingTwin(m: ConsensusMessage): ConsensusMessage {
    let unsigned: UnsignedMessage;
    let value: Uint8Array | undefined;
    if (m.type === MessageType.Proposal) {
      value = makeValue(
        { height: m.height, round: m.round, proposer: this.index, valid: this.prng.chance(0.7) },
        this.prng.bytes(8),
      );
      const { signature: _s, value: _v, ...header } = m;
      unsigned = { ...header, polRound: -1, valueHash: this.env.hashValue(value) };
    } else {
      const other =
        m.valueHash === null ? this.prng.bytes(32) : this.prng.chance(0.5) ? null : this.prng.bytes(32);
      unsigned = {
        type: m.type,
        chainId: m.chainId,
        height: m.height,
        round: m.round,
        valueHash: other,
        validatorIndex: m.validatorIndex,
      };
    }
    if (m.type !== MessageType.Proposal && hashKey(unsigned.valueHash) === hashKey(m.valueHash)) return m;
    const signature = this.key.sign(signBytes(unsigned));
    return unsigned.type === MessageType.Proposal
      ? { ...unsigned, signature, value: value! }
      : { ...unsigned, signature };
  }
}

function compareHrs(a: number[], b: number[]): number {
  for (let i = 0; i < 3; i++) if (a[i] !== b[i]) return a[i]! - b[i]!;
  return 0;
}
