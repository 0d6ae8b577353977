/**
 * A 4-validator network (plus an observer) as separate processes on loopback: agreement, gossip,
 * crash and restart under load, a halt without quorum and its recovery, a paused (partitioned)
 * validator catching up, and peers the network must refuse.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { noise } from "@chainsafe/libp2p-noise";
import { yamux } from "@chainsafe/libp2p-yamux";
import { generateKeyPair, generateKeyPairFromSeed } from "@libp2p/crypto/keys";
import { tcp } from "@libp2p/tcp";
import { multiaddr } from "@multiformats/multiaddr";
import { Wallet } from "ethers";
import { createLibp2p, type Libp2p } from "libp2p";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { signRecord, waitFor } from "./helpers.ts";
import { ProcessNet } from "./processNet.ts";

const VALIDATORS = ["validator-0", "validator-1", "validator-2", "validator-3"];
let net: ProcessNet;
let chainId: number;

async function heights(names: string[]): Promise<(number | undefined)[]> {
  return Promise.all(names.map((n) => net.height(n)));
}

/** Waits until every named node has committed at least `target`. */
async function allReach(names: string[], target: number, ms = 60_000): Promise<void> {
  await waitFor(
    `${names.join(", ")} to reach height ${target}`,
    async () => ((await heights(names)).every((h) => h !== undefined && h >= target) ? true : undefined),
    ms,
  );
}

async function maxHeight(names: string[]): Promise<number> {
  return Math.max(...(await heights(names)).map((h) => h ?? 0));
}

/** A bare libp2p node (Noise, yamux) with the given key, for the refused-peer cases. */
async function rawPeer(seed?: Uint8Array): Promise<Libp2p> {
  const privateKey =
    seed === undefined ? await generateKeyPair("Ed25519") : await generateKeyPairFromSeed("Ed25519", seed);
  return createLibp2p({
    privateKey,
    addresses: { listen: ["/ip4/127.0.0.1/tcp/0"] },
    transports: [tcp()],
    streamMuxers: [yamux()],
    connectionEncrypters: [noise()],
    connectionGater: { denyDialMultiaddr: () => false },
  });
}

function nodeAddress(index: number): string {
  const genesis = JSON.parse(readFileSync(join(net.dir, "genesis.json"), "utf8"));
  return `/ip4/127.0.0.1/tcp/${net.p2pPort + index}/p2p/${genesis.validators[index].nodeId}`;
}

beforeAll(async () => {
  // observer-0 runs; observer-1's permitted key is used by the test's misbehaving peer.
  net = await ProcessNet.init({ validators: 4, observers: 2 });
  chainId = JSON.parse(readFileSync(join(net.dir, "genesis.json"), "utf8")).evmChainId;
  net.startAll([...VALIDATORS, "observer-0"]);
  await allReach([...VALIDATORS, "observer-0"], 3);
}, 120_000);

afterAll(async () => {
  await net?.stopAll();
});

