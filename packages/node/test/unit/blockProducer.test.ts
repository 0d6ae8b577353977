import { randomBytes } from "node:crypto";
import { join } from "node:path";
import { defaultTimeoutOptions, ValidatorSet } from "@vitalstream/consensus";
import { DEVNET_CHAIN_ID, DEVNET_DEPLOYER } from "@vitalstream/contracts";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Block, encodeBlock, txsRoot } from "../../src/chain/block.ts";
import { buildBlock, limitsOf, MAX_CLOCK_DRIFT_MS, validateBlock } from "../../src/chain/blockProducer.ts";
import { Chain } from "../../src/chain/chain.ts";
import {
  GENESIS_FORMAT,
  type GenesisDocument,
  genesisValidators,
  parseGenesis,
  validatorsHash,
} from "../../src/chain/genesis.ts";
import { createExecutor, type Executor } from "../../src/execution/executor.ts";
import { createMempool, type Mempool } from "../../src/mempool/mempool.ts";
import { EncryptedStore } from "../../src/store/encryptedStore.ts";
import { deployer, signTx, toHex, writer } from "../fixtures/execution.ts";
import { passphraseWrapper, tempDir } from "../fixtures/store.ts";

const GENESIS_TIME = "2026-01-01T00:00:00.000Z";
const GENESIS_MS = Date.parse(GENESIS_TIME);
const NOW = GENESIS_MS + 60_000;
const MAX_TXS = 8;

function genesis(consensus: { maxBlockBytes?: number; maxBlockTxs?: number } = {}): GenesisDocument {
  return parseGenesis({
    format: GENESIS_FORMAT,
    version: 1,
    chainId: "vs-producer-test",
    evmChainId: DEVNET_CHAIN_ID,
    genesisTime: GENESIS_TIME,
    consensus: {
      timeouts: defaultTimeoutOptions,
      blockGasLimit: "30000000",
      maxBlockBytes: consensus.maxBlockBytes ?? 64 * 1024,
      maxBlockTxs: consensus.maxBlockTxs ?? MAX_TXS,
      emptyBlockIntervalMs: 0,
      commitIntervalMs: 0,
    },
    // Three validators: an index of 3 is one past the end.
    validators: [0, 1, 2].map((i) => ({
      name: `v${i}`,
      publicKey: toHex(randomBytes(32)),
      algorithm: "ed25519",
      votingPower: 10 + i,
      nodeId: `node-${i}`,
    })),
    permissions: { senders: [deployer.address], admins: [deployer.address] },
    alloc: { [deployer.address.toLowerCase()]: { balance: DEVNET_DEPLOYER.balanceWei.toString() } },
  });
}

interface Setup {
  chain: Chain;
  store: EncryptedStore;
  mempool: Mempool;
  set: ValidatorSet;
}

const opened: EncryptedStore[] = [];
let executor: Executor;

async function setup(doc: GenesisDocument): Promise<Setup> {
  const dir = tempDir();
  const store = await EncryptedStore.open(
    { path: join(dir, "db"), create: true },
    { keyWrapper: await passphraseWrapper(dir) },
  );
  opened.push(store);
  const chain = await Chain.open(store, doc);
  const mempool = createMempool({}, { executor, state: chain.state(), isPermitted: () => true });
  const set = (await chain.getValidatorSet(1))!;
  return { chain, store, mempool, set };
}

let s: Setup;

beforeAll(async () => {
  executor = await createExecutor({ chainId: BigInt(DEVNET_CHAIN_ID) });
  s = await setup(genesis());
});

afterAll(async () => {
  for (const store of opened) await store.close();
});

function build(setup: Setup = s, nowMs = NOW, proposerIndex = 1) {
  return buildBlock({
    chain: setup.chain,
    mempool: setup.mempool,
    validatorSet: setup.set,
    proposerIndex,
    nowMs,
  });
}

