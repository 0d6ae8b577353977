/**
 * A HashiCorp Vault emulator (transit secrets engine), for tests only: no Vault server can be
 * obtained here. It speaks Vault's HTTP API as real clients see it: `/v1/<mount>/...` paths, the
 * `X-Vault-Token` header checked on every request (missing or wrong: 403 `permission denied`),
 * path policies (`path "<p>" { capabilities = [...] }`), Vault's response envelope and its error
 * bodies `{"errors": [...]}` with the same statuses and texts, real keys and real signatures
 * (node:crypto; @noble/curves for ECDSA over a caller-supplied digest, which node:crypto cannot
 * sign).
 *
 * Implemented at each mount: `keys/:name` (GET, POST, DELETE), `keys/:name/rotate`,
 * `keys/:name/config`, `sign/:name[/:hash]`, `verify/:name[/:hash]`, `encrypt/:name`,
 * `decrypt/:name`; plus `GET sys/health`. Key types: ed25519, ecdsa-p256, aes256-gcm96.
 * Not emulated: batch_input, derived keys, convergent encryption, RSA, exports, leases.
 */
import {
  createCipheriv,
  createDecipheriv,
  generateKeyPairSync,
  type KeyObject,
  sign as nodeSign,
  verify as nodeVerify,
  randomBytes,
  randomUUID,
} from "node:crypto";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo, Socket } from "node:net";
import { p256 } from "@noble/curves/nist.js";

export type TransitKeyType = "ed25519" | "ecdsa-p256" | "aes256-gcm96";
export type VaultCapability = "create" | "read" | "update" | "delete" | "list" | "sudo" | "deny";
/** Path (with Vault's `*` suffix and `+` segment globs) to capabilities, like an HCL policy. */
export type VaultPolicy = Record<string, VaultCapability[]>;

export interface VaultFaults {
  /** The next N API requests are answered 429 (rate limit quota exceeded). */
  throttle?: number;
  /** The next N API requests are answered 500. */
  serverErrors?: number;
  /** Every answer is delayed this long (0 to stop). */
  delayMs?: number;
  /** Sealed: every API request is answered 503 `Vault is sealed`. */
  sealed?: boolean;
}

export interface VaultEmulatorOptions {
  /** Transit mount paths (default ["transit"]); the first is the default for the helpers. */
  mounts?: string[];
  /** Enterprise namespace the mounts live in; requests must carry it in X-Vault-Namespace. */
  namespace?: string;
}

export interface RecordedRequest {
  method: string;
  /** Logical path without `/v1/`, e.g. `transit/sign/validator-1`. */
  path: string;
  namespace: string | undefined;
  body: Record<string, unknown> | undefined;
  status: number;
}

export interface VaultEmulator {
  /** `http://127.0.0.1:<port>` (VAULT_ADDR). */
  readonly address: string;
  /** A root token: every capability on every path. */
  readonly rootToken: string;
  /** Every request answered so far, oldest first. */
  readonly requests: RecordedRequest[];
  createKey(name: string, type: TransitKeyType, opts?: { mount?: string }): void;
  /** Adds a key version; returns the new latest version. */
  rotateKey(name: string, opts?: { mount?: string }): number;
  configureKey(
    name: string,
    config: { minEncryptionVersion?: number; minDecryptionVersion?: number; deletionAllowed?: boolean },
    opts?: { mount?: string },
  ): void;
  deleteKey(name: string, opts?: { mount?: string }): void;
  /** A new token limited to `policy` (an object, or HCL `path "..." { capabilities = [...] }`). */
  createToken(policy: VaultPolicy | string): string;
  revokeToken(token: string): void;
  /** Sets the given faults; counters replace the current ones. */
  injectFaults(faults: VaultFaults): void;
  /** Stops listening and drops connections (the backend is down). */
  stop(): Promise<void>;
  /** Listens again on the same port. */
  start(): Promise<void>;
  close(): Promise<void>;
}

interface KeyVersion {
  creationTime: string;
  /** ed25519 / ecdsa-p256. */
  privateKey?: KeyObject;
  publicKey?: KeyObject;
  formattedPublicKey?: string;
  /** aes256-gcm96. */
  secret?: Buffer;
}

interface TransitKey {
  name: string;
  type: TransitKeyType;
  versions: Map<number, KeyVersion>;
  latestVersion: number;
  minEncryptionVersion: number;
  minDecryptionVersion: number;
  deletionAllowed: boolean;
}

