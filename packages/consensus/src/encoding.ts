/**
 * The canonical, versioned byte encoding of consensus messages. One encoding serves signing,
 * hashing and the wire: the bytes a validator signs are a prefix of the bytes it sends, so a
 * receiver verifies exactly what travelled.
 *
 * Signed body (version 1), all integers big-endian:
 *   magic "VSTM" | version u8 | type u8 (1 proposal, 2 prevote, 3 precommit)
 *   | chainIdLen u8 | chainId (UTF-8) | height u64 | round u32
 *   | proposal: polRound i32 | valueHash 32B
 *   | vote:     0x00 (nil) or 0x01 + valueHash 32B
 *   | validatorIndex u32
 * Message on the wire: signed body | sigLen u8 | signature | (proposal only) valueLen u32 | value
 * Commit certificate: "VSTC" | version | chainIdLen | chainId | height u64 | round u32
 *   | valueHash 32B | count u32 | count x (validatorIndex u32 | sigLen u8 | signature)
 * Evidence: "VSTE" | version | kind u8 (1 vote, 2 proposal) | lenA u32 | A | lenB u32 | B
 *   where A and B are signed messages (body | sigLen | signature), without proposal values.
 */
import { type MessageError, messageError } from "./errors.ts";
import { MAX_CHAIN_ID_BYTES } from "./options.ts";
import {
  type CommitCertificate,
  type ConsensusMessage,
  type Evidence,
  err,
  MessageType,
  ok,
  type ProposalHeader,
  type ProposalMessage,
  type Result,
  type SignedMessage,
  type UnsignedMessage,
  type VoteMessage,
} from "./types.ts";

export const ENCODING_VERSION = 1;
export const HASH_BYTES = 32;
/** Rounds are kept below 2^31 so that polRound fits a signed 32-bit integer. */
export const MAX_ROUND = 0x7fffffff;
export const MAX_VALIDATORS = 10_000;
export const DEFAULT_MAX_VALUE_BYTES = 16 * 1024 * 1024;

const MAGIC_MESSAGE = [0x56, 0x53, 0x54, 0x4d]; // "VSTM"
const MAGIC_CERTIFICATE = [0x56, 0x53, 0x54, 0x43]; // "VSTC"
const MAGIC_EVIDENCE = [0x56, 0x53, 0x54, 0x45]; // "VSTE"

const utf8 = new TextEncoder();
const utf8Decoder = new TextDecoder("utf-8", { fatal: true });

class Writer {
  private buf = new Uint8Array(128);
  private view = new DataView(this.buf.buffer);
  length = 0;

  private reserve(n: number): void {
    if (this.length + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.length + n) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.buf.subarray(0, this.length));
    this.buf = next;
    this.view = new DataView(next.buffer);
  }
  u8(v: number): void {
    this.reserve(1);
    this.buf[this.length++] = v;
  }
  u32(v: number): void {
    this.reserve(4);
    this.view.setUint32(this.length, v);
    this.length += 4;
  }
  i32(v: number): void {
    this.reserve(4);
    this.view.setInt32(this.length, v);
    this.length += 4;
  }
  u64(v: number): void {
    this.reserve(8);
    this.view.setBigUint64(this.length, BigInt(v));
    this.length += 8;
  }
  bytes(b: Uint8Array | readonly number[]): void {
    this.reserve(b.length);
    this.buf.set(b, this.length);
    this.length += b.length;
  }
  finish(): Uint8Array {
    return this.buf.slice(0, this.length);
  }
}

/** Reads with bounds checks; any short read makes `failed` true and returns zeros. */
class Reader {
  private readonly view: DataView;
  private readonly buf: Uint8Array;
  offset = 0;
  failed = false;
  constructor(buf: Uint8Array) {
    this.buf = buf;
    this.view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  }
  get remaining(): number {
    return this.buf.length - this.offset;
  }
  private take(n: number): boolean {
    if (this.failed || this.offset + n > this.buf.length) {
      this.failed = true;
      return false;
    }
    return true;
  }
  u8(): number {
    if (!this.take(1)) return 0;
    return this.buf[this.offset++]!;
  }
  u32(): number {
    if (!this.take(4)) return 0;
    const v = this.view.getUint32(this.offset);
    this.offset += 4;
    return v;
  }
  i32(): number {
    if (!this.take(4)) return 0;
    const v = this.view.getInt32(this.offset);
    this.offset += 4;
    return v;
  }
  u64(): bigint {
    if (!this.take(8)) return 0n;
    const v = this.view.getBigUint64(this.offset);
    this.offset += 8;
    return v;
  }
  bytes(n: number): Uint8Array {
    if (!this.take(n)) return new Uint8Array(0);
    const out = this.buf.slice(this.offset, this.offset + n);
    this.offset += n;
    return out;
  }
}