function validate(encoded: Uint8Array, setup: Setup = s, nowMs = NOW, validatorSet = setup.set) {
  return validateBlock({ chain: setup.chain, validatorSet, encoded, nowMs });
}

/** The built block with a changed header (and optionally other transactions), re-encoded. */
function tampered(edit: Partial<Block["header"]>, txs?: Uint8Array[]): Uint8Array {
  const { block } = build();
  return encodeBlock({ header: { ...block.header, ...edit }, txs: txs ?? block.txs });
}

describe("buildBlock", () => {
  it("builds the block after the head, which validates", () => {
    const head = s.chain.head;
    const { block, encoded } = build();
    expect(encoded).toEqual(encodeBlock(block));
    expect(block.header).toMatchObject({
      chainId: "vs-producer-test",
      height: 1,
      timestampMs: NOW,
      proposerIndex: 1,
      parentHash: head.hash,
      lastStateRoot: head.stateRoot,
      lastReceiptsRoot: head.receiptsRoot,
      validatorsHash: validatorsHash(ValidatorSet.create(genesisValidators(s.chain.genesis)).validators),
      txsRoot: txsRoot([]),
    });
    expect(block.txs).toEqual([]);
    expect(validate(encoded)).toEqual({ valid: true, block });
  });

  it("moves time forward even when the local clock is behind the head", () => {
    const { block, encoded } = build(s, GENESIS_MS - 5_000);
    expect(block.header.timestampMs).toBe(GENESIS_MS + 1);
    expect(validate(encoded, s, GENESIS_MS - 5_000).valid).toBe(true);
  });

  it("takes pending transactions in nonce order, at most maxBlockTxs, and the block validates", async () => {
    // A chain of its own: its pool must not leak into the other tests' blocks.
    const own = await setup(genesis());
    const raws: Uint8Array[] = [];
    for (let nonce = 0; nonce < MAX_TXS + 2; nonce++) {
      const raw = await signTx(deployer, { nonce, to: writer.address, value: 1n, gasLimit: 21_000n });
      raws.push(raw);
      expect((await own.mempool.add(raw)).ok).toBe(true);
    }
    const { block, encoded } = build(own);
    expect(block.txs).toEqual(raws.slice(0, MAX_TXS));
    expect(block.header.txsRoot).toEqual(txsRoot(raws.slice(0, MAX_TXS)));
    expect(validate(encoded, own).valid).toBe(true);
  });

  it("stays within maxBlockBytes however many transactions are pending", async () => {
    const small = await setup(genesis({ maxBlockBytes: 1024, maxBlockTxs: 100 }));
    const limit = limitsOf(small.chain).maxBlockBytes;
    expect(limit).toBe(1024);
    for (let nonce = 0; nonce < 12; nonce++) {
      const raw = await signTx(deployer, {
        nonce,
        to: writer.address,
        data: toHex(new Uint8Array(150).fill(nonce + 1)),
        gasLimit: 100_000n,
      });
      expect((await small.mempool.add(raw)).ok).toBe(true);
    }
    const { block, encoded } = build(small);
    expect(block.txs.length).toBeGreaterThan(0);
    expect(block.txs.length).toBeLessThan(12);
    expect(encoded.length).toBeLessThanOrEqual(limit);
    expect(validate(encoded, small).valid).toBe(true);
  });
});

