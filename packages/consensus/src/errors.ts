/**
 * One error base for the package. Thrown errors are for bugs and misuse by the host (an invalid
 * validator set in a genesis file); anything that arrives from a peer is returned as a value
 * (`MessageError`), never thrown.
 */

export type ConsensusErrorCode =
  | "CONSENSUS_ERROR_INVALID_VALIDATOR_SET"
  | "CONSENSUS_ERROR_INVALID_OPTIONS"
  | "CONSENSUS_ERROR_INVALID_INPUT";

export class ConsensusError extends Error {
  readonly code: ConsensusErrorCode;
  readonly meta: Record<string, unknown>;

  constructor(code: ConsensusErrorCode, message: string, meta: Record<string, unknown> = {}) {
    super(message);
    this.name = "ConsensusError";
    this.code = code;
    this.meta = meta;
  }
}

/** Why a message from the wire or a peer was refused. Values, not exceptions. */
export type MessageErrorCode =
  | "MESSAGE_MALFORMED"
  | "MESSAGE_UNSUPPORTED_VERSION"
  | "MESSAGE_WRONG_CHAIN"
  | "MESSAGE_UNKNOWN_VALIDATOR"
  | "MESSAGE_BAD_SIGNATURE"
  | "MESSAGE_NOT_PROPOSER"
  | "MESSAGE_VALUE_HASH_MISMATCH"
  | "MESSAGE_INVALID_POL_ROUND"
  | "MESSAGE_ROUND_TOO_FAR"
  | "CERTIFICATE_INVALID"
  | "EVIDENCE_INVALID";

export interface MessageError {
  code: MessageErrorCode;
  detail: string;
}

export function messageError(code: MessageErrorCode, detail: string): MessageError {
  return { code, detail };
}