/** magic | version | [type] | chainIdLen | chainId */
function writeHeader(w: Writer, magic: readonly number[], chainId: string, type?: number): void {
  w.bytes(magic);
  w.u8(ENCODING_VERSION);
  if (type !== undefined) w.u8(type);
  const id = utf8.encode(chainId);
  if (id.length === 0 || id.length > MAX_CHAIN_ID_BYTES)
    throw new RangeError("chainId must be 1 to 64 bytes");
  w.u8(id.length);
  w.bytes(id);
}

function checkCommon(height: number, round: number, validatorIndex: number): void {
  if (!Number.isSafeInteger(height) || height < 1)
    throw new RangeError("height must be a positive safe integer");
  if (!Number.isInteger(round) || round < 0 || round > MAX_ROUND) throw new RangeError("round out of range");
  if (!Number.isInteger(validatorIndex) || validatorIndex < 0 || validatorIndex >= MAX_VALIDATORS) {
    throw new RangeError("validatorIndex out of range");
  }
}

function writeBody(w: Writer, m: UnsignedMessage): void {
  checkCommon(m.height, m.round, m.validatorIndex);
  writeHeader(w, MAGIC_MESSAGE, m.chainId, m.type);
  w.u64(m.height);
  w.u32(m.round);
  if (m.type === MessageType.Proposal) {
    if (!Number.isInteger(m.polRound) || m.polRound < -1 || m.polRound >= m.round) {
      throw new RangeError("polRound must be -1 or a round below the proposal's round");
    }
    if (m.valueHash.length !== HASH_BYTES) throw new RangeError("valueHash must be 32 bytes");
    w.i32(m.polRound);
    w.bytes(m.valueHash);
  } else {
    if (m.valueHash === null) {
      w.u8(0);
    } else {
      if (m.valueHash.length !== HASH_BYTES) throw new RangeError("valueHash must be 32 bytes");
      w.u8(1);
      w.bytes(m.valueHash);
    }
  }
  w.u32(m.validatorIndex);
}

function writeSignature(w: Writer, signature: Uint8Array): void {
  if (signature.length === 0 || signature.length > 255)
    throw new RangeError("signature must be 1 to 255 bytes");
  w.u8(signature.length);
  w.bytes(signature);
}

/** The exact bytes a validator signs for a proposal or vote. */
export function signBytes(m: UnsignedMessage): Uint8Array {
  const w = new Writer();
  writeBody(w, m);
  return w.finish();
}

/** A signed message without proposal value (the form evidence carries). */
export function encodeSigned(m: SignedMessage): Uint8Array {
  const w = new Writer();
  writeBody(w, m);
  writeSignature(w, m.signature);
  return w.finish();
}

/** A consensus message as it travels on the wire. */
export function encodeMessage(m: ConsensusMessage): Uint8Array {
  const w = new Writer();
  writeBody(w, m);
  writeSignature(w, m.signature);
  if (m.type === MessageType.Proposal) {
    w.u32(m.value.length);
    w.bytes(m.value);
  }
  return w.finish();
}

function readMagicAndVersion(r: Reader, magic: readonly number[]): MessageError | null {
  for (const b of magic) {
    if (r.u8() !== b) return messageError("MESSAGE_MALFORMED", "bad magic bytes");
  }
  const version = r.u8();
  if (r.failed) return messageError("MESSAGE_MALFORMED", "truncated header");
  if (version !== ENCODING_VERSION) {
    return messageError("MESSAGE_UNSUPPORTED_VERSION", `encoding version ${version} is not supported`);
  }
  return null;
}

