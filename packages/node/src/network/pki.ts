/**
 * The consortium PKI: with a CA configured, every peer must present an X.509 certificate issued
 * by the consortium CA that binds its libp2p node id (subjectAltName URI
 * `urn:vitalstream:node:<nodeId>`). libp2p already proved the peer holds that node id's key; the
 * certificate proves the consortium admitted it, and lets the consortium take it back (revocation
 * list, expiry) without changing genesis.
 *
 * Verification uses node:crypto only: it is synchronous (about 0.2 ms a certificate), is told the
 * time, and returns a refusal as a value: nothing a peer sends throws. (@peculiar/x509, used to
 * issue development certificates, parses extensions five times slower and needs a polyfill.)
 */
import { type KeyObject, X509Certificate as NodeCertificate } from "node:crypto";
import { readFileSync, type Stats, unwatchFile, watchFile } from "node:fs";
import { HsmError, type RevocationEntry, RevocationList } from "@vitalstream/hsm";

export const NODE_ID_URI_PREFIX = "urn:vitalstream:node:";
export const DEFAULT_EXPIRY_WARNING_DAYS = 30;
/** Largest certificate PEM (leaf plus intermediates) a peer may present. */
export const MAX_PEER_PEM_BYTES = 64 * 1024;
/** Most certificates in one presented PEM, and most intermediates in one chain. */
const MAX_CHAIN_CERTS = 8;
const DAY_MS = 86_400_000;
/** How often the revocation file is stat-polled (see ConsortiumPki.load). */
const REVOCATION_POLL_MS = 1_000;

export function nodeIdUri(nodeId: string): string {
  return `${NODE_ID_URI_PREFIX}${nodeId}`;
}

export type PkiErrorCode =
  /** Not a PEM X.509 certificate (chain), too large, or empty. */
  | "PKI_MALFORMED"
  /** No valid signature chain to a configured CA certificate. */
  | "PKI_UNTRUSTED"
  | "PKI_EXPIRED"
  | "PKI_NOT_YET_VALID"
  /** The node id, serial or public key is on the revocation list. */
  | "PKI_REVOKED"
  /** The certificate binds another node id (or none). */
  | "PKI_WRONG_NODE"
  /** A configured file is missing or invalid. */
  | "PKI_CONFIG";

export class PkiError extends Error {
  readonly code: PkiErrorCode;
  readonly meta: Record<string, unknown>;

  constructor(code: PkiErrorCode, message: string, meta: Record<string, unknown> = {}) {
    super(message);
    this.name = "PkiError";
    this.code = code;
    this.meta = meta;
  }
}

export interface PkiOptions {
  /** PEM bundle of one or more trusted consortium CA certificates. */
  caFile: string;
  /** This node's certificate (PEM), optionally followed by its intermediate CA certificates. */
  certFile: string;
  /** Revocation list JSON (the @vitalstream/hsm format); re-read when it changes. */
  revocationFile?: string;
  /** checkOwn warns when the certificate expires within this many days (default 30). */
  expiryWarningDays?: number;
}

export type PeerCertificateResult =
  | { ok: true; subject: string; serial: string; notAfter: Date }
  | { ok: false; code: PkiErrorCode; message: string };

export type OwnCertificateResult = PeerCertificateResult & { expiresInDays?: number; warn?: boolean };

export interface PkiHooks {
  /** The revocation list was re-read and its entries changed. */
  onRevocationReload?(): void;
}

/** A parsed certificate: every field read once, at parse time, so checking cannot fail on it. */
interface Cert {
  node: NodeCertificate;
  /** The subject DN, safe to print. */
  label: string;
  issuerLabel: string;
  /** Lower-case hex, even length, no sign byte: what operators put in the revocation list. */
  serial: string;
  notBefore: Date;
  notAfter: Date;
  isCa: boolean;
  /** Node ids named by subjectAltName URIs. */
  nodeIds: string[];
  /** Raw public key (Ed25519 32 bytes, EC uncompressed point), lower-case hex; null for others. */
  rawPublicKey: string | null;
}

interface Anchor {
  cert: Cert;
  /** Parsed once: every verification checks a signature against it. */
  publicKey: KeyObject;
}

