import { Interface, id } from "ethers";
import { describe, expect, it } from "vitest";
import { consentRegistryArtifact } from "../../src/artifacts.ts";
import {
  AUDIT_EVENT_TOPIC,
  CONSENT_GRANTED_TOPIC,
  CONSENT_REVOKED_TOPIC,
  decodeAuditEvent,
  decodeConsentEvent,
  isAuditEventLog,
  toChecksumAddress,
} from "../../src/events.ts";
import { auditLogInterface, makeChain, toRawLog, WRITER_A } from "../fixtures/chain.ts";

const consentInterface = new Interface(consentRegistryArtifact.abi);

describe("event decoding", () => {
  it("uses the ABI's topics", () => {
    expect(AUDIT_EVENT_TOPIC).toBe(auditLogInterface.getEvent("AuditEvent")!.topicHash);
    expect(AUDIT_EVENT_TOPIC).toBe(id("AuditEvent(bytes32,bytes32,address,uint64,bytes32,uint64,bytes32)"));
    expect(CONSENT_GRANTED_TOPIC).toBe(consentInterface.getEvent("ConsentGranted")!.topicHash);
    expect(CONSENT_REVOKED_TOPIC).toBe(consentInterface.getEvent("ConsentRevoked")!.topicHash);
  });

  it("decodes an AuditEvent log as ethers encodes it", () => {
    const [event] = makeChain(1);
    const log = toRawLog(event!);
    expect(isAuditEventLog(log)).toBe(true);
    expect(decodeAuditEvent(log)).toEqual({ ok: true, value: event });
  });

  it("returns checksummed addresses whatever the input case", () => {
    expect(toChecksumAddress(WRITER_A.toLowerCase() as typeof WRITER_A)).toBe(WRITER_A);
    const [event] = makeChain(1);
    const log = toRawLog({ ...event!, actor: WRITER_A.toLowerCase() as typeof WRITER_A });
    const decoded = decodeAuditEvent({
      ...log,
      topics: log.topics.map((t) => t.toUpperCase().replace("0X", "0x")),
    });
    expect(decoded.ok && decoded.value.actor).toBe(WRITER_A);
  });

  it("refuses malformed logs with a reason", () => {
    const [event] = makeChain(1);
    const log = toRawLog(event!);
    const cases: [unknown, RegExp][] = [
      [null, /not a log/],
      [{ topics: "x", data: "0x" }, /not a log/],
      [{ ...log, topics: [id("Other()"), ...log.topics.slice(1)] }, /not a AuditEvent log/],
      [{ ...log, topics: log.topics.slice(0, 3) }, /has 4 topics, got 3/],
      [{ ...log, topics: [...log.topics.slice(0, 3), "0x12"] }, /32-byte hex/],
      [{ ...log, data: log.data.slice(0, -2) }, /data must be 128 bytes/],
      [{ ...log, data: `${log.data}00` }, /data must be 128 bytes/],
      [{ ...log, data: `0x${"z".repeat(256)}` }, /data must be 128 bytes/],
      // non-zero padding above a uint64 (seq is the first data word)
      [{ ...log, data: `0x01${log.data.slice(4)}` }, /seq is not a valid uint64/],
      // non-zero padding above an address (actor is the third topic)
      [
        { ...log, topics: [...log.topics.slice(0, 3), `0x01${log.topics[3]!.slice(4)}`] },
        /actor is not a valid address/,
      ],
    ];
    for (const [input, reason] of cases) {
      const decoded = decodeAuditEvent(input as never);
      expect(decoded.ok).toBe(false);
      expect(!decoded.ok && decoded.error).toMatch(reason);
    }
  });

  it("decodes ConsentGranted and ConsentRevoked logs", () => {
    const patient = id("patient");
    const purpose = id("purpose.treatment");
    const evidence = id("form");
    const granted = consentInterface.encodeEventLog("ConsentGranted", [
      patient,
      WRITER_A,
      purpose,
      1_800_000_000n,
      evidence,
      1,
      WRITER_A,
    ]);
    expect(decodeConsentEvent(granted)).toEqual({
      ok: true,
      value: {
        kind: "ConsentGranted",
        patient,
        organisation: WRITER_A,
        purpose,
        validUntil: 1_800_000_000n,
        evidenceHash: evidence,
        version: 1n,
        recorder: WRITER_A,
      },
    });
    const revoked = consentInterface.encodeEventLog("ConsentRevoked", [
      patient,
      WRITER_A,
      purpose,
      evidence,
      2,
      WRITER_A,
    ]);
    expect(decodeConsentEvent(revoked)).toMatchObject({
      ok: true,
      value: { kind: "ConsentRevoked", version: 2n },
    });
    // uint32 version with bits above 32 set
    const badVersion = {
      ...revoked,
      data: `${revoked.data.slice(0, 66)}${"0".repeat(55)}1${"0".repeat(8)}${revoked.data.slice(130)}`,
    };
    expect(decodeConsentEvent(badVersion)).toEqual({
      ok: false,
      error: "ConsentRevoked.version is not a valid uint32",
    });
    const [audit] = makeChain(1);
    expect(decodeConsentEvent(toRawLog(audit!))).toMatchObject({ ok: false });
    expect(decodeConsentEvent({ topics: [], data: "0x" })).toMatchObject({ ok: false });
  });
});
