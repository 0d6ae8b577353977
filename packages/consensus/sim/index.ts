export * from "./crypto.ts";
export * from "./prng.ts";
export * from "./scenario.ts";
export * from "./simulation.ts";
export * from "./value.ts";
