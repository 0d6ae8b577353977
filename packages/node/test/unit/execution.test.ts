import { rmSync } from "node:fs";
import { KECCAK256_NULL } from "@ethereumjs/util";
import { decodeAuditEvent } from "@vitalstream/contracts";
import { id } from "ethers";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  type BlockExecution,
  createExecutor,
  decodeRevert,
  type Executor,
} from "../../src/execution/executor.ts";
import {
  GENESIS_STATE_ROOT,
  putStateChanges,
  type StateReader,
  StoreState,
} from "../../src/execution/state.ts";
import { EncryptedStore } from "../../src/store/encryptedStore.ts";
import { Prefix } from "../../src/store/prefixes.ts";
import {
  ACTION_READ,
  addressBytes,
  auditLog,
  auditLogAddress,
  CHAIN_ID,
  COINBASE,
  deployAuditLog,
  deployer,
  genesisState,
  rawLog,
  recordData,
  signTx,
  subject,
  toHex,
  WRITER_ROLE,
  writer,
} from "../fixtures/execution.ts";
import { passphraseWrapper, tempDir } from "../fixtures/store.ts";

const CONTRACT = auditLogAddress(0);

function block(height: number, txs: Uint8Array[], parentStateRoot?: Uint8Array) {
  return {
    height: BigInt(height),
    timestamp: 1_800_000_000n + BigInt(height),
    coinbase: COINBASE,
    txs,
    parentStateRoot,
  };
}

function expectOk(result: BlockExecution) {
  for (const outcome of result.outcomes)
    if (!outcome.ok) expect.fail(`tx rejected: ${JSON.stringify(outcome.error)}`);
  return result.outcomes.map((o) => (o.ok ? o.receipt : expect.fail("rejected")));
}

/** Block 1: deploy AuditLog, grant WRITER_ROLE to `writer`, record once from the deployer. */
async function setupBlock() {
  return [
    await deployAuditLog(0),
    await signTx(deployer, {
      nonce: 1,
      to: CONTRACT,
      data: auditLog.encodeFunctionData("grantRole", [WRITER_ROLE, writer.address]),
    }),
    await signTx(deployer, {
      nonce: 2,
      to: CONTRACT,
      data: auditLog.encodeFunctionData("grantRole", [WRITER_ROLE, deployer.address]),
    }),
    await signTx(deployer, { nonce: 3, to: CONTRACT, data: recordData(1), kind: "legacy" }),
  ];
}

let executor: Executor;

beforeAll(async () => {
  executor = await createExecutor({ chainId: CHAIN_ID, blockGasLimit: 30_000_000n });
});

