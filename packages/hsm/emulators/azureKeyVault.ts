/**
 * An emulator of Azure Key Vault (keys data plane) and of the Microsoft Entra token endpoint, for
 * tests. It is not Azure: it speaks the same wire protocol as far as `@azure/keyvault-keys` and
 * `@azure/identity` (ClientSecretCredential) need, over HTTPS on 127.0.0.1 with a throwaway CA.
 *
 * Data plane: the SDK's bodiless first request gets `401` with the `WWW-Authenticate: Bearer
 * authorization="<authority>/<tenant>", resource="https://vault.azure.net"` challenge; every
 * other request must carry a bearer token this emulator issued for that resource. Keys are real
 * (node:crypto): ES256/384/512 signatures over the digest as raw r||s (high S included, as Azure
 * does not normalise), RSA-OAEP / RSA-OAEP-256 wrapping. Errors use Key Vault's bodies
 * (`{"error":{"code":"KeyNotFound","message":...}}`, `Forbidden` with innererror `KeyDisabled`
 * or `ForbiddenByRbac`, `Unauthorized`, `Throttled`).
 *
 * Entra: `/{tenant}/v2.0/.well-known/openid-configuration` and `/{tenant}/oauth2/v2.0/token`
 * (client_credentials with client_secret); a wrong secret gets `401 invalid_client` (AADSTS7000215).
 */
import {
  constants,
  createPublicKey,
  generateKeyPairSync,
  type KeyObject,
  privateDecrypt,
  publicEncrypt,
  randomBytes,
  randomUUID,
} from "node:crypto";
import type { IncomingMessage, ServerResponse } from "node:http";
import { createServer, type Server } from "node:https";
import type { AddressInfo } from "node:net";
import { p256, p384, p521 } from "@noble/curves/nist.js";
import { createTestTls } from "./tlsCert.ts";

/** The Key Vault resource the challenge names (the token audience). */
export const KEY_VAULT_RESOURCE = "https://vault.azure.net";

export type EmulatedCurve = "P-256" | "P-384" | "P-521";
export type KeyOperation = "sign" | "verify" | "wrapKey" | "unwrapKey" | "encrypt" | "decrypt";
/** Data-plane permissions of the emulated service principal (RBAC data actions / access policy). */
export type KeyPermission = "get" | KeyOperation;

export interface AzureKeyVaultEmulatorOptions {
  /** Listen port (0: any free port, kept across stop/start). */
  port?: number;
  tenantId?: string;
  clientId?: string;
  clientSecret?: string;
  /** Lifetime of issued access tokens (default 3600 s). */
  tokenLifetimeSeconds?: number;
}

export interface EmulatorFaults {
  /** The next N authorised data-plane requests get 429 Throttled. */
  throttle?: number;
  /** The next N authorised data-plane requests get 500. */
  serverErrors?: number;
  /** Every data-plane response is delayed by this many milliseconds (0: none). */
  delayMs?: number;
}

export interface EmulatedKeyInfo {
  name: string;
  version: string;
  /** The key identifier (`<vault>/keys/<name>/<version>`). */
  kid: string;
}

export interface EmulatorRequest {
  method: string;
  /** Path without the query string. */
  path: string;
  /** The `api-version` query parameter, whichever way it was encoded. */
  apiVersion: string | null;
  status: number;
  hadBearerToken: boolean;
}

