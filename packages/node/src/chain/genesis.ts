/**
 * The genesis document: everything every validator must agree on before block 1.
 *
 * It is JSON (operators diff and review it), validated with zod, and hashed canonically (keys
 * sorted, no whitespace) so that reformatting the file does not change the chain. Allocations use
 * geth's shape (`balance`, `nonce`, `code`, `storage`), which is also how predeployed contracts
 * appear: `vitalstream init` runs their constructors once and writes the resulting code and storage.
 */
import { createHash } from "node:crypto";
import { RLP } from "@ethereumjs/rlp";
import { hexToBytes, KECCAK256_NULL } from "@ethereumjs/util";
import { keccak_256 as keccak256 } from "@noble/hashes/sha3.js";
import { type Validator, ValidatorSet } from "@vitalstream/consensus";
import { z } from "zod";
import {
  GENESIS_STATE_ROOT,
  type StateChange,
  stateCommitment,
  stripLeadingZeros,
} from "../execution/state.ts";
import { BLOCK_VERSION, type Block, blockHash, encodeBlock, txsRoot } from "./block.ts";
import { ChainError } from "./errors.ts";

export const GENESIS_FORMAT = "vitalstream-genesis";

const hexBytes = (bytes?: number) =>
  z
    .string()
    .regex(/^0x([0-9a-fA-F]{2})*$/, "must be 0x-prefixed hex bytes")
    .refine((s) => bytes === undefined || s.length === 2 + bytes * 2, `must be ${bytes} bytes`);
const address = hexBytes(20);
const quantity = z.string().regex(/^(0x[0-9a-fA-F]+|[0-9]+)$/, "must be a decimal or 0x-hex integer");

const timeoutsSchema = z.strictObject({
  proposeMs: z.number().int().min(1),
  proposeDeltaMs: z.number().int().min(0),
  prevoteMs: z.number().int().min(1),
  prevoteDeltaMs: z.number().int().min(0),
  precommitMs: z.number().int().min(1),
  precommitDeltaMs: z.number().int().min(0),
});

export const genesisSchema = z
  .object({
    format: z.literal(GENESIS_FORMAT),
    version: z.literal(1),
    /** The consensus chain id (signed into every consensus message). */
    chainId: z.string().min(1).max(64),
    /** The EIP-155 chain id (signed into every transaction). */
    evmChainId: z.number().int().positive().max(Number.MAX_SAFE_INTEGER),
    genesisTime: z.iso.datetime(),
    consensus: z.strictObject({
      timeouts: timeoutsSchema,
      blockGasLimit: quantity,
      maxBlockBytes: z
        .number()
        .int()
        .min(1024)
        .max(16 * 1024 * 1024),
      maxBlockTxs: z.number().int().min(1).max(100_000),
      /** How long a proposer waits for transactions before proposing an empty block. */
      emptyBlockIntervalMs: z.number().int().min(0),
      /** Pause after a commit before the next height starts (CometBFT's timeout_commit). */
      commitIntervalMs: z.number().int().min(0),
    }),
    validators: z
      .array(
        z.strictObject({
          name: z.string().min(1).max(64),
          publicKey: hexBytes(),
          algorithm: z.enum(["ed25519", "ecdsa-p256"]),
          votingPower: z.number().int().min(1),
          /** libp2p peer id of the validator's node key. */
          nodeId: z.string().min(1),
        }),
      )
      .min(1),
    permissions: z.strictObject({
      /** Accounts that may send transactions. */
      senders: z.array(address),
      /** Accounts that administer the network's contracts (always permitted senders too). */
      admins: z.array(address),
    }),
    /** Named predeployed contracts (their code and storage are in `alloc`). */
    contracts: z.record(z.string(), address).default({}),
    alloc: z.record(
      address,
      z.strictObject({
        balance: quantity.default("0"),
        nonce: quantity.default("0"),
        code: hexBytes().optional(),
        storage: z.record(hexBytes(32), hexBytes(32)).optional(),
      }),
    ),
  })
  .strict();

export type GenesisDocument = z.infer<typeof genesisSchema>;

function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(",")}]`;
  if (value !== null && typeof value === "object") {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(",")}}`;
  }
  return JSON.stringify(value);
}

/** The schema checked every hex field; @ethereumjs wants the template-literal type. */
const fromHex = (text: string): Uint8Array => hexToBytes(text as `0x${string}`);

