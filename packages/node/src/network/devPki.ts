/**
 * A development consortium PKI: an ECDSA P-256 CA in a directory and node certificates that bind
 * each node id. Production consortia run their own CA (docs/pki.md has the openssl commands); this
 * is for devnets and tests, and for issuing deliberately bad certificates in tests.
 *
 * The node certificate's subject key is the node's own Ed25519 identity key, so the certificate
 * certifies exactly the key libp2p authenticates.
 */
import { randomBytes, webcrypto } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { generateKeyPairFromSeed } from "@libp2p/crypto/keys";
import { peerIdFromPrivateKey } from "@libp2p/peer-id";
// @peculiar/x509 resolves its algorithms through tsyringe, which needs this polyfill loaded first.
import "reflect-metadata";
import * as x509 from "@peculiar/x509";
import { nodeIdUri, PkiError } from "./pki.ts";

// Node's WebCrypto is passed to every @peculiar/x509 call rather than set as its global provider:
// @libp2p/tls sets that global to its own polyfill, and its handshakes fail if it is changed.
const nodeCrypto = globalThis.crypto;

type CryptoKey = webcrypto.CryptoKey;

const DAY_MS = 86_400_000;
export const DEFAULT_DEV_CERT_DAYS = 365;
/** The CA outlives the node certificates it issues, so re-issuing them does not need a new CA. */
const DEV_CA_DAYS = 3650;
const ECDSA_P256 = { name: "ECDSA", namedCurve: "P-256" } as const;
const SIGNING = { name: "ECDSA", hash: "SHA-256" } as const;

export interface DevCa {
  cert: x509.X509Certificate;
  /** The CA's signing key (ECDSA P-256). */
  key: CryptoKey;
}

export interface DevNode {
  name: string;
  nodeId: string;
  /** The 32-byte Ed25519 seed of the node key, hex (the content of a `node-key` file). */
  nodeKeySeedHex: string;
}

export interface DevPkiOptions {
  dir: string;
  nodes: (DevNode & { certFile: string })[];
  /** Validity of the node certificates (default 365). */
  days?: number;
  /** Start of validity (default one minute ago, for clock skew between nodes). */
  notBefore?: Date;
  /** Common name of a newly created CA. */
  caName?: string;
}

export interface DevPkiResult {
  caFile: string;
  caKeyFile: string;
  revocationFile: string;
  /** False when an existing CA in `dir` issued the certificates. */
  caCreated: boolean;
  certs: { name: string; certFile: string; notAfter: Date }[];
}

/** A 16-byte positive serial without a leading zero byte (so every tool prints the same hex). */
function randomSerial(): string {
  const bytes = randomBytes(16);
  bytes[0] = (bytes[0]! & 0x7f) | 0x40;
  return bytes.toString("hex");
}

function writeAtomically(path: string, content: string, mode: number): void {
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, content, { mode });
  renameSync(tmp, path);
}

/** The node's Ed25519 public key, checked against the node id it is meant to carry. */
async function nodePublicKey(node: DevNode): Promise<CryptoKey> {
  const seed = Buffer.from(node.nodeKeySeedHex.trim(), "hex");
  if (seed.length !== 32 || seed.toString("hex") !== node.nodeKeySeedHex.trim().toLowerCase())
    throw new PkiError("PKI_CONFIG", `the node key of ${node.name} is not a 32-byte hex seed`);
  const key = await generateKeyPairFromSeed("Ed25519", seed);
  const derived = peerIdFromPrivateKey(key).toString();
  if (derived !== node.nodeId)
    throw new PkiError(
      "PKI_CONFIG",
      `the node key of ${node.name} belongs to node ${derived}, not ${node.nodeId}`,
    );
  return webcrypto.subtle.importKey("raw", key.publicKey.raw, { name: "Ed25519" }, true, ["verify"]);
}

/**
 * An ECDSA P-256 CA: self-signed, or with `issuer` an intermediate CA signed by it. The key is
 * extractable so it can be written to a file.
 */
