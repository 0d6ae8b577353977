/**
 * The Dockerfile, linted (no container engine here, so it is never built in CI): multi-stage, a
 * Node 24 runtime, a numeric non-root user that matches the manifests, nothing fetched by ADD, no
 * floating tags, `vitalstream` as the entrypoint with the backup and restore commands on PATH, and
 * a build context (.dockerignore) that holds what the COPY lines need and nothing else. Also: every
 * package the runtime imports is a production dependency, or `npm ci --omit=dev` would leave it out.
 */
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { copyArgs, inBuildContext, readStages } from "./dockerfile.ts";
import { loadManifests, ROOT } from "./k8s.ts";

const stages = readStages();
const runtime = stages[stages.length - 1]!;
const build = stages.find((s) => s.name === "build");
const all = (keyword: string) => runtime.instructions.filter((i) => i.keyword === keyword);
const last = (keyword: string) => all(keyword).at(-1);
const BINS = ["vitalstream", "blockchain-backup", "blockchain-restore"];
const WORKSPACES = ["consensus", "hsm", "contracts", "node"];

describe("Dockerfile", () => {
  it("is multi-stage: a build stage with compilers, a runtime stage on node:24 bookworm-slim", () => {
    expect(stages.length).toBeGreaterThanOrEqual(2);
    expect(build, "a stage named build").toBeDefined();
    expect(runtime.image).toMatch(/^node:24[\w.-]*(@sha256:[0-9a-f]{64})?$/);
    expect(runtime.image).toContain("bookworm-slim");
    // The addons are compiled in the build stage for the runtime's Node ABI: same base image.
    expect(build!.image).toBe(runtime.image);
    expect(build!.instructions.some((i) => i.keyword === "RUN" && /\bg\+\+/.test(i.args))).toBe(true);
    expect(
      runtime.instructions.some((i) => i.keyword === "RUN" && /\bg\+\+|build-essential/.test(i.args)),
    ).toBe(false);
  });

  it("names every base image with a version, never latest or no tag", () => {
    const stageNames = new Set(stages.map((s) => s.name));
    for (const s of stages) {
      if (stageNames.has(s.image)) continue;
      expect(s.image, s.image).toMatch(/:[\w.-]+|@sha256:/);
      expect(s.image, s.image).not.toMatch(/:latest(@|$)/);
    }
  });

  it("runs as the numeric non-root user the manifests run as (10001)", () => {
    const user = last("USER");
    expect(user?.args).toMatch(/^\d+(:\d+)?$/);
    const [uid, gid] = user!.args.split(":").map(Number);
    expect(uid).not.toBe(0);
    const pods = loadManifests()
      .map((m) => m.object)
      .filter((o) => o.kind === "StatefulSet" || o.kind === "CronJob");
    for (const o of pods) {
      const pod = o.kind === "CronJob" ? o.spec.jobTemplate.spec.template.spec : o.spec.template.spec;
      expect(pod.securityContext.runAsUser).toBe(uid);
      expect(pod.securityContext.runAsGroup).toBe(gid ?? uid);
    }
    // The data directory exists, owned by that user, for `docker run` without a volume.
    expect(
      all("RUN").some((i) =>
        new RegExp(`install -d -o ${uid} -g ${gid ?? uid} .*/var/lib/vitalstream`).test(i.args),
      ),
    ).toBe(true);
  });

  it("fetches nothing with ADD", () => {
    for (const s of stages)
      for (const i of s.instructions.filter((x) => x.keyword === "ADD"))
        expect(i.args, "ADD of a URL or git repository").not.toMatch(/https?:\/\/|git@|\.git\b/);
  });

  it("starts `vitalstream start --config /etc/vitalstream/config.json`, exposing 8545, 26656 and 9090", () => {
    expect(last("ENTRYPOINT")?.json).toEqual(["vitalstream"]);
    expect(last("CMD")?.json).toEqual(["start", "--config", "/etc/vitalstream/config.json"]);
    expect(
      all("EXPOSE")
        .flatMap((i) => i.args.split(" "))
        .sort(),
    ).toEqual(["26656", "8545", "9090"]);
    expect(last("WORKDIR")?.args).toBe("/app");
  });

  it("puts vitalstream, blockchain-backup and blockchain-restore on PATH, each a bin of the node package", () => {
    const pkg = JSON.parse(readFileSync(join(ROOT, "packages/node/package.json"), "utf8"));
    const runs = all("RUN")
      .map((i) => i.args)
      .join(" ");
    for (const bin of BINS) {
      expect(pkg.bin[bin]).toBe(`bin/${bin}.js`);
      expect(runs).toContain(`ln -s /app/packages/node/bin/${bin}.js /usr/local/bin/${bin}`);
      expect(statSync(join(ROOT, "packages/node/bin", `${bin}.js`)).isFile()).toBe(true);
    }
  });

  it("installs only production dependencies, exactly as locked", () => {
    const runs = build!.instructions.filter((i) => i.keyword === "RUN").map((i) => i.args);
    expect(runs.some((r) => /\bnpm ci --omit=dev\b/.test(r))).toBe(true);
    expect(runs.some((r) => /\bnpm (install|i)\b/.test(r))).toBe(false);
    // The runtime stage takes the installed tree from the build stage and installs nothing itself.
    for (const i of all("COPY")) expect(copyArgs(i).from).toBe("build");
    expect(all("RUN").some((i) => /\bnpm\b|apt-get install/.test(i.args))).toBe(false);
  });

  it("copies from the build context only what .dockerignore lets in, and that is what runs", () => {
    const sources = build!.instructions
      .filter((i) => i.keyword === "COPY")
      .flatMap((i) => copyArgs(i).sources);
    for (const workspace of WORKSPACES) {
      expect(sources).toContain(`packages/${workspace}/package.json`);
      expect(sources).toContain(`packages/${workspace}/src`);
    }
    expect(sources).toEqual(
      expect.arrayContaining(["package.json", "package-lock.json", "packages/node/bin"]),
    );
    for (const s of sources) expect(inBuildContext(s), `${s} is in the build context`).toBe(true);
    for (const kept of ["node_modules", ".devnet/validator-0/node-key", "packages/node/test", ".git", "docs"])
      expect(inBuildContext(kept), `${kept} stays out of the build context`).toBe(false);
    // Every workspace of the root package.json is installed (npm ci needs each one's package.json).
    const root = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8"));
    expect([...root.workspaces].sort()).toEqual(WORKSPACES.map((w) => `packages/${w}`).sort());
  });

  it("and the .dockerignore reading has teeth", () => {
    const text = "*\n!packages/node/src/\n";
    expect(inBuildContext("packages/node/src", text)).toBe(true);
    expect(inBuildContext("packages/node/src/cli/main.ts", text)).toBe(true);
    expect(inBuildContext("packages/node/bin", text)).toBe(false);
    expect(() => inBuildContext("x", "**/*.md\n")).toThrow(/not supported/);
  });
});

