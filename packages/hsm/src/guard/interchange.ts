/**
 * The signing-history interchange format, modelled on EIP-3076 (Ethereum's slashing-protection
 * interchange): numbers as decimal strings, one entry per key.
 *
 * {
 *   "metadata": { "interchange_format": "vitalstream.signing-history", "interchange_format_version": "1",
 *                 "exported_at": "<ISO time>" },
 *   "data": [ { "public_key": "<hex>", "algorithm": "ed25519", "key_id": "...",
 *               "signed": [ { "chain_id": "...", "height": "12", "round": "0", "step": "2",
 *                             "payload_hash": "<hex sha256>" } ] } ]
 * }
 */
import { HsmError } from "../errors.ts";
import type { SignatureAlgorithm } from "../interface.ts";
import type { SignRecord } from "./journal.ts";

export interface Interchange {
  metadata: {
    interchange_format: "vitalstream.signing-history";
    interchange_format_version: "1";
    exported_at: string;
  };
  data: {
    public_key: string;
    algorithm: SignatureAlgorithm;
    key_id: string;
    signed: { chain_id: string; height: string; round: string; step: string; payload_hash: string }[];
  }[];
}

export function buildInterchange(x: {
  publicKey: Uint8Array;
  algorithm: SignatureAlgorithm;
  keyId: string;
  records: SignRecord[];
}): Interchange {
  return {
    metadata: {
      interchange_format: "vitalstream.signing-history",
      interchange_format_version: "1",
      exported_at: new Date().toISOString(),
    },
    data: [
      {
        public_key: Buffer.from(x.publicKey).toString("hex"),
        algorithm: x.algorithm,
        key_id: x.keyId,
        signed: x.records.map((r) => ({
          chain_id: r.chainId,
          height: String(r.height),
          round: String(r.round),
          step: String(r.step),
          payload_hash: r.payloadHash,
        })),
      },
    ],
  };
}

/** Validates a document and returns the records for this key; anything off is a named error. */
export function parseInterchange(
  doc: unknown,
  key: { publicKey: Uint8Array; algorithm: SignatureAlgorithm },
): SignRecord[] {
  const fail = (detail: string): never => {
    throw new HsmError("HSM_GUARD_INTERCHANGE_INVALID", `signing history: ${detail}`);
  };
  const d = doc as Interchange;
  if (
    typeof d !== "object" ||
    d === null ||
    d.metadata?.interchange_format !== "vitalstream.signing-history"
  ) {
    fail("not a vitalstream.signing-history document");
  }
  if (d.metadata.interchange_format_version !== "1")
    fail(`unsupported version ${JSON.stringify(d.metadata.interchange_format_version)}`);
  if (!Array.isArray(d.data)) fail("data must be an array");
  const hex = Buffer.from(key.publicKey).toString("hex");
  const mine = d.data.filter((e) => e?.public_key === hex);
  if (mine.length === 0) fail(`it holds no history for this key (${key.algorithm} ${hex.slice(0, 16)}...)`);
  const records: SignRecord[] = [];
  for (const entry of mine) {
    if (entry.algorithm !== key.algorithm) fail("the algorithm does not match this key");
    if (!Array.isArray(entry.signed)) fail("signed must be an array");
    for (const [i, s] of entry.signed.entries()) {
      const nums = [s?.height, s?.round, s?.step].map((x) =>
        typeof x === "string" && /^\d+$/.test(x) ? Number(x) : Number.NaN,
      );
      if (!nums.every(Number.isSafeInteger))
        fail(`entry ${i}: height, round and step must be decimal strings`);
      if (typeof s.chain_id !== "string" || s.chain_id === "") fail(`entry ${i}: chain_id is missing`);
      if (typeof s.payload_hash !== "string" || !/^([0-9a-f]{64}|conflict)$/.test(s.payload_hash)) {
        fail(`entry ${i}: payload_hash must be 64 hex characters`);
      }
      records.push({
        chainId: s.chain_id,
        height: nums[0]!,
        round: nums[1]!,
        step: nums[2]!,
        payloadHash: s.payload_hash,
      });
    }
  }
  return records;
}
