import { describe, expect, it } from "vitest";
import { chainHead, GENESIS_HEAD } from "../../src/hashChain.ts";
import { parseAuditLogExport, parseUint64, verifyAuditChain } from "../../src/verify.ts";
import { makeChain, toJson, toRawLog } from "../fixtures/chain.ts";

const events = makeChain(6);
const last = events[5]!;
const checkpoint = { count: 6n, head: last.head };

describe("verifyAuditChain", () => {
  it("accepts a complete chain from genesis, anchored to the checkpoint", () => {
    expect(verifyAuditChain(events, { expected: checkpoint })).toEqual({
      ok: true,
      count: 6n,
      head: last.head,
      verified: 6,
      anchored: true,
    });
    expect(verifyAuditChain(events)).toMatchObject({ ok: true, anchored: false });
  });

  it("accepts decoded events, exported JSON and raw logs alike", () => {
    const mixed = [toJson(events[0]!), toRawLog(events[1]!), ...events.slice(2)];
    expect(verifyAuditChain(mixed, { expected: checkpoint })).toMatchObject({ ok: true, count: 6n });
  });

  it("accepts an empty export only where the checkpoint agrees", () => {
    expect(verifyAuditChain([])).toEqual({
      ok: true,
      count: 0n,
      head: GENESIS_HEAD,
      verified: 0,
      anchored: false,
    });
    expect(verifyAuditChain([], { expected: checkpoint })).toMatchObject({
      ok: false,
      kind: "gap",
      firstBadSeq: 1n,
    });
  });

  it("verifies a range from the head of its predecessor", () => {
    const range = events.slice(3);
    const from = { seq: 3n, head: events[2]!.head };
    expect(verifyAuditChain(range, { from, expected: checkpoint })).toMatchObject({ ok: true, verified: 3 });
    expect(verifyAuditChain(range)).toMatchObject({ ok: false, kind: "gap", firstBadSeq: 1n, index: 0 });
    expect(verifyAuditChain(range, { from: { seq: 3n, head: events[1]!.head } })).toMatchObject({
      ok: false,
      kind: "mismatch",
      firstBadSeq: 4n,
    });
  });

  it("reports the first gap", () => {
    const result = verifyAuditChain([...events.slice(0, 2), ...events.slice(4)]);
    expect(result).toEqual({
      ok: false,
      kind: "gap",
      firstBadSeq: 3n,
      index: 2,
      detail: "seq 3..4 missing before event #2 (seq 5)",
    });
    expect(verifyAuditChain([events[0], events[2]])).toMatchObject({
      detail: "seq 2 missing before event #1 (seq 3)",
    });
  });

  it("reports a missing tail and extra events against the checkpoint", () => {
    expect(verifyAuditChain(events.slice(0, 4), { expected: checkpoint })).toEqual({
      ok: false,
      kind: "gap",
      firstBadSeq: 5n,
      index: null,
      detail: "the chain has 6 records but the events end at seq 4",
    });
    expect(verifyAuditChain(events, { expected: { count: 5n, head: events[4]!.head } })).toMatchObject({
      ok: false,
      kind: "mismatch",
      firstBadSeq: 6n,
      index: null,
    });
  });

  it("reports duplicates and reordering", () => {
    expect(verifyAuditChain([events[0], events[1], events[1]])).toMatchObject({
      ok: false,
      kind: "order",
      firstBadSeq: 2n,
      index: 2,
    });
    expect(verifyAuditChain([events[0], events[2], events[1]])).toMatchObject({ ok: false, kind: "gap" });
    expect(
      verifyAuditChain([events[1], events[0]], { from: { seq: 1n, head: events[0]!.head } }),
    ).toMatchObject({
      ok: false,
      kind: "order",
      firstBadSeq: 1n,
      index: 1,
    });
  });

  it("reports the first altered event as a mismatch", () => {
    for (const field of ["subject", "action", "dataHash", "head"] as const) {
      const altered = events.map((e) => ({ ...e }));
      altered[3]![field] = `0x${"ab".repeat(32)}`;
      expect(verifyAuditChain(altered)).toMatchObject({
        ok: false,
        kind: "mismatch",
        firstBadSeq: 4n,
        index: 3,
      });
    }
    const otherActor = events.map((e) => ({ ...e }));
    otherActor[1]!.actor = "0x0000000000000000000000000000000000000001";
    expect(verifyAuditChain(otherActor)).toMatchObject({ kind: "mismatch", firstBadSeq: 2n });
    const otherTime = events.map((e) => ({ ...e }));
    otherTime[0]!.timestamp += 1n;
    expect(verifyAuditChain(otherTime)).toMatchObject({ kind: "mismatch", firstBadSeq: 1n });
  });

  it("catches a rewritten history (every head recomputed) only with the checkpoint", () => {
    const rewritten = events.map((e) => ({ ...e }));
    rewritten[3]!.dataHash = `0x${"cd".repeat(32)}`;
    let head = GENESIS_HEAD;
    for (const e of rewritten) {
      head = chainHead(head, e);
      e.head = head;
    }
    expect(verifyAuditChain(rewritten)).toMatchObject({ ok: true });
    expect(verifyAuditChain(rewritten, { expected: checkpoint })).toMatchObject({
      ok: false,
      kind: "mismatch",
      firstBadSeq: 6n,
      index: null,
    });
  });

  it("reports malformed entries with the seq expected there", () => {
    const cases: [unknown, RegExp][] = [
      [42, /not an object/],
      [[], /not an object/],
      [{ ...toJson(events[2]!), seq: "3.5" }, /seq is not a uint64/],
      [{ ...toJson(events[2]!), seq: -3 }, /seq is not a uint64/],
      [{ ...toJson(events[2]!), timestamp: 1e300 }, /timestamp is not a uint64/],
      [{ ...toJson(events[2]!), subject: "0xabc" }, /subject is not 32-byte hex/],
      [{ ...toJson(events[2]!), head: undefined }, /head is not 32-byte hex/],
      [{ ...toJson(events[2]!), actor: "alice" }, /actor is not a 20-byte address/],
      [{ ...toRawLog(events[2]!), removed: true }, /removed/],
      [{ ...toRawLog(events[2]!), data: "0x" }, /data must be/],
    ];
    for (const [bad, reason] of cases) {
      const result = verifyAuditChain([events[0], events[1], bad, events[3]]);
      expect(result).toMatchObject({ ok: false, kind: "malformed", firstBadSeq: 3n, index: 2 });
      expect(!result.ok && result.detail).toMatch(reason);
    }
  });
});

