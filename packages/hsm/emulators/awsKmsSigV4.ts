/**
 * SigV4 verification for the AWS KMS emulator, as KMS does it: the signature is recomputed with
 * @smithy/signature-v4 from the known secret over exactly the headers the client says it signed, the
 * payload hash is taken from the body actually received, and the request time must be within five
 * minutes. Failures carry the error types and messages AWS returns.
 */
import { createHash, timingSafeEqual } from "node:crypto";
import type { IncomingHttpHeaders } from "node:http";
import { Sha256 } from "@aws-crypto/sha256-js";
import { HttpRequest } from "@smithy/protocol-http";
import { SignatureV4 } from "@smithy/signature-v4";

export interface EmulatorCredentials {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string;
}

export interface SigV4Failure {
  type: string;
  message: string;
}

export interface SigV4Request {
  method: string;
  /** Path and query as received, e.g. "/". */
  url: string;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

const MAX_SKEW_MS = 5 * 60 * 1000;
const AUTH_PATTERN =
  /^AWS4-HMAC-SHA256 Credential=([^/,\s]+)\/(\d{8})\/([^/,\s]+)\/([^/,\s]+)\/aws4_request,\s*SignedHeaders=([a-z0-9\-;]+),\s*Signature=([0-9a-f]{64})$/;

function header(headers: IncomingHttpHeaders, name: string): string | undefined {
  const v = headers[name];
  return Array.isArray(v) ? v.join(",") : v;
}

function parseAmzDate(s: string): Date | undefined {
  const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(s);
  if (m === null) return undefined;
  const [, y, mo, d, h, mi, se] = m.map(Number) as [number, number, number, number, number, number, number];
  const date = new Date(Date.UTC(y, mo - 1, d, h, mi, se));
  return Number.isNaN(date.getTime()) ? undefined : date;
}

const invalidSignature: SigV4Failure = {
  type: "InvalidSignatureException",
  message:
    "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.",
};
const invalidToken: SigV4Failure = {
  type: "UnrecognizedClientException",
  message: "The security token included in the request is invalid.",
};

/** Returns undefined when the request is authentic, else the error KMS would answer (HTTP 400). */
export async function verifySigV4(
  req: SigV4Request,
  known: readonly EmulatorCredentials[],
  region: string,
  now: Date = new Date(),
): Promise<SigV4Failure | undefined> {
  const authorization = header(req.headers, "authorization");
  if (authorization === undefined)
    return { type: "MissingAuthenticationTokenException", message: "Missing Authentication Token" };
  const m = AUTH_PATTERN.exec(authorization.trim());
  if (m === null) {
    return {
      type: "IncompleteSignatureException",
      message: `Authorization header requires 'Credential', 'Signature' and 'SignedHeaders' parameters. Authorization=${authorization.split(" ")[0]}`,
    };
  }
  const [, accessKeyId, scopeDate, scopeRegion, scopeService, signedList, signature] = m as unknown as [
    string,
    string,
    string,
    string,
    string,
    string,
    string,
  ];
  const creds = known.find((c) => c.accessKeyId === accessKeyId);
  if (creds === undefined) return invalidToken;
  if (scopeService !== "kms")
    return {
      type: "InvalidSignatureException",
      message: "Credential should be scoped to correct service: 'kms'.",
    };
  if (scopeRegion !== region) {
    return { type: "InvalidSignatureException", message: `Credential should be scoped to a valid region. ` };
  }
  const signed = signedList.split(";");
  if (!signed.includes("host") || !signed.includes("x-amz-date")) {
    return { type: "InvalidSignatureException", message: "'Host' and 'X-Amz-Date' must be signed headers." };
  }
  const amzDate = header(req.headers, "x-amz-date");
  const signingDate = amzDate === undefined ? undefined : parseAmzDate(amzDate);
  if (amzDate === undefined || signingDate === undefined) {
    return {
      type: "IncompleteSignatureException",
      message: "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header.",
    };
  }
  if (amzDate.slice(0, 8) !== scopeDate) return invalidSignature;
  if (Math.abs(now.getTime() - signingDate.getTime()) > MAX_SKEW_MS) {
    return {
      type: "InvalidSignatureException",
      message: `Signature expired: ${amzDate} is now earlier or later than the allowed five minutes around the server time.`,
    };
  }
  const token = header(req.headers, "x-amz-security-token");
  if (creds.sessionToken !== undefined || token !== undefined) {
    if (token !== creds.sessionToken || !signed.includes("x-amz-security-token")) return invalidToken;
  }
  // KMS hashes the body it received: a declared hash that differs is a signature mismatch.
  const bodyHash = createHash("sha256").update(req.body).digest("hex");
  const declaredHash = header(req.headers, "x-amz-content-sha256");
  if (declaredHash !== undefined && declaredHash !== bodyHash) return invalidSignature;

  const headers: Record<string, string> = {};
  for (const name of signed) {
    const value = header(req.headers, name);
    if (value === undefined) return invalidSignature;
    headers[name] = value;
  }
  const [path = "/", query = ""] = req.url.split("?", 2);
  const request = new HttpRequest({
    method: req.method,
    protocol: "http:",
    hostname: "localhost",
    path,
    query: Object.fromEntries(new URLSearchParams(query)),
    headers,
    body: req.body,
  });
  const signer = new SignatureV4({
    credentials: {
      accessKeyId,
      secretAccessKey: creds.secretAccessKey,
      ...(token !== undefined ? { sessionToken: token } : {}),
    },
    region: scopeRegion,
    service: scopeService,
    sha256: Sha256,
    applyChecksum: false,
  });
  const expected = await signer.sign(request, { signingDate, signableHeaders: new Set(signed) });
  const expectedAuth = String(expected.headers.authorization ?? "");
  const expectedSignature = /Signature=([0-9a-f]{64})$/.exec(expectedAuth)?.[1] ?? "";
  const expectedList = /SignedHeaders=([^,]+),/.exec(expectedAuth)?.[1] ?? "";
  if (expectedList !== signedList) return invalidSignature;
  const a = Buffer.from(expectedSignature, "hex");
  const b = Buffer.from(signature, "hex");
  return a.length === b.length && timingSafeEqual(a, b) ? undefined : invalidSignature;
}
