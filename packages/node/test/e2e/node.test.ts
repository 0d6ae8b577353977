/**
 * A one-validator node, in process, driven by a real Ethereum client (ethers v6) over HTTP
 * JSON-RPC: deploy, record, read back, restart, and every kind of bad input.
 */
import {
  AUDIT_EVENT_TOPIC,
  auditLogArtifact,
  decodeAuditEvent,
  verifyAuditChain,
} from "@vitalstream/contracts";
import { Contract, ContractFactory, id, Transaction, Wallet } from "ethers";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AUDIT_LOG_ADDRESS } from "../../src/runtime/init.ts";
import type { RunningNode } from "../../src/runtime/node.ts";
import { provider, rpc, start, tempNetwork, wallet } from "../fixtures/network.ts";

let net: Awaited<ReturnType<typeof tempNetwork>>;
let node: RunningNode;
let url: string;

beforeAll(async () => {
  net = await tempNetwork();
  node = await start(net.config);
  url = node.rpcUrl!;
});

afterAll(async () => {
  await node?.stop();
});

async function call(
  method: string,
  params: unknown[] = [],
): Promise<{ result?: unknown; error?: { code: number; message: string; data?: unknown } }> {
  const { json } = await rpc(url, { jsonrpc: "2.0", id: 1, method, params });
  return json as { result?: unknown; error?: { code: number; message: string } };
}