describe("parsing helpers", () => {
  it("parses uint64 from numbers and strings", () => {
    expect(parseUint64(7)).toBe(7n);
    expect(parseUint64("7")).toBe(7n);
    expect(parseUint64("0x1f")).toBe(31n);
    expect(parseUint64(18446744073709551615n)).toBe(18446744073709551615n);
    for (const bad of [18446744073709551616n, -1, 1.5, "07", "", "1e3", null, Number.MAX_SAFE_INTEGER + 1]) {
      expect(parseUint64(bad)).toBeUndefined();
    }
  });

  it("reads the export formats", () => {
    const json = events.map(toJson);
    expect(parseAuditLogExport(json)).toEqual({ ok: true, value: { events: json } });
    expect(
      parseAuditLogExport({
        logs: json,
        from: { seq: "0", head: GENESIS_HEAD },
        checkpoint: { count: 6, head: last.head },
      }),
    ).toEqual({
      ok: true,
      value: {
        events: json,
        from: { seq: 0n, head: GENESIS_HEAD },
        expected: { count: 6n, head: last.head },
      },
    });
    expect(parseAuditLogExport("x")).toMatchObject({ ok: false });
    expect(parseAuditLogExport({})).toMatchObject({ ok: false, error: expect.stringMatching(/no `events`/) });
    expect(parseAuditLogExport({ events: [], from: { seq: 1 } })).toMatchObject({ ok: false });
    expect(parseAuditLogExport({ events: [], checkpoint: { count: "x", head: last.head } })).toMatchObject({
      ok: false,
    });
  });
});
