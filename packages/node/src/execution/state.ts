/**
 * Flat EVM state: accounts, storage slots and code as plain key-value records, no Merkle trie.
 *
 * Key encodings (store buckets from `store/prefixes.ts`):
 * - Account:        address (20 B)              -> RLP([nonce, balance]) or RLP([nonce, balance, codeHash])
 *                                                  (the code hash is left out for accounts without code)
 * - AccountStorage: address (20 B) || slot (32 B) -> the value without leading zero bytes (a zero
 *                                                  value is a deleted record, never stored)
 * - Code:           code hash (32 B)             -> bytecode
 *
 * The divergence check is a chained commitment over the changes of each block, see
 * `stateCommitment`: two nodes that executed the same blocks from the same state agree on it.
 */
import { createHash } from "node:crypto";
import { RLP } from "@ethereumjs/rlp";
import { bigIntToUnpaddedBytes, bytesToBigInt, KECCAK256_NULL } from "@ethereumjs/util";
import type { EncryptedStore, StoreWrite } from "../store/encryptedStore.ts";
import { Prefix } from "../store/prefixes.ts";

export const ADDRESS_BYTES = 20;
export const SLOT_BYTES = 32;
export const STATE_ROOT_BYTES = 32;
/** The state commitment before any block (an empty state). */
export const GENESIS_STATE_ROOT = new Uint8Array(STATE_ROOT_BYTES);
const COMMITMENT_DOMAIN = new TextEncoder().encode("vitalstream-state/1");

export interface AccountRecord {
  nonce: bigint;
  balance: bigint;
  /** keccak256 of the code; KECCAK256_NULL for an account without code. */
  codeHash: Uint8Array;
}

/** Read access to committed state; the executor never writes through it. */
export interface StateReader {
  getAccount(address: Uint8Array): Promise<AccountRecord | undefined>;
  /** The slot's value without leading zeros; undefined for zero. */
  getStorage(address: Uint8Array, slot: Uint8Array): Promise<Uint8Array | undefined>;
  getCode(codeHash: Uint8Array): Promise<Uint8Array | undefined>;
  /** The slots of one account that hold a value (needed to clear an account's storage). */
  storageSlots(address: Uint8Array): Promise<Uint8Array[]>;
}

export type StateChange =
  | { kind: "account"; address: Uint8Array; account: AccountRecord | undefined }
  | { kind: "storage"; address: Uint8Array; slot: Uint8Array; value: Uint8Array | undefined }
  | { kind: "code"; codeHash: Uint8Array; code: Uint8Array };

export function encodeAccount(account: AccountRecord): Uint8Array {
  const fields = [bigIntToUnpaddedBytes(account.nonce), bigIntToUnpaddedBytes(account.balance)];
  if (!equalBytes(account.codeHash, KECCAK256_NULL)) fields.push(account.codeHash);
  return RLP.encode(fields);
}

export function decodeAccount(bytes: Uint8Array): AccountRecord {
  const fields = RLP.decode(bytes) as Uint8Array[];
  if (!Array.isArray(fields) || fields.length < 2 || fields.length > 3)
    throw new Error("malformed account record");
  return {
    nonce: bytesToBigInt(fields[0]!),
    balance: bytesToBigInt(fields[1]!),
    codeHash: fields[2] ?? KECCAK256_NULL,
  };
}

export function storageKey(address: Uint8Array, slot: Uint8Array): Uint8Array {
  const key = new Uint8Array(ADDRESS_BYTES + SLOT_BYTES);
  key.set(address, 0);
  key.set(slot, ADDRESS_BYTES);
  return key;
}

export function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && Buffer.compare(a, b) === 0;
}

export function stripLeadingZeros(value: Uint8Array): Uint8Array {
  let i = 0;
  while (i < value.length && value[i] === 0) i++;
  return value.subarray(i);
}

function hex(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("hex");
}

function fromHex(text: string): Uint8Array {
  return new Uint8Array(Buffer.from(text, "hex"));
}

/** The change's store bucket and key: also the canonical order of changes. */
export function changeStoreKey(change: StateChange): { prefix: number; key: Uint8Array } {
  switch (change.kind) {
    case "account":
      return { prefix: Prefix.Account, key: change.address };
    case "storage":
      return { prefix: Prefix.AccountStorage, key: storageKey(change.address, change.slot) };
    case "code":
      return { prefix: Prefix.Code, key: change.codeHash };
  }
}

function changeValue(change: StateChange): Uint8Array | undefined {
  switch (change.kind) {
    case "account":
      return change.account === undefined ? undefined : encodeAccount(change.account);
    case "storage":
      return change.value;
    case "code":
      return change.code;
  }
}

function compareChanges(a: StateChange, b: StateChange): number {
  const ka = changeStoreKey(a);
  const kb = changeStoreKey(b);
  return ka.prefix - kb.prefix || Buffer.compare(ka.key, kb.key);
}

/**
 * The state commitment of a block:
 *
 *   root_N = SHA-256("vitalstream-state/1" || root_{N-1} || count u32 BE ||
 *                    for each change, in (bucket, key) order:
 *                      bucket u8 || key length u8 || key || present u8 (0|1) ||
 *                      [value length u32 BE || value])
 *
 * where the changes are the records a block writes or deletes, with their canonical encodings
 * (the same bytes the store holds in clear). A block without changes keeps root_{N-1}. It commits
 * to the history of state changes, which is what detects divergence between validators; it is not
 * a commitment a light client could check one account against (that would need a trie).
 */
