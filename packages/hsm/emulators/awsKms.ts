/**
 * An AWS KMS emulator for tests: an HTTP server on loopback that speaks the KMS wire protocol
 * (POST /, `X-Amz-Target: TrentService.<Operation>`, `application/x-amz-json-1.1`, base64 binary
 * fields, `{"__type", "message"}` errors), verifies every request's SigV4 signature against the
 * one credential pair it knows, and signs, encrypts and decrypts with real keys. It is an emulator,
 * not AWS: only the operations the key provider uses (and a few to set keys up) exist.
 */
import { randomBytes, randomUUID } from "node:crypto";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { type EmulatorKeySpec, KmsEmulatorError, KmsKeyStore } from "./awsKmsKeys.ts";
import { type EmulatorCredentials, verifySigV4 } from "./awsKmsSigV4.ts";

export type { EmulatorKeySpec } from "./awsKmsKeys.ts";
export type { EmulatorCredentials } from "./awsKmsSigV4.ts";

export interface AwsKmsEmulatorOptions {
  /** Default "us-east-1". Requests must be signed for this region and the "kms" service. */
  region?: string;
  /** Default "111122223333". */
  accountId?: string;
  /** Default 0 (any free port); `start()` after `stop()` reuses the port first bound. */
  port?: number;
  /** The only credentials accepted; default: a fresh random pair. */
  credentials?: EmulatorCredentials;
  /** With the default credentials: also issue a session token, as a role would. */
  withSessionToken?: boolean;
}

export interface AwsKmsFaults {
  /** The next N requests are answered 400 ThrottlingException. */
  throttle?: number;
  /** The next N requests are answered 500 KMSInternalException. */
  serverErrors?: number;
  /** Every request waits this long before it is handled (0 to stop). */
  delayMs?: number;
}

export interface EmulatorRequestRecord {
  operation: string;
  status: number;
  errorType?: string;
}

export interface EmulatedKeyRef {
  keyId: string;
  arn: string;
}

export interface AwsKmsEmulator {
  /** e.g. "http://127.0.0.1:41234": the `endpoint` of the provider config. */
  readonly endpoint: string;
  readonly region: string;
  readonly accountId: string;
  readonly credentials: EmulatorCredentials;
  createKey(spec: EmulatorKeySpec, description?: string): EmulatedKeyRef;
  /** Creates or retargets an alias ("alias/name"). */
  setAlias(aliasName: string, keyId: string): void;
  disableKey(keyId: string): void;
  enableKey(keyId: string): void;
  /** The key answers KMSInvalidStateException until enabled again. */
  scheduleKeyDeletion(keyId: string): void;
  /** Sets the given counters (absent fields are left as they are). */
  injectFaults(faults: AwsKmsFaults): void;
  /** Requests seen since start or the last `clearRequests()`, oldest first. */
  requests(): readonly EmulatorRequestRecord[];
  clearRequests(): void;
  /** Resolves once no request is being handled (stragglers of a timed-out attempt included). */
  idle(): Promise<void>;
  /** Closes the listener and every open connection: clients see connection refused. */
  stop(): Promise<void>;
  /** Listens again on the same port. */
  start(): Promise<void>;
  close(): Promise<void>;
}

const JSON_11 = "application/x-amz-json-1.1";
const MAX_BODY_BYTES = 1024 * 1024;
const MAX_RECORDS = 10_000;

function defaultCredentials(withSessionToken: boolean): EmulatorCredentials {
  const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
  const accessKeyId = `AKIA${Array.from(randomBytes(16), (b) => alphabet[b % 32]).join("")}`;
  const creds: EmulatorCredentials = { accessKeyId, secretAccessKey: randomBytes(30).toString("base64") };
  if (withSessionToken) creds.sessionToken = randomBytes(96).toString("base64");
  return creds;
}

function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on("data", (c: Buffer) => {
      size += c.length;
      if (size > MAX_BODY_BYTES) req.destroy(new Error("request body too large"));
      else chunks.push(c);
    });
    req.on("end", () => resolve(Buffer.concat(chunks)));
    req.on("error", reject);
  });
}