function readHeader(r: Reader, magic: readonly number[]): Result<string, MessageError> {
  const bad = readMagicAndVersion(r, magic);
  return bad === null ? readChainId(r) : err(bad);
}

function readChainId(r: Reader): Result<string, MessageError> {
  const len = r.u8();
  if (len === 0 || len > MAX_CHAIN_ID_BYTES)
    return err(messageError("MESSAGE_MALFORMED", "bad chain id length"));
  const raw = r.bytes(len);
  if (r.failed) return err(messageError("MESSAGE_MALFORMED", "truncated chain id"));
  try {
    return ok(utf8Decoder.decode(raw));
  } catch {
    return err(messageError("MESSAGE_MALFORMED", "chain id is not UTF-8"));
  }
}

function readHeight(r: Reader): number | null {
  const h = r.u64();
  if (h < 1n || h > BigInt(Number.MAX_SAFE_INTEGER)) return null;
  return Number(h);
}

function readSigned(r: Reader): Result<SignedMessage, MessageError> {
  const bad = readMagicAndVersion(r, MAGIC_MESSAGE);
  if (bad !== null) return err(bad);
  const type = r.u8();
  const chain = readChainId(r);
  if (!chain.ok) return chain;
  const chainId = chain.value;
  const height = readHeight(r);
  const round = r.u32();
  if (r.failed) return err(messageError("MESSAGE_MALFORMED", "truncated message"));
  if (height === null) return err(messageError("MESSAGE_MALFORMED", "height out of range"));
  if (round > MAX_ROUND) return err(messageError("MESSAGE_MALFORMED", "round out of range"));
  let message: SignedMessage;
  if (type === MessageType.Proposal) {
    const polRound = r.i32();
    const valueHash = r.bytes(HASH_BYTES);
    const validatorIndex = r.u32();
    const sigLen = r.u8();
    const signature = r.bytes(sigLen);
    if (r.failed) return err(messageError("MESSAGE_MALFORMED", "truncated proposal"));
    if (polRound < -1 || polRound >= round) {
      return err(
        messageError("MESSAGE_INVALID_POL_ROUND", `polRound ${polRound} is invalid for round ${round}`),
      );
    }
    message = { type, chainId, height, round, polRound, valueHash, validatorIndex, signature };
  } else if (type === MessageType.Prevote || type === MessageType.Precommit) {
    const flag = r.u8();
    if (flag !== 0 && flag !== 1) return err(messageError("MESSAGE_MALFORMED", "bad value hash flag"));
    const valueHash = flag === 1 ? r.bytes(HASH_BYTES) : null;
    const validatorIndex = r.u32();
    const sigLen = r.u8();
    const signature = r.bytes(sigLen);
    if (r.failed) return err(messageError("MESSAGE_MALFORMED", "truncated vote"));
    message = { type, chainId, height, round, valueHash, validatorIndex, signature };
  } else {
    return err(messageError("MESSAGE_MALFORMED", `unknown message type ${type}`));
  }
  if (message.validatorIndex >= MAX_VALIDATORS)
    return err(messageError("MESSAGE_MALFORMED", "validator index out of range"));
  if (message.signature.length === 0) return err(messageError("MESSAGE_MALFORMED", "empty signature"));
  return ok(message);
}

/** Decodes a signed message without proposal value; the input must be consumed exactly. */
export function decodeSigned(bytes: Uint8Array): Result<SignedMessage, MessageError> {
  const r = new Reader(bytes);
  const m = readSigned(r);
  if (!m.ok) return m;
  if (r.remaining !== 0) return err(messageError("MESSAGE_MALFORMED", "trailing bytes"));
  return m;
}

