/**
 * The HTTP front: JSON-RPC on `POST /`, plus the node's REST routes (health, status, backup).
 *
 * HTTP status policy: a JSON-RPC answer is 200 even when it carries errors, authentication errors
 * included, because one batch mixes outcomes and ethers/viem turn a non-2xx into a transport error
 * that loses the JSON-RPC code. Only a body that cannot be read gets a 4xx (413 over
 * `maxBodyBytes`, with a -32005 body), and a request of notifications only gets 204. REST routes use
 * HTTP statuses: 401 with `WWW-Authenticate: Bearer` for a missing or wrong token, 403 when admin is
 * disabled, 404 as JSON, 500 as a bare "internal error".
 */
import { createHash, timingSafeEqual } from "node:crypto";
import { readFile } from "node:fs/promises";
import type { IncomingHttpHeaders, ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import cors from "@fastify/cors";
import { type FastifyError, type FastifyReply, type FastifyRequest, fastify, LogController } from "fastify";
import type { Logger } from "pino";
import {
  adminDisabled,
  INTERNAL_ERROR,
  LIMIT_EXCEEDED,
  limitExceeded,
  PARSE_ERROR,
  type RpcError,
  RpcServerError,
  type RpcServerErrorCode,
  unauthorized,
} from "./errors.ts";
import {
  createRpcDispatcher,
  type RpcContext,
  type RpcMethod,
  rpcJsonReplacer,
  serializeRpcResponse,
} from "./jsonrpc.ts";
import { type RpcServerOptions, resolveRpcServerOptions } from "./options.ts";

export interface RestRequest {
  query: Record<string, string>;
  headers: IncomingHttpHeaders;
  /** Raw body of a POST (at most `maxBodyBytes`). */
  body?: Buffer;
}

export interface RestResponse {
  status?: number;
  /** Sent as JSON unless it is a string or bytes, or `contentType` says otherwise. */
  body?: unknown;
  /** Piped to the client, e.g. a backup download; takes precedence over `body`. */
  stream?: NodeJS.ReadableStream;
  contentType?: string;
  headers?: Record<string, string>;
}

export interface RestRoute {
  method: "GET" | "POST";
  path: string;
  /** Needs `Authorization: Bearer <admin token>`: 401 without a valid one, 403 if admin is disabled. */
  admin?: boolean;
  handler(req: RestRequest, ctx: RpcContext): Promise<RestResponse>;
}

export interface RpcServerModules {
  methods: Record<string, RpcMethod>;
  routes?: RestRoute[];
  logger: Logger;
}

export interface RpcServerAddress {
  host: string;
  port: number;
  url: string;
}

export interface RpcServer {
  /** Reads the TLS and token files, then binds; every startup failure is an `RpcServerError`. */
  listen(): Promise<{ url: string; port: number }>;
  close(): Promise<void>;
  /** Where it listens, once `listen()` resolved. */
  readonly address: RpcServerAddress | undefined;
}

/** A token shorter than this is guessable: refuse it at startup rather than serve with it. */
const MIN_ADMIN_TOKEN_LENGTH = 16;

type AdminAuth = { admin: true } | { admin: false; refusal: RpcError; status: 401 | 403 };

const sha256 = (s: string) => createHash("sha256").update(s).digest();

/**
 * Compares digests, so that neither the token's content nor its length leaks through timing.
 * The token only ever lives in this closure: it is never logged nor put in an error.
 */
function adminAuthenticator(token: string | undefined): (authorization: string | undefined) => AdminAuth {
  if (token === undefined) return () => ({ admin: false, refusal: adminDisabled(), status: 403 });
  const expected = sha256(token);
  return (authorization) => {
    if (authorization === undefined) return { admin: false, refusal: unauthorized(), status: 401 };
    const presented = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(authorization)?.[1];
    if (presented !== undefined && timingSafeEqual(sha256(presented), expected)) return { admin: true };
    return { admin: false, refusal: unauthorized("admin token rejected"), status: 401 };
  };
}

async function readStartupFile(path: string, code: RpcServerErrorCode, what: string): Promise<Buffer> {
  try {
    return await readFile(path);
  } catch (err) {
    const reason = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
    throw new RpcServerError(code, `cannot read the ${what} ${path}: ${reason}`, { path }, { cause: err });
  }
}

async function readAdminToken(path: string): Promise<string> {
  const token = (await readStartupFile(path, "RPC_ADMIN_TOKEN_UNREADABLE", "admin token file"))
    .toString()
    .trim();
  if (token.length < MIN_ADMIN_TOKEN_LENGTH) {
    throw new RpcServerError(
      "RPC_ADMIN_TOKEN_TOO_SHORT",
      `the admin token in ${path} must be at least ${MIN_ADMIN_TOKEN_LENGTH} characters (e.g. openssl rand -hex 32)`,
      { path },
    );
  }
  return token;
}

/** Aborts when the client disconnects before the response is complete. */
function clientGone(res: ServerResponse): AbortSignal {
  const controller = new AbortController();
  res.once("close", () => {
    if (!res.writableFinished) controller.abort();
  });
  return controller.signal;
}

function firstValues(query: unknown): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [key, value] of Object.entries((query ?? {}) as Record<string, unknown>)) {
    const first = Array.isArray(value) ? value[0] : value;
    if (typeof first === "string") out[key] = first;
  }
  return out;
}

