/**
 * Why the mempool refused a transaction. Refusals are values (`MempoolRejection`), never throws:
 * `eth_sendRawTransaction` turns one into a JSON-RPC error as is, so messages name the numbers
 * involved and never carry stack traces or @ethereumjs's dump of the whole transaction.
 */
export type MempoolErrorCode =
  /** Encoded transaction larger than `maxTxBytes` (checked before decoding). */
  | "MEMPOOL_TX_TOO_LARGE"
  /** Not a canonical legacy, EIP-2930 or EIP-1559 transaction encoding. */
  | "MEMPOOL_MALFORMED"
  /** A typed transaction we do not execute (blob, set-code, ...). */
  | "MEMPOOL_TX_TYPE_UNSUPPORTED"
  /** Legacy transaction without EIP-155 chain id. */
  | "MEMPOOL_NOT_REPLAY_PROTECTED"
  | "MEMPOOL_WRONG_CHAIN_ID"
  /** Signature malformed, high-s, or not recoverable. */
  | "MEMPOOL_INVALID_SIGNATURE"
  /** The recovered sender may not transact on this network. */
  | "MEMPOOL_SENDER_NOT_PERMITTED"
  | "MEMPOOL_NONCE_TOO_LOW"
  /** Nonce beyond the window above the account's next nonce. */
  | "MEMPOOL_NONCE_TOO_HIGH"
  /** Gas limit below the intrinsic gas (or `minGasLimit`). */
  | "MEMPOOL_GAS_LIMIT_TOO_LOW"
  /** Gas limit above `maxGasLimit` (the block gas limit). */
  | "MEMPOOL_GAS_LIMIT_TOO_HIGH"
  | "MEMPOOL_GAS_PRICE_TOO_LOW"
  /** Same sender and nonce as a pooled transaction without the required price bump. */
  | "MEMPOOL_REPLACEMENT_UNDERPRICED"
  /** The same transaction (by hash) is already pooled. */
  | "MEMPOOL_ALREADY_KNOWN"
  /** Pool full and the new transaction ranks lowest for eviction. */
  | "MEMPOOL_FULL"
  /** The sender already holds `maxTxsPerSender` transactions. */
  | "MEMPOOL_SENDER_LIMIT"
  /** Balance below value + gas limit x max fee per gas. */
  | "MEMPOOL_INSUFFICIENT_FUNDS";

/** JSON-RPC 2.0 "invalid params". */
export const RPC_INVALID_PARAMS = -32602;
/** The server error geth uses for every transaction pool refusal. */
export const RPC_SERVER_ERROR = -32000;

/** JSON-serialisable details; big numbers are decimal strings. */
export type MempoolErrorData = Record<string, string | number>;

export interface MempoolRejection {
  code: MempoolErrorCode;
  /** `<geth's reason>: <why, with the numbers>`, fit for a JSON-RPC error message. */
  message: string;
  rpcCode: number;
  data?: MempoolErrorData;
}

/** The JSON-RPC code and the geth-compatible reason each refusal starts with. */
export const mempoolRpcErrors: Readonly<Record<MempoolErrorCode, { rpcCode: number; reason: string }>> = {
  MEMPOOL_TX_TOO_LARGE: { rpcCode: RPC_SERVER_ERROR, reason: "oversized data" },
  MEMPOOL_MALFORMED: { rpcCode: RPC_INVALID_PARAMS, reason: "invalid transaction" },
  MEMPOOL_TX_TYPE_UNSUPPORTED: { rpcCode: RPC_SERVER_ERROR, reason: "transaction type not supported" },
  MEMPOOL_NOT_REPLAY_PROTECTED: {
    rpcCode: RPC_SERVER_ERROR,
    reason: "only replay-protected (EIP-155) transactions allowed over RPC",
  },
  MEMPOOL_WRONG_CHAIN_ID: { rpcCode: RPC_SERVER_ERROR, reason: "invalid chain id for signer" },
  MEMPOOL_INVALID_SIGNATURE: { rpcCode: RPC_INVALID_PARAMS, reason: "invalid sender" },
  MEMPOOL_SENDER_NOT_PERMITTED: { rpcCode: RPC_SERVER_ERROR, reason: "sender not permitted" },
  MEMPOOL_NONCE_TOO_LOW: { rpcCode: RPC_SERVER_ERROR, reason: "nonce too low" },
  MEMPOOL_NONCE_TOO_HIGH: { rpcCode: RPC_SERVER_ERROR, reason: "nonce too high" },
  MEMPOOL_GAS_LIMIT_TOO_LOW: { rpcCode: RPC_SERVER_ERROR, reason: "intrinsic gas too low" },
  MEMPOOL_GAS_LIMIT_TOO_HIGH: { rpcCode: RPC_SERVER_ERROR, reason: "exceeds block gas limit" },
  MEMPOOL_GAS_PRICE_TOO_LOW: { rpcCode: RPC_SERVER_ERROR, reason: "transaction underpriced" },
  MEMPOOL_REPLACEMENT_UNDERPRICED: {
    rpcCode: RPC_SERVER_ERROR,
    reason: "replacement transaction underpriced",
  },
  MEMPOOL_ALREADY_KNOWN: { rpcCode: RPC_SERVER_ERROR, reason: "already known" },
  MEMPOOL_FULL: { rpcCode: RPC_SERVER_ERROR, reason: "txpool is full" },
  MEMPOOL_SENDER_LIMIT: { rpcCode: RPC_SERVER_ERROR, reason: "account limit exceeded" },
  MEMPOOL_INSUFFICIENT_FUNDS: {
    rpcCode: RPC_SERVER_ERROR,
    reason: "insufficient funds for gas * price + value",
  },
};

export function mempoolRejection(
  code: MempoolErrorCode,
  detail: string,
  data?: MempoolErrorData,
): MempoolRejection {
  const { rpcCode, reason } = mempoolRpcErrors[code];
  const rejection: MempoolRejection = { code, message: `${reason}: ${detail}`, rpcCode };
  if (data !== undefined) rejection.data = data;
  return rejection;
}

/** Invalid construction options: a bug in the caller, so thrown. */
export class MempoolError extends Error {
  readonly code: "MEMPOOL_INVALID_OPTIONS";

  constructor(code: MempoolError["code"], message: string) {
    super(message);
    this.name = "MempoolError";
    this.code = code;
  }
}
