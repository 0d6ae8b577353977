import type { KeyWrapper } from "@vitalstream/hsm";
import { getBytes, Wallet } from "ethers";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { Chain } from "../../src/chain/chain.ts";
import type { GenesisDocument } from "../../src/chain/genesis.ts";
import { heightIndexKey, heightKey } from "../../src/chain/records.ts";
import { authenticateRecords, verifyChain } from "../../src/chain/verify.ts";
import { decodeAccount, encodeAccount, storageKey } from "../../src/execution/state.ts";
import { dataPaths } from "../../src/runtime/config.ts";
import { AUDIT_LOG_ADDRESS } from "../../src/runtime/init.ts";
import { openKeyWrapper } from "../../src/runtime/node.ts";
import { EncryptedStore, storeKey } from "../../src/store/encryptedStore.ts";
import { Prefix } from "../../src/store/prefixes.ts";
import { recordData, signTx } from "../fixtures/execution.ts";
import { start, tempNetwork } from "../fixtures/network.ts";

const hex = (bytes: Uint8Array) => Buffer.from(bytes).toString("hex");

let genesis: GenesisDocument;
let keyWrapper: KeyWrapper;
let accounts: string[];
/** Heights holding a receipt, and the head, of the stopped node's chain. */
let txHeights: number[];
let head: number;
let store: EncryptedStore;
let chain: Chain;
/** Every raw record of the store as the node left it (hex key -> sealed value). */
let pristine: Map<string, Uint8Array>;

async function rawRecords(): Promise<Map<string, Uint8Array>> {
  const out = new Map<string, Uint8Array>();
  for await (const [key, value] of store.rawDatabase().iterator()) out.set(hex(key), Uint8Array.from(value));
  return out;
}