interface RevocationIndex {
  /** The entries as JSON, to tell a real change from a second notification of the same one. */
  fingerprint: string;
  keyIds: Set<string>;
  serials: Set<string>;
  publicKeys: Set<string>;
}

type Refusal = Extract<PeerCertificateResult, { ok: false }>;

function refuse(code: PkiErrorCode, message: string): Refusal {
  return { ok: false, code, message };
}

/** Certificate text comes from peers: one line, printable, bounded. */
function printable(text: string, max = 120): string {
  const flat = text.replace(/[^\x20-\x7e]/g, "?");
  return flat.length > max ? `${flat.slice(0, max)}...` : flat;
}

function isoSeconds(date: Date): string {
  return date.toISOString().replace(/\.\d{3}Z$/, "Z");
}

/**
 * A serial in any of the forms operators meet, to canonical hex (lower-case, no leading zeros):
 * `0a1b...`, `0A:1B:...`, `serial:0a1b...`, `serial=0A1B...` (openssl x509 -serial), `0x0a1b...`.
 * Null when the text is not a hex serial (e.g. a node id).
 */
export function normaliseSerial(text: string): string | null {
  const hex = text
    .trim()
    .replace(/^serial\s*[:=]\s*/i, "")
    .replace(/^0x/i, "")
    .replaceAll(":", "");
  if (!/^[0-9a-fA-F]+$/.test(hex)) return null;
  return hex.toLowerCase().replace(/^0+(?=.)/, "");
}

function rawPublicKey(key: KeyObject): string | null {
  const jwk = key.export({ format: "jwk" });
  if (jwk.kty === "OKP" && typeof jwk.x === "string") return Buffer.from(jwk.x, "base64url").toString("hex");
  if (jwk.kty === "EC" && typeof jwk.x === "string" && typeof jwk.y === "string")
    return `04${Buffer.from(jwk.x, "base64url").toString("hex")}${Buffer.from(jwk.y, "base64url").toString("hex")}`;
  return null;
}

/**
 * The URIs in node:crypto's subjectAltName text. Node prints a value as a JSON string literal
 * whenever it holds a comma, quote, backslash or control character (CVE-2021-44532), so an
 * unquoted value ends at the next ", " and the list splits unambiguously.
 */
function sanUris(text: string | undefined): string[] {
  const uris: string[] = [];
  let i = 0;
  while (text !== undefined && i < text.length) {
    const colon = text.indexOf(":", i);
    if (colon < 0) throw new Error("unreadable subjectAltName");
    const type = text.slice(i, colon);
    let value: string;
    let end: number;
    if (text[colon + 1] === '"') {
      end = colon + 2;
      while (end < text.length && text[end] !== '"') end += text[end] === "\\" ? 2 : 1;
      end++;
      value = JSON.parse(text.slice(colon + 1, end)) as string;
    } else {
      end = text.indexOf(", ", colon);
      if (end < 0) end = text.length;
      value = text.slice(colon + 1, end);
    }
    if (type === "URI") uris.push(value);
    if (end < text.length && !text.startsWith(", ", end)) throw new Error("unreadable subjectAltName");
    i = end + 2;
  }
  return uris;
}

function parseDer(der: Buffer): Cert {
  const node = new NodeCertificate(der);
  const serial = normaliseSerial(node.serialNumber) ?? "";
  return {
    node,
    label: printable(node.subject.replaceAll("\n", ", ") || "(empty subject)"),
    issuerLabel: printable(node.issuer.replaceAll("\n", ", ") || "(empty issuer)"),
    serial: serial.length % 2 === 1 ? `0${serial}` : serial,
    notBefore: node.validFromDate,
    notAfter: node.validToDate,
    isCa: node.ca,
    nodeIds: sanUris(node.subjectAltName)
      .filter((uri) => uri.startsWith(NODE_ID_URI_PREFIX))
      .map((uri) => uri.slice(NODE_ID_URI_PREFIX.length)),
    rawPublicKey: rawPublicKey(node.publicKey),
  };
}

const PEM_BLOCK = /-----BEGIN ([A-Z0-9 ]+)-----\r?\n([A-Za-z0-9+/=\r\n \t]*?)-----END \1-----/g;

