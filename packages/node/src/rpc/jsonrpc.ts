/**
 * JSON-RPC 2.0 dispatch, independent of HTTP. Choices where the spec leaves room:
 * - by-name (object) params are refused with -32602, since every eth_* method is positional;
 *   `params: null` counts as absent (as geth);
 * - an invalid request keeps its id when the id itself is valid, so a batch stays correlatable;
 * - a batch over `maxBatchSize` is one -32005 error, not one per element;
 * - bigints in results become 0x quantities (see `rpcJsonReplacer`).
 */
import { type Logger, pino } from "pino";
import type { z } from "zod";
import {
  INTERNAL_ERROR,
  internalError,
  invalidParams,
  invalidRequest,
  limitExceeded,
  methodNotFound,
  parseError,
  RpcError,
  type RpcErrorObject,
  TIMEOUT,
  timeout,
  unauthorized,
} from "./errors.ts";
import { defaultRpcServerOptions } from "./options.ts";

export interface RpcContext {
  /** The caller presented a valid admin token. */
  admin: boolean;
  /** Aborted when the call times out or the client goes away. */
  signal: AbortSignal;
}

export interface RpcMethod<P = unknown> {
  /** zod schema for the params array (z.tuple([...]) with optional items, or z.array). Missing params = []. */
  params: z.ZodType<P>;
  admin?: boolean;
  handler(params: P, ctx: RpcContext): Promise<unknown> | unknown;
}

/** Infers the handler's params from the schema, which `Record<string, RpcMethod>` alone cannot. */
export function defineMethod<P>(method: RpcMethod<P>): RpcMethod<P> {
  return method;
}

export type RpcId = string | number | null;
export type RpcResponse =
  | { jsonrpc: "2.0"; id: RpcId; result: unknown }
  | { jsonrpc: "2.0"; id: RpcId; error: RpcErrorObject };

export interface RpcDispatcherOptions {
  maxBatchSize: number;
  requestTimeoutMs: number;
}

export interface DispatchContext {
  admin: boolean;
  /** Why admin methods are refused when `admin` is false (missing token, wrong token, disabled). */
  adminRefusal?: RpcError;
  /** The client went away: every call's signal aborts. */
  signal?: AbortSignal;
}

export interface RpcDispatcher {
  /** A response, an array of responses, or undefined when there is nothing to answer (notifications). */
  dispatch(body: unknown, ctx: DispatchContext): Promise<RpcResponse | RpcResponse[] | undefined>;
  /** As `dispatch`, from the raw body bytes: malformed JSON is a -32700 response, not a throw. */
  dispatchRaw(
    body: Uint8Array | string | undefined,
    ctx: DispatchContext,
  ): Promise<RpcResponse | RpcResponse[] | undefined>;
}

/**
 * Handlers should return hex strings already; a stray bigint is sent as an Ethereum quantity
 * (0x-hex) rather than crashing the response. A negative bigint is no quantity at all, so it is
 * refused and the call becomes an internal error.
 */
export function rpcJsonReplacer(_key: string, value: unknown): unknown {
  if (typeof value !== "bigint") return value;
  if (value < 0n) throw new TypeError("negative bigint in an RPC result");
  return `0x${value.toString(16)}`;
}

/** Serialises what `dispatch` returned, with the same bigint handling it checked results against. */
export function serializeRpcResponse(response: RpcResponse | RpcResponse[]): string {
  return JSON.stringify(response, rpcJsonReplacer);
}

const errorResponse = (id: RpcId, error: RpcError): RpcResponse => ({
  jsonrpc: "2.0",
  id,
  error: error.toErrorObject(),
});

// Fatal, so that bytes that are not UTF-8 are a parse error rather than silently replaced characters.
const utf8 = new TextDecoder("utf-8", { fatal: true });

const isRpcId = (id: unknown): id is RpcId =>
  id === null || typeof id === "string" || (typeof id === "number" && Number.isFinite(id));

function formatPath(path: readonly PropertyKey[]): string {
  let out = "params";
  for (const key of path) out += typeof key === "number" ? `[${key}]` : `.${String(key)}`;
  return out;
}

/** First zod issue in the message (which parameter, what was expected); all of them in `data`. */
function paramsError(error: z.ZodError): RpcError {
  const issues = error.issues.map((issue) => ({
    path: formatPath(issue.path),
    code: issue.code,
    message: issue.message,
  }));
  const first = issues[0];
  if (first === undefined) return invalidParams("rejected", { issues });
  const more = issues.length > 1 ? ` (and ${issues.length - 1} more)` : "";
  const text = first.message.charAt(0).toLowerCase() + first.message.slice(1);
  return invalidParams(`${first.path}: ${text}${more}`, { issues });
}

