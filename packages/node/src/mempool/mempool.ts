/**
 * The transaction pool: admits signed transactions from `eth_sendRawTransaction` and gossip after
 * checking everything the EVM would refuse for reasons known before execution, and hands the
 * proposer executable transactions in a fair order.
 *
 * Admission order (cheapest first, so garbage costs little): size, duplicate hash, decode and type,
 * chain id, signature, permitted sender, gas limit bounds, gas price, nonce window, funds, then the
 * pool-wide rules (replacement, per-sender limit, eviction). Every refusal is a value.
 *
 * Eviction policy when full (`maxTxs`): only a sender's highest-nonce transaction may be evicted
 * (evicting any other would leave a nonce gap). Among those, the first evicted is, in order:
 * not executable (waits behind a gap) before executable, lower price per gas, sender holding more
 * transactions (a flood evicts itself before a sender's only transaction), the newest arrival.
 * The new transaction is ranked the same way (as if it were its sender's tail); if it would be the
 * first evicted, it is refused with MEMPOOL_FULL and nothing is evicted.
 *
 * The pool caches each sender's next nonce (read at admission, advanced by `removeIncluded`);
 * `revalidate` re-reads it from state. `add` reads state asynchronously, and all checks against
 * the pool's contents run after the last await, so concurrent adds cannot both take one slot.
 */
import type { Common } from "@ethereumjs/common";
import { Capability, type TypedTransaction } from "@ethereumjs/tx";
import { type Address, bytesToHex } from "@ethereumjs/util";
import { keccak_256 as keccak256 } from "@noble/hashes/sha3.js";
import {
  type ClaimedTx,
  claimedChainId,
  decodeClaimed,
  describeTxError,
  SUPPORTED_TX_TYPES,
} from "../execution/envelope.ts";
import type { Executor, RecoveredSenders } from "../execution/executor.ts";
import { defaultExecutionOptions } from "../execution/options.ts";
import type { StateReader } from "../execution/state.ts";
import { MempoolError, type MempoolErrorCode, type MempoolRejection, mempoolRejection } from "./errors.ts";
import { defaultMempoolOptions, type MempoolOptions } from "./options.ts";

export interface MempoolTx {
  /** 0x-prefixed lowercase hex of keccak256(raw). */
  hash: string;
  /** The canonical EIP-2718 encoding, as received (and as gossiped). */
  raw: Uint8Array;
  /** 0x-prefixed lowercase hex address. */
  sender: string;
  nonce: bigint;
  type: number;
  gasLimit: bigint;
  /** Price per gas at base fee 0: gasPrice, or min(maxFeePerGas, maxPriorityFeePerGas). */
  gasPrice: bigint;
  /** gasPrice for legacy and EIP-2930, maxFeePerGas for EIP-1559. */
  maxFeePerGas: bigint;
  /** Arrival order, the tie-break after price (deterministic, unlike a clock). */
  seq: number;
  /** `now()` at admission, in milliseconds. */
  addedAt: number;
}

export type AddResult =
  | { ok: true; hash: string; sender: string; nonce: bigint; replaced?: string }
  | { ok: false; error: MempoolRejection };

/** An included transaction's hash, or a sender's next nonce after a block. */
export type IncludedTx = string | Uint8Array | { sender: string | Uint8Array; nextNonce: bigint };

export interface MempoolModules {
  /** The executor whose chain rules (common) and block gas limit the pool enforces. */
  executor?: Pick<Executor, "common" | "options">;
  /** Chain rules when there is no executor. */
  common?: Common;
  /** Committed state: the sender's next nonce and balance. */
  state: StateReader;
  /** Whether a sender (0x lowercase hex) may transact. */
  isPermitted(sender: string): boolean | Promise<boolean>;
  /** Milliseconds; only stamps `addedAt` and ages. Defaults to Date.now. */
  now?(): number;
}

