/**
 * Azure SDK failures (RestError from the vault, identity errors from Microsoft Entra, transport
 * errors, aborts) as HsmErrors. Messages name the provider, the key and what to check; they
 * carry the service's error code and message but never a client secret or an access token.
 */
import { HsmError, type HsmErrorCode } from "../../errors.ts";

export type AzureOperation = "get" | "sign" | "wrapKey" | "unwrapKey";

export interface AzureErrorContext {
  keyId: string;
  operation: AzureOperation;
  /** The attempt's signal: if it fired, the failure is a timeout whatever the SDK threw. */
  signal?: AbortSignal;
  attemptTimeoutMs?: number;
  /** Values that must never appear in a message (the client secret). */
  redact?: readonly string[];
}

const NETWORK_CODES = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "ECONNABORTED",
  "EPIPE",
  "ENOTFOUND",
  "EAI_AGAIN",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "ETIMEDOUT",
  "UND_ERR_SOCKET",
  "REQUEST_SEND_ERROR",
]);
const TLS_CODES = new Set([
  "UNABLE_TO_VERIFY_LEAF_SIGNATURE",
  "UNABLE_TO_GET_ISSUER_CERT_LOCALLY",
  "SELF_SIGNED_CERT_IN_CHAIN",
  "DEPTH_ZERO_SELF_SIGNED_CERT",
  "CERT_HAS_EXPIRED",
  "CERT_NOT_YET_VALID",
  "ERR_TLS_CERT_ALTNAME_INVALID",
]);
const IDENTITY_ERRORS = new Set([
  "AuthenticationError",
  "AuthenticationRequiredError",
  "AggregateAuthenticationError",
  "CredentialUnavailableError",
]);

const PERMISSION: Record<AzureOperation, string> = {
  get: "keys/get (Microsoft.KeyVault/vaults/keys/read)",
  sign: "keys/sign (Microsoft.KeyVault/vaults/keys/sign/action)",
  wrapKey: "keys/wrapKey (Microsoft.KeyVault/vaults/keys/wrap/action)",
  unwrapKey: "keys/unwrapKey (Microsoft.KeyVault/vaults/keys/unwrap/action)",
};

interface ErrorShape {
  name?: string;
  message?: string;
  code?: string;
  statusCode?: number;
  cause?: unknown;
  errors?: unknown[];
  details?: { error?: { code?: string; message?: string; innerError?: { code?: string } } };
}

function shape(e: unknown): ErrorShape {
  return typeof e === "object" && e !== null ? (e as ErrorShape) : { message: String(e) };
}

/** The error and its causes (identity and MSAL wrap transport errors), outermost first. */
function chain(e: unknown): ErrorShape[] {
  const out: ErrorShape[] = [];
  const queue: unknown[] = [e];
  while (queue.length > 0 && out.length < 8) {
    const next = queue.shift();
    if (next === undefined || next === null) continue;
    const s = shape(next);
    out.push(s);
    queue.push(s.cause, ...(Array.isArray(s.errors) ? s.errors : []));
  }
  return out;
}

/** Log-safe text: secrets and bearer tokens removed, whitespace collapsed. */
export function redact(text: string, secrets: readonly string[] = []): string {
  let out = text.replace(/Bearer\s+[A-Za-z0-9._~+/=-]+/gi, "Bearer [redacted]");
  for (const s of secrets) if (s.length >= 4) out = out.split(s).join("[redacted]");
  return out.replace(/\s+/g, " ").trim();
}

/** A service's own message, bounded so that one error stays one readable log line. */
function clip(text: string | undefined, max = 240): string {
  const t = (text ?? "").replace(/\s+/g, " ").trim();
  return t.length > max ? `${t.slice(0, max - 3)}...` : t;
}

function transportCode(links: ErrorShape[]): string | undefined {
  for (const l of links) {
    if (l.code && (NETWORK_CODES.has(l.code) || TLS_CODES.has(l.code))) return l.code;
    const m =
      /\b(ECONNREFUSED|ECONNRESET|ENOTFOUND|EAI_AGAIN|EHOSTUNREACH|ENETUNREACH|ETIMEDOUT|EPIPE)\b/.exec(
        l.message ?? "",
      );
    if (m) return m[1];
    if (/socket hang up/i.test(l.message ?? "")) return "ECONNRESET";
  }
  return undefined;
}

/** `invalid_client (AADSTS7000215: Invalid client secret provided.)`: the useful part of an Entra error. */
function entraReason(message: string): string {
  const oauth =
    /\b(invalid_client|unauthorized_client|invalid_request|invalid_grant|invalid_scope|invalid_resource|unsupported_grant_type|access_denied)\b/.exec(
      message,
    )?.[1];
  const aadsts = /AADSTS\d+:[^.]*\./.exec(message)?.[0];
  return [oauth, aadsts && `(${aadsts})`].filter(Boolean).join(" ") || "the credential could not get a token";
}

