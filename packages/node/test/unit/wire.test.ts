/**
 * The peer wire format: every frame kind round-trips, every malformed input comes back as a
 * WireError value (never a throw), and a seeded fuzz of mutated frames never throws either.
 */
import { createPrivateKey, createPublicKey, type KeyObject, sign, verify } from "node:crypto";
import { RLP } from "@ethereumjs/rlp";
import {
  type ConsensusMessage,
  MessageType,
  type ProposalMessage,
  sha256,
  signBytes,
  type VoteMessage,
} from "@vitalstream/consensus";
import { describe, expect, it } from "vitest";
import {
  decodeFrame,
  encodeFrame,
  type Frame,
  FrameKind,
  WireError,
  type WireLimits,
} from "../../src/network/wire.ts";
import { prng } from "../fixtures/prng.ts";

const LIMITS: WireLimits = {
  maxValueBytes: 1 << 20,
  maxTxsPerFrame: 256,
  maxTxBytes: 1 << 17,
  maxSyncBlocks: 1000,
};
const CHAIN_ID = "test-chain";
const utf8 = new TextEncoder();

const ED25519_PKCS8_PREFIX = Buffer.from("302e020100300506032b657004220420", "hex");

function ed25519FromSeed(label: string): { privateKey: KeyObject; publicKey: KeyObject } {
  const seed = sha256(utf8.encode(label));
  const privateKey = createPrivateKey({
    key: Buffer.concat([ED25519_PKCS8_PREFIX, seed]),
    format: "der",
    type: "pkcs8",
  });
  return { privateKey, publicKey: createPublicKey(privateKey) };
}

const validator = ed25519FromSeed("wire-test-validator");

function signedVote(
  type: typeof MessageType.Prevote | typeof MessageType.Precommit,
  valueHash: Uint8Array | null,
) {
  const unsigned = { type, chainId: CHAIN_ID, height: 7, round: 2, valueHash, validatorIndex: 3 };
  const vote: VoteMessage = {
    ...unsigned,
    signature: new Uint8Array(sign(null, signBytes(unsigned), validator.privateKey)),
  };
  return vote;
}

function signedProposal(value: Uint8Array, round = 0, polRound = -1): ProposalMessage {
  const unsigned = {
    type: MessageType.Proposal,
    chainId: CHAIN_ID,
    height: 7,
    round,
    polRound,
    valueHash: sha256(value),
    validatorIndex: 1,
  } as const;
  return {
    ...unsigned,
    signature: new Uint8Array(sign(null, signBytes(unsigned), validator.privateKey)),
    value,
  };
}

const bytes = (n: number, fill = 0xab) => new Uint8Array(n).fill(fill);
const tagged = (kind: number, payload: Uint8Array) => Uint8Array.from([kind, ...payload]);
const hash32 = sha256(utf8.encode("head"));

const PEM = `-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIUZ2Vyw6RsZGVy\n-----END CERTIFICATE-----\n# Zürich clinic ✓\n`;

const validFrames: { name: string; frame: Frame }[] = [
  {
    name: "consensus prevote",
    frame: { kind: "consensus", message: signedVote(MessageType.Prevote, hash32) },
  },
  {
    name: "consensus nil precommit",
    frame: { kind: "consensus", message: signedVote(MessageType.Precommit, null) },
  },
  {
    name: "consensus proposal",
    frame: { kind: "consensus", message: signedProposal(utf8.encode("a block")) },
  },
  {
    name: "consensus proposal with a POL round",
    frame: { kind: "consensus", message: signedProposal(utf8.encode("re-proposed"), 3, 1) },
  },
  { name: "txs", frame: { kind: "txs", txs: [bytes(1, 1), bytes(120, 2), bytes(300, 3)] } },
  {
    name: "status at genesis",
    frame: {
      kind: "status",
      status: { headHeight: 0, headHash: hash32, height: 1, round: 0, step: 0, observer: false },
    },
  },
  {
    name: "status of an observer far ahead",
    frame: {
      kind: "status",
      status: {
        headHeight: 2 ** 40,
        headHash: bytes(32, 0xff),
        height: 2 ** 40 + 1,
        round: 65_537,
        step: 3,
        observer: true,
      },
    },
  },
  { name: "certificate", frame: { kind: "certificate", pem: PEM } },
  { name: "sync request", frame: { kind: "syncRequest", fromHeight: 1, maxBlocks: 1 } },
  { name: "sync request at the limit", frame: { kind: "syncRequest", fromHeight: 123_456, maxBlocks: 1000 } },
  { name: "sync block", frame: { kind: "syncBlock", block: bytes(500, 7), certificate: bytes(90, 9) } },
  {
    name: "sync block with empty parts",
    frame: { kind: "syncBlock", block: new Uint8Array(0), certificate: new Uint8Array(0) },
  },
  { name: "sync end", frame: { kind: "syncEnd", reason: "done" } },
  { name: "sync end with an empty reason", frame: { kind: "syncEnd", reason: "" } },
];

