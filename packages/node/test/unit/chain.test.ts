import { generateKeyPairSync, type KeyObject, randomBytes as nodeRandomBytes, sign } from "node:crypto";
import { join } from "node:path";
import { KECCAK256_NULL } from "@ethereumjs/util";
import {
  buildCertificate,
  type CommitCertificate,
  createNodeCryptoVerify,
  defaultTimeoutOptions,
  MessageType,
  signBytes,
  ValidatorSet,
  type VoteMessage,
  verifyCertificate,
} from "@vitalstream/consensus";
import { DEVNET_CHAIN_ID, DEVNET_DEPLOYER } from "@vitalstream/contracts";
import type { KeyWrapper } from "@vitalstream/hsm";
import { getBytes } from "ethers";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BLOCK_VERSION, type Block, blockHash, encodeBlock, txsRoot } from "../../src/chain/block.ts";
import { buildBlock, validateBlock } from "../../src/chain/blockProducer.ts";
import { Chain, type ChainHead } from "../../src/chain/chain.ts";
import { ChainError } from "../../src/chain/errors.ts";
import {
  GENESIS_FORMAT,
  type GenesisDocument,
  genesisBlock,
  genesisValidators,
  parseGenesis,
  validatorsHash,
} from "../../src/chain/genesis.ts";
import {
  decodeExecution,
  decodeLog,
  decodeReceipt,
  decodeTxLocation,
  decodeValidatorSet,
  type ExecutionRecord,
  encodeExecution,
  encodeLog,
  encodeReceipt,
  encodeTxLocation,
  encodeValidatorSet,
  heightIndexKey,
  heightKey,
  readHeightKey,
  type StoredLog,
  type StoredReceipt,
} from "../../src/chain/records.ts";
import { type BlockExecution, createExecutor, type Executor } from "../../src/execution/executor.ts";
import { createMempool } from "../../src/mempool/mempool.ts";
import { EncryptedStore } from "../../src/store/encryptedStore.ts";
import { Prefix } from "../../src/store/prefixes.ts";
import {
  auditLog,
  auditLogAddress,
  deployAuditLog,
  deployer,
  recordData,
  signTx,
  toHex,
  WRITER_ROLE,
  writer,
} from "../fixtures/execution.ts";
import { reversedKeys } from "../fixtures/json.ts";
import { passphraseWrapper, tempDir } from "../fixtures/store.ts";

const CHAIN_ID = "vs-chain-test";
const GENESIS_TIME = "2026-01-01T00:00:00.000Z";
const ZERO_ADDRESS = new Uint8Array(20);
const CONTRACT = auditLogAddress(0);
const hex = (bytes: Uint8Array) => Buffer.from(bytes).toString("hex");
const randomBytes = (length: number) => new Uint8Array(nodeRandomBytes(length));

function ed25519(): { publicKey: Uint8Array; privateKey: KeyObject } {
  const { publicKey, privateKey } = generateKeyPairSync("ed25519");
  const jwk = publicKey.export({ format: "jwk" });
  return { publicKey: new Uint8Array(Buffer.from(jwk.x!, "base64url")), privateKey };
}

const validatorKey = ed25519();

function genesisJson(chainId = CHAIN_ID) {
  return {
    format: GENESIS_FORMAT,
    version: 1,
    chainId,
    evmChainId: DEVNET_CHAIN_ID,
    genesisTime: GENESIS_TIME,
    consensus: {
      timeouts: defaultTimeoutOptions,
      blockGasLimit: "30000000",
      maxBlockBytes: 1024 * 1024,
      maxBlockTxs: 100,
      emptyBlockIntervalMs: 0,
      commitIntervalMs: 0,
    },
    validators: [
      {
        name: "solo",
        publicKey: toHex(validatorKey.publicKey),
        algorithm: "ed25519",
        votingPower: 10,
        nodeId: "node-solo",
      },
    ],
    permissions: { senders: [deployer.address], admins: [deployer.address] },
    alloc: { [deployer.address.toLowerCase()]: { balance: DEVNET_DEPLOYER.balanceWei.toString() } },
  };
}

