import { describe, expect, it } from "vitest";
import { buildCertificate, verifyCertificate } from "../../src/certificate.ts";
import { decodeCertificate, encodeCertificate } from "../../src/encoding.ts";
import { verifyEvidence } from "../../src/evidence.ts";
import { MessageType } from "../../src/types.ts";
import { CHAIN_ID, proposal, validators, value, verify, vote } from "../fixtures/validators.ts";

const C = MessageType.Precommit;
const V = value("block v");
const W = value("block w");

describe("commit certificates", () => {
  const f = validators([10, 20, 30, 40], ["ed25519", "ecdsa-p256", "ed25519", "ecdsa-p256"]);
  const ctx = { chainId: CHAIN_ID, validatorSet: f.set, verify };
  const cert = buildCertificate([3, 1, 2].map((i) => vote(f, i, C, 4, 1, V.hash)));

  it("verifies on its own against the validator set, through the wire encoding", () => {
    expect(cert.signatures.map((s) => s.validatorIndex)).toEqual([1, 2, 3]);
    const decoded = decodeCertificate(encodeCertificate(cert));
    expect(decoded.ok && verifyCertificate(decoded.value, { ...ctx, height: 4, valueHash: V.hash })).toEqual({
      ok: true,
      value: 90,
    });
  });

  it("needs more than two thirds of the power", () => {
    const small = buildCertificate([3, 2].map((i) => vote(f, i, C, 4, 1, V.hash))); // 70 of 100
    expect(verifyCertificate(small, ctx).ok).toBe(true);
    const tooSmall = buildCertificate([3, 1].map((i) => vote(f, i, C, 4, 1, V.hash))); // 60 of 100
    expect(verifyCertificate(tooSmall, ctx)).toMatchObject({
      ok: false,
      error: { code: "CERTIFICATE_INVALID" },
    });
  });

  it("refuses tampering, duplicates, strangers and mismatches", () => {
    const bad = (c: typeof cert, extra = {}) => verifyCertificate(c, { ...ctx, ...extra }).ok;
    const flipped = {
      ...cert,
      signatures: cert.signatures.map((s, i) =>
        i === 0 ? { ...s, signature: s.signature.map((b, j) => (j === 5 ? b ^ 1 : b)) } : s,
      ),
    };
    expect(bad(flipped)).toBe(false);
    expect(bad({ ...cert, signatures: [cert.signatures[2]!, cert.signatures[2]!] })).toBe(false);
    expect(bad({ ...cert, signatures: [...cert.signatures].reverse() })).toBe(false);
    expect(
      bad({
        ...cert,
        signatures: [...cert.signatures, { validatorIndex: 7, signature: new Uint8Array(64) }],
      }),
    ).toBe(false);
    expect(bad({ ...cert, valueHash: W.hash })).toBe(false);
    expect(bad({ ...cert, round: 2 })).toBe(false);
    expect(bad(cert, { height: 5 })).toBe(false);
    expect(bad(cert, { valueHash: W.hash })).toBe(false);
    expect(bad(cert, { chainId: "another-chain" })).toBe(false);
    expect(bad({ ...cert, signatures: [] })).toBe(false);
  });

  it("refuses a precommit signature presented as a prevote's", () => {
    const prevotes = [1, 2, 3].map((i) => vote(f, i, MessageType.Prevote, 4, 1, V.hash));
    const forged = {
      ...cert,
      signatures: prevotes.map((v) => ({ validatorIndex: v.validatorIndex, signature: v.signature })),
    };
    expect(verifyCertificate(forged, ctx).ok).toBe(false);
  });
});

describe("equivocation evidence", () => {
  const f = validators([1, 1, 1, 1]);
  const ctx = { chainId: CHAIN_ID, validatorSet: f.set, verify };

  it("verifies only genuine conflicts signed by the accused", () => {
    const a = vote(f, 2, C, 3, 0, V.hash);
    const b = vote(f, 2, C, 3, 0, W.hash);
    expect(verifyEvidence({ kind: "duplicateVote", a, b }, ctx)).toEqual({ ok: true, value: 2 });
    expect(verifyEvidence({ kind: "duplicateVote", a, b: a }, ctx).ok).toBe(false);
    expect(verifyEvidence({ kind: "duplicateVote", a, b: vote(f, 2, C, 3, 1, W.hash) }, ctx).ok).toBe(false);
    expect(verifyEvidence({ kind: "duplicateVote", a, b: vote(f, 1, C, 3, 0, W.hash) }, ctx).ok).toBe(false);
    expect(verifyEvidence({ kind: "duplicateVote", a, b: { ...b, signature: a.signature } }, ctx).ok).toBe(
      false,
    );
    const pa = proposal(f, 1, 3, 1, V);
    const pb = proposal(f, 1, 3, 1, W);
    expect(verifyEvidence({ kind: "duplicateProposal", a: pa, b: pb }, ctx)).toEqual({ ok: true, value: 1 });
    expect(verifyEvidence({ kind: "duplicateVote", a: pa, b: pb } as never, ctx).ok).toBe(false);
  });
});
