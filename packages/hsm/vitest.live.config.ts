import { defineConfig } from "vitest/config";

// `npm run test:live`: optional tests against real cloud services and HSMs. Not part of
// `npm test` (CI has no cloud credentials); each provider that is not configured is reported as
// skipped, with the variables that would enable it.
export default defineConfig({
  test: {
    name: "hsm-live",
    root: import.meta.dirname,
    include: ["test/live/**/*.live.test.ts"],
    testTimeout: 60_000,
  },
});