export interface MempoolStats {
  txs: number;
  senders: number;
  bytes: number;
  executable: number;
  admittedTotal: number;
  replacedTotal: number;
  rejectedTotal: number;
  evictedTotal: number;
  includedTotal: number;
  /** Removed because their nonce became too low or the sender lost permission. */
  droppedTotal: number;
  /** Age of the oldest pooled transaction in seconds, 0 when empty. */
  oldestAgeSeconds: number;
  rejectedByCode: Partial<Record<MempoolErrorCode, number>>;
}

/**
 * As `RecoveredSenders`, the pool answers with the public keys it recovered at admission for the
 * transactions it holds: pass it to `executeBlock` so that execution does not recover them again.
 */
export interface Mempool extends RecoveredSenders {
  readonly options: Readonly<MempoolOptions> & { maxGasLimit: bigint };
  readonly size: number;
  /**
   * Validates and admits one raw transaction. Never throws on bad input; a failing state read or
   * permission hook (a fault of the node, not of the sender) rejects the promise.
   */
  add(raw: Uint8Array): Promise<AddResult>;
  has(hash: string | Uint8Array): boolean;
  get(hash: string | Uint8Array): MempoolTx | undefined;
  /**
   * Executable transactions for a block: each sender's contiguous run from its next nonce, merged
   * by price per gas (highest first) then arrival, never reordering one sender's nonces. A sender
   * whose next transaction does not fit the gas left is skipped with all its later transactions.
   */
  pending(maxGas: bigint, maxCount: number): MempoolTx[];
  /**
   * After a block commits: removes included transactions (and anything of the same sender below
   * the advanced nonce). Hashes advance the sender's next nonce past the included one; use
   * `{ sender, nextNonce }` when it is known. Returns how many transactions left the pool.
   */
  removeIncluded(included: readonly IncludedTx[]): number;
  /** Re-reads each sender's nonce and permission; drops what became invalid. Returns the count. */
  revalidate(state?: StateReader): Promise<number>;
  stats(): MempoolStats;
  /**
   * The nonce after the sender's contiguous run of pooled transactions (what
   * `eth_getTransactionCount(address, "pending")` answers), or undefined if the pool holds none.
   */
  pendingNonce(sender: string): bigint | undefined;
}

interface SenderTxs {
  address: Uint8Array;
  /** The account's next nonce as last known; no pooled transaction has a lower one. */
  nextNonce: bigint;
  txs: Map<bigint, MempoolTx>;
}

type Decoded =
  | { ok: true; tx: TypedTransaction; sender: Address; publicKey: Uint8Array }
  | { ok: false; error: MempoolRejection };

function decode(raw: Uint8Array, common: Common, chainId: bigint): Decoded {
  const fail = (code: MempoolErrorCode, detail: string, data?: Record<string, string | number>): Decoded => ({
    ok: false,
    error: mempoolRejection(code, detail, data),
  });
  let claimed: ClaimedTx;
  try {
    claimed = claimedChainId(raw);
  } catch (e) {
    return fail("MEMPOOL_MALFORMED", describeTxError(e));
  }
  if (!SUPPORTED_TX_TYPES.has(claimed.type))
    return fail(
      "MEMPOOL_TX_TYPE_UNSUPPORTED",
      `type ${claimed.type}, this network accepts types 0, 1 and 2`,
      {
        type: claimed.type,
      },
    );
  if (claimed.chainId === undefined)
    return fail("MEMPOOL_NOT_REPLAY_PROTECTED", "legacy transaction without EIP-155 chain id");
  if (claimed.chainId !== chainId)
    return fail("MEMPOOL_WRONG_CHAIN_ID", `chain id ${claimed.chainId}, this network is ${chainId}`, {
      chainId: claimed.chainId.toString(),
      expected: chainId.toString(),
    });
  let tx: TypedTransaction;
  try {
    tx = decodeClaimed(claimed, common);
  } catch (e) {
    const detail = describeTxError(e);
    // @ethereumjs checks s <= n/2 and yParity while decoding: those are signature faults.
    if (/signature|yParity|v value/i.test(detail)) return fail("MEMPOOL_INVALID_SIGNATURE", detail);
    return fail("MEMPOOL_MALFORMED", detail);
  }
  // Non-canonical RLP would give the same transaction two hashes: refuse it.
  if (Buffer.compare(tx.serialize(), raw) !== 0) return fail("MEMPOOL_MALFORMED", "non-canonical encoding");
  try {
    if (tx.type === 0 && !tx.supports(Capability.EIP155ReplayProtection))
      return fail("MEMPOOL_NOT_REPLAY_PROTECTED", "legacy transaction without EIP-155 chain id");
    const sender = tx.getSenderAddress();
    return { ok: true, tx, sender, publicKey: tx.getSenderPublicKey() };
  } catch (e) {
    return fail("MEMPOOL_INVALID_SIGNATURE", describeTxError(e));
  }
}

