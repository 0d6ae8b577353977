/**
 * The consensus host: drives the pure engine with real time, the double-sign-guarded signer, the
 * WAL, the mempool and the chain (the contract written in docs/consensus.md, modelled by the
 * simulator's host).
 *
 * One queue owns the engine (as CometBFT's receiveRoutine): peer messages, own signed messages,
 * timeouts, proposal values and validation results are queued, appended to the WAL in one fsynced
 * batch, then stepped through the engine in order. Signing, building and checking proposals run
 * outside the queue and come back in as inputs. A commit holds the queue: the block is executed,
 * written with its receipts, state and the WAL clean-up in one batch, and only then does the next
 * height start.
 */

import { bytesToHex as hex } from "@ethereumjs/util";
import {
  type CommitCertificate,
  type ConsensusMessage,
  createEngine,
  createNodeCryptoVerify,
  decodeCertificate,
  type Engine,
  type EngineAction,
  type EngineInput,
  MessageType,
  Step,
  sha256,
  signedMessage,
  type TimeoutOptions,
  type ValidatorSet,
  verifyCertificate,
} from "@vitalstream/consensus";
import type { GuardedSigner } from "@vitalstream/hsm";
import type { Logger } from "pino";
import { decodeBlock } from "../chain/block.ts";
import { buildBlock, validateBlock } from "../chain/blockProducer.ts";
import type { Chain } from "../chain/chain.ts";
import { crashPoint } from "../crashPoints.ts";
import type { Executor } from "../execution/executor.ts";
import type { Mempool } from "../mempool/mempool.ts";
import { ConsensusWal, type WalInput } from "./wal.ts";

export interface ConsensusTransport {
  broadcast(message: ConsensusMessage): void;
  peerCount(): number;
  /** A peer relayed a message the engine refused as forged or invalid. */
  penalise?(peer: string, reason: string): void;
}

/** A committed block from a peer (block sync), not yet trusted. */
export interface CommittedBlock {
  block: Uint8Array;
  certificate: Uint8Array;
}

export type ApplyResult =
  | { ok: true; committed: number }
  | { ok: false; committed: number; reason: string; invalid: boolean };

export interface ConsensusHostOptions {
  timeouts: TimeoutOptions;
  emptyBlockIntervalMs: number;
  commitIntervalMs: number;
  /** While a height makes no progress, re-send what we hold for it this often (0: never). */
  regossipMs?: number;
}

export interface ConsensusHostModules {
  chain: Chain;
  executor: Executor;
  mempool: Mempool;
  /** null: follow without voting (an observer). */
  signer: GuardedSigner | null;
  logger: Logger;
  transport?: ConsensusTransport;
  now?(): number;
}

export interface ConsensusCounters {
  heightsCommitted: number;
  roundsStarted: number;
  signatures: number;
  signFailures: number;
  proposalsBuilt: number;
  proposalsRefused: number;
  evidence: number;
  txsCommitted: number;
  /** Rounds the last committed height needed (1 = decided in round 0). */
  lastRounds: number;
  /** Blocks committed from peers' certificates (block sync) rather than by our engine. */
  blocksSynced: number;
  regossips: number;
  /** The last height our engine decided: ms from its start to the decision (0 before any). */
  lastConsensusMs: number;
  /** The last committed block: ms to execute and write it. */
  lastCommitMs: number;
}

export interface ConsensusStatus {
  height: number;
  round: number;
  step: "propose" | "prevote" | "precommit" | "commit";
  proposer: { index: number; name: string; publicKey: string } | null;
  validatorIndex: number | null;
  validators: {
    index: number;
    name: string;
    publicKey: string;
    algorithm: string;
    votingPower: number;
    nodeId: string;
  }[];
  lastCommit: { height: number; time: string; hash: string } | null;
  peers: number;
  halted: string | null;
}

const STEP_NAMES = {
  [Step.Propose]: "propose",
  [Step.Prevote]: "prevote",
  [Step.Precommit]: "precommit",
} as const;
const ZERO_ADDRESS = new Uint8Array(20);

type Queued = {
  input: EngineInput;
  log: boolean;
  from?: string;
  /** On a startHeight input: what the new engine replays (the WAL of that height). */
  replay?: EngineInput[];
};
type SyncJob = { blocks: CommittedBlock[]; done(result: ApplyResult): void };

