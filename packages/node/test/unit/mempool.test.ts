import { RLP } from "@ethereumjs/rlp";
import { getBytes, keccak256, SigningKey, Transaction } from "ethers";
import { beforeAll, describe, expect, it } from "vitest";
import { createExecutor, type Executor } from "../../src/execution/executor.ts";
import {
  type AddResult,
  createMempool,
  type MempoolErrorCode,
  mempoolRpcErrors,
  RPC_INVALID_PARAMS,
  RPC_SERVER_ERROR,
} from "../../src/mempool/index.ts";
import { CHAIN_ID, recordData, signTx, toHex } from "../fixtures/execution.ts";
import {
  deployer,
  GWEI,
  highS,
  senders,
  setNonce,
  setupPool,
  withSignature,
  writer,
} from "../fixtures/mempool.ts";

let executor: Executor;
beforeAll(async () => {
  executor = await createExecutor({ chainId: CHAIN_ID });
});

const [alice, bob, carol] = senders as [(typeof senders)[0], (typeof senders)[0], (typeof senders)[0]];
const TO = "0x000000000000000000000000000000000000dEaD";

function transfer(
  wallet: typeof deployer,
  nonce: number,
  fields: { tip?: bigint; maxFee?: bigint; gasLimit?: bigint; value?: bigint; data?: string } = {},
) {
  const tip = fields.tip ?? 0n;
  return signTx(wallet, {
    nonce,
    to: TO,
    gasLimit: fields.gasLimit ?? 21_000n,
    value: fields.value ?? 0n,
    data: fields.data ?? "0x",
    maxPriorityFeePerGas: tip,
    maxFeePerGas: fields.maxFee ?? tip,
  });
}

function expectRejected(result: AddResult, code: MempoolErrorCode) {
  if (result.ok) return expect.fail(`admitted, expected ${code}`);
  expect(result.error.code).toBe(code);
  expect(result.error.rpcCode).toBe(mempoolRpcErrors[code].rpcCode);
  expect(result.error.message.startsWith(`${mempoolRpcErrors[code].reason}: `)).toBe(true);
  expect(result.error.message).not.toMatch(/\n|\bat .*\.(ts|js):\d+/);
  expect(() => JSON.stringify(result.error)).not.toThrow();
  return result.error;
}

function expectOk(result: AddResult) {
  if (!result.ok) return expect.fail(`rejected: ${JSON.stringify(result.error)}`);
  return result;
}