describe("executeBlock: AuditLog end to end", () => {
  it("deploys, grants a role and records, with receipts, logs and bloom", async () => {
    const state = genesisState();
    const result = await executor.executeBlock(block(1, await setupBlock()), state);
    const [deploy, grant, , record] = expectOk(result);

    expect(deploy!.status).toBe(1);
    expect(toHex(deploy!.contractAddress!)).toBe(CONTRACT.toLowerCase());
    expect(deploy!.to).toBeUndefined();
    expect(toHex(deploy!.from)).toBe(deployer.address.toLowerCase());
    expect(grant!.logs).toHaveLength(1); // RoleGranted
    expect(auditLog.parseLog(rawLog(grant!.logs[0]!))?.name).toBe("RoleGranted");

    expect(record!.status).toBe(1);
    expect(record!.type).toBe(0);
    expect(record!.logs).toHaveLength(1);
    const event = decodeAuditEvent(rawLog(record!.logs[0]!));
    expect(event.ok && event.value.seq).toBe(1n);
    expect(event.ok && event.value.subject).toBe(subject(1));
    expect(event.ok && event.value.action).toBe(ACTION_READ);
    expect(event.ok && event.value.actor.toLowerCase()).toBe(deployer.address.toLowerCase());
    expect(event.ok && event.value.timestamp).toBe(1_800_000_001n);

    // Gas: cumulative sums, block total, logs numbered across the block, bloom covers the log.
    expect(result.receipts.map((r) => r.cumulativeGasUsed)).toEqual(
      result.receipts.map((_, i) => result.receipts.slice(0, i + 1).reduce((s, r) => s + r.gasUsed, 0n)),
    );
    expect(result.gasUsed).toBe(record!.cumulativeGasUsed);
    expect(result.logs.map((l) => l.logIndex)).toEqual(result.logs.map((_, i) => i));
    expect(result.logs.at(-1)!.txIndex).toBe(3);
    expect(result.logsBloom.some((b) => b !== 0)).toBe(true);
    expect(result.stateRoot).not.toEqual(GENESIS_STATE_ROOT);
    expect(result.receiptsRoot).toHaveLength(32);

    // State: the deployer's nonce advanced, the contract has code.
    state.apply(result.changes);
    expect((await state.getAccount(addressBytes(deployer.address)))?.nonce).toBe(4n);
    const contract = await state.getAccount(addressBytes(CONTRACT));
    expect(contract?.codeHash).not.toEqual(KECCAK256_NULL);
    expect((await state.getCode(contract!.codeHash))?.length).toBeGreaterThan(1000);
  });

  it("executes legacy, EIP-2930 and EIP-1559 transactions and recordBatch", async () => {
    const state = genesisState([deployer.address, writer.address]);
    const first = await executor.executeBlock(block(1, await setupBlock()), state);
    state.apply(first.changes);
    const entries = [2, 3, 4].map((n) => ({
      subject: subject(n),
      action: ACTION_READ,
      dataHash: id(`doc-${n}`),
    }));
    const txs = [
      await signTx(writer, { nonce: 0, to: CONTRACT, data: recordData(10), kind: "legacy" }),
      await signTx(writer, {
        nonce: 1,
        to: CONTRACT,
        data: recordData(11),
        kind: "eip2930",
        accessList: [{ address: CONTRACT, storageKeys: [] }],
      }),
      await signTx(writer, {
        nonce: 2,
        to: CONTRACT,
        data: auditLog.encodeFunctionData("recordBatch", [entries]),
      }),
    ];
    const result = await executor.executeBlock(block(2, txs, first.stateRoot), state);
    const receipts = expectOk(result);
    expect(receipts.map((r) => [r.type, r.status])).toEqual([
      [0, 1],
      [1, 1],
      [2, 1],
    ]);
    const events = result.logs.map((l) => decodeAuditEvent(rawLog(l)));
    expect(events.map((e) => e.ok && e.value.seq)).toEqual([2n, 3n, 4n, 5n, 6n]);
    expect(receipts[2]!.logs).toHaveLength(3);
    expect(new Set(events.map((e) => e.ok && e.value.actor.toLowerCase()))).toEqual(
      new Set([writer.address.toLowerCase()]),
    );
  });
});

