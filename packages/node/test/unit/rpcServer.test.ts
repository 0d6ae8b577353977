import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { request as httpsRequest } from "node:https";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable, Writable } from "node:stream";
import { gunzipSync, gzipSync } from "node:zlib";
import { pino } from "pino";
import { afterEach, describe, expect, it } from "vitest";
import { z } from "zod";
import {
  createRpcServer,
  defineMethod,
  type RestRoute,
  RpcError,
  type RpcMethod,
  RpcServerError,
  type RpcServerOptions,
} from "../../src/rpc/index.ts";

const ADMIN_TOKEN = "admin-token-7f3a9c2e5b1d4f60";
const SECRET = "secret-internal-detail-d41d8cd9";
const PATIENT = "patient-mrn-0042";

const dir = mkdtempSync(join(tmpdir(), "rpc-server-"));
const tokenFile = join(dir, "admin.token");
writeFileSync(tokenFile, `${ADMIN_TOKEN}\n`, { mode: 0o600 });

const calls: string[] = [];
const aborted: string[] = [];

const methods: Record<string, RpcMethod> = {
  echo: defineMethod({
    params: z.tuple([z.string(), z.number().optional()]),
    handler: ([text, n]) => ({ text, n: n ?? null }),
  }),
  add: defineMethod({
    params: z.tuple([z.number(), z.number()]),
    handler: ([a, b]) => a + b,
  }),
  note: defineMethod({
    params: z.tuple([z.string()]),
    handler: ([text]) => {
      calls.push(text);
    },
  }),
  refuse: defineMethod({
    params: z.tuple([]),
    handler: () => {
      throw new RpcError(-32000, "nonce too low", { expected: "0x1" });
    },
  }),
  boom: defineMethod({
    params: z.array(z.unknown()),
    handler: () => {
      throw new Error(SECRET);
    },
  }),
  slow: defineMethod({
    params: z.tuple([z.string()]),
    handler: ([tag], { signal }) =>
      new Promise((resolve) => {
        signal.addEventListener("abort", () => {
          aborted.push(tag);
          resolve("too late");
        });
      }),
  }),
  balance: defineMethod({ params: z.tuple([]), handler: () => 255n }),
  admin_echo: defineMethod({
    params: z.tuple([z.string()]),
    admin: true,
    handler: ([text], { admin }) => ({ text, admin }),
  }),
};

const routes: RestRoute[] = [
  { method: "GET", path: "/health", handler: async (req) => ({ body: { ok: true, query: req.query } }) },
  {
    method: "GET",
    path: "/admin/backup",
    admin: true,
    handler: async () => ({
      stream: Readable.from([gzipSync("backup bytes")]),
      contentType: "application/gzip",
      headers: { "content-disposition": 'attachment; filename="backup.tar.gz"' },
    }),
  },
  {
    method: "GET",
    path: "/broken",
    handler: async () => {
      throw new Error(SECRET);
    },
  },
];

/** Captures log lines, to check what is (and is not) written. */
function captureLogger() {
  const lines: string[] = [];
  const sink = new Writable({
    write(chunk, _enc, cb) {
      lines.push(String(chunk));
      cb();
    },
  });
  return { logger: pino({ level: "debug" }, sink), text: () => lines.join("") };
}

const running: { close(): Promise<void> }[] = [];
afterEach(async () => {
  await Promise.all(running.splice(0).map((s) => s.close()));
});

async function start(opts: Partial<RpcServerOptions> = {}) {
  const logs = captureLogger();
  const server = createRpcServer({ port: 0, ...opts }, { methods, routes, logger: logs.logger });
  running.push(server);
  const { url, port } = await server.listen();
  return { server, url, port, logs };
}

async function post(url: string, body: string | Uint8Array, headers: Record<string, string> = {}) {
  const res = await fetch(url, {
    method: "POST",
    body,
    headers: { "content-type": "application/json", ...headers },
  });
  const text = await res.text();
  return { status: res.status, headers: res.headers, text, json: text === "" ? undefined : JSON.parse(text) };
}

