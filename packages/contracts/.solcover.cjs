// solidity-coverage settings (CommonJS: it is loaded with require() and this package is ESM).
// json-summary feeds scripts/coverage-check.ts, which enforces the thresholds.
module.exports = {
  istanbulFolder: "coverage",
  istanbulReporter: ["text", "json-summary", "lcov"],
};
