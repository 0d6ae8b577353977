import { execFileSync } from "node:child_process";
import { randomBytes, webcrypto, X509Certificate } from "node:crypto";
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { generateKeyPairFromSeed } from "@libp2p/crypto/keys";
import { peerIdFromPrivateKey } from "@libp2p/peer-id";
// @peculiar/x509 (to build a deliberately wrong issuer) needs this polyfill loaded first.
import "reflect-metadata";
import * as x509 from "@peculiar/x509";
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { runCerts } from "../../src/cli/certs.ts";
import {
  createDevCa,
  createDevPki,
  type DevCa,
  type DevNode,
  issueNodeCertificate,
  loadDevCa,
} from "../../src/network/devPki.ts";
import {
  ConsortiumPki,
  MAX_PEER_PEM_BYTES,
  type PeerCertificateResult,
  PkiError,
  type PkiOptions,
} from "../../src/network/pki.ts";
import { loadNodeConfig } from "../../src/runtime/config.ts";

const DAY = 86_400_000;
const root = mkdtempSync(join(tmpdir(), "vs-pki-"));
let counter = 0;
function freshDir(prefix: string): string {
  const dir = join(root, `${prefix}-${counter++}`);
  mkdirSync(dir, { recursive: true });
  return dir;
}

interface TestNode extends DevNode {
  /** The Ed25519 public key, lower-case hex. */
  publicKeyHex: string;
}

async function testNode(name: string): Promise<TestNode> {
  const seed = randomBytes(32);
  const key = await generateKeyPairFromSeed("Ed25519", seed);
  return {
    name,
    nodeId: peerIdFromPrivateKey(key).toString(),
    nodeKeySeedHex: seed.toString("hex"),
    publicKeyHex: Buffer.from(key.publicKey.raw).toString("hex"),
  };
}

function pemToDer(pem: string): Buffer {
  return Buffer.from(pem.replace(/-----[A-Z ]+-----|\s/g, ""), "base64");
}

function derToPem(der: Buffer): string {
  return `-----BEGIN CERTIFICATE-----\n${der
    .toString("base64")
    .match(/.{1,64}/g)!
    .join("\n")}\n-----END CERTIFICATE-----\n`;
}

function refusal(result: PeerCertificateResult): { code: string; message: string } {
  if (result.ok) throw new Error(`expected a refusal, the certificate of ${result.subject} verified`);
  return { code: result.code, message: result.message };
}

function pkiError(f: () => unknown): PkiError {
  try {
    f();
  } catch (e) {
    if (e instanceof PkiError) return e;
    throw e;
  }
  throw new Error("expected a PkiError, nothing was thrown");
}

const opened: ConsortiumPki[] = [];
function load(opts: PkiOptions, hooks?: { onRevocationReload?(): void }): ConsortiumPki {
  const pki = ConsortiumPki.load(opts, hooks);
  opened.push(pki);
  return pki;
}

// One development PKI with two nodes, shared by the tests that only read it.
let a: TestNode;
let b: TestNode;
let pkiDir: string;
let ca: DevCa;
let caFile: string;
let certA: string;
let certB: string;

beforeAll(async () => {
  a = await testNode("validator-a");
  b = await testNode("validator-b");
  pkiDir = freshDir("ca");
  const result = await createDevPki({
    dir: pkiDir,
    nodes: [
      { ...a, certFile: join(pkiDir, "a.pem") },
      { ...b, certFile: join(pkiDir, "b.pem") },
    ],
  });
  caFile = result.caFile;
  ca = await loadDevCa(result.caFile, result.caKeyFile);
  certA = readFileSync(join(pkiDir, "a.pem"), "utf8");
  certB = readFileSync(join(pkiDir, "b.pem"), "utf8");
});

afterEach(() => {
  for (const pki of opened.splice(0)) pki.close();
});

afterAll(() => {
  rmSync(root, { recursive: true, force: true });
});

/** A PKI for node a with its own revocation file. */
function pkiForA(
  revoked: unknown[] = [],
  extra: Partial<PkiOptions> = {},
): { pki: ConsortiumPki; file: string } {
  const file = join(freshDir("revocation"), "revoked.json");
  writeFileSync(file, JSON.stringify({ revoked }));
  return { pki: load({ caFile, certFile: join(pkiDir, "a.pem"), revocationFile: file, ...extra }), file };
}

