import { defineConfig } from "vitest/config";

// One config for the whole workspace: each package keeps its tests in test/{unit,e2e,sim,perf}
// and its own vitest.config.ts; cross-package end-to-end tests (real processes) live in /test.
// In CI a JSON report is written too, so that .ci/run can print the closing count.
const ci = process.env.CI === "true";

export default defineConfig({
  test: {
    projects: ["packages/*/vitest.config.ts", "test/vitest.config.ts", "deploy/vitest.config.ts"],
    reporters: ci ? ["default", "json"] : ["default"],
    outputFile: ci ? { json: "ci_artifacts/unit_test_results.json" } : undefined,
    // Off unless asked for (`vitest run --coverage`, `npm run coverage`, scripts/run_ci_locally.sh):
    // instrumenting slows the suite. Only code running inside vitest's workers is measured, not the
    // `vitalstream` processes that the end-to-end tests start. Emulators are test-only backends.
    // Patterns are relative to the root, or to each project's root under a `--project` filter.
    coverage: {
      enabled: false,
      provider: "v8",
      include: ["packages/*/src/**/*.ts", "packages/consensus/sim/**/*.ts", "src/**/*.ts", "sim/**/*.ts"],
      reportsDirectory: "ci_artifacts/coverage",
      reporter: ["text-summary", "json-summary"],
      // A failing test must not also cost the coverage report.
      reportOnFailure: true,
    },
  },
});