const rpcErrorBody = (code: number, message: string) => ({
  jsonrpc: "2.0",
  id: null,
  error: { code, message },
});

function refuseMalformed(err: FastifyError, _request: FastifyRequest, reply: FastifyReply): void {
  reply.code(err.statusCode ?? 400).send({ error: err.message });
}

const formatUrl = (scheme: string, host: string, port: number) =>
  `${scheme}://${host.includes(":") ? `[${host}]` : host}:${port}`;

export function createRpcServer(opts: Partial<RpcServerOptions>, modules: RpcServerModules): RpcServer {
  const o = resolveRpcServerOptions(opts);
  const log = modules.logger.child({ module: "rpc" });
  const dispatcher = createRpcDispatcher(modules.methods, o, { logger: log });
  let app: Awaited<ReturnType<typeof build>> | undefined;
  let address: RpcServerAddress | undefined;
  let starting = false;

  function createFastify(tls: { cert: Buffer; key: Buffer } | undefined) {
    try {
      return fastify({
        https: tls ?? null,
        loggerInstance: log,
        logController: new LogController({ disableRequestLogging: true }),
        bodyLimit: o.maxBodyBytes,
        // Malformed URLs and the like: same JSON shape as every other refusal.
        frameworkErrors: refuseMalformed,
      });
    } catch (err) {
      // Only the TLS context can fail here (a bad PEM, or a key that does not match the certificate).
      throw new RpcServerError(
        "RPC_TLS_INVALID",
        `invalid TLS certificate or key (${o.tls?.certFile}, ${o.tls?.keyFile}): ${(err as Error).message}`,
        {},
        { cause: err },
      );
    }
  }

  async function build() {
    const tls = o.tls && {
      cert: await readStartupFile(o.tls.certFile, "RPC_TLS_FILE_UNREADABLE", "TLS certificate file"),
      key: await readStartupFile(o.tls.keyFile, "RPC_TLS_FILE_UNREADABLE", "TLS key file"),
    };
    const authenticate = adminAuthenticator(
      o.adminTokenFile === undefined ? undefined : await readAdminToken(o.adminTokenFile),
    );
    const instance = createFastify(tls);

    const auth = (headers: IncomingHttpHeaders, ip: string): AdminAuth => {
      const result = authenticate(headers.authorization);
      if (!result.admin && headers.authorization !== undefined) log.warn({ ip }, "admin token rejected");
      return result;
    };

    // Every body arrives as bytes whatever its content type (ethers and curl differ), so that
    // malformed JSON is answered with -32700 by the dispatcher rather than by fastify.
    instance.removeAllContentTypeParsers();
    instance.addContentTypeParser("*", { parseAs: "buffer" }, (_req, body, done) => done(null, body));

    if (o.corsOrigins.length > 0) {
      await instance.register(cors, {
        origin: o.corsOrigins.includes("*") ? "*" : o.corsOrigins,
        methods: ["GET", "POST"],
        allowedHeaders: ["Content-Type", "Authorization"],
      });
    }

    instance.post("/", async (request, reply) => {
      const credentials = auth(request.headers, request.ip);
      const response = await dispatcher.dispatchRaw(request.body as Buffer | undefined, {
        admin: credentials.admin,
        adminRefusal: credentials.admin ? undefined : credentials.refusal,
        signal: clientGone(reply.raw),
      });
      if (response === undefined) return reply.code(204).send();
      return reply.type("application/json").send(serializeRpcResponse(response));
    });

    for (const route of modules.routes ?? []) {
      instance.route({
        method: route.method,
        url: route.path,
        handler: async (request, reply) => {
          let admin = false;
          if (route.admin === true) {
            const result = auth(request.headers, request.ip);
            if (!result.admin) {
              if (result.status === 401) reply.header("www-authenticate", "Bearer");
              return reply.code(result.status).send({ error: result.refusal.message });
            }
            admin = true;
          }
          const signal = clientGone(reply.raw);
          let res: RestResponse;
          try {
            const body = request.body as Buffer | undefined;
            res = await route.handler(
              { query: firstValues(request.query), headers: request.headers, body },
              { admin, signal },
            );
          } catch (err) {
            log.error({ err, route: `${route.method} ${route.path}` }, "rest handler failed");
            return reply.code(500).send({ error: "internal error" });
          }
          reply.code(res.status ?? 200);
          if (res.headers) reply.headers(res.headers);
          if (res.stream) return reply.type(res.contentType ?? "application/octet-stream").send(res.stream);
          if (typeof res.body === "string" || res.body instanceof Uint8Array) {
            return reply.type(res.contentType ?? "text/plain; charset=utf-8").send(res.body);
          }
          return reply
            .type(res.contentType ?? "application/json")
            .send(JSON.stringify(res.body ?? null, rpcJsonReplacer));
        },
      });
    }

    instance.setNotFoundHandler((request, reply) => {
      reply.code(404).send({ error: `not found: ${request.method} ${request.url.split("?")[0]}` });
    });

    // Body and framework errors. Only fastify's own messages reach the client, never a stack.
    instance.setErrorHandler((err: Error & { statusCode?: number; code?: string }, request, reply) => {
      const status =
        err.statusCode !== undefined && err.statusCode >= 400 && err.statusCode < 600 ? err.statusCode : 500;
      const isRpc = request.method === "POST" && request.routeOptions.url === "/";
      if (status >= 500) log.error({ err }, "rpc server error");
      else log.debug({ code: err.code, status }, "request refused");
      if (status === 413) {
        const message = limitExceeded("request body", o.maxBodyBytes, "bytes").message;
        return reply.code(413).send(isRpc ? rpcErrorBody(LIMIT_EXCEEDED, message) : { error: message });
      }
      const message =
        status >= 500 ? "internal error" : err.code?.startsWith("FST_") ? err.message : "bad request";
      return reply
        .code(status)
        .send(
          isRpc ? rpcErrorBody(status >= 500 ? INTERNAL_ERROR : PARSE_ERROR, message) : { error: message },
        );
    });

    return instance;
  }

  function listenError(err: unknown): RpcServerError {
    const where = `${o.host}:${o.port}`;
    const code = (err as NodeJS.ErrnoException).code;
    if (code === "EADDRINUSE") {
      return new RpcServerError(
        "RPC_ADDRESS_IN_USE",
        `cannot listen on ${where}: address already in use (is another node running? set another RPC port)`,
        { host: o.host, port: o.port },
        { cause: err },
      );
    }
    return new RpcServerError(
      "RPC_LISTEN_FAILED",
      `cannot listen on ${where}: ${code ?? (err as Error).message}`,
      { host: o.host, port: o.port },
      { cause: err },
    );
  }

  return {
    async listen() {
      if (starting) throw new RpcServerError("RPC_ALREADY_STARTED", "the RPC server was already started");
      starting = true;
      try {
        const instance = await build();
        try {
          await instance.listen({ host: o.host, port: o.port });
        } catch (err) {
          await instance.close();
          throw listenError(err);
        }
        const port = (instance.server.address() as AddressInfo).port;
        app = instance;
        address = { host: o.host, port, url: formatUrl(o.tls ? "https" : "http", o.host, port) };
        return { url: address.url, port };
      } catch (err) {
        starting = false;
        throw err;
      }
    },
    async close() {
      const instance = app;
      app = undefined;
      address = undefined;
      starting = false;
      await instance?.close();
    },
    get address() {
      return address;
    },
  };
}
