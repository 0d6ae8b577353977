import { defineProject } from "vitest/config";

// Offline checks of what deploys the node: the Kubernetes manifests, the Dockerfile, the alert rules.
export default defineProject({
  test: {
    name: "deploy",
    include: ["test/**/*.test.ts"],
    testTimeout: 180_000,
    hookTimeout: 300_000,
  },
});