export interface AzureKeyVaultEmulator {
  readonly vaultUrl: string;
  readonly authorityHost: string;
  readonly tenantId: string;
  readonly clientId: string;
  readonly clientSecret: string;
  /** PEM of the CA that signed the emulator's TLS certificate: clients must trust it. */
  readonly caPem: string;
  readonly port: number;
  /** Every request handled so far (for assertions on the protocol). */
  readonly requests: readonly EmulatorRequest[];
  /** Access tokens issued so far (secrets: they must never appear in an error). */
  issuedTokens(): string[];
  /** Creates the key, or a new version of it (rotation). */
  createEcKey(name: string, curve?: EmulatedCurve, keyOps?: KeyOperation[]): EmulatedKeyInfo;
  createRsaKey(name: string, bits?: number, keyOps?: KeyOperation[]): EmulatedKeyInfo;
  /** Disables / enables one version (default: the latest), like `az keyvault key set-attributes`. */
  disableKey(name: string, version?: string): void;
  enableKey(name: string, version?: string): void;
  /** What the service principal may do (default: everything). */
  setPermissions(permissions: KeyPermission[]): void;
  /** Counters replace the pending ones; `delayMs` persists until changed. */
  injectFaults(faults: EmulatorFaults): void;
  /** Makes these issued tokens (default: all) invalid, as if revoked: the vault refuses them. */
  revokeTokens(which?: string[]): void;
  /** Stops listening and drops open connections; state (keys, tokens) is kept. */
  stop(): Promise<void>;
  /** Listens again on the same port. */
  start(): Promise<void>;
  close(): Promise<void>;
}

interface KeyVersion {
  version: string;
  created: number;
  updated: number;
  enabled: boolean;
  keyOps: KeyOperation[];
  privateKey: KeyObject;
  publicJwk: Record<string, unknown>;
  curve?: EmulatedCurve;
}

interface IssuedToken {
  expiresAt: number;
  audience: string;
  appId: string;
}

const ALL_PERMISSIONS: KeyPermission[] = [
  "get",
  "sign",
  "verify",
  "wrapKey",
  "unwrapKey",
  "encrypt",
  "decrypt",
];
const EC_OPS: KeyOperation[] = ["sign", "verify"];
const RSA_OPS: KeyOperation[] = ["encrypt", "decrypt", "sign", "verify", "wrapKey", "unwrapKey"];
const NODE_CURVE: Record<EmulatedCurve, string> = {
  "P-256": "prime256v1",
  "P-384": "secp384r1",
  "P-521": "secp521r1",
};
const ES_ALG: Record<string, { curve: EmulatedCurve; digestBytes: number; sign: typeof p256.sign }> = {
  ES256: { curve: "P-256", digestBytes: 32, sign: p256.sign },
  ES384: { curve: "P-384", digestBytes: 48, sign: p384.sign },
  ES512: { curve: "P-521", digestBytes: 64, sign: p521.sign },
};
const OAEP_HASH: Record<string, string> = { "RSA-OAEP": "sha1", "RSA-OAEP-256": "sha256" };
const KEY_NAME = /^[0-9a-zA-Z-]{1,127}$/;

class HttpFailure extends Error {
  readonly status: number;
  readonly body: unknown;
  readonly headers: Record<string, string>;
  constructor(status: number, body: unknown, headers: Record<string, string> = {}) {
    super(`HTTP ${status}`);
    this.status = status;
    this.body = body;
    this.headers = headers;
  }
}

const kvError = (
  status: number,
  code: string,
  message: string,
  inner?: string,
  headers?: Record<string, string>,
) =>
  new HttpFailure(
    status,
    { error: { code, message, ...(inner ? { innererror: { code: inner } } : {}) } },
    headers,
  );

function b64urlDecode(value: unknown, field: string): Buffer {
  if (typeof value !== "string" || !/^[A-Za-z0-9_-]*={0,2}$/.test(value)) {
    throw kvError(400, "BadParameter", `Property '${field}' is not a valid base64url string.`);
  }
  return Buffer.from(value, "base64url");
}

async function readBody(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

function send(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    "content-type": "application/json; charset=utf-8",
    "content-length": String(Buffer.byteLength(text)),
    "cache-control": "no-cache",
    "x-ms-request-id": randomUUID(),
    ...headers,
  });
  res.end(text);
}

