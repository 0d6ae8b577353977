import { defineProject } from "vitest/config";

// test/hardhat/ holds the mocha suite that Hardhat runs; test/hardhat.test.ts runs it as a child
// process, so vitest only picks up *.test.ts files.
export default defineProject({
  test: {
    name: "contracts",
    include: ["test/**/*.test.ts"],
    testTimeout: 120_000,
    hookTimeout: 120_000,
  },
});
