/**
 * Monitoring, for real: a Prometheus server (Debian's `prometheus`, loopback only) scrapes a
 * 4-validator network of processes (TLS between peers, consortium certificates) with the alert
 * rules of deploy/kubernetes/prometheus-rules.yaml loaded. Through Prometheus's HTTP API: the
 * metrics exist, "validator offline" fires after a validator is killed (and "consensus stalled"
 * does not, three of four still commit), and every PromQL expression of the Grafana dashboard
 * (deploy/kubernetes/grafana-dashboard.yaml) returns data.
 */
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { join } from "node:path";
import { Wallet } from "ethers";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parse, stringify } from "yaml";
import { cli, ROOT as REPO, signRecord, waitFor } from "./helpers.ts";
import { ProcessNet } from "./processNet.ts";

const VALIDATORS = ["validator-0", "validator-1", "validator-2", "validator-3"];
const JOB = "vitalstream-validator";
const prometheusInstalled = spawnSync("prometheus", ["--version"], { stdio: "ignore" }).status === 0;
if (!prometheusInstalled) {
  if (process.env.CI === "true") throw new Error("prometheus is missing in CI: apt-get install prometheus");
  console.warn("skipped: the Prometheus server is not installed (apt-get install prometheus)");
}

let net: ProcessNet;
let prometheus: ChildProcess | null = null;
let promUrl = "";
let promLog = "";

async function freePort(): Promise<number> {
  return new Promise((done, fail) => {
    const s = createServer();
    s.once("error", fail);
    s.listen(0, "127.0.0.1", () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => done(port));
    });
  });
}

interface Sample {
  metric: Record<string, string>;
  value: [number, string];
}

async function query(expr: string): Promise<Sample[]> {
  const r = await fetch(`${promUrl}/api/v1/query?query=${encodeURIComponent(expr)}`);
  const body = (await r.json()) as { status: string; error?: string; data?: { result: Sample[] } };
  if (body.status !== "success") throw new Error(`${expr}: ${body.error}`);
  return body.data!.result;
}

async function alerts(): Promise<{ labels: Record<string, string>; state: string }[]> {
  const r = await fetch(`${promUrl}/api/v1/alerts`);
  return ((await r.json()) as { data: { alerts: { labels: Record<string, string>; state: string }[] } }).data
    .alerts;
}

async function allReach(target: number): Promise<void> {
  await waitFor(`the validators to reach height ${target}`, async () => {
    const hs = await Promise.all(VALIDATORS.map((n) => net.height(n)));
    return hs.every((h) => h !== undefined && h >= target) ? true : undefined;
  });
}

beforeAll(async () => {
  if (!prometheusInstalled) return;
  net = await ProcessNet.init({ validators: 4 });
  const certs = await cli(["certs", "--dir", net.dir]);
  expect(certs.code, certs.stderr).toBe(0);
  for (const m of net.members) {
    const config = JSON.parse(readFileSync(m.config, "utf8"));
    config.p2p.encryption = "tls";
    writeFileSync(m.config, JSON.stringify(config, null, 2));
  }
  net.startAll();
  await allReach(3);
  // One audit record, so that committed-transaction series move.
  const chainId = JSON.parse(readFileSync(join(net.dir, "genesis.json"), "utf8")).evmChainId;
  const raw = await signRecord(new Wallet(net.accounts()[0]!.privateKey), chainId, 0, "monitoring");
  await fetch(net.member("validator-0").url, {
    method: "POST",
    body: JSON.stringify({ jsonrpc: "2.0", id: 1, method: "eth_sendRawTransaction", params: [raw] }),
  });

  const dir = join(net.dir, "prometheus");
  mkdirSync(join(dir, "data"), { recursive: true });
  const rules = parse(readFileSync(join(REPO, "deploy/kubernetes/prometheus-rules.yaml"), "utf8"));
  writeFileSync(join(dir, "rules.yaml"), stringify(rules.spec));
  writeFileSync(
    join(dir, "prometheus.yml"),
    stringify({
      global: { scrape_interval: "1s", evaluation_interval: "1s", scrape_timeout: "900ms" },
      rule_files: ["rules.yaml"],
      scrape_configs: [
        {
          job_name: JOB,
          static_configs: net.members.map((m) => ({
            targets: [new URL(m.metricsUrl).host],
            labels: { validator: m.name },
          })),
        },
      ],
    }),
  );
  const port = await freePort();
  promUrl = `http://127.0.0.1:${port}`;
  prometheus = spawn(
    "prometheus",
    [
      `--config.file=${join(dir, "prometheus.yml")}`,
      `--storage.tsdb.path=${join(dir, "data")}`,
      `--web.listen-address=127.0.0.1:${port}`,
      "--log.level=warn",
    ],
    { stdio: ["ignore", "pipe", "pipe"] },
  );
  prometheus.stderr!.on("data", (d: Buffer) => {
    promLog += d.toString();
  });
  await waitFor(
    "Prometheus to be ready",
    async () => ((await fetch(`${promUrl}/-/ready`)).status === 200 ? true : undefined),
    30_000,
  ).catch((e: Error) => {
    throw new Error(`${e.message}\n${promLog}`);
  });
  // Enough scrapes for rate() over every target.
  await waitFor("every validator scraped", async () => {
    const up = await query(`up{job="${JOB}"} == 1`);
    return up.length === 4 ? true : undefined;
  });
  await new Promise((d) => setTimeout(d, 5_000));
}, 150_000);

