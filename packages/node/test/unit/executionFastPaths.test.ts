/**
 * The executor's shortcuts must not change a single result: the shared transaction Common, the
 * single RLP decode, senders recovered earlier, and synchronous store reads.
 */
import { RLP } from "@ethereumjs/rlp";
import { createTxFromRLP, paramsTx, type TypedTransaction } from "@ethereumjs/tx";
import { bigIntToUnpaddedBytes, bytesToBigInt, bytesToHex } from "@ethereumjs/util";
import { getBytes, SigningKey, Transaction } from "ethers";
import { beforeAll, describe, expect, it } from "vitest";
import { claimedChainId, decodeClaimed, describeTxError } from "../../src/execution/envelope.ts";
import {
  type BlockExecution,
  createExecutor,
  type Executor,
  type RecoveredSenders,
} from "../../src/execution/executor.ts";
import { StoreState } from "../../src/execution/state.ts";
import { txCommon } from "../../src/execution/txCommon.ts";
import type { EncryptedStore } from "../../src/store/encryptedStore.ts";
import { Prefix } from "../../src/store/prefixes.ts";
import {
  auditLog,
  auditLogAddress,
  CHAIN_ID,
  COINBASE,
  deployAuditLog,
  deployer,
  genesisState,
  recordData,
  signTx,
  WRITER_ROLE,
  writer,
} from "../fixtures/execution.ts";

const CONTRACT = auditLogAddress(0);
const SECP256K1_N = 0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141n;

let executor: Executor;
beforeAll(async () => {
  executor = await createExecutor({ chainId: CHAIN_ID });
  // The VM and a block merge their own parameter sets into the executor's Common first.
  await executor.executeBlock(block(1, []), genesisState());
});

function block(height: number, txs: Uint8Array[]) {
  return { height: BigInt(height), timestamp: 1_800_000_000n + BigInt(height), coinbase: COINBASE, txs };
}

async function sampleTxs(): Promise<Uint8Array[]> {
  return [
    await deployAuditLog(0),
    await signTx(deployer, {
      nonce: 1,
      to: CONTRACT,
      data: auditLog.encodeFunctionData("grantRole", [WRITER_ROLE, writer.address]),
      kind: "legacy",
    }),
    await signTx(writer, {
      nonce: 0,
      to: CONTRACT,
      data: recordData(1),
      kind: "eip2930",
      accessList: [{ address: CONTRACT, storageKeys: [`0x${"00".repeat(31)}01`] }],
    }),
    await signTx(writer, { nonce: 1, to: CONTRACT, data: recordData(2) }),
  ];
}

/** Re-encodes a typed transaction with one RLP field replaced. */
function withField(raw: Uint8Array, index: number, value: Uint8Array): Uint8Array {
  const fields = RLP.decode(raw.subarray(1)) as Uint8Array[];
  fields[index] = value;
  return Uint8Array.from([raw[0]!, ...RLP.encode(fields)]);
}

function decodeOrError(decode: () => TypedTransaction): TypedTransaction | string {
  try {
    return decode();
  } catch (e) {
    return describeTxError(e);
  }
}