describe("mempool admission", () => {
  it("admits legacy, EIP-2930 and EIP-1559 transactions and reports hash, sender and nonce", async () => {
    const { pool } = setupPool(executor);
    const raws = [
      await signTx(deployer, { nonce: 0, to: TO, gasLimit: 21_000n, kind: "legacy" }),
      await signTx(deployer, { nonce: 1, to: TO, gasLimit: 21_000n, kind: "eip2930" }),
      await signTx(deployer, { nonce: 2, to: TO, gasLimit: 21_000n, kind: "eip1559" }),
    ];
    for (const [nonce, raw] of raws.entries()) {
      const result = expectOk(await pool.add(raw));
      expect(result.hash).toBe(keccak256(raw));
      expect(result.sender).toBe(deployer.address.toLowerCase());
      expect(result.nonce).toBe(BigInt(nonce));
      expect(pool.get(result.hash)?.raw).toEqual(raw);
      expect(pool.has(result.hash.toUpperCase().replace("0X", "0x"))).toBe(true);
    }
    expect(pool.size).toBe(3);
  });

  it("suppresses duplicates by hash: already known, also for concurrent adds", async () => {
    const { pool } = setupPool(executor);
    const raw = await transfer(deployer, 0);
    const [first, second] = await Promise.all([pool.add(raw), pool.add(raw)]);
    expectOk(first!);
    expectRejected(second!, "MEMPOOL_ALREADY_KNOWN");
    expectRejected(await pool.add(raw), "MEMPOOL_ALREADY_KNOWN");
    expect(pool.size).toBe(1);
  });

  it("refuses oversized input before decoding, without throwing", async () => {
    const { pool } = setupPool(executor, { maxTxBytes: 1024 });
    const big = await transfer(deployer, 0, { gasLimit: 1_000_000n, data: `0x${"ab".repeat(2000)}` });
    const error = expectRejected(await pool.add(big), "MEMPOOL_TX_TOO_LARGE");
    expect(error.data).toMatchObject({ size: big.length, limit: 1024 });
    expect(error.message).toContain("limit 1024");
    expectRejected(await pool.add(new Uint8Array(16 * 1024 * 1024).fill(0xc0)), "MEMPOOL_TX_TOO_LARGE");
    expect(pool.size).toBe(0);
  });

  it("refuses garbage as malformed (-32602), without throwing", async () => {
    const { pool } = setupPool(executor);
    const valid = await transfer(deployer, 0);
    const garbage: Uint8Array[] = [
      new Uint8Array(),
      Uint8Array.of(0xff),
      Uint8Array.of(0x80),
      Uint8Array.of(0xc0),
      Uint8Array.of(0x02),
      Uint8Array.of(0x02, 0xc0),
      Uint8Array.from({ length: 300 }, (_, i) => (i * 37 + 11) & 0xff),
      valid.subarray(0, valid.length - 5),
      Uint8Array.from([...valid, 0x00]),
      RLP.encode([new Uint8Array(1), [new Uint8Array(2)], 3, 4, 5, 6, 7, 8, 9]),
      Uint8Array.from([0x02, ...RLP.encode([[1], 2, 3])]),
    ];
    for (const raw of garbage) {
      const result = await pool.add(raw);
      expect(result.ok).toBe(false);
      if (!result.ok) {
        expect([
          "MEMPOOL_MALFORMED",
          "MEMPOOL_TX_TYPE_UNSUPPORTED",
          "MEMPOOL_WRONG_CHAIN_ID",
          "MEMPOOL_NOT_REPLAY_PROTECTED",
        ]).toContain(result.error.code);
        expectRejected(result, result.error.code);
      }
    }
    const malformed = expectRejected(await pool.add(Uint8Array.of(0xff, 0x00)), "MEMPOOL_MALFORMED");
    expect(malformed.rpcCode).toBe(RPC_INVALID_PARAMS);
    expectRejected(await pool.add("0x1234" as unknown as Uint8Array), "MEMPOOL_MALFORMED");
    expect(pool.size).toBe(0);
  });

  it("refuses unsupported transaction types", async () => {
    const { pool } = setupPool(executor);
    for (const type of [3, 4, 0x7f]) {
      const raw = Uint8Array.from([type, ...RLP.encode([CHAIN_ID, 0, 0, 0, 21_000])]);
      const error = expectRejected(await pool.add(raw), "MEMPOOL_TX_TYPE_UNSUPPORTED");
      expect(error.data).toEqual({ type });
    }
  });

  it("refuses a foreign chain id and legacy transactions without EIP-155", async () => {
    const { pool } = setupPool(executor);
    const foreign = await signTx(deployer, { nonce: 0, to: TO, gasLimit: 21_000n, chainId: 1n });
    const error = expectRejected(await pool.add(foreign), "MEMPOOL_WRONG_CHAIN_ID");
    expect(error.message).toBe(`invalid chain id for signer: chain id 1, this network is ${CHAIN_ID}`);
    expect(error.rpcCode).toBe(RPC_SERVER_ERROR);
    const foreignLegacy = await signTx(deployer, {
      nonce: 0,
      to: TO,
      gasLimit: 21_000n,
      chainId: 5n,
      kind: "legacy",
    });
    expectRejected(await pool.add(foreignLegacy), "MEMPOOL_WRONG_CHAIN_ID");
    const unprotected = await signTx(deployer, {
      nonce: 0,
      to: TO,
      gasLimit: 21_000n,
      chainId: 0n,
      kind: "legacy",
    });
    expectRejected(await pool.add(unprotected), "MEMPOOL_NOT_REPLAY_PROTECTED");
  });

  it("refuses invalid signatures (high s, unrecoverable r)", async () => {
    const { pool } = setupPool(executor);
    const raw = await transfer(deployer, 0);
    expectRejected(await pool.add(highS(raw)), "MEMPOOL_INVALID_SIGNATURE");
    const zeroR = withSignature(raw, (_r, s) => ({ r: 0n, s }));
    expectRejected(await pool.add(zeroR), "MEMPOOL_INVALID_SIGNATURE");
    expect(pool.size).toBe(0);
  });

  it("refuses senders that are not permitted", async () => {
    const { pool, denied } = setupPool(executor);
    denied.add(alice.address.toLowerCase());
    const error = expectRejected(await pool.add(await transfer(alice, 0)), "MEMPOOL_SENDER_NOT_PERMITTED");
    expect(error.message).toContain(alice.address.toLowerCase());
    expect(error.data?.sender).toBe(alice.address.toLowerCase());
    expectOk(await pool.add(await transfer(bob, 0)));
  });

  it("refuses gas limits below intrinsic gas or minGasLimit, and above the block gas limit", async () => {
    const { pool } = setupPool(executor, { minGasLimit: 25_000n });
    const low = expectRejected(
      await pool.add(await transfer(deployer, 0, { gasLimit: 20_000n })),
      "MEMPOOL_GAS_LIMIT_TOO_LOW",
    );
    expect(low.message).toBe(
      "intrinsic gas too low: gas limit 20000, needs at least 25000 (intrinsic gas 21000)",
    );
    expectRejected(
      await pool.add(await transfer(deployer, 0, { gasLimit: 24_999n })),
      "MEMPOOL_GAS_LIMIT_TOO_LOW",
    );
    const high = expectRejected(
      await pool.add(await transfer(deployer, 0, { gasLimit: 30_000_001n })),
      "MEMPOOL_GAS_LIMIT_TOO_HIGH",
    );
    expect(high.message).toBe("exceeds block gas limit: gas limit 30000001, block gas limit 30000000");
    expectOk(await pool.add(await transfer(deployer, 0, { gasLimit: 30_000_000n })));

    const data = { gasLimit: 21_100n, data: recordData(1) };
    const { pool: plain } = setupPool(executor);
    expectRejected(await plain.add(await transfer(deployer, 0, data)), "MEMPOOL_GAS_LIMIT_TOO_LOW");
  });

  it("takes its gas ceiling from the executor, or from options", async () => {
    const small = await createExecutor({ chainId: CHAIN_ID, blockGasLimit: 100_000n });
    const { pool } = setupPool(small);
    expect(pool.options.maxGasLimit).toBe(100_000n);
    expectRejected(
      await pool.add(await transfer(deployer, 0, { gasLimit: 100_001n })),
      "MEMPOOL_GAS_LIMIT_TOO_HIGH",
    );
    const { pool: custom } = setupPool(executor, { maxGasLimit: 50_000n });
    expectRejected(
      await custom.add(await transfer(deployer, 0, { gasLimit: 50_001n })),
      "MEMPOOL_GAS_LIMIT_TOO_HIGH",
    );
  });

  it("refuses a price per gas below minGasPrice (a tip above the fee cap pays only the cap)", async () => {
    const { pool } = setupPool(executor, { minGasPrice: GWEI });
    const error = expectRejected(await pool.add(await transfer(deployer, 0)), "MEMPOOL_GAS_PRICE_TOO_LOW");
    expect(error.message).toBe(`transaction underpriced: price per gas 0 wei, minimum ${GWEI} wei`);
    expectRejected(
      await pool.add(await transfer(deployer, 0, { tip: GWEI / 2n, maxFee: 10n * GWEI })),
      "MEMPOOL_GAS_PRICE_TOO_LOW",
    );
    const ok = expectOk(await pool.add(await transfer(deployer, 0, { tip: GWEI, maxFee: 2n * GWEI })));
    expect(pool.get(ok.hash)?.gasPrice).toBe(GWEI);
  });

  it("enforces the nonce window from the account's next nonce", async () => {
    const { pool, state } = setupPool(executor, { nonceWindow: 4 });
    setNonce(state, deployer.address, 5n);
    const low = expectRejected(await pool.add(await transfer(deployer, 4)), "MEMPOOL_NONCE_TOO_LOW");
    expect(low.message).toBe(`nonce too low: nonce 4, next nonce of ${deployer.address.toLowerCase()} is 5`);
    expect(low.data).toMatchObject({ nonce: "4", expected: "5" });
    expectOk(await pool.add(await transfer(deployer, 5)));
    expectOk(await pool.add(await transfer(deployer, 8)));
    const high = expectRejected(await pool.add(await transfer(deployer, 9)), "MEMPOOL_NONCE_TOO_HIGH");
    expect(high.data).toMatchObject({ nonce: "9", expected: "5", limit: "9" });
    expect(high.message).toContain("nonces below 9");
  });

  it("refuses transactions the sender cannot pay for when gas has a price", async () => {
    const { pool } = setupPool(executor);
    expectOk(await pool.add(await transfer(writer, 0)));
    const error = expectRejected(
      await pool.add(await transfer(writer, 1, { tip: GWEI })),
      "MEMPOOL_INSUFFICIENT_FUNDS",
    );
    expect(error.message).toBe(
      `insufficient funds for gas * price + value: balance 0 wei, gas limit x max fee + value is ${21_000n * GWEI} wei`,
    );
    expectRejected(await pool.add(await transfer(writer, 1, { value: 1n })), "MEMPOOL_INSUFFICIENT_FUNDS");
  });

  it("enforces the per-sender limit", async () => {
    const { pool } = setupPool(executor, { maxTxsPerSender: 3 });
    for (let nonce = 0; nonce < 3; nonce++) expectOk(await pool.add(await transfer(alice, nonce)));
    const error = expectRejected(await pool.add(await transfer(alice, 3)), "MEMPOOL_SENDER_LIMIT");
    expect(error.data).toMatchObject({ pooled: 3, limit: 3 });
    expectOk(await pool.add(await transfer(bob, 0)));
    // A replacement does not count against the limit.
    expectOk(await pool.add(await transfer(alice, 2, { tip: GWEI })));
  });
});