async function issue(
  node: TestNode,
  notBefore: number,
  notAfter: number,
  issuer: DevCa = ca,
): Promise<string> {
  return (
    await issueNodeCertificate(issuer, node, { notBefore: new Date(notBefore), notAfter: new Date(notAfter) })
  ).pem;
}

describe("ConsortiumPki.verifyPeer", () => {
  it("accepts a certificate from the CA for the node id it binds", () => {
    const { pki } = pkiForA();
    const result = pki.verifyPeer(certB, b.nodeId, Date.now());
    expect(result.ok).toBe(true);
    if (!result.ok) return;
    expect(result.subject).toBe("CN=validator-b");
    expect(result.serial).toBe(new X509Certificate(certB).serialNumber.toLowerCase());
    expect(result.notAfter.getTime()).toBe(new X509Certificate(certB).validToDate.getTime());
  });

  it("refuses a certificate that binds another node: PKI_WRONG_NODE naming it", () => {
    const { pki } = pkiForA();
    const r = refusal(pki.verifyPeer(certA, b.nodeId, Date.now()));
    expect(r.code).toBe("PKI_WRONG_NODE");
    expect(r.message).toBe(`certificate of ${b.nodeId} was issued to another node (${a.nodeId})`);
  });

  it("refuses a certificate from another CA, even one with the same name: PKI_UNTRUSTED", async () => {
    const { pki } = pkiForA();
    const foreign = await createDevCa();
    expect(foreign.cert.subject).toBe(ca.cert.subject);
    const now = Date.now();
    const r = refusal(pki.verifyPeer(await issue(b, now - DAY, now + DAY, foreign), b.nodeId, now));
    expect(r.code).toBe("PKI_UNTRUSTED");
    expect(r.message).toContain("does not chain to the consortium CA");
  });

  it("refuses a certificate whose signature was tampered with: PKI_UNTRUSTED", () => {
    const { pki } = pkiForA();
    const der = pemToDer(certB);
    der[der.length - 1]! ^= 0x01;
    const r = refusal(pki.verifyPeer(derToPem(der), b.nodeId, Date.now()));
    expect(r.code).toBe("PKI_UNTRUSTED");
    expect(r.message).toContain("invalid signature");
  });

  it("refuses a certificate whose signed content was changed (the subject): PKI_UNTRUSTED", () => {
    const { pki } = pkiForA();
    const der = pemToDer(certB);
    const at = der.indexOf(Buffer.from("validator-b"));
    expect(at).toBeGreaterThan(0);
    der.write("validator-x", at);
    expect(refusal(pki.verifyPeer(derToPem(der), b.nodeId, Date.now())).code).toBe("PKI_UNTRUSTED");
  });

  it("refuses expired and not-yet-valid certificates, judged at the time it is told", async () => {
    const { pki } = pkiForA();
    const now = Date.now();
    const expiredAt = new Date(Math.floor((now - 35 * DAY) / 1000) * 1000);
    const expired = await issue(b, now - 400 * DAY, expiredAt.getTime());
    const r = refusal(pki.verifyPeer(expired, b.nodeId, now));
    expect(r.code).toBe("PKI_EXPIRED");
    expect(r.message).toBe(
      `certificate of ${b.nodeId} expired on ${expiredAt.toISOString().replace(".000Z", "Z")}`,
    );

    const future = await issue(b, now + DAY, now + 30 * DAY);
    const early = refusal(pki.verifyPeer(future, b.nodeId, now));
    expect(early.code).toBe("PKI_NOT_YET_VALID");
    expect(early.message).toMatch(/is not valid before \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
    expect(pki.verifyPeer(future, b.nodeId, now + 2 * DAY).ok).toBe(true);
  });

  it("checks the validity of the CA certificate too", async () => {
    const { pki } = pkiForA();
    const afterCa = ca.cert.notAfter.getTime() + DAY;
    const r = refusal(pki.verifyPeer(await issue(b, Date.now(), afterCa + DAY), b.nodeId, afterCa));
    expect(r.code).toBe("PKI_EXPIRED");
    expect(r.message).toContain("CA certificate 'CN=VitalStream development CA'");
  });

  it("refuses garbage, an empty string, an oversized PEM and a private key without throwing: PKI_MALFORMED", () => {
    const { pki } = pkiForA();
    const now = Date.now();
    const inputs = [
      "",
      "  \n ",
      "hello",
      "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
      `-----BEGIN CERTIFICATE-----\n${randomBytes(300).toString("base64")}\n-----END CERTIFICATE-----\n`,
      certB.slice(0, certB.length / 2),
      `${certB}${" ".repeat(MAX_PEER_PEM_BYTES)}`,
      readFileSync(join(pkiDir, "ca.key"), "utf8"),
      `${certB}${readFileSync(join(pkiDir, "ca.key"), "utf8")}`,
      certB.repeat(9),
      undefined as unknown as string,
    ];
    const results = inputs.map((pem) => refusal(pki.verifyPeer(pem, b.nodeId, now)));
    for (const r of results) {
      expect(r.code).toBe("PKI_MALFORMED");
      expect(r.message).not.toContain("\n");
    }
    expect(results[0]!.message).toBe(`certificate of ${b.nodeId} is empty`);
    expect(results[6]!.message).toContain("larger than 64 KiB");
    expect(results[7]!.message).toContain("PRIVATE KEY block");
    expect(results[7]!.message).not.toContain(readFileSync(join(pkiDir, "ca.key"), "utf8").split("\n")[1]!);
    expect(results[9]!.message).toContain("more than 8 certificates");
  });

  it("follows presented intermediates to the CA, and refuses a chain with a gap", async () => {
    const { pki } = pkiForA();
    const intermediate = await createDevCa({ name: "Hospital B issuing CA", issuer: ca, days: 100 });
    const now = Date.now();
    const leaf = await issue(b, now - DAY, now + 200 * DAY, intermediate);
    const chain = `${leaf}${intermediate.cert.toString("pem")}\n`;
    expect(pki.verifyPeer(chain, b.nodeId, now)).toMatchObject({ ok: true, subject: "CN=validator-b" });
    const gap = refusal(pki.verifyPeer(leaf, b.nodeId, now));
    expect(gap.code).toBe("PKI_UNTRUSTED");
    expect(gap.message).toContain("issuer 'CN=Hospital B issuing CA'");
    // On day 101 the leaf is still valid, its issuer no longer.
    const late = refusal(pki.verifyPeer(chain, b.nodeId, now + 101 * DAY));
    expect(late.code).toBe("PKI_EXPIRED");
    expect(late.message).toContain("CA certificate 'CN=Hospital B issuing CA' in the chain of");
  });

  it("refuses an intermediate that is not a CA", async () => {
    const { pki } = pkiForA();
    const now = Date.now();
    const fakeIssuer = await nonCaIssuer();
    const leaf = await issue(a, now - DAY, now + DAY, fakeIssuer);
    const r = refusal(pki.verifyPeer(`${leaf}${fakeIssuer.cert.toString("pem")}`, a.nodeId, now));
    expect(r.code).toBe("PKI_UNTRUSTED");
    expect(r.message).toContain("which is not a CA");
  });

  it("trusts every CA in a bundle", async () => {
    const dir = freshDir("bundle");
    const other = await createDevPki({ dir, nodes: [{ ...b, certFile: join(dir, "b.pem") }] });
    const bundle = join(dir, "bundle.pem");
    writeFileSync(bundle, `${readFileSync(other.caFile, "utf8")}${readFileSync(caFile, "utf8")}`);
    const pki = load({ caFile: bundle, certFile: join(pkiDir, "a.pem") });
    expect(pki.verifyPeer(readFileSync(join(dir, "b.pem"), "utf8"), b.nodeId, Date.now()).ok).toBe(true);
    expect(pki.verifyPeer(certB, b.nodeId, Date.now()).ok).toBe(true);
  });

  it("verifies a certificate in well under 10 ms", () => {
    const { pki } = pkiForA();
    const now = Date.now();
    const start = performance.now();
    for (let i = 0; i < 100; i++) expect(pki.verifyPeer(certB, b.nodeId, now).ok).toBe(true);
    expect((performance.now() - start) / 100).toBeLessThan(5);
  });
});

/** A certificate from the CA that is not a CA certificate, with its key, to misuse as an issuer. */
async function nonCaIssuer(): Promise<DevCa> {
  const keys = (await webcrypto.subtle.generateKey({ name: "ECDSA", namedCurve: "P-256" }, true, [
    "sign",
    "verify",
  ])) as webcrypto.CryptoKeyPair;
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: "01",
    subject: "CN=not-a-ca",
    issuer: ca.cert.subjectName,
    notBefore: new Date(Date.now() - DAY),
    notAfter: new Date(Date.now() + DAY),
    signingAlgorithm: { name: "ECDSA", hash: "SHA-256" },
    publicKey: keys.publicKey,
    signingKey: ca.key,
    extensions: [new x509.BasicConstraintsExtension(false)],
  });
  return { cert, key: keys.privateKey };
}

