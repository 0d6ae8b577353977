import { describe, expect, it } from "vitest";
import { z } from "zod";
import {
  createRpcDispatcher,
  defineMethod,
  type RpcMethod,
  serializeRpcResponse,
} from "../../src/rpc/index.ts";

const ran: string[] = [];
const methods: Record<string, RpcMethod> = {
  count: defineMethod({ params: z.array(z.number()), handler: (xs) => xs.length }),
  note: defineMethod({
    params: z.tuple([z.string()]),
    handler: ([text]) => {
      ran.push(text);
      return text;
    },
  }),
  cyclic: defineMethod({
    params: z.tuple([]),
    handler: () => {
      const o: Record<string, unknown> = {};
      o.self = o;
      return o;
    },
  }),
  negative: defineMethod({ params: z.tuple([]), handler: () => -1n }),
  nested: defineMethod({ params: z.tuple([]), handler: () => ({ gas: 21000n, list: [1n, "0x2"] }) }),
};
const { dispatch, dispatchRaw } = createRpcDispatcher(methods, { maxBatchSize: 10, requestTimeoutMs: 1_000 });
const ctx = { admin: false };
const req = (method: string, extra: Record<string, unknown> = {}) => ({
  jsonrpc: "2.0",
  id: 1,
  method,
  ...extra,
});

describe("JSON-RPC dispatch", () => {
  it("treats absent and null params as []", async () => {
    expect(await dispatch(req("count"), ctx)).toEqual({ jsonrpc: "2.0", id: 1, result: 0 });
    expect(await dispatch(req("count", { params: null }), ctx)).toMatchObject({ result: 0 });
    expect(await dispatch(req("count", { params: [1, 2] }), ctx)).toMatchObject({ result: 2 });
  });

  it("refuses params that are neither array nor object as an invalid request", async () => {
    expect(await dispatch(req("count", { params: "1,2" }), ctx)).toMatchObject({ error: { code: -32600 } });
  });

  it("answers an invalid notification (spec example) but not a notification whose call fails", async () => {
    expect(await dispatch({ jsonrpc: "2.0", method: 1, params: "bar" }, ctx)).toMatchObject({
      id: null,
      error: { code: -32600 },
    });
    expect(await dispatch({ jsonrpc: "2.0", method: "note", params: [5] }, ctx)).toBeUndefined();
    expect(await dispatch({ jsonrpc: "2.0", method: "note", params: { a: 1 } }, ctx)).toBeUndefined();
    expect(await dispatch({ jsonrpc: "2.0", method: "nope" }, ctx)).toBeUndefined();
    ran.length = 0;
    expect(await dispatch({ jsonrpc: "2.0", method: "note", params: ["ran"] }, ctx)).toBeUndefined();
    expect(ran).toEqual(["ran"]);
  });

  it("keeps null, string and fractional ids as they are", async () => {
    for (const id of [null, "abc", 1.5, 0]) {
      expect(await dispatch(req("count", { id }), ctx)).toMatchObject({ id, result: 0 });
    }
    expect(await dispatch(req("count", { id: true }), ctx)).toMatchObject({
      id: null,
      error: { code: -32600 },
    });
  });

  it("answers each element of [1,2,3] with its own -32600", async () => {
    const res = await dispatch([1, 2, 3], ctx);
    expect(res).toHaveLength(3);
    for (const r of res as { error: { code: number } }[]) expect(r.error.code).toBe(-32600);
  });

  it("turns results that cannot be sent into internal errors, and bigints into quantities", async () => {
    expect(await dispatch(req("cyclic"), ctx)).toMatchObject({
      error: { code: -32603, message: "internal error" },
    });
    expect(await dispatch(req("negative"), ctx)).toMatchObject({ error: { code: -32603 } });
    const nested = await dispatch(req("nested"), ctx);
    expect(JSON.parse(serializeRpcResponse(nested!))).toEqual({
      jsonrpc: "2.0",
      id: 1,
      result: { gas: "0x5208", list: ["0x1", "0x2"] },
    });
  });

  it("parses raw bytes, with malformed JSON and invalid UTF-8 as -32700", async () => {
    const bytes = new TextEncoder().encode(JSON.stringify(req("count", { params: [7] })));
    expect(await dispatchRaw(bytes, ctx)).toMatchObject({ result: 1 });
    expect(await dispatchRaw("{", ctx)).toMatchObject({ id: null, error: { code: -32700 } });
    expect(await dispatchRaw(new Uint8Array([0xc3, 0x28]), ctx)).toMatchObject({ error: { code: -32700 } });
    expect(await dispatchRaw(undefined, ctx)).toMatchObject({ error: { code: -32700 } });
  });
});
