/**
 * The alerting rules, checked by Prometheus's own tool: `promtool check rules` (syntax, PromQL,
 * templates) and `promtool test rules` (deploy/prometheus/rules.test.yaml: each alert fires on the
 * series it is meant for, after its `for`, with its labels and annotations, and not before).
 * promtool comes with Debian's `prometheus` package, which .ci/run installs.
 */
import { spawnSync } from "node:child_process";
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parse, stringify } from "yaml";

const DEPLOY = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const RULES = join(DEPLOY, "kubernetes/prometheus-rules.yaml");
const UNIT_TESTS = join(DEPLOY, "prometheus/rules.test.yaml");

function hasPromtool(): boolean {
  return spawnSync("promtool", ["--version"], { stdio: "ignore" }).status === 0;
}
const promtool = hasPromtool();
if (!promtool) {
  if (process.env.CI === "true") throw new Error("promtool is missing in CI: apt-get install prometheus");
  console.warn(
    "skipped: promtool is not installed (apt-get install prometheus); the alert rules were not checked",
  );
}

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "vs-rules-"));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** The PrometheusRule's spec as a plain rule file, as the operator hands it to Prometheus. */
function ruleFile(mutate?: (spec: { groups: { rules: Record<string, unknown>[] }[] }) => void): string {
  const doc = parse(readFileSync(RULES, "utf8"));
  expect(doc.kind).toBe("PrometheusRule");
  mutate?.(doc.spec);
  const file = join(dir, "rules.yaml");
  writeFileSync(file, stringify(doc.spec));
  copyFileSync(UNIT_TESTS, join(dir, "rules.test.yaml"));
  return file;
}

function run(args: string[]): { ok: boolean; output: string } {
  const r = spawnSync("promtool", args, { cwd: dir, encoding: "utf8" });
  return { ok: r.status === 0, output: `${r.stdout}${r.stderr}` };
}

describe.skipIf(!promtool)("Prometheus alert rules", () => {
  it("name every alert the runbooks cover", () => {
    const doc = parse(readFileSync(RULES, "utf8"));
    const alerts = doc.spec.groups.flatMap((g: { rules: { alert: string }[] }) =>
      g.rules.map((r) => r.alert),
    );
    expect(alerts.sort()).toEqual(
      [
        "VitalStreamConsensusStalled",
        "VitalStreamDiskFilling",
        "VitalStreamHsmErrors",
        "VitalStreamHsmUnavailable",
        "VitalStreamSyncLag",
        "VitalStreamTlsCertificateExpiringSoon",
        "VitalStreamTpsBelowTarget",
        "VitalStreamValidatorOffline",
      ].sort(),
    );
    const runbooks = readFileSync(join(DEPLOY, "../docs/operations.md"), "utf8");
    for (const r of doc.spec.groups.flatMap(
      (g: { rules: { annotations: { description: string } }[] }) => g.rules,
    )) {
      const anchor = /docs\/operations\.md#([a-z-]+)/.exec(r.annotations.description)?.[1];
      expect(anchor, "every alert links a runbook").toBeDefined();
      const heading = /^#+ .*$/gm;
      const anchors = (runbooks.match(heading) ?? []).map((h) =>
        h
          .replace(/^#+ /, "")
          .toLowerCase()
          .replace(/[^a-z0-9 -]/g, "")
          .replace(/ /g, "-"),
      );
      expect(anchors, `docs/operations.md has a section #${anchor}`).toContain(anchor);
    }
  });

  it("pass promtool check rules", () => {
    const r = run(["check", "rules", ruleFile()]);
    expect(r.output).toContain("SUCCESS: 8 rules found");
    expect(r.ok).toBe(true);
  });

  it("pass the promtool unit tests: each alert fires when it should, and not before", () => {
    ruleFile();
    const r = run(["test", "rules", "rules.test.yaml"]);
    expect(r.output).toContain("SUCCESS");
    expect(r.ok).toBe(true);
  });

  it("and those unit tests have teeth: a weakened rule fails them", () => {
    ruleFile((spec) => {
      const offline = spec.groups[0]!.rules.find((r) => r.alert === "VitalStreamValidatorOffline")!;
      offline.for = "10m";
    });
    const r = run(["test", "rules", "rules.test.yaml"]);
    expect(r.ok).toBe(false);
    expect(r.output).toContain("VitalStreamValidatorOffline");
  });
});
