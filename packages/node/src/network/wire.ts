/**
 * The peer wire format (pure: no I/O). Every frame on a stream is varint-length-prefixed (the
 * libp2p convention) and starts with a one-byte kind:
 *
 *   consensus   0x01  a consensus message, in the consensus package's canonical encoding
 *   txs         0x02  RLP list of raw signed transactions (a gossip batch)
 *   status      0x03  RLP [headHeight, headHash, height, round, step, observer]
 *   certificate 0x04  the sender's consortium certificate chain (PEM, UTF-8)
 *   syncRequest 0x10  RLP [fromHeight, maxBlocks]
 *   syncBlock   0x11  RLP [encodedBlock, encodedCertificate]
 *   syncEnd     0x12  RLP [reason] (ends a sync response: "done" or why it stopped)
 *
 * Decoding never throws: garbage becomes a typed error the network scores the sender for.
 */
import { RLP } from "@ethereumjs/rlp";
import { bigIntToUnpaddedBytes, bytesToBigInt } from "@ethereumjs/util";
import { type ConsensusMessage, decodeMessage, encodeMessage } from "@vitalstream/consensus";

export const FrameKind = {
  Consensus: 0x01,
  Txs: 0x02,
  Status: 0x03,
  Certificate: 0x04,
  SyncRequest: 0x10,
  SyncBlock: 0x11,
  SyncEnd: 0x12,
} as const;

export interface PeerStatus {
  headHeight: number;
  headHash: Uint8Array;
  /** The height consensus works on (headHeight + 1 unless halted). */
  height: number;
  round: number;
  step: number;
  observer: boolean;
}

export type Frame =
  | { kind: "consensus"; message: ConsensusMessage }
  | { kind: "txs"; txs: Uint8Array[] }
  | { kind: "status"; status: PeerStatus }
  | { kind: "certificate"; pem: string }
  | { kind: "syncRequest"; fromHeight: number; maxBlocks: number }
  | { kind: "syncBlock"; block: Uint8Array; certificate: Uint8Array }
  | { kind: "syncEnd"; reason: string };

export interface WireLimits {
  /** Largest proposal value (block) accepted inside a consensus frame. */
  maxValueBytes: number;
  /** Most transactions in one gossip batch. */
  maxTxsPerFrame: number;
  maxTxBytes: number;
  maxSyncBlocks: number;
}

export class WireError extends Error {
  readonly code = "WIRE_MALFORMED";

  constructor(message: string) {
    super(message);
    this.name = "WireError";
  }
}

const num = (n: number) => bigIntToUnpaddedBytes(BigInt(n));

function tagged(kind: number, payload: Uint8Array): Uint8Array {
  const out = new Uint8Array(payload.length + 1);
  out[0] = kind;
  out.set(payload, 1);
  return out;
}

export function encodeFrame(frame: Frame): Uint8Array {
  switch (frame.kind) {
    case "consensus":
      return tagged(FrameKind.Consensus, encodeMessage(frame.message));
    case "txs":
      return tagged(FrameKind.Txs, RLP.encode(frame.txs));
    case "status": {
      const s = frame.status;
      return tagged(
        FrameKind.Status,
        RLP.encode([
          num(s.headHeight),
          s.headHash,
          num(s.height),
          num(s.round),
          num(s.step),
          num(s.observer ? 1 : 0),
        ]),
      );
    }
    case "certificate":
      return tagged(FrameKind.Certificate, new TextEncoder().encode(frame.pem));
    case "syncRequest":
      return tagged(FrameKind.SyncRequest, RLP.encode([num(frame.fromHeight), num(frame.maxBlocks)]));
    case "syncBlock":
      return tagged(FrameKind.SyncBlock, RLP.encode([frame.block, frame.certificate]));
    case "syncEnd":
      return tagged(FrameKind.SyncEnd, RLP.encode([new TextEncoder().encode(frame.reason.slice(0, 200))]));
  }
}

function bytesList(value: unknown, what: string): Uint8Array[] {
  if (!Array.isArray(value) || value.some((v) => !(v instanceof Uint8Array)))
    throw new WireError(`${what} must be a list of byte strings`);
  return value as Uint8Array[];
}