const call = (method: string, params?: unknown, id: unknown = 1) =>
  JSON.stringify({ jsonrpc: "2.0", id, method, ...(params === undefined ? {} : { params }) });

async function startupError(opts: Partial<RpcServerOptions>): Promise<RpcServerError> {
  const server = createRpcServer({ port: 0, ...opts }, { methods, logger: pino({ level: "silent" }) });
  running.push(server);
  try {
    await server.listen();
  } catch (err) {
    if (err instanceof RpcServerError) return err;
    throw err;
  }
  throw new Error("expected listen() to fail");
}

describe("JSON-RPC over HTTP", () => {
  it("listens on an ephemeral port and answers a single call with its id", async () => {
    const { server, url, port } = await start();
    expect(port).toBeGreaterThan(0);
    expect(url).toBe(`http://127.0.0.1:${port}`);
    expect(server.address?.port).toBe(port);
    const res = await post(url, call("add", [2, 3], "req-7"));
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toMatch(/^application\/json/);
    expect(res.json).toEqual({ jsonrpc: "2.0", id: "req-7", result: 5 });
    const byNumber = await post(url, call("echo", ["hi"], 42));
    expect(byNumber.json).toEqual({ jsonrpc: "2.0", id: 42, result: { text: "hi", n: null } });
  });

  it("reads the body whatever the content type, or without one", async () => {
    const { url } = await start();
    const body = call("add", [1, 1]);
    for (const type of [
      "text/plain",
      "application/json; charset=utf-8",
      "application/x-www-form-urlencoded",
    ]) {
      expect((await post(url, body, { "content-type": type })).json.result).toBe(2);
    }
    const bare = await fetch(url, { method: "POST", body: new TextEncoder().encode(body) });
    expect(await bare.json()).toMatchObject({ result: 2 });
  });

  it("answers a mixed batch element by element, in order, and runs but does not answer notifications", async () => {
    const { url } = await start();
    calls.length = 0;
    const res = await post(
      url,
      JSON.stringify([
        { jsonrpc: "2.0", id: 1, method: "add", params: [1, 2] },
        { jsonrpc: "2.0", id: 2, method: 5 },
        { jsonrpc: "2.0", method: "note", params: ["batched"] },
        { jsonrpc: "2.0", id: 3, method: "nope" },
        42,
        { jsonrpc: "2.0", id: 4, method: "add", params: ["x", 1] },
      ]),
    );
    expect(res.status).toBe(200);
    expect(res.json).toHaveLength(5);
    expect(res.json[0]).toEqual({ jsonrpc: "2.0", id: 1, result: 3 });
    expect(res.json[1]).toMatchObject({ id: 2, error: { code: -32600 } });
    expect(res.json[2]).toMatchObject({ id: 3, error: { code: -32601 } });
    expect(res.json[3]).toMatchObject({ id: null, error: { code: -32600 } });
    expect(res.json[4]).toMatchObject({ id: 4, error: { code: -32602 } });
    expect(calls).toEqual(["batched"]);
  });

  it("answers an all-notification batch with 204 and no body, after running them", async () => {
    const { url } = await start();
    calls.length = 0;
    const res = await post(
      url,
      JSON.stringify([
        { jsonrpc: "2.0", method: "note", params: ["a"] },
        { jsonrpc: "2.0", method: "note", params: ["b"] },
        { jsonrpc: "2.0", method: "nope" },
      ]),
    );
    expect(res.status).toBe(204);
    expect(res.text).toBe("");
    expect(calls.sort()).toEqual(["a", "b"]);
  });

  it("refuses an empty batch with one -32600 error", async () => {
    const { url } = await start();
    const res = await post(url, "[]");
    expect(res.json).toEqual({
      jsonrpc: "2.0",
      id: null,
      error: { code: -32600, message: "invalid request: empty batch" },
    });
  });

  it("refuses a batch over maxBatchSize with one -32005 error naming the limit, and accepts one at it", async () => {
    const { url } = await start({ maxBatchSize: 3 });
    const batch = (n: number) =>
      JSON.stringify(Array.from({ length: n }, (_, i) => JSON.parse(call("add", [i, 1], i))));
    const over = await post(url, batch(4));
    expect(Array.isArray(over.json)).toBe(false);
    expect(over.json.error.code).toBe(-32005);
    expect(over.json.error.message).toMatch(/batch of 4 requests is over the limit of 3/);
    const at = await post(url, batch(3));
    expect(at.json.map((r: { result: number }) => r.result)).toEqual([1, 2, 3]);
  });

  it("answers malformed JSON with -32700 rather than an HTTP error page", async () => {
    const { url } = await start();
    for (const body of ['{"jsonrpc": "2.0", "method": ', "", new Uint8Array([0x22, 0xff, 0xfe, 0x22])]) {
      const res = await post(url, body);
      expect(res.status).toBe(200);
      expect(res.json).toMatchObject({ jsonrpc: "2.0", id: null, error: { code: -32700 } });
    }
  });

  it("refuses a wrong jsonrpc version, a non-string method and a bad id with -32600", async () => {
    const { url } = await start();
    const version = await post(url, JSON.stringify({ jsonrpc: "1.0", id: 9, method: "add", params: [1, 1] }));
    expect(version.json).toMatchObject({
      id: 9,
      error: { code: -32600, message: expect.stringMatching(/jsonrpc/) },
    });
    const method = await post(url, JSON.stringify({ jsonrpc: "2.0", id: 10, method: 1 }));
    expect(method.json).toMatchObject({
      id: 10,
      error: { code: -32600, message: expect.stringMatching(/method/) },
    });
    const id = await post(
      url,
      JSON.stringify({ jsonrpc: "2.0", id: { a: 1 }, method: "add", params: [1, 1] }),
    );
    expect(id.json).toMatchObject({ id: null, error: { code: -32600 } });
  });

  it("answers an unknown method, including Object.prototype names, with -32601", async () => {
    const { url } = await start();
    for (const name of ["eth_nope", "constructor", "__proto__", "toString"]) {
      const res = await post(url, call(name, []));
      expect(res.json.error.code).toBe(-32601);
      expect(res.json.error.message).toContain(name);
    }
  });

  it("answers a zod failure with -32602 naming the parameter and what was expected", async () => {
    const { url } = await start();
    const res = await post(url, call("add", [1, "two"]));
    expect(res.json.error.code).toBe(-32602);
    expect(res.json.error.message).toBe(
      "invalid params: params[1]: invalid input: expected number, received string",
    );
    expect(res.json.error.data.issues).toEqual([
      { path: "params[1]", code: "invalid_type", message: "Invalid input: expected number, received string" },
    ]);
    const missing = await post(url, call("echo"));
    expect(missing.json.error.code).toBe(-32602);
    expect(missing.json.error.message).toMatch(/^invalid params: params: too small/);
    const named = await post(url, call("add", { a: 1, b: 2 }));
    expect(named.json.error).toMatchObject({ code: -32602, message: expect.stringMatching(/by-name/) });
  });

  it("sends a handler's RpcError as it is", async () => {
    const { url } = await start();
    const res = await post(url, call("refuse", [], 5));
    expect(res.json).toEqual({
      jsonrpc: "2.0",
      id: 5,
      error: { code: -32000, message: "nonce too low", data: { expected: "0x1" } },
    });
  });

  it("hides anything else a handler throws behind -32603, logging it with the method but not the params", async () => {
    const { url, logs } = await start();
    const res = await post(url, call("boom", [PATIENT], 6));
    expect(res.json).toEqual({ jsonrpc: "2.0", id: 6, error: { code: -32603, message: "internal error" } });
    expect(res.text).not.toContain(SECRET);
    expect(res.text).not.toMatch(/stack|\bat .*\.ts/);
    const log = logs.text();
    expect(log).toContain('"method":"boom"');
    expect(log).toContain(SECRET);
    expect(log).not.toContain(PATIENT);
  });

  it("converts a bigint result to a 0x quantity", async () => {
    const { url } = await start();
    expect((await post(url, call("balance", []))).json.result).toBe("0xff");
  });

  it("times a call out with -32002 and aborts its signal, without holding up the rest of a batch", async () => {
    const { url } = await start({ requestTimeoutMs: 150 });
    const started = Date.now();
    const res = await post(
      url,
      JSON.stringify([JSON.parse(call("slow", ["t1"], 1)), JSON.parse(call("add", [1, 2], 2))]),
    );
    expect(res.json[0]).toMatchObject({
      id: 1,
      error: { code: -32002, message: expect.stringMatching(/150 ms/) },
    });
    expect(res.json[1]).toMatchObject({ id: 2, result: 3 });
    expect(Date.now() - started).toBeLessThan(5_000);
    expect(aborted).toContain("t1");
  });

  it("aborts a call's signal when the client goes away", async () => {
    const { url } = await start({ requestTimeoutMs: 20_000 });
    const client = new AbortController();
    const pending = fetch(url, { method: "POST", body: call("slow", ["gone"]), signal: client.signal });
    setTimeout(() => client.abort(), 100);
    await expect(pending).rejects.toThrow();
    for (let i = 0; i < 100 && !aborted.includes("gone"); i++) await new Promise((r) => setTimeout(r, 20));
    expect(aborted).toContain("gone");
  });

  it("refuses a body over maxBodyBytes with 413 and a JSON-RPC error naming the limit", async () => {
    const { url } = await start({ maxBodyBytes: 1024 });
    const big = call("echo", ["x".repeat(2000)]);
    const res = await post(url, big);
    expect(res.status).toBe(413);
    expect(res.json).toMatchObject({ jsonrpc: "2.0", id: null, error: { code: -32005 } });
    expect(res.json.error.message).toMatch(/1024 bytes/);
    // Without a content-length the limit is enforced while reading.
    const chunked = await fetch(url, {
      method: "POST",
      body: Readable.toWeb(
        Readable.from([Buffer.from(big.slice(0, 1000)), Buffer.from(big.slice(1000))]),
      ) as ReadableStream,
      duplex: "half",
    } as RequestInit);
    expect(chunked.status).toBe(413);
    expect(await chunked.json()).toMatchObject({ error: { code: -32005 } });
    expect((await post(url, call("add", [1, 1]))).json.result).toBe(2);
  });

  it("keeps serving after every kind of bad input", async () => {
    const { url } = await start({ maxBodyBytes: 512 });
    await post(url, "{");
    await post(url, "x".repeat(600));
    await post(url, "[]");
    await post(url, call("boom", []));
    await post(url, JSON.stringify([1, null, "a"]));
    await post(url, "null");
    await post(url, call("add", ["a"]));
    await fetch(`${url}/nowhere`);
    const badUrl = await fetch(`${url}/%zz`);
    expect(badUrl.status).toBe(400);
    expect(Object.keys((await badUrl.json()) as object)).toEqual(["error"]);
    const res = await post(url, call("add", [20, 22]));
    expect(res.json.result).toBe(42);
  });
});