function toHash(hash: string | Uint8Array): string {
  return typeof hash === "string" ? hash.toLowerCase() : bytesToHex(hash);
}

/** Eviction rank: negative when `a` goes before `b`. */
interface EvictionKey {
  executable: boolean;
  gasPrice: bigint;
  senderTxs: number;
  seq: number;
}

function compareEviction(a: EvictionKey, b: EvictionKey): number {
  if (a.executable !== b.executable) return a.executable ? 1 : -1;
  if (a.gasPrice !== b.gasPrice) return a.gasPrice < b.gasPrice ? -1 : 1;
  if (a.senderTxs !== b.senderTxs) return b.senderTxs - a.senderTxs;
  return b.seq - a.seq;
}

/** Block order: higher price first, then earlier arrival. */
function before(a: MempoolTx, b: MempoolTx): boolean {
  return a.gasPrice !== b.gasPrice ? a.gasPrice > b.gasPrice : a.seq < b.seq;
}

function validateOptions(opts: MempoolOptions & { maxGasLimit: bigint }): void {
  const positive = ["maxTxs", "maxTxBytes", "maxTxsPerSender", "nonceWindow"] as const;
  for (const name of positive)
    if (!Number.isSafeInteger(opts[name]) || opts[name] <= 0)
      throw new MempoolError("MEMPOOL_INVALID_OPTIONS", `${name} must be a positive integer`);
  if (!Number.isFinite(opts.priceBumpPercent) || opts.priceBumpPercent < 0)
    throw new MempoolError("MEMPOOL_INVALID_OPTIONS", "priceBumpPercent must be >= 0");
  if (opts.minGasPrice < 0n || opts.minGasLimit < 0n)
    throw new MempoolError("MEMPOOL_INVALID_OPTIONS", "minGasPrice and minGasLimit must be >= 0");
  if (opts.maxGasLimit <= 0n || opts.maxGasLimit < opts.minGasLimit)
    throw new MempoolError("MEMPOOL_INVALID_OPTIONS", "maxGasLimit must be positive and >= minGasLimit");
}