describe("revocation", () => {
  it("refuses a node whose node id, serial (any accepted form) or public key is listed", () => {
    const serial = new X509Certificate(certB).serialNumber; // upper-case hex, as openssl prints it
    const colons = serial.match(/../g)!.join(":");
    const forms: unknown[] = [
      b.nodeId,
      { keyId: b.nodeId, reason: "decommissioned" },
      serial.toLowerCase(),
      `serial=${serial}`,
      `serial:${colons.toLowerCase()}`,
      { keyId: `0x${serial}` },
      { publicKey: b.publicKeyHex },
      Buffer.from(b.publicKeyHex, "hex").toString("base64"),
    ];
    for (const entry of forms) {
      const { pki } = pkiForA([entry]);
      const r = refusal(pki.verifyPeer(certB, b.nodeId, Date.now()));
      expect(r.code, JSON.stringify(entry)).toBe("PKI_REVOKED");
      pki.close();
    }
    // Other nodes are untouched by b's entries.
    const { pki } = pkiForA([b.nodeId, `serial=${serial}`, { publicKey: b.publicKeyHex }]);
    expect(pki.verifyPeer(certA, a.nodeId, Date.now()).ok).toBe(true);
    expect(refusal(pki.verifyPeer(certB, b.nodeId, Date.now())).message).toBe(
      `certificate of ${b.nodeId} is revoked: its node id is on the revocation list`,
    );
  });

  it("revokes an intermediate CA by its serial", async () => {
    const intermediate = await createDevCa({ name: "Revoked issuing CA", issuer: ca });
    const now = Date.now();
    const chain = `${await issue(b, now - DAY, now + DAY, intermediate)}${intermediate.cert.toString("pem")}`;
    const { pki } = pkiForA([`serial:${intermediate.cert.serialNumber}`]);
    const r = refusal(pki.verifyPeer(chain, b.nodeId, now));
    expect(r.code).toBe("PKI_REVOKED");
    expect(r.message).toContain("intermediate CA 'CN=Revoked issuing CA'");
  });

  it("picks up a rewritten list without a restart, also after the file was replaced by rename", async () => {
    const file = join(freshDir("reload"), "revoked.json");
    writeFileSync(file, '{"revoked": []}\n');
    let reloads = 0;
    const pki = load(
      { caFile, certFile: join(pkiDir, "a.pem"), revocationFile: file },
      { onRevocationReload: () => reloads++ },
    );
    const code = () => {
      const result = pki.verifyPeer(certB, b.nodeId, Date.now());
      return result.ok ? "ok" : result.code;
    };
    expect(code()).toBe("ok");

    writeFileSync(file, JSON.stringify({ revoked: [b.nodeId] }));
    await vi.waitFor(() => expect(code()).toBe("PKI_REVOKED"), { timeout: 5_000, interval: 25 });
    // The watcher saw it; the once-a-second stat poll sees it again, which must not count twice.
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    expect(reloads).toBe(1);

    // As editors and ConfigMap updates do: a new file renamed over the old one.
    writeFileSync(`${file}.new`, '{"revoked": []}\n');
    renameSync(`${file}.new`, file);
    await vi.waitFor(() => expect(code()).toBe("ok"), { timeout: 5_000, interval: 25 });

    writeFileSync(file, JSON.stringify({ revoked: [{ publicKey: b.publicKeyHex }] }));
    await vi.waitFor(() => expect(code()).toBe("PKI_REVOKED"), { timeout: 5_000, interval: 25 });
    expect(reloads).toBe(3);

    // A broken version keeps the previous list in force and is reported.
    writeFileSync(file, "{ not json");
    await vi.waitFor(() => expect(pki.revocationError()).toContain("not valid JSON"), {
      timeout: 5_000,
      interval: 25,
    });
    expect(code()).toBe("PKI_REVOKED");
  });
});

