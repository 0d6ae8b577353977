export * from "./errors.ts";
export * from "./jsonrpc.ts";
export * from "./options.ts";
export * from "./server.ts";