describe("mempool replacement", () => {
  it("replaces the same nonce only with the required price bump", async () => {
    const { pool } = setupPool(executor, { priceBumpPercent: 10 });
    const original = expectOk(
      await pool.add(await transfer(alice, 0, { tip: 100n * GWEI, maxFee: 200n * GWEI })),
    );
    const tooSmall = expectRejected(
      await pool.add(await transfer(alice, 0, { tip: 109n * GWEI, maxFee: 300n * GWEI })),
      "MEMPOOL_REPLACEMENT_UNDERPRICED",
    );
    expect(tooSmall.data).toMatchObject({ replacing: original.hash, minimum: (110n * GWEI).toString() });
    expect(tooSmall.message).toContain(`needs at least ${110n * GWEI}`);
    // The tip is bumped but not the fee cap: refused, as in geth.
    expectRejected(
      await pool.add(await transfer(alice, 0, { tip: 110n * GWEI, maxFee: 219n * GWEI })),
      "MEMPOOL_REPLACEMENT_UNDERPRICED",
    );
    const replacement = expectOk(
      await pool.add(await transfer(alice, 0, { tip: 110n * GWEI, maxFee: 220n * GWEI })),
    );
    expect(replacement.replaced).toBe(original.hash);
    expect(pool.has(original.hash)).toBe(false);
    expect(pool.get(replacement.hash)?.gasPrice).toBe(110n * GWEI);
    expect(pool.size).toBe(1);
    expect(pool.stats()).toMatchObject({ replacedTotal: 1, txs: 1 });
    // The replaced transaction is no longer known: it may come back only as a replacement itself.
    expectRejected(
      await pool.add(await transfer(alice, 0, { tip: 100n * GWEI })),
      "MEMPOOL_REPLACEMENT_UNDERPRICED",
    );
  });

  it("needs a strictly higher price at zero gas price", async () => {
    const { pool } = setupPool(executor);
    expectOk(await pool.add(await transfer(alice, 0)));
    const error = expectRejected(
      await pool.add(await transfer(alice, 0, { data: "0x01", gasLimit: 30_000n })),
      "MEMPOOL_REPLACEMENT_UNDERPRICED",
    );
    expect(error.message).toContain("needs at least 1");
    expect(expectOk(await pool.add(await transfer(alice, 0, { tip: 1n }))).replaced).toBeDefined();
  });
});

