/**
 * The state one block writes into: the @ethereumjs `StateManagerInterface` over a `StateReader`.
 *
 * Writes stay in memory; `checkpoint`/`commit`/`revert` are an undo journal (a reverted call
 * restores exactly the entries it overwrote). At the end of the block `changes()` lists the records
 * that differ from the committed state, for one store batch and for the state commitment.
 */
import type { AccountFields, StateManagerInterface } from "@ethereumjs/common";
import { Account, type Address, KECCAK256_NULL } from "@ethereumjs/util";
import { keccak_256 as keccak256 } from "@noble/hashes/sha3.js";
import {
  type AccountRecord,
  bytesToHexUnprefixed,
  equalBytes,
  hexToBytesUnprefixed,
  type StateChange,
  type StateReader,
  stripLeadingZeros,
} from "./state.ts";

const EMPTY = new Uint8Array(0);

/** An overlay entry: `null` means deleted (or zero, for storage). */
type Entry<T> = T | null;

interface UndoRecord {
  map: Map<string, unknown>;
  key: string;
  /** `undefined`: the key was absent before. */
  previous: unknown;
}

function toRecord(account: Account): AccountRecord {
  return { nonce: account.nonce, balance: account.balance, codeHash: account.codeHash };
}

function toAccount(record: AccountRecord): Account {
  return new Account(record.nonce, record.balance, undefined, record.codeHash);
}

export class StateOverlay implements StateManagerInterface {
  private base: StateReader;
  /** Committed values read so far (cache), keyed like the overlay maps. */
  private readonly baseAccounts = new Map<string, AccountRecord | undefined>();
  private readonly baseStorage = new Map<string, Uint8Array | undefined>();
  private readonly baseCode = new Map<string, Uint8Array | undefined>();
  /** Writes of this block. */
  private readonly accounts = new Map<string, Entry<AccountRecord>>();
  private readonly storage = new Map<string, Entry<Uint8Array>>();
  private readonly code = new Map<string, Uint8Array>();
  /**
   * Storage ids written per address (a superset after reverts): clearing an account's storage must
   * not scan every slot of the block, as EIP-161 clears the coinbase after every transaction.
   */
  private readonly storageIds = new Map<string, Set<string>>();
  /** Addresses whose committed storage was cleared (value: true) in this block. */
  private readonly cleared = new Map<string, boolean>();
  private readonly journal: UndoRecord[] = [];
  private readonly checkpoints: number[] = [];
  private readonly original = new Map<string, Uint8Array>();

  readonly originalStorageCache = {
    get: async (address: Address, key: Uint8Array): Promise<Uint8Array> => {
      const id = bytesToHexUnprefixed(address.bytes) + bytesToHexUnprefixed(key);
      const known = this.original.get(id);
      if (known !== undefined) return known;
      const value = await this.getStorage(address, key);
      this.original.set(id, value);
      return value;
    },
    clear: (): void => {
      this.original.clear();
    },
  };

  constructor(base: StateReader) {
    this.base = base;
  }

  /** Starts a new block over `base`, dropping everything of the previous one. */
  reset(base: StateReader): void {
    this.base = base;
    this.baseAccounts.clear();
    this.baseStorage.clear();
    this.baseCode.clear();
    this.accounts.clear();
    this.storage.clear();
    this.code.clear();
    this.cleared.clear();
    this.storageIds.clear();
    this.journal.length = 0;
    this.checkpoints.length = 0;
    this.original.clear();
  }

  private set<T>(map: Map<string, T>, key: string, value: T): void {
    if (this.checkpoints.length > 0)
      this.journal.push({ map: map as Map<string, unknown>, key, previous: map.get(key) });
    map.set(key, value);
  }

  private async committedAccount(id: string): Promise<AccountRecord | undefined> {
    if (this.baseAccounts.has(id)) return this.baseAccounts.get(id);
    const account = await this.base.getAccount(hexToBytesUnprefixed(id));
    this.baseAccounts.set(id, account);
    return account;
  }

  private async committedStorage(id: string): Promise<Uint8Array | undefined> {
    if (this.baseStorage.has(id)) return this.baseStorage.get(id);
    const value = await this.base.getStorage(
      hexToBytesUnprefixed(id.slice(0, 40)),
      hexToBytesUnprefixed(id.slice(40)),
    );
    this.baseStorage.set(id, value);
    return value;
  }

  private async record(id: string): Promise<AccountRecord | undefined> {
    const written = this.accounts.get(id);
    if (written !== undefined) return written ?? undefined;
    return this.committedAccount(id);
  }

  async getAccount(address: Address): Promise<Account | undefined> {
    const record = await this.record(bytesToHexUnprefixed(address.bytes));
    return record === undefined ? undefined : toAccount(record);
  }

  async putAccount(address: Address, account?: Account): Promise<void> {
    const id = bytesToHexUnprefixed(address.bytes);
    this.set(this.accounts, id, account === undefined ? null : toRecord(account));
  }

  async deleteAccount(address: Address): Promise<void> {
    await this.putAccount(address, undefined);
    await this.clearStorage(address);
  }

  async modifyAccountFields(address: Address, fields: AccountFields): Promise<void> {
    const id = bytesToHexUnprefixed(address.bytes);
    const record = (await this.record(id)) ?? { nonce: 0n, balance: 0n, codeHash: KECCAK256_NULL };
    this.set(this.accounts, id, {
      nonce: fields.nonce ?? record.nonce,
      balance: fields.balance ?? record.balance,
      codeHash: fields.codeHash ?? record.codeHash,
    });
  }