describe("executeBlock: failures", () => {
  async function deployed() {
    const state = genesisState([deployer.address, writer.address]);
    const first = await executor.executeBlock(block(1, [await deployAuditLog(0)]), state);
    state.apply(first.changes);
    return { state, root: first.stateRoot };
  }

  it("a reverting call is executed with status 0 and its revert data decoded", async () => {
    const { state } = await deployed();
    const txs = [
      // writer has no WRITER_ROLE yet: custom error AccessControlUnauthorizedAccount
      await signTx(writer, { nonce: 0, to: CONTRACT, data: recordData(1) }),
      // admin granted itself nothing either; a zero subject fails ZeroSubject after the role check
      await signTx(deployer, {
        nonce: 1,
        to: CONTRACT,
        data: auditLog.encodeFunctionData("grantRole", [WRITER_ROLE, deployer.address]),
      }),
      await signTx(deployer, {
        nonce: 2,
        to: CONTRACT,
        data: auditLog.encodeFunctionData("record", [`0x${"00".repeat(32)}`, ACTION_READ, id("x")]),
      }),
    ];
    const result = await executor.executeBlock(block(2, txs), state);
    const [denied, , zero] = expectOk(result);
    expect(denied!.status).toBe(0);
    expect(denied!.logs).toEqual([]);
    expect(denied!.revert).toBeDefined();
    const error = auditLog.parseError(toHex(denied!.revert!.data));
    expect(error?.name).toBe("AccessControlUnauthorizedAccount");
    expect(error?.args[0]).toBe(writer.address);
    expect(auditLog.parseError(toHex(zero!.revert!.data))?.name).toBe("ZeroSubject");
    // The reverted tx still consumed gas and advanced the nonce.
    expect(denied!.gasUsed).toBeGreaterThan(21_000n);
    state.apply(result.changes);
    expect((await state.getAccount(addressBytes(writer.address)))?.nonce).toBe(1n);
  });

  it("decodes Error(string) and Panic revert data", () => {
    const errorData = new Uint8Array(
      Buffer.from(
        `08c379a0${"20".padStart(64, "0")}${"0d".padStart(64, "0")}${Buffer.from("not permitted").toString("hex").padEnd(64, "0")}`,
        "hex",
      ),
    );
    expect(decodeRevert(errorData)).toBe("not permitted");
    const panic = new Uint8Array(Buffer.from(`4e487b71${"11".padStart(64, "0")}`, "hex"));
    expect(decodeRevert(panic)).toBe("Panic(0x11)");
    expect(decodeRevert(new Uint8Array([1, 2, 3]))).toBeUndefined();
  });

  it("rejects wrong chain id, bad nonces, low gas, no funds and garbage as values", async () => {
    const { state } = await deployed();
    const txs = [
      await signTx(deployer, { nonce: 1, to: CONTRACT, data: recordData(1), chainId: 1n }),
      await signTx(deployer, { nonce: 1, to: CONTRACT, data: recordData(1), chainId: 1n, kind: "legacy" }),
      await signTx(deployer, { nonce: 0, to: CONTRACT, data: recordData(1) }),
      await signTx(deployer, { nonce: 5, to: CONTRACT, data: recordData(1) }),
      await signTx(deployer, { nonce: 1, to: CONTRACT, data: recordData(1), gasLimit: 21_000n }),
      await signTx(writer, { nonce: 0, to: deployer.address, value: 10n ** 30n }),
      new Uint8Array([0x02, 0xc0]),
      new Uint8Array([0x04, 0xc0]),
      new Uint8Array(0),
    ];
    const result = await executor.executeBlock(block(2, txs), state);
    const codes = result.outcomes.map((o) => (o.ok ? "ok" : o.error.code));
    expect(codes).toEqual([
      "TX_WRONG_CHAIN_ID",
      "TX_WRONG_CHAIN_ID",
      "TX_NONCE_TOO_LOW",
      "TX_NONCE_TOO_HIGH",
      "TX_INTRINSIC_GAS_TOO_LOW",
      "TX_INSUFFICIENT_FUNDS",
      "TX_MALFORMED",
      "TX_TYPE_UNSUPPORTED",
      "TX_MALFORMED",
    ]);
    expect(result.receipts).toEqual([]);
    expect(result.changes).toEqual([]);
    expect(result.gasUsed).toBe(0n);
    for (const o of result.outcomes) if (!o.ok) expect(o.error.message.length).toBeGreaterThan(0);
  });

  it("runs out of gas during execution: status 0, all gas used, nonce advanced", async () => {
    const { state } = await deployed();
    await executor.executeBlock(block(2, []), state);
    const grant = await signTx(deployer, {
      nonce: 1,
      to: CONTRACT,
      data: auditLog.encodeFunctionData("grantRole", [WRITER_ROLE, writer.address]),
      gasLimit: 30_000n,
    });
    const result = await executor.executeBlock(block(2, [grant]), state);
    const [receipt] = expectOk(result);
    expect(receipt!.status).toBe(0);
    expect(receipt!.exceptionError).toBe("out of gas");
    expect(receipt!.gasUsed).toBe(30_000n);
  });

  it("enforces the block gas limit: a tx that does not fit is reported, not executed", async () => {
    const small = await createExecutor({ chainId: CHAIN_ID, blockGasLimit: 2_500_000n });
    const { state } = await deployed();
    await small.executeBlock(block(2, []), state);
    const txs = [
      await signTx(deployer, { nonce: 1, to: CONTRACT, data: recordData(1), gasLimit: 1_000_000n }),
      await signTx(deployer, { nonce: 2, to: CONTRACT, data: recordData(2), gasLimit: 2_480_000n }),
      await signTx(deployer, { nonce: 2, to: deployer.address, gasLimit: 21_000n }),
      await signTx(deployer, { nonce: 3, to: deployer.address, gasLimit: 10_000_000n }),
    ];
    const result = await small.executeBlock(block(2, txs), state);
    expect(result.outcomes.map((o) => (o.ok ? o.receipt.status : o.error.code))).toEqual([
      0, // reverted (no role) but executed: gas used well below its limit
      "TX_BLOCK_GAS_LIMIT_EXCEEDED", // used + 2.48M > 2.5M
      1, // a small one still fits after the big one was skipped
      "TX_BLOCK_GAS_LIMIT_EXCEEDED", // above the block limit on its own
    ]);
    expect(result.gasUsed).toBeLessThanOrEqual(2_500_000n);
  });
});

