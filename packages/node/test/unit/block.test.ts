import { createHash } from "node:crypto";
import { RLP } from "@ethereumjs/rlp";
import { keccak_256 as keccak256 } from "@noble/hashes/sha3.js";
import { describe, expect, it } from "vitest";
import {
  BLOCK_VERSION,
  type Block,
  BlockDecodeError,
  blockHash,
  decodeBlock,
  encodeBlock,
  headerFields,
  txsRoot,
} from "../../src/chain/block.ts";
import { prng } from "../fixtures/prng.ts";

function randomBytes(next: () => number, length: number): Uint8Array {
  const out = new Uint8Array(length);
  for (let i = 0; i < length; i++) out[i] = Math.floor(next() * 256);
  return out;
}

const hash = (fill: number) => new Uint8Array(32).fill(fill);

function sampleBlock(overrides: Partial<Block["header"]> = {}, txs: Uint8Array[] = []): Block {
  return {
    header: {
      version: BLOCK_VERSION,
      chainId: "vitalstream-test",
      height: 42,
      timestampMs: 1_800_000_000_123,
      parentHash: hash(1),
      proposerIndex: 3,
      txsRoot: txsRoot(txs),
      lastStateRoot: hash(2),
      lastReceiptsRoot: hash(3),
      validatorsHash: hash(4),
      ...overrides,
    },
    txs,
  };
}

const uint = (n: number | bigint) => {
  if (BigInt(n) === 0n) return new Uint8Array(0);
  let hex = BigInt(n).toString(16);
  if (hex.length % 2 === 1) hex = `0${hex}`;
  return new Uint8Array(Buffer.from(hex, "hex"));
};

/** An RLP list from already-encoded items (to write non-minimal items on purpose). */
function rawList(items: Uint8Array[]): Uint8Array {
  const payload = Buffer.concat(items);
  if (payload.length < 56) return Uint8Array.from([0xc0 + payload.length, ...payload]);
  const len = uint(payload.length);
  return Uint8Array.from([0xf7 + len.length, ...len, ...payload]);
}

function withHeaderField(index: number, value: unknown, block = sampleBlock()): Uint8Array {
  const fields: unknown[] = headerFields(block.header);
  fields[index] = value;
  return RLP.encode([fields as Uint8Array[], block.txs]);
}

function decodeError(encoded: Uint8Array): BlockDecodeError {
  try {
    decodeBlock(encoded);
  } catch (e) {
    if (e instanceof BlockDecodeError) return e;
    throw e;
  }
  throw new Error("expected a BlockDecodeError, the block decoded");
}

/** decodeBlock either refuses with a BlockDecodeError or returns a block that re-encodes to the input. */
function checkDecodeContract(encoded: Uint8Array, label: string): "accepted" | "refused" {
  let block: Block;
  try {
    block = decodeBlock(encoded);
  } catch (e) {
    if (e instanceof BlockDecodeError) {
      expect(e.code).toBe("BLOCK_MALFORMED");
      return "refused";
    }
    throw new Error(`${label}: decodeBlock threw ${(e as Error)?.name}: ${(e as Error)?.message}`);
  }
  expect(
    Buffer.from(encodeBlock(block)).equals(Buffer.from(encoded)),
    `${label}: accepted non-canonical`,
  ).toBe(true);
  return "accepted";
}