/** Refusals that prove the relaying peer sent something forged or malformed. */
const PUNISHABLE = new Set([
  "MESSAGE_MALFORMED",
  "MESSAGE_WRONG_CHAIN",
  "MESSAGE_UNKNOWN_VALIDATOR",
  "MESSAGE_BAD_SIGNATURE",
  "MESSAGE_NOT_PROPOSER",
  "MESSAGE_VALUE_HASH_MISMATCH",
  "MESSAGE_INVALID_POL_ROUND",
]);

export class ConsensusHost {
  readonly counters: ConsensusCounters = {
    heightsCommitted: 0,
    roundsStarted: 0,
    signatures: 0,
    signFailures: 0,
    proposalsBuilt: 0,
    proposalsRefused: 0,
    evidence: 0,
    txsCommitted: 0,
    lastRounds: 0,
    blocksSynced: 0,
    regossips: 0,
    lastConsensusMs: 0,
    lastCommitMs: 0,
  };
  /** When the engine's current height started (ms, this host's clock). */
  private heightStartedAt = 0;
  private readonly opts: ConsensusHostOptions;
  private readonly chain: Chain;
  private readonly executor: Executor;
  private readonly mempool: Mempool;
  private readonly signer: GuardedSigner | null;
  private readonly log: Logger;
  private readonly transport: ConsensusTransport;
  private readonly now: () => number;
  private readonly wal: ConsensusWal;
  private engine: Engine | undefined;
  private selfKey: Uint8Array | null = null;
  private validatorSet!: ValidatorSet;
  private readonly queue: Queued[] = [];
  private draining: Promise<void> | null = null;
  private readonly timers = new Set<NodeJS.Timeout>();
  private txWaiters: (() => void)[] = [];
  private running = false;
  private haltReason: string | null = null;
  private committing = false;
  private lastCommit: { height: number; timeMs: number; hash: Uint8Array } | null = null;
  private engineHeight = 0;
  /** Messages for the next height seen while the current one ran (fed to the next engine too). */
  private nextMessages: ConsensusMessage[] = [];
  private readonly syncJobs: SyncJob[] = [];
  private ownMessages: ConsensusMessage[] = [];
  private lastProgress = "";

  constructor(opts: ConsensusHostOptions, modules: ConsensusHostModules) {
    this.opts = opts;
    this.chain = modules.chain;
    this.executor = modules.executor;
    this.mempool = modules.mempool;
    this.signer = modules.signer;
    this.log = modules.logger;
    this.transport = modules.transport ?? { broadcast: () => {}, peerCount: () => 0 };
    this.now = modules.now ?? Date.now;
    this.wal = new ConsensusWal(this.chain.store);
  }

  get halted(): string | null {
    return this.haltReason;
  }

  async start(): Promise<void> {
    this.selfKey = this.signer === null ? null : await this.signer.signer.publicKey();
    this.running = true;
    await this.startHeight(this.chain.head.height + 1);
    const regossipMs = this.opts.regossipMs ?? 0;
    if (regossipMs > 0) {
      const tick = () =>
        this.later(regossipMs, () => {
          this.regossip();
          tick();
        });
      tick();
    }
  }

  async stop(): Promise<void> {
    this.running = false;
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    for (const wake of this.txWaiters) wake();
    this.txWaiters = [];
    this.queue.length = 0;
    for (const job of this.syncJobs.splice(0))
      job.done({ ok: false, committed: 0, reason: "the node is stopping", invalid: false });
    await this.draining;
  }

  /** A message from the network (already decoded); `from` is the peer that sent it. */
  receive(message: ConsensusMessage, from?: string): void {
    this.enqueue({ type: "message", message }, true, from);
  }

  /**
   * Block sync: commits blocks a peer says are committed, in order from our next height, each only
   * after its commit certificate verifies against the validator set of its height (more than two
   * thirds of the voting power signed exactly these bytes). Runs in the consensus queue, so it
   * never races the engine; consensus restarts at the new height afterwards.
   */
  applyCommitted(blocks: CommittedBlock[]): Promise<ApplyResult> {
    return new Promise((done) => {
      if (!this.running || this.haltReason !== null) {
        done({
          ok: false,
          committed: 0,
          reason: this.haltReason ?? "the node is not running",
          invalid: false,
        });
        return;
      }
      this.syncJobs.push({ blocks, done });
      this.kick();
    });
  }