export function toHsmError(e: unknown, ctx: AzureErrorContext): HsmError {
  if (e instanceof HsmError) return e;
  const links = chain(e);
  const top = links[0] ?? {};
  const meta = { provider: "azure-keyvault" as const, keyId: ctx.keyId, operation: ctx.operation };
  // The SDK's own error is not kept as the cause: its request object holds the Authorization
  // header, and a structured logger would serialise it. A redacted summary is kept instead.
  // Secrets are removed before clipping, so that a clipped secret cannot survive as a prefix.
  const serviceText = (text: string | undefined, max?: number) => clip(redact(text ?? "", ctx.redact), max);
  const cause = new Error(`${top.name ?? "Error"}: ${serviceText(top.message ?? String(e), 1000)}`);
  const fail = (code: HsmErrorCode, what: string, status?: number) =>
    new HsmError(
      code,
      `azure-keyvault: ${ctx.operation} on ${ctx.keyId} failed: ${redact(what, ctx.redact)}`,
      status === undefined ? meta : { ...meta, status },
      {
        cause,
      },
    );

  if (ctx.signal?.aborted || top.name === "AbortError") {
    return fail(
      "HSM_TIMEOUT",
      `no answer within ${ctx.attemptTimeoutMs ?? "the attempt timeout"} ms; check the network path to the vault and Microsoft Entra`,
    );
  }

  const transport = transportCode(links);
  if (transport && TLS_CODES.has(transport)) {
    return fail(
      "HSM_UNREACHABLE",
      `TLS certificate of the vault or authority not trusted (${transport}); check the URL, and that its CA is a public one or listed in NODE_EXTRA_CA_CERTS`,
    );
  }

  if (top.name && IDENTITY_ERRORS.has(top.name)) {
    if (transport) {
      return fail(
        "HSM_UNREACHABLE",
        `Microsoft Entra authority not reachable (${transport}); check authorityHost and the network path`,
      );
    }
    const said = top.message ?? "";
    if (/endpoints_resolution_error/.test(said)) {
      // MSAL could not read the tenant's OpenID metadata: the authority is down or the tenant unknown.
      return fail(
        "HSM_UNREACHABLE",
        "could not fetch the Microsoft Entra metadata of the tenant (authority unreachable, or unknown tenant); check authorityHost, AZURE_TENANT_ID and the network path",
      );
    }
    const otherTenant = /not configured to acquire tokens for tenant (\S+?)\.?\s/.exec(said)?.[1];
    if (otherTenant) {
      return fail(
        "HSM_AUTH_FAILED",
        `the vault belongs to tenant ${otherTenant}, the credential to another; check AZURE_TENANT_ID`,
      );
    }
    if (top.name === "CredentialUnavailableError") {
      return fail(
        "HSM_AUTH_FAILED",
        `no Azure credential available (${serviceText(said)}); configure tenantId, clientId and clientSecretFile, or a managed / workload identity`,
      );
    }
    return fail(
      "HSM_AUTH_FAILED",
      `Microsoft Entra refused the credential: ${entraReason(redact(top.message ?? "", ctx.redact))}; check AZURE_TENANT_ID, AZURE_CLIENT_ID and the secret in AZURE_CLIENT_SECRET_FILE (not expired, the secret value and not its id)`,
    );
  }

  if (top.name === "RestError" && top.statusCode !== undefined) {
    const status = top.statusCode;
    const serviceCode = top.details?.error?.code ?? top.code ?? "";
    const inner = top.details?.error?.innerError?.code ?? "";
    const said = `${status} ${serviceCode}${inner ? `/${inner}` : ""}: ${serviceText(top.message)}`;
    if (/disabled key/i.test(top.message ?? "") || inner === "KeyDisabled") {
      return fail(
        "HSM_KEY_DISABLED",
        `key is disabled (${said}); enable it in Key Vault if this is not a deliberate revocation`,
        status,
      );
    }
    if (status === 401) {
      return fail(
        "HSM_AUTH_FAILED",
        `the vault rejected the access token (${said}); check that the identity belongs to the vault's tenant`,
        status,
      );
    }
    if (status === 403) {
      return fail(
        "HSM_AUTH_FAILED",
        `permission denied (${said}); grant the identity ${PERMISSION[ctx.operation]} on this vault (RBAC role or access policy), and check the vault firewall`,
        status,
      );
    }
    if (status === 404) {
      return fail(
        "HSM_KEY_NOT_FOUND",
        `key not found (${said}); check vaultUrl, keyName and keyVersion`,
        status,
      );
    }
    if (status === 429) return fail("HSM_THROTTLED", `throttled by the vault (${said})`, status);
    if (status >= 500) return fail("HSM_BACKEND_ERROR", `the vault failed (${said})`, status);
    return fail("HSM_BAD_RESPONSE", `the vault refused the request (${said})`, status);
  }

  if (transport)
    return fail("HSM_UNREACHABLE", `vault not reachable (${transport}); check vaultUrl and the network path`);

  const message = serviceText(top.message ?? String(e));
  if (/Operation \w+ is not supported on key/.test(message)) {
    return fail("HSM_UNSUPPORTED_KEY", `${message}; the key's key_ops must include ${ctx.operation}`);
  }
  if (/expired at|can't be used before/.test(message)) {
    return fail("HSM_KEY_DISABLED", `${message}; check the key's activation and expiry dates`);
  }
  if (/challenge resource .* does not match/.test(message)) {
    return fail(
      "HSM_INVALID_CONFIG",
      `the vault's authentication challenge names another domain; check vaultUrl (${message})`,
    );
  }
  return fail("HSM_BAD_RESPONSE", `unexpected ${top.name ?? "error"} from the Azure SDK: ${message}`);
}

/** Runs one SDK call, turning what it throws into an HsmError with context. */
export async function azureCall<T>(ctx: AzureErrorContext, call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (e) {
    throw toHsmError(e, ctx);
  }
}