describe("ConsortiumPki.checkOwn", () => {
  it("checks our certificate and warns within expiryWarningDays (default 30) of expiry", () => {
    const { pki } = pkiForA();
    const notAfter = new X509Certificate(certA).validToDate.getTime();
    const at60 = pki.checkOwn(a.nodeId, notAfter - 60 * DAY);
    expect(at60).toMatchObject({ ok: true, subject: "CN=validator-a", expiresInDays: 60, warn: false });
    expect(pki.checkOwn(a.nodeId, notAfter - 29 * DAY)).toMatchObject({
      ok: true,
      warn: true,
      expiresInDays: 29,
    });
    expect(pki.checkOwn(a.nodeId, notAfter - 5 * 3_600_000)).toMatchObject({ warn: true, expiresInDays: 0 });
    const r = refusal(pki.checkOwn(a.nodeId, notAfter + 1_000));
    expect(r.code).toBe("PKI_EXPIRED");
    expect(r.message).toContain(`our certificate ${join(pkiDir, "a.pem")} expired on`);
    expect(refusal(pki.checkOwn(b.nodeId, Date.now())).code).toBe("PKI_WRONG_NODE");

    const { pki: longer } = pkiForA([], { expiryWarningDays: 90 });
    expect(longer.checkOwn(a.nodeId, notAfter - 60 * DAY)).toMatchObject({ ok: true, warn: true });
  });

  it("presents only the certificates of the certificate file, intermediates included", async () => {
    const intermediate = await createDevCa({ name: "Hospital A issuing CA", issuer: ca });
    const now = Date.now();
    const leaf = await issue(a, now - DAY, now + 100 * DAY, intermediate);
    const certFile = join(freshDir("own"), "node-cert.pem");
    writeFileSync(
      certFile,
      `subject=CN=validator-a\n${leaf}\nsome notes\n${intermediate.cert.toString("pem")}`,
    );
    const pki = load({ caFile, certFile });
    const pem = pki.ownCertificatePem();
    expect(pem.match(/-----BEGIN CERTIFICATE-----/g)).toHaveLength(2);
    expect(pem).not.toContain("notes");
    expect(pki.checkOwn(a.nodeId, now)).toMatchObject({ ok: true, warn: false, expiresInDays: 99 });
    expect(pki.verifyPeer(pem, a.nodeId, now).ok).toBe(true);
  });
});

