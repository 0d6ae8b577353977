export * from "./artifacts.ts";
export * from "./devnet.ts";
export * from "./errors.ts";
export * from "./events.ts";
export * from "./hashChain.ts";
export * from "./hex.ts";
export * from "./verify.ts";