describe("a 4-validator network of processes", () => {
  it("every node, the observer included, holds the same block at every height", async () => {
    const target = (await maxHeight(VALIDATORS)) + 3;
    await allReach([...VALIDATORS, "observer-0"], target);
    await net.assertSameChain([...VALIDATORS, "observer-0"], target);
    for (const name of VALIDATORS) expect((await net.status(name))!.peers).toBeGreaterThanOrEqual(3);
    // The observer never signs: no validator index, and it says so.
    const observer = (await (await fetch(`${net.member("observer-0").url}/consensus/status`)).json()) as {
      validatorIndex: number | null;
    };
    expect(observer.validatorIndex).toBeNull();
    expect(net.log("observer-0")).toMatch(/following the chain as an observer/);
  });

  it("a transaction sent to any node (an observer too) reaches the proposers and commits", async () => {
    const [a, b] = net.accounts();
    const viaObserver = await signRecord(new Wallet(a!.privateKey), chainId, 0, "via-observer");
    const viaV3 = await signRecord(new Wallet(b!.privateKey), chainId, 0, "via-validator-3");
    const h1 = await fetch(net.member("observer-0").url, {
      method: "POST",
      body: JSON.stringify({
        jsonrpc: "2.0",
        id: 1,
        method: "eth_sendRawTransaction",
        params: [viaObserver],
      }),
    }).then((r) => r.json() as Promise<{ result: string }>);
    const h2 = await fetch(net.member("validator-3").url, {
      method: "POST",
      body: JSON.stringify({ jsonrpc: "2.0", id: 1, method: "eth_sendRawTransaction", params: [viaV3] }),
    }).then((r) => r.json() as Promise<{ result: string }>);
    for (const hash of [h1.result, h2.result]) {
      const receipt = (await waitFor(`receipt ${hash}`, async () => {
        const r = (await net.receipt("validator-0", hash)) as { status: string } | null;
        return r ?? undefined;
      })) as { status: string };
      expect(receipt.status).toBe("0x1");
    }
  });

  it("an outsider with a valid libp2p stack but an unlisted key is refused", async () => {
    const outsider = await rawPeer();
    try {
      // The dial itself may look successful from the outsider's side; the protocol never runs.
      const attempt = await outsider
        .dialProtocol(multiaddr(nodeAddress(0)), "/vitalstream/vitalstream-devnet/msg/1.0.0", {
          signal: AbortSignal.timeout(5_000),
        })
        .then(async (stream) => {
          stream.send(new Uint8Array([1, 1]));
          await new Promise((d) => setTimeout(d, 500));
          return "opened";
        })
        .catch((e: Error) => `refused: ${e.message}`);
      await waitFor("the refusal log line", async () =>
        /refused a peer that is not permitted/.test(net.log("validator-0")) ? true : undefined,
      );
      expect(net.log("validator-0")).toContain(outsider.peerId.toString());
      expect(attempt === "opened" ? outsider.getConnections().length : 0).toBe(0);
    } finally {
      await outsider.stop();
    }
  });

  it("a permitted peer sending garbage frames is disconnected and banned; the network keeps committing", async () => {
    const seed = Buffer.from(
      readFileSync(join(net.member("observer-1").dir, "node-key"), "utf8").trim(),
      "hex",
    );
    const bad = await rawPeer(seed);
    const before = await maxHeight(VALIDATORS);
    try {
      const stream = await bad.dialProtocol(
        multiaddr(nodeAddress(1)),
        "/vitalstream/vitalstream-devnet/msg/1.0.0",
        { signal: AbortSignal.timeout(5_000) },
      );
      for (let i = 0; i < 20; i++) {
        const junk = new Uint8Array(40).map((_, k) => (i * 31 + k * 7) & 0xff);
        junk[0] = 39; // a valid length prefix around an invalid frame
        try {
          stream.send(junk);
        } catch {
          break;
        }
        await new Promise((d) => setTimeout(d, 20));
      }
      await waitFor("the garbage peer to be disconnected", async () =>
        /disconnecting a peer/.test(net.log("validator-1")) ? true : undefined,
      );
      expect(net.log("validator-1")).toMatch(
        new RegExp(`"peer":"${bad.peerId.toString()}"[^\\n]*score limit reached`),
      );
      // Banned: a new connection attempt is refused. The old connection may still be closing on
      // the bad peer's side (a busy machine), and a dial would reuse it: hang up and dial afresh
      // until the refusal shows.
      await waitFor("the ban to refuse a reconnect", async () => {
        if (/refused a banned peer/.test(net.log("validator-1"))) return true;
        const target = multiaddr(nodeAddress(1));
        await bad.hangUp(target).catch(() => undefined);
        await bad.dial(target, { signal: AbortSignal.timeout(3_000) }).catch(() => undefined);
        return /refused a banned peer/.test(net.log("validator-1")) ? true : undefined;
      });
    } finally {
      await bad.stop();
    }
    await allReach(VALIDATORS, before + 3);
    expect(net.running("validator-1")).toBe(true);
  });

  it("kill -9 of a validator under load: the rest commit, nothing committed is lost, it syncs and votes again", async () => {
    const accounts = net.accounts().slice(2, 8);
    const wallets = accounts.map((a) => new Wallet(a.privateKey));
    const nonces = accounts.map(() => 0);
    const committed: string[] = [];
    let load = true;
    let sent = 0;
    const targets = ["validator-0", "validator-1", "validator-2"];
    const writer = (async () => {
      while (load) {
        await Promise.all(
          wallets.map(async (w, i) => {
            const raw = await signRecord(w, chainId, nonces[i]!, `load-${i}-${nonces[i]}`);
            const url = net.member(targets[(sent + i) % targets.length]!).url;
            const r = (await fetch(url, {
              method: "POST",
              body: JSON.stringify({
                jsonrpc: "2.0",
                id: 1,
                method: "eth_sendRawTransaction",
                params: [raw],
              }),
            }).then((x) => x.json())) as { result?: string };
            if (r.result !== undefined) {
              nonces[i]!++;
              committed.push(r.result);
            }
          }),
        );
        sent++;
        await new Promise((d) => setTimeout(d, 30));
      }
    })();
    await waitFor("some load", async () => (committed.length >= 30 ? true : undefined));
    await net.kill("validator-3", "SIGKILL");
    const atKill = await maxHeight(targets);
    await allReach(targets, atKill + 5);
    load = false;
    await writer;
    // Every accepted transaction commits on the survivors.
    for (const hash of committed) {
      const r = (await waitFor(`receipt ${hash}`, async () => {
        const x = (await net.receipt("validator-0", hash)) as { status: string } | null;
        return x ?? undefined;
      })) as { status: string };
      expect(r.status).toBe("0x1");
    }

    net.start("validator-3");
    const target = await maxHeight(targets);
    await allReach(["validator-3"], target, 60_000);
    // It holds every receipt the others served before it was killed.
    for (const hash of committed) expect(await net.receipt("validator-3", hash)).not.toBeNull();
    // It votes again: with validator-0 down, only validators 1-3 can make a quorum.
    await net.kill("validator-0", "SIGTERM");
    const without0 = await maxHeight(["validator-1", "validator-2", "validator-3"]);
    await allReach(["validator-1", "validator-2", "validator-3"], without0 + 3, 60_000);
    net.start("validator-0");
    const end = await maxHeight(VALIDATORS);
    await allReach(VALIDATORS, end, 60_000);
    await net.assertSameChain(VALIDATORS, end);
    // No validator ever equivocated (every node's engine checks every vote it sees).
    for (const n of VALIDATORS) expect(net.log(n)).not.toMatch(/equivocation evidence/);
  }, 240_000);

  it("two of four down: the chain halts safely and resumes when one returns", async () => {
    await net.kill("validator-2", "SIGKILL");
    await net.kill("validator-3", "SIGKILL");
    await new Promise((d) => setTimeout(d, 2_000));
    const halted = await heights(["validator-0", "validator-1"]);
    await new Promise((d) => setTimeout(d, 5_000));
    expect(await heights(["validator-0", "validator-1"])).toEqual(halted);
    // Still serving reads while halted.
    expect((await fetch(`${net.member("validator-0").url}/health`)).status).toBe(200);
    net.start("validator-2");
    await allReach(
      ["validator-0", "validator-1", "validator-2"],
      Math.max(...halted.map((h) => h ?? 0)) + 3,
      60_000,
    );
    net.start("validator-3");
    const end = await maxHeight(VALIDATORS);
    await allReach(VALIDATORS, end, 60_000);
    await net.assertSameChain(VALIDATORS, end);
  }, 180_000);

  it("a validator paused with SIGSTOP (a partition) catches up after SIGCONT", async () => {
    net.signal("validator-1", "SIGSTOP");
    try {
      const paused = (await net.height("validator-0"))!;
      await allReach(["validator-0", "validator-2", "validator-3"], paused + 8, 60_000);
    } finally {
      net.signal("validator-1", "SIGCONT");
    }
    const target = await maxHeight(["validator-0", "validator-2", "validator-3"]);
    await allReach(["validator-1"], target, 60_000);
    const end = await maxHeight(VALIDATORS);
    await allReach(VALIDATORS, end, 60_000);
    await net.assertSameChain([...VALIDATORS, "observer-0"], end);
  }, 180_000);
});