describe("transaction decoding", () => {
  it("gives the transactions, parameters and gas createTxFromRLP gives", async () => {
    const txParams = [...new Set(Object.values(paramsTx).flatMap((eip) => Object.keys(eip ?? {})))];
    for (const raw of await sampleTxs()) {
      const fast = decodeClaimed(claimedChainId(raw), executor.common);
      const slow = createTxFromRLP(raw, { common: executor.common });
      expect(fast.serialize()).toEqual(slow.serialize());
      expect(fast.hash()).toEqual(slow.hash());
      expect(fast.getSenderAddress()).toEqual(slow.getSenderAddress());
      expect(fast.getIntrinsicGas()).toBe(slow.getIntrinsicGas());
      expect(fast.common.hardfork()).toBe(slow.common.hardfork());
      expect(fast.common.chainId()).toBe(slow.common.chainId());
      for (const name of txParams) {
        const value = (tx: TypedTransaction) => {
          try {
            return tx.common.param(name);
          } catch (e) {
            return (e as Error).message;
          }
        };
        expect([name, value(fast)]).toEqual([name, value(slow)]);
      }
    }
  });

  it("gives every transaction its own Common, and keeps other parameter sets apart", async () => {
    const [a, b] = (await sampleTxs()).map((raw) => decodeClaimed(claimedChainId(raw), executor.common));
    expect(a!.common).not.toBe(b!.common);
    expect(a!.common).not.toBe(executor.common);
    const copy = txCommon(executor.common).copy();
    copy.updateParams({ 1: { txGas: 1 } });
    expect(copy.param("txGas")).toBe(1n);
    expect(txCommon(executor.common).param("txGas")).toBe(21_000n);
    expect(txCommon(executor.common).copy().param("txGas")).toBe(21_000n);
    expect(txCommon(executor.common)).toBe(txCommon(executor.common));
  });

  it("refuses what createTxFromRLP refuses, with the same reason", async () => {
    const typed = await signTx(writer, { nonce: 1, to: CONTRACT, data: recordData(2) });
    const s = bytesToBigInt((RLP.decode(typed.subarray(1)) as Uint8Array[])[11]!);
    const bad = [
      withField(typed, 1, Uint8Array.of(0, 1)), // nonce with a leading zero
      withField(typed, 9, Uint8Array.of(2)), // yParity 2
      withField(typed, 11, bigIntToUnpaddedBytes(SECP256K1_N - s)), // high s
      withField(typed, 5, new Uint8Array(19)), // 19-byte address
      withField(typed, 8, Uint8Array.of(1)), // access list not a list
    ];
    for (const raw of bad) {
      const fast = decodeOrError(() => decodeClaimed(claimedChainId(raw), executor.common));
      const slow = decodeOrError(() => createTxFromRLP(raw, { common: executor.common }));
      expect(typeof fast).toBe("string");
      expect(fast).toBe(slow);
    }
  });
});

describe("executeBlock with recovered senders", () => {
  /** The 64-byte public key ethers recovers (not the code under test). */
  function publicKeyOf(raw: Uint8Array): Uint8Array {
    const tx = Transaction.from(bytesToHex(raw));
    return getBytes(SigningKey.recoverPublicKey(tx.unsignedHash, tx.signature!)).subarray(1);
  }

  function recovered(txs: Uint8Array[]): RecoveredSenders & { asked: number } {
    const keys = new Map<string, Uint8Array>();
    for (const raw of txs) keys.set(Transaction.from(bytesToHex(raw)).hash!, publicKeyOf(raw));
    const source = {
      asked: 0,
      recoveredPublicKey: (txHash: Uint8Array) => {
        source.asked++;
        return keys.get(bytesToHex(txHash));
      },
    };
    return source;
  }

  async function runBoth(txs: Uint8Array[]): Promise<[BlockExecution, BlockExecution]> {
    const state = genesisState([deployer.address, writer.address]);
    const plain = await executor.executeBlock(block(2, txs), state);
    const senders = recovered(txs);
    const hinted = await executor.executeBlock(block(2, txs), state, { senders });
    expect(senders.asked).toBe(txs.length);
    return [plain, hinted];
  }

  it("gives the same receipts, changes and roots as recovering", async () => {
    const txs = await sampleTxs();
    const [plain, hinted] = await runBoth(txs);
    expect(plain.outcomes.every((o) => o.ok && o.receipt.status === 1)).toBe(true);
    expect(hinted).toEqual(plain);
  });

  it("still refuses what recovery refuses: unknown senders are recovered, bad signatures rejected", async () => {
    const good = await signTx(writer, { nonce: 0, to: deployer.address, gasLimit: 21_000n });
    const legacy = await signTx(writer, {
      nonce: 0,
      to: deployer.address,
      gasLimit: 21_000n,
      kind: "legacy",
    });
    const fields = RLP.decode(legacy) as Uint8Array[];
    fields[8] = bigIntToUnpaddedBytes(SECP256K1_N - bytesToBigInt(fields[8]!));
    const legacyHighS = RLP.encode(fields);
    const state = genesisState([deployer.address, writer.address]);
    // The source claims the writer's key for both: recovery's s <= n/2 rule applies all the same.
    const known = publicKeyOf(good);
    const senders: RecoveredSenders = { recoveredPublicKey: () => known };
    const result = await executor.executeBlock(block(2, [legacyHighS, good]), state, { senders });
    expect(result.outcomes.map((o) => (o.ok ? o.receipt.status : o.error.code))).toEqual([
      "TX_INVALID_SIGNATURE",
      1,
    ]);
    const nothingKnown = await executor.executeBlock(block(2, [good]), state, {
      senders: { recoveredPublicKey: () => undefined },
    });
    expect(nothingKnown.receipts[0]!.from).toEqual(getBytes(writer.address));
  });
});