/** Bare module names a workspace's runtime code imports (type-only imports are erased by Node). */
function runtimeImports(dirs: string[]): Map<string, string> {
  const walk = (d: string): string[] =>
    readdirSync(d, { withFileTypes: true }).flatMap((e) =>
      e.isDirectory() ? walk(join(d, e.name)) : /\.(ts|js)$/.test(e.name) ? [join(d, e.name)] : [],
    );
  const found = new Map<string, string>();
  const add = (spec: string, file: string) => {
    if (spec.startsWith(".") || spec.startsWith("node:")) return;
    const name = spec.startsWith("@") ? spec.split("/").slice(0, 2).join("/") : spec.split("/")[0]!;
    if (!found.has(name)) found.set(name, file.slice(ROOT.length + 1));
  };
  for (const file of dirs.flatMap(walk)) {
    const text = readFileSync(file, "utf8");
    for (const m of text.matchAll(
      /^\s*(?:import|export)\s+(type\s+)?(?:[^'";]*?\s+from\s+)?["']([^"']+)["']/gm,
    ))
      if (m[1] === undefined) add(m[2]!, file);
    for (const m of text.matchAll(/\b(?:import|require)\(\s*["']([^"']+)["']\s*\)/g)) add(m[1]!, file);
  }
  return found;
}

describe("production dependencies (what npm ci --omit=dev installs)", () => {
  it.each(WORKSPACES)("packages/%s: everything its src imports is in its dependencies", (workspace) => {
    const pkg = JSON.parse(readFileSync(join(ROOT, "packages", workspace, "package.json"), "utf8"));
    const dirs = [join(ROOT, "packages", workspace, "src")];
    if (workspace === "node") dirs.push(join(ROOT, "packages/node/bin"));
    const imports = runtimeImports(dirs);
    const missing = [...imports]
      .filter(([name]) => pkg.dependencies?.[name] === undefined && name !== pkg.name)
      .map(
        ([name, file]) =>
          `${name} (imported by ${file}; ${pkg.devDependencies?.[name] !== undefined ? "a devDependency" : "not declared"})`,
      );
    expect(missing).toEqual([]);
  });

  it("and the import scan has teeth: it finds the node's imports, static and dynamic", () => {
    const imports = runtimeImports([join(ROOT, "packages/node/src")]);
    expect([...imports.keys()]).toEqual(
      expect.arrayContaining(["@vitalstream/hsm", "classic-level", "secp256k1"]),
    );
  });
});