  /** New transactions arrived: a proposer waiting for some may build its block now. */
  notifyTransactions(): void {
    const waiters = this.txWaiters;
    this.txWaiters = [];
    for (const wake of waiters) wake();
  }

  status(): ConsensusStatus {
    const s = this.engine?.status();
    const doc = this.chain.genesis;
    const set = this.validatorSet;
    const describe = (index: number) => ({
      index,
      name: doc.validators[index]?.name ?? `validator-${index}`,
      publicKey: hex(set.validators[index]!.publicKey),
    });
    return {
      height: s?.height ?? this.chain.head.height + 1,
      round: s?.round ?? 0,
      step:
        s === null || s === undefined
          ? "propose"
          : s.decided || this.committing
            ? "commit"
            : STEP_NAMES[s.step],
      proposer: s === null || s === undefined || set === undefined ? null : describe(set.proposer(s.round)),
      validatorIndex: s === null || s === undefined || s.validatorIndex < 0 ? null : s.validatorIndex,
      validators: (set?.validators ?? []).map((v, index) => ({
        ...describe(index),
        algorithm: v.algorithm,
        votingPower: v.votingPower,
        nodeId: doc.validators[index]?.nodeId ?? "",
      })),
      lastCommit:
        this.lastCommit === null
          ? null
          : {
              height: this.lastCommit.height,
              time: new Date(this.lastCommit.timeMs).toISOString(),
              hash: hex(this.lastCommit.hash),
            },
      peers: this.transport.peerCount(),
      halted: this.haltReason,
    };
  }

  /**
   * Prepares a height (validator set, WAL) and queues its start; the new engine is created when the
   * queue reaches that item, so no input is ever stepped into an engine that has not started.
   */
  private async startHeight(height: number): Promise<void> {
    if (!this.running) return;
    // Stale: block sync already moved past it, or this height is running.
    if (height !== this.chain.head.height + 1 || this.engineHeight === height) return;
    this.engineHeight = height;
    this.ownMessages = [];
    const set = await this.chain.getValidatorSet(height);
    if (set === undefined) {
      this.halt(`no validator set stored for height ${height}`);
      return;
    }
    const replay = await this.wal.read(height);
    // Block sync may have moved on while we read: a later height owns the engine now.
    if (this.engineHeight !== height || height !== this.chain.head.height + 1) return;
    if (replay.length > 0) this.log.info({ height, entries: replay.length }, "replaying the consensus WAL");
    // A start of an earlier height still queued must not reach this one: drop it.
    for (let i = this.queue.length - 1; i >= 0; i--)
      if (this.queue[i]!.input.type === "startHeight") this.queue.splice(i, 1);
    this.queue.unshift({ input: { type: "startHeight", height, validatorSet: set }, log: false, replay });
    this.kick();
  }

  /** Runs a queued height start: a fresh engine, then the WAL and the buffered next-height messages. */
  private beginHeight(item: Queued): Promise<void> | undefined {
    const input = item.input as Extract<EngineInput, { type: "startHeight" }>;
    this.heightStartedAt = this.now();
    this.validatorSet = input.validatorSet;
    this.engine = createEngine(
      { chainId: this.chain.genesis.chainId, selfPublicKey: this.selfKey, timeouts: this.opts.timeouts },
      { verify: createNodeCryptoVerify(), hashValue: sha256 },
    );
    const buffered = this.nextMessages.filter((m) => m.height === input.height);
    this.nextMessages = this.nextMessages.filter((m) => m.height > input.height);
    const inputs: EngineInput[] = [
      input,
      ...(item.replay ?? []),
      ...buffered.map((message) => ({ type: "message" as const, message })),
    ];
    let commit: Promise<void> | undefined;
    for (const next of inputs)
      for (const action of this.engine.step(next)) commit = this.perform(action) ?? commit;
    // The WAL may hold a whole decision (a crash between deciding and committing): commit it.
    return commit;
  }

  private enqueue(input: EngineInput, log: boolean, from?: string): void {
    if (!this.running) return;
    this.queue.push(from === undefined ? { input, log } : { input, log, from });
    this.kick();
  }

  private kick(): void {
    if (this.draining !== null) return;
    // drain() starts in a later microtask: its synchronous part enqueues (valueValidated) and
    // would otherwise call kick() before `draining` is set and start a second, concurrent drain.
    this.draining = Promise.resolve()
      .then(() => this.drain())
      .catch((e) => this.halt(`consensus loop failed: ${(e as Error).message}`))
      .finally(() => {
        this.draining = null;
        if ((this.queue.length > 0 || this.syncJobs.length > 0) && this.running && this.haltReason === null)
          this.kick();
      });
  }