/** The one validator's precommit for `encoded` at `height`, as a certificate. */
function certify(height: number, encoded: Uint8Array, chainId = CHAIN_ID): CommitCertificate {
  const unsigned = {
    type: MessageType.Precommit,
    chainId,
    height,
    round: 0,
    valueHash: blockHash(encoded),
    validatorIndex: 0,
  } as const;
  const vote: VoteMessage = {
    ...unsigned,
    signature: new Uint8Array(sign(null, signBytes(unsigned), validatorKey.privateKey)),
  };
  return buildCertificate([vote]);
}

let doc: GenesisDocument;
let dir: string;
let keyWrapper: KeyWrapper;
let store: EncryptedStore;
let chain: Chain;
let executor: Executor;
const heads: ChainHead[] = [];

interface Proposal {
  block: Block;
  encoded: Uint8Array;
  execution: BlockExecution;
  certificate: CommitCertificate;
  set: ValidatorSet;
}

/** The next block with exactly these transactions, checked, executed and certified (not committed). */
async function propose(txs: Uint8Array[], edit: Partial<Block["header"]> = {}): Promise<Proposal> {
  const head = chain.head;
  const set = (await chain.getValidatorSet(head.height + 1))!;
  const block: Block = {
    header: {
      version: BLOCK_VERSION,
      chainId: CHAIN_ID,
      height: head.height + 1,
      timestampMs: head.timestampMs + 2_000,
      parentHash: head.hash,
      proposerIndex: set.proposer(0),
      txsRoot: txsRoot(txs),
      lastStateRoot: head.stateRoot,
      lastReceiptsRoot: head.receiptsRoot,
      validatorsHash: validatorsHash(set.validators),
      ...edit,
    },
    txs,
  };
  const encoded = encodeBlock(block);
  const execution = await executor.executeBlock(
    {
      height: BigInt(block.header.height),
      timestamp: BigInt(Math.floor(block.header.timestampMs / 1000)),
      coinbase: ZERO_ADDRESS,
      txs,
      parentStateRoot: head.stateRoot,
    },
    chain.state(),
  );
  return { block, encoded, execution, certificate: certify(block.header.height, encoded), set };
}

function commit(p: Proposal) {
  return chain.commit({
    block: p.block,
    encoded: p.encoded,
    certificate: p.certificate,
    execution: p.execution,
    nextValidatorSet: p.set.next(),
  });
}

const proposals: Proposal[] = [];
const garbage = Uint8Array.of(0xc3, 1, 2, 3);
let tooHigh: Uint8Array;
let writerRecord: Uint8Array;

beforeAll(async () => {
  doc = parseGenesis(genesisJson());
  dir = tempDir();
  keyWrapper = await passphraseWrapper(dir);
  store = await EncryptedStore.open({ path: join(dir, "db"), create: true }, { keyWrapper });
  chain = await Chain.open(store, doc);
  executor = await createExecutor({ chainId: BigInt(DEVNET_CHAIN_ID), blockGasLimit: 30_000_000n });
  chain.onHead((head) => heads.push(head));

  // Block 1 goes through the mempool and buildBlock, as the proposer does.
  const mempool = createMempool({}, { executor, state: chain.state(), isPermitted: () => true });
  const grant = (to: string) => auditLog.encodeFunctionData("grantRole", [WRITER_ROLE, to]);
  for (const raw of [
    await deployAuditLog(0),
    await signTx(deployer, { nonce: 1, to: CONTRACT, data: grant(writer.address) }),
    await signTx(deployer, { nonce: 2, to: CONTRACT, data: grant(deployer.address) }),
  ])
    expect((await mempool.add(raw)).ok).toBe(true);
  const set = (await chain.getValidatorSet(1))!;
  const nowMs = Date.parse(GENESIS_TIME) + 1_000;
  const built = buildBlock({ chain, mempool, validatorSet: set, proposerIndex: set.proposer(0), nowMs });
  expect(built.block.txs).toHaveLength(3);
  expect(validateBlock({ chain, validatorSet: set, encoded: built.encoded, nowMs })).toEqual({
    valid: true,
    block: built.block,
  });
  const p1 = await propose(built.block.txs, { timestampMs: built.block.header.timestampMs });
  expect(p1.encoded).toEqual(built.encoded);
  await commit(p1);
  proposals.push(p1);

  // Block 2: two records (two logs). Block 3: a malformed and a nonce-too-high transaction
  // around the writer's record (rejections leave gaps). Block 4: empty.
  const p2 = await propose([
    await signTx(deployer, { nonce: 3, to: CONTRACT, data: recordData(1) }),
    await signTx(deployer, { nonce: 4, to: CONTRACT, data: recordData(2) }),
  ]);
  await commit(p2);
  proposals.push(p2);
  tooHigh = await signTx(deployer, { nonce: 99, to: CONTRACT, data: recordData(3) });
  writerRecord = await signTx(writer, { nonce: 0, to: CONTRACT, data: recordData(4) });
  const p3 = await propose([garbage, tooHigh, writerRecord]);
  await commit(p3);
  proposals.push(p3);
  const p4 = await propose([]);
  await commit(p4);
  proposals.push(p4);
});

