import { defineConfig } from "vitest/config";

// One config for the whole workspace: each package keeps its tests in test/{unit,e2e,sim,perf}
// and its own vitest.config.ts; cross-package end-to-end tests (real processes) live in /test.
// In CI a JSON report is written too, so that .ci/run can print the closing count.
const ci = process.env.CI === "true";

export default defineConfig({
  test: {
    projects: ["packages/*/vitest.config.ts", "test/vitest.config.ts"],
    reporters: ci ? ["default", "json"] : ["default"],
    outputFile: ci ? { json: "ci_artifacts/unit_test_results.json" } : undefined,
  },
});