  private async drain(): Promise<void> {
    while ((this.queue.length > 0 || this.syncJobs.length > 0) && this.running && this.haltReason === null) {
      if (this.syncJobs.length > 0) {
        await this.runSyncJobs();
        continue;
      }
      const batch = this.queue.splice(0, this.queue.length);
      // WAL first: everything the engine is about to consume, in one durable batch per height.
      const byHeight = new Map<number, WalInput[]>();
      for (const { input, log } of batch) {
        if (!log || input.type === "startHeight" || input.type === "valueValidated") continue;
        let height: number;
        if (input.type === "message") {
          if (this.engine === undefined) {
            if (this.nextMessages.length < 10_000) this.nextMessages.push(input.message);
            continue;
          }
          const where = this.engine.disposition(input.message);
          if (where === "dropped") continue;
          // Kept in memory too: the next engine is fed these even if its WAL read missed them.
          if (where === "next" && this.nextMessages.length < 10_000) this.nextMessages.push(input.message);
          height = input.message.height;
        } else {
          height = input.height;
        }
        const list = byHeight.get(height) ?? [];
        list.push(input as WalInput);
        byHeight.set(height, list);
      }
      for (const [height, inputs] of byHeight) {
        await this.wal.append(height, inputs);
        crashPoint("after-wal-append", height);
      }
      for (const item of batch) {
        const { input, from } = item;
        if (input.type === "startHeight") {
          const commit = input.height === this.engineHeight ? this.beginHeight(item) : undefined;
          if (commit !== undefined) {
            await commit;
            return;
          }
          continue;
        }
        if (this.engine === undefined) continue; // before the first height starts (kept in nextMessages)
        let commit: Promise<void> | undefined;
        for (const action of this.engine.step(input)) {
          if (action.type === "rejected" && from !== undefined && PUNISHABLE.has(action.error.code))
            this.transport.penalise?.(from, action.error.code);
          commit = this.perform(action) ?? commit;
        }
        if (commit !== undefined) {
          // The rest of the batch was logged: next-height inputs replay when that height starts,
          // this height's are moot once it is decided.
          await commit;
          return;
        }
      }
    }
  }

  private later(delayMs: number, run: () => void): void {
    const timer = setTimeout(() => {
      this.timers.delete(timer);
      if (this.running) run();
    }, delayMs);
    this.timers.add(timer);
  }

  /** Returns a promise only for a commit, which holds the queue until the next height starts. */
  private perform(action: EngineAction): Promise<void> | undefined {
    switch (action.type) {
      case "broadcast":
        if (action.message.height === this.engineHeight) this.ownMessages.push(action.message);
        this.transport.broadcast(action.message);
        return undefined;
      case "scheduleTimeout": {
        const { height, round, step } = action;
        if (step === Step.Propose) this.counters.roundsStarted++;
        this.later(action.durationMs, () => this.enqueue({ type: "timeout", height, round, step }, true));
        return undefined;
      }
      case "requestSignature":
        void this.sign(action);
        return undefined;
      case "requestProposal":
        void this.propose(action.height, action.round);
        return undefined;
      case "validateValue": {
        const result = validateBlock({
          chain: this.chain,
          validatorSet: this.validatorSet,
          encoded: action.value,
          nowMs: this.now(),
        });
        if (!result.valid) {
          this.counters.proposalsRefused++;
          this.log.warn(
            { height: action.height, round: action.round, reason: result.reason },
            "refused a proposed block",
          );
        }
        this.enqueue(
          { type: "valueValidated", height: action.height, valueHash: action.valueHash, valid: result.valid },
          false,
        );
        return undefined;
      }
      case "commit":
        return this.commit(action.height, action.value, action.certificate, action.round);
      case "evidence":
        this.counters.evidence++;
        this.log.warn(
          { kind: action.evidence.kind, validator: action.evidence.a.validatorIndex },
          "equivocation evidence",
        );
        return undefined;
      case "rejected":
        this.log.debug(
          { code: action.error.code, validator: action.validatorIndex },
          "consensus message rejected",
        );
        return undefined;
    }
  }

