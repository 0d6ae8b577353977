/**
 * The local encrypted keystore: one validator key in a versioned JSON file, like Ethereum's
 * keystore v3. The private key (PKCS#8 DER) is encrypted with AES-256-GCM under a key derived
 * from a passphrase with scrypt; the header (format, version, algorithm, public key, key id) is
 * the associated data, so editing any of it fails authentication.
 *
 * {
 *   "format": "vitalstream-keystore", "version": 1, "keyId": "validator-1",
 *   "algorithm": "ed25519", "publicKey": "<hex>",
 *   "crypto": { "kdf": "scrypt", "kdfparams": { "n": 131072, "r": 8, "p": 1, "dklen": 32, "salt": "<hex>" },
 *               "cipher": "aes-256-gcm", "iv": "<hex>", "ciphertext": "<hex>", "tag": "<hex>" }
 * }
 *
 * For development and tests: `--production` refuses it (keys belong in an HSM or KMS).
 */
import {
  createCipheriv,
  createDecipheriv,
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  type KeyObject,
  randomBytes,
  scryptSync,
} from "node:crypto";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { HsmError } from "../../errors.ts";
import type { SignatureAlgorithm } from "../../interface.ts";
import { rawPublicKeyFromKeyObject } from "../../signature.ts";

export const KEYSTORE_FORMAT = "vitalstream-keystore";
/** scrypt N = 2^17: about 0.3 s and 128 MiB per unlock on a server core. */
export const DEFAULT_SCRYPT_N = 2 ** 17;

export interface ScryptParams {
  n: number;
  r: number;
  p: number;
  dklen: number;
  salt: string;
}

export interface KeystoreFile {
  format: typeof KEYSTORE_FORMAT;
  version: 1;
  keyId: string;
  algorithm: SignatureAlgorithm;
  publicKey: string;
  crypto: {
    kdf: "scrypt";
    kdfparams: ScryptParams;
    cipher: "aes-256-gcm";
    iv: string;
    ciphertext: string;
    tag: string;
  };
}

export function deriveKey(passphrase: string, params: ScryptParams): Buffer {
  const maxmem = 256 * params.n * params.r + 16 * 1024 * 1024;
  return scryptSync(passphrase.normalize("NFKC"), Buffer.from(params.salt, "hex"), params.dklen, {
    N: params.n,
    r: params.r,
    p: params.p,
    maxmem,
  });
}

function aad(k: Pick<KeystoreFile, "format" | "version" | "keyId" | "algorithm" | "publicKey">): Buffer {
  return Buffer.from(JSON.stringify([k.format, k.version, k.keyId, k.algorithm, k.publicKey]));
}

export interface CreateKeystoreOptions {
  path: string;
  passphrase: string;
  algorithm: SignatureAlgorithm;
  keyId: string;
  scryptN?: number;
  /** Existing key (import) instead of a new one. */
  privateKey?: KeyObject;
}

/** Generates (or imports) a key and writes it encrypted; refuses to overwrite an existing file. */
export function createKeystore(opts: CreateKeystoreOptions): { publicKey: Uint8Array; keyId: string } {
  if (existsSync(opts.path))
    throw new HsmError(
      "HSM_INVALID_CONFIG",
      `keystore ${opts.path} already exists; refusing to overwrite a key`,
    );
  if (opts.passphrase.length < 8)
    throw new HsmError("HSM_INVALID_CONFIG", "the keystore passphrase must be at least 8 characters");
  const privateKey =
    opts.privateKey ??
    (opts.algorithm === "ed25519"
      ? generateKeyPairSync("ed25519").privateKey
      : generateKeyPairSync("ec", { namedCurve: "P-256" }).privateKey);
  const publicKey = rawPublicKeyFromKeyObject(createPublicKey(privateKey), opts.algorithm);
  const n = opts.scryptN ?? DEFAULT_SCRYPT_N;
  if (!Number.isInteger(Math.log2(n)) || n < 2 ** 10)
    throw new HsmError("HSM_INVALID_CONFIG", "scrypt N must be a power of two >= 1024");
  const kdfparams: ScryptParams = { n, r: 8, p: 1, dklen: 32, salt: randomBytes(32).toString("hex") };
  const header: Omit<KeystoreFile, "crypto"> = {
    format: KEYSTORE_FORMAT,
    version: 1,
    keyId: opts.keyId,
    algorithm: opts.algorithm,
    publicKey: Buffer.from(publicKey).toString("hex"),
  };
  const iv = randomBytes(12);
  const cipher = createCipheriv("aes-256-gcm", deriveKey(opts.passphrase, kdfparams), iv);
  cipher.setAAD(aad(header));
  const der = privateKey.export({ format: "der", type: "pkcs8" });
  const ciphertext = Buffer.concat([cipher.update(der), cipher.final()]);
  const file: KeystoreFile = {
    ...header,
    crypto: {
      kdf: "scrypt",
      kdfparams,
      cipher: "aes-256-gcm",
      iv: iv.toString("hex"),
      ciphertext: ciphertext.toString("hex"),
      tag: cipher.getAuthTag().toString("hex"),
    },
  };
  writeFileSync(opts.path, `${JSON.stringify(file, null, 2)}\n`, { mode: 0o600, flag: "wx" });
  return { publicKey, keyId: opts.keyId };
}