describe("validateBlock refuses, with a reason", () => {
  const head = () => s.chain.head;
  const cases: [string, () => Uint8Array, RegExp][] = [
    ["another chain id", () => tampered({ chainId: "another-chain" }), /^block 1: chain id another-chain$/],
    ["a wrong parent hash", () => tampered({ parentHash: randomBytes(32) }), /^block 1: wrong parent hash$/],
    ["a height that skips one", () => tampered({ height: 2 }), /^block 2: does not follow head 0$/],
    ["the head's own height", () => tampered({ height: 0 }), /^block 0: does not follow head 0$/],
    [
      "a state root other than ours",
      () => tampered({ lastStateRoot: randomBytes(32) }),
      /^block 1: state root differs from ours$/,
    ],
    [
      "a receipts root other than ours",
      () => tampered({ lastReceiptsRoot: randomBytes(32) }),
      /^block 1: receipts root differs from ours$/,
    ],
    [
      "another validator set",
      () => tampered({ validatorsHash: randomBytes(32) }),
      /^block 1: wrong validator set$/,
    ],
    ["a proposer index out of range", () => tampered({ proposerIndex: 3 }), /^block 1: no validator 3$/],
    [
      "the head's timestamp",
      () => tampered({ timestampMs: head().timestampMs }),
      /^block 1: time does not move forward$/,
    ],
    [
      "a timestamp before the head's",
      () => tampered({ timestampMs: head().timestampMs - 1 }),
      /^block 1: time does not move forward$/,
    ],
    [
      "a timestamp too far in the future",
      () => tampered({ timestampMs: NOW + MAX_CLOCK_DRIFT_MS + 1 }),
      /^block 1: time is too far in the future$/,
    ],
    [
      "more transactions than maxBlockTxs",
      () => {
        const txs = Array.from({ length: MAX_TXS + 1 }, (_, i) => Uint8Array.of(i + 1));
        return tampered({ txsRoot: txsRoot(txs) }, txs);
      },
      /^block 1: 9 transactions exceed 8$/,
    ],
    [
      "transactions that do not match txsRoot",
      () => tampered({}, [Uint8Array.of(1, 2, 3)]),
      /^block 1: transactions do not match txsRoot$/,
    ],
    [
      "transactions in another order than txsRoot",
      () => {
        const txs = [Uint8Array.of(1), Uint8Array.of(2)];
        return tampered({ txsRoot: txsRoot(txs) }, [...txs].reverse());
      },
      /^block 1: transactions do not match txsRoot$/,
    ],
    [
      "a block larger than maxBlockBytes",
      () => {
        const txs = [new Uint8Array(64 * 1024)];
        return tampered({ txsRoot: txsRoot(txs) }, txs);
      },
      /^block of 65\d{3} bytes exceeds 65536$/,
    ],
    ["bytes that are not RLP", () => Uint8Array.of(0xf8, 0x05, 1), /^not RLP: /],
    ["an empty value", () => new Uint8Array(0), /^block must be \[header, txs\]$/],
    ["an unknown block version", () => tampered({ version: 2 }), /^unknown block version 2$/],
    [
      "a hash field of the wrong length",
      () => tampered({ parentHash: new Uint8Array(20) }),
      /^parentHash must be 32 bytes, got 20$/,
    ],
  ];

  it.each(cases)("%s", (_name, make, reason) => {
    const result = validate(make());
    expect(result.valid).toBe(false);
    if (!result.valid) expect(result.reason).toMatch(reason);
  });

  it("accepts a timestamp exactly at the allowed drift, and the same block against a later clock", () => {
    expect(validate(tampered({ timestampMs: NOW + MAX_CLOCK_DRIFT_MS })).valid).toBe(true);
    expect(validate(tampered({ timestampMs: NOW + MAX_CLOCK_DRIFT_MS + 1 }), s, NOW + 1).valid).toBe(true);
  });

  it("accepts exactly maxBlockTxs transactions and the last valid proposer index", () => {
    const txs = Array.from({ length: MAX_TXS }, (_, i) => Uint8Array.of(i + 1));
    expect(validate(tampered({ txsRoot: txsRoot(txs) }, txs)).valid).toBe(true);
    expect(validate(tampered({ proposerIndex: 2 })).valid).toBe(true);
  });

  it("refuses a block built for another validator set", () => {
    const other = ValidatorSet.create([{ publicKey: randomBytes(32), algorithm: "ed25519", votingPower: 1 }]);
    const { encoded } = build();
    const result = validate(encoded, s, NOW, other);
    expect(result).toEqual({ valid: false, reason: "block 1: wrong validator set" });
  });
});
