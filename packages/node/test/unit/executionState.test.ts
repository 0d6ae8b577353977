import { Account, Address, KECCAK256_NULL } from "@ethereumjs/util";
import { getBytes, SigningKey, Transaction } from "ethers";
import { describe, expect, it } from "vitest";
import { nativeEcrecover } from "../../src/execution/crypto.ts";
import { StateOverlay } from "../../src/execution/overlay.ts";
import { decodeAccount, encodeAccount, MemoryState, stateCommitment } from "../../src/execution/state.ts";
import { CHAIN_ID, deployer, signTx } from "../fixtures/execution.ts";

const A = new Address(new Uint8Array(20).fill(0xaa));
const slot = (n: number) => new Uint8Array(32).fill(n);

describe("StateOverlay", () => {
  it("reverts nested checkpoints exactly, commits keep writes", async () => {
    const overlay = new StateOverlay(new MemoryState());
    await overlay.putAccount(A, new Account(1n, 100n));
    await overlay.checkpoint();
    await overlay.putStorage(A, slot(1), Uint8Array.of(0, 7));
    await overlay.checkpoint();
    await overlay.modifyAccountFields(A, { balance: 5n });
    await overlay.putStorage(A, slot(1), Uint8Array.of(9));
    await overlay.revert();
    expect((await overlay.getAccount(A))?.balance).toBe(100n);
    expect(await overlay.getStorage(A, slot(1))).toEqual(Uint8Array.of(7));
    await overlay.commit();
    expect(await overlay.getStorage(A, slot(1))).toEqual(Uint8Array.of(7));
    const changes = await overlay.changes();
    expect(changes.map((c) => c.kind)).toEqual(["account", "storage"]);
  });

  it("clears committed storage and lists only real differences", async () => {
    const base = new MemoryState();
    base.setAccount(A.bytes, { nonce: 1n, balance: 0n, codeHash: KECCAK256_NULL });
    base.apply([
      { kind: "storage", address: A.bytes, slot: slot(1), value: Uint8Array.of(1) },
      { kind: "storage", address: A.bytes, slot: slot(2), value: Uint8Array.of(2) },
    ]);
    const overlay = new StateOverlay(base);
    // Rewriting the committed values is not a change.
    await overlay.putAccount(A, new Account(1n, 0n));
    await overlay.putStorage(A, slot(1), Uint8Array.of(1));
    expect(await overlay.changes()).toEqual([]);
    await overlay.clearStorage(A);
    await overlay.putStorage(A, slot(3), Uint8Array.of(3));
    expect(await overlay.getStorage(A, slot(2))).toEqual(new Uint8Array(0));
    const changes = await overlay.changes();
    expect(changes.map((c) => (c.kind === "storage" ? [c.slot[0], c.value?.[0]] : c.kind))).toEqual([
      [1, undefined],
      [3, 3],
      [2, undefined],
    ]);
    // The commitment does not depend on the order changes are listed in.
    expect(stateCommitment(new Uint8Array(32), changes)).toEqual(
      stateCommitment(new Uint8Array(32), [...changes].reverse()),
    );
  });

  it("encodes accounts compactly and round-trips them", () => {
    const plain = { nonce: 3n, balance: 10n ** 24n, codeHash: KECCAK256_NULL };
    expect(decodeAccount(encodeAccount(plain))).toEqual(plain);
    expect(encodeAccount(plain).length).toBeLessThan(16);
    const contract = { nonce: 1n, balance: 0n, codeHash: new Uint8Array(32).fill(5) };
    expect(decodeAccount(encodeAccount(contract))).toEqual(contract);
  });
});

describe("nativeEcrecover", () => {
  it("recovers the same public key as ethers for a signed EIP-155 tx", async () => {
    const raw = await signTx(deployer, { nonce: 0, to: deployer.address, kind: "legacy" });
    const tx = Transaction.from(`0x${Buffer.from(raw).toString("hex")}`);
    const sig = tx.signature!;
    const pub = nativeEcrecover(
      getBytes(tx.unsignedHash),
      BigInt(sig.networkV ?? sig.v),
      getBytes(sig.r),
      getBytes(sig.s),
      CHAIN_ID,
    );
    expect(`0x04${Buffer.from(pub).toString("hex")}`).toBe(SigningKey.computePublicKey(deployer.privateKey));
  });
});