describe("ConsortiumPki.load", () => {
  it("refuses missing or invalid files with PKI_CONFIG naming the file", () => {
    const dir = freshDir("config");
    const missing = join(dir, "missing.pem");
    const e1 = pkiError(() => ConsortiumPki.load({ caFile: missing, certFile: join(pkiDir, "a.pem") }));
    expect(e1.code).toBe("PKI_CONFIG");
    expect(e1.message).toBe(`cannot read CA file ${missing} (ENOENT)`);

    const e2 = pkiError(() =>
      ConsortiumPki.load({ caFile: join(pkiDir, "b.pem"), certFile: join(pkiDir, "a.pem") }),
    );
    expect(e2.message).toContain("is not a CA certificate");

    const withKey = join(dir, "cert-and-key.pem");
    writeFileSync(withKey, `${certA}${readFileSync(join(pkiDir, "ca.key"), "utf8")}`);
    const e3 = pkiError(() => ConsortiumPki.load({ caFile, certFile: withKey }));
    expect(e3.message).toBe(
      `certificate file ${withKey} is invalid: it contains a PRIVATE KEY block, not only certificates`,
    );

    const badList = join(dir, "revoked.json");
    writeFileSync(badList, '{"revoked": "everyone"}');
    const e4 = pkiError(() =>
      ConsortiumPki.load({ caFile, certFile: join(pkiDir, "a.pem"), revocationFile: badList }),
    );
    expect(e4.code).toBe("PKI_CONFIG");
    expect(e4.message).toContain(badList);
  });
});