export function createRpcDispatcher(
  methods: Record<string, RpcMethod>,
  opts: Partial<RpcDispatcherOptions> = {},
  modules: { logger?: Logger } = {},
): RpcDispatcher {
  const maxBatchSize = opts.maxBatchSize ?? defaultRpcServerOptions.maxBatchSize;
  const requestTimeoutMs = opts.requestTimeoutMs ?? defaultRpcServerOptions.requestTimeoutMs;
  const log = modules.logger ?? pino({ level: "silent" });
  // A Map, so that "constructor" or "__proto__" cannot reach Object.prototype.
  const table = new Map(Object.entries(methods));

  // Params are never logged: they may carry patient data.
  function logFailure(method: string, error: RpcError, cause?: unknown): void {
    const fields = method === "" ? { code: error.code } : { method: method.slice(0, 64), code: error.code };
    if (error.code === INTERNAL_ERROR) log.error({ ...fields, err: cause }, "rpc call failed");
    else if (error.code === TIMEOUT) log.warn(fields, "rpc call timed out");
    else log.debug(fields, "rpc call failed");
  }

  async function invoke(method: RpcMethod, params: unknown, ctx: DispatchContext): Promise<unknown> {
    const controller = new AbortController();
    const signal = ctx.signal ? AbortSignal.any([controller.signal, ctx.signal]) : controller.signal;
    let timer: NodeJS.Timeout | undefined;
    const expired = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        const error = timeout(requestTimeoutMs);
        controller.abort(error);
        reject(error);
      }, requestTimeoutMs);
    });
    try {
      // Promise.race subscribes to the handler, so a rejection after the timeout is not unhandled.
      return await Promise.race([
        Promise.resolve().then(() => method.handler(params, { admin: ctx.admin, signal })),
        expired,
      ]);
    } finally {
      clearTimeout(timer);
    }
  }

  async function call(name: string, params: unknown, id: RpcId, ctx: DispatchContext): Promise<RpcResponse> {
    const method = table.get(name);
    if (method === undefined) return fail(name, id, methodNotFound(name));
    if (method.admin === true && !ctx.admin) return fail(name, id, ctx.adminRefusal ?? unauthorized());
    const parsed = method.params.safeParse(params);
    if (!parsed.success) return fail(name, id, paramsError(parsed.error));
    let result: unknown;
    try {
      result = (await invoke(method, parsed.data, ctx)) ?? null;
    } catch (err) {
      if (ctx.signal?.aborted && !(err instanceof RpcError)) {
        log.debug({ method: name }, "rpc call abandoned: the client went away");
        return errorResponse(id, internalError());
      }
      return fail(name, id, err instanceof RpcError ? err : internalError(), err);
    }
    try {
      if (JSON.stringify(result, rpcJsonReplacer) === undefined) throw new TypeError("result is not JSON");
    } catch (err) {
      return fail(name, id, internalError(), err);
    }
    return { jsonrpc: "2.0", id, result };
  }

  function fail(method: string, id: RpcId, error: RpcError, cause?: unknown): RpcResponse {
    logFailure(method, error, cause);
    return errorResponse(id, error);
  }

  async function one(request: unknown, ctx: DispatchContext): Promise<RpcResponse | undefined> {
    if (typeof request !== "object" || request === null || Array.isArray(request)) {
      return fail("", null, invalidRequest("a request must be a JSON object"));
    }
    const r = request as Record<string, unknown>;
    const isNotification = !Object.hasOwn(r, "id");
    if (!isNotification && !isRpcId(r.id)) {
      return fail("", null, invalidRequest("id must be a string, a number or null"));
    }
    const id = isNotification ? null : (r.id as RpcId);
    if (r.jsonrpc !== "2.0") return fail("", id, invalidRequest('jsonrpc must be "2.0"'));
    if (typeof r.method !== "string") return fail("", id, invalidRequest("method must be a string"));
    // geth treats `params: null` as no params; by-name (object) params are not supported.
    const params = r.params ?? [];
    if (typeof params !== "object") return fail(r.method, id, invalidRequest("params must be an array"));
    const response = Array.isArray(params)
      ? await call(r.method, params, id, ctx)
      : fail(
          r.method,
          id,
          invalidParams("params must be an array: by-name (object) params are not supported"),
        );
    // A notification is run but never answered (JSON-RPC 2.0 section 4.1), errors included.
    return isNotification ? undefined : response;
  }

  async function dispatch(body: unknown, ctx: DispatchContext) {
    if (!Array.isArray(body)) return one(body, ctx);
    if (body.length === 0) return fail("", null, invalidRequest("empty batch"));
    if (body.length > maxBatchSize) {
      return fail("", null, limitExceeded("batch", maxBatchSize, "requests", body.length));
    }
    const responses = await Promise.all(body.map((request) => one(request, ctx)));
    const answered = responses.filter((r): r is RpcResponse => r !== undefined);
    // An all-notification batch is answered with nothing at all, not an empty array.
    return answered.length > 0 ? answered : undefined;
  }

  async function dispatchRaw(body: Uint8Array | string | undefined, ctx: DispatchContext) {
    let parsed: unknown;
    try {
      const text = typeof body === "string" ? body : utf8.decode(body ?? new Uint8Array());
      parsed = JSON.parse(text);
    } catch {
      return fail("", null, parseError());
    }
    return dispatch(parsed, ctx);
  }

  return { dispatch, dispatchRaw };
}
