/**
 * Turns a network made by `vitalstream init` into the files the Kubernetes manifests mount:
 *
 *   node deploy/config/to-kubernetes.ts --net net --storage-keys storage-keys.json --out k8s
 *
 * k8s/config/   -> ConfigMap vitalstream-validator-config: genesis.json, <pod>.json per validator
 *                  (production, RPC and metrics on 0.0.0.0, peers by their headless-Service DNS
 *                  names, secret files under /var/run/secrets/vitalstream), backup-verify.json for
 *                  the backup job's chain check, and the PKI's public files when `certs` was run
 * k8s/secrets/  -> Secret vitalstream-validator-keys: <pod>.node-key, <pod>.admin-token
 *
 * --storage-keys is a JSON array of storage-key provider configs, one per validator (docs/hsm):
 * `init` gives each validator a local passphrase wrapper, which production mode refuses. Secret
 * files named in the signer or storage-key configs (pinFile, tokenFile, clientSecretFile) are
 * pointed at /var/run/secrets/vitalstream/<pod>.<kind>; the command lists those keys, which the
 * Secret vitalstream-validator-hsm must hold. Every config written is checked by the node's own
 * config parser. See docs/operations.md#configuration-per-validator.
 */
import { copyFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { basename, join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { parseProviderConfig } from "@vitalstream/hsm";
import { parseNodeConfig } from "../../packages/node/src/runtime/config.ts";

export interface ToKubernetesOptions {
  net: string;
  out: string;
  /** One storage-key provider config per validator. */
  storageKeys: Record<string, unknown>[];
  /** StatefulSet name (pods are <name>-0 ...) and its headless Service (the same name here). */
  name: string;
  service: string;
  namespace: string;
  clusterDomain: string;
}

export const defaultToKubernetesOptions = {
  name: "vitalstream-validator",
  service: "vitalstream-validator",
  namespace: "vitalstream",
  clusterDomain: "cluster.local",
};

export const CONFIG_DIR = "/etc/vitalstream";
export const SECRET_DIR = "/var/run/secrets/vitalstream";
export const DATA_DIR = "/var/lib/vitalstream";
export const BACKUP_SCRATCH_DIR = "/scratch/data";
const PORTS = { rpc: 8545, p2p: 26656, metrics: 9090 };
/** Secret-file fields of provider configs, and the key suffix each gets in the HSM Secret. */
const SECRET_FIELDS: Record<string, string> = {
  pinFile: "pkcs11-pin",
  tokenFile: "vault-token",
  clientSecretFile: "azure-client-secret",
};

type Json = Record<string, unknown>;

function readJson(path: string): Json {
  return JSON.parse(readFileSync(path, "utf8")) as Json;
}

/** The provider config with its secret files moved to the pod's secret mount; returns the keys used. */
function podProvider(provider: Json, pod: string, keys: Set<string>): Json {
  const config = parseProviderConfig(provider) as Json;
  if (config.provider === "local")
    throw new Error(
      `${pod}: the local keystore is refused in production: give an HSM or KMS provider (docs/hsm)`,
    );
  const out: Json = { ...provider };
  for (const [field, suffix] of Object.entries(SECRET_FIELDS)) {
    if (out[field] === undefined) continue;
    keys.add(`${pod}.${suffix}`);
    out[field] = `${SECRET_DIR}/${pod}.${suffix}`;
  }
  return out;
}

export function toKubernetes(opts: ToKubernetesOptions): { files: string[]; hsmSecretKeys: string[] } {
  const genesis = readJson(join(opts.net, "genesis.json")) as Json & { validators: { nodeId: string }[] };
  const count = genesis.validators.length;
  if (opts.storageKeys.length !== count)
    throw new Error(`${opts.storageKeys.length} storage-key configs given for ${count} validators`);
  const configDir = join(opts.out, "config");
  const secretDir = join(opts.out, "secrets");
  mkdirSync(configDir, { recursive: true });
  mkdirSync(secretDir, { recursive: true });
  const files: string[] = [];
  const write = (path: string, text: string, mode = 0o644) => {
    writeFileSync(path, text, { mode, flag: "wx" });
    files.push(path);
  };
  const pod = (i: number) => `${opts.name}-${i}`;
  const address = (i: number) =>
    `/dns4/${pod(i)}.${opts.service}.${opts.namespace}.svc.${opts.clusterDomain}/tcp/${PORTS.p2p}`;
  const hsmKeys = new Set<string>();

  copyFileSync(join(opts.net, "genesis.json"), join(configDir, "genesis.json"));
  files.push(join(configDir, "genesis.json"));
  const storageKeys: Json[] = [];
  for (let i = 0; i < count; i++) {
    const dir = join(opts.net, `validator-${i}`);
    const source = readJson(join(dir, "config.json")) as Json & {
      p2p?: Json & { pki?: Json };
      signer?: Json;
    };
    if (source.signer === undefined) throw new Error(`${dir}/config.json has no signer`);
    const storageKey = podProvider(opts.storageKeys[i]!, pod(i), hsmKeys);
    storageKeys.push(storageKey);
    const p2p: Json = {
      ...source.p2p,
      listen: [`/ip4/0.0.0.0/tcp/${PORTS.p2p}`],
      peers: genesis.validators.flatMap((v, j) =>
        j === i ? [] : [{ nodeId: v.nodeId, address: address(j) }],
      ),
    };
    const pki = source.p2p?.pki as { caFile: string; certFile: string; revocationFile?: string } | undefined;
    if (pki !== undefined) {
      // Public files: the CA, this node's certificate, the revocation list (one copy for all).
      const certName = `${pod(i)}.cert.pem`;
      copyFileSync(resolve(dir, pki.certFile), join(configDir, certName));
      files.push(join(configDir, certName));
      for (const [field, name] of [
        ["caFile", "ca.pem"],
        ["revocationFile", "revoked.json"],
      ] as const) {
        const from = pki[field];
        if (from !== undefined && !existsSync(join(configDir, name))) {
          copyFileSync(resolve(dir, from), join(configDir, name));
          files.push(join(configDir, name));
        }
      }
      p2p.pki = {
        ...pki,
        caFile: "ca.pem",
        certFile: certName,
        ...(pki.revocationFile === undefined ? {} : { revocationFile: "revoked.json" }),
      };
    }
    const config: Json = {
      ...source,
      production: true,
      genesisFile: "genesis.json",
      dataDir: DATA_DIR,
      nodeKeyFile: `${SECRET_DIR}/${pod(i)}.node-key`,
      signer: podProvider(source.signer, pod(i), hsmKeys),
      storageKey,
      rpc: {
        ...(source.rpc as Json),
        host: "0.0.0.0",
        port: PORTS.rpc,
        adminTokenFile: `${SECRET_DIR}/${pod(i)}.admin-token`,
      },
      metrics: { host: "0.0.0.0", port: PORTS.metrics },
      p2p,
    };
    parseNodeConfig(config, CONFIG_DIR);
    write(join(configDir, `${pod(i)}.json`), `${JSON.stringify(config, null, 2)}\n`);
    for (const secret of ["node-key", "admin-token"])
      write(join(secretDir, `${pod(i)}.${secret}`), readFileSync(join(dir, secret), "utf8"), 0o600);
  }
  const verify: Json = {
    format: "vitalstream-node-config",
    name: "backup-verify",
    production: true,
    genesisFile: "genesis.json",
    dataDir: BACKUP_SCRATCH_DIR,
    storageKey: storageKeys[0],
    rpc: { enabled: false },
    p2p: { enabled: false },
  };
  parseNodeConfig(verify, CONFIG_DIR);
  write(join(configDir, "backup-verify.json"), `${JSON.stringify(verify, null, 2)}\n`);
  return { files, hsmSecretKeys: [...hsmKeys].sort() };
}

if (process.argv[1] !== undefined && basename(process.argv[1]) === "to-kubernetes.ts") {
  const { values } = parseArgs({
    options: {
      net: { type: "string" },
      out: { type: "string" },
      "storage-keys": { type: "string" },
      name: { type: "string", default: defaultToKubernetesOptions.name },
      service: { type: "string", default: defaultToKubernetesOptions.service },
      namespace: { type: "string", default: defaultToKubernetesOptions.namespace },
      "cluster-domain": { type: "string", default: defaultToKubernetesOptions.clusterDomain },
    },
  });
  try {
    if (values.net === undefined || values.out === undefined || values["storage-keys"] === undefined)
      throw new Error("usage: to-kubernetes.ts --net <init dir> --storage-keys <file> --out <dir>");
    const result = toKubernetes({
      net: values.net,
      out: values.out,
      storageKeys: JSON.parse(readFileSync(values["storage-keys"], "utf8")) as Json[],
      name: values.name,
      service: values.service,
      namespace: values.namespace,
      clusterDomain: values["cluster-domain"],
    });
    for (const f of result.files) process.stderr.write(`wrote ${f}\n`);
    if (result.hsmSecretKeys.length > 0)
      process.stderr.write(
        `the Secret vitalstream-validator-hsm must hold: ${result.hsmSecretKeys.join(", ")}\n`,
      );
  } catch (e) {
    process.stderr.write(`error: ${(e as Error).message}\n`);
    process.exitCode = 1;
  }
}
