import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { isAbsolute, join, relative } from "node:path";
import { describe, expect, it } from "vitest";
import {
  CONFIG_FORMAT,
  ConfigError,
  dataPaths,
  loadNodeConfig,
  type NodeConfig,
  parseNodeConfig,
} from "../../src/runtime/config.ts";

const minimal = { genesisFile: "../genesis.json", dataDir: "data" };

/** Writes `content` (an object as JSON, or raw text) to <tmp>/<sub>/config.json. */
function configFile(content: unknown, sub = "validator-0"): { dir: string; path: string } {
  const root = mkdtempSync(join(tmpdir(), "vs-config-"));
  const dir = join(root, sub);
  mkdirSync(dir, { recursive: true });
  const path = join(dir, "config.json");
  writeFileSync(path, typeof content === "string" ? content : JSON.stringify(content, null, 2));
  return { dir, path };
}

function configError(f: () => unknown): ConfigError {
  try {
    f();
  } catch (e) {
    if (e instanceof ConfigError) return e;
    throw e;
  }
  throw new Error("expected a ConfigError, the config loaded");
}

describe("loadNodeConfig", () => {
  it("resolves every relative path against the config file's directory, and keeps absolute ones", () => {
    const { dir, path } = configFile({
      ...minimal,
      nodeKeyFile: "keys/node-key",
      signer: {
        provider: "local",
        keystorePath: "keystore.json",
        passphraseFile: "./secrets/pass",
        keyId: "k",
      },
      storageKey: {
        provider: "pkcs11",
        library: "../lib/libsofthsm2.so",
        pinFile: "/run/secrets/pin",
        tokenFile: "token",
        clientSecretFile: "client-secret",
      },
      rpc: { adminTokenFile: "admin-token", tls: { certFile: "tls/cert.pem", keyFile: "/etc/tls/key.pem" } },
    });
    const config = loadNodeConfig(path);
    expect(config.genesisFile).toBe(join(dir, "..", "genesis.json"));
    expect(config.dataDir).toBe(join(dir, "data"));
    expect(config.nodeKeyFile).toBe(join(dir, "keys", "node-key"));
    expect(config.signer).toEqual({
      provider: "local",
      keystorePath: join(dir, "keystore.json"),
      passphraseFile: join(dir, "secrets", "pass"),
      keyId: "k", // not a path: unchanged
    });
    expect(config.storageKey).toEqual({
      provider: "pkcs11",
      library: join(dir, "..", "lib", "libsofthsm2.so"),
      pinFile: "/run/secrets/pin",
      tokenFile: join(dir, "token"),
      clientSecretFile: join(dir, "client-secret"),
    });
    expect(config.rpc.adminTokenFile).toBe(join(dir, "admin-token"));
    expect(config.rpc.tls).toEqual({ certFile: join(dir, "tls", "cert.pem"), keyFile: "/etc/tls/key.pem" });
    expect(dataPaths(config)).toEqual({
      store: join(dir, "data", "chain"),
      guardJournal: join(dir, "data", "signer-guard.journal"),
    });
  });

  it("leaves a PKCS#11 library given by name to the dynamic loader", () => {
    const { path } = configFile({
      ...minimal,
      storageKey: { provider: "pkcs11", library: "libsofthsm2.so" },
    });
    expect(loadNodeConfig(path).storageKey?.library).toBe("libsofthsm2.so");
  });

  it("resolves against the file's directory, not the working directory, when given a relative path", () => {
    const { dir, path } = configFile(minimal);
    const relativePath = relative(process.cwd(), path);
    expect(isAbsolute(relativePath)).toBe(false);
    const config = loadNodeConfig(relativePath);
    expect(config.dataDir).toBe(join(dir, "data"));
  });

  it("applies defaults for everything optional", () => {
    const { dir, path } = configFile(minimal);
    const config = loadNodeConfig(path);
    const expected: NodeConfig = {
      format: CONFIG_FORMAT,
      name: "validator",
      genesisFile: join(dir, "..", "genesis.json"),
      dataDir: join(dir, "data"),
      nodeKeyFile: undefined,
      signer: undefined,
      storageKey: undefined,
      observer: false,
      production: false,
      rpc: {
        enabled: true,
        host: "127.0.0.1",
        port: 8545,
        corsOrigins: [],
        maxLogsBlockRange: 10_000,
        maxLogs: 10_000,
        callGasCap: 50_000_000,
        adminTokenFile: undefined,
        tls: undefined,
      },
      store: { verifyOnStart: true },
      mempool: {},
      p2p: {
        enabled: true,
        listen: ["/ip4/0.0.0.0/tcp/26656"],
        peers: [],
        allowPeers: [],
        encryption: "noise",
        pki: undefined,
        maxFrameBytes: 16 * 1024 * 1024,
        maxQueueBytes: 64 * 1024 * 1024,
        framesPerSecond: 5_000,
        bytesPerSecond: 64 * 1024 * 1024,
        disconnectScore: 100,
        banSeconds: 60,
        statusIntervalMs: 1_000,
        reconnectIntervalMs: 2_000,
        syncBatchBlocks: 256,
        syncTimeoutMs: 30_000,
      },
      log: { level: "info" },
    };
    expect(config).toEqual(expected);
  });

  it("applies the defaults inside a section that is given in part", () => {
    const config = parseNodeConfig({ ...minimal, rpc: { port: 9000 }, store: {}, log: {} }, "/srv/v0");
    expect(config.rpc).toMatchObject({ enabled: true, host: "127.0.0.1", port: 9000, maxLogs: 10_000 });
    expect(config.store).toEqual({ verifyOnStart: true });
    expect(config.log).toEqual({ level: "info" });
  });

  it("keeps the values it is given", () => {
    const config = parseNodeConfig(
      {
        ...minimal,
        name: "hospital-a-1",
        observer: true,
        production: true,
        rpc: { enabled: false, host: "0.0.0.0", port: 0, corsOrigins: ["https://a.example"], maxLogs: 5 },
        store: { cacheSizeBytes: 0, verifyOnStart: false },
        mempool: { maxTxs: 10, minGasPrice: "1000" },
        log: { level: "debug" },
      },
      "/srv/v0",
    );
    expect(config).toMatchObject({
      name: "hospital-a-1",
      observer: true,
      production: true,
      rpc: { enabled: false, host: "0.0.0.0", port: 0, corsOrigins: ["https://a.example"], maxLogs: 5 },
      store: { cacheSizeBytes: 0, verifyOnStart: false },
      mempool: { maxTxs: 10, minGasPrice: "1000" },
      log: { level: "debug" },
      genesisFile: "/srv/genesis.json",
    });
  });

  it("refuses an unknown field, naming it", () => {
    const { path } = configFile({ ...minimal, datadir: "data2" });
    const error = configError(() => loadNodeConfig(path));
    expect(error.code).toBe("CONFIG_INVALID");
    expect(error.message).toMatch(/^config \(root\): /);
    expect(error.message).toContain('"datadir"');
  });

  // BUG (config.ts, nodeConfigSchema): only the root object is `.strict()`; the nested sections
  // (rpc, store, mempool, log, rpc.tls) strip unknown keys silently. A typo such as
  // `"rpc": {"prot": 9000}` loads without error and the node listens on the default port 8545.
  // Expected: ConfigError naming rpc.prot.
  it("refuses an unknown field inside a section (a typo), naming its path", () => {
    const error = configError(() => parseNodeConfig({ ...minimal, rpc: { prot: 9000 } }, "/srv/v0"));
    expect(error.message).toContain("rpc");
    expect(error.message).toContain("prot");
  });

  it.each([
    ["a port given as a string", { rpc: { port: "8545" } }, /^config rpc\.port: .*expected number/],
    ["a port out of range", { rpc: { port: 70_000 } }, /^config rpc\.port: /],
    ["an unknown log level", { log: { level: "verbose" } }, /^config log\.level: /],
    ["a boolean given as a string", { observer: "yes" }, /^config observer: .*expected boolean/],
    [
      "a gas price that is not an integer",
      { mempool: { minGasPrice: "1.5" } },
      /^config mempool\.minGasPrice: /,
    ],
    ["an empty data directory", { dataDir: "" }, /^config dataDir: /],
    ["a signer that is not an object", { signer: "local" }, /^config signer: /],
    ["another format", { format: "geth-config" }, /^config format: /],
    [
      "a write buffer below 64 KiB",
      { store: { writeBufferSizeBytes: 1024 } },
      /^config store\.writeBufferSizeBytes: /,
    ],
  ])("refuses %s with a message naming the field", (_name, fields, message) => {
    const { path } = configFile({ ...minimal, ...fields });
    const error = configError(() => loadNodeConfig(path));
    expect(error.code).toBe("CONFIG_INVALID");
    expect(error.message).toMatch(message);
  });

  it("refuses a missing required field", () => {
    const { path } = configFile({ dataDir: "data" });
    expect(configError(() => loadNodeConfig(path)).message).toMatch(/^config genesisFile: /);
  });

  it("refuses JSON that is not an object", () => {
    for (const content of ["[]", "null", '"config"', "42"]) {
      const { path } = configFile(content);
      expect(configError(() => loadNodeConfig(path)).message).toMatch(/^config \(root\): /);
    }
  });

  it("refuses a file that is not JSON, naming the file", () => {
    const { path } = configFile('{ "genesisFile": "g", dataDir: "d" }');
    const error = configError(() => loadNodeConfig(path));
    expect(error.code).toBe("CONFIG_INVALID");
    expect(error.message).toMatch(/is not valid JSON/);
    expect(error.message).toContain(path);
    expect(configError(() => loadNodeConfig(configFile("").path)).message).toMatch(/is not valid JSON/);
  });

  it("refuses a file it cannot read, naming the file and the reason", () => {
    const { dir } = configFile(minimal);
    const missing = join(dir, "nope.json");
    const error = configError(() => loadNodeConfig(missing));
    expect(error.code).toBe("CONFIG_INVALID");
    expect(error.message).toBe(`cannot read config ${missing} (ENOENT)`);
    expect(configError(() => loadNodeConfig(dir)).message).toBe(`cannot read config ${dir} (EISDIR)`);
    const underFile = join(dir, "config.json", "config.json");
    expect(configError(() => loadNodeConfig(underFile)).message).toBe(
      `cannot read config ${underFile} (ENOTDIR)`,
    );
  });
});
