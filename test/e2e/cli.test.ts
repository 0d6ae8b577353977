/**
 * Every `vitalstream` command run for real, as a separate process: devnet (start, Ctrl-C, resume),
 * status, keys, offline backup, and the clear one-line errors operators get for bad input.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { BIN as BIN_DIR, cli, statusHeight as height, waitFor } from "./helpers.ts";

const BIN = join(BIN_DIR, "vitalstream.js");
let port = 23_000 + Math.floor(Math.random() * 4000);

const children: ChildProcess[] = [];
afterAll(async () => {
  // SIGTERM first: a devnet parent stops its validator processes; SIGKILL would orphan them.
  const running = children.filter((c) => c.exitCode === null && c.signalCode === null);
  for (const c of running) c.kill("SIGTERM");
  await Promise.all(
    running.map(
      (c) =>
        new Promise<void>((done) => {
          const t = setTimeout(() => {
            c.kill("SIGKILL");
            done();
          }, 20_000);
          c.once("exit", () => {
            clearTimeout(t);
            done();
          });
        }),
    ),
  );
}, 30_000);

describe("vitalstream devnet", () => {
  it("starts, prints accounts and endpoints, stops on Ctrl-C, and resumes the same chain", async () => {
    const dir = join(mkdtempSync(join(tmpdir(), "vs-devnet-")), ".devnet");
    port += 5;
    const url = `http://127.0.0.1:${port}`;
    const start = () => {
      const child = spawn(
        process.execPath,
        [
          BIN,
          "devnet",
          "--dir",
          dir,
          "--rpc-base-port",
          String(port),
          "--p2p-base-port",
          String(port + 10_000),
          "--metrics-base-port",
          String(port + 5_000),
          "--no-status",
        ],
        {
          stdio: ["ignore", "pipe", "pipe"],
        },
      );
      children.push(child);
      let out = "";
      child.stdout!.on("data", (d) => {
        out += d;
      });
      child.stderr!.on("data", (d) => {
        out += d;
      });
      return { child, output: () => out };
    };
    const first = start();
    const h1 = await waitFor("the devnet to commit blocks", async () => {
      const h = await height(url);
      return h !== undefined && h >= 3 ? h : undefined;
    });
    for (let i = 0; i < 4; i++) {
      expect(first.output()).toContain(`JSON-RPC http://127.0.0.1:${port + i}`);
      expect(first.output()).toContain(`metrics http://127.0.0.1:${port + 5_000 + i}/metrics`);
    }
    const scraped = await (await fetch(`http://127.0.0.1:${port + 5_000}/metrics`)).text();
    expect(scraped).toMatch(/^blockchain_height \d+$/m);
    expect(scraped).toMatch(/^blockchain_peer_count \d+$/m);
    expect(first.output()).toMatch(/DEVELOPMENT ONLY/);
    const accounts = JSON.parse(readFileSync(join(dir, "accounts.json"), "utf8"));
    expect(accounts.accounts).toHaveLength(10);
    expect(first.output()).toContain(accounts.accounts[0].privateKey);
    const genesisHash = (
      (await (
        await fetch(url, {
          method: "POST",
          body: JSON.stringify({
            jsonrpc: "2.0",
            id: 1,
            method: "eth_getBlockByNumber",
            params: ["0x0", false],
          }),
        })
      ).json()) as { result: { hash: string } }
    ).result.hash;

    const exited = new Promise<number | null>((d) => first.child.once("exit", d));
    first.child.kill("SIGINT");
    expect(await exited).toBe(0);
    expect(first.output()).toContain("devnet stopped");
    await expect(fetch(`${url}/health`)).rejects.toThrow();

    const second = start();
    const h2 = await waitFor("the resumed devnet", async () => {
      const h = await height(url);
      return h !== undefined && h > h1 ? h : undefined;
    });
    expect(second.output()).toContain("resuming the devnet");
    expect(h2).toBeGreaterThan(h1);
    const again = (
      (await (
        await fetch(url, {
          method: "POST",
          body: JSON.stringify({
            jsonrpc: "2.0",
            id: 1,
            method: "eth_getBlockByNumber",
            params: ["0x0", false],
          }),
        })
      ).json()) as { result: { hash: string } }
    ).result.hash;
    expect(again).toBe(genesisHash);

    const status = await cli(["status", "--rpc", url]);
    expect(status.code).toBe(0);
    expect(status.stdout).toMatch(/^chain\s+vitalstream-devnet/m);
    expect(status.stdout).toMatch(/proposer validator-[0-3]/);
    expect(status.stdout).toMatch(/validators 4, peers 3/);
    const json = await cli(["status", "--rpc", url, "--json"]);
    expect(JSON.parse(json.stdout).validators).toHaveLength(4);

    const stopped = new Promise((d) => second.child.once("exit", d));
    second.child.kill("SIGTERM");
    await stopped;
  });
});

describe("keys, offline backup and errors", () => {
  it("keys create/show/export-guard/import-guard through the providers", async () => {
    const dir = mkdtempSync(join(tmpdir(), "vs-keys-"));
    writeFileSync(join(dir, "pass"), "a long enough passphrase\n", { mode: 0o600 });
    const created = await cli([
      "keys",
      "create",
      "--keystore",
      join(dir, "k.json"),
      "--passphrase-file",
      join(dir, "pass"),
      "--algorithm",
      "ecdsa-p256",
    ]);
    expect(created.code, created.stderr).toBe(0);
    expect(JSON.parse(created.stdout).publicKey).toMatch(/^0x04[0-9a-f]{128}$/);
    const twice = await cli([
      "keys",
      "create",
      "--keystore",
      join(dir, "k.json"),
      "--passphrase-file",
      join(dir, "pass"),
    ]);
    expect(twice.code).toBe(1);
    expect(twice.stderr).toMatch(/^error: .*already exists/);

    port += 5;
    const net = join(dir, "net");
    expect(
      (
        await cli([
          "init",
          "--dir",
          net,
          "--rpc-base-port",
          String(port),
          "--p2p-base-port",
          String(port + 10_000),
          "--dev-accounts",
          "2",
        ])
      ).code,
    ).toBe(0);
    const config = join(net, "validator-0/config.json");
    const shown = JSON.parse((await cli(["keys", "show", "--config", config])).stdout);
    const genesis = JSON.parse(readFileSync(join(net, "genesis.json"), "utf8"));
    expect(shown.publicKey).toBe(genesis.validators[0].publicKey);
    expect(shown.validator).toEqual({ index: 0, name: "validator-0" });
    expect(shown.nodeId).toBe(genesis.validators[0].nodeId);

    // Run the node a little so that the guard has history, then export and re-import it.
    const child = spawn(process.execPath, [BIN, "start", "--config", config], { stdio: "ignore" });
    children.push(child);
    await waitFor("blocks", async () => {
      const h = await height(`http://127.0.0.1:${port}`);
      return h !== undefined && h >= 2 ? h : undefined;
    });
    const exited = new Promise((d) => child.once("exit", d));
    child.kill("SIGTERM");
    await exited;
    const exported = await cli([
      "keys",
      "export-guard",
      "--config",
      config,
      "--output",
      join(dir, "guard.json"),
    ]);
    expect(exported.code, exported.stderr).toBe(0);
    const history = JSON.parse(readFileSync(join(dir, "guard.json"), "utf8"));
    expect(JSON.stringify(history)).toContain("vitalstream-devnet");
    const imported = await cli([
      "keys",
      "import-guard",
      "--config",
      config,
      "--input",
      join(dir, "guard.json"),
    ]);
    expect(imported.code, imported.stderr).toBe(0);

    // Offline backup of the stopped node.
    const backup = await cli(["backup", "--config", config, "--output", join(dir, "b.tar.gz")]);
    expect(backup.code, backup.stderr).toBe(0);
    expect(JSON.parse(backup.stdout).head.height).toBeGreaterThanOrEqual(2);
    expect(existsSync(join(dir, "b.tar.gz"))).toBe(true);
    const again = await cli(["backup", "--config", config, "--output", join(dir, "b.tar.gz")]);
    expect(again.code).toBe(1);
    const corrupt = join(dir, "corrupt.tar.gz");
    const bytes = readFileSync(join(dir, "b.tar.gz"));
    bytes[Math.floor(bytes.length / 2)]! ^= 0xff;
    writeFileSync(corrupt, bytes);
    const restoreCorrupt = await cli(["restore", "--input", corrupt, "--config", config, "--force"]);
    expect(restoreCorrupt.code).toBe(1);
    expect(restoreCorrupt.stderr).toMatch(/^error: .*\[BACKUP_/);
  });

  it("bad input: one clear error line, no stack trace", async () => {
    const dir = mkdtempSync(join(tmpdir(), "vs-bad-"));
    writeFileSync(
      join(dir, "config.json"),
      JSON.stringify({ genesisFile: "g.json", dataDir: "d", bogus: 1 }),
    );
    const cases = [
      await cli(["start", "--config", join(dir, "missing.json")]),
      await cli(["start", "--config", join(dir, "config.json")]),
      await cli(["status", "--rpc", "http://127.0.0.1:1"]),
      await cli(["init", "--dir", dir, "--validators", "0"]),
      await cli(["verify"]),
    ];
    for (const c of cases) {
      expect(c.code).not.toBe(0);
      expect(c.stderr).not.toMatch(/\n\s+at /);
      expect(c.stderr.trim().length).toBeGreaterThan(0);
    }
    expect(cases[0]!.stderr).toMatch(/cannot read config/);
    expect(cases[1]!.stderr).toMatch(/bogus|unrecognized/i);
    expect(cases[2]!.stderr).toMatch(/cannot reach/);
    expect(cases[3]!.stderr).toMatch(/--validators/);
    expect(cases[4]!.stderr).toMatch(/--config/);
  });
});