describe("createDevPki", () => {
  it("issues a CA and node certificates with the documented contents", () => {
    const caCert = new X509Certificate(readFileSync(caFile));
    expect(caCert.ca).toBe(true);
    expect(caCert.checkIssued(caCert)).toBe(true);
    expect(caCert.publicKey.asymmetricKeyDetails?.namedCurve).toBe("prime256v1");
    expect(statSync(join(pkiDir, "ca.key")).mode & 0o777).toBe(0o600);
    expect(JSON.parse(readFileSync(join(pkiDir, "revoked.json"), "utf8"))).toEqual({ revoked: [] });

    const leaf = new X509Certificate(certA);
    expect(leaf.subject).toBe("CN=validator-a");
    expect(leaf.subjectAltName).toBe(`URI:urn:vitalstream:node:${a.nodeId}`);
    expect(leaf.keyUsage).toEqual(["1.3.6.1.5.5.7.3.1", "1.3.6.1.5.5.7.3.2"]);
    expect(leaf.ca).toBe(false);
    expect(leaf.verify(caCert.publicKey)).toBe(true);
    expect(leaf.serialNumber).toMatch(/^[0-9A-F]{32}$/);
    expect(leaf.serialNumber).not.toBe(new X509Certificate(certB).serialNumber);
    const jwk = leaf.publicKey.export({ format: "jwk" });
    expect(Buffer.from(jwk.x!, "base64url").toString("hex")).toBe(a.publicKeyHex);
    const days = (leaf.validToDate.getTime() - leaf.validFromDate.getTime()) / DAY;
    expect(days).toBe(365);
    expect(Math.abs(leaf.validFromDate.getTime() - (Date.now() - 60_000))).toBeLessThan(60_000);
  });

  it("refuses a node key that is not the node id's, before writing anything", async () => {
    const dir = join(freshDir("mismatch"), "pki");
    const err = await createDevPki({
      dir,
      nodes: [{ ...a, nodeId: b.nodeId, certFile: join(dir, "a.pem") }],
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PkiError);
    expect((err as PkiError).message).toBe(
      `the node key of validator-a belongs to node ${a.nodeId}, not ${b.nodeId}`,
    );
    expect(existsSync(dir)).toBe(false);
  });

  it("refuses node certificates that would outlive a reused CA", async () => {
    const err = await createDevPki({
      dir: pkiDir,
      days: 4000,
      nodes: [{ ...a, certFile: join(pkiDir, "x.pem") }],
    })
      .then(() => null)
      .catch((e: unknown) => e);
    expect((err as PkiError).message).toMatch(
      /^the CA .*ca\.pem expires on .*, before certificates valid for 4000 days would$/,
    );
    expect(existsSync(join(pkiDir, "x.pem"))).toBe(false);
  });

  it("refuses to replace half a CA", async () => {
    const dir = freshDir("half");
    writeFileSync(join(dir, "ca.pem"), readFileSync(caFile));
    const err = await createDevPki({ dir, nodes: [] }).catch((e: unknown) => e);
    expect((err as PkiError).code).toBe("PKI_CONFIG");
    expect((err as PkiError).message).toContain("refusing to replace half a CA");
    expect(existsSync(join(dir, "ca.key"))).toBe(false);
  });
});

/** A network directory as `vitalstream init` lays it out, reduced to what `certs` reads. */
async function network(): Promise<{ dir: string; nodes: TestNode[] }> {
  const dir = freshDir("net");
  const nodes = [await testNode("validator-0"), await testNode("validator-1")];
  writeFileSync(
    join(dir, "genesis.json"),
    `${JSON.stringify({ chainId: "test", validators: nodes.map((n) => ({ name: n.name, nodeId: n.nodeId, votingPower: 10 })) }, null, 2)}\n`,
  );
  for (const [i, n] of nodes.entries()) {
    mkdirSync(join(dir, n.name));
    writeFileSync(join(dir, n.name, "node-key"), `${n.nodeKeySeedHex}\n`, { mode: 0o600 });
    writeFileSync(
      join(dir, n.name, "config.json"),
      `${JSON.stringify(
        {
          name: n.name,
          genesisFile: "../genesis.json",
          dataDir: "data",
          nodeKeyFile: "node-key",
          rpc: { host: "127.0.0.1", port: 8545 + i },
          p2p: { listen: [`/ip4/127.0.0.1/tcp/${26656 + i}`] },
        },
        null,
        2,
      )}\n`,
    );
  }
  return { dir, nodes };
}

describe("runCerts", () => {
  it("issues certificates that verify and points each config.json at them, keeping the rest", async () => {
    const { dir, nodes } = await network();
    const lines: string[] = [];
    await runCerts({ dir, days: 90, out: (line) => lines.push(line) });

    for (const [i, n] of nodes.entries()) {
      const configFile = join(dir, n.name, "config.json");
      const text = readFileSync(configFile, "utf8");
      expect(text.endsWith("}\n")).toBe(true);
      expect(text).toContain('\n  "p2p": {\n');
      expect(JSON.parse(text)).toEqual({
        name: n.name,
        genesisFile: "../genesis.json",
        dataDir: "data",
        nodeKeyFile: "node-key",
        rpc: { host: "127.0.0.1", port: 8545 + i },
        p2p: {
          listen: [`/ip4/127.0.0.1/tcp/${26656 + i}`],
          pki: { caFile: "../pki/ca.pem", certFile: "node-cert.pem", revocationFile: "../pki/revoked.json" },
        },
      });
      // The node's own config loader resolves the paths; the PKI built from them accepts both nodes.
      const config = loadNodeConfig(configFile);
      const pkiOptions = config.p2p.pki!;
      expect(pkiOptions.caFile).toBe(join(dir, "pki", "ca.pem"));
      const pki = load(pkiOptions);
      const own = pki.checkOwn(n.nodeId, Date.now());
      expect(own).toMatchObject({ ok: true, subject: `CN=${n.name}`, expiresInDays: 89, warn: false });
      const other = nodes[1 - i]!;
      const otherPem = readFileSync(join(dir, other.name, "node-cert.pem"), "utf8");
      expect(pki.verifyPeer(otherPem, other.nodeId, Date.now()).ok).toBe(true);
      expect(pki.verifyPeer(otherPem, n.nodeId, Date.now()).ok).toBe(false);
    }
    expect(lines[0]).toContain(`created the development CA ${join(dir, "pki", "ca.pem")}`);
    expect(lines[1]).toBe(`revocation list: ${join(dir, "pki", "revoked.json")}`);
    const notAfter = new X509Certificate(readFileSync(join(dir, "validator-1", "node-cert.pem"))).validToDate;
    expect(lines[3]).toBe(
      `validator-1: ${join(dir, "validator-1", "node-cert.pem")} for node ${nodes[1]!.nodeId}, valid until ${notAfter.toISOString()}; updated ${join(dir, "validator-1", "config.json")}`,
    );
  });

  it("reuses the CA on a second run and renews the node certificates", async () => {
    const { dir, nodes } = await network();
    await runCerts({ dir, days: 30, out: () => {} });
    const caPem = readFileSync(join(dir, "pki", "ca.pem"), "utf8");
    const firstCert = readFileSync(join(dir, "validator-0", "node-cert.pem"), "utf8");
    const pki = load({
      caFile: join(dir, "pki", "ca.pem"),
      certFile: join(dir, "validator-1", "node-cert.pem"),
    });

    const lines: string[] = [];
    await runCerts({ dir, days: 365, out: (line) => lines.push(line) });
    expect(readFileSync(join(dir, "pki", "ca.pem"), "utf8")).toBe(caPem);
    expect(lines[0]).toBe(`reused the CA ${join(dir, "pki", "ca.pem")}`);
    const renewed = readFileSync(join(dir, "validator-0", "node-cert.pem"), "utf8");
    expect(renewed).not.toBe(firstCert);
    // The PKI loaded before the second run trusts the renewed certificate: same CA.
    expect(pki.verifyPeer(renewed, nodes[0]!.nodeId, Date.now())).toMatchObject({ ok: true });
    const config = JSON.parse(readFileSync(join(dir, "validator-0", "config.json"), "utf8"));
    expect(config.p2p.pki.certFile).toBe("node-cert.pem");
  });

  it("refuses a node key that does not match genesis, naming both ids, and writes nothing", async () => {
    const { dir, nodes } = await network();
    const stranger = await testNode("stranger");
    const keyFile = join(dir, "validator-1", "node-key");
    writeFileSync(keyFile, `${stranger.nodeKeySeedHex}\n`);
    const configBefore = readFileSync(join(dir, "validator-0", "config.json"), "utf8");
    const err = await runCerts({ dir, days: 365, out: () => {} }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PkiError);
    expect((err as PkiError).code).toBe("PKI_CONFIG");
    expect((err as PkiError).message).toBe(
      `node key ${keyFile} is node ${stranger.nodeId}, but genesis says validator-1 is ${nodes[1]!.nodeId}`,
    );
    expect(existsSync(join(dir, "pki"))).toBe(false);
    expect(existsSync(join(dir, "validator-0", "node-cert.pem"))).toBe(false);
    expect(readFileSync(join(dir, "validator-0", "config.json"), "utf8")).toBe(configBefore);
  });

  it("names the missing genesis or node key", async () => {
    const empty = freshDir("empty");
    const e1 = (await runCerts({ dir: empty, days: 365, out: () => {} }).catch(
      (e: unknown) => e,
    )) as PkiError;
    expect(e1.code).toBe("PKI_CONFIG");
    expect(e1.message).toBe(`genesis ${join(empty, "genesis.json")} does not exist`);

    const { dir } = await network();
    rmSync(join(dir, "validator-0", "node-key"));
    const e2 = (await runCerts({ dir, days: 365, out: () => {} }).catch((e: unknown) => e)) as PkiError;
    expect(e2.message).toBe(`node key of validator-0 ${join(dir, "validator-0", "node-key")} does not exist`);
  });
});

describe("docs/pki.md production commands (openssl)", () => {
  const doc = readFileSync(new URL("../../../../docs/pki.md", import.meta.url), "utf8");
  const production = doc.slice(doc.indexOf("## Production"));
  const script = [...production.matchAll(/```sh\n([\s\S]*?)```/g)].map((m) => m[1]).join("\n");

  it("produce a CA and a node certificate that ConsortiumPki accepts, revocable by openssl's serial", async () => {
    expect(script).toContain("-copy_extensions copy");
    const dir = freshDir("openssl");
    const node = await testNode("validator-0");
    writeFileSync(join(dir, "node-key"), `${node.nodeKeySeedHex}\n`);
    execFileSync("bash", ["-euo", "pipefail", "-c", script], {
      cwd: dir,
      env: { ...process.env, NAME: node.name, NODE_ID: node.nodeId },
      stdio: "pipe",
    });
    expect(existsSync(join(dir, "node-cert.key"))).toBe(false);
    const revocationFile = join(dir, "revoked.json");
    writeFileSync(revocationFile, '{"revoked": []}\n');
    const pki = load({ caFile: join(dir, "ca.pem"), certFile: join(dir, "node-cert.pem"), revocationFile });
    expect(pki.checkOwn(node.nodeId, Date.now())).toMatchObject({
      ok: true,
      subject: "O=Hospital A, CN=validator-0",
      warn: false,
    });
    // The second key option in the doc wins: the certificate certifies the node's identity key.
    const cert = new X509Certificate(readFileSync(join(dir, "node-cert.pem")));
    expect(Buffer.from(cert.publicKey.export({ format: "jwk" }).x!, "base64url").toString("hex")).toBe(
      node.publicKeyHex,
    );
    expect(cert.ca).toBe(false);

    const serial = execFileSync("openssl", ["x509", "-in", "node-cert.pem", "-noout", "-serial"], {
      cwd: dir,
    })
      .toString()
      .trim();
    expect(serial).toMatch(/^serial=[0-9A-F]+$/);
    writeFileSync(revocationFile, JSON.stringify({ revoked: [serial] }));
    await vi.waitFor(() => expect(refusal(pki.checkOwn(node.nodeId, Date.now())).code).toBe("PKI_REVOKED"), {
      timeout: 5_000,
      interval: 25,
    });
  });
});
