/**
 * Decoding of our contracts' event logs, for the node (logs from its own EVM) and for clients
 * (eth_getLogs). All our events have static fields only, so a log is a handful of 32-byte words;
 * the layouts are read from the generated ABI, so they cannot drift from the contracts.
 * Malformed logs come back as values, not exceptions.
 */
import { keccak_256 } from "@noble/hashes/sha3.js";
import { utf8ToBytes } from "@noble/hashes/utils.js";
import { auditLogArtifact, consentRegistryArtifact } from "./artifacts.ts";
import type { Result } from "./errors.ts";
import { type Hex, isHexOfLength, keccak256Utf8, toHex } from "./hex.ts";

/** A log as JSON-RPC (eth_getLogs, receipts) or ethers returns it. */
export interface RawLog {
  address?: string;
  topics: readonly string[];
  data: string;
  blockNumber?: number | string | bigint | null;
  transactionHash?: string | null;
  logIndex?: number | string | null;
}

/** One AuditLog record as its AuditEvent log carries it; `head` is the chain head after it. */
export interface AuditEvent {
  seq: bigint;
  subject: Hex;
  action: Hex;
  dataHash: Hex;
  /** Writer account that recorded it (EIP-55 checksummed when decoded here). */
  actor: Hex;
  /** Block time of the record, unix seconds. */
  timestamp: bigint;
  head: Hex;
}

export interface ConsentGrantedEvent {
  kind: "ConsentGranted";
  patient: Hex;
  organisation: Hex;
  purpose: Hex;
  /** 0n: no expiry. */
  validUntil: bigint;
  evidenceHash: Hex;
  version: bigint;
  recorder: Hex;
}

export interface ConsentRevokedEvent {
  kind: "ConsentRevoked";
  patient: Hex;
  organisation: Hex;
  purpose: Hex;
  evidenceHash: Hex;
  version: bigint;
  recorder: Hex;
}

export type ConsentEvent = ConsentGrantedEvent | ConsentRevokedEvent;

type StaticType = "bytes32" | "address" | "uint64" | "uint32";
type Value = Hex | bigint;

interface EventField {
  name: string;
  type: StaticType;
  indexed: boolean;
}

interface EventLayout {
  name: string;
  signature: string;
  topic: Hex;
  fields: readonly EventField[];
}

interface AbiItem {
  readonly type: string;
  readonly name?: string;
  readonly inputs?: readonly { readonly name: string; readonly type: string; readonly indexed?: boolean }[];
}

const STATIC_TYPES: readonly string[] = ["bytes32", "address", "uint64", "uint32"];

function layoutFromAbi(abi: readonly AbiItem[], name: string): EventLayout {
  const item = abi.find((i) => i.type === "event" && i.name === name);
  if (!item?.inputs) throw new Error(`event ${name} is not in the ABI`);
  const fields = item.inputs.map((input) => {
    if (!STATIC_TYPES.includes(input.type))
      throw new Error(`${name}.${input.name}: unsupported ${input.type}`);
    return { name: input.name, type: input.type as StaticType, indexed: input.indexed === true };
  });
  const signature = `${name}(${fields.map((f) => f.type).join(",")})`;
  return { name, signature, topic: keccak256Utf8(signature), fields };
}

const AUDIT_EVENT = layoutFromAbi(auditLogArtifact.abi, "AuditEvent");
const CONSENT_GRANTED = layoutFromAbi(consentRegistryArtifact.abi, "ConsentGranted");
const CONSENT_REVOKED = layoutFromAbi(consentRegistryArtifact.abi, "ConsentRevoked");

/** topic0 of AuditLog's AuditEvent log. */
export const AUDIT_EVENT_TOPIC: Hex = AUDIT_EVENT.topic;
export const CONSENT_GRANTED_TOPIC: Hex = CONSENT_GRANTED.topic;
export const CONSENT_REVOKED_TOPIC: Hex = CONSENT_REVOKED.topic;

/** EIP-55 mixed-case checksum of a 20-byte address. */
export function toChecksumAddress(address: Hex): Hex {
  const lower = address.slice(2).toLowerCase();
  const hash = toHex(keccak_256(utf8ToBytes(lower))).slice(2);
  let out = "0x";
  for (let i = 0; i < 40; i++) {
    const c = lower[i]!;
    out += Number.parseInt(hash[i]!, 16) >= 8 ? c.toUpperCase() : c;
  }
  return out as Hex;
}