describe("mempool eviction when full", () => {
  it("evicts the tail of the sender holding the most transactions, and refuses when the new one ranks lowest", async () => {
    const { pool } = setupPool(executor, { maxTxs: 3 });
    const a0 = expectOk(await pool.add(await transfer(alice, 0)));
    const a1 = expectOk(await pool.add(await transfer(alice, 1)));
    const a2 = expectOk(await pool.add(await transfer(alice, 2)));
    // Bob's only transaction evicts Alice's highest nonce, never a middle one.
    expectOk(await pool.add(await transfer(bob, 0)));
    expect(pool.has(a2.hash)).toBe(false);
    expect(pool.has(a0.hash) && pool.has(a1.hash)).toBe(true);
    // Alice's third transaction would be the first evicted: refused.
    const full = expectRejected(await pool.add(await transfer(alice, 2)), "MEMPOOL_FULL");
    expect(full.data).toMatchObject({ pooled: 3, limit: 3 });
    expect(pool.size).toBe(3);
    expect(pool.stats().evictedTotal).toBe(1);
  });

  it("evicts lower-priced and non-executable transactions first", async () => {
    const { pool } = setupPool(executor, { maxTxs: 3 });
    const gapped = expectOk(await pool.add(await transfer(alice, 5, { tip: 50n * GWEI })));
    const cheap = expectOk(await pool.add(await transfer(bob, 0)));
    expectOk(await pool.add(await transfer(carol, 0, { tip: 2n * GWEI })));
    // Non-executable first, even at a higher price.
    expectOk(await pool.add(await transfer(deployer, 0, { tip: GWEI })));
    expect(pool.has(gapped.hash)).toBe(false);
    // Then the lowest price.
    expectOk(await pool.add(await transfer(alice, 0, { tip: GWEI })));
    expect(pool.has(cheap.hash)).toBe(false);
    // A new transaction priced below everything pooled is refused.
    expectRejected(await pool.add(await transfer(bob, 0)), "MEMPOOL_FULL");
  });
});