describe("yielding to the event loop", () => {
  it("lets pending I/O run during a long block, with the same results", async () => {
    const txs = await sampleTxs();
    const run = async (yieldIntervalMs: number) => {
      const own = await createExecutor({ chainId: CHAIN_ID, yieldIntervalMs });
      let done = false;
      let ranDuring = false;
      setImmediate(() => {
        ranDuring = !done;
      });
      const result = await own.executeBlock(block(2, txs), genesisState([deployer.address, writer.address]));
      done = true;
      return { result, ranDuring };
    };
    const eager = await run(0);
    const never = await run(1e9);
    expect(eager.ranDuring).toBe(true);
    expect(never.ranDuring).toBe(false);
    expect(eager.result).toEqual(never.result);
    await expect(createExecutor({ chainId: CHAIN_ID, yieldIntervalMs: -1 })).rejects.toThrow(
      /yieldIntervalMs/,
    );
  });
});

describe("StoreState reads", () => {
  function fakeStore(records: Map<string, Uint8Array>, sync: boolean) {
    const calls = { get: 0, getSync: 0 };
    const key = (prefix: number, k: Uint8Array) => `${prefix}:${bytesToHex(k)}`;
    const store = {
      get: async (prefix: number, k: Uint8Array) => {
        calls.get++;
        return records.get(key(prefix, k));
      },
      ...(sync
        ? {
            getSync: (prefix: number, k: Uint8Array) => {
              calls.getSync++;
              return records.get(key(prefix, k));
            },
          }
        : {}),
    };
    return { state: new StoreState(store as unknown as EncryptedStore), calls, key };
  }

  it("reads synchronously when the store can, asynchronously otherwise, with the same answers", async () => {
    const address = new Uint8Array(20).fill(0xaa);
    const slot = new Uint8Array(32).fill(1);
    for (const sync of [true, false]) {
      const records = new Map<string, Uint8Array>();
      const { state, calls, key } = fakeStore(records, sync);
      records.set(key(Prefix.AccountStorage, Uint8Array.from([...address, ...slot])), Uint8Array.of(7));
      records.set(key(Prefix.Code, new Uint8Array(32).fill(2)), Uint8Array.of(0x60));
      expect(await state.getStorage(address, slot)).toEqual(Uint8Array.of(7));
      expect(await state.getStorage(address, new Uint8Array(32))).toBeUndefined();
      expect(await state.getCode(new Uint8Array(32).fill(2))).toEqual(Uint8Array.of(0x60));
      expect(await state.getAccount(address)).toBeUndefined();
      expect(calls).toEqual(sync ? { get: 0, getSync: 4 } : { get: 4, getSync: 0 });
    }
  });
});
