/**
 * JSON-RPC error codes. The -32700..-32603 range is the JSON-RPC 2.0 spec; the -32000 range follows
 * geth and EIP-1474 so that ethers, viem and Hardhat recognise them.
 */
export const PARSE_ERROR = -32700;
export const INVALID_REQUEST = -32600;
export const METHOD_NOT_FOUND = -32601;
export const INVALID_PARAMS = -32602;
export const INTERNAL_ERROR = -32603;
/** Generic server error (geth uses it for every transaction refusal); details go in `data`. */
export const SERVER_ERROR = -32000;
/**
 * Admin method called without a valid bearer token, or with admin RPC disabled. EIP-1474 lists
 * -32001 as "resource not found", but no client keys on that meaning (geth answers a missing
 * resource with a null result), and keeping it in the -32000 range keeps ethers from retrying.
 */
export const UNAUTHORIZED = -32001;
/** geth's code for a call cut off by its per-call time limit. */
export const TIMEOUT = -32002;
/** EIP-1474 "limit exceeded": batch size and body size limits. */
export const LIMIT_EXCEEDED = -32005;

/** The `error` member of a JSON-RPC response. */
export interface RpcErrorObject {
  code: number;
  message: string;
  data?: unknown;
}

/**
 * An error meant for the client: handlers throw it and the dispatcher sends `code`, `message` and
 * `data` as they are. Anything else a handler throws becomes a bare "internal error".
 */
export class RpcError extends Error {
  readonly code: number;
  readonly data: unknown;

  constructor(code: number, message: string, data?: unknown) {
    super(message);
    this.name = "RpcError";
    this.code = code;
    this.data = data;
  }

  toErrorObject(): RpcErrorObject {
    const error: RpcErrorObject = { code: this.code, message: this.message };
    if (this.data !== undefined) error.data = this.data;
    return error;
  }
}

// Client-chosen strings are echoed back clipped, so a hostile request cannot make us reflect megabytes.
const clip = (s: string, max = 64) => (s.length > max ? `${s.slice(0, max)}...` : s);

export const parseError = () => new RpcError(PARSE_ERROR, "parse error: request body is not valid JSON");
export const invalidRequest = (detail: string) => new RpcError(INVALID_REQUEST, `invalid request: ${detail}`);
export const methodNotFound = (method: string) =>
  new RpcError(METHOD_NOT_FOUND, `the method ${clip(method)} does not exist/is not available`);
export const invalidParams = (detail: string, data?: unknown) =>
  new RpcError(INVALID_PARAMS, `invalid params: ${detail}`, data);
export const internalError = () => new RpcError(INTERNAL_ERROR, "internal error");
export const serverError = (message: string, data?: unknown) => new RpcError(SERVER_ERROR, message, data);
export const unauthorized = (detail = "admin method requires an 'Authorization: Bearer <token>' header") =>
  new RpcError(UNAUTHORIZED, `unauthorized: ${detail}`);
export const adminDisabled = () =>
  new RpcError(
    UNAUTHORIZED,
    "unauthorized: admin methods are disabled on this node (no adminTokenFile configured)",
  );
/** E.g. `limitExceeded("batch", 100, "requests", 150)`: "batch of 150 requests is over the limit of 100 requests". */
export const limitExceeded = (what: string, limit: number, unit: string, actual?: number) =>
  new RpcError(
    LIMIT_EXCEEDED,
    `limit exceeded: ${actual === undefined ? what : `${what} of ${actual} ${unit}`} is over the limit of ${limit} ${unit}`,
    { limit },
  );
export const timeout = (ms: number) => new RpcError(TIMEOUT, `request timed out after ${ms} ms`);

/** Startup and configuration failures of the HTTP server: thrown, and meant for the operator. */
export type RpcServerErrorCode =
  | "RPC_INVALID_OPTIONS"
  | "RPC_ADDRESS_IN_USE"
  | "RPC_LISTEN_FAILED"
  | "RPC_TLS_FILE_UNREADABLE"
  | "RPC_TLS_INVALID"
  | "RPC_ADMIN_TOKEN_UNREADABLE"
  | "RPC_ADMIN_TOKEN_TOO_SHORT"
  | "RPC_ALREADY_STARTED";

export class RpcServerError extends Error {
  readonly code: RpcServerErrorCode;
  readonly meta: Record<string, unknown>;

  constructor(
    code: RpcServerErrorCode,
    message: string,
    meta: Record<string, unknown> = {},
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = "RpcServerError";
    this.code = code;
    this.meta = meta;
  }
}
