/**
 * Why a transaction was not executed. Invalid transactions are values (`TxRejected`), never
 * throws: a block with a bad transaction still executes the others deterministically.
 */
export type TxErrorCode =
  /** Not a decodable legacy, EIP-2930 or EIP-1559 transaction. */
  | "TX_MALFORMED"
  /** Transaction type we do not execute (blob, set-code, ...). */
  | "TX_TYPE_UNSUPPORTED"
  /** Signature missing, malformed, high-s, or not recoverable. */
  | "TX_INVALID_SIGNATURE"
  /** Legacy transaction without EIP-155 replay protection. */
  | "TX_NOT_REPLAY_PROTECTED"
  | "TX_WRONG_CHAIN_ID"
  | "TX_NONCE_TOO_LOW"
  | "TX_NONCE_TOO_HIGH"
  /** Gas limit below the intrinsic gas of the transaction. */
  | "TX_INTRINSIC_GAS_TOO_LOW"
  /** The gas limit does not fit in what is left of the block gas limit. */
  | "TX_BLOCK_GAS_LIMIT_EXCEEDED"
  /** Balance below value + gas limit x fee. */
  | "TX_INSUFFICIENT_FUNDS"
  /** Any other refusal by the EVM's transaction checks (message says which). */
  | "TX_REJECTED";

export interface TxError {
  code: TxErrorCode;
  message: string;
}

export class ExecutionError extends Error {
  readonly code: "EXECUTION_INVALID_OPTIONS" | "EXECUTION_INVALID_BLOCK";

  constructor(code: ExecutionError["code"], message: string) {
    super(message);
    this.name = "ExecutionError";
    this.code = code;
  }
}
