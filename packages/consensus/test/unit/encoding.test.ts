import { describe, expect, it } from "vitest";
import { Prng } from "../../sim/prng.ts";
import { toHex } from "../../src/bytes.ts";
import {
  decodeCertificate,
  decodeEvidence,
  decodeMessage,
  encodeCertificate,
  encodeEvidence,
  encodeMessage,
  signBytes,
} from "../../src/encoding.ts";
import { duplicateVoteEvidence } from "../../src/evidence.ts";
import {
  type ConsensusMessage,
  MessageType,
  type ProposalMessage,
  type VoteMessage,
} from "../../src/types.ts";
import { proposal, validators, value, vote } from "../fixtures/validators.ts";

const f = validators([1, 1, 1, 1]);
const V = value("block v");

const samples: ConsensusMessage[] = [
  proposal(f, 0, 1, 0, V),
  proposal(f, 2, 7, 5, V, 3),
  vote(f, 1, MessageType.Prevote, 1, 0, V.hash),
  vote(f, 2, MessageType.Precommit, 2 ** 40, 2 ** 31 - 1, V.hash),
  vote(f, 3, MessageType.Prevote, 9, 1, null),
];

describe("canonical encoding", () => {
  it("round-trips every message kind exactly", () => {
    for (const m of samples) {
      const bytes = encodeMessage(m);
      const decoded = decodeMessage(bytes);
      expect(decoded).toEqual({ ok: true, value: m });
      expect(encodeMessage((decoded as { value: ConsensusMessage }).value)).toEqual(bytes);
    }
  });

  it("lays out a vote's sign bytes as specified (docs/consensus.md)", () => {
    const m = vote(f, 1, MessageType.Precommit, 258, 3, V.hash);
    const expected = [
      ..."VSTM".split("").map((c) => c.charCodeAt(0)),
      1, // version
      3, // precommit
      16, // chain id length
      ...new TextEncoder().encode("vitalstream-test"),
      0,
      0,
      0,
      0,
      0,
      0,
      1,
      2, // height 258
      0,
      0,
      0,
      3, // round
      1,
      ...V.hash, // value hash present
      0,
      0,
      0,
      1, // validator index
    ];
    expect(toHex(signBytes(m))).toBe(toHex(Uint8Array.from(expected)));
    const nil = signBytes(vote(f, 1, MessageType.Prevote, 1, 0, null));
    expect(nil[nil.length - 5]).toBe(0); // nil flag, no hash bytes
  });

  it("signs a prefix of what travels, and each field changes the sign bytes", () => {
    const m = samples[0]!;
    const wire = encodeMessage(m);
    const sb = signBytes(m);
    expect(wire.subarray(0, sb.length)).toEqual(sb);
    const variants = [
      { height: 2 },
      { round: 1 },
      { validatorIndex: 1 },
      { chainId: "x" },
      { round: 2, polRound: 1 },
    ];
    const seen = new Set([toHex(sb)]);
    for (const v of variants) seen.add(toHex(signBytes({ ...m, ...v })));
    expect(seen.size).toBe(variants.length + 1);
    // prevote and precommit for the same value never share sign bytes
    expect(toHex(signBytes({ ...(samples[2] as VoteMessage), type: MessageType.Precommit }))).not.toBe(
      toHex(signBytes(samples[2]!)),
    );
  });

  it("refuses to encode what it could not decode", () => {
    const m = samples[2] as VoteMessage;
    expect(() => signBytes({ ...m, height: 0 })).toThrow(RangeError);
    expect(() => signBytes({ ...m, round: -1 })).toThrow(RangeError);
    expect(() => signBytes({ ...m, chainId: "" })).toThrow(RangeError);
    expect(() => signBytes({ ...m, valueHash: new Uint8Array(31) })).toThrow(RangeError);
    expect(() => signBytes({ ...(samples[0] as ProposalMessage), polRound: 0 })).toThrow(RangeError);
  });

  it("returns an error value for every truncation and for trailing bytes", () => {
    for (const m of samples) {
      const bytes = encodeMessage(m);
      for (let len = 0; len < bytes.length; len++) {
        const r = decodeMessage(bytes.subarray(0, len));
        expect(r.ok).toBe(false);
      }
      const longer = new Uint8Array(bytes.length + 1);
      longer.set(bytes);
      expect(decodeMessage(longer)).toMatchObject({
        ok: false,
        error: { code: "MESSAGE_MALFORMED", detail: "trailing bytes" },
      });
    }
  });

  it("names what is wrong: version, magic, type, polRound, value size", () => {
    const bytes = encodeMessage(samples[0]!);
    const withByte = (at: number, v: number) => Uint8Array.from(bytes, (b, i) => (i === at ? v : b));
    expect(decodeMessage(withByte(4, 2))).toMatchObject({
      ok: false,
      error: { code: "MESSAGE_UNSUPPORTED_VERSION" },
    });
    expect(decodeMessage(withByte(0, 0))).toMatchObject({ ok: false, error: { code: "MESSAGE_MALFORMED" } });
    expect(decodeMessage(withByte(5, 9))).toMatchObject({ ok: false, error: { code: "MESSAGE_MALFORMED" } });
    const p = encodeMessage(proposal(f, 2, 7, 5, V, 3));
    const polAt = 4 + 1 + 1 + 1 + 16 + 8 + 4; // magic, version, type, chain id, height, round
    const badPol = Uint8Array.from(p, (b, i) => (i >= polAt && i < polAt + 4 ? [0, 0, 0, 5][i - polAt]! : b));
    expect(decodeMessage(badPol)).toMatchObject({ ok: false, error: { code: "MESSAGE_INVALID_POL_ROUND" } });
    expect(decodeMessage(bytes, 3)).toMatchObject({ ok: false, error: { code: "MESSAGE_MALFORMED" } });
  });

  it("never throws on random or mutated input (seeded fuzz)", () => {
    const prng = new Prng(2026);
    const encoded = samples.map(encodeMessage);
    for (let i = 0; i < 5000; i++) {
      let input: Uint8Array;
      if (i % 2 === 0) {
        input = prng.bytes(prng.int(200));
      } else {
        input = Uint8Array.from(prng.pick(encoded));
        for (let k = prng.range(1, 4); k > 0; k--) input[prng.int(input.length)] = prng.u32() & 0xff;
      }
      expect(() => decodeMessage(input)).not.toThrow();
      expect(() => decodeCertificate(input)).not.toThrow();
      expect(() => decodeEvidence(input)).not.toThrow();
    }
  });

  it("round-trips certificates and evidence", () => {
    const cert = {
      chainId: "vitalstream-test",
      height: 5,
      round: 2,
      valueHash: V.hash,
      signatures: [0, 2, 3].map((i) => ({
        validatorIndex: i,
        signature: vote(f, i, MessageType.Precommit, 5, 2, V.hash).signature,
      })),
    };
    expect(decodeCertificate(encodeCertificate(cert))).toEqual({ ok: true, value: cert });
    const e = duplicateVoteEvidence(
      vote(f, 1, MessageType.Prevote, 3, 0, V.hash),
      vote(f, 1, MessageType.Prevote, 3, 0, null),
    );
    expect(decodeEvidence(encodeEvidence(e))).toEqual({ ok: true, value: e });
    const certBytes = encodeCertificate(cert);
    for (let len = 0; len < certBytes.length; len++)
      expect(decodeCertificate(certBytes.subarray(0, len)).ok).toBe(false);
  });
});