describe("a real client deploys and uses AuditLog", () => {
  let deployed: Contract;
  let deployer: Wallet;

  it("deploys, grants, records and reads the events back with eth_getLogs; the hash chain verifies", async () => {
    deployer = wallet(net.init.accounts[0]!.privateKey, url);
    let nonce = await deployer.getNonce();
    const factory = new ContractFactory(auditLogArtifact.abi, auditLogArtifact.bytecode, deployer);
    deployed = (await factory.deploy(deployer.address, { nonce: nonce++ })) as Contract;
    await deployed.waitForDeployment();
    const address = await deployed.getAddress();
    expect(await deployer.provider!.getCode(address)).toBe(auditLogArtifact.deployedBytecode);
    await (
      await deployed.getFunction("grantRole")(id("WRITER_ROLE"), deployer.address, { nonce: nonce++ })
    ).wait();
    const receipts = [];
    const sent = [];
    for (let i = 0; i < 5; i++)
      sent.push(
        await deployed.getFunction("record")(id(`patient-${i}`), id("record.read"), id(`doc-${i}`), {
          nonce: nonce++,
        }),
      );
    for (const tx of sent) receipts.push(await tx.wait());
    expect(receipts.every((r) => r?.status === 1)).toBe(true);

    const logs = await deployer.provider!.getLogs({
      address,
      topics: [AUDIT_EVENT_TOPIC],
      fromBlock: 0,
      toBlock: "latest",
    });
    expect(logs).toHaveLength(5);
    const events = logs.map((log) => {
      const decoded = decodeAuditEvent(log);
      if (!decoded.ok) throw new Error(decoded.error);
      return decoded.value;
    });
    expect(events.map((e) => e.seq)).toEqual([1n, 2n, 3n, 4n, 5n]);
    const [count, head] = (await deployed.getFunction("checkpoint")()) as [bigint, string];
    const verified = verifyAuditChain(events, { expected: { count, head: head as `0x${string}` } });
    expect(verified.ok).toBe(true);
    // The block timestamp the contract saw is the block's.
    const block = await deployer.provider!.getBlock(logs[0]!.blockNumber);
    expect(events[0]!.timestamp).toBe(BigInt(block!.timestamp));
  });

  it("the genesis predeploy works, with the dev accounts as writers", async () => {
    const writer = wallet(net.init.accounts[1]!.privateKey, url);
    const predeploy = new Contract(AUDIT_LOG_ADDRESS, auditLogArtifact.abi, writer);
    const receipt = await (await predeploy.getFunction("record")(id("s"), id("a"), id("d"))).wait();
    expect(receipt?.status).toBe(1);
    expect(await predeploy.getFunction("count")()).toBe(1n);
  });

  it("a reverting call reports the revert reason (eth_call) and a failed receipt (status 0)", async () => {
    const stranger = new Wallet(Wallet.createRandom().privateKey);
    const result = await call("eth_call", [
      {
        from: stranger.address,
        to: await deployed.getAddress(),
        data: deployed.interface.encodeFunctionData("record", [id("s"), id("a"), id("d")]),
      },
      "latest",
    ]);
    expect(result.error?.code).toBe(3);
    // AccessControlUnauthorizedAccount(address,bytes32): the custom error's data is returned.
    expect(String(result.error?.data)).toMatch(/^0xe2517d3f/);
    // A transaction that reverts is mined with status 0 (gas given explicitly: estimation would refuse).
    const nonce = await deployer.getNonce();
    const tx = await deployer.sendTransaction({
      to: await deployed.getAddress(),
      data: deployed.interface.encodeFunctionData("record", [id("s"), `0x${"00".repeat(32)}`, id("d")]),
      gasLimit: 200_000,
      nonce,
    });
    const receipt = (await call("eth_getTransactionReceipt", [tx.hash])).result as Record<
      string,
      string
    > | null;
    let r = receipt;
    for (let i = 0; r === null && i < 100; i++) {
      await new Promise((d) => setTimeout(d, 50));
      r = (await call("eth_getTransactionReceipt", [tx.hash])).result as Record<string, string> | null;
    }
    expect(r?.status).toBe("0x0");
    expect(r?.revertReason).toMatch(/^0x/);
  });

  it("answers every listed method in the shape clients expect", async () => {
    const p = provider(url);
    expect((await call("web3_clientVersion")).result).toMatch(/^vitalstream\//);
    expect((await call("net_version")).result).toBe(String(net.init.genesis.evmChainId));
    expect((await call("net_listening")).result).toBe(true);
    expect((await call("net_peerCount")).result).toBe("0x0");
    expect((await call("eth_chainId")).result).toBe(`0x${net.init.genesis.evmChainId.toString(16)}`);
    expect((await call("eth_syncing")).result).toBe(false);
    expect((await call("eth_accounts")).result).toEqual([]);
    expect((await call("eth_gasPrice")).result).toBe("0x0");
    expect((await call("eth_maxPriorityFeePerGas")).result).toBe("0x0");
    const history = (await call("eth_feeHistory", ["0x4", "latest", [50]])).result as {
      baseFeePerGas: string[];
      reward: string[][];
    };
    expect(history.baseFeePerGas.length).toBeGreaterThan(1);
    expect(history.reward[0]).toEqual(["0x0"]);
    const height = await p.getBlockNumber();
    expect(height).toBeGreaterThan(3);
    const byNumber = (await call("eth_getBlockByNumber", [`0x${height.toString(16)}`, true]))
      .result as Record<string, unknown>;
    const byHash = (await call("eth_getBlockByHash", [byNumber.hash, true])).result as Record<
      string,
      unknown
    >;
    expect(byHash).toEqual(byNumber);
    const genesis = (await call("eth_getBlockByNumber", ["earliest", false])).result as Record<
      string,
      unknown
    >;
    expect(genesis.number).toBe("0x0");
    const parent = (await call("eth_getBlockByNumber", [`0x${(height - 1).toString(16)}`, false]))
      .result as Record<string, unknown>;
    expect(byNumber.parentHash).toBe(parent.hash);
    expect((await call("eth_getBlockByNumber", ["0xffffff", false])).result).toBeNull();

    const logs = await p.getLogs({ address: await deployed.getAddress(), fromBlock: 0 });
    const txHash = logs[0]!.transactionHash;
    const tx = (await call("eth_getTransactionByHash", [txHash])).result as Record<string, string>;
    expect(tx.from?.toLowerCase()).toBe(deployer.address.toLowerCase());
    expect(tx.blockNumber).toBe(`0x${logs[0]!.blockNumber.toString(16)}`);
    const receipt = (await call("eth_getTransactionReceipt", [txHash])).result as Record<string, unknown>;
    expect(receipt.status).toBe("0x1");
    expect((receipt.logs as unknown[]).length).toBe(1);
    expect((await call("eth_getTransactionByHash", [`0x${"ab".repeat(32)}`])).result).toBeNull();
    expect((await call("eth_getTransactionReceipt", [`0x${"ab".repeat(32)}`])).result).toBeNull();

    expect(
      BigInt((await call("eth_getTransactionCount", [deployer.address, "latest"])).result as string),
    ).toBe(BigInt(await deployer.getNonce("latest")));
    expect(BigInt((await call("eth_getBalance", [deployer.address, "latest"])).result as string)).toBe(
      10n ** 24n,
    );
    expect((await call("eth_getCode", [AUDIT_LOG_ADDRESS, "latest"])).result).toBe(
      auditLogArtifact.deployedBytecode,
    );
    // AuditLog's layout: AccessControl's _roles at slot 0, then _head (1) and _count (2).
    const predeploy = new Contract(AUDIT_LOG_ADDRESS, auditLogArtifact.abi, p);
    const headSlot = (await call("eth_getStorageAt", [AUDIT_LOG_ADDRESS, "0x1", "latest"])).result;
    expect(headSlot).toBe(await predeploy.getFunction("head")());
    const countSlot = (await call("eth_getStorageAt", [AUDIT_LOG_ADDRESS, "0x2", "latest"])).result as string;
    expect(BigInt(countSlot)).toBe(await predeploy.getFunction("count")());
    expect(BigInt(countSlot)).toBeGreaterThan(0n);
    const gas = (
      await call("eth_estimateGas", [
        {
          from: deployer.address,
          to: AUDIT_LOG_ADDRESS,
          data: deployed.interface.encodeFunctionData("count"),
        },
      ])
    ).result as string;
    expect(BigInt(gas)).toBeGreaterThan(21_000n);
    // Historical state is not kept: a clear error, not wrong data.
    const old = await call("eth_getBalance", [deployer.address, "0x1"]);
    expect(old.error?.code).toBe(-32000);
    expect(old.error?.message).toMatch(/historical state/);
  });

  it("serves the consensus namespace and the REST probes", async () => {
    const status = (await call("vitalstream_consensusStatus")).result as Record<string, unknown>;
    expect(status.validatorIndex).toBe(0);
    expect(status.halted).toBeNull();
    const validators = (await call("vitalstream_getValidators", ["latest"])).result as {
      publicKey: string;
    }[];
    expect(validators).toHaveLength(1);
    expect(validators[0]!.publicKey).toBe(net.init.genesis.validators[0]!.publicKey);
    const cert = (await call("vitalstream_getCommitCertificate", [1])).result as {
      blockHash: string;
      signatures: unknown[];
    };
    const block1 = (await call("eth_getBlockByNumber", ["0x1", false])).result as { hash: string };
    expect(cert.blockHash).toBe(block1.hash);
    expect(cert.signatures).toHaveLength(1);
    const rest = (await (await fetch(`${url}/consensus/status`)).json()) as { chainId: string };
    expect(rest.chainId).toBe(net.init.genesis.chainId);
    expect((await fetch(`${url}/health`)).status).toBe(200);
    const ready = await fetch(`${url}/ready`);
    expect(ready.status).toBe(200);
    expect(((await ready.json()) as { checks: { signer: { ok: boolean } } }).checks.signer.ok).toBe(true);
  });
});

describe("viem", () => {
  it("writes a record, waits for the receipt and reads the event back", async () => {
    const { createPublicClient, createWalletClient, defineChain, http, parseEventLogs } = await import(
      "viem"
    );
    const { privateKeyToAccount } = await import("viem/accounts");
    const chain = defineChain({
      id: net.init.genesis.evmChainId,
      name: "vitalstream",
      nativeCurrency: { name: "unit", symbol: "U", decimals: 18 },
      rpcUrls: { default: { http: [url] } },
    });
    const account = privateKeyToAccount(net.init.accounts[3]!.privateKey as `0x${string}`);
    const client = createPublicClient({ chain, transport: http(url), pollingInterval: 50 });
    const walletClient = createWalletClient({ chain, transport: http(url), account });
    const hash = await walletClient.writeContract({
      address: AUDIT_LOG_ADDRESS,
      abi: auditLogArtifact.abi,
      functionName: "record",
      args: [
        id("viem-subject") as `0x${string}`,
        id("record.read") as `0x${string}`,
        id("viem-doc") as `0x${string}`,
      ],
    });
    const receipt = await client.waitForTransactionReceipt({ hash, pollingInterval: 50 });
    expect(receipt.status).toBe("success");
    const events = parseEventLogs({ abi: auditLogArtifact.abi, logs: receipt.logs, eventName: "AuditEvent" });
    expect(events).toHaveLength(1);
    const count = await client.readContract({
      address: AUDIT_LOG_ADDRESS,
      abi: auditLogArtifact.abi,
      functionName: "count",
    });
    expect(count).toBeGreaterThanOrEqual(1n);
    expect(await client.getChainId()).toBe(net.init.genesis.evmChainId);
  });
});

describe("bad input gets correct JSON-RPC errors and the node keeps serving", () => {
  const signed = async (fields: Record<string, unknown>, key = net.init.accounts[0]!.privateKey) =>
    new Wallet(key).signTransaction({
      type: 2,
      chainId: net.init.genesis.evmChainId,
      gasLimit: 100_000,
      maxFeePerGas: 0,
      maxPriorityFeePerGas: 0,
      to: AUDIT_LOG_ADDRESS,
      ...fields,
    });

  it("malformed JSON, wrong types, unknown methods, huge bodies", async () => {
    expect(((await rpc(url, "{not json")).json as { error: { code: number } }).error.code).toBe(-32700);
    expect(
      (
        (await rpc(url, { jsonrpc: "2.0", id: 1, method: "eth_getBalance", params: [42] })).json as {
          error: { code: number };
        }
      ).error.code,
    ).toBe(-32602);
    expect(
      (
        (await rpc(url, { jsonrpc: "2.0", id: 1, method: "eth_getBlockByNumber", params: ["0xzz", false] }))
          .json as { error: { code: number } }
      ).error.code,
    ).toBe(-32602);
    expect(
      ((await rpc(url, { jsonrpc: "2.0", id: 1, method: "eth_mine" })).json as { error: { code: number } })
        .error.code,
    ).toBe(-32601);
    expect(
      ((await rpc(url, { id: 1, method: "eth_chainId" })).json as { error: { code: number } }).error.code,
    ).toBe(-32600);
    const huge = await rpc(url, {
      jsonrpc: "2.0",
      id: 1,
      method: "eth_sendRawTransaction",
      params: [`0x${"00".repeat(6 * 1024 * 1024)}`],
    });
    expect(huge.status).toBe(413);
    const batch = (
      await rpc(url, [
        { jsonrpc: "2.0", id: 1, method: "eth_chainId" },
        { jsonrpc: "2.0", id: 2, method: "nope" },
      ])
    ).json as { id: number; result?: string; error?: { code: number } }[];
    expect(batch.find((r) => r.id === 1)?.result).toBe(`0x${net.init.genesis.evmChainId.toString(16)}`);
    expect(batch.find((r) => r.id === 2)?.error?.code).toBe(-32601);
    expect((await call("eth_blockNumber")).result).toMatch(/^0x/);
  });

  it("invalid transactions: bad signature, wrong chain id, unpermitted sender, nonce too low, garbage", async () => {
    const good = Transaction.from(await signed({ nonce: 0 }));
    const tampered = Transaction.from(good.serialized);
    const badSig = `${good.unsignedSerialized.slice(0, 4)}${good.serialized.slice(4, -10)}${"1".repeat(10)}`;
    const results = {
      garbage: await call("eth_sendRawTransaction", ["0xdeadbeef"]),
      badSignature: await call("eth_sendRawTransaction", [badSig]),
      wrongChain: await call("eth_sendRawTransaction", [await signed({ nonce: 0, chainId: 1 })]),
      unpermitted: await call("eth_sendRawTransaction", [
        await signed({ nonce: 0 }, Wallet.createRandom().privateKey),
      ]),
      nonceTooLow: await call("eth_sendRawTransaction", [tampered.serialized]),
    };
    expect(results.garbage.error?.code).toBe(-32602);
    expect(results.badSignature.error).toBeDefined();
    expect(results.wrongChain.error?.message).toMatch(/invalid chain id/);
    expect(results.unpermitted.error?.message).toMatch(/sender not permitted/);
    expect(results.nonceTooLow.error?.message).toMatch(/nonce too low/);
    expect((await call("eth_chainId")).result).toBeDefined();
  });

  it("out-of-range parameters are invalid params, not internal errors", async () => {
    const slot = await call("eth_getStorageAt", [AUDIT_LOG_ADDRESS, `0x1${"0".repeat(64)}`, "latest"]);
    expect(slot.error?.code).toBe(-32602);
    const gas = await call("eth_call", [{ to: AUDIT_LOG_ADDRESS, gas: "0x3b9aca00" }, "latest"]);
    expect(gas.error?.code).toBe(-32602);
    expect(gas.error?.message).toMatch(/call gas cap 50000000/);
    const percentiles = await call("eth_feeHistory", ["0x1", "latest", Array(101).fill(50)]);
    expect(percentiles.error?.code).toBe(-32602);
  });

  it("eth_getLogs refuses a range over the limit", async () => {
    const result = await call("eth_getLogs", [{ fromBlock: "0x0", toBlock: "0x100000" }]);
    expect(result.error?.code).toBe(-32005);
  });
});

describe("restart", () => {
  it("keeps chain, state, receipts and nonces across a stop and start", async () => {
    const p = provider(url);
    const head = await p.getBlockNumber();
    const nonce = await p.getTransactionCount(net.init.accounts[0]!.address);
    const logs = await p.getLogs({ fromBlock: 0 });
    const block = await p.getBlock(head);
    await node.stop();
    node = await start(net.config);
    url = node.rpcUrl!;
    const q = provider(url);
    expect(await q.getTransactionCount(net.init.accounts[0]!.address)).toBe(nonce);
    expect((await q.getBlock(head))?.hash).toBe(block?.hash);
    expect(await q.getLogs({ fromBlock: 0, toBlock: head })).toHaveLength(logs.length);
    const receipt = await q.getTransactionReceipt(logs[0]!.transactionHash);
    expect(receipt?.status).toBe(1);
    // And it keeps committing.
    const w = wallet(net.init.accounts[2]!.privateKey, url);
    const predeploy = new Contract(AUDIT_LOG_ADDRESS, auditLogArtifact.abi, w);
    expect((await (await predeploy.getFunction("record")(id("x"), id("y"), id("z"))).wait())?.status).toBe(1);
  });
});
