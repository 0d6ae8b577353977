/**
 * The `vitalstream` CLI as operators run it: real processes, loopback only. init, start, kill -9
 * under load, restart, tamper detection, backup and restore (through the blockchain-* aliases),
 * and Hardhat deploying through the node.
 */
import { type ChildProcess, execFile } from "node:child_process";
import { cpSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { auditLogArtifact } from "@vitalstream/contracts";
import { Contract, Wallet } from "ethers";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  AUDIT_LOG,
  cli,
  head,
  provider,
  ROOT,
  rpcCall,
  signRecord,
  startValidator,
  stop,
} from "./helpers.ts";

const run = promisify(execFile);

let port = 19_000 + Math.floor(Math.random() * 4000);

interface Net {
  dir: string;
  config: string;
  url: string;
  accounts: { address: string; privateKey: string }[];
}

async function init(): Promise<Net> {
  const dir = mkdtempSync(join(tmpdir(), "vs-proc-"));
  port += 3;
  const r = await cli([
    "init",
    "--dir",
    dir,
    "--validators",
    "1",
    "--rpc-base-port",
    String(port),
    "--p2p-base-port",
    String(port + 10_000),
    "--dev-accounts",
    "6",
    "--empty-block-interval",
    "200",
  ]);
  expect(r.code, r.stderr).toBe(0);
  const accounts = JSON.parse(readFileSync(join(dir, "accounts.json"), "utf8")).accounts;
  return { dir, config: join(dir, "validator-0/config.json"), url: `http://127.0.0.1:${port}`, accounts };
}

function startNode(net: Net, env: NodeJS.ProcessEnv = {}): Promise<ChildProcess> {
  return startValidator(net.config, net.url, env);
}