function decodeWord(word: string, type: StaticType): Value | undefined {
  // word: 64 hex digits, no prefix
  switch (type) {
    case "bytes32":
      return `0x${word.toLowerCase()}`;
    case "address":
      return /^0{24}/.test(word) ? toChecksumAddress(`0x${word.slice(24)}`) : undefined;
    case "uint64":
      return /^0{48}/.test(word) ? BigInt(`0x${word}`) : undefined;
    case "uint32":
      return /^0{56}/.test(word) ? BigInt(`0x${word}`) : undefined;
  }
}

function decodeWithLayout(layout: EventLayout, log: RawLog): Result<Record<string, Value>, string> {
  if (typeof log !== "object" || log === null || !Array.isArray(log.topics) || typeof log.data !== "string") {
    return { ok: false, error: "not a log: expected { topics: [...], data: '0x...' }" };
  }
  const { topics, data } = log;
  if (!topics.every((t) => isHexOfLength(t, 32)))
    return { ok: false, error: "topics must be 32-byte hex values" };
  if (topics[0]?.toLowerCase() !== layout.topic)
    return { ok: false, error: `not a ${layout.name} log (topic0)` };
  const indexed = layout.fields.filter((f) => f.indexed);
  const plain = layout.fields.filter((f) => !f.indexed);
  if (topics.length !== 1 + indexed.length) {
    return { ok: false, error: `${layout.name} has ${1 + indexed.length} topics, got ${topics.length}` };
  }
  if (!isHexOfLength(data, plain.length * 32)) {
    return { ok: false, error: `${layout.name} data must be ${plain.length * 32} bytes of hex` };
  }
  const out: Record<string, Value> = {};
  let topicIndex = 1;
  let dataOffset = 2;
  for (const field of layout.fields) {
    let word: string;
    if (field.indexed) {
      word = topics[topicIndex++]!.slice(2);
    } else {
      word = data.slice(dataOffset, dataOffset + 64);
      dataOffset += 64;
    }
    const value = decodeWord(word, field.type);
    if (value === undefined)
      return { ok: false, error: `${layout.name}.${field.name} is not a valid ${field.type}` };
    out[field.name] = value;
  }
  return { ok: true, value: out };
}

/** True when the log's topic0 is AuditEvent's (it may still be malformed). */
export function isAuditEventLog(log: RawLog): boolean {
  return typeof log?.topics?.[0] === "string" && log.topics[0].toLowerCase() === AUDIT_EVENT_TOPIC;
}

/** Decodes an AuditLog `AuditEvent` log. */
export function decodeAuditEvent(log: RawLog): Result<AuditEvent, string> {
  const decoded = decodeWithLayout(AUDIT_EVENT, log);
  if (!decoded.ok) return decoded;
  const v = decoded.value;
  return {
    ok: true,
    value: {
      seq: v.seq as bigint,
      subject: v.subject as Hex,
      action: v.action as Hex,
      dataHash: v.dataHash as Hex,
      actor: v.actor as Hex,
      timestamp: v.timestamp as bigint,
      head: v.head as Hex,
    },
  };
}

/** Decodes a ConsentRegistry `ConsentGranted` or `ConsentRevoked` log. */
export function decodeConsentEvent(log: RawLog): Result<ConsentEvent, string> {
  const topic0 = typeof log?.topics?.[0] === "string" ? log.topics[0].toLowerCase() : "";
  const granted = topic0 === CONSENT_GRANTED_TOPIC;
  if (!granted && topic0 !== CONSENT_REVOKED_TOPIC) {
    return { ok: false, error: "not a ConsentGranted or ConsentRevoked log (topic0)" };
  }
  const decoded = decodeWithLayout(granted ? CONSENT_GRANTED : CONSENT_REVOKED, log);
  if (!decoded.ok) return decoded;
  const v = decoded.value;
  const common = {
    patient: v.patient as Hex,
    organisation: v.organisation as Hex,
    purpose: v.purpose as Hex,
    evidenceHash: v.evidenceHash as Hex,
    version: v.version as bigint,
    recorder: v.recorder as Hex,
  };
  return {
    ok: true,
    value: granted
      ? { kind: "ConsentGranted", ...common, validUntil: v.validUntil as bigint }
      : { kind: "ConsentRevoked", ...common },
  };
}