afterAll(async () => {
  if (prometheus !== null && prometheus.exitCode === null) {
    const exited = new Promise((d) => prometheus!.once("exit", d));
    prometheus.kill("SIGTERM");
    await exited;
  }
  await net?.stopAll();
});

describe.skipIf(!prometheusInstalled)("Prometheus scraping a 4-validator network", () => {
  it("finds the metrics the operators' alerts use, on every validator", async () => {
    for (const name of [
      "blockchain_tps",
      "blockchain_block_time_seconds",
      "blockchain_consensus_latency_ms",
      "blockchain_peer_count",
      "blockchain_tls_connections_active",
      "blockchain_height",
      "blockchain_round",
      "blockchain_rounds_per_height",
      "blockchain_mempool_transactions",
      "blockchain_sync_lag_blocks",
      "blockchain_store_size_bytes",
      "blockchain_disk_free_bytes",
      "blockchain_signer_healthy",
      "blockchain_tls_certificate_expiry_timestamp_seconds",
      "blockchain_byzantine_evidence_total",
      "process_cpu_seconds_total",
    ]) {
      const result = await query(`${name}{job="${JOB}"}`);
      expect(result.map((s) => s.metric.validator).sort(), name).toEqual(VALIDATORS);
    }
    const hsm = await query(`blockchain_hsm_operations_total{job="${JOB}",operation="sign",result="ok"}`);
    expect(hsm.map((s) => s.metric.provider)).toEqual(["local", "local", "local", "local"]);
    expect(hsm.every((s) => Number(s.value[1]) > 0)).toBe(true);
    // Every validator sees three peers over TLS, and its certificate expiry is in the future.
    for (const s of await query(`blockchain_tls_connections_active{job="${JOB}"}`))
      expect(Number(s.value[1])).toBeGreaterThanOrEqual(3);
    for (const s of await query(`blockchain_tls_certificate_expiry_timestamp_seconds{job="${JOB}"}`))
      expect(Number(s.value[1])).toBeGreaterThan(Date.now() / 1000);
    // The heights agree within a few blocks.
    const heights = (await query(`blockchain_height{job="${JOB}"}`)).map((s) => Number(s.value[1]));
    expect(Math.max(...heights) - Math.min(...heights)).toBeLessThan(20);
    expect(Math.min(...heights)).toBeGreaterThanOrEqual(3);
  });

  it("fires 'validator offline' for a killed validator, and not 'consensus stalled' (3 of 4 commit)", async () => {
    await net.kill("validator-3", "SIGKILL");
    const firing = await waitFor(
      "VitalStreamValidatorOffline to fire",
      async () => {
        const a = (await alerts()).find(
          (x) => x.labels.alertname === "VitalStreamValidatorOffline" && x.state === "firing",
        );
        return a;
      },
      150_000,
    );
    expect(firing.labels.validator).toBe("validator-3");
    expect(firing.labels.severity).toBe("critical");
    const all = await alerts();
    expect(all.filter((a) => a.labels.alertname === "VitalStreamValidatorOffline")).toHaveLength(1);
    expect(all.some((a) => a.labels.alertname === "VitalStreamConsensusStalled")).toBe(false);
    expect(all.some((a) => a.labels.alertname === "VitalStreamHsmUnavailable")).toBe(false);
  }, 180_000);

  it("answers every PromQL expression of the Grafana dashboard with data", async () => {
    const configMap = parse(readFileSync(join(REPO, "deploy/kubernetes/grafana-dashboard.yaml"), "utf8"));
    const dashboard = JSON.parse(configMap.data["vitalstream-validators.json"]) as {
      panels: { title: string; targets: { expr: string }[] }[];
    };
    const exprs = dashboard.panels.flatMap((p) => p.targets.map((t) => ({ panel: p.title, expr: t.expr })));
    expect(exprs.length).toBeGreaterThanOrEqual(18);
    const empty: string[] = [];
    for (const { panel, expr } of exprs) {
      const result = await query(expr);
      if (result.length === 0) empty.push(`${panel}: ${expr}`);
    }
    expect(empty).toEqual([]);
  });
});
