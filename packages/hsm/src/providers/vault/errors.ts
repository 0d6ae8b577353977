/**
 * Turns what node-vault (axios underneath) throws into HsmErrors an operator can act on. Vault
 * reports most failures as `{"errors": [...]}` with an HTTP status; the text matters where the
 * status does not tell cases apart (a missing signing key is a 400, a retired key version a 500).
 *
 * The raw error is never attached as `cause`: axios errors carry the request config, and with it
 * the `X-Vault-Token` header, which a logger would happily serialise.
 */
import { HsmError, type HsmErrorCode, type HsmErrorMeta } from "../../errors.ts";

export type VaultOperation = "read-key" | "sign" | "encrypt" | "decrypt";

export interface VaultErrorContext {
  operation: VaultOperation;
  /** The logical Vault path of the request, e.g. `transit/sign/validator-1`. */
  path: string;
  /** `<mount>/keys/<name>`: where the key's configuration lives. */
  keyPath: string;
  keyId: string;
  address: string;
  tokenFile: string;
  attemptTimeoutMs: number;
  /** Strings to blank out of any server-provided text (the token). */
  secrets: readonly string[];
}

interface ApiFailure {
  status: number;
  errors: string[];
}

const NETWORK_CODES = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "EPIPE",
  "ENOTFOUND",
  "EAI_AGAIN",
  "EHOSTUNREACH",
  "EHOSTDOWN",
  "ENETUNREACH",
  "ENETDOWN",
  "ERR_SOCKET_CONNECTION_TIMEOUT",
]);
const TIMEOUT_CODES = new Set(["ECONNABORTED", "ETIMEDOUT", "ERR_CANCELED"]);

function apiFailure(e: unknown): ApiFailure | undefined {
  if (typeof e !== "object" || e === null || !("response" in e)) return undefined;
  const response = (e as { response: unknown }).response;
  if (typeof response !== "object" || response === null) return undefined;
  const status = (response as { statusCode?: unknown }).statusCode;
  if (typeof status !== "number") return undefined;
  const body = (response as { body?: unknown }).body;
  const raw = typeof body === "object" && body !== null ? (body as { errors?: unknown }).errors : undefined;
  const errors = Array.isArray(raw) ? raw.filter((x): x is string => typeof x === "string") : [];
  return { status, errors };
}

function errorCode(e: unknown): string | undefined {
  if (typeof e !== "object" || e === null) return undefined;
  const code = (e as { code?: unknown }).code;
  return typeof code === "string" ? code : undefined;
}

/** Server text made log-safe: secrets blanked, one line, bounded. */
export function sanitise(text: string, secrets: readonly string[]): string {
  let out = text;
  for (const s of secrets) if (s.length > 0) out = out.split(s).join("[redacted]");
  out = out.replace(/\s+/g, " ").trim();
  return out.length > 240 ? `${out.slice(0, 240)}...` : out;
}

export function vaultError(
  code: HsmErrorCode,
  ctx: Pick<VaultErrorContext, "keyId">,
  message: string,
  meta: HsmErrorMeta = {},
): HsmError {
  return new HsmError(code, `vault (key ${ctx.keyId}): ${message}`, {
    provider: "vault",
    keyId: ctx.keyId,
    ...meta,
  });
}

function capability(op: VaultOperation): string {
  return op === "read-key" ? "read" : "update";
}

/** Classifies any failure of one Vault request. */
export function mapVaultError(e: unknown, ctx: VaultErrorContext): HsmError {
  if (e instanceof HsmError) return e;
  const failure = apiFailure(e);
  if (failure !== undefined) return mapApiFailure(failure, ctx);

  const code = errorCode(e);
  const name = e instanceof Error ? e.name : "";
  if ((code !== undefined && TIMEOUT_CODES.has(code)) || name === "TimeoutError" || name === "AbortError") {
    return vaultError(
      "HSM_TIMEOUT",
      ctx,
      `no answer from ${ctx.address} within ${ctx.attemptTimeoutMs} ms (${ctx.operation} ${ctx.path}): check Vault's load and the network, or raise retry.attemptTimeoutMs`,
      { operation: ctx.operation },
    );
  }
  if (
    code !== undefined &&
    (NETWORK_CODES.has(code) || code.startsWith("ERR_TLS") || /CERT|SSL|SELF_SIGNED/.test(code))
  ) {
    const tls = !NETWORK_CODES.has(code);
    return vaultError(
      "HSM_UNREACHABLE",
      ctx,
      tls
        ? `TLS handshake with ${ctx.address} failed (${code}): check the server certificate, and trust its CA through NODE_EXTRA_CA_CERTS`
        : `cannot reach Vault at ${ctx.address} (${code}): check VAULT_ADDR, DNS, firewalls and that Vault is running`,
      { operation: ctx.operation, status: code },
    );
  }
  const text = e instanceof Error ? e.message : String(e);
  return vaultError(
    "HSM_BACKEND_ERROR",
    ctx,
    `${ctx.operation} ${ctx.path} failed: ${sanitise(text, ctx.secrets)}${code ? ` (${code})` : ""}`,
    { operation: ctx.operation, ...(code ? { status: code } : {}) },
  );
}

