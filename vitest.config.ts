import { defineConfig } from "vitest/config";

// One config for the whole workspace: each package keeps its tests in test/{unit,e2e,sim}
// and cross-package end-to-end tests live in /test.
export default defineConfig({
  test: {
    projects: ["packages/*/vitest.config.ts"],
    reporters: ["default"],
  },
});