afterAll(async () => {
  await store.close().catch(() => undefined);
});

describe("Chain.open on a new store", () => {
  it("writes the genesis block, its execution record, the first validator set and the genesis state", async () => {
    const fresh = tempDir();
    const s = await EncryptedStore.open(
      { path: join(fresh, "db"), create: true },
      { keyWrapper: await passphraseWrapper(fresh) },
    );
    const c = await Chain.open(s, doc);
    const g = genesisBlock(doc);
    expect(c.head).toEqual({
      height: 0,
      hash: g.hash,
      timestampMs: Date.parse(GENESIS_TIME),
      stateRoot: g.stateRoot,
      receiptsRoot: g.receiptsRoot,
    });
    expect((await c.getBlock(0))?.encoded).toEqual(g.encoded);
    expect(await c.heightOf(g.hash)).toBe(0);
    expect(await c.getExecution(0)).toMatchObject({
      height: 0,
      stateRoot: g.stateRoot,
      gasUsed: 0n,
      rejected: [],
    });
    expect(await c.getCertificate(0)).toBeUndefined();
    const set = (await c.getValidatorSet(1))!;
    expect(set.validators).toEqual(ValidatorSet.create(genesisValidators(doc)).validators);
    expect(set.priorities).toEqual([0]);
    const account = await c.state().getAccount(getBytes(deployer.address));
    expect(account).toEqual({ nonce: 0n, balance: DEVNET_DEPLOYER.balanceWei, codeHash: KECCAK256_NULL });
    expect(c.genesisHash).toEqual(g.block.header.parentHash);
    expect(c.evmChainId).toBe(BigInt(DEVNET_CHAIN_ID));
    await s.close();
  });
});