class VaultHttpError extends Error {
  readonly status: number;
  constructor(status: number, message: string) {
    super(message);
    this.status = status;
  }
}

/** What Vault answers when a backend returns an error (rather than an error response). */
function internal(status: number, message: string): VaultHttpError {
  return new VaultHttpError(status, `1 error occurred:\n\t* ${message}\n\n`);
}

const KEY_NAME = /^\w(?:[\w\-.@]*\w)?$/;
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
const HASHES: Record<string, string | null> = {
  "sha2-224": "sha224",
  "sha2-256": "sha256",
  "sha2-384": "sha384",
  "sha2-512": "sha512",
  "sha3-224": "sha3-224",
  "sha3-256": "sha3-256",
  "sha3-384": "sha3-384",
  "sha3-512": "sha3-512",
  sha1: "sha1",
  none: null,
};

const NO_HASH = "hash_algorithm=none requires both prehashed=true and signature_algorithm=pkcs1v15";

function randomToken(): string {
  return `hvs.${randomBytes(18).toString("base64url")}`;
}

function decodeBase64(text: string, what: string): Buffer {
  if (!BASE64.test(text))
    throw new VaultHttpError(400, `unable to decode ${what} as base64: illegal base64 data`);
  return Buffer.from(text, "base64");
}

function bool(value: unknown): boolean {
  return value === true || value === "true" || value === 1 || value === "1";
}

function int(value: unknown, field: string): number {
  if (value === undefined || value === null || value === "") return 0;
  const n = typeof value === "string" ? Number(value) : value;
  if (typeof n !== "number" || !Number.isInteger(n)) {
    throw new VaultHttpError(400, `error converting input for field "${field}": cannot parse as int`);
  }
  return n;
}

/** Parses `path "x" { capabilities = ["read", ...] }` blocks (the subset tests need). */
export function parsePolicyHcl(hcl: string): VaultPolicy {
  const policy: VaultPolicy = {};
  const block = /path\s+"([^"]+)"\s*\{\s*capabilities\s*=\s*\[([^\]]*)\]\s*\}/g;
  const withoutComments = hcl.replace(/#[^\n]*/g, "");
  for (const m of withoutComments.matchAll(block)) {
    const caps = [...m[2]!.matchAll(/"([a-z]+)"/g)].map((c) => c[1] as VaultCapability);
    policy[m[1]!] = [...(policy[m[1]!] ?? []), ...caps];
  }
  if (Object.keys(policy).length === 0) throw new Error("no path blocks in the policy");
  return policy;
}

function globMatches(pattern: string, path: string): boolean {
  const prefix = pattern.endsWith("*");
  const body = prefix ? pattern.slice(0, -1) : pattern;
  const re = body
    .split("+")
    .map((part) => part.replace(/[.*?^${}()|[\]\\]/g, "\\$&"))
    .join("[^/]+");
  return new RegExp(`^${re}${prefix ? ".*" : ""}$`).test(path);
}

/** Vault's rule: the most specific matching path wins (exact, then the longest glob). */
function allowed(policy: VaultPolicy | "root", path: string, capability: VaultCapability): boolean {
  if (policy === "root") return true;
  let best: { score: number; caps: VaultCapability[] } | undefined;
  for (const [pattern, caps] of Object.entries(policy)) {
    if (!globMatches(pattern, path)) continue;
    const exact = !pattern.includes("*") && !pattern.includes("+");
    const score = (exact ? 1_000_000 : 0) + pattern.replace(/[*+]/g, "").length;
    if (best === undefined || score > best.score) best = { score, caps };
  }
  return best !== undefined && !best.caps.includes("deny") && best.caps.includes(capability);
}

function newVersion(type: TransitKeyType): KeyVersion {
  const creationTime = new Date().toISOString();
  if (type === "aes256-gcm96") return { creationTime, secret: randomBytes(32) };
  const pair =
    type === "ed25519"
      ? generateKeyPairSync("ed25519")
      : generateKeyPairSync("ec", { namedCurve: "prime256v1" });
  const formattedPublicKey =
    type === "ed25519"
      ? Buffer.from(pair.publicKey.export({ format: "jwk" }).x!, "base64url").toString("base64")
      : (pair.publicKey.export({ format: "pem", type: "spki" }) as string);
  return { creationTime, privateKey: pair.privateKey, publicKey: pair.publicKey, formattedPublicKey };
}