/** Decodes a wire message. Never throws: garbage from a peer comes back as an error value. */
export function decodeMessage(
  bytes: Uint8Array,
  maxValueBytes = DEFAULT_MAX_VALUE_BYTES,
): Result<ConsensusMessage, MessageError> {
  const r = new Reader(bytes);
  const m = readSigned(r);
  if (!m.ok) return m;
  let message: ConsensusMessage;
  if (m.value.type === MessageType.Proposal) {
    const len = r.u32();
    if (r.failed) return err(messageError("MESSAGE_MALFORMED", "truncated proposal value"));
    if (len > maxValueBytes)
      return err(messageError("MESSAGE_MALFORMED", `proposal value exceeds ${maxValueBytes} bytes`));
    const value = r.bytes(len);
    if (r.failed) return err(messageError("MESSAGE_MALFORMED", "truncated proposal value"));
    message = { ...(m.value as ProposalHeader), value } satisfies ProposalMessage;
  } else {
    message = m.value as VoteMessage;
  }
  if (r.remaining !== 0) return err(messageError("MESSAGE_MALFORMED", "trailing bytes"));
  return ok(message);
}

export function encodeCertificate(c: CommitCertificate): Uint8Array {
  const w = new Writer();
  checkCommon(c.height, c.round, 0);
  writeHeader(w, MAGIC_CERTIFICATE, c.chainId);
  w.u64(c.height);
  w.u32(c.round);
  if (c.valueHash.length !== HASH_BYTES) throw new RangeError("valueHash must be 32 bytes");
  w.bytes(c.valueHash);
  w.u32(c.signatures.length);
  for (const s of c.signatures) {
    w.u32(s.validatorIndex);
    writeSignature(w, s.signature);
  }
  return w.finish();
}

export function decodeCertificate(bytes: Uint8Array): Result<CommitCertificate, MessageError> {
  const r = new Reader(bytes);
  const chain = readHeader(r, MAGIC_CERTIFICATE);
  if (!chain.ok) return chain;
  const height = readHeight(r);
  const round = r.u32();
  const valueHash = r.bytes(HASH_BYTES);
  const count = r.u32();
  if (r.failed) return err(messageError("MESSAGE_MALFORMED", "truncated certificate"));
  if (height === null || round > MAX_ROUND)
    return err(messageError("MESSAGE_MALFORMED", "height or round out of range"));
  if (count > MAX_VALIDATORS) return err(messageError("MESSAGE_MALFORMED", "too many signatures"));
  const signatures = [];
  for (let i = 0; i < count; i++) {
    const validatorIndex = r.u32();
    const signature = r.bytes(r.u8());
    if (r.failed) return err(messageError("MESSAGE_MALFORMED", "truncated certificate signature"));
    signatures.push({ validatorIndex, signature });
  }
  if (r.remaining !== 0) return err(messageError("MESSAGE_MALFORMED", "trailing bytes"));
  return ok({ chainId: chain.value, height, round, valueHash, signatures });
}

export function encodeEvidence(e: Evidence): Uint8Array {
  const w = new Writer();
  writeHeader(w, MAGIC_EVIDENCE, e.a.chainId);
  w.u8(e.kind === "duplicateVote" ? 1 : 2);
  for (const m of [e.a, e.b]) {
    const bytes = encodeSigned(m);
    w.u32(bytes.length);
    w.bytes(bytes);
  }
  return w.finish();
}

export function decodeEvidence(bytes: Uint8Array): Result<Evidence, MessageError> {
  const r = new Reader(bytes);
  const chain = readHeader(r, MAGIC_EVIDENCE);
  if (!chain.ok) return chain;
  const kind = r.u8();
  const parts: SignedMessage[] = [];
  for (let i = 0; i < 2; i++) {
    const len = r.u32();
    if (r.failed || len > r.remaining) return err(messageError("MESSAGE_MALFORMED", "truncated evidence"));
    const m = decodeSigned(r.bytes(len));
    if (!m.ok) return m;
    parts.push(m.value);
  }
  if (r.remaining !== 0) return err(messageError("MESSAGE_MALFORMED", "trailing bytes"));
  const [a, b] = parts as [SignedMessage, SignedMessage];
  if (kind === 1 && a.type !== MessageType.Proposal && b.type !== MessageType.Proposal) {
    return ok({ kind: "duplicateVote", a, b });
  }
  if (kind === 2 && a.type === MessageType.Proposal && b.type === MessageType.Proposal) {
    return ok({ kind: "duplicateProposal", a, b });
  }
  return err(messageError("MESSAGE_MALFORMED", "evidence kind does not match its messages"));
}
