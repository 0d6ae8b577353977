/**
 * The node's Prometheus endpoint, in process: a one-validator network with metrics on an ephemeral
 * port, a transaction committed, then the exposition is parsed and checked value by value.
 */

import { auditLogArtifact } from "@vitalstream/contracts";
import { Contract, id } from "ethers";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AUDIT_LOG_ADDRESS } from "../../src/runtime/init.ts";
import type { RunningNode } from "../../src/runtime/node.ts";
import { start, tempNetwork, wallet } from "../fixtures/network.ts";

let node: RunningNode;
let privateKey: string;

/** name{labels} -> value, from the text format (comments skipped). */
function parse(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split("\n")) {
    if (line === "" || line.startsWith("#")) continue;
    const at = line.lastIndexOf(" ");
    out.set(line.slice(0, at), Number(line.slice(at + 1)));
  }
  return out;
}

async function scrape(): Promise<{ text: string; values: Map<string, number>; type: string | null }> {
  const r = await fetch(node.metricsUrl!);
  expect(r.status).toBe(200);
  const text = await r.text();
  return { text, values: parse(text), type: r.headers.get("content-type") };
}

beforeAll(async () => {
  const net = await tempNetwork({ emptyBlockIntervalMs: 100 });
  net.config.metrics = { enabled: true, host: "127.0.0.1", port: 0 };
  privateKey = net.init.accounts[0]!.privateKey;
  node = await start(net.config);
}, 60_000);

afterAll(async () => {
  await node?.stop();
});

describe("Prometheus metrics", () => {
  it("serve the text format on their own listener, and nothing else there", async () => {
    expect(node.metricsUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/metrics$/);
    const { type, text } = await scrape();
    expect(type).toMatch(/^text\/plain; version=0\.0\.4/);
    expect(text).toContain("# TYPE blockchain_hsm_operations_total counter");
    const other = await fetch(node.metricsUrl!.replace("/metrics", "/admin/backup"));
    expect(other.status).toBe(404);
    expect(await other.text()).not.toMatch(/\n\s+at /);
  });

  it("count committed transactions and blocks, and report height, TPS and timings", async () => {
    const before = (await scrape()).values;
    const log = new Contract(AUDIT_LOG_ADDRESS, auditLogArtifact.abi, wallet(privateKey, node.rpcUrl!));
    const tx = await log.getFunction("record")(id("subject"), id("record.read"), id("doc"));
    await tx.wait();
    // The collectors read the host's counters at scrape time; give the 1 s TPS sampler a tick.
    await new Promise((d) => setTimeout(d, 1_200));
    const after = (await scrape()).values;
    expect(after.get("blockchain_transactions_committed_total")).toBe(
      (before.get("blockchain_transactions_committed_total") ?? 0) + 1,
    );
    expect(after.get("blockchain_height")!).toBeGreaterThanOrEqual(before.get("blockchain_height")! + 1);
    expect(after.get("blockchain_height")!).toBeLessThanOrEqual(node.chain.head.height);
    expect(after.get("blockchain_blocks_committed_total")!).toBeGreaterThan(
      before.get("blockchain_blocks_committed_total")!,
    );
    expect(after.get("blockchain_tps")!).toBeGreaterThan(0);
    expect(after.get("blockchain_block_time_seconds")!).toBeGreaterThan(0);
    expect(after.get("blockchain_consensus_latency_ms")!).toBeGreaterThanOrEqual(0);
    expect(after.get("blockchain_rounds_per_height")).toBe(1);
    expect(after.get("blockchain_is_validator")).toBe(1);
    expect(after.get("blockchain_halted")).toBe(0);
    expect(after.get("blockchain_block_interval_seconds_count")!).toBeGreaterThan(0);
  });

  it("count every call to the key provider by provider, operation and result, with its latency", async () => {
    const { values } = await scrape();
    const signs = values.get(
      'blockchain_hsm_operations_total{provider="local",operation="sign",result="ok"}',
    );
    expect(signs!).toBeGreaterThan(0);
    // The storage key was wrapped (a new store) or unwrapped once at start; the public key read to
    // find our validator index.
    const storageKeyOps =
      (values.get('blockchain_hsm_operations_total{provider="local",operation="wrap",result="ok"}') ?? 0) +
      (values.get('blockchain_hsm_operations_total{provider="local",operation="unwrap",result="ok"}') ?? 0);
    expect(storageKeyOps).toBe(1);
    expect(
      values.get('blockchain_hsm_operations_total{provider="local",operation="public_key",result="ok"}')!,
    ).toBeGreaterThanOrEqual(1);
    expect(values.get('blockchain_signer_latency_seconds_count{provider="local",operation="sign"}')).toBe(
      signs,
    );
    expect(values.get("blockchain_signer_healthy")).toBe(1);
  });

  it("report the mempool, the store on disk, the disk, peers and process metrics", async () => {
    const { values } = await scrape();
    expect(values.get("blockchain_mempool_transactions")).toBe(0);
    expect(values.get("blockchain_store_size_bytes")!).toBeGreaterThan(0);
    expect(values.get("blockchain_disk_free_bytes")!).toBeGreaterThan(0);
    expect(values.get("blockchain_disk_total_bytes")!).toBeGreaterThanOrEqual(
      values.get("blockchain_disk_free_bytes")!,
    );
    expect(values.get("blockchain_peer_count")).toBe(0);
    expect(values.get("blockchain_tls_connections_active")).toBe(0);
    expect(values.get("blockchain_sync_lag_blocks")).toBe(0);
    expect(values.get("blockchain_validator_missed_votes_total")).toBeUndefined(); // one validator, never absent
    expect(values.get("process_cpu_seconds_total")!).toBeGreaterThan(0);
    expect(values.get("process_resident_memory_bytes")!).toBeGreaterThan(0);
    // No PKI configured: no certificate expiry series.
    expect([...values.keys()].some((k) => k.startsWith("blockchain_tls_certificate_expiry"))).toBe(false);
  });
});
