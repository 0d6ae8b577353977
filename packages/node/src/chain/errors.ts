/** Typed chain errors: each names what is wrong and where (height, record), never data. */
export type ChainErrorCode =
  | "CHAIN_INVALID_GENESIS"
  /** The store was created for another genesis document. */
  | "CHAIN_GENESIS_MISMATCH"
  /** A block does not follow the head (height, parent hash, roots). */
  | "CHAIN_INVALID_BLOCK"
  /** A record the chain needs is missing or inconsistent (a damaged or foreign store). */
  | "CHAIN_INCONSISTENT";

export class ChainError extends Error {
  readonly code: ChainErrorCode;
  readonly meta: Record<string, unknown>;

  constructor(code: ChainErrorCode, message: string, meta: Record<string, unknown> = {}) {
    super(message);
    this.name = "ChainError";
    this.code = code;
    this.meta = meta;
  }
}