  async putCode(address: Address, value: Uint8Array): Promise<void> {
    const codeHash = keccak256(value);
    const codeId = bytesToHexUnprefixed(codeHash);
    if (value.length > 0 && !this.code.has(codeId)) this.set(this.code, codeId, value.slice());
    await this.modifyAccountFields(address, { codeHash: value.length > 0 ? codeHash : KECCAK256_NULL });
  }

  async getCode(address: Address): Promise<Uint8Array> {
    const record = await this.record(bytesToHexUnprefixed(address.bytes));
    if (record === undefined || equalBytes(record.codeHash, KECCAK256_NULL)) return EMPTY;
    const codeId = bytesToHexUnprefixed(record.codeHash);
    const written = this.code.get(codeId);
    if (written !== undefined) return written;
    if (this.baseCode.has(codeId)) return this.baseCode.get(codeId) ?? EMPTY;
    const code = await this.base.getCode(record.codeHash);
    this.baseCode.set(codeId, code);
    return code ?? EMPTY;
  }

  async getCodeSize(address: Address): Promise<number> {
    return (await this.getCode(address)).length;
  }

  async getStorage(address: Address, key: Uint8Array): Promise<Uint8Array> {
    const addressId = bytesToHexUnprefixed(address.bytes);
    const id = addressId + bytesToHexUnprefixed(key);
    const written = this.storage.get(id);
    if (written !== undefined) return written ?? EMPTY;
    if (this.cleared.get(addressId) === true) return EMPTY;
    return (await this.committedStorage(id)) ?? EMPTY;
  }

  async putStorage(address: Address, key: Uint8Array, value: Uint8Array): Promise<void> {
    const id = bytesToHexUnprefixed(address.bytes) + bytesToHexUnprefixed(key);
    const stripped = stripLeadingZeros(value);
    this.set(this.storage, id, stripped.length === 0 ? null : stripped.slice());
    const addressId = id.slice(0, 40);
    let ids = this.storageIds.get(addressId);
    if (ids === undefined) {
      ids = new Set();
      this.storageIds.set(addressId, ids);
    }
    ids.add(id);
  }

  async clearStorage(address: Address): Promise<void> {
    const addressId = bytesToHexUnprefixed(address.bytes);
    for (const id of this.storageIds.get(addressId) ?? [])
      if (this.storage.get(id) !== null) this.set<Entry<Uint8Array>>(this.storage, id, null);
    if (this.cleared.get(addressId) !== true) this.set(this.cleared, addressId, true);
  }

  async checkpoint(): Promise<void> {
    this.checkpoints.push(this.journal.length);
  }

  async commit(): Promise<void> {
    this.checkpoints.pop();
    // Outside any checkpoint nothing can be reverted any more: forget the undo records.
    if (this.checkpoints.length === 0) this.journal.length = 0;
  }

  async revert(): Promise<void> {
    const mark = this.checkpoints.pop() ?? 0;
    while (this.journal.length > mark) {
      const undo = this.journal.pop()!;
      if (undo.previous === undefined) undo.map.delete(undo.key);
      else undo.map.set(undo.key, undo.previous);
    }
  }

  /** The flat state has no trie root; the block's commitment comes from `changes()`. */
  async getStateRoot(): Promise<Uint8Array> {
    return KECCAK256_NULL;
  }

  async setStateRoot(): Promise<void> {
    throw new Error("StateOverlay: state roots are not addressable in a flat state");
  }

  async hasStateRoot(): Promise<boolean> {
    return false;
  }

  clearCaches(): void {}

  shallowCopy(): StateManagerInterface {
    return new StateOverlay(this.base);
  }

  /**
   * The records this block changed relative to the committed state, in canonical order.
   * Storage of a cleared account is deleted slot by slot (listed from the reader).
   */
  async changes(): Promise<StateChange[]> {
    const out: StateChange[] = [];
    for (const [id, entry] of this.accounts) {
      const before = await this.committedAccount(id);
      const after = entry ?? undefined;
      if (before === undefined && after === undefined) continue;
      if (
        before !== undefined &&
        after !== undefined &&
        before.nonce === after.nonce &&
        before.balance === after.balance &&
        equalBytes(before.codeHash, after.codeHash)
      )
        continue;
      out.push({ kind: "account", address: hexToBytesUnprefixed(id), account: after });
    }
    const storage = new Map(this.storage);
    for (const [addressId, cleared] of this.cleared) {
      if (!cleared) continue;
      for (const slot of await this.base.storageSlots(hexToBytesUnprefixed(addressId))) {
        const id = addressId + bytesToHexUnprefixed(slot);
        if (!storage.has(id)) storage.set(id, null);
      }
    }
    for (const [id, entry] of storage) {
      const committed = await this.committedStorage(id);
      const after = entry ?? undefined;
      if (committed === undefined && after === undefined) continue;
      if (committed !== undefined && after !== undefined && equalBytes(committed, after)) continue;
      out.push({
        kind: "storage",
        address: hexToBytesUnprefixed(id.slice(0, 40)),
        slot: hexToBytesUnprefixed(id.slice(40)),
        value: after,
      });
    }
    for (const [id, code] of this.code) {
      const codeHash = hexToBytesUnprefixed(id);
      if ((await this.base.getCode(codeHash)) !== undefined) continue;
      out.push({ kind: "code", codeHash, code });
    }
    return out;
  }
}