export async function createDevCa(
  opts: { name?: string; notBefore?: Date; days?: number; issuer?: DevCa } = {},
): Promise<DevCa> {
  const keys = (await webcrypto.subtle.generateKey(ECDSA_P256, true, [
    "sign",
    "verify",
  ])) as webcrypto.CryptoKeyPair;
  const notBefore = opts.notBefore ?? new Date(Date.now() - 60_000);
  const issuer = opts.issuer ?? { cert: null, key: keys.privateKey };
  const cert = await x509.X509CertificateGenerator.create(
    {
      serialNumber: randomSerial(),
      subject: `CN=${opts.name ?? "VitalStream development CA"}`,
      issuer: issuer.cert?.subjectName ?? `CN=${opts.name ?? "VitalStream development CA"}`,
      notBefore,
      notAfter: new Date(notBefore.getTime() + (opts.days ?? DEV_CA_DAYS) * DAY_MS),
      signingAlgorithm: SIGNING,
      publicKey: keys.publicKey,
      signingKey: issuer.key,
      extensions: [
        new x509.BasicConstraintsExtension(true, undefined, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
        await x509.SubjectKeyIdentifierExtension.create(keys.publicKey, false, nodeCrypto),
        await x509.AuthorityKeyIdentifierExtension.create(issuer.cert ?? keys.publicKey, false, nodeCrypto),
      ],
    },
    nodeCrypto,
  );
  return { cert, key: keys.privateKey };
}

/** Writes the CA as `<dir>/ca.pem` and `<dir>/ca.key` (PKCS#8, mode 0600), never over existing files. */
export async function writeDevCa(ca: DevCa, dir: string): Promise<{ caFile: string; caKeyFile: string }> {
  const caFile = join(dir, "ca.pem");
  const caKeyFile = join(dir, "ca.key");
  const pkcs8 = await webcrypto.subtle.exportKey("pkcs8", ca.key);
  writeFileSync(caKeyFile, x509.PemConverter.encode(pkcs8, "PRIVATE KEY"), { mode: 0o600, flag: "wx" });
  writeFileSync(caFile, ca.cert.toString("pem"), { mode: 0o644, flag: "wx" });
  return { caFile, caKeyFile };
}

/** Loads a CA written by writeDevCa (or any ECDSA P-256 CA with a PKCS#8 key). */
export async function loadDevCa(caFile: string, caKeyFile: string): Promise<DevCa> {
  let cert: x509.X509Certificate;
  let key: CryptoKey;
  try {
    cert = new x509.X509Certificate(readFileSync(caFile, "utf8"));
  } catch (e) {
    throw new PkiError("PKI_CONFIG", `cannot load the CA certificate ${caFile}: ${(e as Error).message}`);
  }
  try {
    const der = x509.PemConverter.decodeFirst(readFileSync(caKeyFile, "utf8"));
    key = await webcrypto.subtle.importKey("pkcs8", der, ECDSA_P256, false, ["sign"]);
  } catch (e) {
    throw new PkiError(
      "PKI_CONFIG",
      `cannot load the CA key ${caKeyFile} (an ECDSA P-256 PKCS#8 PEM): ${(e as Error).message}`,
    );
  }
  return { cert, key };
}

/**
 * A node certificate signed by `ca`: CN=<name>, SAN URI urn:vitalstream:node:<nodeId>, the node's
 * Ed25519 key, serverAuth+clientAuth. Any validity window (tests issue expired ones on purpose).
 */
export async function issueNodeCertificate(
  ca: DevCa,
  node: DevNode,
  validity: { notBefore: Date; notAfter: Date },
): Promise<{ pem: string; serial: string; notAfter: Date }> {
  const publicKey = await nodePublicKey(node);
  const cert = await x509.X509CertificateGenerator.create(
    {
      serialNumber: randomSerial(),
      subject: `CN=${node.name}`,
      issuer: ca.cert.subjectName,
      notBefore: validity.notBefore,
      notAfter: validity.notAfter,
      signingAlgorithm: SIGNING,
      publicKey,
      signingKey: ca.key,
      extensions: [
        new x509.BasicConstraintsExtension(false, undefined, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
        new x509.ExtendedKeyUsageExtension([
          x509.ExtendedKeyUsage.serverAuth,
          x509.ExtendedKeyUsage.clientAuth,
        ]),
        new x509.SubjectAlternativeNameExtension([{ type: "url", value: nodeIdUri(node.nodeId) }]),
        await x509.SubjectKeyIdentifierExtension.create(publicKey, false, nodeCrypto),
        await x509.AuthorityKeyIdentifierExtension.create(ca.cert, false, nodeCrypto),
      ],
    },
    nodeCrypto,
  );
  return { pem: cert.toString("pem"), serial: cert.serialNumber.toLowerCase(), notAfter: cert.notAfter };
}

/**
 * Creates (or, when `<dir>/ca.pem` and `<dir>/ca.key` exist, reuses) the development CA, an empty
 * revocation list if there is none, and one certificate per node (replacing an older one).
 */
export async function createDevPki(opts: DevPkiOptions): Promise<DevPkiResult> {
  const dir = resolve(opts.dir);
  const days = opts.days ?? DEFAULT_DEV_CERT_DAYS;
  if (!Number.isFinite(days) || days <= 0)
    throw new PkiError("PKI_CONFIG", `certificate validity must be a positive number of days, got ${days}`);
  // Every node key is checked before anything is written.
  for (const node of opts.nodes) await nodePublicKey(node);
  mkdirSync(dir, { recursive: true });
  const caFile = join(dir, "ca.pem");
  const caKeyFile = join(dir, "ca.key");
  const revocationFile = join(dir, "revoked.json");

  const haveCert = existsSync(caFile);
  const haveKey = existsSync(caKeyFile);
  if (haveCert !== haveKey)
    throw new PkiError(
      "PKI_CONFIG",
      `${haveCert ? caFile : caKeyFile} exists without ${haveCert ? caKeyFile : caFile}: refusing to replace half a CA`,
    );
  let ca: DevCa;
  if (haveCert) {
    ca = await loadDevCa(caFile, caKeyFile);
  } else {
    ca = await createDevCa({ name: opts.caName, days: Math.max(DEV_CA_DAYS, days + 1) });
    await writeDevCa(ca, dir);
  }
  const notBefore = opts.notBefore ?? new Date(Date.now() - 60_000);
  const notAfter = new Date(notBefore.getTime() + days * DAY_MS);
  if (notAfter > ca.cert.notAfter)
    throw new PkiError(
      "PKI_CONFIG",
      `the CA ${caFile} expires on ${ca.cert.notAfter.toISOString()}, before certificates valid for ${days} days would`,
    );
  if (!existsSync(revocationFile)) writeFileSync(revocationFile, `${JSON.stringify({ revoked: [] })}\n`);
  const certs: DevPkiResult["certs"] = [];
  for (const node of opts.nodes) {
    const issued = await issueNodeCertificate(ca, node, { notBefore, notAfter });
    writeAtomically(node.certFile, issued.pem, 0o644);
    certs.push({ name: node.name, certFile: node.certFile, notAfter: issued.notAfter });
  }
  return { caFile, caKeyFile, revocationFile, caCreated: !haveCert, certs };
}