describe("committed blocks", () => {
  it("move the head, and every listener hears each new head", () => {
    expect(chain.head.height).toBe(4);
    expect(heads.map((h) => h.height)).toEqual([1, 2, 3, 4]);
    for (const [i, p] of proposals.entries()) {
      expect(heads[i]).toEqual({
        height: i + 1,
        hash: blockHash(p.encoded),
        timestampMs: p.block.header.timestampMs,
        stateRoot: p.execution.stateRoot,
        receiptsRoot: p.execution.receiptsRoot,
      });
    }
    expect(chain.head).toEqual(heads[3]);
  });

  it("are found by height and by hash, with the exact committed bytes", async () => {
    for (const [i, p] of proposals.entries()) {
      const height = i + 1;
      const hash = blockHash(p.encoded);
      const stored = (await chain.getBlock(height))!;
      expect(stored.encoded).toEqual(p.encoded);
      expect(stored.hash).toEqual(hash);
      expect(stored.block).toEqual(p.block);
      expect(await chain.heightOf(hash)).toBe(height);
      expect((await chain.getBlockByHash(hash))?.encoded).toEqual(p.encoded);
    }
    // Each block names its parent.
    for (let h = 1; h <= 4; h++)
      expect((await chain.getBlock(h))!.block.header.parentHash).toEqual((await chain.getBlock(h - 1))!.hash);
  });

  it("answers undefined beyond the head, for impossible heights and for unknown or short hashes", async () => {
    expect(await chain.getBlock(5)).toBeUndefined();
    expect(await chain.getBlock(-1)).toBeUndefined();
    expect(await chain.getBlock(1.5)).toBeUndefined();
    expect(await chain.getBlock(Number.NaN)).toBeUndefined();
    expect(await chain.heightOf(randomBytes(32))).toBeUndefined();
    expect(await chain.heightOf(blockHash(proposals[0]!.encoded).subarray(0, 31))).toBeUndefined();
    expect(await chain.getBlockByHash(randomBytes(32))).toBeUndefined();
    expect(await chain.getTxLocation(randomBytes(32))).toBeUndefined();
    expect(await chain.getTxLocation(new Uint8Array(20))).toBeUndefined();
    expect(await chain.getCertificate(5)).toBeUndefined();
    expect(await chain.getExecution(5)).toBeUndefined();
    expect(await chain.getReceipts(5)).toEqual([]);
    expect(await chain.getLogs(5)).toEqual([]);
  });

  it("keep each block's receipts, in transaction order, consistent with execution", async () => {
    const [p1, p2] = proposals;
    const r1 = await chain.getReceipts(1);
    expect(r1.map((r) => r.txIndex)).toEqual([0, 1, 2]);
    expect(r1.map((r) => hex(r.txHash))).toEqual(p1!.execution.receipts.map((r) => hex(r.txHash)));
    expect(r1[0]!.contractAddress).toEqual(getBytes(CONTRACT));
    expect(r1[0]!.to).toBeUndefined();
    expect(r1[1]!.to).toEqual(getBytes(CONTRACT));
    expect(r1.every((r) => r.status === 1)).toBe(true);
    expect(r1.every((r) => hex(r.from) === hex(getBytes(deployer.address)))).toBe(true);
    expect(r1[1]!.cumulativeGasUsed).toBe(r1[0]!.gasUsed + r1[1]!.gasUsed);
    expect(r1[2]!.cumulativeGasUsed).toBe(p1!.execution.gasUsed);

    const r2 = await chain.getReceipts(2);
    expect(r2.map((r) => r.status)).toEqual([1, 1]);
    expect(r2.map((r) => [r.txIndex, r.firstLogIndex, r.logCount])).toEqual([
      [0, 0, 1],
      [1, 1, 1],
    ]);
    expect(r2.map((r) => hex(r.txHash))).toEqual(p2!.execution.receipts.map((r) => hex(r.txHash)));
    expect(await chain.getReceipt(2, 1)).toEqual(r2[1]);
    expect(await chain.getReceipt(2, 2)).toBeUndefined();
    expect(await chain.getReceipts(4)).toEqual([]);
  });

  it("keep logs by block log index, each naming its transaction", async () => {
    const logs = await chain.getLogs(2);
    expect(logs.map((l) => l.logIndex)).toEqual([0, 1]);
    const receipts = await chain.getReceipts(2);
    for (const r of receipts) {
      const own = await chain.getLogs(2, r.firstLogIndex, r.logCount);
      expect(own).toHaveLength(1);
      expect(own[0]!.txHash).toEqual(r.txHash);
      expect(own[0]!.txIndex).toBe(r.txIndex);
      expect(own[0]!.address).toEqual(getBytes(CONTRACT));
    }
    const executed = proposals[1]!.execution.logs;
    expect(logs.map((l) => [hex(l.data), l.topics.map(hex)])).toEqual(
      executed.map((l) => [hex(l.data), l.topics.map(hex)]),
    );
    expect(await chain.getLogs(2, 1)).toEqual([logs[1]]);
    expect(await chain.getLogs(2, 0, 1)).toEqual([logs[0]]);
    expect(await chain.getLogs(2, 2)).toEqual([]);
    // Logs of the next block are not mixed in.
    expect((await chain.getLogs(3)).every((l) => hex(l.txHash) !== hex(logs[0]!.txHash))).toBe(true);
  });

  it("place every executed transaction at its position in the block, rejected ones leaving gaps", async () => {
    const p3 = proposals[2]!;
    expect(p3.execution.outcomes.map((o) => o.ok)).toEqual([false, false, true]);
    const [receipt] = await chain.getReceipts(3);
    expect(await chain.getReceipts(3)).toHaveLength(1);
    expect(receipt!.txIndex).toBe(2);
    expect(receipt!.from).toEqual(getBytes(writer.address));
    expect(await chain.getReceipt(3, 2)).toEqual(receipt);
    expect(await chain.getReceipt(3, 0)).toBeUndefined();
    expect(await chain.getTxLocation(receipt!.txHash)).toEqual({ height: 3, index: 2 });
    const [log] = await chain.getLogs(3);
    expect(log!.txIndex).toBe(2);
    expect(log!.logIndex).toBe(0);
    for (const [height, p] of proposals.entries())
      for (const [index, r] of p.execution.receipts.entries())
        expect(await chain.getTxLocation(r.txHash), `block ${height + 1} receipt ${index}`).toEqual({
          height: height + 1,
          index: (await chain.getReceipts(height + 1))[index]!.txIndex,
        });
  });

  it("keep the execution record: roots, gas, log count and the rejected transactions with why", async () => {
    for (const [i, p] of proposals.entries()) {
      const record = (await chain.getExecution(i + 1))!;
      expect(record.height).toBe(i + 1);
      expect(record.stateRoot).toEqual(p.execution.stateRoot);
      expect(record.receiptsRoot).toEqual(p.execution.receiptsRoot);
      expect(record.gasUsed).toBe(p.execution.gasUsed);
      expect(record.logsBloom).toEqual(p.execution.logsBloom);
      expect(record.logCount).toBe(p.execution.logs.length);
    }
    const rejected = (await chain.getExecution(3))!.rejected;
    expect(rejected.map((r) => [r.index, r.code])).toEqual([
      [0, "TX_MALFORMED"],
      [1, "TX_NONCE_TOO_HIGH"],
    ]);
    expect(rejected[0]!.txHash).toBeUndefined();
    expect(hex(rejected[1]!.txHash!)).toBe(
      hex((proposals[2]!.execution.outcomes[1] as { txHash: Uint8Array }).txHash),
    );
    expect(rejected[1]!.message).toMatch(/nonce 99/);
    // The next block carries the roots of this one.
    for (let h = 1; h < 4; h++) {
      const record = (await chain.getExecution(h))!;
      const next = (await chain.getBlock(h + 1))!.block.header;
      expect(next.lastStateRoot).toEqual(record.stateRoot);
      expect(next.lastReceiptsRoot).toEqual(record.receiptsRoot);
    }
  });

  it("keep a certificate per block that verifies against the stored validator set of its height", async () => {
    const verify = createNodeCryptoVerify();
    for (const [i, p] of proposals.entries()) {
      const height = i + 1;
      const cert = (await chain.getCertificate(height))!;
      expect(cert).toEqual(p.certificate);
      const set = (await chain.getValidatorSet(height))!;
      const checked = verifyCertificate(cert, {
        chainId: CHAIN_ID,
        validatorSet: set,
        verify,
        height,
        valueHash: (await chain.getBlock(height))!.hash,
      });
      expect(checked).toEqual({ ok: true, value: 10 });
    }
  });

  it("keep the validator set of every next height", async () => {
    let expected = ValidatorSet.create(genesisValidators(doc));
    for (let h = 1; h <= 5; h++) {
      const set = (await chain.getValidatorSet(h))!;
      expect(set.validators).toEqual(expected.validators);
      expect(set.priorities).toEqual(expected.priorities);
      expected = expected.next();
    }
    expect(await chain.getValidatorSet(6)).toBeUndefined();
  });

  it("write the executed state: the contract, the writer's role and the nonces", async () => {
    const state = chain.state();
    const contract = (await state.getAccount(getBytes(CONTRACT)))!;
    expect(contract.codeHash).not.toEqual(KECCAK256_NULL);
    expect((await state.getCode(contract.codeHash))?.length).toBeGreaterThan(100);
    expect((await state.getAccount(getBytes(deployer.address)))?.nonce).toBe(5n);
    expect((await state.getAccount(getBytes(writer.address)))?.nonce).toBe(1n);
    expect((await state.storageSlots(getBytes(CONTRACT))).length).toBeGreaterThan(2);
  });
});