export function createMempool(options: Partial<MempoolOptions>, modules: MempoolModules): Mempool {
  const common = modules.executor?.common ?? modules.common;
  if (common === undefined)
    throw new MempoolError("MEMPOOL_INVALID_OPTIONS", "needs an executor or a common");
  const maxGasLimit =
    options.maxGasLimit ?? modules.executor?.options.blockGasLimit ?? defaultExecutionOptions.blockGasLimit;
  const opts = { ...defaultMempoolOptions, ...options, maxGasLimit };
  validateOptions(opts);
  const chainId = common.chainId();
  const now = modules.now ?? Date.now;
  const bump = BigInt(Math.round(opts.priceBumpPercent * 100));

  const byHash = new Map<string, MempoolTx>();
  /** The sender's public key recovered at admission, per pooled transaction. */
  const publicKeys = new WeakMap<MempoolTx, Uint8Array>();
  const bySender = new Map<string, SenderTxs>();
  let bytes = 0;
  let seq = 0;
  const counters = {
    admittedTotal: 0,
    replacedTotal: 0,
    rejectedTotal: 0,
    evictedTotal: 0,
    includedTotal: 0,
    droppedTotal: 0,
  };
  const rejectedByCode: Partial<Record<MempoolErrorCode, number>> = {};

  const reject = (error: MempoolRejection): AddResult => {
    counters.rejectedTotal++;
    rejectedByCode[error.code] = (rejectedByCode[error.code] ?? 0) + 1;
    return { ok: false, error };
  };

  const unlink = (entry: MempoolTx): void => {
    byHash.delete(entry.hash);
    bytes -= entry.raw.length;
    const sender = bySender.get(entry.sender);
    if (sender === undefined) return;
    if (sender.txs.get(entry.nonce) === entry) sender.txs.delete(entry.nonce);
    if (sender.txs.size === 0) bySender.delete(entry.sender);
  };

  const link = (entry: MempoolTx, sender: SenderTxs): void => {
    byHash.set(entry.hash, entry);
    bytes += entry.raw.length;
    sender.txs.set(entry.nonce, entry);
    bySender.set(entry.sender, sender);
  };

  /** Raises a sender's next nonce and drops its transactions below it; returns how many. */
  const advance = (sender: SenderTxs, nextNonce: bigint): number => {
    if (nextNonce > sender.nextNonce) sender.nextNonce = nextNonce;
    let dropped = 0;
    for (const entry of [...sender.txs.values()])
      if (entry.nonce < sender.nextNonce) {
        unlink(entry);
        dropped++;
      }
    return dropped;
  };

  /** The sender's contiguous run of transactions from its next nonce. */
  const executableRun = (sender: SenderTxs): MempoolTx[] => {
    const run: MempoolTx[] = [];
    for (let nonce = sender.nextNonce; ; nonce++) {
      const entry = sender.txs.get(nonce);
      if (entry === undefined) return run;
      run.push(entry);
    }
  };

  const tailOf = (sender: SenderTxs): MempoolTx => {
    let tail: MempoolTx | undefined;
    for (const entry of sender.txs.values()) if (tail === undefined || entry.nonce > tail.nonce) tail = entry;
    return tail!;
  };

  /** The transaction the eviction policy removes first (see the file comment). */
  const evictionCandidate = (): { entry: MempoolTx; key: EvictionKey } | undefined => {
    let best: { entry: MempoolTx; key: EvictionKey } | undefined;
    for (const sender of bySender.values()) {
      const tail = tailOf(sender);
      const key: EvictionKey = {
        // Every pooled nonce is >= nextNonce, so the run is contiguous iff it has no hole.
        executable: BigInt(sender.txs.size) === tail.nonce - sender.nextNonce + 1n,
        gasPrice: tail.gasPrice,
        senderTxs: sender.txs.size,
        seq: tail.seq,
      };
      if (best === undefined || compareEviction(key, best.key) < 0) best = { entry: tail, key };
    }
    return best;
  };

  const add = async (raw: Uint8Array): Promise<AddResult> => {
    if (!(raw instanceof Uint8Array))
      return reject(mempoolRejection("MEMPOOL_MALFORMED", "not a byte string"));
    if (raw.length > opts.maxTxBytes)
      return reject(
        mempoolRejection("MEMPOOL_TX_TOO_LARGE", `${raw.length} bytes, limit ${opts.maxTxBytes}`, {
          size: raw.length,
          limit: opts.maxTxBytes,
        }),
      );
    if (raw.length === 0) return reject(mempoolRejection("MEMPOOL_MALFORMED", "empty transaction"));
    const hash = bytesToHex(keccak256(raw));
    if (byHash.has(hash)) return reject(mempoolRejection("MEMPOOL_ALREADY_KNOWN", hash, { hash }));

    const decoded = decode(raw, common, chainId);
    if (!decoded.ok) return reject(decoded.error);
    const { tx, publicKey } = decoded;
    const sender = decoded.sender.toString();
    const withTx = (data: Record<string, string | number> = {}) => ({ hash, sender, ...data });

    if (!(await modules.isPermitted(sender)))
      return reject(
        mempoolRejection(
          "MEMPOOL_SENDER_NOT_PERMITTED",
          `${sender} may not transact on this network`,
          withTx(),
        ),
      );

    const intrinsic = tx.getIntrinsicGas();
    const minGasLimit = intrinsic > opts.minGasLimit ? intrinsic : opts.minGasLimit;
    if (tx.gasLimit < minGasLimit)
      return reject(
        mempoolRejection(
          "MEMPOOL_GAS_LIMIT_TOO_LOW",
          `gas limit ${tx.gasLimit}, needs at least ${minGasLimit} (intrinsic gas ${intrinsic})`,
          withTx({ gasLimit: tx.gasLimit.toString(), minimum: minGasLimit.toString() }),
        ),
      );
    if (tx.gasLimit > opts.maxGasLimit)
      return reject(
        mempoolRejection(
          "MEMPOOL_GAS_LIMIT_TOO_HIGH",
          `gas limit ${tx.gasLimit}, block gas limit ${opts.maxGasLimit}`,
          withTx({ gasLimit: tx.gasLimit.toString(), maximum: opts.maxGasLimit.toString() }),
        ),
      );

    const maxFeePerGas = "maxFeePerGas" in tx ? tx.maxFeePerGas : tx.gasPrice;
    const gasPrice =
      "maxPriorityFeePerGas" in tx && tx.maxPriorityFeePerGas < maxFeePerGas
        ? tx.maxPriorityFeePerGas
        : maxFeePerGas;
    if (gasPrice < opts.minGasPrice)
      return reject(
        mempoolRejection(
          "MEMPOOL_GAS_PRICE_TOO_LOW",
          `price per gas ${gasPrice} wei, minimum ${opts.minGasPrice} wei`,
          withTx({ gasPrice: gasPrice.toString(), minimum: opts.minGasPrice.toString() }),
        ),
      );

    const account = await modules.state.getAccount(decoded.sender.bytes);
    const stateNonce = account?.nonce ?? 0n;
    if (tx.nonce < stateNonce)
      return reject(
        mempoolRejection(
          "MEMPOOL_NONCE_TOO_LOW",
          `nonce ${tx.nonce}, next nonce of ${sender} is ${stateNonce}`,
          withTx({ nonce: tx.nonce.toString(), expected: stateNonce.toString() }),
        ),
      );
    const firstTooHigh = stateNonce + BigInt(opts.nonceWindow);
    if (tx.nonce >= firstTooHigh)
      return reject(
        mempoolRejection(
          "MEMPOOL_NONCE_TOO_HIGH",
          `nonce ${tx.nonce}, next nonce of ${sender} is ${stateNonce} and the pool takes nonces below ${firstTooHigh}`,
          withTx({
            nonce: tx.nonce.toString(),
            expected: stateNonce.toString(),
            limit: firstTooHigh.toString(),
          }),
        ),
      );
    const cost = tx.value + tx.gasLimit * maxFeePerGas;
    const balance = account?.balance ?? 0n;
    if (balance < cost)
      return reject(
        mempoolRejection(
          "MEMPOOL_INSUFFICIENT_FUNDS",
          `balance ${balance} wei, gas limit x max fee + value is ${cost} wei`,
          withTx({ balance: balance.toString(), cost: cost.toString() }),
        ),
      );

    // No await below: the checks against the pool and the insertion are one atomic step.
    if (byHash.has(hash)) return reject(mempoolRejection("MEMPOOL_ALREADY_KNOWN", hash, { hash }));
    const senderTxs: SenderTxs = bySender.get(sender) ?? {
      address: decoded.sender.bytes,
      nextNonce: stateNonce,
      txs: new Map(),
    };
    counters.droppedTotal += advance(senderTxs, stateNonce);
    if (tx.nonce < senderTxs.nextNonce)
      return reject(
        mempoolRejection(
          "MEMPOOL_NONCE_TOO_LOW",
          `nonce ${tx.nonce}, next nonce of ${sender} is ${senderTxs.nextNonce}`,
          withTx({ nonce: tx.nonce.toString(), expected: senderTxs.nextNonce.toString() }),
        ),
      );
    const entry: MempoolTx = {
      hash,
      raw,
      sender,
      nonce: tx.nonce,
      type: tx.type,
      gasLimit: tx.gasLimit,
      gasPrice,
      maxFeePerGas,
      seq: seq + 1,
      addedAt: now(),
    };
    publicKeys.set(entry, publicKey);

    const existing = senderTxs.txs.get(tx.nonce);
    if (existing !== undefined) {
      const required = (value: bigint) => {
        const bumped = (value * (10_000n + bump) + 9_999n) / 10_000n;
        return bumped > value ? bumped : value + 1n;
      };
      const minPrice = required(existing.gasPrice);
      const minFeeCap = required(existing.maxFeePerGas);
      if (gasPrice < minPrice || maxFeePerGas < minFeeCap)
        return reject(
          mempoolRejection(
            "MEMPOOL_REPLACEMENT_UNDERPRICED",
            `nonce ${tx.nonce} of ${sender} is taken by ${existing.hash} at ${existing.gasPrice} wei per gas ` +
              `(max fee ${existing.maxFeePerGas}); a replacement needs at least ${minPrice} (max fee ${minFeeCap}), ` +
              `got ${gasPrice} (max fee ${maxFeePerGas})`,
            withTx({
              replacing: existing.hash,
              gasPrice: gasPrice.toString(),
              minimum: minPrice.toString(),
              maxFeePerGas: maxFeePerGas.toString(),
              minimumMaxFeePerGas: minFeeCap.toString(),
            }),
          ),
        );
      seq++;
      unlink(existing);
      link(entry, senderTxs);
      counters.admittedTotal++;
      counters.replacedTotal++;
      return { ok: true, hash, sender, nonce: tx.nonce, replaced: existing.hash };
    }

    if (senderTxs.txs.size >= opts.maxTxsPerSender)
      return reject(
        mempoolRejection(
          "MEMPOOL_SENDER_LIMIT",
          `${sender} already has ${senderTxs.txs.size} pooled transactions, limit ${opts.maxTxsPerSender}`,
          withTx({ pooled: senderTxs.txs.size, limit: opts.maxTxsPerSender }),
        ),
      );

    if (byHash.size >= opts.maxTxs) {
      const victim = evictionCandidate();
      let gapFree = true;
      for (let nonce = senderTxs.nextNonce; nonce < tx.nonce; nonce++)
        if (!senderTxs.txs.has(nonce)) gapFree = false;
      const newKey: EvictionKey = {
        executable: gapFree,
        gasPrice,
        senderTxs: senderTxs.txs.size + 1,
        seq: entry.seq,
      };
      if (victim === undefined || compareEviction(newKey, victim.key) <= 0)
        return reject(
          mempoolRejection(
            "MEMPOOL_FULL",
            `${byHash.size} transactions pooled, limit ${opts.maxTxs}, and this one ranks lowest ` +
              `(price per gas ${gasPrice} wei)`,
            withTx({ pooled: byHash.size, limit: opts.maxTxs, gasPrice: gasPrice.toString() }),
          ),
        );
      unlink(victim.entry);
      counters.evictedTotal++;
    }
    seq++;
    link(entry, senderTxs);
    counters.admittedTotal++;
    return { ok: true, hash, sender, nonce: tx.nonce };
  };

  const pending = (maxGas: bigint, maxCount: number): MempoolTx[] => {
    const runs: MempoolTx[][] = [];
    for (const sender of bySender.values()) {
      const run = executableRun(sender);
      if (run.length > 0) runs.push(run);
    }
    // Binary min-heap (by `before`) over each sender's next transaction: [run index, position].
    const heap: [number, number][] = [];
    const head = (item: [number, number]) => runs[item[0]]![item[1]]!;
    const less = (i: number, j: number) => before(head(heap[i]!), head(heap[j]!));
    const swap = (i: number, j: number) => {
      [heap[i], heap[j]] = [heap[j]!, heap[i]!];
    };
    const push = (item: [number, number]) => {
      heap.push(item);
      for (let i = heap.length - 1; i > 0; ) {
        const parent = (i - 1) >> 1;
        if (!less(i, parent)) break;
        swap(i, parent);
        i = parent;
      }
    };
    const pop = (): [number, number] => {
      const top = heap[0]!;
      const last = heap.pop()!;
      if (heap.length > 0) {
        heap[0] = last;
        for (let i = 0; ; ) {
          const l = 2 * i + 1;
          const r = l + 1;
          let m = i;
          if (l < heap.length && less(l, m)) m = l;
          if (r < heap.length && less(r, m)) m = r;
          if (m === i) break;
          swap(i, m);
          i = m;
        }
      }
      return top;
    };
    for (let i = 0; i < runs.length; i++) push([i, 0]);

    const picked: MempoolTx[] = [];
    let gasLeft = maxGas;
    while (heap.length > 0 && picked.length < maxCount) {
      const item = pop();
      const entry = head(item);
      // Too big for what is left: the sender's later nonces cannot go without it.
      if (entry.gasLimit > gasLeft) continue;
      picked.push(entry);
      gasLeft -= entry.gasLimit;
      if (item[1] + 1 < runs[item[0]]!.length) push([item[0], item[1] + 1]);
    }
    return picked;
  };

  const removeIncluded = (included: readonly IncludedTx[]): number => {
    let removed = 0;
    for (const item of included) {
      if (typeof item === "string" || item instanceof Uint8Array) {
        const entry = byHash.get(toHash(item));
        if (entry === undefined) continue;
        const sender = bySender.get(entry.sender)!;
        unlink(entry);
        counters.includedTotal++;
        removed++;
        removed += advance(sender, entry.nonce + 1n);
        continue;
      }
      const sender = bySender.get(toHash(item.sender));
      if (sender === undefined) continue;
      const count = advance(sender, item.nextNonce);
      counters.includedTotal += count;
      removed += count;
    }
    return removed;
  };

  const revalidate = async (state: StateReader = modules.state): Promise<number> => {
    let dropped = 0;
    for (const [address, snapshot] of [...bySender.entries()]) {
      const account = await state.getAccount(snapshot.address);
      const permitted = await modules.isPermitted(address);
      const sender = bySender.get(address);
      if (sender === undefined) continue;
      if (!permitted) {
        dropped += sender.txs.size;
        for (const entry of [...sender.txs.values()]) unlink(entry);
        continue;
      }
      // State is authoritative: it may also lower a nonce that removeIncluded advanced optimistically.
      sender.nextNonce = account?.nonce ?? 0n;
      dropped += advance(sender, sender.nextNonce);
    }
    counters.droppedTotal += dropped;
    return dropped;
  };

  const stats = (): MempoolStats => {
    let executable = 0;
    let oldest: number | undefined;
    for (const sender of bySender.values()) executable += executableRun(sender).length;
    for (const entry of byHash.values())
      if (oldest === undefined || entry.addedAt < oldest) oldest = entry.addedAt;
    return {
      txs: byHash.size,
      senders: bySender.size,
      bytes,
      executable,
      ...counters,
      oldestAgeSeconds: oldest === undefined ? 0 : Math.max(0, (now() - oldest) / 1000),
      rejectedByCode: { ...rejectedByCode },
    };
  };

  return {
    options: opts,
    get size() {
      return byHash.size;
    },
    add,
    has: (hash) => byHash.has(toHash(hash)),
    recoveredPublicKey: (txHash) => {
      const entry = byHash.get(bytesToHex(txHash));
      return entry === undefined ? undefined : publicKeys.get(entry);
    },
    get: (hash) => byHash.get(toHash(hash)),
    pending,
    removeIncluded,
    revalidate,
    stats,
    pendingNonce: (address) => {
      const sender = bySender.get(address.toLowerCase());
      if (sender === undefined) return undefined;
      let nonce = sender.nextNonce;
      while (sender.txs.has(nonce)) nonce++;
      return nonce;
    },
  };
}