function corrupt(path: string, detail: string): never {
  throw new HsmError("HSM_KEYSTORE_CORRUPT", `keystore ${path} is damaged: ${detail}`);
}

/** Parses and checks the file's structure (no decryption). */
export function readKeystore(path: string): KeystoreFile {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === "ENOENT") throw new HsmError("HSM_KEY_NOT_FOUND", `keystore ${path} does not exist`);
    throw new HsmError("HSM_INVALID_CONFIG", `cannot read keystore ${path} (${code ?? "error"})`);
  }
  let k: KeystoreFile;
  try {
    k = JSON.parse(text);
  } catch {
    return corrupt(path, "not valid JSON");
  }
  if (k?.format !== KEYSTORE_FORMAT) corrupt(path, "not a vitalstream keystore");
  if (k.version !== 1) corrupt(path, `unsupported version ${JSON.stringify(k.version)}`);
  if (k.algorithm !== "ed25519" && k.algorithm !== "ecdsa-p256") corrupt(path, "unknown algorithm");
  const hex = (v: unknown) => typeof v === "string" && /^[0-9a-f]*$/.test(v) && v.length % 2 === 0;
  const c = k.crypto;
  if (typeof k.keyId !== "string" || !hex(k.publicKey)) corrupt(path, "keyId or publicKey is missing");
  if (c?.kdf !== "scrypt" || c.cipher !== "aes-256-gcm") corrupt(path, "unsupported kdf or cipher");
  const p = c.kdfparams;
  if (
    !p ||
    ![p.n, p.r, p.p, p.dklen].every(Number.isSafeInteger) ||
    p.dklen !== 32 ||
    p.n > 2 ** 22 ||
    !hex(p.salt)
  ) {
    corrupt(path, "bad scrypt parameters");
  }
  if (!hex(c.iv) || c.iv.length !== 24 || !hex(c.ciphertext) || !hex(c.tag) || c.tag.length !== 32)
    corrupt(path, "bad cipher fields");
  return k;
}

/** Decrypts the key; a wrong passphrase is HSM_AUTH_FAILED, a damaged file HSM_KEYSTORE_CORRUPT. */
export function unlockKeystore(
  path: string,
  passphrase: string,
): { file: KeystoreFile; privateKey: KeyObject } {
  const file = readKeystore(path);
  const c = file.crypto;
  let der: Buffer;
  try {
    const decipher = createDecipheriv(
      "aes-256-gcm",
      deriveKey(passphrase, c.kdfparams),
      Buffer.from(c.iv, "hex"),
    );
    decipher.setAAD(aad(file));
    decipher.setAuthTag(Buffer.from(c.tag, "hex"));
    der = Buffer.concat([decipher.update(Buffer.from(c.ciphertext, "hex")), decipher.final()]);
  } catch {
    // GCM cannot tell a wrong passphrase from an edited file; the header is checked below.
    throw new HsmError(
      "HSM_AUTH_FAILED",
      `cannot unlock keystore ${path}: wrong passphrase, or the file was modified`,
      { keyId: file.keyId },
    );
  }
  let privateKey: KeyObject;
  try {
    privateKey = createPrivateKey({ key: der, format: "der", type: "pkcs8" });
  } catch {
    return corrupt(path, "the decrypted key is not PKCS#8");
  }
  const pub = Buffer.from(rawPublicKeyFromKeyObject(createPublicKey(privateKey), file.algorithm)).toString(
    "hex",
  );
  if (pub !== file.publicKey) corrupt(path, "the public key does not match the private key");
  return { file, privateKey };
}