  private async sign(action: Extract<EngineAction, { type: "requestSignature" }>): Promise<void> {
    if (this.signer === null) return;
    const m = action.message;
    try {
      const signature = await this.signer.sign({
        chainId: m.chainId,
        height: m.height,
        round: m.round,
        step: m.type,
        payload: action.signBytes,
      });
      this.counters.signatures++;
      this.enqueue({ type: "message", message: signedMessage(action, signature) }, true);
    } catch (e) {
      this.counters.signFailures++;
      const err = e as { code?: string; message?: string };
      this.log.error(
        { height: m.height, round: m.round, type: m.type, code: err.code },
        `signing refused or failed: ${err.message ?? "unknown error"}`,
      );
    }
  }

  private async propose(height: number, round: number): Promise<void> {
    if (this.opts.emptyBlockIntervalMs > 0 && this.mempool.pending(1n << 62n, 1).length === 0) {
      await new Promise<void>((resolve) => {
        this.txWaiters.push(resolve);
        this.later(this.opts.emptyBlockIntervalMs, resolve);
      });
    }
    if (!this.running || this.chain.head.height !== height - 1) return;
    const { encoded, block } = buildBlock({
      chain: this.chain,
      mempool: this.mempool,
      validatorSet: this.validatorSet,
      proposerIndex: this.validatorSet.proposer(round),
      nowMs: this.now(),
    });
    this.counters.proposalsBuilt++;
    this.log.debug({ height, round, txs: block.txs.length, bytes: encoded.length }, "proposing a block");
    this.enqueue({ type: "proposalValue", height, round, value: encoded }, true);
  }

  /** The engine decided: commit, then start the next height after the commit interval. */
  private async commit(
    height: number,
    value: Uint8Array,
    certificate: CommitCertificate,
    round: number,
  ): Promise<void> {
    // Block sync may have committed this height while the engine was still deciding it.
    if (height !== this.chain.head.height + 1) return;
    if (!(await this.commitBlock(height, value, certificate, round, this.validatorSet, "consensus"))) return;
    this.later(this.opts.commitIntervalMs, () => {
      void this.startHeight(height + 1).catch((e) =>
        this.halt(`could not start height ${height + 1}: ${(e as Error).message}`),
      );
    });
  }

  /** Executes and durably commits one block; false (and halted) when that fails. */
  private async commitBlock(
    height: number,
    value: Uint8Array,
    certificate: CommitCertificate,
    round: number,
    validatorSet: ValidatorSet,
    via: "consensus" | "sync",
  ): Promise<boolean> {
    this.committing = true;
    const started = this.now();
    if (via === "consensus") this.counters.lastConsensusMs = started - this.heightStartedAt;
    try {
      const block = decodeBlock(value);
      const head = this.chain.head;
      const execution = await this.executor.executeBlock(
        {
          height: BigInt(height),
          timestamp: BigInt(Math.floor(block.header.timestampMs / 1000)),
          coinbase: ZERO_ADDRESS,
          txs: block.txs,
          parentStateRoot: head.stateRoot,
        },
        this.chain.state(),
        // Senders this node already recovered at admission (by tx hash); others are recovered.
        { senders: this.mempool },
      );
      const walKeys = await this.wal.keysThrough(height);
      crashPoint("before-block-commit", height);
      const committed = await this.chain.commit({
        block,
        encoded: value,
        certificate,
        execution,
        nextValidatorSet: validatorSet.next(),
        extra: (batch) => this.wal.deleteKeys(walKeys, batch),
      });
      crashPoint("after-block-commit", height);
      this.wal.committed(height);
      this.lastCommit = { height, timeMs: this.now(), hash: committed.hash };
      this.counters.heightsCommitted++;
      if (via === "sync") this.counters.blocksSynced++;
      this.counters.txsCommitted += execution.receipts.length;
      this.counters.lastRounds = round + 1;
      this.counters.lastCommitMs = this.now() - started;
      const included = [
        ...execution.receipts.map((r) => r.txHash),
        ...execution.outcomes.flatMap((o) => (!o.ok && o.txHash !== undefined ? [o.txHash] : [])),
      ];
      this.mempool.removeIncluded(included);
      await this.mempool.revalidate(this.chain.state());
      const fields = {
        height,
        round,
        txs: block.txs.length,
        rejected: block.txs.length - execution.receipts.length,
        gasUsed: execution.gasUsed.toString(),
        ms: this.now() - started,
      };
      if (via === "sync") this.log.debug(fields, "committed a synced block");
      else this.log.info(fields, "committed block");
      return true;
    } catch (e) {
      this.halt(`could not commit block ${height}: ${(e as Error).message}`);
      return false;
    } finally {
      this.committing = false;
    }
  }

