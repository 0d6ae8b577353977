/** Typed store errors: each names what is wrong and where, never the data. */
export type StoreErrorCode =
  | "STORE_CORRUPT_RECORD"
  | "STORE_WRONG_DATA_KEY"
  | "STORE_KEY_UNAVAILABLE"
  | "STORE_NOT_INITIALISED"
  | "STORE_LOCKED"
  | "STORE_IO"
  | "STORE_CLOSED"
  | "STORE_INVALID_ARGUMENT";

export class StoreError extends Error {
  readonly code: StoreErrorCode;
  readonly meta: Record<string, unknown>;

  constructor(
    code: StoreErrorCode,
    message: string,
    meta: Record<string, unknown> = {},
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = "StoreError";
    this.code = code;
    this.meta = meta;
  }
}