export function stateCommitment(previousRoot: Uint8Array, changes: readonly StateChange[]): Uint8Array {
  if (changes.length === 0) return previousRoot;
  const sorted = [...changes].sort(compareChanges);
  const hash = createHash("sha256");
  hash.update(COMMITMENT_DOMAIN);
  hash.update(previousRoot);
  const u32 = Buffer.alloc(4);
  u32.writeUInt32BE(sorted.length);
  hash.update(u32);
  for (const change of sorted) {
    const { prefix, key } = changeStoreKey(change);
    const value = changeValue(change);
    hash.update(Uint8Array.of(prefix, key.length));
    hash.update(key);
    if (value === undefined) {
      hash.update(Uint8Array.of(0));
    } else {
      u32.writeUInt32BE(value.length);
      hash.update(Uint8Array.of(1));
      hash.update(u32);
      hash.update(value);
    }
  }
  return new Uint8Array(hash.digest());
}

/** A plain in-memory state (tests, benchmarks, the devnet genesis). */
export class MemoryState implements StateReader {
  private readonly accounts = new Map<string, AccountRecord>();
  private readonly storage = new Map<string, Map<string, Uint8Array>>();
  private readonly code = new Map<string, Uint8Array>();

  async getAccount(address: Uint8Array): Promise<AccountRecord | undefined> {
    const account = this.accounts.get(hex(address));
    return account === undefined ? undefined : { ...account };
  }

  async getStorage(address: Uint8Array, slot: Uint8Array): Promise<Uint8Array | undefined> {
    return this.storage.get(hex(address))?.get(hex(slot));
  }

  async getCode(codeHash: Uint8Array): Promise<Uint8Array | undefined> {
    return this.code.get(hex(codeHash));
  }

  async storageSlots(address: Uint8Array): Promise<Uint8Array[]> {
    return [...(this.storage.get(hex(address))?.keys() ?? [])].sort().map(fromHex);
  }

  apply(changes: readonly StateChange[]): void {
    for (const change of changes) {
      if (change.kind === "account") {
        if (change.account === undefined) this.accounts.delete(hex(change.address));
        else this.accounts.set(hex(change.address), { ...change.account });
      } else if (change.kind === "storage") {
        const address = hex(change.address);
        let slots = this.storage.get(address);
        if (change.value === undefined) {
          slots?.delete(hex(change.slot));
          continue;
        }
        if (slots === undefined) {
          slots = new Map();
          this.storage.set(address, slots);
        }
        slots.set(hex(change.slot), change.value);
      } else {
        this.code.set(hex(change.codeHash), change.code);
      }
    }
  }

  /** The whole state as changes over an empty state (for comparisons). */
  export(): StateChange[] {
    const out: StateChange[] = [];
    for (const [address, account] of this.accounts)
      out.push({ kind: "account", address: fromHex(address), account: { ...account } });
    for (const [address, slots] of this.storage)
      for (const [slot, value] of slots)
        out.push({ kind: "storage", address: fromHex(address), slot: fromHex(slot), value });
    for (const [codeHash, code] of this.code) out.push({ kind: "code", codeHash: fromHex(codeHash), code });
    return out;
  }

  /** Sets an account directly (genesis allocations). */
  setAccount(address: Uint8Array, account: AccountRecord): void {
    this.accounts.set(hex(address), { ...account });
  }
}

/**
 * A store that can also read without the thread-pool round trip (`getSync`, classic-level 3's
 * synchronous get). Optional, so that this reader works with stores that do not have it yet.
 */
type SyncReadableStore = EncryptedStore & {
  getSync?(prefix: number, key: Uint8Array): Uint8Array | undefined;
};

/**
 * Committed state read from the encrypted store.
 *
 * Reads are synchronous when the store offers it: a record transaction reads four fresh storage
 * slots, and each asynchronous LevelDB read costs a thread-pool round trip (wake a worker, wake
 * the event loop) that took longer than executing the transaction on a busy core.
 */
export class StoreState implements StateReader {
  private readonly store: SyncReadableStore;

  constructor(store: EncryptedStore) {
    this.store = store;
  }

  private async read(prefix: number, key: Uint8Array): Promise<Uint8Array | undefined> {
    if (this.store.getSync !== undefined) return this.store.getSync(prefix, key);
    return this.store.get(prefix, key);
  }

  async getAccount(address: Uint8Array): Promise<AccountRecord | undefined> {
    const bytes = await this.read(Prefix.Account, address);
    return bytes === undefined ? undefined : decodeAccount(bytes);
  }

  async getStorage(address: Uint8Array, slot: Uint8Array): Promise<Uint8Array | undefined> {
    return this.read(Prefix.AccountStorage, storageKey(address, slot));
  }

  async getCode(codeHash: Uint8Array): Promise<Uint8Array | undefined> {
    return this.read(Prefix.Code, codeHash);
  }

  async storageSlots(address: Uint8Array): Promise<Uint8Array[]> {
    const upper = new Uint8Array(ADDRESS_BYTES + SLOT_BYTES + 1);
    upper.set(address, 0);
    upper.fill(0xff, ADDRESS_BYTES);
    const slots: Uint8Array[] = [];
    for await (const [key] of this.store.range(Prefix.AccountStorage, { gte: address, lt: upper }))
      if (key.length === ADDRESS_BYTES + SLOT_BYTES) slots.push(key.slice(ADDRESS_BYTES));
    return slots;
  }
}

/** Adds a block's state changes to a store batch (the caller writes it with the block's receipts). */
export function putStateChanges(batch: StoreWrite, changes: readonly StateChange[]): StoreWrite {
  for (const change of changes) {
    const { prefix, key } = changeStoreKey(change);
    const value = changeValue(change);
    if (value === undefined) batch.del(prefix, key);
    else batch.put(prefix, key, value);
  }
  return batch;
}

export { fromHex as hexToBytesUnprefixed, hex as bytesToHexUnprefixed };