describe("block encoding", () => {
  it("round-trips a block with transactions, and the hash is SHA-256 of the encoding", () => {
    const txs = [Uint8Array.of(0x02, 1, 2, 3), new Uint8Array(100).fill(7), new Uint8Array(0)];
    const block = sampleBlock({}, txs);
    const encoded = encodeBlock(block);
    const decoded = decodeBlock(encoded);
    expect(decoded).toEqual(block);
    expect(encodeBlock(decoded)).toEqual(encoded);
    expect(Buffer.from(blockHash(encoded)).toString("hex")).toBe(
      createHash("sha256").update(encoded).digest("hex"),
    );
  });

  it("round-trips the extremes: height 0, no transactions, the largest safe integers, a non-ASCII chain id", () => {
    for (const block of [
      sampleBlock({ height: 0, timestampMs: 0, proposerIndex: 0 }),
      sampleBlock({
        height: Number.MAX_SAFE_INTEGER,
        timestampMs: Number.MAX_SAFE_INTEGER,
        proposerIndex: 2 ** 32 - 1,
      }),
      sampleBlock({ chainId: "hôpital-östra-病院" }),
      sampleBlock({ chainId: "" }),
    ]) {
      expect(decodeBlock(encodeBlock(block))).toEqual(block);
    }
  });

  it("round-trips random blocks (seeded)", () => {
    const next = prng(0xb10c);
    for (let i = 0; i < 200; i++) {
      const txs = Array.from({ length: Math.floor(next() * 6) }, () =>
        randomBytes(next, Math.floor(next() * 300)),
      );
      const block = sampleBlock(
        {
          chainId: `chain-${Math.floor(next() * 1e6)}`,
          height: Math.floor(next() * Number.MAX_SAFE_INTEGER),
          timestampMs: Math.floor(next() * 2 ** 45),
          proposerIndex: Math.floor(next() * 100),
          parentHash: randomBytes(next, 32),
          lastStateRoot: randomBytes(next, 32),
          lastReceiptsRoot: randomBytes(next, 32),
          validatorsHash: randomBytes(next, 32),
        },
        txs,
      );
      const encoded = encodeBlock(block);
      expect(decodeBlock(encoded), `seed 0xb10c case ${i}`).toEqual(block);
    }
  });

  it("txsRoot is keccak256 of the RLP list of transactions, and depends on their order", () => {
    const a = Uint8Array.of(1, 2, 3);
    const b = Uint8Array.of(4, 5);
    expect(txsRoot([a, b])).toEqual(keccak256(RLP.encode([a, b])));
    expect(txsRoot([])).toEqual(keccak256(RLP.encode([])));
    expect(Buffer.from(txsRoot([a, b])).equals(Buffer.from(txsRoot([b, a])))).toBe(false);
  });

  it("gives different hashes to blocks that differ in any header field", () => {
    const base = sampleBlock();
    const variants: Partial<Block["header"]>[] = [
      { chainId: "other" },
      { height: 43 },
      { timestampMs: base.header.timestampMs + 1 },
      { parentHash: hash(9) },
      { proposerIndex: 4 },
      { txsRoot: hash(9) },
      { lastStateRoot: hash(9) },
      { lastReceiptsRoot: hash(9) },
      { validatorsHash: hash(9) },
    ];
    const hashes = new Set([Buffer.from(blockHash(encodeBlock(base))).toString("hex")]);
    for (const v of variants) hashes.add(Buffer.from(blockHash(encodeBlock(sampleBlock(v)))).toString("hex"));
    expect(hashes.size).toBe(variants.length + 1);
  });
});

