/**
 * What a raw transaction claims before full decoding, shared by the executor and the mempool:
 * its EIP-2718 type and chain id, so that a foreign chain id is reported as such rather than as a
 * decoding failure, and a readable first clause of an @ethereumjs error.
 *
 * The RLP fields read for the claim are kept, and `decodeClaimed` builds the transaction from
 * them: the same checks and the same transaction as `createTxFromRLP(raw)`, one RLP decode fewer.
 */
import type { Common } from "@ethereumjs/common";
import { RLP } from "@ethereumjs/rlp";
import {
  create1559FeeMarketTxFromBytesArray,
  createAccessList2930TxFromBytesArray,
  createLegacyTxFromBytesArray,
  type TypedTransaction,
} from "@ethereumjs/tx";
import { bytesToBigInt } from "@ethereumjs/util";
import { txCommon } from "./txCommon.ts";

/** Legacy (EIP-155), EIP-2930 and EIP-1559. */
export const SUPPORTED_TX_TYPES: ReadonlySet<number> = new Set([0, 1, 2]);

/** A decoded RLP list (byte strings, and lists of them for access lists). */
type RlpList = Uint8Array[];

export interface ClaimedTx {
  type: number;
  chainId: bigint | undefined;
  /** The RLP list of a supported type (undefined for unsupported types). */
  fields: RlpList | undefined;
}

/** Throws (with a short reason) when the bytes are not a transaction envelope at all. */
export function claimedChainId(raw: Uint8Array): ClaimedTx {
  const first = raw[0];
  if (first === undefined) throw new Error("empty transaction");
  if (first >= 0xc0) {
    const fields = RLP.decode(raw) as Uint8Array[];
    if (!Array.isArray(fields) || fields.length !== 9) throw new Error("legacy transaction needs 9 fields");
    const v = fields[6];
    if (!(v instanceof Uint8Array)) throw new Error("legacy transaction v must be a byte string");
    const vValue = bytesToBigInt(v);
    return { type: 0, chainId: vValue >= 35n ? (vValue - 35n) / 2n : undefined, fields };
  }
  if (first > 0x7f) throw new Error("neither an RLP list nor an EIP-2718 type byte");
  if (!SUPPORTED_TX_TYPES.has(first)) return { type: first, chainId: undefined, fields: undefined };
  const fields = RLP.decode(raw.subarray(1)) as Uint8Array[];
  if (!Array.isArray(fields) || !(fields[0] instanceof Uint8Array))
    throw new Error("typed transaction without a chain id");
  return { type: first, chainId: bytesToBigInt(fields[0]), fields };
}

/**
 * The transaction of a supported type from its claimed fields, with `txCommon(common)`; throws
 * what `createTxFromRLP` would throw past the RLP decoding (which `claimedChainId` did).
 */
export function decodeClaimed(claimed: ClaimedTx, common: Common): TypedTransaction {
  const opts = { common: txCommon(common) };
  const { fields } = claimed;
  if (fields === undefined) throw new Error(`transaction type ${claimed.type} is not decoded`);
  switch (claimed.type) {
    case 0:
      return createLegacyTxFromBytesArray(fields as Parameters<typeof createLegacyTxFromBytesArray>[0], opts);
    case 1:
      return createAccessList2930TxFromBytesArray(
        fields as Parameters<typeof createAccessList2930TxFromBytesArray>[0],
        opts,
      );
    case 2:
      return create1559FeeMarketTxFromBytesArray(
        fields as Parameters<typeof create1559FeeMarketTxFromBytesArray>[0],
        opts,
      );
    default:
      throw new Error(`transaction type ${claimed.type} is not decoded`);
  }
}

/** The first clause of an error message (@ethereumjs appends the whole tx and block to its own). */
export function describeTxError(e: unknown): string {
  const message = e instanceof Error ? e.message : String(e);
  return message.split(" (")[0]!.split("\n")[0]!.slice(0, 200);
}