/** Parses every PEM block; throws a one-line reason (no certificate content) on anything else. */
function parsePem(text: string): Cert[] {
  const certs: Cert[] = [];
  for (const match of text.matchAll(PEM_BLOCK)) {
    if (match[1] !== "CERTIFICATE") throw new Error(`it contains a ${match[1]} block, not only certificates`);
    if (certs.length === MAX_CHAIN_CERTS)
      throw new Error(`it holds more than ${MAX_CHAIN_CERTS} certificates`);
    try {
      certs.push(parseDer(Buffer.from(match[2]!.replace(/\s+/g, ""), "base64")));
    } catch {
      throw new Error(`certificate ${certs.length + 1} is not valid X.509`);
    }
  }
  if (text.split("-----BEGIN ").length - 1 !== certs.length)
    throw new Error("it holds a truncated or invalid PEM block");
  if (certs.length === 0) throw new Error("it holds no PEM certificate");
  return certs;
}

function toPem(cert: Cert): string {
  return cert.node.toString();
}

function readConfigFile(path: string, what: string): string {
  try {
    return readFileSync(path, "utf8");
  } catch (e) {
    throw new PkiError(
      "PKI_CONFIG",
      `cannot read ${what} ${path} (${(e as NodeJS.ErrnoException).code ?? e})`,
      { path },
    );
  }
}

function loadPemFile(path: string, what: string): Cert[] {
  const text = readConfigFile(path, what);
  try {
    return parsePem(text);
  } catch (e) {
    throw new PkiError("PKI_CONFIG", `${what} ${path} is invalid: ${(e as Error).message}`, { path });
  }
}

function indexRevocations(entries: readonly RevocationEntry[]): RevocationIndex {
  const index: RevocationIndex = {
    fingerprint: JSON.stringify(entries),
    keyIds: new Set(),
    serials: new Set(),
    publicKeys: new Set(),
  };
  for (const entry of entries) {
    if (entry.keyId !== undefined) {
      index.keyIds.add(entry.keyId.trim());
      const serial = normaliseSerial(entry.keyId);
      if (serial !== null) index.serials.add(serial);
    }
    if (entry.publicKey !== undefined) index.publicKeys.add(entry.publicKey);
  }
  return index;
}

export class ConsortiumPki {
  private readonly opts: Required<Omit<PkiOptions, "revocationFile">> & { revocationFile?: string };
  private readonly anchors: Anchor[];
  private readonly own: Cert[];
  private readonly revocations: RevocationList | null;
  private readonly hooks: PkiHooks;
  private revoked: RevocationIndex;
  private readonly poll: ((curr: Stats, prev: Stats) => void) | null = null;

  private constructor(
    opts: PkiOptions,
    parts: { anchors: Anchor[]; own: Cert[]; revocations: RevocationList | null; hooks: PkiHooks },
  ) {
    this.opts = { ...opts, expiryWarningDays: opts.expiryWarningDays ?? DEFAULT_EXPIRY_WARNING_DAYS };
    this.anchors = parts.anchors;
    this.own = parts.own;
    this.revocations = parts.revocations;
    this.hooks = parts.hooks;
    this.revoked = indexRevocations(parts.revocations?.entries() ?? []);
    const list = parts.revocations;
    if (list?.path != null) {
      // RevocationList's fs.watch follows the file's inode, so a file replaced by rename (many
      // editors, `sed -i`, Kubernetes ConfigMap updates) would go unseen: a stat poll catches it.
      this.poll = (curr, prev) => {
        if (curr.mtimeMs === prev.mtimeMs && curr.ino === prev.ino && curr.size === prev.size) return;
        try {
          list.reload();
          list.lastError = null;
        } catch (e) {
          list.lastError = e instanceof HsmError ? e : new HsmError("HSM_INVALID_CONFIG", String(e));
          return;
        }
        this.revocationsChanged();
      };
      watchFile(list.path, { persistent: false, interval: REVOCATION_POLL_MS }, this.poll);
    }
  }