describe("mempool pending", () => {
  it("orders by price then arrival without breaking a sender's nonce order, skipping gaps", async () => {
    const { pool } = setupPool(executor);
    const a0 = expectOk(await pool.add(await transfer(alice, 0, { tip: GWEI })));
    const a1 = expectOk(await pool.add(await transfer(alice, 1, { tip: 5n * GWEI })));
    expectOk(await pool.add(await transfer(alice, 3, { tip: 9n * GWEI })));
    const b0 = expectOk(await pool.add(await transfer(bob, 0, { tip: 3n * GWEI })));
    const c0 = expectOk(await pool.add(await transfer(carol, 0, { tip: GWEI })));
    const d0 = expectOk(await pool.add(await transfer(deployer, 0, { tip: GWEI })));
    const order = pool.pending(30_000_000n, 100).map((tx) => tx.hash);
    expect(order).toEqual([b0.hash, a0.hash, a1.hash, c0.hash, d0.hash]);
    expect(pool.stats()).toMatchObject({ txs: 6, executable: 5, senders: 4 });
  });

  it("keeps arrival order at equal (zero) prices and honours the count and gas caps", async () => {
    const { pool } = setupPool(executor);
    const b0 = expectOk(await pool.add(await transfer(bob, 0)));
    const a0 = expectOk(await pool.add(await transfer(alice, 0, { gasLimit: 100_000n })));
    const b1 = expectOk(await pool.add(await transfer(bob, 1)));
    const c0 = expectOk(await pool.add(await transfer(carol, 0)));
    expect(pool.pending(10_000_000n, 100).map((tx) => tx.hash)).toEqual([b0.hash, a0.hash, b1.hash, c0.hash]);
    expect(pool.pending(10_000_000n, 2).map((tx) => tx.hash)).toEqual([b0.hash, a0.hash]);
    // Alice's 100k does not fit after Bob's 21k in 90k: Alice is skipped, the others go on.
    expect(pool.pending(90_000n, 100).map((tx) => tx.hash)).toEqual([b0.hash, b1.hash, c0.hash]);
    expect(pool.pending(20_999n, 100)).toEqual([]);
    expect(pool.pending(10_000_000n, 0)).toEqual([]);
  });
});

