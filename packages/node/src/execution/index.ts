export * from "./crypto.ts";
export * from "./envelope.ts";
export * from "./errors.ts";
export * from "./executor.ts";
export * from "./options.ts";
export * from "./overlay.ts";
export * from "./state.ts";
export * from "./txCommon.ts";
