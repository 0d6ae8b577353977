/**
 * REVOCATION_DB_PATH in the node: a validator whose consensus key is on the list does not sign
 * (the double-sign guard refuses, HSM_KEY_REVOKED), and signs again when the list drops it.
 */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { createLogger } from "../../src/runtime/logger.ts";
import { type RunningNode, startNode } from "../../src/runtime/node.ts";
import { tempNetwork } from "../fixtures/network.ts";

let node: RunningNode | undefined;

afterAll(async () => {
  await node?.stop();
});

async function waitFor(what: string, probe: () => boolean, ms = 20_000): Promise<void> {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    if (probe()) return;
    await new Promise((d) => setTimeout(d, 50));
  }
  throw new Error(`timed out waiting for ${what}`);
}

describe("the node's key revocation list", () => {
  it("keeps a revoked validator from signing, and lets it sign once the list drops it", async () => {
    const net = await tempNetwork({ emptyBlockIntervalMs: 50 });
    const list = join(net.dir, "revoked.json");
    const publicKey = net.init.genesis.validators[0]!.publicKey;
    writeFileSync(list, JSON.stringify({ revoked: [{ publicKey, reason: "test: key exposed" }] }));
    node = await startNode(net.config, {
      logger: createLogger({ level: "silent" }),
      env: { ...process.env, REVOCATION_DB_PATH: list },
    });
    // One validator: without its signature nothing commits.
    await waitFor("a refused signature", () => node!.host.counters.signFailures > 0);
    await new Promise((d) => setTimeout(d, 1_000));
    expect(node.chain.head.height).toBe(0);
    expect(node.host.counters.signatures).toBe(0);

    writeFileSync(list, JSON.stringify({ revoked: [] }));
    await waitFor("blocks after the key left the list", () => node!.chain.head.height >= 2);
    expect(node.host.counters.signatures).toBeGreaterThan(0);
  }, 60_000);

  it("refuses to start on an unreadable list, naming it", async () => {
    const net = await tempNetwork();
    await expect(
      startNode(net.config, {
        logger: createLogger({ level: "silent" }),
        env: { ...process.env, REVOCATION_DB_PATH: join(net.dir, "missing.json") },
      }),
    ).rejects.toThrow(/missing\.json/);
  }, 60_000);
});