describe("a validator process", () => {
  let net: Net;
  let child: ChildProcess;

  beforeAll(async () => {
    net = await init();
    child = await startNode(net);
  });
  afterAll(async () => {
    if (child) await stop(child, "SIGKILL");
  });

  it("kill -9 during load loses no committed transaction; restart resumes the chain", async () => {
    const p = provider(net.url);
    const writers = net.accounts.slice(1, 5).map((a) => new Wallet(a.privateKey));
    const chainId = (await p.getNetwork()).chainId;
    const confirmed: string[] = [];
    let stopLoad = false;
    const load = writers.map(async (w, k) => {
      let nonce = Number(await rpcCall(net.url, "eth_getTransactionCount", [w.address, "latest"]));
      while (!stopLoad) {
        const raw = await signRecord(w, chainId, nonce, `w${k}-${nonce}`);
        try {
          const hash = (await rpcCall(net.url, "eth_sendRawTransaction", [raw])) as string;
          nonce++;
          for (let i = 0; i < 100; i++) {
            const receipt = (await rpcCall(net.url, "eth_getTransactionReceipt", [hash])) as {
              status: string;
            } | null;
            if (receipt !== null) {
              if (receipt.status === "0x1") confirmed.push(hash);
              break;
            }
            await new Promise((d) => setTimeout(d, 50));
          }
        } catch {
          return; // the node is gone
        }
      }
    });
    await new Promise((d) => setTimeout(d, 2500));
    await stop(child, "SIGKILL");
    stopLoad = true;
    await Promise.all(load);
    expect(confirmed.length).toBeGreaterThan(5);

    child = await startNode(net);
    const q = provider(net.url);
    for (const hash of confirmed) {
      const receipt = await q.getTransactionReceipt(hash);
      expect(receipt?.status, `receipt of ${hash} after kill -9`).toBe(1);
    }
    // The contract's own count agrees with the receipts: no half-applied block.
    const audit = new Contract(AUDIT_LOG, auditLogArtifact.abi, q);
    expect(Number(await audit.getFunction("count")())).toBeGreaterThanOrEqual(confirmed.length);
    const before = (await head(net.url)).height;
    for (let i = 0; i < 100 && (await head(net.url)).height <= before; i++)
      await new Promise((d) => setTimeout(d, 100));
    expect((await head(net.url)).height).toBeGreaterThan(before);
  });

  it("hardhat deploys AuditLog through the node (scripts/deploy.ts --network devnet)", async () => {
    const r = await run("npx", ["hardhat", "run", "scripts/deploy.ts", "--network", "devnet"], {
      cwd: join(ROOT, "packages/contracts"),
      env: {
        ...process.env,
        DEVNET_RPC_URL: net.url,
        DEPLOYMENTS_DIR: mkdtempSync(join(tmpdir(), "vs-deploy-")),
      },
    });
    const summary = JSON.parse(r.stdout);
    const code = await provider(net.url).getCode(summary.auditLog.address);
    expect(code).toBe(auditLogArtifact.deployedBytecode);
  });

  it("backup from the running node, restore into a fresh directory: same head and state root", async () => {
    const archive = join(net.dir, "backup.tar.gz");
    const backup = await cli(
      ["--rpc", net.url, "--admin-token-file", join(net.dir, "validator-0/admin-token"), "--output", archive],
      "blockchain-backup.js",
    );
    expect(backup.code, backup.stderr).toBe(0);
    const manifest = JSON.parse(backup.stdout);
    expect(manifest.head.height).toBeGreaterThan(0);
    await stop(child);
    const original = await startNode(net).then(async (c) => {
      const h = await head(net.url);
      await stop(c);
      return h;
    });

    // A second node directory with the same keys and config but no data.
    const fresh = mkdtempSync(join(tmpdir(), "vs-restore-"));
    cpSync(net.dir, fresh, {
      recursive: true,
      filter: (src) => !src.includes(`${join("validator-0", "data")}`),
    });
    const freshConfig = join(fresh, "validator-0/config.json");
    const restore = await cli(["--input", archive, "--config", freshConfig], "blockchain-restore.js");
    expect(restore.code, restore.stderr).toBe(0);
    const restored = JSON.parse(restore.stdout);
    expect(restored.head.blockHash).toBe(manifest.head.blockHash);
    // The restored store holds exactly the archived head; the original moved on after the backup.
    const verify = await cli(["verify", "--config", freshConfig]);
    expect(verify.code, verify.stdout + verify.stderr).toBe(0);
    expect(verify.stdout).toMatch(/^OK: /);
    expect(original.height).toBeGreaterThanOrEqual(manifest.head.height);
    // Restoring over a store refuses without --force.
    const again = await cli(["--input", archive, "--config", freshConfig], "blockchain-restore.js");
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/exists|force/i);
    // Start the restored node: it serves the archived head with the manifest's state root.
    const freshNet = { ...net, dir: fresh, config: freshConfig };
    const c = await startNode(freshNet);
    const block = await provider(net.url).send("eth_getBlockByNumber", [
      `0x${manifest.head.height.toString(16)}`,
      false,
    ]);
    expect(block.hash).toBe(manifest.head.blockHash);
    expect(block.stateRoot).toBe(manifest.head.stateRoot);
    await stop(c);
    rmSync(fresh, { recursive: true, force: true });
  });

  it("a flipped byte in the LevelDB files is reported by record, by verify and by start", async () => {
    await stop(child);
    const storeDir = join(net.dir, "validator-0/data/chain");
    // Compact so that the records are in table files, then damage one stored value in place.
    const { ClassicLevel } = await import("classic-level");
    const db = new ClassicLevel<Uint8Array, Uint8Array>(storeDir, {
      keyEncoding: "view",
      valueEncoding: "view",
    });
    await db.open();
    await db.compactRange(Uint8Array.of(0), Uint8Array.of(255));
    // A block in the middle of the chain (the head is also read when the chain opens).
    const blocks: { key: Uint8Array; value: Uint8Array }[] = [];
    for await (const [key, value] of db.iterator({ gte: Uint8Array.of(2), lt: Uint8Array.of(3) }))
      blocks.push({ key, value });
    const target: { key: Uint8Array; value: Uint8Array } | undefined = blocks[Math.floor(blocks.length / 2)];
    await db.close();
    const tables = readdirSync(storeDir)
      .filter((f) => f.endsWith(".ldb"))
      .map((f) => join(storeDir, f));
    let flipped = false;
    for (const table of tables) {
      const bytes = readFileSync(table);
      const at = bytes.indexOf(Buffer.from(target!.value));
      if (at < 0) continue;
      bytes[at + Math.floor(target!.value.length / 2)]! ^= 0x01;
      writeFileSync(table, bytes);
      flipped = true;
      break;
    }
    expect(
      flipped,
      `value not found in ${tables.length} tables (${tables.map((t) => statSync(t).size)})`,
    ).toBe(true);
    const record = `Block/${Buffer.from(target!.key.subarray(1)).toString("hex")}`;

    const verify = await cli(["verify", "--config", net.config]);
    expect(verify.code).toBe(3);
    expect(verify.stdout).toContain(record);
    expect(verify.stdout).toMatch(/failed authentication/);

    const start = await cli(["start", "--config", net.config]);
    expect(start.code).toBe(1);
    expect(start.stderr).toContain(record);
    expect(start.stderr).not.toMatch(/\n\s+at /); // no stack trace
  });
});