function mapApiFailure({ status, errors }: ApiFailure, ctx: VaultErrorContext): HsmError {
  const detail = sanitise(errors.join("; ") || "no error text", ctx.secrets);
  const meta = { status, operation: ctx.operation };
  const says = (re: RegExp) => errors.some((m) => re.test(m));
  const where = `${ctx.operation} ${ctx.path}`;

  if (status === 401 || status === 403) {
    return vaultError(
      "HSM_AUTH_FAILED",
      ctx,
      `Vault refused ${where} (HTTP ${status}: ${detail}): check that the token in ${ctx.tokenFile} is valid and unexpired and that its policy grants "${capability(ctx.operation)}" on "${ctx.path}"`,
      meta,
    );
  }
  if (status === 429) {
    return vaultError(
      "HSM_THROTTLED",
      ctx,
      `Vault rate-limited ${where} (HTTP 429: ${detail}): check the rate limit quotas on this path`,
      meta,
    );
  }
  if (says(/sealed/i)) {
    return vaultError(
      "HSM_BACKEND_ERROR",
      ctx,
      `Vault is sealed (HTTP ${status}) during ${where}: unseal it, or check its auto-unseal (seal stanza) configuration`,
      { ...meta, sealed: true },
    );
  }
  if (says(/less than the minimum encryption key version/)) {
    return vaultError(
      "HSM_KEY_DISABLED",
      ctx,
      `the key version this validator signs with has been retired (min_encryption_version was raised above it) (HTTP ${status}: ${detail}): lower min_encryption_version on ${ctx.keyPath}/config, or rotate the validator key on chain and restart`,
      meta,
    );
  }
  if (says(/higher than the latest key version|version is too new/)) {
    return vaultError(
      "HSM_KEY_NOT_FOUND",
      ctx,
      `the key version in use no longer exists in Vault (HTTP ${status}: ${detail}): was the key deleted and re-created? Restart after checking its public key`,
      meta,
    );
  }
  if (status === 404 || says(/key not found/)) {
    return vaultError(
      "HSM_KEY_NOT_FOUND",
      ctx,
      `no transit key for ${where} (HTTP ${status}: ${detail}): check VAULT_KEY_NAME, that a transit engine is mounted at VAULT_TRANSIT_MOUNT, and VAULT_NAMESPACE`,
      meta,
    );
  }
  if (ctx.operation === "decrypt" && status === 400) {
    return vaultError(
      "HSM_UNWRAP_FAILED",
      ctx,
      `Vault could not decrypt the wrapped key (${detail}): the blob was altered, or was wrapped with another key or key version`,
      meta,
    );
  }
  if (says(/does not support|not supported for key type/)) {
    return vaultError("HSM_UNSUPPORTED_KEY", ctx, `${where}: ${detail}`, meta);
  }
  if (status >= 500) {
    return vaultError(
      "HSM_BACKEND_ERROR",
      ctx,
      `Vault failed ${where} (HTTP ${status}: ${detail}): check the Vault server logs`,
      meta,
    );
  }
  if (status === 412) {
    return vaultError(
      "HSM_BACKEND_ERROR",
      ctx,
      `Vault has not caught up with the required state for ${where} (HTTP 412: ${detail})`,
      meta,
    );
  }
  return vaultError(
    "HSM_BAD_RESPONSE",
    ctx,
    `Vault rejected ${where} (HTTP ${status}: ${detail}): check the key's type and configuration`,
    meta,
  );
}
