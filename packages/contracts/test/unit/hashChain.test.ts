import { id, keccak256 } from "ethers";
import { describe, expect, it } from "vitest";
import { isContractsError } from "../../src/errors.ts";
import { chainHead, foldHeads, GENESIS_HEAD } from "../../src/hashChain.ts";
import { keccak256Utf8 } from "../../src/hex.ts";
import { abiCoder, makeChain, WRITER_A } from "../fixtures/chain.ts";

describe("hash chain", () => {
  it("starts from keccak256('VitalStream.AuditLog.v1')", () => {
    expect(GENESIS_HEAD).toBe(id("VitalStream.AuditLog.v1"));
  });

  it("is keccak256(abi.encode(prev, seq, subject, action, dataHash, actor, timestamp))", () => {
    const record = {
      seq: 42n,
      subject: keccak256Utf8("s"),
      action: keccak256Utf8("a"),
      dataHash: keccak256Utf8("d"),
      actor: WRITER_A,
      timestamp: 1_760_000_123n,
    };
    const encoded = abiCoder.encode(
      ["bytes32", "uint64", "bytes32", "bytes32", "bytes32", "address", "uint64"],
      [
        GENESIS_HEAD,
        record.seq,
        record.subject,
        record.action,
        record.dataHash,
        record.actor,
        record.timestamp,
      ],
    );
    expect(chainHead(GENESIS_HEAD, record)).toBe(keccak256(encoded));
    // address letter case does not matter: it is hashed as bytes
    expect(chainHead(GENESIS_HEAD, { ...record, actor: WRITER_A.toLowerCase() as typeof WRITER_A })).toBe(
      keccak256(encoded),
    );
  });

  it("folds a list of records into the head of its last one", () => {
    const events = makeChain(5);
    expect(foldHeads(events)).toBe(events[4]!.head);
    expect(foldHeads([])).toBe(GENESIS_HEAD);
    expect(foldHeads(events.slice(2), events[1]!.head)).toBe(events[4]!.head);
  });

  it("throws CONTRACTS_INVALID_INPUT on ill-typed fields", () => {
    const [event] = makeChain(1);
    const bad = [
      { ...event!, seq: -1n },
      { ...event!, timestamp: 1n << 64n },
      { ...event!, subject: "0x1234" as const },
      { ...event!, actor: "0x1234" as const },
    ];
    for (const record of bad) {
      expect(() => chainHead(GENESIS_HEAD, record)).toThrow(
        expect.objectContaining({ code: "CONTRACTS_INVALID_INPUT" }),
      );
    }
    const thrown = (() => {
      try {
        chainHead("0x00", event!);
      } catch (e) {
        return e;
      }
    })();
    expect(isContractsError(thrown, "CONTRACTS_INVALID_INPUT")).toBe(true);
  });
});
