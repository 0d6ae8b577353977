/**
 * The double-sign guard: wraps a Signer so that a validator never signs two conflicting consensus
 * messages, across restarts and crashes.
 *
 * For each chain it keeps the high-water mark (height, round, step) and the payload hashes of the
 * slots it signed at the latest heights. A request is
 *   - signed again if the slot was signed with the identical payload (a replay after a crash);
 *   - refused if the slot was signed with a different payload (a conflict);
 *   - refused if it is below the high-water mark and was never signed (a regression);
 *   - otherwise recorded durably (fsync) and signed.
 * The record and the backend signature run concurrently, and the signature is released only once
 * the record is durable: a crash in between leaves a record of a signature that never left, which
 * is safe. Requests are serialised.
 */
import { HsmError } from "../errors.ts";
import type { Signer } from "../interface.ts";
import type { RevocationList } from "../revocation.ts";
import { sha256 } from "../signature.ts";
import { buildInterchange, type Interchange, parseInterchange } from "./interchange.ts";
import { Journal, type SignRecord } from "./journal.ts";

export interface ConsensusSignRequest {
  chainId: string;
  height: number;
  round: number;
  /** 1 proposal, 2 prevote, 3 precommit (the consensus message type). */
  step: number;
  /** The exact bytes to sign (the canonical sign bytes). */
  payload: Uint8Array;
}

export interface GuardOptions {
  /** Path of the signing journal (one per validator key). */
  journalPath: string;
  revocation?: RevocationList;
  /** Heights of history kept below the high-water mark (for identical re-signing after replay). */
  keepHeights?: number;
  /** Compact the journal when it holds more records than this. */
  compactAfter?: number;
}

/** Named crash points for tests (CometBFT's FAIL_TEST_INDEX): the process kills itself there. */
export type GuardCrashPoint = "after-record" | "before-record";

function crashAt(point: GuardCrashPoint): void {
  if (process.env.VITALSTREAM_GUARD_CRASH_POINT === point) process.kill(process.pid, "SIGKILL");
}

interface ChainState {
  hwm: [number, number, number];
  /** "h/r/s" -> payload hash */
  slots: Map<string, string>;
}

function compare(a: readonly number[], b: readonly number[]): number {
  for (let i = 0; i < 3; i++) if (a[i] !== b[i]) return a[i]! - b[i]!;
  return 0;
}

export class GuardedSigner {
  readonly signer: Signer;
  private readonly journal: Journal;
  private readonly chains = new Map<string, ChainState>();
  private readonly revocation: RevocationList | undefined;
  private readonly keepHeights: number;
  private readonly compactAfter: number;
  private readonly publicKey: Uint8Array;
  private queue: Promise<unknown> = Promise.resolve();
  private closed = false;

  private constructor(
    signer: Signer,
    publicKey: Uint8Array,
    journal: Journal,
    records: SignRecord[],
    opts: GuardOptions,
  ) {
    this.signer = signer;
    this.publicKey = publicKey;
    this.journal = journal;
    this.revocation = opts.revocation;
    this.keepHeights = opts.keepHeights ?? 2;
    this.compactAfter = opts.compactAfter ?? 10_000;
    for (const r of records) this.remember(r);
  }

  /** Opens the guard's journal for this signer (creating it on first use). */
  static async open(signer: Signer, opts: GuardOptions): Promise<GuardedSigner> {
    const publicKey = await signer.publicKey();
    const { journal, records } = Journal.open(opts.journalPath, {
      publicKey: Buffer.from(publicKey).toString("hex"),
      algorithm: signer.algorithm,
    });
    return new GuardedSigner(signer, publicKey, journal, records, opts);
  }

  /** The high-water mark for a chain, or null if nothing was signed for it. */
  highWaterMark(chainId: string): { height: number; round: number; step: number } | null {
    const c = this.chains.get(chainId);
    if (c === undefined) return null;
    const [height, round, step] = c.hwm;
    return { height, round, step };
  }

  sign(req: ConsensusSignRequest): Promise<Uint8Array> {
    const run = this.queue.then(() => this.signNow(req));
    this.queue = run.catch(() => undefined);
    return run;
  }