describe("decodeBlock refuses non-canonical and malformed encodings, naming the field", () => {
  it("a leading zero in an integer field", () => {
    expect(decodeError(withHeaderField(2, Uint8Array.of(0, 42))).message).toBe("height has leading zeros");
    expect(decodeError(withHeaderField(3, Uint8Array.of(0))).message).toBe("timestampMs has leading zeros");
    expect(decodeError(withHeaderField(5, Uint8Array.of(0, 3))).message).toBe(
      "proposerIndex has leading zeros",
    );
    expect(decodeError(withHeaderField(0, Uint8Array.of(0, 1))).message).toBe("version has leading zeros");
  });

  it("an integer beyond the safe range", () => {
    expect(decodeError(withHeaderField(2, uint(2n ** 53n))).message).toBe("height is too large");
    expect(decodeError(withHeaderField(3, uint(2n ** 64n))).message).toBe("timestampMs is too large");
  });

  it("an extra or missing field, in the header or the block", () => {
    const block = sampleBlock();
    const fields = headerFields(block.header);
    expect(decodeError(RLP.encode([[...fields, Uint8Array.of(1)], []])).message).toBe(
      "header must have 10 fields",
    );
    expect(decodeError(RLP.encode([fields.slice(0, 9), []])).message).toBe("header must have 10 fields");
    expect(decodeError(RLP.encode([fields, [], Uint8Array.of(1)])).message).toBe(
      "block must be [header, txs]",
    );
    expect(decodeError(RLP.encode([fields])).message).toBe("block must be [header, txs]");
    expect(decodeError(RLP.encode(Uint8Array.of(1, 2, 3))).message).toBe("block must be [header, txs]");
    expect(decodeError(RLP.encode([Uint8Array.of(1), []])).message).toBe("header must have 10 fields");
    expect(decodeError(RLP.encode([fields, Uint8Array.of(1)])).message).toBe("txs must be a list");
  });

  it("a hash of the wrong length, for each hash field", () => {
    const names = ["parentHash", "txsRoot", "lastStateRoot", "lastReceiptsRoot", "validatorsHash"];
    const indexes = [4, 6, 7, 8, 9];
    for (const [i, index] of indexes.entries()) {
      expect(decodeError(withHeaderField(index, new Uint8Array(31))).message).toBe(
        `${names[i]} must be 32 bytes, got 31`,
      );
      expect(decodeError(withHeaderField(index, new Uint8Array(33))).message).toBe(
        `${names[i]} must be 32 bytes, got 33`,
      );
      expect(decodeError(withHeaderField(index, new Uint8Array(0))).message).toBe(
        `${names[i]} must be 32 bytes, got 0`,
      );
    }
  });

  it("a list where a byte string belongs (header field or transaction)", () => {
    expect(decodeError(withHeaderField(2, [Uint8Array.of(1)])).message).toBe("height must be a byte string");
    expect(decodeError(withHeaderField(4, [hash(1)])).message).toBe("parentHash must be a byte string");
    expect(decodeError(withHeaderField(1, [])).message).toBe("chainId must be a byte string");
    const fields = headerFields(sampleBlock().header);
    expect(
      decodeError(RLP.encode([fields, [Uint8Array.of(1), [Uint8Array.of(2)]] as Uint8Array[]])).message,
    ).toBe("tx 1 must be a byte string");
  });

  it("a chain id that is not UTF-8", () => {
    expect(decodeError(withHeaderField(1, Uint8Array.of(0xff, 0xfe))).message).toBe("chainId is not UTF-8");
    expect(decodeError(withHeaderField(1, Uint8Array.of(0x61, 0xc3))).message).toBe("chainId is not UTF-8");
  });

  it("a chain id with a byte-order mark (it would decode to the same string as one without)", () => {
    const bom = Uint8Array.of(0xef, 0xbb, 0xbf, ...new TextEncoder().encode("vitalstream-test"));
    expect(decodeError(withHeaderField(1, bom))).toBeInstanceOf(BlockDecodeError);
  });

  it("an unknown version", () => {
    expect(decodeError(withHeaderField(0, uint(2))).message).toBe("unknown block version 2");
    expect(decodeError(withHeaderField(0, uint(0))).message).toBe("unknown block version 0");
  });

  it("bytes that are not RLP, and trailing bytes", () => {
    expect(decodeError(new Uint8Array(0)).message).toBe("block must be [header, txs]");
    expect(decodeError(Uint8Array.of(0xf8)).message).toMatch(/^not RLP: /);
    const encoded = encodeBlock(sampleBlock());
    expect(decodeError(Uint8Array.from([...encoded, 0])).message).toMatch(/^not RLP: /);
    expect(decodeError(encoded.subarray(0, encoded.length - 1)).message).toMatch(/^not RLP: /);
  });

  it("non-minimal RLP: a small integer or a one-byte transaction written with a string prefix", () => {
    const block = sampleBlock({}, [Uint8Array.of(5)]);
    const items = headerFields(block.header).map((f) => RLP.encode(f));
    const canonical = rawList([rawList(items), rawList([RLP.encode(Uint8Array.of(5))])]);
    expect(canonical).toEqual(encodeBlock(block)); // the helper builds the real encoding
    expect(decodeBlock(canonical)).toEqual(block);
    const height = [...items];
    height[2] = Uint8Array.of(0x81, 42); // 42 < 0x80 must be the byte itself
    expect(decodeError(rawList([rawList(height), rawList([RLP.encode(Uint8Array.of(5))])]))).toBeInstanceOf(
      BlockDecodeError,
    );
    const tx = rawList([rawList(items), rawList([Uint8Array.of(0x81, 5)])]);
    expect(decodeError(tx)).toBeInstanceOf(BlockDecodeError);
    // a short list written in the long form (0xf8 len) instead of 0xc0 + len
    const txsPart = rawList([RLP.encode(Uint8Array.of(5))]);
    const longForm = Uint8Array.from([0xf8, txsPart.length - 1, ...txsPart.subarray(1)]);
    expect(decodeError(rawList([rawList(items), longForm]))).toBeInstanceOf(BlockDecodeError);
  });
});

