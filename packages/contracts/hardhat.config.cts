// Hardhat 2 configuration.
//
// Why a .cts file: Hardhat 2 loads its config with require() (through ts-node when it is
// TypeScript) and refuses an ES module config, while this package is ESM like the rest of the
// monorepo. A .cts file is TypeScript compiled as CommonJS: the config stays type-checked
// (tsconfig.json here) and everything else (tests, scripts, src) stays ESM TypeScript that the
// pinned Node 24 runs natively. Hence require() below: a CommonJS module under
// verbatimModuleSyntax may not use import for values.
//
// Offline: Hardhat would download solc from the network. The subtask override hands it the
// pinned `solc` npm package's soljson.js (wasm), so compiling needs no network at all.
import type { HardhatUserConfig } from "hardhat/config";

const { subtask } = require("hardhat/config") as typeof import("hardhat/config");
const { TASK_COMPILE_SOLIDITY_GET_SOLC_BUILD } =
  require("hardhat/builtin-tasks/task-names") as typeof import("hardhat/builtin-tasks/task-names");
const devnet = require("./src/devnet.json") as typeof import("./src/devnet.json");
const { existsSync, readFileSync } = require("node:fs") as typeof import("node:fs");
const { join } = require("node:path") as typeof import("node:path");

// `npm start` writes the running devnet's accounts (DEV ONLY keys) to <repo>/.devnet/accounts.json;
// when it exists, the devnet network uses its chain id, RPC URL and accounts.
interface DevnetAccounts {
  chainId: number;
  rpcUrl: string;
  accounts: { privateKey: string }[];
}
const accountsFile = join(__dirname, "..", "..", ".devnet", "accounts.json");
const running: DevnetAccounts | undefined = existsSync(accountsFile)
  ? (JSON.parse(readFileSync(accountsFile, "utf8")) as DevnetAccounts)
  : undefined;

require("@nomicfoundation/hardhat-ethers");
require("@nomicfoundation/hardhat-chai-matchers");
require("solidity-coverage");

/** Must equal the exact version of the `solc` devDependency in package.json. */
const SOLC_VERSION = "0.8.28";

interface SolcBuild {
  version: string;
  longVersion: string;
  compilerPath: string;
  isSolcJs: boolean;
}

subtask(TASK_COMPILE_SOLIDITY_GET_SOLC_BUILD, async (args: { solcVersion: string }): Promise<SolcBuild> => {
  const installed = (require("solc/package.json") as { version: string }).version;
  if (args.solcVersion !== SOLC_VERSION || installed !== SOLC_VERSION) {
    throw new Error(
      `solc ${args.solcVersion} was requested but only the pinned solc npm package (${installed}, ` +
        `expected ${SOLC_VERSION}) is available offline: align pragma, config and package.json`,
    );
  }
  const solc = require("solc") as { version(): string };
  return {
    version: SOLC_VERSION,
    // "0.8.28+commit.7893614a.Emscripten.clang" -> "0.8.28+commit.7893614a"
    longVersion: solc.version().replace(/\.Emscripten\.clang$/, ""),
    compilerPath: require.resolve("solc/soljson.js"),
    isSolcJs: true,
  };
});

const config: HardhatUserConfig = {
  solidity: {
    version: SOLC_VERSION,
    settings: {
      // Explicit: the chain runs Cancun rules; without it this override would target paris.
      evmVersion: "cancun",
      optimizer: { enabled: true, runs: 200 },
    },
  },
  networks: {
    // The in-process network uses the devnet's chain id so scripts behave as on the devnet.
    hardhat: { chainId: devnet.chainId },
    devnet: {
      url: process.env.DEVNET_RPC_URL || running?.rpcUrl || devnet.rpcUrl,
      chainId: running?.chainId ?? devnet.chainId,
      // DEV ONLY defaults: the running devnet's accounts, else the public deployer key of src/devnet.json.
      accounts: process.env.DEVNET_PRIVATE_KEY
        ? [process.env.DEVNET_PRIVATE_KEY]
        : (running?.accounts.map((a) => a.privateKey) ?? [devnet.deployer.privateKey]),
    },
  },
  // test/ also holds vitest files; Hardhat's mocha suite lives in test/hardhat only.
  paths: { tests: "test/hardhat" },
  mocha: { timeout: 60_000 },
};

module.exports = config;