  private async signNow(req: ConsensusSignRequest): Promise<Uint8Array> {
    if (this.closed) throw new HsmError("HSM_CLOSED", "the guarded signer is closed");
    const meta = { provider: this.signer.provider, keyId: this.signer.keyId };
    if (
      ![req.height, req.round, req.step].every((x) => Number.isSafeInteger(x) && x >= 0) ||
      req.chainId === ""
    ) {
      throw new HsmError(
        "HSM_INVALID_CONFIG",
        "sign request needs a chain id and non-negative integer height, round and step",
        meta,
      );
    }
    if (this.revocation?.isRevoked({ keyId: this.signer.keyId, publicKey: this.publicKey })) {
      throw new HsmError(
        "HSM_KEY_REVOKED",
        `key ${this.signer.keyId} is on the revocation list: refusing to sign`,
        meta,
      );
    }
    const hrs: [number, number, number] = [req.height, req.round, req.step];
    const slot = hrs.join("/");
    const hash = Buffer.from(sha256(req.payload)).toString("hex");
    const chain = this.chains.get(req.chainId);
    const previous = chain?.slots.get(slot);
    if (previous !== undefined) {
      if (previous !== hash) {
        throw new HsmError(
          "HSM_DOUBLE_SIGN_REFUSED",
          `refusing to sign a conflicting message for chain ${req.chainId} at height ${req.height}, round ${req.round}, step ${req.step}`,
          { ...meta, height: req.height, round: req.round, step: req.step },
        );
      }
      return this.signer.sign(req.payload); // identical payload: a replay, safe to sign again
    }
    if (chain !== undefined && compare(hrs, chain.hwm) <= 0) {
      throw new HsmError(
        "HSM_DOUBLE_SIGN_REFUSED",
        `refusing to sign at height ${req.height}, round ${req.round}, step ${req.step}: already signed up to ${chain.hwm.join("/")} on chain ${req.chainId}`,
        { ...meta, height: req.height, round: req.round, step: req.step },
      );
    }
    const record: SignRecord = {
      chainId: req.chainId,
      height: req.height,
      round: req.round,
      step: req.step,
      payloadHash: hash,
    };
    crashAt("before-record");
    // The record's durable write starts first (on libuv's thread pool) and the backend signs
    // meanwhile, even a synchronous one; the signature is returned only once the record is on disk.
    const recording = this.journal.append(record);
    recording.catch(() => undefined); // awaited below
    let signing: Promise<Uint8Array>;
    try {
      signing = this.signer.sign(req.payload);
    } catch (e) {
      signing = Promise.reject(e);
    }
    signing.catch(() => undefined); // awaited below; if the record fails the signature is discarded
    await recording; // throws HSM_GUARD_STORE_FAILED
    this.remember(record);
    crashAt("after-record");
    if (this.journal.recordCount > this.compactAfter) this.compact();
    return signing;
  }

  private remember(r: SignRecord): void {
    let c = this.chains.get(r.chainId);
    if (c === undefined) {
      c = { hwm: [r.height, r.round, r.step], slots: new Map() };
      this.chains.set(r.chainId, c);
    }
    const hrs: [number, number, number] = [r.height, r.round, r.step];
    const slot = hrs.join("/");
    const existing = c.slots.get(slot);
    c.slots.set(slot, existing !== undefined && existing !== r.payloadHash ? "conflict" : r.payloadHash);
    if (compare(hrs, c.hwm) > 0) c.hwm = hrs;
    const floor = c.hwm[0] - this.keepHeights;
    if (c.slots.size > 64) {
      for (const key of c.slots.keys()) if (Number(key.split("/")[0]) < floor) c.slots.delete(key);
    }
  }

  private records(): SignRecord[] {
    const out: SignRecord[] = [];
    for (const [chainId, c] of this.chains) {
      const floor = c.hwm[0] - this.keepHeights;
      for (const [slot, payloadHash] of c.slots) {
        const [height, round, step] = slot.split("/").map(Number) as [number, number, number];
        if (height >= floor || compare([height, round, step], c.hwm) === 0)
          out.push({ chainId, height, round, step, payloadHash });
      }
    }
    return out.sort((a, b) => compare([a.height, a.round, a.step], [b.height, b.round, b.step]));
  }

  private compact(): void {
    this.journal.rewrite(this.records());
  }

  /** The signing history as an interchange document (to move a validator to another machine). */
  exportHistory(): Interchange {
    return buildInterchange({
      publicKey: this.publicKey,
      algorithm: this.signer.algorithm,
      keyId: this.signer.keyId,
      records: this.records(),
    });
  }

  /**
   * Merges an exported history: the high-water mark becomes the higher of both, every imported
   * slot is remembered, and a slot the two histories disagree on can never be signed.
   */
  async importHistory(doc: unknown): Promise<{ imported: number }> {
    const run = this.queue.then(() => {
      const parsed = parseInterchange(doc, { publicKey: this.publicKey, algorithm: this.signer.algorithm });
      const merged = parsed.map((r) => {
        const existing = this.chains.get(r.chainId)?.slots.get(`${r.height}/${r.round}/${r.step}`);
        return existing !== undefined && existing !== r.payloadHash ? { ...r, payloadHash: "conflict" } : r;
      });
      for (const r of merged) this.remember(r);
      this.journal.rewrite(this.records()); // one durable, atomic write for the whole import
      return { imported: parsed.length };
    });
    this.queue = run.catch(() => undefined);
    return run;
  }

  async close(): Promise<void> {
    await this.queue;
    this.closed = true;
    this.journal.close();
  }
}

export function createGuardedSigner(signer: Signer, opts: GuardOptions): Promise<GuardedSigner> {
  return GuardedSigner.open(signer, opts);
}