describe("decodeBlock on garbage (seeded fuzz)", () => {
  it("random byte strings only ever give BlockDecodeError", () => {
    const next = prng(0x5eed);
    let refused = 0;
    for (let i = 0; i < 400; i++) {
      const bytes = randomBytes(next, Math.floor(next() * 400));
      // Half of them start like a long list so that the RLP layer gets past the first byte.
      if (i % 2 === 0 && bytes.length > 3) {
        bytes[0] = 0xf9;
        bytes[1] = ((bytes.length - 3) >> 8) & 0xff;
        bytes[2] = (bytes.length - 3) & 0xff;
      }
      if (checkDecodeContract(bytes, `seed 0x5eed case ${i}`) === "refused") refused++;
    }
    expect(refused).toBeGreaterThan(390);
  });

  it("random RLP structures only ever give BlockDecodeError", () => {
    const next = prng(0xabcdef);
    type Item = Uint8Array | Item[];
    const item = (depth: number): Item => {
      const r = next();
      if (depth > 3 || r < 0.6) {
        const choices = [0, 1, 8, 31, 32, 33, Math.floor(next() * 70)];
        const bytes = randomBytes(next, choices[Math.floor(next() * choices.length)]!);
        if (next() < 0.2 && bytes.length > 0) bytes[0] = 0;
        return bytes;
      }
      return Array.from({ length: Math.floor(next() * 12) }, () => item(depth + 1));
    };
    // Near-valid headers: each field well-formed for its position, except now and then.
    const wellFormed = [
      () => uint(1),
      () => new TextEncoder().encode(`chain-${Math.floor(next() * 1000)}`),
      () => uint(Math.floor(next() * 1e9)),
      () => uint(Math.floor(next() * 2 ** 44)),
      () => randomBytes(next, 32),
      () => uint(Math.floor(next() * 5)),
      () => randomBytes(next, 32),
      () => randomBytes(next, 32),
      () => randomBytes(next, 32),
      () => randomBytes(next, 32),
    ];
    const outcomes = { accepted: 0, refused: 0 };
    for (let i = 0; i < 400; i++) {
      let shape: Item;
      if (i % 2 === 0) {
        shape = next() < 0.5 ? [item(1), item(1)] : [Array.from({ length: 10 }, () => item(2)), item(1)];
      } else {
        const header = wellFormed.map((make) => (next() < 0.93 ? make() : item(2)));
        const txs = next() < 0.9 ? Array.from({ length: Math.floor(next() * 4) }, () => item(4)) : item(2);
        shape = [header, txs];
      }
      outcomes[checkDecodeContract(RLP.encode(shape as Uint8Array[]), `seed 0xabcdef case ${i}`)]++;
    }
    expect(outcomes.accepted).toBeGreaterThan(20);
    expect(outcomes.refused).toBeGreaterThan(200);
  });

  it("mutations of a valid block are refused with BlockDecodeError or decode to exactly their own encoding", () => {
    const next = prng(0x600d);
    const base = encodeBlock(sampleBlock({}, [Uint8Array.of(0x02, 0xaa, 0xbb), new Uint8Array(60).fill(9)]));
    let accepted = 0;
    for (let i = 0; i < 600; i++) {
      const bytes = Array.from(base);
      const mutations = 1 + Math.floor(next() * 3);
      for (let m = 0; m < mutations; m++) {
        const at = Math.floor(next() * bytes.length);
        switch (Math.floor(next() * 5)) {
          case 0:
            bytes[at] = bytes[at]! ^ (1 << Math.floor(next() * 8));
            break;
          case 1:
            bytes.splice(at, 0, Math.floor(next() * 256));
            break;
          case 2:
            bytes.splice(at, 1);
            break;
          case 3:
            bytes.length = at;
            break;
          default:
            bytes[at] = Math.floor(next() * 256);
        }
      }
      if (checkDecodeContract(Uint8Array.from(bytes), `seed 0x600d case ${i}`) === "accepted") accepted++;
    }
    // Some single-byte changes inside hashes or transactions still form a valid block.
    expect(accepted).toBeGreaterThan(0);
  });
});