  /** Block sync jobs, run inside the queue (see applyCommitted). */
  private async runSyncJobs(): Promise<void> {
    const verify = createNodeCryptoVerify();
    let advanced = false;
    while (this.syncJobs.length > 0 && this.running && this.haltReason === null) {
      const job = this.syncJobs.shift()!;
      let committed = 0;
      let failure: { reason: string; invalid: boolean } | null = null;
      for (const { block, certificate } of job.blocks) {
        const height = this.chain.head.height + 1;
        const cert = decodeCertificate(certificate);
        if (!cert.ok) {
          failure = { reason: `certificate does not decode: ${cert.error.detail}`, invalid: true };
          break;
        }
        if (cert.value.height < height) continue; // we got there first
        if (cert.value.height > height) {
          failure = { reason: `expected block ${height}, got ${cert.value.height}`, invalid: false };
          break;
        }
        const set = await this.chain.getValidatorSet(height);
        if (set === undefined) {
          failure = { reason: `no validator set for height ${height}`, invalid: false };
          break;
        }
        const verified = verifyCertificate(cert.value, {
          chainId: this.chain.genesis.chainId,
          validatorSet: set,
          verify,
          height,
          valueHash: sha256(block),
        });
        if (!verified.ok) {
          failure = { reason: `block ${height}: ${verified.error.detail}`, invalid: true };
          break;
        }
        let decoded: ReturnType<typeof decodeBlock>;
        try {
          decoded = decodeBlock(block);
        } catch (e) {
          // Signed by a quorum yet undecodable: the quorum is faulty; stop rather than guess.
          failure = {
            reason: `block ${height} is certified but does not decode: ${(e as Error).message}`,
            invalid: true,
          };
          break;
        }
        if (decoded.header.height !== height) {
          failure = { reason: `block ${height} names height ${decoded.header.height}`, invalid: true };
          break;
        }
        if (!(await this.commitBlock(height, block, cert.value, cert.value.round, set, "sync"))) {
          failure = { reason: this.haltReason ?? "commit failed", invalid: false };
          break;
        }
        committed++;
        advanced = true;
      }
      job.done(failure === null ? { ok: true, committed } : { ok: false, committed, ...failure });
    }
    if (advanced) {
      this.log.debug({ height: this.chain.head.height }, "applied synced blocks");
      await this.startHeight(this.chain.head.height + 1);
    }
  }

  /**
   * While a height makes no progress, re-send what we hold for it (CometBFT's gossip; the
   * simulator's host does the same): our own messages of the last two rounds, and the verified
   * proposals and votes of those rounds, our valid round and any round with a precommit quorum,
   * which a peer that reconnected or lost frames needs to decide.
   */
  private regossip(): void {
    const engine = this.engine;
    const status = engine?.status();
    if (engine === undefined || status === null || status === undefined || this.committing) return;
    const progress = `${this.chain.head.height}/${status.round}/${status.step}/${status.decided}`;
    if (progress !== this.lastProgress) {
      this.lastProgress = progress;
      return;
    }
    if (this.transport.peerCount() === 0) return;
    this.counters.regossips++;
    const top = Math.max(status.round, ...this.ownMessages.map((m) => m.round));
    const sent = new Set<ConsensusMessage>();
    for (const m of this.ownMessages) if (m.round >= top - 1) sent.add(m);
    const { rounds, decidingRounds } = engine.knownRounds();
    const relay = new Set([...rounds.filter((r) => r >= top - 1 && r <= top), ...decidingRounds]);
    if (status.validRound >= 0) relay.add(status.validRound);
    for (const r of relay) {
      for (const m of engine.proposals(r)) sent.add(m);
      for (const m of engine.votes(r, MessageType.Prevote)) sent.add(m);
      for (const m of engine.votes(r, MessageType.Precommit)) sent.add(m);
    }
    for (const m of sent) this.transport.broadcast(m);
    this.log.debug(
      { height: status.height, round: status.round, messages: sent.size },
      "re-gossiped a stalled height",
    );
  }

  private halt(reason: string): void {
    if (this.haltReason !== null) return;
    this.haltReason = reason;
    this.log.fatal({ reason }, "consensus halted: the node keeps serving reads; fix the cause and restart");
  }
}