beforeAll(async () => {
  const net = await tempNetwork({ emptyBlockIntervalMs: 20, devAccounts: 2 });
  genesis = net.init.genesis;
  accounts = net.init.accounts.map((a) => a.address);
  const node = await start(net.config);
  try {
    const [first, second] = net.init.accounts.map((a) => new Wallet(a.privateKey));
    const txs = [
      await signTx(second!, { nonce: 0, to: AUDIT_LOG_ADDRESS, data: recordData(1), gasLimit: 300_000n }),
      await signTx(first!, {
        nonce: 0,
        to: Wallet.createRandom().address,
        value: 12_345n,
        gasLimit: 21_000n,
      }),
      await signTx(second!, { nonce: 1, to: AUDIT_LOG_ADDRESS, data: recordData(2), gasLimit: 300_000n }),
    ];
    const hashes = [];
    for (const raw of txs) {
      const added = await node.mempool.add(raw);
      if (!added.ok) throw new Error(JSON.stringify(added.error));
      hashes.push(getBytes(added.hash));
    }
    node.host.notifyTransactions();
    const deadline = Date.now() + 20_000;
    for (;;) {
      const located = await Promise.all(hashes.map((h) => node.chain.getTxLocation(h)));
      if (located.every((l) => l !== undefined) && node.chain.head.height >= 6) {
        txHeights = [...new Set(located.map((l) => l!.height))];
        break;
      }
      if (Date.now() > deadline)
        throw new Error(`node stuck at ${node.chain.head.height}: ${node.host.halted}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  } finally {
    await node.stop();
  }
  // Opening a store unwraps its data key (scrypt, ~0.5 s): the tests share one opened store and
  // each test's damage is undone afterwards, record for record.
  keyWrapper = await openKeyWrapper(net.config);
  store = await EncryptedStore.open({ path: dataPaths(net.config).store }, { keyWrapper });
  chain = await Chain.open(store, genesis);
  head = chain.head.height;
  pristine = await rawRecords();
});

afterEach(async () => {
  const now = await rawRecords();
  const raw = store.rawDatabase();
  const batch = raw.batch();
  for (const [key, value] of pristine)
    if (!Buffer.from(value).equals(Buffer.from(now.get(key) ?? []))) batch.put(getBytes(`0x${key}`), value);
  for (const key of now.keys()) if (!pristine.has(key)) batch.del(getBytes(`0x${key}`));
  await batch.write();
});

afterAll(async () => {
  await store?.close();
  await keyWrapper?.close();
});

describe("verifyChain", () => {
  it("runs on a store left as the node wrote it (each test's damage is undone)", async () => {
    expect(await rawRecords()).toEqual(pristine);
    expect((await verifyChain(store, chain)).problems).toEqual([]);
  });

  it("finds nothing wrong with a clean chain, replaying every block", async () => {
    const phases = new Set<string>();
    const report = await verifyChain(store, chain, { onProgress: (p) => phases.add(p.phase) });
    expect(report.problems).toEqual([]);
    expect(report.ok).toBe(true);
    expect(report.moreProblems).toBe(0);
    expect(report.head).toBe(head);
    expect(report.blocks).toBe(head + 1);
    expect(report.transactions).toBe(3);
    expect(report.records).toBe(await authenticateRecords(store, { onCorrupt: () => expect.fail() }));
    expect(report.records).toBeGreaterThan(head * 4);
    expect(phases).toEqual(new Set(["records", "blocks"]));
    expect(txHeights.length).toBeGreaterThan(0);
  });

  it("without replay, checks the chain but executes nothing", async () => {
    const report = await verifyChain(store, chain, { replay: false });
    expect(report).toMatchObject({ ok: true, problems: [], transactions: 0, head });
  });

  it("reports a deleted state record as a 'state' problem naming the record", async () => {
    const address = getBytes(accounts[0]!);
    expect(await store.get(Prefix.Account, address)).toBeDefined();
    await store.batch().del(Prefix.Account, address).write();
    const report = await verifyChain(store, chain);
    expect(report.ok).toBe(false);
    expect(report.problems).toEqual([
      { kind: "state", record: `Account/${hex(address)}`, message: "state record missing from the store" },
    ]);
  });

  it("reports a wrong value under a state key, an account's or a storage slot's", async () => {
    const address = getBytes(accounts[1]!);
    const account = decodeAccount((await store.get(Prefix.Account, address))!);
    const contract = getBytes(AUDIT_LOG_ADDRESS);
    const slot = (await chain.state().storageSlots(contract))[0]!;
    await store
      .batch()
      .put(Prefix.Account, address, encodeAccount({ ...account, balance: account.balance + 1n }))
      .put(Prefix.AccountStorage, storageKey(contract, slot), Uint8Array.of(0x42))
      .write();
    const report = await verifyChain(store, chain);
    expect(report.ok).toBe(false);
    expect(report.problems).toEqual([
      {
        kind: "state",
        record: `Account/${hex(address)}`,
        message: "stored state record differs from re-execution",
      },
      {
        kind: "state",
        record: `AccountStorage/${hex(storageKey(contract, slot))}`,
        message: "stored state record differs from re-execution",
      },
    ]);
  });

  it("reports a state record that re-execution does not produce", async () => {
    const stranger = getBytes(Wallet.createRandom().address);
    await store
      .batch()
      .put(
        Prefix.Account,
        stranger,
        encodeAccount({ nonce: 0n, balance: 10n ** 30n, codeHash: new Uint8Array(32) }),
      )
      .write();
    const report = await verifyChain(store, chain);
    expect(report.problems).toEqual([
      {
        kind: "state",
        record: `Account/${hex(stranger)}`,
        message: "stored state record that re-execution does not produce",
      },
    ]);
  });

  it("reports a raw value modified on disk as a 'record' problem naming bucket and key", async () => {
    const key = heightIndexKey(txHeights[0]!, 0);
    const rawKey = storeKey(Prefix.Receipt, key);
    const raw = store.rawDatabase();
    const sealed = Uint8Array.from((await raw.get(rawKey))!);
    sealed[sealed.length - 20] = sealed[sealed.length - 20]! ^ 0x01;
    await raw.put(rawKey, sealed);
    const report = await verifyChain(store, chain);
    expect(report.ok).toBe(false);
    expect(report.problems).toHaveLength(1);
    expect(report.problems[0]).toMatchObject({ kind: "record", record: `Receipt/${hex(key)}` });
    expect(report.problems[0]!.message).toMatch(/failed authentication/);
  });

  it("reports a damaged block record and the break in the chain at its height", async () => {
    const height = 3;
    const rawKey = storeKey(Prefix.Block, heightKey(height));
    const raw = store.rawDatabase();
    const sealed = Uint8Array.from((await raw.get(rawKey))!);
    sealed[1] = sealed[1]! ^ 0xff; // the nonce
    await raw.put(rawKey, sealed);
    const report = await verifyChain(store, chain);
    expect(report.ok).toBe(false);
    expect(report.problems).toContainEqual(
      expect.objectContaining({ kind: "record", record: `Block/${hex(heightKey(height))}` }),
    );
    expect(report.problems).toContainEqual(expect.objectContaining({ kind: "block", height }));
  });

  it("reports a certificate of another block (two heights' certificates swapped)", async () => {
    const [a, b] = [2, 4];
    const certA = (await store.get(Prefix.Certificate, heightKey(a)))!;
    const certB = (await store.get(Prefix.Certificate, heightKey(b)))!;
    await store
      .batch()
      .put(Prefix.Certificate, heightKey(a), certB)
      .put(Prefix.Certificate, heightKey(b), certA)
      .write();
    const report = await verifyChain(store, chain);
    expect(report.ok).toBe(false);
    expect(report.problems).toEqual([
      {
        kind: "certificate",
        height: a,
        message: `block ${a}: certificate is for height ${b}, expected ${a}`,
      },
      {
        kind: "certificate",
        height: b,
        message: `block ${b}: certificate is for height ${a}, expected ${b}`,
      },
    ]);
  });

  it("reports a missing certificate", async () => {
    await store.batch().del(Prefix.Certificate, heightKey(1)).write();
    const report = await verifyChain(store, chain, { replay: false });
    expect(report.problems).toEqual([
      { kind: "certificate", height: 1, message: "block 1: no commit certificate" },
    ]);
  });

  it("keeps at most maxProblems and counts the rest", async () => {
    const batch = store.batch();
    for (const address of accounts) batch.del(Prefix.Account, getBytes(address));
    batch.del(Prefix.Certificate, heightKey(1));
    await batch.write();
    const report = await verifyChain(store, chain, { maxProblems: 1 });
    expect(report.ok).toBe(false);
    expect(report.problems).toHaveLength(1);
    expect(report.moreProblems).toBe(accounts.length);
  });

  it("after all the damage was undone, the store verifies clean again", async () => {
    expect(await rawRecords()).toEqual(pristine);
    const report = await verifyChain(store, chain);
    expect(report).toMatchObject({ ok: true, problems: [], transactions: 3 });
  });
});