function expectMalformed(input: Uint8Array, detail?: RegExp): WireError {
  let result: ReturnType<typeof decodeFrame> | undefined;
  expect(() => {
    result = decodeFrame(input, LIMITS);
  }).not.toThrow();
  expect(result!.ok).toBe(false);
  if (result!.ok) throw new Error("unreachable");
  expect(result!.error).toBeInstanceOf(WireError);
  expect(result!.error.code).toBe("WIRE_MALFORMED");
  if (detail !== undefined) expect(result!.error.message).toMatch(detail);
  return result!.error;
}

function decodeOk(input: Uint8Array, limits = LIMITS): Frame {
  const result = decodeFrame(input, limits);
  if (!result.ok) throw new Error(`expected a frame, got ${result.error.message}`);
  return result.frame;
}

describe("wire: round trips", () => {
  it.each(validFrames)("$name decodes to what was encoded", ({ frame }) => {
    const encoded = encodeFrame(frame);
    expect(encoded[0]).toBe(
      FrameKind[(frame.kind.charAt(0).toUpperCase() + frame.kind.slice(1)) as keyof typeof FrameKind],
    );
    expect(decodeOk(encoded)).toEqual(frame);
  });

  it("a decoded consensus message still verifies against its signer's key", () => {
    for (const message of [signedVote(MessageType.Precommit, hash32), signedProposal(utf8.encode("block"))]) {
      const decoded = decodeOk(encodeFrame({ kind: "consensus", message }));
      if (decoded.kind !== "consensus") throw new Error("wrong kind");
      const m: ConsensusMessage = decoded.message;
      expect(verify(null, signBytes(m), validator.publicKey, m.signature)).toBe(true);
    }
  });

  it("accepts values exactly at every limit", () => {
    const atLimit = [
      { kind: "txs", txs: Array.from({ length: LIMITS.maxTxsPerFrame }, (_, i) => bytes(1, i)) },
      { kind: "txs", txs: [bytes(LIMITS.maxTxBytes)] },
      { kind: "syncRequest", fromHeight: 1, maxBlocks: LIMITS.maxSyncBlocks },
      { kind: "consensus", message: signedProposal(bytes(LIMITS.maxValueBytes)) },
    ] satisfies Frame[];
    for (const frame of atLimit) expect(decodeOk(encodeFrame(frame))).toEqual(frame);
  });

  it("truncates a long sync end reason to 200 characters", () => {
    const decoded = decodeOk(encodeFrame({ kind: "syncEnd", reason: "x".repeat(1000) }));
    expect(decoded).toEqual({ kind: "syncEnd", reason: "x".repeat(200) });
  });
});

