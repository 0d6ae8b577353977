/**
 * The two TPS workloads, as pre-signed Ethereum transactions: `record` (one audit event per
 * transaction) and `recordBatch` (N events per transaction). Signing uses native secp256k1, as the
 * node does for sender recovery: the load generator must not be the bottleneck it measures.
 */
import { createRequire } from "node:module";
import type { Common } from "@ethereumjs/common";
import { createFeeMarket1559Tx } from "@ethereumjs/tx";
import { createAddressFromString, hexToBytes } from "@ethereumjs/util";
import { auditLogArtifact } from "@vitalstream/contracts";
import { Interface, id } from "ethers";

export type WorkloadName = "record" | "recordBatch";

export interface Workload {
  name: WorkloadName;
  /** Audit events one transaction records. */
  eventsPerTx: number;
}

export interface LoadAccount {
  address: string;
  privateKey: string;
}

export interface SignedTx {
  /** 0x-prefixed raw transaction, as eth_sendRawTransaction takes it. */
  raw: string;
  /** 0x-prefixed lowercase transaction hash. */
  hash: string;
}

const secp = createRequire(import.meta.url)("secp256k1/bindings") as typeof import("secp256k1");
const auditLog = new Interface(auditLogArtifact.abi);
/** Comfortably above what `record` (five fresh slots) and a 50-event `recordBatch` cost. */
const GAS_PER_EVENT = 160_000n;
const GAS_BASE = 60_000n;

export function workload(name: WorkloadName, batchSize: number): Workload {
  return { name, eventsPerTx: name === "record" ? 1 : batchSize };
}

/** Calldata of transaction `n` of an account: distinct subjects and data hashes, fixed actions. */
function calldata(w: Workload, account: string, nonce: number): string {
  if (w.name === "record")
    return auditLog.encodeFunctionData("record", [
      id(`subject-${account}-${nonce}`),
      id("record.read"),
      id(`document-${account}-${nonce}`),
    ]);
  const entries = Array.from({ length: w.eventsPerTx }, (_, i) => ({
    subject: id(`subject-${account}-${nonce}-${i}`),
    action: id("record.read"),
    dataHash: id(`document-${account}-${nonce}-${i}`),
  }));
  return auditLog.encodeFunctionData("recordBatch", [entries]);
}

/** Signs one EIP-1559 transaction at zero gas price (the devnet admits it; fees are not measured). */
export function signTx(
  common: Common,
  privateKey: string,
  tx: { nonce: number; to?: string; data: string; gasLimit: bigint },
): SignedTx {
  const unsigned = createFeeMarket1559Tx(
    {
      nonce: BigInt(tx.nonce),
      ...(tx.to === undefined ? {} : { to: createAddressFromString(tx.to) }),
      data: hexToBytes(tx.data as `0x${string}`),
      gasLimit: tx.gasLimit,
      maxFeePerGas: 0n,
      maxPriorityFeePerGas: 0n,
      chainId: common.chainId(),
    },
    { common },
  );
  const { signature, recid } = secp.ecdsaSign(
    unsigned.getHashedMessageToSign(),
    hexToBytes(privateKey as `0x${string}`),
  );
  const signed = unsigned.addSignature(BigInt(recid), signature.slice(0, 32), signature.slice(32));
  return {
    raw: `0x${Buffer.from(signed.serialize()).toString("hex")}`,
    hash: `0x${Buffer.from(signed.hash()).toString("hex")}`,
  };
}

/** `count` consecutive workload transactions of one account from `firstNonce`, to `contract`. */
export function signTransactions(
  w: Workload,
  account: LoadAccount,
  firstNonce: number,
  count: number,
  contract: string,
  common: Common,
): SignedTx[] {
  const out: SignedTx[] = [];
  for (let n = firstNonce; n < firstNonce + count; n++)
    out.push(
      signTx(common, account.privateKey, {
        nonce: n,
        to: contract,
        data: calldata(w, account.address, n),
        gasLimit: GAS_BASE + GAS_PER_EVENT * BigInt(w.eventsPerTx),
      }),
    );
  return out;
}