describe("mempool after a block", () => {
  it("removeIncluded by hash advances the sender and makes its next nonces executable", async () => {
    const { pool } = setupPool(executor);
    const a0 = expectOk(await pool.add(await transfer(alice, 0)));
    const a1 = expectOk(await pool.add(await transfer(alice, 1)));
    const b0 = expectOk(await pool.add(await transfer(bob, 0)));
    expect(pool.removeIncluded([a0.hash, b0.hash, "0x1234"])).toBe(2);
    expect(pool.pending(10_000_000n, 10).map((tx) => tx.hash)).toEqual([a1.hash]);
    expect(pool.stats()).toMatchObject({ txs: 1, includedTotal: 2 });
  });

  it("removeIncluded by sender nonce drops everything below it", async () => {
    const { pool } = setupPool(executor);
    for (let nonce = 0; nonce < 4; nonce++) expectOk(await pool.add(await transfer(alice, nonce)));
    expect(pool.removeIncluded([{ sender: alice.address, nextNonce: 3n }])).toBe(3);
    expect(pool.pending(10_000_000n, 10).map((tx) => tx.nonce)).toEqual([3n]);
  });

  it("revalidate drops nonces that became too low and senders that lost permission", async () => {
    const { pool, state, denied } = setupPool(executor);
    for (let nonce = 0; nonce < 3; nonce++) expectOk(await pool.add(await transfer(alice, nonce)));
    expectOk(await pool.add(await transfer(bob, 0)));
    expectOk(await pool.add(await transfer(carol, 0)));
    setNonce(state, alice.address, 2n);
    denied.add(bob.address.toLowerCase());
    expect(await pool.revalidate(state)).toBe(3);
    expect(pool.pending(10_000_000n, 10).map((tx) => [tx.sender, tx.nonce])).toEqual([
      [alice.address.toLowerCase(), 2n],
      [carol.address.toLowerCase(), 0n],
    ]);
    expect(pool.stats().droppedTotal).toBe(3);
    // The pool now knows Alice's next nonce is 2: nonce 1 is too low.
    expectRejected(await pool.add(await transfer(alice, 1, { tip: GWEI })), "MEMPOOL_NONCE_TOO_LOW");
  });
});

describe("mempool and execution", () => {
  it("hands execution the sender keys it recovered at admission, for pooled transactions only", async () => {
    const { pool, state } = setupPool(executor);
    const raws = [
      await signTx(alice, { nonce: 0, to: TO, gasLimit: 21_000n, kind: "legacy" }),
      await signTx(alice, { nonce: 1, to: TO, gasLimit: 21_000n, kind: "eip2930" }),
      await transfer(bob, 0),
    ];
    const hashes = [];
    for (const raw of raws) {
      const { hash } = expectOk(await pool.add(raw));
      const tx = Transaction.from(toHex(raw));
      const publicKey = getBytes(SigningKey.recoverPublicKey(tx.unsignedHash, tx.signature!)).subarray(1);
      expect(pool.recoveredPublicKey(getBytes(hash))).toEqual(publicKey);
      hashes.push(hash);
    }
    expect(pool.recoveredPublicKey(new Uint8Array(32))).toBeUndefined();

    const block = { height: 1n, timestamp: 1_800_000_000n, coinbase: new Uint8Array(20), txs: raws };
    const recovering = await executor.executeBlock(block, state);
    const fromPool = await executor.executeBlock(block, state, { senders: pool });
    expect(fromPool.receipts).toHaveLength(3);
    expect(fromPool).toEqual(recovering);

    pool.removeIncluded([hashes[0]!]);
    expect(pool.recoveredPublicKey(getBytes(hashes[0]!))).toBeUndefined();
    expect(pool.recoveredPublicKey(getBytes(hashes[1]!))).toBeDefined();
  });
});

describe("mempool construction and stats", () => {
  it("needs chain rules and sane options", () => {
    const state = setupPool(executor).state;
    const modules = { state, isPermitted: () => true };
    expect(() => createMempool({}, modules)).toThrow(/executor or a common/);
    expect(() => createMempool({ maxTxs: 0 }, { ...modules, executor })).toThrow(/maxTxs/);
    const pool = createMempool({}, { ...modules, common: executor.common });
    expect(pool.options).toMatchObject({ maxTxs: 10_000, maxTxBytes: 131_072, maxGasLimit: 30_000_000n });
  });

  it("reports plain numbers, rejections by code and the oldest age", async () => {
    const { pool } = setupPool(executor);
    const raw = await transfer(alice, 0);
    expectOk(await pool.add(raw));
    await pool.add(raw);
    await pool.add(Uint8Array.of(1, 2, 3));
    const stats = pool.stats();
    expect(stats).toMatchObject({
      txs: 1,
      senders: 1,
      bytes: raw.length,
      admittedTotal: 1,
      rejectedTotal: 2,
      rejectedByCode: { MEMPOOL_ALREADY_KNOWN: 1, MEMPOOL_MALFORMED: 1 },
    });
    expect(stats.oldestAgeSeconds).toBeGreaterThan(0);
    expect(toHex(pool.get(keccak256(raw))!.raw)).toBe(toHex(raw));
  });
});