describe("admin authentication", () => {
  it("refuses admin methods entirely when no token file is configured", async () => {
    const { url } = await start();
    const res = await post(url, call("admin_echo", ["x"]), { authorization: `Bearer ${ADMIN_TOKEN}` });
    expect(res.json.error.code).toBe(-32001);
    expect(res.json.error.message).toMatch(/disabled/);
    const route = await fetch(`${url}/admin/backup`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
    expect(route.status).toBe(403);
  });

  it("needs the right bearer token, and never echoes a token", async () => {
    const { url, logs } = await start({ adminTokenFile: tokenFile });
    const wrongToken = `${ADMIN_TOKEN.slice(0, -1)}X`;
    const none = await post(url, call("admin_echo", ["x"]));
    expect(none.json.error.code).toBe(-32001);
    const wrong = await post(url, call("admin_echo", ["x"]), { authorization: `Bearer ${wrongToken}` });
    expect(wrong.json.error).toMatchObject({ code: -32001, message: expect.stringMatching(/rejected/) });
    const right = await post(url, call("admin_echo", ["x"]), { authorization: `Bearer ${ADMIN_TOKEN}` });
    expect(right.json.result).toEqual({ text: "x", admin: true });
    // A wrong token does not stop ordinary methods.
    const plain = await post(url, call("add", [1, 1]), { authorization: `Bearer ${wrongToken}` });
    expect(plain.json.result).toBe(2);
    for (const r of [none, wrong, right, plain]) {
      expect(r.text).not.toContain(ADMIN_TOKEN);
      expect(r.text).not.toContain(wrongToken);
    }
    expect(logs.text()).toContain("admin token rejected");
    expect(logs.text()).not.toContain(ADMIN_TOKEN);
    expect(logs.text()).not.toContain(wrongToken);
  });

  it("guards admin REST routes with 401 and streams the download with the token", async () => {
    const { url } = await start({ adminTokenFile: tokenFile });
    const none = await fetch(`${url}/admin/backup`);
    expect(none.status).toBe(401);
    expect(none.headers.get("www-authenticate")).toBe("Bearer");
    const noneText = await none.text();
    expect(JSON.parse(noneText).error).toMatch(/unauthorized/);
    const wrong = await fetch(`${url}/admin/backup`, {
      headers: { authorization: "Bearer not-the-token-at-all" },
    });
    expect(wrong.status).toBe(401);
    expect(await wrong.text()).not.toContain("not-the-token-at-all");
    const ok = await fetch(`${url}/admin/backup`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
    expect(ok.status).toBe(200);
    expect(ok.headers.get("content-type")).toBe("application/gzip");
    expect(ok.headers.get("content-disposition")).toContain("backup.tar.gz");
    expect(gunzipSync(Buffer.from(await ok.arrayBuffer())).toString()).toBe("backup bytes");
  });

  it("refuses a missing or too short token file at startup without printing its content", async () => {
    const missing = await startupError({ adminTokenFile: join(dir, "absent.token") });
    expect(missing.code).toBe("RPC_ADMIN_TOKEN_UNREADABLE");
    expect(missing.message).toContain("absent.token");
    const shortFile = join(dir, "short.token");
    writeFileSync(shortFile, "abc123\n");
    const short = await startupError({ adminTokenFile: shortFile });
    expect(short.code).toBe("RPC_ADMIN_TOKEN_TOO_SHORT");
    expect(short.message).not.toContain("abc123");
  });
});

describe("REST routes and HTTP details", () => {
  it("serves a REST route, 404s unknown paths as JSON, and hides a failing route's error", async () => {
    const { url } = await start();
    const health = await fetch(`${url}/health?verbose=1`);
    expect(health.status).toBe(200);
    expect(await health.json()).toEqual({ ok: true, query: { verbose: "1" } });
    for (const path of ["/nowhere", "/"]) {
      const missing = await fetch(`${url}${path}`);
      expect(missing.status).toBe(404);
      expect(missing.headers.get("content-type")).toMatch(/^application\/json/);
      expect(((await missing.json()) as { error: string }).error).toMatch(/not found/);
    }
    const broken = await fetch(`${url}/broken`);
    expect(broken.status).toBe(500);
    const text = await broken.text();
    expect(JSON.parse(text)).toEqual({ error: "internal error" });
    expect(text).not.toContain(SECRET);
  });

  it("sends no CORS headers by default", async () => {
    const { url } = await start();
    const res = await post(url, call("add", [1, 1]), { origin: "https://evil.example" });
    expect(res.json.result).toBe(2);
    expect(res.headers.get("access-control-allow-origin")).toBeNull();
    const preflight = await fetch(url, {
      method: "OPTIONS",
      headers: { origin: "https://evil.example", "access-control-request-method": "POST" },
    });
    expect(preflight.headers.get("access-control-allow-origin")).toBeNull();
  });

  it("allows the configured origins only, and any origin with *", async () => {
    const { url } = await start({ corsOrigins: ["https://app.example"] });
    const allowed = await post(url, call("add", [1, 1]), { origin: "https://app.example" });
    expect(allowed.headers.get("access-control-allow-origin")).toBe("https://app.example");
    const other = await post(url, call("add", [1, 1]), { origin: "https://evil.example" });
    expect(other.headers.get("access-control-allow-origin")).toBeNull();
    const preflight = await fetch(url, {
      method: "OPTIONS",
      headers: {
        origin: "https://app.example",
        "access-control-request-method": "POST",
        "access-control-request-headers": "content-type,authorization",
      },
    });
    expect(preflight.status).toBeLessThan(300);
    expect(preflight.headers.get("access-control-allow-headers")?.toLowerCase()).toContain("authorization");
    const any = await start({ corsOrigins: ["*"] });
    const res = await post(any.url, call("add", [1, 1]), { origin: "https://whoever.example" });
    expect(res.headers.get("access-control-allow-origin")).toBe("*");
  });

  it("serves HTTPS with the configured certificate", async () => {
    const tlsDir = mkdtempSync(join(tmpdir(), "rpc-tls-"));
    const keyFile = join(tlsDir, "key.pem");
    const certFile = join(tlsDir, "cert.pem");
    execFileSync(
      "openssl",
      [
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-days",
        "1",
        "-subj",
        "/CN=localhost",
        "-addext",
        "subjectAltName=DNS:localhost,IP:127.0.0.1",
        "-keyout",
        keyFile,
        "-out",
        certFile,
      ],
      { stdio: "ignore" },
    );
    const { url } = await start({ tls: { certFile, keyFile } });
    expect(url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
    const body = call("add", [40, 2]);
    const text = await new Promise<string>((resolve, reject) => {
      const req = httpsRequest(
        url,
        { method: "POST", ca: readFileSync(certFile), headers: { "content-type": "application/json" } },
        (res) => {
          let data = "";
          res.setEncoding("utf8");
          res.on("data", (chunk) => {
            data += chunk;
          });
          res.on("end", () => resolve(data));
        },
      );
      req.on("error", reject);
      req.end(body);
    });
    expect(JSON.parse(text).result).toBe(42);
    // Not trusted without the CA: proves the server really speaks TLS with that certificate.
    await expect(fetch(url, { method: "POST", body })).rejects.toThrow();
  });

  it("fails startup clearly when a TLS file is missing", async () => {
    const err = await startupError({
      tls: { certFile: join(dir, "no-cert.pem"), keyFile: join(dir, "no-key.pem") },
    });
    expect(err.code).toBe("RPC_TLS_FILE_UNREADABLE");
    expect(err.message).toContain("no-cert.pem");
    expect(err.message).toContain("ENOENT");
  });

  it("reports a port in use as RPC_ADDRESS_IN_USE naming host:port", async () => {
    const { port } = await start();
    const err = await startupError({ port });
    expect(err.code).toBe("RPC_ADDRESS_IN_USE");
    expect(err.message).toContain(`127.0.0.1:${port}`);
  });

  it("closes and can be closed twice", async () => {
    const { server, url } = await start();
    await server.close();
    await server.close();
    expect(server.address).toBeUndefined();
    await expect(fetch(url, { method: "POST", body: call("add", [1, 1]) })).rejects.toThrow();
  });
});
