/**
 * Thrown errors are for misuse by the caller (a value that is not a bytes32 where one is
 * required); malformed logs and broken hash chains coming from outside are returned as values.
 */

export type Result<T, E> = { ok: true; value: T } | { ok: false; error: E };

export type ContractsErrorCode = "CONTRACTS_INVALID_INPUT";

export class ContractsError extends Error {
  readonly code: ContractsErrorCode;
  readonly meta: Record<string, unknown>;

  constructor(code: ContractsErrorCode, message: string, meta: Record<string, unknown> = {}) {
    super(message);
    this.name = "ContractsError";
    this.code = code;
    this.meta = meta;
  }
}

export function isContractsError(e: unknown, code?: ContractsErrorCode): e is ContractsError {
  return e instanceof ContractsError && (code === undefined || e.code === code);
}