function smallInt(bytes: Uint8Array | undefined, what: string): number {
  if (bytes === undefined || bytes.length > 6 || (bytes.length > 0 && bytes[0] === 0))
    throw new WireError(`${what} is not a canonical integer`);
  return Number(bytesToBigInt(bytes));
}

function decodeRlp(payload: Uint8Array, what: string): unknown {
  try {
    return RLP.decode(payload);
  } catch (e) {
    throw new WireError(`${what}: ${(e as Error).message}`);
  }
}

function decodeOrThrow(bytes: Uint8Array, limits: WireLimits): Frame {
  if (bytes.length === 0) throw new WireError("empty frame");
  const payload = bytes.subarray(1);
  switch (bytes[0]) {
    case FrameKind.Consensus: {
      const m = decodeMessage(payload, limits.maxValueBytes);
      if (!m.ok) throw new WireError(`consensus message: ${m.error.detail}`);
      return { kind: "consensus", message: m.value };
    }
    case FrameKind.Txs: {
      const txs = bytesList(decodeRlp(payload, "txs"), "txs");
      if (txs.length === 0 || txs.length > limits.maxTxsPerFrame)
        throw new WireError(`a txs frame must hold 1 to ${limits.maxTxsPerFrame} transactions`);
      if (txs.some((t) => t.length === 0 || t.length > limits.maxTxBytes))
        throw new WireError(`a transaction is empty or larger than ${limits.maxTxBytes} bytes`);
      return { kind: "txs", txs };
    }
    case FrameKind.Status: {
      const f = bytesList(decodeRlp(payload, "status"), "status");
      if (f.length !== 6) throw new WireError("status must have 6 fields");
      if (f[1]!.length !== 32) throw new WireError("status head hash must be 32 bytes");
      const observer = smallInt(f[5], "status observer");
      if (observer > 1) throw new WireError("status observer must be 0 or 1");
      return {
        kind: "status",
        status: {
          headHeight: smallInt(f[0], "status head height"),
          headHash: f[1]!,
          height: smallInt(f[2], "status height"),
          round: smallInt(f[3], "status round"),
          step: smallInt(f[4], "status step"),
          observer: observer === 1,
        },
      };
    }
    case FrameKind.Certificate: {
      let pem: string;
      try {
        pem = new TextDecoder("utf-8", { fatal: true }).decode(payload);
      } catch {
        throw new WireError("certificate is not UTF-8");
      }
      return { kind: "certificate", pem };
    }
    case FrameKind.SyncRequest: {
      const f = bytesList(decodeRlp(payload, "sync request"), "sync request");
      if (f.length !== 2) throw new WireError("sync request must have 2 fields");
      const fromHeight = smallInt(f[0], "sync from height");
      const maxBlocks = smallInt(f[1], "sync max blocks");
      if (fromHeight < 1 || maxBlocks < 1 || maxBlocks > limits.maxSyncBlocks)
        throw new WireError(`sync request must ask for 1 to ${limits.maxSyncBlocks} blocks from height 1 on`);
      return { kind: "syncRequest", fromHeight, maxBlocks };
    }
    case FrameKind.SyncBlock: {
      const f = bytesList(decodeRlp(payload, "sync block"), "sync block");
      if (f.length !== 2) throw new WireError("sync block must have 2 fields");
      return { kind: "syncBlock", block: f[0]!, certificate: f[1]! };
    }
    case FrameKind.SyncEnd: {
      const f = bytesList(decodeRlp(payload, "sync end"), "sync end");
      if (f.length !== 1) throw new WireError("sync end must have 1 field");
      return { kind: "syncEnd", reason: new TextDecoder().decode(f[0]!) };
    }
    default:
      throw new WireError(`unknown frame kind 0x${bytes[0]!.toString(16).padStart(2, "0")}`);
  }
}

export function decodeFrame(
  bytes: Uint8Array,
  limits: WireLimits,
): { ok: true; frame: Frame } | { ok: false; error: WireError } {
  try {
    return { ok: true, frame: decodeOrThrow(bytes, limits) };
  } catch (e) {
    return { ok: false, error: e instanceof WireError ? e : new WireError((e as Error).message) };
  }
}
