/**
 * The image's contents without a container engine: the Dockerfile's build stage is replayed in a
 * temporary directory (its COPY lines from the build context, then `npm ci --omit=dev`), the
 * runtime stage's links put the three commands on PATH, and then what the image runs is run from
 * that tree: two validators configured as in Kubernetes (peers by DNS name, RPC, metrics), and the
 * backup CronJob's own script against them (backup, chain check, retention, a failed check).
 * If anything the node imports were a devDependency, or a COPY line missed a directory, this fails.
 */
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import {
  copyFileSync,
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { basename, dirname, join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { copyArgs, readStages } from "./dockerfile.ts";
import { type K8sObject, loadManifests, ROOT } from "./k8s.ts";

const stages = readStages();
const tmp = mkdtempSync(join(tmpdir(), "vs-image-"));
const app = join(tmp, "app");
const bin = join(tmp, "bin");
const env = { ...process.env, PATH: `${bin}:${dirname(process.execPath)}:${process.env.PATH}` };

/** Replays the build stage (WORKDIR /app) into `app`. */
function replayBuildStage(): void {
  const build = stages.find((s) => s.name === "build")!;
  mkdirSync(app, { recursive: true });
  for (const i of build.instructions) {
    if (i.keyword === "COPY") {
      const { sources, dest } = copyArgs(i);
      const target = join(app, dest);
      for (const source of sources) {
        const from = join(ROOT, source);
        if (statSync(from).isDirectory()) cpSync(from, target, { recursive: true });
        else {
          const file = dest.endsWith("/") || sources.length > 1 ? join(target, basename(source)) : target;
          mkdirSync(dirname(file), { recursive: true });
          copyFileSync(from, file);
        }
      }
    } else if (i.keyword === "RUN" && /\bnpm ci\b/.test(i.args)) {
      // The repo's own npm settings (where node-gyp finds Node's headers on this machine); the
      // image sets npm_config_nodedir for its own. --prefer-offline: CI's npm ci filled the cache.
      if (existsSync(join(ROOT, ".npmrc"))) copyFileSync(join(ROOT, ".npmrc"), join(app, ".npmrc"));
      const r = spawnSync("npm", ["ci", "--omit=dev", "--no-audit", "--no-fund", "--prefer-offline"], {
        cwd: app,
        env,
        encoding: "utf8",
      });
      if (r.status !== 0) throw new Error(`npm ci --omit=dev failed:\n${r.stdout}\n${r.stderr}`);
    } else if (i.keyword === "RUN" && i.args.startsWith("chmod ")) {
      const r = spawnSync("bash", ["-c", i.args], { cwd: app, encoding: "utf8" });
      if (r.status !== 0) throw new Error(`${i.args}: ${r.stderr}`);
    } else if (i.keyword === "RUN" && !/apt-get/.test(i.args)) {
      // apt-get installs the compilers, which this machine has. Anything else must be replayed here.
      throw new Error(`a build step this test does not replay: RUN ${i.args}`);
    }
  }
  // The runtime stage's links, with /usr/local/bin -> bin and /app -> app.
  mkdirSync(bin);
  const runtime = stages[stages.length - 1]!;
  for (const i of runtime.instructions.filter((x) => x.keyword === "RUN"))
    for (const [, target, link] of i.args.matchAll(/ln -s (\/app\/\S+) \/usr\/local\/bin\/(\S+)/g))
      symlinkSync(join(app, target!.slice("/app/".length)), join(bin, link!));
}

function run(command: string, args: string[], extraEnv: NodeJS.ProcessEnv = {}) {
  const r = spawnSync(command, args, { cwd: tmp, env: { ...env, ...extraEnv }, encoding: "utf8" });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((done) => server.listen(0, "127.0.0.1", done));
  const port = (server.address() as { port: number }).port;
  await new Promise((done) => server.close(done));
  return port;
}

async function waitFor(what: string, probe: () => Promise<boolean>, ms: number): Promise<void> {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    if (await probe().catch(() => false)) return;
    await new Promise((d) => setTimeout(d, 200));
  }
  throw new Error(`timed out waiting for ${what}`);
}

beforeAll(() => {
  replayBuildStage();
}, 300_000);
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe("the image's production install (the Dockerfile's build stage, replayed without Docker)", () => {
  it("runs vitalstream, blockchain-backup and blockchain-restore from PATH", () => {
    const pkg = JSON.parse(readFileSync(join(ROOT, "packages/node/package.json"), "utf8"));
    const version = run("vitalstream", ["--version"]);
    expect(version.stderr).toBe("");
    expect(version.stdout.trim()).toBe(pkg.version);
    expect(run("blockchain-backup", ["--help"]).stdout).toContain("--admin-token-file");
    expect(run("blockchain-restore", ["--help"]).stdout).toContain("--input <file>");
  });

  it("holds no development tooling", () => {
    const installed = readdirSync(join(app, "node_modules"));
    for (const dev of ["vitest", "typescript", "hardhat", "@biomejs", "node", "yaml", "kubernetes-models"])
      expect(installed, dev).not.toContain(dev);
    expect(installed).toContain("classic-level");
  });

  describe("two validators configured as in Kubernetes (peers by DNS name)", () => {
    const net = join(tmp, "net");
    const nodes: { child: ChildProcess; rpc: string; metrics: string; log: string[] }[] = [];

    beforeAll(async () => {
      const init = run("vitalstream", ["init", "--dir", net, "--validators", "2", "--dev-accounts", "1"]);
      if (init.code !== 0) throw new Error(init.stderr);
      const ports = await Promise.all(
        [0, 1].map(async () => ({ rpc: await freePort(), p2p: await freePort(), metrics: await freePort() })),
      );
      const configs = [0, 1].map((i) => join(net, `validator-${i}`, "config.json"));
      configs.forEach((file, i) => {
        const config = JSON.parse(readFileSync(file, "utf8"));
        config.rpc = { ...config.rpc, host: "127.0.0.1", port: ports[i]!.rpc };
        config.metrics = { host: "127.0.0.1", port: ports[i]!.metrics };
        config.p2p.listen = [`/ip4/127.0.0.1/tcp/${ports[i]!.p2p}`];
        // As in the StatefulSet: the other validator by name (/dns4/<pod>.<service>...), not by IP.
        config.p2p.peers = [
          { nodeId: config.p2p.peers[0].nodeId, address: `/dns4/localhost/tcp/${ports[1 - i]!.p2p}` },
        ];
        writeFileSync(file, JSON.stringify(config, null, 2));
      });
      for (const [i, config] of configs.entries()) {
        const child = spawn("vitalstream", ["start", "--config", config], {
          cwd: tmp,
          env,
          stdio: ["ignore", "pipe", "pipe"],
        });
        const log: string[] = [];
        child.stdout!.on("data", (d) => log.push(String(d)));
        child.stderr!.on("data", (d) => log.push(String(d)));
        nodes.push({
          child,
          rpc: `http://127.0.0.1:${ports[i]!.rpc}`,
          metrics: `http://127.0.0.1:${ports[i]!.metrics}/metrics`,
          log,
        });
      }
      for (const node of nodes)
        await waitFor(
          `${node.rpc}/ready`,
          async () => (await fetch(`${node.rpc}/ready`)).status === 200,
          60_000,
        ).catch((e: Error) => {
          throw new Error(`${e.message}\n${node.log.join("").slice(-3000)}`);
        });
    }, 120_000);

    afterAll(async () => {
      await Promise.all(
        nodes.map(
          (n) =>
            new Promise<void>((done) => {
              if (n.child.exitCode !== null) return done();
              n.child.once("exit", () => done());
              n.child.kill("SIGTERM");
            }),
        ),
      );
    });

    it("they commit together and answer the probes and the scrape", async () => {
      const height = async (url: string) =>
        ((await (await fetch(`${url}/consensus/status`)).json()) as { head: { height: number } }).head.height;
      await waitFor(
        "height 3 on both",
        async () => (await height(nodes[0]!.rpc)) >= 3 && (await height(nodes[1]!.rpc)) >= 3,
        60_000,
      );
      for (const node of nodes) {
        expect((await fetch(`${node.rpc}/health`)).status).toBe(200);
        expect((await fetch(`${node.rpc}/ready`)).status).toBe(200);
        const metrics = await (await fetch(node.metrics)).text();
        expect(metrics).toMatch(/^blockchain_height(\{[^}]*\})? \d+/m);
        expect(metrics).toMatch(/^blockchain_peer_count(\{[^}]*\})? 1$/m);
      }
    });

    describe("the backup CronJob's script", () => {
      const cronJob = loadManifests().find((m) => m.object.kind === "CronJob")!.object;
      const container: K8sObject = cronJob.spec.jobTemplate.spec.template.spec.containers[0];
      const dirs = {
        "/backups": join(tmp, "backups"),
        "/scratch": join(tmp, "scratch"),
        "/var/run/secrets/vitalstream": join(tmp, "secrets"),
        "/etc/vitalstream": join(tmp, "etc"),
      };
      const remap = (text: string) =>
        Object.entries(dirs).reduce((t, [from, to]) => t.split(from).join(to), text);
      const script = remap(container.args[0]);
      const manifestEnv = Object.fromEntries(
        container.env.map((e: K8sObject) => [e.name, remap(String(e.value))]),
      ) as Record<string, string>;
      const archives = () =>
        readdirSync(dirs["/backups"])
          .filter((f) => /^vitalstream-\d{8}T\d{6}Z\.tar\.gz$/.test(f))
          .sort();
      const verifyConfig = (passphraseOf: string) =>
        writeFileSync(
          manifestEnv.VERIFY_CONFIG!,
          JSON.stringify({
            name: "backup-verify",
            genesisFile: join(net, "genesis.json"),
            dataDir: join(dirs["/scratch"], "data"),
            storageKey: { provider: "local", passphraseFile: join(net, passphraseOf, "passphrase") },
            rpc: { enabled: false },
            p2p: { enabled: false },
          }),
        );
      const runScript = (extra: Record<string, string> = {}) => {
        const r = spawnSync("bash", ["-c", script], {
          env: { ...env, ...manifestEnv, BACKUP_RPC_URL: nodes[0]!.rpc, BACKUP_KEEP: "2", ...extra },
          encoding: "utf8",
        });
        return { code: r.status, out: `${r.stdout}${r.stderr}` };
      };
      const nextSecond = () => new Promise((d) => setTimeout(d, 1_100)); // archive names have 1 s resolution

      beforeAll(() => {
        for (const d of Object.values(dirs)) mkdirSync(d, { recursive: true });
        copyFileSync(
          join(net, "validator-0", "admin-token"),
          join(dirs["/var/run/secrets/vitalstream"], "admin-token"),
        );
      });

      it("backs up validator-0, checks the archive's chain and keeps the newest BACKUP_KEEP", async () => {
        verifyConfig("validator-0");
        const names: string[] = [];
        for (const flags of ["--no-replay", "", "--no-replay"]) {
          const r = runScript({ VERIFY_RESTORE_FLAGS: flags });
          expect(r.code, r.out).toBe(0);
          expect(r.out).toContain('"restored"');
          expect(r.out).toContain("verifying the restored chain");
          names.push(archives().at(-1)!);
          expect(existsSync(join(dirs["/scratch"], "data")), "the scratch store is removed").toBe(false);
          await nextSecond();
        }
        expect(new Set(names).size).toBe(3);
        expect(archives()).toEqual(names.slice(1));
      });

      it("an archive whose chain check fails is kept aside, fails the job and deletes nothing", async () => {
        const before = archives();
        verifyConfig("validator-1"); // another validator's storage-key wrapper cannot unwrap the data key
        const r = runScript();
        expect(r.code).toBe(1);
        expect(r.out).toMatch(/error: vitalstream-\S+\.tar\.gz did not verify; kept as \S+\.unverified/);
        expect(readdirSync(dirs["/backups"]).filter((f) => f.endsWith(".unverified"))).toHaveLength(1);
        expect(archives()).toEqual(before);
        await nextSecond();
      });

      it("without backup-verify.json it still backs up, and says the chain check was skipped", () => {
        rmSync(manifestEnv.VERIFY_CONFIG!);
        const r = runScript();
        expect(r.code, r.out).toBe(0);
        expect(r.out).toContain("warning: chain check skipped");
        expect(archives()).toHaveLength(2);
      });
    });
  });
});
