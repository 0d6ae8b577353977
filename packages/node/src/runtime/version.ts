import { createRequire } from "node:module";

const require = createRequire(import.meta.url);

/** The node's version, from packages/node/package.json. */
export const VERSION: string = (require("../../package.json") as { version: string }).version;
