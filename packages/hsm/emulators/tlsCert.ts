/**
 * A throwaway certificate authority and a server certificate for loopback emulators that must
 * speak HTTPS (SDKs that refuse plain HTTP, e.g. Azure Key Vault). Clients keep real TLS
 * verification and trust the CA explicitly (`tls.setDefaultCACertificates` or NODE_EXTRA_CA_CERTS).
 *
 * The certificates are DER-encoded here with node:crypto alone: `@peculiar/x509` needs a
 * `reflect-metadata` polyfill (through tsyringe) that is not installed, and spawning the openssl
 * CLI would tie the tests to the host.
 */
import { generateKeyPairSync, type KeyObject, randomBytes, sign, X509Certificate } from "node:crypto";
import { isIPv4, isIPv6 } from "node:net";

export interface TestTls {
  /** PEM of the CA certificate that clients must trust. */
  caPem: string;
  /** PEM of the server certificate (SAN: the given IPs and DNS names), issued by the CA. */
  certPem: string;
  /** PEM (PKCS#8) of the server's private key. */
  keyPem: string;
}

export interface TestTlsOptions {
  ips?: string[];
  dnsNames?: string[];
  /** Validity in days (default 2). */
  days?: number;
}

// --- minimal DER ---------------------------------------------------------------------------

function tlv(tag: number, content: Uint8Array): Buffer {
  const n = content.length;
  let len: Buffer;
  if (n < 0x80) len = Buffer.from([n]);
  else {
    const bytes: number[] = [];
    for (let v = n; v > 0; v >>= 8) bytes.unshift(v & 0xff);
    len = Buffer.from([0x80 | bytes.length, ...bytes]);
  }
  return Buffer.concat([Buffer.from([tag]), len, content]);
}

const seq = (...items: Uint8Array[]) => tlv(0x30, Buffer.concat(items));
const set = (...items: Uint8Array[]) => tlv(0x31, Buffer.concat(items));
const octets = (b: Uint8Array) => tlv(0x04, b);
const bitString = (b: Uint8Array) => tlv(0x03, Buffer.concat([Buffer.from([0]), b]));
const bool = (v: boolean) => tlv(0x01, Buffer.from([v ? 0xff : 0]));
const utf8 = (s: string) => tlv(0x0c, Buffer.from(s, "utf8"));
const explicit = (n: number, inner: Uint8Array) => tlv(0xa0 + n, inner);

function integer(bytes: Uint8Array): Buffer {
  let b = Buffer.from(bytes);
  while (b.length > 1 && b[0] === 0 && b[1]! < 0x80) b = b.subarray(1);
  if (b[0]! >= 0x80) b = Buffer.concat([Buffer.from([0]), b]);
  return tlv(0x02, b);
}

function oid(dotted: string): Buffer {
  const parts = dotted.split(".").map(Number);
  const out = [40 * parts[0]! + parts[1]!];
  for (const p of parts.slice(2)) {
    const chunk = [p & 0x7f];
    for (let v = p >> 7; v > 0; v >>= 7) chunk.unshift(0x80 | (v & 0x7f));
    out.push(...chunk);
  }
  return tlv(0x06, Buffer.from(out));
}

function time(d: Date): Buffer {
  const iso = d.toISOString().replace(/[-:T]/g, "").slice(0, 14);
  return d.getUTCFullYear() < 2050
    ? tlv(0x17, Buffer.from(`${iso.slice(2)}Z`))
    : tlv(0x18, Buffer.from(`${iso}Z`));
}

function ipBytes(ip: string): Buffer {
  if (isIPv4(ip)) return Buffer.from(ip.split(".").map(Number));
  if (!isIPv6(ip)) throw new Error(`not an IP address: ${ip}`);
  const [head, tail] = ip.includes("::") ? ip.split("::") : [ip, undefined];
  const h = head ? head.split(":") : [];
  const t = tail ? tail.split(":") : [];
  const groups = [...h, ...Array<string>(8 - h.length - t.length).fill("0"), ...t];
  return Buffer.concat(groups.map((g) => Buffer.from(g.padStart(4, "0"), "hex")));
}

