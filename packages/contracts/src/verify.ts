/**
 * The offline verifier: given exported AuditEvent records, recompute the hash chain and report
 * the first gap, reordering, alteration or malformed entry. Browser-safe (no node: imports) so an
 * auditor can run it anywhere; the node's CLI and scripts/verify-audit-log.ts wrap it.
 *
 * What it proves: each event's fields hash, in sequence, to the head it carries. Alone, that is
 * internal consistency. Anchored to the contract's `checkpoint()` (count and head read at the
 * export's block) it proves the export is complete and unaltered: pass `expected`.
 */
import type { Result } from "./errors.ts";
import { type AuditEvent, decodeAuditEvent, type RawLog } from "./events.ts";
import { chainHead, GENESIS_HEAD } from "./hashChain.ts";
import { type Hex, isHexOfLength } from "./hex.ts";

export type ChainFaultKind = "gap" | "mismatch" | "order" | "malformed";

export type VerifyResult =
  | {
      ok: true;
      /** Records in the chain up to the last event (comparable with the contract's count()). */
      count: bigint;
      /** Chain head after the last event (comparable with the contract's head()). */
      head: Hex;
      /** Number of events checked. */
      verified: number;
      /** True when the result was also checked against `expected` (an on-chain checkpoint). */
      anchored: boolean;
    }
  | {
      ok: false;
      firstBadSeq: bigint;
      kind: ChainFaultKind;
      /** Position in the input of the offending event; null for a fault found at the end. */
      index: number | null;
      detail: string;
    };

export interface VerifyOptions {
  /** The events start right after record `seq`, whose head is `head`. Default: seq 0, genesis. */
  from?: { seq: bigint; head: Hex };
  /** The contract's `checkpoint()` at the export's block: the export must end exactly there. */
  expected?: { count: bigint; head: Hex };
}

/** An AuditEvent in an exported JSON file: integers as numbers or strings. */
export interface AuditEventJson {
  seq: number | string;
  subject: string;
  action: string;
  dataHash: string;
  actor: string;
  timestamp: number | string;
  head: string;
}

/** An export file: the events, and where they start and should end on chain. */
export interface AuditLogExport {
  events: unknown[];
  from?: { seq: bigint; head: Hex };
  expected?: { count: bigint; head: Hex };
}

const MAX_UINT64 = (1n << 64n) - 1n;