describe("crash points: a node killed at any point of the commit path resumes at its last committed block", () => {
  it.each(["after-wal-append", "before-block-commit", "after-block-commit"])("%s", async (point) => {
    const net = await init();
    const child = await startNode(net, { VITALSTREAM_CRASH_POINT: point, VITALSTREAM_CRASH_HEIGHT: "4" });
    // A writer keeps transactions coming so that the crashed blocks carry some.
    const writer = new Wallet(net.accounts[1]!.privateKey);
    const chainId = Number(await rpcCall(net.url, "eth_chainId", []));
    let nonce = 0;
    let done = false;
    const exited = new Promise<string | null>((d) =>
      child.once("exit", (_code, signal) => {
        done = true;
        d(signal);
      }),
    );
    while (!done) {
      const raw = await signRecord(writer, chainId, nonce, `c-${nonce}`);
      try {
        await rpcCall(net.url, "eth_sendRawTransaction", [raw]);
        nonce++;
      } catch {}
      await new Promise((d) => setTimeout(d, 20));
    }
    expect(await exited).toBe("SIGKILL");

    const verify = await cli(["verify", "--config", net.config]);
    expect(verify.code, verify.stdout + verify.stderr).toBe(0);
    const restarted = await startNode(net);
    try {
      const h = (await head(net.url)).height;
      expect(h).toBeGreaterThanOrEqual(3);
      // What the chain reports committed is all there: the contract's record count lies between the
      // writer's committed nonce before and after reading it (the node keeps committing meanwhile).
      const nonceBefore = Number(
        await rpcCall(net.url, "eth_getTransactionCount", [writer.address, "latest"]),
      );
      expect(nonceBefore).toBeGreaterThan(0);
      const audit = new Contract(AUDIT_LOG, auditLogArtifact.abi, provider(net.url));
      const count = Number(await audit.getFunction("count")());
      const nonceAfter = Number(
        await rpcCall(net.url, "eth_getTransactionCount", [writer.address, "latest"]),
      );
      expect(count).toBeGreaterThanOrEqual(nonceBefore);
      expect(count).toBeLessThanOrEqual(nonceAfter);
      for (let i = 0; i < 100 && (await head(net.url)).height <= h + 1; i++)
        await new Promise((d) => setTimeout(d, 100));
      expect((await head(net.url)).height).toBeGreaterThan(h + 1);
    } finally {
      await stop(restarted);
    }
  });
});