export async function startAwsKmsEmulator(opts: AwsKmsEmulatorOptions = {}): Promise<AwsKmsEmulator> {
  const region = opts.region ?? "us-east-1";
  const accountId = opts.accountId ?? "111122223333";
  const credentials = opts.credentials ?? defaultCredentials(opts.withSessionToken ?? false);
  const store = new KmsKeyStore(region, accountId);
  const faults = { throttle: 0, serverErrors: 0, delayMs: 0 };
  let records: EmulatorRequestRecord[] = [];

  const send = (
    res: ServerResponse,
    operation: string,
    status: number,
    body: unknown,
    errorType?: string,
  ) => {
    records.push(errorType === undefined ? { operation, status } : { operation, status, errorType });
    if (records.length > MAX_RECORDS) records = records.slice(-MAX_RECORDS / 2);
    if (res.destroyed) return; // the client gave up (its attempt timed out)
    const text = JSON.stringify(body);
    res.writeHead(status, {
      "Content-Type": JSON_11,
      "Content-Length": Buffer.byteLength(text),
      "x-amzn-RequestId": randomUUID(),
    });
    res.end(text);
  };
  const fail = (res: ServerResponse, operation: string, e: KmsEmulatorError) =>
    send(res, operation, e.status, { __type: e.type, message: e.message }, e.type);

  let inFlight = 0;
  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    inFlight++;
    try {
      await handleRequest(req, res);
    } finally {
      inFlight--;
    }
  };
  const handleRequest = async (req: IncomingMessage, res: ServerResponse) => {
    const body = await readBody(req);
    const target = req.headers["x-amz-target"];
    const operation =
      typeof target === "string" && target.startsWith("TrentService.")
        ? target.slice("TrentService.".length)
        : "";
    if (faults.delayMs > 0) await new Promise((r) => setTimeout(r, faults.delayMs));
    const authFailure = await verifySigV4(
      { method: req.method ?? "", url: req.url ?? "/", headers: req.headers, body },
      [credentials],
      region,
    );
    if (authFailure !== undefined)
      return fail(res, operation, new KmsEmulatorError(authFailure.type, authFailure.message));
    if (faults.throttle > 0) {
      faults.throttle--;
      return fail(res, operation, new KmsEmulatorError("ThrottlingException", "Rate exceeded"));
    }
    if (faults.serverErrors > 0) {
      faults.serverErrors--;
      return fail(
        res,
        operation,
        new KmsEmulatorError("KMSInternalException", "An internal error has occurred.", 500),
      );
    }
    if (req.method !== "POST" || req.url !== "/" || operation === "") {
      return fail(res, operation, new KmsEmulatorError("UnknownOperationException", ""));
    }
    if (!String(req.headers["content-type"] ?? "").startsWith(JSON_11)) {
      return fail(
        res,
        operation,
        new KmsEmulatorError("SerializationException", `Content-Type must be ${JSON_11}`),
      );
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(body.length === 0 ? "{}" : body.toString("utf8"));
    } catch {
      return fail(
        res,
        operation,
        new KmsEmulatorError("SerializationException", "Start of structure or map found where not expected."),
      );
    }
    if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
      return fail(res, operation, new KmsEmulatorError("SerializationException", "Expected a JSON object."));
    }
    send(res, operation, 200, store.handle(operation, parsed as Record<string, unknown>));
  };

  const server: Server = createServer((req, res) => {
    handle(req, res).catch((e: unknown) => {
      const err =
        e instanceof KmsEmulatorError
          ? e
          : new KmsEmulatorError("KMSInternalException", "An internal error has occurred.", 500);
      const operation = String(req.headers["x-amz-target"] ?? "").replace(/^TrentService\./, "");
      if (!res.headersSent) fail(res, operation, err);
    });
  });
  server.keepAliveTimeout = 5_000;

  let port = opts.port ?? 0;
  let listening = false;
  const listen = () =>
    new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(port, "127.0.0.1", () => {
        server.off("error", reject);
        port = (server.address() as AddressInfo).port;
        listening = true;
        resolve();
      });
    });
  const stop = () =>
    new Promise<void>((resolve) => {
      if (!listening) return resolve();
      listening = false;
      server.close(() => resolve());
      server.closeAllConnections();
    });
  await listen();

  const ref = (keyId: string): EmulatedKeyRef => {
    const k = store.resolve(keyId);
    return { keyId: k.id, arn: k.arn };
  };

  return {
    endpoint: `http://127.0.0.1:${port}`,
    region,
    accountId,
    credentials,
    createKey: (spec, description) => ref(store.createKey(spec, description).id),
    setAlias: (aliasName, keyId) => store.setAlias(aliasName, keyId),
    disableKey: (keyId) => store.setState(keyId, "Disabled"),
    enableKey: (keyId) => store.setState(keyId, "Enabled"),
    scheduleKeyDeletion: (keyId) => store.setState(keyId, "PendingDeletion"),
    injectFaults: (f) => {
      if (f.throttle !== undefined) faults.throttle = f.throttle;
      if (f.serverErrors !== undefined) faults.serverErrors = f.serverErrors;
      if (f.delayMs !== undefined) faults.delayMs = f.delayMs;
    },
    requests: () => records.slice(),
    idle: async () => {
      while (inFlight > 0) await new Promise((r) => setTimeout(r, 5));
    },
    clearRequests: () => {
      records = [];
    },
    stop,
    start: async () => {
      if (!listening) await listen();
    },
    close: stop,
  };
}