describe("commit refuses a block that does not follow the head", () => {
  async function refused(p: Proposal, message: RegExp): Promise<void> {
    const before = chain.head;
    const listened = heads.length;
    const error = await commit(p).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ChainError);
    expect((error as ChainError).code).toBe("CHAIN_INVALID_BLOCK");
    expect((error as ChainError).message).toMatch(message);
    expect(chain.head).toBe(before);
    expect(heads).toHaveLength(listened);
    // Nothing of the refused block reached the store.
    const key = heightKey(p.block.header.height);
    expect(await store.get(Prefix.Block, key)).toBeUndefined();
    expect(await store.get(Prefix.Certificate, key)).toBeUndefined();
    expect(await store.get(Prefix.BlockExecution, key)).toBeUndefined();
    expect(await store.get(Prefix.BlockHeightByHash, blockHash(p.encoded))).toBeUndefined();
  }

  it("a height that skips one", async () => {
    await refused(await propose([], { height: 6 }), /^block 6 does not follow head 4$/);
  });

  it("a block already committed", async () => {
    const p4 = proposals[3]!;
    const error = await commit(p4).catch((e: unknown) => e);
    expect((error as ChainError).code).toBe("CHAIN_INVALID_BLOCK");
    expect((error as ChainError).message).toBe("block 4 does not follow head 4");
    expect(chain.head.height).toBe(4);
  });

  it("a wrong parent hash", async () => {
    await refused(
      await propose([], { parentHash: randomBytes(32) }),
      /^block 5 does not name the head as its parent$/,
    );
  });

  it("a state root this node did not compute", async () => {
    await refused(
      await propose([], { lastStateRoot: randomBytes(32) }),
      /^block 5 carries a state root this node did not compute$/,
    );
  });

  it("a certificate of another block", async () => {
    const p = await propose([]);
    const other = await propose([], { timestampMs: p.block.header.timestampMs + 1 });
    await refused({ ...p, certificate: other.certificate }, /^the certificate does not name block 5$/);
  });

  it("a certificate of another height for the same bytes", async () => {
    const p = await propose([]);
    await refused({ ...p, certificate: certify(6, p.encoded) }, /^the certificate does not name block 5$/);
  });

  // BUG (chain.ts, Chain.commit): commit compares height, parent hash and lastStateRoot with the
  // head, but not lastReceiptsRoot. A block whose lastReceiptsRoot differs from the head's
  // receipts root is written and becomes the head, although validateBlock refuses such a block
  // ("receipts root differs from ours") and verifyChain then reports the stored chain as broken
  // ("carries a different parent receipts root"). errors.ts documents CHAIN_INVALID_BLOCK as
  // "does not follow the head (height, parent hash, roots)". Expected: CHAIN_INVALID_BLOCK and the
  // head unchanged. This test runs in a chain of its own so that the accepted block does not move
  // the shared chain's head.
  it("a receipts root other than the head's", async () => {
    const own = tempDir();
    const s = await EncryptedStore.open(
      { path: join(own, "db"), create: true },
      { keyWrapper: await passphraseWrapper(own) },
    );
    try {
      const c = await Chain.open(s, doc);
      const set = (await c.getValidatorSet(1))!;
      const block: Block = {
        header: {
          version: BLOCK_VERSION,
          chainId: CHAIN_ID,
          height: 1,
          timestampMs: c.head.timestampMs + 1,
          parentHash: c.head.hash,
          proposerIndex: 0,
          txsRoot: txsRoot([]),
          lastStateRoot: c.head.stateRoot,
          lastReceiptsRoot: randomBytes(32),
          validatorsHash: validatorsHash(set.validators),
        },
        txs: [],
      };
      const encoded = encodeBlock(block);
      const execution = await executor.executeBlock(
        { height: 1n, timestamp: 1n, coinbase: ZERO_ADDRESS, txs: [], parentStateRoot: c.head.stateRoot },
        c.state(),
      );
      const error = await c
        .commit({ block, encoded, certificate: certify(1, encoded), execution, nextValidatorSet: set.next() })
        .catch((e: unknown) => e);
      expect(c.head.height).toBe(0);
      expect((error as ChainError).code).toBe("CHAIN_INVALID_BLOCK");
    } finally {
      await s.close();
    }
  });

  it("and the chain still takes the right block afterwards", async () => {
    const p5 = await propose([]);
    const head = await commit(p5);
    expect(head.height).toBe(5);
    expect(chain.head.hash).toEqual(blockHash(p5.encoded));
    proposals.push(p5);
  });
});