  /**
   * Reads the CA bundle, our certificate and the revocation list; PKI_CONFIG naming the file on
   * any problem. The revocation list is re-read when it changes (watched, and stat-polled every
   * second for files replaced by rename); a broken new version keeps the previous list in force.
   */
  static load(opts: PkiOptions, hooks: PkiHooks = {}): ConsortiumPki {
    const warningDays = opts.expiryWarningDays ?? DEFAULT_EXPIRY_WARNING_DAYS;
    if (!Number.isFinite(warningDays) || warningDays < 0)
      throw new PkiError("PKI_CONFIG", `expiryWarningDays must be a number of days, got ${warningDays}`);
    const anchors = loadPemFile(opts.caFile, "CA file").map((cert): Anchor => {
      if (!cert.isCa)
        throw new PkiError(
          "PKI_CONFIG",
          `CA file ${opts.caFile}: '${cert.label}' is not a CA certificate (no basicConstraints CA:TRUE)`,
          { path: opts.caFile },
        );
      return { cert, publicKey: cert.node.publicKey };
    });
    const own = loadPemFile(opts.certFile, "certificate file");
    let pki: ConsortiumPki | null = null;
    let revocations: RevocationList | null = null;
    if (opts.revocationFile !== undefined) {
      try {
        revocations = RevocationList.load(opts.revocationFile, {
          watch: true,
          onReload: () => pki?.revocationsChanged(),
        });
      } catch (e) {
        if (!(e instanceof HsmError)) throw e;
        throw new PkiError("PKI_CONFIG", e.message, { path: opts.revocationFile });
      }
    }
    pki = new ConsortiumPki(opts, { anchors, own, revocations, hooks });
    return pki;
  }

  /** What this node presents: its certificate and intermediates, re-encoded (nothing else from the file). */
  ownCertificatePem(): string {
    return this.own.map(toPem).join("");
  }

  /** The revocation list's last reload error (the previous list stays in force), or null. */
  revocationError(): string | null {
    return this.revocations?.lastError?.message ?? null;
  }

  /**
   * Checks a peer's certificate PEM (leaf first, then any intermediates) against the authenticated
   * libp2p node id at `nowMs`. Synchronous; never throws.
   */
  verifyPeer(pem: string, nodeId: string, nowMs: number): PeerCertificateResult {
    const who = `certificate of ${printable(nodeId, 60)}`;
    if (typeof pem !== "string" || pem.trim() === "") return refuse("PKI_MALFORMED", `${who} is empty`);
    if (Buffer.byteLength(pem, "utf8") > MAX_PEER_PEM_BYTES)
      return refuse("PKI_MALFORMED", `${who} is larger than ${MAX_PEER_PEM_BYTES / 1024} KiB`);
    let certs: Cert[];
    try {
      certs = parsePem(pem);
    } catch (e) {
      return refuse("PKI_MALFORMED", `${who} is malformed: ${(e as Error).message}`);
    }
    return this.check(certs, nodeId, nowMs, who);
  }

  /** The same checks on our own certificate, plus `warn` when it expires within expiryWarningDays. */
  /** When this node's own (leaf) certificate expires, valid or not: for the expiry metric. */
  ownNotAfter(): Date | undefined {
    return this.own[0]?.notAfter;
  }

  checkOwn(nodeId: string, nowMs: number): OwnCertificateResult {
    const result = this.check(this.own, nodeId, nowMs, `our certificate ${this.opts.certFile}`);
    if (!result.ok) return result;
    const remainingMs = result.notAfter.getTime() - nowMs;
    return {
      ...result,
      expiresInDays: Math.floor(remainingMs / DAY_MS),
      warn: remainingMs < this.opts.expiryWarningDays * DAY_MS,
    };
  }

  close(): void {
    if (this.poll !== null && this.revocations?.path != null) unwatchFile(this.revocations.path, this.poll);
    this.revocations?.close();
  }

  private revocationsChanged(): void {
    const index = indexRevocations(this.revocations?.entries() ?? []);
    if (index.fingerprint === this.revoked.fingerprint) return;
    this.revoked = index;
    this.hooks.onRevocationReload?.();
  }

