export * from "./errors.ts";
export * from "./mempool.ts";
export * from "./options.ts";