describe("reopening the store", () => {
  it("resumes at the head; a reformatted copy of the genesis is the same genesis", async () => {
    const head = chain.head;
    await store.close();
    store = await EncryptedStore.open({ path: join(dir, "db") }, { keyWrapper });
    const reordered = `\n${JSON.stringify(reversedKeys(genesisJson()), null, 7)}  \n`;
    expect(reordered).not.toContain(JSON.stringify(genesisJson()).slice(0, 20));
    chain = await Chain.open(store, parseGenesis(JSON.parse(reordered)));
    expect(chain.head).toEqual(head);
    expect((await chain.getBlock(5))?.encoded).toEqual(proposals[4]!.encoded);
    expect(await chain.getCertificate(3)).toEqual(proposals[2]!.certificate);
  });

  it("refuses another genesis document (CHAIN_GENESIS_MISMATCH), naming the store", async () => {
    for (const other of [
      parseGenesis(genesisJson("another-chain")),
      parseGenesis({ ...genesisJson(), genesisTime: "2026-01-01T00:00:01.000Z" }),
    ]) {
      const error = await Chain.open(store, other).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(ChainError);
      expect((error as ChainError).code).toBe("CHAIN_GENESIS_MISMATCH");
      expect((error as ChainError).message).toContain(join(dir, "db"));
    }
    // The refusal wrote nothing: the right genesis still opens at the same head.
    expect((await Chain.open(store, doc)).head.height).toBe(5);
  });
});