  private check(certs: Cert[], nodeId: string, nowMs: number, who: string): PeerCertificateResult {
    try {
      return this.checkChain(certs, nodeId, nowMs, who);
    } catch (e) {
      // Parsing read every field already; this is node:crypto refusing e.g. an unsupported key type.
      return refuse("PKI_MALFORMED", `${who} cannot be checked: ${printable((e as Error).message)}`);
    }
  }

  private checkChain(certs: Cert[], nodeId: string, nowMs: number, who: string): PeerCertificateResult {
    const leaf = certs[0]!;
    const chain = this.buildChain(leaf, certs.slice(1), who);
    if (!Array.isArray(chain)) return chain;

    const now = new Date(nowMs);
    for (const [i, cert] of chain.entries()) {
      const what = i === 0 ? who : `CA certificate '${cert.label}' in the chain of ${who}`;
      if (now < cert.notBefore)
        return refuse("PKI_NOT_YET_VALID", `${what} is not valid before ${isoSeconds(cert.notBefore)}`);
      if (now > cert.notAfter)
        return refuse("PKI_EXPIRED", `${what} expired on ${isoSeconds(cert.notAfter)}`);
    }

    if (this.revoked.keyIds.has(nodeId))
      return refuse("PKI_REVOKED", `${who} is revoked: its node id is on the revocation list`);
    // The anchor is trusted by configuration: only what the peer presented can be revoked here.
    for (const [i, cert] of chain.slice(0, -1).entries()) {
      const what = i === 0 ? who : `intermediate CA '${cert.label}' in the chain of ${who}`;
      if (this.revoked.serials.has(normaliseSerial(cert.serial) ?? ""))
        return refuse("PKI_REVOKED", `${what} is revoked: serial ${cert.serial} is on the revocation list`);
      if (cert.rawPublicKey !== null && this.revoked.publicKeys.has(cert.rawPublicKey))
        return refuse("PKI_REVOKED", `${what} is revoked: its public key is on the revocation list`);
    }

    const bound = leaf.nodeIds;
    if (bound.length === 0)
      return refuse(
        "PKI_WRONG_NODE",
        `${who} binds no node id (no subjectAltName URI ${NODE_ID_URI_PREFIX}...)`,
      );
    if (bound.length > 1) return refuse("PKI_WRONG_NODE", `${who} binds ${bound.length} node ids, not one`);
    if (bound[0] !== nodeId)
      return refuse("PKI_WRONG_NODE", `${who} was issued to another node (${printable(bound[0]!, 60)})`);

    return { ok: true, subject: leaf.label, serial: leaf.serial, notAfter: leaf.notAfter };
  }

  /** Leaf, presented intermediates, and the configured CA that ends the chain; or why there is none. */
  private buildChain(leaf: Cert, intermediates: Cert[], who: string): Cert[] | Refusal {
    const chain = [leaf];
    const unused = new Set(intermediates);
    let current = leaf;
    for (let depth = 0; depth <= MAX_CHAIN_CERTS; depth++) {
      const subject = current;
      // Several CAs may share a name (a key rollover): any one whose signature verifies will do.
      const anchors = this.anchors.filter((a) => subject.node.checkIssued(a.cert.node));
      const anchor = anchors.find((a) => subject.node.verify(a.publicKey));
      if (anchor !== undefined) {
        chain.push(anchor.cert);
        return chain;
      }
      const named = [...unused].filter((c) => subject.node.checkIssued(c.node));
      const issuer = named.find((c) => c.isCa && subject.node.verify(c.node.publicKey));
      if (issuer === undefined) {
        const claimed = anchors[0]?.cert ?? named[0];
        if (claimed === undefined) break;
        const what = subject === leaf ? who : `CA '${subject.label}' in the chain of ${who}`;
        return refuse(
          "PKI_UNTRUSTED",
          claimed.isCa
            ? `${what} has an invalid signature from '${claimed.label}'`
            : `${what} names '${claimed.label}' as its issuer, which is not a CA`,
        );
      }
      unused.delete(issuer);
      chain.push(issuer);
      current = issuer;
    }
    return refuse(
      "PKI_UNTRUSTED",
      `${who} ('${leaf.label}', issuer '${current.issuerLabel}') does not chain to the consortium CA`,
    );
  }
}
