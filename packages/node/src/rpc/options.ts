import { RpcServerError } from "./errors.ts";

export interface RpcTlsOptions {
  /** PEM certificate (chain) file. */
  certFile: string;
  /** PEM private key file. */
  keyFile: string;
}

/** Options of the JSON-RPC + REST HTTP server. */
export interface RpcServerOptions {
  /** Loopback by default: exposing RPC beyond the host is a deliberate choice. */
  host: string;
  /** 0 picks a free port; `listen()` reports the one chosen. */
  port: number;
  /** Larger bodies get HTTP 413 before they are buffered. */
  maxBodyBytes: number;
  /** Requests in one JSON-RPC batch array. */
  maxBatchSize: number;
  /** Time limit of each JSON-RPC call (each element of a batch on its own). */
  requestTimeoutMs: number;
  /** Origins allowed by CORS: [] turns CORS off, ["*"] allows any origin. */
  corsOrigins: string[];
  /** Serve HTTPS with these files, read once at startup. */
  tls?: RpcTlsOptions;
  /**
   * File holding the admin bearer token, read once at startup. Without it every admin method and
   * admin route is refused.
   */
  adminTokenFile?: string;
}

export const defaultRpcServerOptions: RpcServerOptions = {
  host: "127.0.0.1",
  port: 8545,
  maxBodyBytes: 5 * 1024 * 1024,
  maxBatchSize: 100,
  requestTimeoutMs: 30_000,
  corsOrigins: [],
};

/** Merges `opts` over the defaults and refuses values that would misbehave only later, under load. */
export function resolveRpcServerOptions(opts: Partial<RpcServerOptions>): RpcServerOptions {
  const o: RpcServerOptions = { ...defaultRpcServerOptions, ...opts };
  const positiveInt = (name: "maxBodyBytes" | "maxBatchSize" | "requestTimeoutMs") => {
    if (!Number.isSafeInteger(o[name]) || o[name] <= 0) {
      throw new RpcServerError("RPC_INVALID_OPTIONS", `${name} must be a positive integer, got ${o[name]}`, {
        option: name,
      });
    }
  };
  positiveInt("maxBodyBytes");
  positiveInt("maxBatchSize");
  positiveInt("requestTimeoutMs");
  if (!Number.isInteger(o.port) || o.port < 0 || o.port > 65535) {
    throw new RpcServerError("RPC_INVALID_OPTIONS", `port must be an integer in 0..65535, got ${o.port}`, {
      option: "port",
    });
  }
  return o;
}