// --- certificates --------------------------------------------------------------------------

const ECDSA_SHA256 = seq(oid("1.2.840.10045.4.3.2"));
const commonName = (cn: string) => seq(set(seq(oid("2.5.4.3"), utf8(cn))));
const extension = (id: string, critical: boolean, value: Uint8Array) =>
  critical ? seq(oid(id), bool(true), octets(value)) : seq(oid(id), octets(value));

function issue(params: {
  subject: string;
  issuer: string;
  publicKey: KeyObject;
  signingKey: KeyObject;
  notBefore: Date;
  notAfter: Date;
  extensions: Buffer[];
}): string {
  const serial = randomBytes(16);
  serial[0] = serial[0]! & 0x7f;
  const tbs = seq(
    explicit(0, integer(Buffer.from([2]))),
    integer(serial),
    ECDSA_SHA256,
    commonName(params.issuer),
    seq(time(params.notBefore), time(params.notAfter)),
    commonName(params.subject),
    params.publicKey.export({ format: "der", type: "spki" }),
    explicit(3, seq(...params.extensions)),
  );
  const signature = sign("sha256", tbs, params.signingKey);
  const der = seq(tbs, ECDSA_SHA256, bitString(signature));
  return `-----BEGIN CERTIFICATE-----\n${der.toString("base64").replace(/.{1,64}/g, "$&\n")}-----END CERTIFICATE-----\n`;
}

/** A fresh CA and a server certificate for 127.0.0.1, ::1 and localhost (by default). */
export function createTestTls(opts: TestTlsOptions = {}): TestTls {
  const ips = opts.ips ?? ["127.0.0.1", "::1"];
  const dnsNames = opts.dnsNames ?? ["localhost"];
  const notBefore = new Date(Date.now() - 60_000);
  const notAfter = new Date(Date.now() + (opts.days ?? 2) * 86_400_000);
  const caName = `vitalstream test emulator CA ${randomBytes(4).toString("hex")}`;

  const ca = generateKeyPairSync("ec", { namedCurve: "P-256" });
  const caPem = issue({
    subject: caName,
    issuer: caName,
    publicKey: ca.publicKey,
    signingKey: ca.privateKey,
    notBefore,
    notAfter,
    extensions: [
      extension("2.5.29.19", true, seq(bool(true), integer(Buffer.from([0])))), // CA, pathLen 0
      extension("2.5.29.15", true, tlv(0x03, Buffer.from([1, 0x06]))), // keyCertSign, cRLSign
    ],
  });

  const server = generateKeyPairSync("ec", { namedCurve: "P-256" });
  const san = seq(
    ...ips.map((ip) => tlv(0x87, ipBytes(ip))),
    ...dnsNames.map((d) => tlv(0x82, Buffer.from(d))),
  );
  const certPem = issue({
    subject: dnsNames[0] ?? ips[0] ?? "localhost",
    issuer: caName,
    publicKey: server.publicKey,
    signingKey: ca.privateKey,
    notBefore,
    notAfter,
    extensions: [
      extension("2.5.29.19", true, seq()), // not a CA
      extension("2.5.29.15", true, tlv(0x03, Buffer.from([7, 0x80]))), // digitalSignature
      extension("2.5.29.37", false, seq(oid("1.3.6.1.5.5.7.3.1"))), // serverAuth
      extension("2.5.29.17", false, san),
    ],
  });

  // Parse both back: a malformed encoding fails here, not as an obscure TLS error later.
  const caCert = new X509Certificate(caPem);
  const serverCert = new X509Certificate(certPem);
  if (!caCert.ca || !serverCert.checkIssued(caCert) || !serverCert.verify(caCert.publicKey)) {
    throw new Error("generated test certificates do not chain");
  }
  return { caPem, certPem, keyPem: server.privateKey.export({ format: "pem", type: "pkcs8" }).toString() };
}
