/**
 * `vitalstream certs`: a development consortium PKI for a network made by `vitalstream init`. It
 * creates (or reuses) the CA in `<dir>/pki`, issues each validator a certificate for its node key,
 * and points each validator's config.json at them (`p2p.pki`), keeping every other setting.
 *
 * Everything is read and checked before anything is written, so a mismatched node key leaves the
 * network untouched.
 */
import { readFileSync, renameSync, statSync, writeFileSync } from "node:fs";
import { join, relative, resolve } from "node:path";
import { generateKeyPairFromSeed } from "@libp2p/crypto/keys";
import { peerIdFromPrivateKey } from "@libp2p/peer-id";
import { createDevPki, DEFAULT_DEV_CERT_DAYS } from "../network/devPki.ts";
import { PkiError } from "../network/pki.ts";

export interface CertsOptions {
  /** A network directory: genesis.json and one directory per validator (config.json, node-key). */
  dir: string;
  days: number;
  out: (line: string) => void;
}

export const defaultCertsOptions: Omit<CertsOptions, "dir" | "out"> = { days: DEFAULT_DEV_CERT_DAYS };

/** The file name each validator's certificate gets, next to its config.json. */
export const NODE_CERT_FILE = "node-cert.pem";

interface Validator {
  name: string;
  nodeId: string;
  dir: string;
  seedHex: string;
  configFile: string;
  config: Record<string, unknown>;
}

function readText(path: string, what: string): string {
  try {
    return readFileSync(path, "utf8");
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new PkiError(
      "PKI_CONFIG",
      code === "ENOENT" ? `${what} ${path} does not exist` : `cannot read ${what} ${path} (${code ?? e})`,
      { path },
    );
  }
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function readJsonObject(path: string, what: string): Record<string, unknown> {
  let json: unknown;
  try {
    json = JSON.parse(readText(path, what));
  } catch (e) {
    if (e instanceof PkiError) throw e;
    throw new PkiError("PKI_CONFIG", `${what} ${path} is not valid JSON: ${(e as Error).message}`, { path });
  }
  if (!isRecord(json)) throw new PkiError("PKI_CONFIG", `${what} ${path} is not a JSON object`, { path });
  return json;
}

function genesisValidators(genesisFile: string): { name: string; nodeId: string }[] {
  const genesis = readJsonObject(genesisFile, "genesis");
  const validators = genesis.validators;
  if (!Array.isArray(validators) || validators.length === 0)
    throw new PkiError("PKI_CONFIG", `genesis ${genesisFile} lists no validators`);
  return validators.map((v: unknown, i) => {
    const { name, nodeId } = (v ?? {}) as { name?: unknown; nodeId?: unknown };
    // The name becomes a directory: nothing that could leave the network directory.
    if (typeof name !== "string" || !/^[A-Za-z0-9._-]+$/.test(name) || name === "." || name === "..")
      throw new PkiError("PKI_CONFIG", `genesis ${genesisFile}: validator ${i} has no usable name`);
    if (typeof nodeId !== "string" || nodeId === "")
      throw new PkiError("PKI_CONFIG", `genesis ${genesisFile}: validator ${name} has no nodeId`);
    return { name, nodeId };
  });
}

async function readValidator(networkDir: string, v: { name: string; nodeId: string }): Promise<Validator> {
  const dir = join(networkDir, v.name);
  const keyFile = join(dir, "node-key");
  const seedHex = readText(keyFile, `node key of ${v.name}`).trim();
  const seed = Buffer.from(seedHex, "hex");
  if (seed.length !== 32 || seed.toString("hex") !== seedHex.toLowerCase())
    throw new PkiError("PKI_CONFIG", `node key ${keyFile} is not a 32-byte hex seed`, { path: keyFile });
  const derived = peerIdFromPrivateKey(await generateKeyPairFromSeed("Ed25519", seed)).toString();
  if (derived !== v.nodeId)
    throw new PkiError(
      "PKI_CONFIG",
      `node key ${keyFile} is node ${derived}, but genesis says ${v.name} is ${v.nodeId}`,
      { path: keyFile },
    );
  const configFile = join(dir, "config.json");
  const config = readJsonObject(configFile, `config of ${v.name}`);
  const p2p = config.p2p;
  if (p2p !== undefined && !isRecord(p2p))
    throw new PkiError("PKI_CONFIG", `config ${configFile}: p2p is not an object`, { path: configFile });
  return { ...v, dir, seedHex, configFile, config };
}

function writeJsonAtomically(path: string, value: unknown): void {
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, `${JSON.stringify(value, null, 2)}\n`, { mode: statSync(path).mode & 0o777 });
  renameSync(tmp, path);
}

export async function runCerts(opts: CertsOptions): Promise<void> {
  const dir = resolve(opts.dir);
  const validators: Validator[] = [];
  for (const v of genesisValidators(join(dir, "genesis.json"))) validators.push(await readValidator(dir, v));

  const pkiDir = join(dir, "pki");
  const result = await createDevPki({
    dir: pkiDir,
    days: opts.days,
    nodes: validators.map((v) => ({
      name: v.name,
      nodeId: v.nodeId,
      nodeKeySeedHex: v.seedHex,
      certFile: join(v.dir, NODE_CERT_FILE),
    })),
  });
  opts.out(
    result.caCreated
      ? `created the development CA ${result.caFile} (its key ${result.caKeyFile} signs node certificates: keep it private)`
      : `reused the CA ${result.caFile}`,
  );
  opts.out(`revocation list: ${result.revocationFile}`);

  for (const [i, v] of validators.entries()) {
    const cert = result.certs[i]!;
    const p2p = isRecord(v.config.p2p) ? v.config.p2p : {};
    const config = {
      ...v.config,
      p2p: {
        ...p2p,
        // Settings such as expiryWarningDays stay; the files are replaced.
        pki: {
          ...(isRecord(p2p.pki) ? p2p.pki : {}),
          caFile: relative(v.dir, result.caFile),
          certFile: NODE_CERT_FILE,
          revocationFile: relative(v.dir, result.revocationFile),
        },
      },
    };
    writeJsonAtomically(v.configFile, config);
    opts.out(
      `${v.name}: ${cert.certFile} for node ${v.nodeId}, valid until ${cert.notAfter.toISOString()}; updated ${v.configFile}`,
    );
  }
}