/** Parses and checks a genesis document; every problem is named with its path. */
export function parseGenesis(input: unknown): GenesisDocument {
  const parsed = genesisSchema.safeParse(input);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new ChainError(
      "CHAIN_INVALID_GENESIS",
      `genesis ${issue.path.join(".") || "(root)"}: ${issue.message}`,
    );
  }
  const doc = parsed.data;
  // Addresses are case-insensitive: two spellings of one address would make the genesis state
  // depend on key order, which the canonical document hash ignores.
  const addresses = new Set<string>();
  for (const address of Object.keys(doc.alloc)) {
    const lower = address.toLowerCase();
    if (addresses.has(lower))
      throw new ChainError(
        "CHAIN_INVALID_GENESIS",
        `genesis alloc: ${address} is listed twice (addresses are case-insensitive)`,
      );
    addresses.add(lower);
  }
  const keys = new Set<string>();
  for (const v of doc.validators) {
    const key = v.publicKey.toLowerCase();
    if (keys.has(key))
      throw new ChainError("CHAIN_INVALID_GENESIS", `genesis: validator ${v.name} is listed twice`);
    keys.add(key);
    const length = fromHex(v.publicKey).length;
    const expected = v.algorithm === "ed25519" ? 32 : 65;
    if (length !== expected)
      throw new ChainError(
        "CHAIN_INVALID_GENESIS",
        `genesis: validator ${v.name} has a ${length}-byte ${v.algorithm} key, expected ${expected}`,
      );
  }
  try {
    ValidatorSet.create(genesisValidators(doc));
  } catch (e) {
    throw new ChainError("CHAIN_INVALID_GENESIS", `genesis validators: ${(e as Error).message}`);
  }
  return doc;
}

export function genesisValidators(doc: GenesisDocument): Validator[] {
  return doc.validators.map((v) => ({
    publicKey: fromHex(v.publicKey),
    algorithm: v.algorithm,
    votingPower: v.votingPower,
  }));
}

export function validatorsHash(validators: readonly Validator[]): Uint8Array {
  return keccak256(
    RLP.encode(
      validators.map((v) => [new TextEncoder().encode(v.algorithm), v.publicKey, BigInt(v.votingPower)]),
    ),
  );
}

/** SHA-256 of the canonical JSON of the document. */
export function genesisDocumentHash(doc: GenesisDocument): Uint8Array {
  return new Uint8Array(createHash("sha256").update(canonicalJson(doc)).digest());
}

/** The state the allocations describe, as changes over the empty state. */
export function genesisStateChanges(doc: GenesisDocument): StateChange[] {
  const changes: StateChange[] = [];
  for (const [addressHex, account] of Object.entries(doc.alloc)) {
    const addr = fromHex(addressHex.toLowerCase());
    let codeHash = KECCAK256_NULL;
    if (account.code !== undefined && account.code.length > 2) {
      const code = fromHex(account.code);
      codeHash = keccak256(code);
      changes.push({ kind: "code", codeHash, code });
    }
    changes.push({
      kind: "account",
      address: addr,
      account: { nonce: BigInt(account.nonce), balance: BigInt(account.balance), codeHash },
    });
    for (const [slot, value] of Object.entries(account.storage ?? {})) {
      const stripped = stripLeadingZeros(fromHex(value));
      if (stripped.length > 0)
        changes.push({ kind: "storage", address: addr, slot: fromHex(slot), value: stripped });
    }
  }
  return changes;
}

export interface GenesisBlock {
  block: Block;
  encoded: Uint8Array;
  hash: Uint8Array;
  stateRoot: Uint8Array;
  receiptsRoot: Uint8Array;
  changes: StateChange[];
}

/** Block 0: commits to the genesis document (as its parent hash) and to the genesis state. */
export function genesisBlock(doc: GenesisDocument): GenesisBlock {
  const changes = genesisStateChanges(doc);
  const stateRoot = stateCommitment(GENESIS_STATE_ROOT, changes);
  const receiptsRoot = keccak256(RLP.encode([]));
  const block: Block = {
    header: {
      version: BLOCK_VERSION,
      chainId: doc.chainId,
      height: 0,
      timestampMs: Date.parse(doc.genesisTime),
      parentHash: genesisDocumentHash(doc),
      proposerIndex: 0,
      txsRoot: txsRoot([]),
      lastStateRoot: stateRoot,
      lastReceiptsRoot: receiptsRoot,
      validatorsHash: validatorsHash(genesisValidators(doc)),
    },
    txs: [],
  };
  const encoded = encodeBlock(block);
  return { block, encoded, hash: blockHash(encoded), stateRoot, receiptsRoot, changes };
}