describe("determinism and persistence", () => {
  it("the same block from the same pre-state gives the same changes and state root", async () => {
    const txs = await setupBlock();
    const a = await executor.executeBlock(block(1, txs), genesisState());
    const other = await createExecutor({ chainId: CHAIN_ID });
    const b = await other.executeBlock(block(1, txs), genesisState());
    expect(b.stateRoot).toEqual(a.stateRoot);
    expect(b.receiptsRoot).toEqual(a.receiptsRoot);
    expect(b.changes).toEqual(a.changes);
    // A different parent root or different content gives a different commitment.
    const c = await executor.executeBlock(block(1, txs, new Uint8Array(32).fill(1)), genesisState());
    expect(c.stateRoot).not.toEqual(a.stateRoot);
    const d = await executor.executeBlock(block(1, txs.slice(0, 3)), genesisState());
    expect(d.stateRoot).not.toEqual(a.stateRoot);
    // A block without state changes keeps the parent's root.
    const empty = await executor.executeBlock(block(2, [], a.stateRoot), genesisState());
    expect(empty.stateRoot).toEqual(a.stateRoot);
  });

  describe("through the encrypted store", () => {
    const dirs: string[] = [];
    afterAll(() => {
      for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
    });

    it("persists the changes in one batch; re-opened, the store executes like memory", async () => {
      const dir = tempDir();
      dirs.push(dir);
      const keyWrapper = await passphraseWrapper(dir);
      const path = `${dir}/db`;
      const memory = genesisState();
      let store = await EncryptedStore.open({ path, create: true }, { keyWrapper });
      // Genesis into the store: the same records the memory state holds.
      const genesis = await executor.executeBlock(block(0, []), memory);
      expect(genesis.changes).toEqual([]);
      await putStateChanges(store.batch(), [
        {
          kind: "account",
          address: addressBytes(deployer.address),
          account: (await memory.getAccount(addressBytes(deployer.address)))!,
        },
      ]).write();

      const run = async (height: number, txs: Uint8Array[], parent: Uint8Array, states: StateReader[]) =>
        Promise.all(states.map((s) => executor.executeBlock(block(height, txs, parent), s)));

      const [m1, s1] = await run(1, await setupBlock(), GENESIS_STATE_ROOT, [memory, new StoreState(store)]);
      expect(s1!.stateRoot).toEqual(m1!.stateRoot);
      expect(s1!.changes).toEqual(m1!.changes);
      memory.apply(m1!.changes);
      await putStateChanges(store.batch(), s1!.changes).write();
      await store.close();

      store = await EncryptedStore.open({ path }, { keyWrapper });
      const txs = [2, 3, 4].map((n, i) =>
        signTx(deployer, {
          nonce: 4 + i,
          to: CONTRACT,
          data: recordData(n),
          kind: i === 1 ? "eip2930" : "eip1559",
        }),
      );
      const [m2, s2] = await run(2, await Promise.all(txs), m1!.stateRoot, [memory, new StoreState(store)]);
      expectOk(s2!);
      expect(s2!.stateRoot).toEqual(m2!.stateRoot);
      expect(s2!.receiptsRoot).toEqual(m2!.receiptsRoot);
      expect(s2!.logs.map((l) => decodeAuditEvent(rawLog(l))).map((e) => e.ok && e.value.seq)).toEqual([
        2n,
        3n,
        4n,
      ]);

      // Storage slots are 52-byte keys (address || slot) and hold values without leading zeros.
      await putStateChanges(store.batch(), s2!.changes).write();
      const slots: Uint8Array[] = [];
      for await (const [key, value] of store.range(Prefix.AccountStorage)) {
        expect(key).toHaveLength(52);
        expect(value[0]).not.toBe(0);
        slots.push(key);
      }
      expect(slots.length).toBeGreaterThan(3);
      expect((await new StoreState(store).storageSlots(addressBytes(CONTRACT))).length).toBe(slots.length);
      const nonce = (await new StoreState(store).getAccount(addressBytes(deployer.address)))?.nonce;
      expect(nonce).toBe(7n);
      await store.close();
    });
  });
});