/** A uint64 given as a bigint, a safe integer, or a decimal or 0x-hex string. */
export function parseUint64(value: unknown): bigint | undefined {
  let n: bigint;
  if (typeof value === "bigint") n = value;
  else if (typeof value === "number" && Number.isSafeInteger(value)) n = BigInt(value);
  else if (typeof value === "string" && /^(0|[1-9][0-9]*|0x[0-9a-fA-F]+)$/.test(value)) n = BigInt(value);
  else return undefined;
  return n >= 0n && n <= MAX_UINT64 ? n : undefined;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** An AuditEvent from a decoded object (bigint or JSON integers) or from a raw log. */
export function parseAuditEvent(value: unknown): Result<AuditEvent, string> {
  if (!isRecord(value)) return { ok: false, error: "not an object" };
  if ("topics" in value) {
    if (value.removed === true) return { ok: false, error: "log was removed (reorganised away)" };
    return decodeAuditEvent(value as unknown as RawLog);
  }
  const seq = parseUint64(value.seq);
  if (seq === undefined) return { ok: false, error: "seq is not a uint64" };
  const timestamp = parseUint64(value.timestamp);
  if (timestamp === undefined) return { ok: false, error: "timestamp is not a uint64" };
  for (const key of ["subject", "action", "dataHash", "head"] as const) {
    if (!isHexOfLength(value[key], 32)) return { ok: false, error: `${key} is not 32-byte hex` };
  }
  if (!isHexOfLength(value.actor, 20)) return { ok: false, error: "actor is not a 20-byte address" };
  return {
    ok: true,
    value: {
      seq,
      subject: value.subject as Hex,
      action: value.action as Hex,
      dataHash: value.dataHash as Hex,
      actor: value.actor as Hex,
      timestamp,
      head: value.head as Hex,
    },
  };
}

function parseAnchor(value: unknown, countKey: "seq" | "count"): { n: bigint; head: Hex } | undefined {
  if (!isRecord(value)) return undefined;
  const n = parseUint64(value[countKey]);
  return n !== undefined && isHexOfLength(value.head, 32) ? { n, head: value.head } : undefined;
}

/**
 * Reads an export: either a JSON array of events/logs, or an object
 * `{ events | logs: [...], from?: { seq, head }, checkpoint?: { count, head } }`.
 */
export function parseAuditLogExport(json: unknown): Result<AuditLogExport, string> {
  if (Array.isArray(json)) return { ok: true, value: { events: json } };
  if (!isRecord(json))
    return { ok: false, error: "expected a JSON array of events or an object with `events`" };
  const events = json.events ?? json.logs;
  if (!Array.isArray(events)) return { ok: false, error: "the object has no `events` (or `logs`) array" };
  const out: AuditLogExport = { events };
  if (json.from !== undefined) {
    const from = parseAnchor(json.from, "seq");
    if (!from)
      return { ok: false, error: "`from` must be { seq, head } with a uint64 seq and a 32-byte head" };
    out.from = { seq: from.n, head: from.head };
  }
  if (json.checkpoint !== undefined) {
    const checkpoint = parseAnchor(json.checkpoint, "count");
    if (!checkpoint)
      return { ok: false, error: "`checkpoint` must be { count, head } (a uint64 and a 32-byte head)" };
    out.expected = { count: checkpoint.n, head: checkpoint.head };
  }
  return { ok: true, value: out };
}

/** Recomputes the chain over `events` in order and reports the first fault. */
export function verifyAuditChain(events: readonly unknown[], options: VerifyOptions = {}): VerifyResult {
  const startSeq = options.from?.seq ?? 0n;
  let head = (options.from?.head.toLowerCase() as Hex | undefined) ?? GENESIS_HEAD;
  let expectedSeq = startSeq + 1n;
  const fail = (
    firstBadSeq: bigint,
    kind: ChainFaultKind,
    index: number | null,
    detail: string,
  ): VerifyResult => ({
    ok: false,
    firstBadSeq,
    kind,
    index,
    detail,
  });

  for (let i = 0; i < events.length; i++) {
    const parsed = parseAuditEvent(events[i]);
    if (!parsed.ok) return fail(expectedSeq, "malformed", i, `event #${i}: ${parsed.error}`);
    const event = parsed.value;
    if (event.seq < expectedSeq) {
      return fail(
        event.seq,
        "order",
        i,
        `event #${i} has seq ${event.seq} where ${expectedSeq} was expected`,
      );
    }
    if (event.seq > expectedSeq) {
      const missing = event.seq - 1n === expectedSeq ? `${expectedSeq}` : `${expectedSeq}..${event.seq - 1n}`;
      return fail(expectedSeq, "gap", i, `seq ${missing} missing before event #${i} (seq ${event.seq})`);
    }
    const computed = chainHead(head, event);
    if (computed !== event.head.toLowerCase()) {
      return fail(
        event.seq,
        "mismatch",
        i,
        `seq ${event.seq}: its fields and the previous head hash to ${computed}, but it carries head ${event.head}`,
      );
    }
    head = computed;
    expectedSeq++;
  }

  const count = expectedSeq - 1n;
  const expected = options.expected;
  if (expected) {
    if (expected.count > count) {
      return fail(
        count + 1n,
        "gap",
        null,
        `the chain has ${expected.count} records but the events end at seq ${count}`,
      );
    }
    if (expected.count < count) {
      return fail(
        expected.count + 1n,
        "mismatch",
        null,
        `the events go to seq ${count} but the checkpoint has only ${expected.count} records`,
      );
    }
    if (expected.head.toLowerCase() !== head) {
      return fail(
        count,
        "mismatch",
        null,
        `head after seq ${count} is ${head} but the checkpoint says ${expected.head}`,
      );
    }
  }
  return { ok: true, count, head, verified: events.length, anchored: expected !== undefined };
}