describe("wire: malformed frames are values, not throws", () => {
  const statusFields = (over: Partial<Record<0 | 1 | 2 | 3 | 4 | 5, Uint8Array>> = {}) => {
    const fields = [
      Uint8Array.of(5),
      hash32,
      Uint8Array.of(6),
      new Uint8Array(0),
      Uint8Array.of(1),
      new Uint8Array(0),
    ];
    for (const [i, v] of Object.entries(over)) fields[Number(i)] = v;
    return fields;
  };
  const status = (fields: unknown[]) => tagged(FrameKind.Status, RLP.encode(fields as Uint8Array[]));
  const syncRequest = (from: Uint8Array, max: Uint8Array) =>
    tagged(FrameKind.SyncRequest, RLP.encode([from, max]));

  it("the hand-built status fields are valid to begin with", () => {
    expect(decodeOk(status(statusFields()))).toEqual({
      kind: "status",
      status: { headHeight: 5, headHash: hash32, height: 6, round: 0, step: 1, observer: false },
    });
  });

  it("an empty frame", () => {
    expectMalformed(new Uint8Array(0), /empty frame/);
  });

  it("unknown frame kinds", () => {
    for (const kind of [0x00, 0x05, 0x0f, 0x13, 0x7f, 0xff])
      expectMalformed(
        Uint8Array.of(kind, 0xc0),
        new RegExp(`unknown frame kind 0x${kind.toString(16).padStart(2, "0")}`),
      );
  });

  it("a frame that is only a kind byte (an empty certificate is still UTF-8, so it decodes)", () => {
    for (const kind of Object.values(FrameKind)) {
      if (kind === FrameKind.Certificate)
        expect(decodeOk(Uint8Array.of(kind))).toEqual({ kind: "certificate", pem: "" });
      else expectMalformed(Uint8Array.of(kind));
    }
  });

  it("truncated RLP", () => {
    const txs = encodeFrame({ kind: "txs", txs: [bytes(100), bytes(100)] });
    expectMalformed(txs.subarray(0, txs.length - 1), /txs/);
    const req = encodeFrame({ kind: "syncRequest", fromHeight: 1000, maxBlocks: 10 });
    expectMalformed(req.subarray(0, req.length - 1), /sync request/);
    const st = encodeFrame(validFrames[5]!.frame);
    expectMalformed(st.subarray(0, 10), /status/);
    // A long-list header that promises far more than follows.
    expectMalformed(Uint8Array.of(FrameKind.SyncBlock, 0xfb, 0xff, 0xff, 0xff, 0xff), /sync block/);
  });

  it("trailing bytes after the RLP item", () => {
    const req = encodeFrame({ kind: "syncRequest", fromHeight: 1, maxBlocks: 10 });
    expectMalformed(Uint8Array.from([...req, 0x00]), /sync request/);
  });

  it("non-canonical RLP (a single small byte behind a string prefix)", () => {
    expectMalformed(tagged(FrameKind.SyncEnd, Uint8Array.of(0xc2, 0x81, 0x05)), /sync end/);
  });

  it("payloads that are not lists of byte strings", () => {
    expectMalformed(tagged(FrameKind.Txs, RLP.encode(bytes(10))), /txs must be a list/);
    expectMalformed(tagged(FrameKind.Txs, RLP.encode([bytes(3), [bytes(3)]])), /txs must be a list/);
    expectMalformed(status([...statusFields().slice(0, 5), [new Uint8Array(0)]]), /status must be a list/);
    expectMalformed(
      tagged(FrameKind.SyncRequest, RLP.encode(Uint8Array.of(1))),
      /sync request must be a list/,
    );
    expectMalformed(tagged(FrameKind.SyncBlock, RLP.encode([bytes(3), []])), /sync block must be a list/);
    expectMalformed(tagged(FrameKind.SyncEnd, RLP.encode(utf8.encode("done"))), /sync end must be a list/);
  });

  it("wrong field counts", () => {
    expectMalformed(status(statusFields().slice(0, 5)), /6 fields/);
    expectMalformed(status([...statusFields(), new Uint8Array(0)]), /6 fields/);
    expectMalformed(status([]), /6 fields/);
    expectMalformed(tagged(FrameKind.SyncRequest, RLP.encode([Uint8Array.of(1)])), /2 fields/);
    expectMalformed(
      tagged(FrameKind.SyncRequest, RLP.encode([Uint8Array.of(1), Uint8Array.of(1), Uint8Array.of(1)])),
      /2 fields/,
    );
    expectMalformed(tagged(FrameKind.SyncBlock, RLP.encode([bytes(3)])), /2 fields/);
    expectMalformed(tagged(FrameKind.SyncBlock, RLP.encode([bytes(3), bytes(3), bytes(3)])), /2 fields/);
    expectMalformed(tagged(FrameKind.SyncEnd, RLP.encode([])), /1 field/);
    expectMalformed(tagged(FrameKind.SyncEnd, RLP.encode([utf8.encode("a"), utf8.encode("b")])), /1 field/);
  });

  it("non-canonical integers (leading zero, explicit zero byte, more than 6 bytes)", () => {
    expectMalformed(
      status(statusFields({ 0: Uint8Array.of(0, 5) })),
      /head height is not a canonical integer/,
    );
    expectMalformed(
      status(statusFields({ 2: Uint8Array.of(0) })),
      /status height is not a canonical integer/,
    );
    expectMalformed(
      status(statusFields({ 3: Uint8Array.of(0, 0, 1) })),
      /status round is not a canonical integer/,
    );
    expectMalformed(status(statusFields({ 4: bytes(7, 1) })), /status step is not a canonical integer/);
    expectMalformed(status(statusFields({ 5: Uint8Array.of(0) })), /observer is not a canonical integer/);
    expectMalformed(
      syncRequest(Uint8Array.of(0, 1), Uint8Array.of(1)),
      /sync from height is not a canonical/,
    );
    expectMalformed(
      syncRequest(Uint8Array.of(1), Uint8Array.of(0, 10)),
      /sync max blocks is not a canonical/,
    );
    // 6 bytes is still fine.
    expect(decodeOk(status(statusFields({ 0: bytes(6, 0xff) })))).toMatchObject({
      status: { headHeight: 2 ** 48 - 1 },
    });
  });

  it("a head hash that is not 32 bytes", () => {
    expectMalformed(status(statusFields({ 1: bytes(31) })), /head hash must be 32 bytes/);
    expectMalformed(status(statusFields({ 1: bytes(33) })), /head hash must be 32 bytes/);
    expectMalformed(status(statusFields({ 1: new Uint8Array(0) })), /head hash must be 32 bytes/);
  });

  it("observer flag 2", () => {
    expectMalformed(status(statusFields({ 5: Uint8Array.of(2) })), /observer must be 0 or 1/);
    expectMalformed(status(statusFields({ 5: Uint8Array.of(1, 0) })), /observer must be 0 or 1/);
  });

  it("a txs frame with no transactions, too many, an empty one or an oversized one", () => {
    expectMalformed(tagged(FrameKind.Txs, RLP.encode([])), /1 to 256 transactions/);
    const tooMany = Array.from({ length: LIMITS.maxTxsPerFrame + 1 }, () => bytes(1));
    expectMalformed(encodeFrame({ kind: "txs", txs: tooMany }), /1 to 256 transactions/);
    expectMalformed(
      encodeFrame({ kind: "txs", txs: [bytes(10), bytes(LIMITS.maxTxBytes + 1)] }),
      /larger than 131072/,
    );
    expectMalformed(encodeFrame({ kind: "txs", txs: [bytes(10), new Uint8Array(0)] }), /empty/);
  });

  it("sync requests for 0 blocks, over the limit, or from height 0", () => {
    expectMalformed(encodeFrame({ kind: "syncRequest", fromHeight: 1, maxBlocks: 0 }), /1 to 1000 blocks/);
    expectMalformed(encodeFrame({ kind: "syncRequest", fromHeight: 1, maxBlocks: 1001 }), /1 to 1000 blocks/);
    expectMalformed(encodeFrame({ kind: "syncRequest", fromHeight: 0, maxBlocks: 5 }), /from height 1 on/);
  });

  it("a certificate that is not UTF-8", () => {
    expectMalformed(Uint8Array.of(FrameKind.Certificate, 0x2d, 0xff, 0xfe, 0x2d), /not UTF-8/);
    expectMalformed(Uint8Array.of(FrameKind.Certificate, 0xc3), /not UTF-8/); // a cut multi-byte sequence
  });

  it("consensus payloads that are not messages", () => {
    expectMalformed(tagged(FrameKind.Consensus, bytes(40)), /consensus message/);
    const vote = encodeFrame({ kind: "consensus", message: signedVote(MessageType.Prevote, hash32) });
    expectMalformed(vote.subarray(0, vote.length - 5), /consensus message: truncated/);
    expectMalformed(Uint8Array.from([...vote, 0]), /trailing bytes/);
    const tooBig = encodeFrame({
      kind: "consensus",
      message: signedProposal(bytes(LIMITS.maxValueBytes + 1)),
    });
    expectMalformed(tooBig, /exceeds/);
  });
});