export async function startAzureKeyVaultEmulator(
  opts: AzureKeyVaultEmulatorOptions = {},
): Promise<AzureKeyVaultEmulator> {
  const tls = createTestTls();
  const tenantId = opts.tenantId ?? randomUUID();
  const clientId = opts.clientId ?? randomUUID();
  const clientSecret = opts.clientSecret ?? `emu~${randomBytes(24).toString("base64url")}`;
  const tokenLifetime = opts.tokenLifetimeSeconds ?? 3600;

  const keys = new Map<string, KeyVersion[]>();
  const tokens = new Map<string, IssuedToken>();
  const everIssued: string[] = [];
  const requests: EmulatorRequest[] = [];
  let permissions = new Set<KeyPermission>(ALL_PERMISSIONS);
  const faults = { throttle: 0, serverErrors: 0, delayMs: 0 };
  let port = opts.port ?? 0;
  let server: Server | undefined;
  let closed = false;

  const origin = () => `https://127.0.0.1:${port}`;
  const kidOf = (name: string, version: string) => `${origin()}/keys/${name}/${version}`;

  // --- keys -------------------------------------------------------------------------------

  function addVersion(
    name: string,
    v: Omit<KeyVersion, "version" | "created" | "updated" | "enabled">,
  ): EmulatedKeyInfo {
    if (!KEY_NAME.test(name)) throw new Error(`invalid Key Vault key name: ${name}`);
    const now = Math.floor(Date.now() / 1000);
    const version = randomBytes(16).toString("hex");
    const list = keys.get(name) ?? [];
    list.push({ ...v, version, created: now, updated: now, enabled: true });
    keys.set(name, list);
    return { name, version, kid: kidOf(name, version) };
  }

  function findVersion(name: string, version: string | undefined): KeyVersion {
    const list = keys.get(name);
    const found = list && (version ? list.find((k) => k.version === version) : list[list.length - 1]);
    if (!found) {
      const id = version ? `${name}/${version}` : name;
      throw kvError(
        404,
        "KeyNotFound",
        `A key with (name/id) ${id} was not found in this key vault. If you recently deleted this key you may be able to recover it using the correct recovery command. For help resolving this issue, please see https://go.microsoft.com/fwlink/?linkid=2125182`,
      );
    }
    return found;
  }

  function keyBundle(name: string, k: KeyVersion): unknown {
    return {
      key: { kid: kidOf(name, k.version), ...k.publicJwk, key_ops: k.keyOps },
      attributes: {
        enabled: k.enabled,
        created: k.created,
        updated: k.updated,
        recoveryLevel: "Recoverable+Purgeable",
        recoverableDays: 90,
        exportable: false,
      },
    };
  }

  // --- Entra token endpoint ---------------------------------------------------------------

  function entraError(status: number, error: string, aadsts: number, description: string): HttpFailure {
    const now = new Date().toISOString().replace("T", " ").replace(/\..*/, "Z");
    return new HttpFailure(status, {
      error,
      error_description: `AADSTS${aadsts}: ${description} Trace ID: ${randomUUID()} Correlation ID: ${randomUUID()} Timestamp: ${now}`,
      error_codes: [aadsts],
      timestamp: now,
      trace_id: randomUUID(),
      correlation_id: randomUUID(),
    });
  }

  async function handleEntra(
    req: IncomingMessage,
    res: ServerResponse,
    tenant: string,
    rest: string,
  ): Promise<void> {
    if (tenant !== tenantId) {
      throw entraError(
        400,
        "invalid_request",
        90002,
        `Tenant '${tenant}' not found. Check to make sure you have the correct tenant ID.`,
      );
    }
    const authority = `${origin()}/${tenantId}`;
    if (req.method === "GET" && rest === "v2.0/.well-known/openid-configuration") {
      send(res, 200, {
        token_endpoint: `${authority}/oauth2/v2.0/token`,
        token_endpoint_auth_methods_supported: [
          "client_secret_post",
          "private_key_jwt",
          "client_secret_basic",
        ],
        jwks_uri: `${origin()}/${tenantId}/discovery/v2.0/keys`,
        response_modes_supported: ["query", "fragment", "form_post"],
        subject_types_supported: ["pairwise"],
        id_token_signing_alg_values_supported: ["RS256"],
        response_types_supported: ["code", "id_token", "code id_token", "id_token token"],
        scopes_supported: ["openid", "profile", "email", "offline_access"],
        issuer: `${authority}/v2.0`,
        request_uri_parameter_supported: false,
        userinfo_endpoint: `${origin()}/oidc/userinfo`,
        authorization_endpoint: `${authority}/oauth2/v2.0/authorize`,
        device_authorization_endpoint: `${authority}/oauth2/v2.0/devicecode`,
        http_logout_supported: true,
        frontchannel_logout_supported: true,
        end_session_endpoint: `${authority}/oauth2/v2.0/logout`,
        claims_supported: ["sub", "iss", "aud", "exp", "iat", "tid", "ver"],
        tenant_region_scope: "EU",
        cloud_instance_name: "emulator.invalid",
      });
      return;
    }
    if (req.method === "POST" && rest === "oauth2/v2.0/token") {
      const form = new URLSearchParams((await readBody(req)).toString("utf8"));
      if (form.get("grant_type") !== "client_credentials") {
        throw entraError(
          400,
          "unsupported_grant_type",
          70003,
          "The app requested an unsupported grant type.",
        );
      }
      if (form.get("client_id") !== clientId) {
        throw entraError(
          400,
          "unauthorized_client",
          700016,
          `Application with identifier '${form.get("client_id")}' was not found in the directory.`,
        );
      }
      if (form.get("client_secret") !== clientSecret) {
        throw entraError(
          401,
          "invalid_client",
          7000215,
          "Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID.",
        );
      }
      const scope = form.get("scope") ?? "";
      const audience = scope
        .split(" ")
        .find((s) => s.endsWith("/.default"))
        ?.slice(0, -"/.default".length);
      if (audience !== KEY_VAULT_RESOURCE) {
        throw entraError(
          400,
          "invalid_resource",
          500011,
          `The resource principal named ${audience} was not found in the tenant.`,
        );
      }
      const token = `emu.${randomBytes(32).toString("base64url")}`;
      tokens.set(token, { expiresAt: Date.now() + tokenLifetime * 1000, audience, appId: clientId });
      everIssued.push(token);
      send(res, 200, {
        token_type: "Bearer",
        expires_in: tokenLifetime,
        ext_expires_in: tokenLifetime,
        access_token: token,
      });
      return;
    }
    throw new HttpFailure(404, {
      error: "not_found",
      error_description: `emulator: no Entra endpoint ${req.method} ${rest}`,
    });
  }

  // --- Key Vault data plane ---------------------------------------------------------------

  const challenge = () => ({
    "www-authenticate": `Bearer authorization="${origin()}/${tenantId}", resource="${KEY_VAULT_RESOURCE}"`,
  });

  function authorise(req: IncomingMessage): IssuedToken {
    const header = req.headers.authorization;
    if (!header)
      throw kvError(
        401,
        "Unauthorized",
        "AKV10000: Request is missing a Bearer or PoP token.",
        undefined,
        challenge(),
      );
    const match = /^Bearer (.+)$/.exec(header);
    const issued = match ? tokens.get(match[1]!) : undefined;
    if (!issued) throw kvError(401, "Unauthorized", "The access token is not valid.", undefined, challenge());
    if (issued.expiresAt <= Date.now())
      throw kvError(401, "Unauthorized", "The access token has expired.", undefined, challenge());
    if (issued.audience !== KEY_VAULT_RESOURCE)
      throw kvError(401, "Unauthorized", "The access token has an invalid audience.", undefined, challenge());
    return issued;
  }

  function requirePermission(issued: IssuedToken, permission: KeyPermission): void {
    if (permissions.has(permission)) return;
    throw kvError(
      403,
      "Forbidden",
      `Caller is not authorized to perform action on resource. If role assignments, deny assignments or role definitions were changed recently, please observe propagation time. Caller: appid=${issued.appId};iss=${origin()}/${tenantId}/ Action: 'Microsoft.KeyVault/vaults/keys/${permission === "get" ? "read" : permission}/action' Resource: '/keys' Vault: emulator`,
      "ForbiddenByRbac",
    );
  }

  function requireUsable(k: KeyVersion, operation: KeyOperation): void {
    if (!k.keyOps.includes(operation)) {
      throw kvError(
        403,
        "Forbidden",
        `Operation ${operation} is not permitted on this key.`,
        "KeyOperationForbidden",
      );
    }
    // Azure refuses the private-key operations of a disabled key (public ones still work).
    if (!k.enabled && (operation === "sign" || operation === "decrypt" || operation === "unwrapKey")) {
      throw kvError(
        403,
        "Forbidden",
        `Operation ${operation} is not allowed on a disabled key.`,
        "KeyDisabled",
      );
    }
  }

  async function handleKeys(
    req: IncomingMessage,
    res: ServerResponse,
    segments: string[],
    apiVersion: string | null,
  ) {
    if (!apiVersion) throw kvError(400, "BadParameter", "The api-version query parameter is required.");
    if (faults.delayMs > 0) await new Promise((resolve) => setTimeout(resolve, faults.delayMs));
    const issued = authorise(req);
    if (faults.throttle > 0) {
      faults.throttle--;
      throw kvError(
        429,
        "Throttled",
        "Request was not processed because too many requests were received. Reason: VaultRequestTypeLimitReached",
        undefined,
        { "retry-after": "1" },
      );
    }
    if (faults.serverErrors > 0) {
      faults.serverErrors--;
      throw kvError(500, "InternalServerError", "The service encountered an internal error (emulated).");
    }
    // /keys/{name}[/{version}][/{operation}]
    const [name, second, third] = segments;
    if (!name) throw kvError(400, "BadParameter", "A key name is required.");
    const ops: Record<string, KeyOperation> = { sign: "sign", wrapkey: "wrapKey", unwrapkey: "unwrapKey" };
    let version: string | undefined;
    let op: KeyOperation | undefined;
    if (req.method === "POST" && third !== undefined) {
      version = second || undefined;
      op = ops[third.toLowerCase()];
    } else if (req.method === "POST" && second !== undefined) {
      op = ops[second.toLowerCase()];
    } else if (req.method === "GET" && third === undefined) {
      version = second || undefined;
    }
    if (req.method === "GET" && third === undefined) {
      requirePermission(issued, "get");
      send(res, 200, keyBundle(name, findVersion(name, version)));
      return;
    }
    if (req.method !== "POST" || !op)
      throw kvError(
        405,
        "MethodNotAllowed",
        `emulator: ${req.method} ${segments.join("/")} is not implemented`,
      );
    const raw = await readBody(req);
    let body: { alg?: unknown; value?: unknown };
    try {
      body = JSON.parse(raw.toString("utf8")) as typeof body;
    } catch {
      throw kvError(400, "BadParameter", "The request body is not valid JSON.");
    }
    requirePermission(issued, op);
    const k = findVersion(name, version);
    requireUsable(k, op);
    const value = b64urlDecode(body.value, "value");
    const kid = kidOf(name, k.version);
    if (op === "sign") {
      const spec = typeof body.alg === "string" ? ES_ALG[body.alg] : undefined;
      if (!spec)
        throw kvError(
          400,
          "BadParameter",
          `The algorithm '${String(body.alg)}' is not supported by the emulator.`,
        );
      if (spec.curve !== k.curve)
        throw kvError(400, "BadParameter", `Key and signing algorithm are incompatible.`);
      if (value.length !== spec.digestBytes)
        throw kvError(400, "BadParameter", "Invalid length of the digest.");
      const d = Buffer.from(String(k.privateKey.export({ format: "jwk" }).d), "base64url");
      const signature = spec.sign(value, d, { prehash: false, lowS: false });
      send(res, 200, { kid, value: Buffer.from(signature).toString("base64url") });
      return;
    }
    const hash = typeof body.alg === "string" ? OAEP_HASH[body.alg] : undefined;
    if (!hash || k.curve)
      throw kvError(
        400,
        "BadParameter",
        `The algorithm '${String(body.alg)}' is not supported for this key by the emulator.`,
      );
    const params = { key: k.privateKey, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: hash };
    let result: Buffer;
    try {
      result = op === "wrapKey" ? publicEncrypt(params, value) : privateDecrypt(params, value);
    } catch {
      throw kvError(
        400,
        "BadParameter",
        op === "wrapKey"
          ? "The value is too long for this key."
          : "Unwrap failed: the ciphertext is not valid for this key.",
      );
    }
    send(res, 200, { kid, value: result.toString("base64url") });
  }

  // --- server -----------------------------------------------------------------------------

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? "/", origin());
    // The SDK encodes the parameter name (`api%2Dversion`); URLSearchParams decodes names too.
    const apiVersion = url.searchParams.get("api-version");
    const record: EmulatorRequest = {
      method: req.method ?? "",
      path: url.pathname,
      apiVersion,
      status: 0,
      hadBearerToken: /^Bearer /.test(req.headers.authorization ?? ""),
    };
    requests.push(record);
    const segments = url.pathname.split("/").slice(1).map(decodeURIComponent);
    try {
      if (segments[0] === "keys") await handleKeys(req, res, segments.slice(1), apiVersion);
      else if (segments.length >= 2 && segments[0])
        await handleEntra(req, res, segments[0], segments.slice(1).join("/"));
      else
        throw new HttpFailure(404, {
          error: { code: "NotFound", message: `emulator: nothing at ${url.pathname}` },
        });
    } catch (e) {
      if (!(e instanceof HttpFailure)) throw e;
      req.resume();
      send(res, e.status, e.body, e.headers);
    }
    record.status = res.statusCode;
  }

  async function listen(): Promise<void> {
    if (closed) throw new Error("emulator is closed");
    if (server) return;
    const s = createServer({ key: tls.keyPem, cert: tls.certPem }, (req, res) => {
      handle(req, res).catch((e: unknown) => {
        if (!res.headersSent)
          send(res, 500, { error: { code: "InternalServerError", message: `emulator bug: ${String(e)}` } });
        else res.destroy();
      });
    });
    await new Promise<void>((resolve, reject) => {
      s.once("error", reject);
      s.listen(port, "127.0.0.1", () => {
        s.off("error", reject);
        resolve();
      });
    });
    port = (s.address() as AddressInfo).port;
    server = s;
  }

  async function stop(): Promise<void> {
    const s = server;
    if (!s) return;
    server = undefined;
    const done = new Promise<void>((resolve) => s.close(() => resolve()));
    s.closeAllConnections();
    await done;
    // Let clients in this process see their connections close, as they would in any real outage,
    // rather than racing the next request onto a socket that is already gone.
    await new Promise((resolve) => setTimeout(resolve, 20));
  }

  function setEnabled(name: string, version: string | undefined, enabled: boolean): void {
    const k = findVersion(name, version);
    k.enabled = enabled;
    k.updated = Math.floor(Date.now() / 1000);
  }

  await listen();

  return {
    get vaultUrl() {
      return origin();
    },
    get authorityHost() {
      return origin();
    },
    get port() {
      return port;
    },
    tenantId,
    clientId,
    clientSecret,
    caPem: tls.caPem,
    requests,
    issuedTokens: () => [...everIssued],
    createEcKey(name, curve = "P-256", keyOps = EC_OPS) {
      const { privateKey } = generateKeyPairSync("ec", { namedCurve: NODE_CURVE[curve] });
      const jwk = createPublicKey(privateKey).export({ format: "jwk" });
      return addVersion(name, {
        keyOps,
        privateKey,
        curve,
        publicJwk: { kty: "EC-HSM", crv: curve, x: jwk.x, y: jwk.y },
      });
    },
    createRsaKey(name, bits = 2048, keyOps = RSA_OPS) {
      const { privateKey } = generateKeyPairSync("rsa", { modulusLength: bits });
      const jwk = createPublicKey(privateKey).export({ format: "jwk" });
      return addVersion(name, { keyOps, privateKey, publicJwk: { kty: "RSA-HSM", n: jwk.n, e: jwk.e } });
    },
    disableKey: (name, version) => setEnabled(name, version, false),
    enableKey: (name, version) => setEnabled(name, version, true),
    setPermissions(list) {
      permissions = new Set(list);
    },
    injectFaults(f) {
      if (f.throttle !== undefined) faults.throttle = f.throttle;
      if (f.serverErrors !== undefined) faults.serverErrors = f.serverErrors;
      if (f.delayMs !== undefined) faults.delayMs = f.delayMs;
    },
    revokeTokens(which) {
      if (which === undefined) tokens.clear();
      else for (const t of which) tokens.delete(t);
    },
    stop,
    start: listen,
    async close() {
      await stop();
      closed = true;
    },
  };
}