describe("record encodings", () => {
  const receipt: StoredReceipt = {
    txHash: randomBytes(32),
    txIndex: 7,
    type: 2,
    from: randomBytes(20),
    to: undefined,
    contractAddress: randomBytes(20),
    status: 0,
    gasUsed: 123_456n,
    cumulativeGasUsed: 2n ** 70n,
    effectiveGasPrice: 0n,
    firstLogIndex: 3,
    logCount: 2,
    revertData: Uint8Array.of(0x08, 0xc3, 0x79, 0xa0),
    revertReason: "not a writer: ü",
    exceptionError: undefined,
  };

  it("round-trip a receipt, with and without optional fields", () => {
    expect(decodeReceipt(encodeReceipt(receipt))).toEqual(receipt);
    const other: StoredReceipt = {
      ...receipt,
      to: randomBytes(20),
      contractAddress: undefined,
      status: 1,
      txIndex: 0,
      revertData: new Uint8Array(0),
      revertReason: undefined,
      exceptionError: "out of gas",
    };
    expect(decodeReceipt(encodeReceipt(other))).toEqual(other);
  });

  it("round-trip a log", () => {
    const log: StoredLog = {
      address: randomBytes(20),
      topics: [randomBytes(32), randomBytes(32), randomBytes(32)],
      data: randomBytes(96),
      logIndex: 0,
      txIndex: 12,
      txHash: randomBytes(32),
    };
    expect(decodeLog(encodeLog(log))).toEqual(log);
    const anonymous = { ...log, topics: [], data: new Uint8Array(0), logIndex: 70_000 };
    expect(decodeLog(encodeLog(anonymous))).toEqual(anonymous);
  });

  it("round-trip an execution record with rejected transactions", () => {
    const record: ExecutionRecord = {
      height: 2 ** 40,
      stateRoot: randomBytes(32),
      receiptsRoot: randomBytes(32),
      gasUsed: 0n,
      logsBloom: randomBytes(256),
      logCount: 0,
      rejected: [
        { index: 0, txHash: undefined, code: "TX_MALFORMED", message: "not RLP" },
        {
          index: 5,
          txHash: randomBytes(32),
          code: "TX_NONCE_TOO_LOW",
          message: "nonce 1, account nonce is 2",
        },
      ],
    };
    expect(decodeExecution(encodeExecution(record))).toEqual(record);
    expect(decodeExecution(encodeExecution({ ...record, rejected: [] }))).toEqual({
      ...record,
      rejected: [],
    });
  });

  it("round-trip a transaction location", () => {
    for (const location of [
      { height: 0, index: 0 },
      { height: Number.MAX_SAFE_INTEGER, index: 99_999 },
    ])
      expect(decodeTxLocation(encodeTxLocation(location))).toEqual(location);
  });

  it("round-trip a validator set with negative priorities, keeping the proposer order", () => {
    const p256 = generateKeyPairSync("ec", { namedCurve: "P-256" }).publicKey.export({ format: "jwk" });
    const p256Key = Uint8Array.from([
      4,
      ...Buffer.from(p256.x!, "base64url"),
      ...Buffer.from(p256.y!, "base64url"),
    ]);
    let set = ValidatorSet.create([
      { publicKey: ed25519().publicKey, algorithm: "ed25519", votingPower: 1 },
      { publicKey: p256Key, algorithm: "ecdsa-p256", votingPower: 5 },
      { publicKey: ed25519().publicKey, algorithm: "ed25519", votingPower: 10 },
    ]);
    for (let i = 0; i < 3; i++) set = set.next();
    expect(set.priorities.some((p) => p < 0)).toBe(true);
    expect(set.priorities.some((p) => p > 0)).toBe(true);
    const restored = decodeValidatorSet(encodeValidatorSet(set));
    expect(restored.validators).toEqual(set.validators);
    expect(restored.priorities).toEqual(set.priorities);
    for (let round = 0; round < 20; round++) expect(restored.proposer(round)).toBe(set.proposer(round));
    expect(restored.next().priorities).toEqual(set.next().priorities);
  });

  it("refuse records with the wrong number of fields", () => {
    expect(() => decodeReceipt(encodeLog({ ...decodeLog(encodeLog(sampleLog())) }))).toThrow(
      /malformed receipt/,
    );
    expect(() => decodeLog(encodeTxLocation({ height: 1, index: 1 }))).toThrow(/malformed log/);
    expect(() => decodeTxLocation(encodeLog(sampleLog()))).toThrow(/malformed transaction location/);
    expect(() => decodeExecution(encodeTxLocation({ height: 1, index: 1 }))).toThrow(/malformed execution/);
  });

  it("height keys sort numerically and read back", () => {
    const heights = [0, 1, 255, 256, 65_535, 2 ** 32, 2 ** 40 + 7, Number.MAX_SAFE_INTEGER];
    const keys = heights.map(heightKey);
    const sorted = [...keys].sort(Buffer.compare);
    expect(sorted).toEqual(keys);
    for (const [i, h] of heights.entries()) expect(readHeightKey(keys[i]!)).toBe(h);
    // (height, index) keys of a height sort inside [heightKey(h), heightKey(h + 1)).
    const inside = heightIndexKey(7, 0xffffffff);
    expect(Buffer.compare(heightKey(7), inside)).toBeLessThan(0);
    expect(Buffer.compare(inside, heightKey(8))).toBeLessThan(0);
    expect(Buffer.compare(heightIndexKey(7, 1), heightIndexKey(7, 256))).toBeLessThan(0);
  });
});

function sampleLog(): StoredLog {
  return {
    address: randomBytes(20),
    topics: [randomBytes(32)],
    data: randomBytes(32),
    logIndex: 1,
    txIndex: 1,
    txHash: randomBytes(32),
  };
}
