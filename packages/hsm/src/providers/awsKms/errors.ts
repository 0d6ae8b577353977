/**
 * AWS KMS failures (service errors by `name`, HTTP status, Node socket errors, aborts) as HsmErrors.
 * Messages name the provider, the key and what to check. They never carry the secret access key,
 * the session token or a request signature: the backend's own message is scrubbed of all three
 * before it is quoted, and the SDK error is not attached as `cause` (it holds the raw response).
 */
import { HsmError, type HsmErrorCode, type HsmErrorMeta } from "../../errors.ts";

export const PROVIDER = "aws-kms" as const;

/** Where a call went and what it was for: enough for an operator to act on the error. */
export interface KmsCallContext {
  /** The configured key id, ARN or alias. */
  keyId: string;
  /** The key ARN KMS resolved it to, once known. */
  keyArn?: string;
  /** The KMS operation, e.g. "Sign". */
  operation: string;
  region: string;
  endpoint?: string;
  /** Strings that must never appear in a message (secret access key, session token). */
  secrets: readonly string[];
  /** The per-attempt deadline, for timeout messages. */
  attemptTimeoutMs: number;
}

const AUTH = new Set([
  "UnrecognizedClientException",
  "InvalidSignatureException",
  "IncompleteSignatureException",
  "MissingAuthenticationTokenException",
  "MissingAuthenticationToken",
  "AccessDeniedException",
  "InvalidClientTokenId",
  "ExpiredTokenException",
  "ExpiredToken",
  "RequestExpired",
  "SignatureDoesNotMatch",
  "NotAuthorized",
  "CredentialsProviderError",
]);
const NOT_FOUND = new Set(["NotFoundException", "InvalidArnException"]);
const DISABLED = new Set(["DisabledException", "KMSInvalidStateException"]);
const THROTTLED = new Set([
  "ThrottlingException",
  "Throttling",
  "TooManyRequestsException",
  "RequestLimitExceeded",
  "LimitExceededException",
]);
const BACKEND = new Set([
  "KMSInternalException",
  "DependencyTimeoutException",
  "KeyUnavailableException",
  "InternalFailure",
  "InternalServerError",
  "ServiceUnavailable",
  "ServiceUnavailableException",
]);
const UNSUPPORTED = new Set(["InvalidKeyUsageException", "UnsupportedOperationException"]);
const UNWRAP = new Set(["InvalidCiphertextException", "IncorrectKeyException"]);
/** The request itself was malformed, or the endpoint is not KMS. */
const CONFIG = new Set(["ValidationException", "UnknownOperationException", "SerializationException"]);

const UNREACHABLE_CODES = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "ENOTFOUND",
  "EAI_AGAIN",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "ENETDOWN",
  "EPIPE",
  "ECONNABORTED",
  "EPROTO",
  "UND_ERR_SOCKET",
  "CERT_HAS_EXPIRED",
  "DEPTH_ZERO_SELF_SIGNED_CERT",
  "SELF_SIGNED_CERT_IN_CHAIN",
  "UNABLE_TO_VERIFY_LEAF_SIGNATURE",
  "ERR_TLS_CERT_ALTNAME_INVALID",
]);
const TIMEOUT_CODES = new Set(["ETIMEDOUT", "ESOCKETTIMEDOUT", "UND_ERR_CONNECT_TIMEOUT"]);

interface SdkErrorShape {
  name?: unknown;
  message?: unknown;
  code?: unknown;
  cause?: unknown;
  $metadata?: { httpStatusCode?: unknown; requestId?: unknown };
}

function field(e: unknown): SdkErrorShape {
  return typeof e === "object" && e !== null ? (e as SdkErrorShape) : {};
}

function networkCode(e: unknown): string | undefined {
  for (let cur: unknown = e, depth = 0; cur !== undefined && depth < 4; cur = field(cur).cause, depth++) {
    const code = field(cur).code;
    if (typeof code === "string") return code;
  }
  return undefined;
}

/** Removes the known secrets and anything shaped like SigV4 material from a backend message. */
export function scrub(text: string, secrets: readonly string[]): string {
  let out = text;
  for (const s of secrets) if (s.length >= 4) out = out.split(s).join("[redacted]");
  out = out
    .replace(/Signature=[0-9a-fA-F]+/g, "Signature=[redacted]")
    .replace(/X-Amz-Security-Token=[^&\s]+/gi, "X-Amz-Security-Token=[redacted]")
    .replace(/X-Amz-Signature=[^&\s]+/gi, "X-Amz-Signature=[redacted]");
  return out.length > 300 ? `${out.slice(0, 300)}...` : out;
}

function keyLabel(ctx: Pick<KmsCallContext, "keyId" | "keyArn">): string {
  return ctx.keyArn !== undefined && ctx.keyArn !== ctx.keyId ? `${ctx.keyId} (${ctx.keyArn})` : ctx.keyId;
}

/** An HsmError for this provider, with the standard meta. */
export function kmsHsmError(
  code: HsmErrorCode,
  ctx: Pick<KmsCallContext, "keyId" | "keyArn">,
  message: string,
  meta: HsmErrorMeta = {},
): HsmError {
  const base: HsmErrorMeta = { provider: PROVIDER, keyId: ctx.keyId };
  if (ctx.keyArn !== undefined) base.keyArn = ctx.keyArn;
  return new HsmError(code, `aws-kms key ${keyLabel(ctx)}: ${message}`, {
    ...base,
    ...meta,
  });
}

