import { defineProject } from "vitest/config";

export default defineProject({
  test: {
    name: "hsm",
    include: ["test/**/*.test.ts"],
    // Live tests against real cloud services run only through `npm run test:live`.
    exclude: ["test/live/**"],
    testTimeout: 60_000,
    hookTimeout: 60_000,
  },
});
