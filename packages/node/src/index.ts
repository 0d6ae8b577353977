export * from "./execution/index.ts";
export * from "./mempool/index.ts";
export * from "./store/encryptedStore.ts";
export * from "./store/errors.ts";
export * from "./store/options.ts";
export * from "./store/prefixes.ts";
