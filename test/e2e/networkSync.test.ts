/**
 * Block sync at scale: validators 0-2 hold 10,000 certified blocks (written by the chain builder,
 * each signed by their three keys); validator-3 starts empty, fetches and verifies every block
 * from them, then all four commit new blocks together. The sync rate is printed.
 */
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { loadNodeConfig } from "../../packages/node/src/runtime/config.ts";
import { buildChain } from "../../packages/node/test/fixtures/chainBuilder.ts";
import { cli, waitFor } from "./helpers.ts";
import { ProcessNet } from "./processNet.ts";

const BLOCKS = 10_000;
const VALIDATORS = ["validator-0", "validator-1", "validator-2", "validator-3"];
let net: ProcessNet | undefined;

afterAll(async () => {
  await net?.stopAll();
});

describe("block sync", () => {
  it(`a new validator syncs ${BLOCKS} blocks from its peers, verifies them, and joins consensus`, async () => {
    net = await ProcessNet.init({ validators: 4 });
    const n = net;
    const configs = n.members.map((m) => loadNodeConfig(m.config));
    // Validators 0-2 hold the chain their keys signed; validator-3 is new.
    const built = await buildChain({
      targets: configs.slice(0, 3),
      signerConfigs: configs.slice(0, 3),
      blocks: BLOCKS,
    });
    expect(built.height).toBe(BLOCKS);

    const started = Date.now();
    n.startAll();
    await waitFor(
      `validator-3 to sync ${BLOCKS} blocks`,
      async () => {
        const h = await n.height("validator-3");
        return h !== undefined && h >= BLOCKS ? true : undefined;
      },
      240_000,
    );
    const seconds = (Date.now() - started) / 1000;
    console.log(
      `block sync: ${BLOCKS} blocks in ${seconds.toFixed(1)} s from process start (${Math.round(BLOCKS / seconds)} blocks/s)`,
    );
    await waitFor("the sync summary", async () =>
      /block sync finished/.test(n.log("validator-3")) ? true : undefined,
    );
    expect(n.log("validator-3")).toMatch(/"blocks":1\d{4},[^\n]*"msg":"block sync finished"/);

    // Then consensus resumes with all four, on the same chain.
    await waitFor(
      "new heights after the sync",
      async () => {
        const hs = await Promise.all(VALIDATORS.map((v) => n.height(v)));
        return hs.every((h) => h !== undefined && h >= BLOCKS + 3) ? true : undefined;
      },
      60_000,
    );
    const sample = [1, 2, 5_000, BLOCKS - 1, BLOCKS, BLOCKS + 1, BLOCKS + 2];
    for (const v of VALIDATORS.slice(1)) {
      for (const h of sample) {
        const [a] = await n.hashes("validator-0", h, h);
        const [b] = await n.hashes(v, h, h);
        expect(b, `${v} at ${h}`).toBe(a);
      }
    }
    // Every synced block passed certificate verification: the stores re-verify offline too.
    await n.kill("validator-3", "SIGTERM");
    const verify = await cli(["verify", "--config", join(n.member("validator-3").dir, "config.json")]);
    expect(verify.code, verify.stderr).toBe(0);
  }, 420_000);
});