/**
 * Classifies anything a KMS call threw. `signal` is the attempt's AbortSignal: when it fired, the
 * failure is a timeout whatever the SDK called it.
 */
export function toHsmError(e: unknown, ctx: KmsCallContext, signal?: AbortSignal): HsmError {
  if (e instanceof HsmError) return e;
  const f = field(e);
  const name = typeof f.name === "string" ? f.name : "Error";
  const rawMessage = typeof f.message === "string" ? f.message : "";
  const said = rawMessage === "" ? "" : `: ${scrub(rawMessage, ctx.secrets)}`;
  const status = typeof f.$metadata?.httpStatusCode === "number" ? f.$metadata.httpStatusCode : undefined;
  const requestId = typeof f.$metadata?.requestId === "string" ? f.$metadata.requestId : undefined;
  const code = networkCode(e);
  const op = ctx.operation;
  const meta: HsmErrorMeta = { operation: op, awsError: name };
  if (status !== undefined) meta.status = status;
  if (requestId !== undefined) meta.requestId = requestId;
  if (code !== undefined) meta.errno = code;
  const fail = (c: HsmErrorCode, message: string) => kmsHsmError(c, ctx, message, meta);
  const where = ctx.endpoint ?? `the KMS endpoint of region ${ctx.region}`;

  if (
    signal?.aborted ||
    name === "AbortError" ||
    name === "TimeoutError" ||
    (code !== undefined && TIMEOUT_CODES.has(code))
  ) {
    return fail(
      "HSM_TIMEOUT",
      `${op}: no answer from ${where} within ${ctx.attemptTimeoutMs} ms (check network latency and KMS health)`,
    );
  }
  if (AUTH.has(name)) {
    const hint =
      name === "AccessDeniedException"
        ? `the IAM principal may not call kms:${op} on this key: check the key policy and the IAM policy`
        : name === "CredentialsProviderError"
          ? "no AWS credentials were found: check the standard AWS credential chain (environment, profile, instance or pod role)"
          : "check the AWS access key id, secret access key and session token, and that the system clock is correct";
    return fail("HSM_AUTH_FAILED", `${op} was refused by KMS (${name}${said}); ${hint}`);
  }
  if (NOT_FOUND.has(name)) {
    return fail(
      "HSM_KEY_NOT_FOUND",
      `${op}: KMS has no such key in region ${ctx.region} (${name}${said}); check AWS_KMS_KEY_ID (key id, key ARN or alias) and AWS_REGION`,
    );
  }
  if (DISABLED.has(name)) {
    return fail(
      "HSM_KEY_DISABLED",
      `${op}: the key is disabled or not usable (${name}${said}); enable it (kms:EnableKey) or cancel its scheduled deletion`,
    );
  }
  if (THROTTLED.has(name) || status === 429) {
    return fail(
      "HSM_THROTTLED",
      `${op} was throttled by KMS (${name}); check the KMS request quota of the account and region`,
    );
  }
  if (BACKEND.has(name) || (status !== undefined && status >= 500)) {
    return fail(
      "HSM_BACKEND_ERROR",
      `${op} failed inside KMS (${name}${status !== undefined ? `, HTTP ${status}` : ""}); retry later or check the AWS Health Dashboard`,
    );
  }
  if (UNSUPPORTED.has(name)) {
    return fail(
      "HSM_UNSUPPORTED_KEY",
      `${op}: the key cannot be used for this (${name}${said}); signing needs an asymmetric SIGN_VERIFY key (ECC_NIST_EDWARDS25519 or ECC_NIST_P256), wrapping a SYMMETRIC_DEFAULT ENCRYPT_DECRYPT key`,
    );
  }
  if (UNWRAP.has(name)) {
    return fail(
      "HSM_UNWRAP_FAILED",
      `${op}: KMS could not decrypt the wrapped key (${name}${said}); the blob is corrupted, or was wrapped with another key or encryption context`,
    );
  }
  if (CONFIG.has(name)) {
    return fail(
      "HSM_INVALID_CONFIG",
      `${op} was rejected as malformed (${name}${said}); check the key id and that AWS_KMS_ENDPOINT points at KMS`,
    );
  }
  if (
    code !== undefined &&
    (UNREACHABLE_CODES.has(code) || code.startsWith("ERR_SSL") || code.startsWith("ERR_TLS"))
  ) {
    return fail(
      "HSM_UNREACHABLE",
      `${op}: cannot reach ${where} (${code}); check the network, DNS, proxy or VPC endpoint, and AWS_KMS_ENDPOINT`,
    );
  }
  if (status !== undefined) {
    return fail(
      "HSM_BAD_RESPONSE",
      `${op}: unexpected answer from ${where} (${name}, HTTP ${status}); check that it is a KMS endpoint`,
    );
  }
  return fail("HSM_BAD_RESPONSE", `${op}: unexpected failure talking to ${where} (${name}${said})`);
}