describe("wire: seeded fuzz", () => {
  const SEED = 0x5eed_2026;
  const ITERATIONS = 4000;
  const kinds = Object.values(FrameKind);
  const corpus = validFrames.map(({ frame }) => encodeFrame(frame));

  function mutate(rand: () => number, input: Uint8Array): Uint8Array {
    const int = (n: number) => Math.floor(rand() * n);
    let out = Uint8Array.from(input);
    const rounds = 1 + int(4);
    for (let r = 0; r < rounds; r++) {
      switch (int(8)) {
        case 0: // flip one bit
          if (out.length > 0) out[int(out.length)]! ^= 1 << int(8);
          break;
        case 1: // overwrite a byte, often with a boundary value
          if (out.length > 0)
            out[int(out.length)] = [0x00, 0x7f, 0x80, 0xb7, 0xb8, 0xbf, 0xc0, 0xf7, 0xf8, 0xff][int(10)]!;
          break;
        case 2: // truncate
          out = out.subarray(0, int(out.length + 1));
          break;
        case 3: // append random bytes
          out = Uint8Array.from([...out, ...Array.from({ length: 1 + int(16) }, () => int(256))]);
          break;
        case 4: {
          // delete a range
          const at = int(out.length + 1);
          out = Uint8Array.from([...out.subarray(0, at), ...out.subarray(at + 1 + int(8))]);
          break;
        }
        case 5: // another kind byte on this payload
          if (out.length > 0) out[0] = kinds[int(kinds.length)]!;
          break;
        case 6: {
          // splice in part of another valid frame
          const other = corpus[int(corpus.length)]!;
          const from = int(other.length);
          const at = int(out.length + 1);
          out = Uint8Array.from([...out.subarray(0, at), ...other.subarray(from, from + 1 + int(40))]);
          break;
        }
        default: // entirely random bytes behind a valid kind
          out = Uint8Array.from([
            kinds[int(kinds.length)]!,
            ...Array.from({ length: int(64) }, () => int(256)),
          ]);
      }
    }
    return out;
  }

  it(`decodeFrame never throws on ${ITERATIONS} mutated frames (seed ${SEED})`, () => {
    const rand = prng(SEED);
    const outcomes = { ok: 0, malformed: 0 };
    for (let i = 0; i < ITERATIONS; i++) {
      const input = mutate(rand, corpus[Math.floor(rand() * corpus.length)]!);
      let result: ReturnType<typeof decodeFrame>;
      try {
        result = decodeFrame(input, LIMITS);
      } catch (e) {
        throw new Error(
          `decodeFrame threw on iteration ${i} (seed ${SEED}), input ${Buffer.from(input).toString("hex")}: ${e}`,
        );
      }
      if (result.ok) {
        outcomes.ok++;
        // Whatever decodes must re-encode (a node relays consensus messages it received) and decode again.
        const again = decodeFrame(encodeFrame(result.frame), LIMITS);
        expect(again.ok, `iteration ${i}: ${Buffer.from(input).toString("hex")}`).toBe(true);
      } else {
        outcomes.malformed++;
        expect(result.error).toBeInstanceOf(WireError);
      }
    }
    // The fuzz exercises both outcomes: it is not just feeding hopeless garbage.
    expect(outcomes.ok).toBeGreaterThan(ITERATIONS / 50);
    expect(outcomes.malformed).toBeGreaterThan(ITERATIONS / 2);
  });

  it("decodeFrame never throws on random RLP structures behind every kind", () => {
    const rand = prng(SEED + 1);
    const int = (n: number) => Math.floor(rand() * n);
    type Item = Uint8Array | Item[];
    const item = (depth: number): Item =>
      depth > 2 || rand() < 0.6
        ? Uint8Array.from({ length: [0, 1, 2, 6, 7, 31, 32, 33][int(8)]! }, () =>
            rand() < 0.3 ? 0 : int(256),
          )
        : Array.from({ length: int(8) }, () => item(depth + 1));
    for (let i = 0; i < 2000; i++) {
      const input = tagged(kinds[int(kinds.length)]!, RLP.encode(item(0) as Uint8Array));
      expect(() => decodeFrame(input, LIMITS), `iteration ${i}`).not.toThrow();
    }
  });
});