function describeKey(key: TransitKey): Record<string, unknown> {
  const asymmetric = key.type !== "aes256-gcm96";
  const keys: Record<string, unknown> = {};
  for (const [v, entry] of key.versions) {
    keys[String(v)] = asymmetric
      ? {
          certificate_chain: "",
          creation_time: entry.creationTime,
          name: key.type === "ed25519" ? "ed25519" : "P-256",
          public_key: entry.formattedPublicKey,
        }
      : Math.floor(Date.parse(entry.creationTime) / 1000);
  }
  return {
    allow_plaintext_backup: false,
    auto_rotate_period: 0,
    deletion_allowed: key.deletionAllowed,
    derived: false,
    exportable: false,
    imported_key: false,
    keys,
    latest_version: key.latestVersion,
    min_available_version: 0,
    min_decryption_version: key.minDecryptionVersion,
    min_encryption_version: key.minEncryptionVersion,
    name: key.name,
    supports_decryption: !asymmetric,
    supports_derivation: key.type !== "ecdsa-p256",
    supports_encryption: !asymmetric,
    supports_signing: asymmetric,
    type: key.type,
  };
}

export async function startVaultEmulator(opts: VaultEmulatorOptions = {}): Promise<VaultEmulator> {
  const mounts = (opts.mounts ?? ["transit"]).map((m) => m.replace(/^\/+|\/+$/g, ""));
  const keys = new Map<string, Map<string, TransitKey>>(mounts.map((m) => [m, new Map()]));
  const rootToken = randomToken();
  const tokens = new Map<string, VaultPolicy | "root">([[rootToken, "root"]]);
  const requests: RecordedRequest[] = [];
  const faults = { throttle: 0, serverErrors: 0, delayMs: 0, sealed: false };
  const sockets = new Set<Socket>();

  const mountKeys = (mount: string | undefined): Map<string, TransitKey> => {
    const m = keys.get(mount ?? mounts[0]!);
    if (m === undefined) throw new Error(`no transit mount ${mount}`);
    return m;
  };
  const createKey = (mount: string, name: string, type: TransitKeyType): TransitKey => {
    const key: TransitKey = {
      name,
      type,
      versions: new Map([[1, newVersion(type)]]),
      latestVersion: 1,
      minEncryptionVersion: 0,
      minDecryptionVersion: 1,
      deletionAllowed: false,
    };
    mountKeys(mount).set(name, key);
    return key;
  };
  const rotate = (key: TransitKey): void => {
    key.latestVersion += 1;
    key.versions.set(key.latestVersion, newVersion(key.type));
  };

  // --- transit operations -------------------------------------------------------------------

  const signingVersion = (key: TransitKey, requested: number): KeyVersion => {
    const v = requested === 0 ? key.latestVersion : requested;
    if (v < 0) throw internal(500, "requested version for signing is negative");
    if (v > key.latestVersion)
      throw internal(500, "requested version for signing is higher than the latest key version");
    if (key.minEncryptionVersion > 0 && v < key.minEncryptionVersion) {
      throw internal(500, "requested version for signing is less than the minimum encryption key version");
    }
    return key.versions.get(v)!;
  };

  const hashAlgorithm = (urlAlgorithm: string | undefined, body: Record<string, unknown>): string | null => {
    const name =
      urlAlgorithm ??
      (body.hash_algorithm as string | undefined) ??
      (body.algorithm as string | undefined) ??
      "sha2-256";
    if (!(name in HASHES)) throw new VaultHttpError(400, `invalid hash algorithm "${name}"`);
    return HASHES[name]!;
  };

  const sign = (
    key: TransitKey | undefined,
    urlAlgorithm: string | undefined,
    body: Record<string, unknown>,
  ) => {
    if (key === undefined) throw new VaultHttpError(400, "signing key not found");
    if (key.type === "aes256-gcm96")
      throw new VaultHttpError(400, `key type ${key.type} does not support signing`);
    const hash = hashAlgorithm(urlAlgorithm, body);
    const marshaling = (body.marshaling_algorithm as string | undefined) ?? "asn1";
    if (marshaling !== "asn1" && marshaling !== "jws")
      throw new VaultHttpError(400, `invalid marshaling type "${marshaling}"`);
    if (hash === null) throw new VaultHttpError(400, NO_HASH);
    const prehashed = bool(body.prehashed);
    const input = decodeBase64(String(body.input ?? ""), "input");
    const requested = int(body.key_version, "key_version");
    const version = signingVersion(key, requested);
    const keyVersion = requested === 0 ? key.latestVersion : requested;
    let signature: Buffer;
    if (key.type === "ed25519") {
      signature = nodeSign(null, input, version.privateKey!);
    } else if (prehashed) {
      // node:crypto always hashes for ECDSA; sign the caller's digest as Go's ecdsa.Sign does
      // (random nonce, no low-S normalisation).
      const d = Buffer.from(version.privateKey!.export({ format: "jwk" }).d!, "base64url");
      const format = marshaling === "asn1" ? "der" : "compact";
      signature = Buffer.from(
        p256.sign(input, d, { prehash: false, lowS: false, extraEntropy: true, format }),
      );
    } else {
      const dsaEncoding = marshaling === "asn1" ? "der" : "ieee-p1363";
      signature = nodeSign(hash, input, { key: version.privateKey!, dsaEncoding });
    }
    const encoded = marshaling === "jws" ? signature.toString("base64url") : signature.toString("base64");
    return { signature: `vault:v${keyVersion}:${encoded}`, key_version: keyVersion };
  };

  const verify = (
    key: TransitKey | undefined,
    urlAlgorithm: string | undefined,
    body: Record<string, unknown>,
  ) => {
    if (key === undefined) throw new VaultHttpError(400, "signature verification key not found");
    if (key.type === "aes256-gcm96")
      throw new VaultHttpError(400, `key type ${key.type} does not support verification`);
    const hash = hashAlgorithm(urlAlgorithm, body);
    const marshaling = (body.marshaling_algorithm as string | undefined) ?? "asn1";
    if (hash === null) throw new VaultHttpError(400, NO_HASH);
    const input = decodeBase64(String(body.input ?? ""), "input");
    const signature = body.signature;
    if (typeof signature !== "string")
      throw new VaultHttpError(400, "neither a 'signature' nor an 'hmac' were given to verify");
    if (!signature.startsWith("vault:v")) throw new VaultHttpError(400, "invalid signature: no prefix");
    const [versionText, encoded] = signature.slice("vault:v".length).split(":", 2);
    const v = Number(versionText);
    const version = key.versions.get(v);
    if (!Number.isInteger(v) || encoded === undefined)
      throw new VaultHttpError(400, "invalid signature: wrong number of fields");
    if (version === undefined || v < key.minDecryptionVersion) {
      throw new VaultHttpError(400, "ciphertext or signature version is disallowed by policy (too old)");
    }
    const raw = Buffer.from(encoded, marshaling === "jws" ? "base64url" : "base64");
    if (key.type === "ed25519") return { valid: nodeVerify(null, input, version.publicKey!, raw) };
    const dsaEncoding = marshaling === "asn1" ? "der" : "ieee-p1363";
    if (bool(body.prehashed)) {
      const pub = new Uint8Array(version.publicKey!.export({ format: "der", type: "spki" }).subarray(-65));
      return {
        valid: p256.verify(raw, input, pub, {
          prehash: false,
          lowS: false,
          format: marshaling === "asn1" ? "der" : "compact",
        }),
      };
    }
    return { valid: nodeVerify(hash, input, { key: version.publicKey!, dsaEncoding }, raw) };
  };

  const encrypt = (
    mount: string,
    name: string,
    key: TransitKey | undefined,
    body: Record<string, unknown>,
  ) => {
    if (typeof body.plaintext !== "string") throw new VaultHttpError(400, "missing plaintext to encrypt");
    const plaintext = decodeBase64(body.plaintext, "plaintext");
    // Transit upserts: encrypting with a missing key creates it (the caller needed "create").
    const k = key ?? createKey(mount, name, "aes256-gcm96");
    if (k.type !== "aes256-gcm96")
      throw internal(500, `message encryption not supported for key type ${k.type}`);
    const requested = int(body.key_version, "key_version");
    const v = requested === 0 ? k.latestVersion : requested;
    if (v > k.latestVersion)
      throw new VaultHttpError(400, "requested version for encryption is higher than the latest key version");
    if (k.minEncryptionVersion > 0 && v < k.minEncryptionVersion) {
      throw new VaultHttpError(
        400,
        "requested version for encryption is less than the minimum encryption key version",
      );
    }
    const nonce = randomBytes(12);
    const cipher = createCipheriv("aes-256-gcm", k.versions.get(v)!.secret!, nonce);
    if (typeof body.associated_data === "string" && body.associated_data !== "") {
      cipher.setAAD(decodeBase64(body.associated_data, "associated_data"));
    }
    const sealed = Buffer.concat([nonce, cipher.update(plaintext), cipher.final(), cipher.getAuthTag()]);
    return { ciphertext: `vault:v${v}:${sealed.toString("base64")}`, key_version: v };
  };

  const decrypt = (key: TransitKey | undefined, body: Record<string, unknown>) => {
    if (key === undefined) throw new VaultHttpError(400, "encryption key not found");
    const value = body.ciphertext;
    if (typeof value !== "string" || value === "")
      throw new VaultHttpError(400, "missing ciphertext to decrypt");
    if (key.type !== "aes256-gcm96")
      throw new VaultHttpError(400, `message decryption not supported for key type ${key.type}`);
    if (!value.startsWith("vault:v")) throw new VaultHttpError(400, "invalid ciphertext: no prefix");
    const rest = value.slice("vault:v".length);
    const colon = rest.indexOf(":");
    if (colon < 0) throw new VaultHttpError(400, "invalid ciphertext: wrong number of fields");
    let v = Number(rest.slice(0, colon));
    if (!/^\d+$/.test(rest.slice(0, colon)))
      throw new VaultHttpError(400, "invalid ciphertext: version number could not be decoded");
    if (v === 0) v = 1;
    if (v > key.latestVersion) throw new VaultHttpError(400, "invalid ciphertext: version is too new");
    if (key.minDecryptionVersion > 0 && v < key.minDecryptionVersion) {
      throw new VaultHttpError(400, "ciphertext or signature version is disallowed by policy (too old)");
    }
    const encoded = rest.slice(colon + 1);
    if (!BASE64.test(encoded)) throw new VaultHttpError(400, "invalid ciphertext: could not decode base64");
    const sealed = Buffer.from(encoded, "base64");
    if (sealed.length < 12 + 16) throw new VaultHttpError(400, "invalid ciphertext length");
    const decipher = createDecipheriv("aes-256-gcm", key.versions.get(v)!.secret!, sealed.subarray(0, 12));
    if (typeof body.associated_data === "string" && body.associated_data !== "") {
      decipher.setAAD(decodeBase64(body.associated_data, "associated_data"));
    }
    decipher.setAuthTag(sealed.subarray(sealed.length - 16));
    try {
      const plaintext = Buffer.concat([
        decipher.update(sealed.subarray(12, sealed.length - 16)),
        decipher.final(),
      ]);
      return { plaintext: plaintext.toString("base64") };
    } catch {
      throw new VaultHttpError(400, "cipher: message authentication failed");
    }
  };

  const configure = (key: TransitKey, body: Record<string, unknown>) => {
    if (body.min_encryption_version !== undefined) {
      const v = int(body.min_encryption_version, "min_encryption_version");
      if (v < 0 || v > key.latestVersion) {
        throw new VaultHttpError(
          400,
          "cannot set min encryption version of a key higher than its latest version",
        );
      }
      key.minEncryptionVersion = v;
    }
    if (body.min_decryption_version !== undefined) {
      const v = int(body.min_decryption_version, "min_decryption_version");
      if (v < 0 || v > key.latestVersion) {
        throw new VaultHttpError(
          400,
          "cannot set min decryption version of a key higher than its latest version",
        );
      }
      key.minDecryptionVersion = Math.max(v, 1);
    }
    if (body.deletion_allowed !== undefined) key.deletionAllowed = bool(body.deletion_allowed);
  };

  // --- HTTP ---------------------------------------------------------------------------------

  const envelope = (data: Record<string, unknown>, mountType: string, warnings: string[] | null = null) => ({
    request_id: randomUUID(),
    lease_id: "",
    renewable: false,
    lease_duration: 0,
    data,
    wrap_info: null,
    warnings,
    auth: null,
    mount_type: mountType,
  });

  type Answer = { status: number; body?: unknown };

  const route = (
    method: string,
    path: string,
    namespace: string | undefined,
    token: string | undefined,
    body: Record<string, unknown>,
  ): Answer => {
    if (path === "sys/health" && method === "GET") {
      const health = {
        initialized: true,
        sealed: faults.sealed,
        standby: false,
        performance_standby: false,
        replication_performance_mode: "disabled",
        replication_dr_mode: "disabled",
        server_time_utc: Math.floor(Date.now() / 1000),
        version: "1.17.0+emulator",
        cluster_name: "vault-emulator",
        cluster_id: "00000000-0000-0000-0000-000000000000",
      };
      return { status: faults.sealed ? 503 : 200, body: health };
    }
    if (faults.sealed) throw new VaultHttpError(503, "Vault is sealed");
    if (faults.throttle > 0) {
      faults.throttle -= 1;
      throw new VaultHttpError(429, `request path "${path}": rate limit quota exceeded`);
    }
    if (faults.serverErrors > 0) {
      faults.serverErrors -= 1;
      throw internal(500, "internal error");
    }
    const policy = token === undefined ? undefined : tokens.get(token);
    if (policy === undefined) throw new VaultHttpError(403, "permission denied");

    const mount = [...mounts].sort((a, b) => b.length - a.length).find((m) => path.startsWith(`${m}/`));
    const inNamespace = (opts.namespace ?? undefined) === (namespace?.replace(/^\/+|\/+$/g, "") || undefined);
    const rest = mount === undefined ? [] : path.slice(mount.length + 1).split("/");
    const [verb, name, extra, ...tooMany] = rest;
    const key = mount !== undefined && name !== undefined ? keys.get(mount)!.get(name) : undefined;
    const capability: VaultCapability =
      method === "GET"
        ? "read"
        : method === "DELETE"
          ? "delete"
          : key === undefined && (verb === "encrypt" || (verb === "keys" && extra === undefined))
            ? "create"
            : "update";
    if (!allowed(policy, path, capability)) throw internal(403, "permission denied");

    const noRoute = () => new VaultHttpError(404, `no handler for route "${path}". route entry not found.`);
    if (
      mount === undefined ||
      !inNamespace ||
      name === undefined ||
      !KEY_NAME.test(name) ||
      tooMany.length > 0
    ) {
      throw noRoute();
    }
    const keyMap = keys.get(mount)!;
    const write = method === "POST" || method === "PUT";
    const ok = (data: Record<string, unknown>, warnings: string[] | null = null): Answer => ({
      status: 200,
      body: envelope(data, "transit", warnings),
    });
    const unsupported = () => new VaultHttpError(405, "unsupported operation");

    switch (verb) {
      case "keys": {
        if (extra === undefined) {
          if (method === "GET")
            return key === undefined ? { status: 404, body: { errors: [] } } : ok(describeKey(key));
          if (method === "DELETE") {
            if (key === undefined) return { status: 204 };
            if (!key.deletionAllowed) throw new VaultHttpError(400, "deletion is not allowed for this key");
            keyMap.delete(name);
            return { status: 204 };
          }
          if (!write) throw unsupported();
          if (key !== undefined) return ok(describeKey(key), [`key ${name} already existed`]);
          const type = (body.type as string | undefined) ?? "aes256-gcm96";
          if (type !== "ed25519" && type !== "ecdsa-p256" && type !== "aes256-gcm96") {
            throw new VaultHttpError(400, `unknown key type ${type}`);
          }
          return ok(describeKey(createKey(mount, name, type)));
        }
        if (!write) throw unsupported();
        if (extra === "rotate") {
          if (key === undefined) throw new VaultHttpError(400, "key not found");
          rotate(key);
          return ok(describeKey(key));
        }
        if (extra === "config") {
          if (key === undefined)
            throw new VaultHttpError(400, `no existing key named ${name} could be found`);
          configure(key, body);
          return ok(describeKey(key));
        }
        throw noRoute();
      }
      case "sign":
        if (!write) throw unsupported();
        return ok(sign(key, extra, body));
      case "verify":
        if (!write) throw unsupported();
        return ok(verify(key, extra, body));
      case "encrypt":
        if (!write) throw unsupported();
        if (extra !== undefined) throw noRoute();
        return ok(encrypt(mount, name, key, body));
      case "decrypt":
        if (!write) throw unsupported();
        if (extra !== undefined) throw noRoute();
        return ok(decrypt(key, body));
      default:
        throw noRoute();
    }
  };

  const readBody = async (req: IncomingMessage): Promise<string> => {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    return Buffer.concat(chunks).toString("utf8");
  };

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const url = new URL(req.url ?? "/", "http://vault");
    const header = (name: string) => {
      const v = req.headers[name];
      return Array.isArray(v) ? v[0] : v;
    };
    const method = req.method ?? "GET";
    const text = await readBody(req);
    let answer: Answer;
    let body: Record<string, unknown> | undefined;
    let path = "";
    try {
      if (!url.pathname.startsWith("/v1/")) throw new VaultHttpError(404, "404 page not found");
      path = decodeURIComponent(url.pathname.slice("/v1/".length)).replace(/\/+$/, "");
      if (text.trim() !== "") {
        try {
          const parsed: unknown = JSON.parse(text);
          if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed))
            throw new Error("not an object");
          body = parsed as Record<string, unknown>;
        } catch (e) {
          throw new VaultHttpError(400, `failed to parse JSON input: ${(e as Error).message}`);
        }
      }
      answer = route(method, path, header("x-vault-namespace"), header("x-vault-token"), body ?? {});
    } catch (e) {
      if (!(e instanceof VaultHttpError)) throw e;
      answer = { status: e.status, body: { errors: [e.message] } };
    }
    requests.push({ method, path, namespace: header("x-vault-namespace"), body, status: answer.status });
    if (faults.delayMs > 0) await new Promise((resolve) => setTimeout(resolve, faults.delayMs));
    if (res.destroyed) return;
    if (answer.status === 429) res.setHeader("Retry-After", "1");
    if (answer.body === undefined) {
      res.writeHead(answer.status).end();
      return;
    }
    res.writeHead(answer.status, { "Content-Type": "application/json", "Cache-Control": "no-store" });
    res.end(`${JSON.stringify(answer.body)}\n`);
  };

  let server: Server | undefined;
  let port = 0;
  const listen = async (): Promise<void> => {
    const s = createServer((req, res) => {
      handle(req, res).catch((e: unknown) => {
        if (!res.headersSent && !res.destroyed) {
          res.writeHead(500, { "Content-Type": "application/json" });
          res.end(JSON.stringify({ errors: [`1 error occurred:\n\t* ${(e as Error).message}\n\n`] }));
        }
      });
    });
    s.on("connection", (socket: Socket) => {
      sockets.add(socket);
      socket.on("close", () => sockets.delete(socket));
    });
    await new Promise<void>((resolve, reject) => {
      s.once("error", reject);
      s.listen(port, "127.0.0.1", () => {
        s.off("error", reject);
        resolve();
      });
    });
    port = (s.address() as AddressInfo).port;
    server = s;
  };
  const stop = async (): Promise<void> => {
    const s = server;
    if (s === undefined) return;
    server = undefined;
    const closed = new Promise<void>((resolve) => s.close(() => resolve()));
    s.closeAllConnections();
    for (const socket of sockets) socket.destroy();
    await closed;
  };

  await listen();
  const keyFor = (name: string, mount: string | undefined): TransitKey => {
    const key = mountKeys(mount).get(name);
    if (key === undefined) throw new Error(`no key ${name}`);
    return key;
  };

  return {
    address: `http://127.0.0.1:${port}`,
    rootToken,
    requests,
    createKey: (name, type, o) => {
      if (!KEY_NAME.test(name)) throw new Error(`invalid key name ${name}`);
      createKey(o?.mount ?? mounts[0]!, name, type);
    },
    rotateKey: (name, o) => {
      const key = keyFor(name, o?.mount);
      rotate(key);
      return key.latestVersion;
    },
    configureKey: (name, config, o) => {
      configure(keyFor(name, o?.mount), {
        min_encryption_version: config.minEncryptionVersion,
        min_decryption_version: config.minDecryptionVersion,
        deletion_allowed: config.deletionAllowed,
      });
    },
    deleteKey: (name, o) => {
      mountKeys(o?.mount).delete(name);
    },
    createToken: (policy) => {
      const token = randomToken();
      tokens.set(token, typeof policy === "string" ? parsePolicyHcl(policy) : policy);
      return token;
    },
    revokeToken: (token) => {
      tokens.delete(token);
    },
    injectFaults: (f) => {
      if (f.throttle !== undefined) faults.throttle = f.throttle;
      if (f.serverErrors !== undefined) faults.serverErrors = f.serverErrors;
      if (f.delayMs !== undefined) faults.delayMs = f.delayMs;
      if (f.sealed !== undefined) faults.sealed = f.sealed;
    },
    stop,
    start: async () => {
      if (server === undefined) await listen();
    },
    close: stop,
  };
}
