/**
 * Keys and operations of the AWS KMS emulator: real key material held in node:crypto (and
 * @noble/curves for ECDSA over a given digest, which node:crypto cannot do), real signatures and
 * AES-256-GCM ciphertexts, and the request validation and error types KMS answers with.
 */
import {
  createCipheriv,
  createDecipheriv,
  createHash,
  generateKeyPairSync,
  type KeyObject,
  randomBytes,
  randomUUID,
  sign,
  verify,
} from "node:crypto";
import { p256 } from "@noble/curves/nist.js";

export type EmulatorKeySpec = "ECC_NIST_EDWARDS25519" | "ECC_NIST_P256" | "SYMMETRIC_DEFAULT";
export type EmulatorKeyState = "Enabled" | "Disabled" | "PendingDeletion";

/** An error KMS would answer with: `{"__type": type, "message": message}` and this HTTP status. */
export class KmsEmulatorError extends Error {
  readonly type: string;
  readonly status: number;
  constructor(type: string, message: string, status = 400) {
    super(message);
    this.name = "KmsEmulatorError";
    this.type = type;
    this.status = status;
  }
}

interface EmulatedKey {
  id: string;
  arn: string;
  spec: EmulatorKeySpec;
  usage: "SIGN_VERIFY" | "ENCRYPT_DECRYPT";
  state: EmulatorKeyState;
  description: string;
  created: Date;
  privateKey?: KeyObject;
  publicKey?: KeyObject;
  /** P-256 private scalar, for signing a given digest. */
  scalar?: Uint8Array;
  secret?: Buffer;
}

type Json = Record<string, unknown>;

const SIGNING_ALGORITHMS: Record<string, string[]> = {
  ECC_NIST_EDWARDS25519: ["ED25519_SHA_512", "ED25519_PH_SHA_512"],
  ECC_NIST_P256: ["ECDSA_SHA_256"],
};
const BLOB_MAGIC = 0x01;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

function validation(field: string, constraint: string): KmsEmulatorError {
  return new KmsEmulatorError(
    "ValidationException",
    `1 validation error detected: Value at '${field}' failed to satisfy constraint: ${constraint}`,
  );
}

function str(body: Json, field: string, required: true): string;
function str(body: Json, field: string, required?: false): string | undefined;
function str(body: Json, field: string, required = false): string | undefined {
  const v = body[field];
  if (v === undefined || v === null) {
    if (required) throw validation(field.charAt(0).toLowerCase() + field.slice(1), "Member must not be null");
    return undefined;
  }
  if (typeof v !== "string")
    throw new KmsEmulatorError("SerializationException", `${field} must be a string`);
  return v;
}

function blob(body: Json, field: string, max: number): Buffer {
  const v = str(body, field, true);
  const bytes = Buffer.from(v, "base64");
  if (bytes.toString("base64") !== v)
    throw new KmsEmulatorError("SerializationException", `${field} is not valid base64`);
  const name = field.charAt(0).toLowerCase() + field.slice(1);
  if (bytes.length < 1) throw validation(name, "Member must have length greater than or equal to 1");
  if (bytes.length > max) throw validation(name, `Member must have length less than or equal to ${max}`);
  return bytes;
}

function context(body: Json): Buffer {
  const v = body.EncryptionContext;
  if (v === undefined || v === null) return Buffer.alloc(0);
  if (typeof v !== "object" || Array.isArray(v))
    throw new KmsEmulatorError("SerializationException", "EncryptionContext must be a map");
  const entries = Object.entries(v as Record<string, unknown>).sort(([a], [b]) =>
    a < b ? -1 : a > b ? 1 : 0,
  );
  for (const [, value] of entries)
    if (typeof value !== "string")
      throw new KmsEmulatorError("SerializationException", "EncryptionContext values must be strings");
  return Buffer.from(JSON.stringify(entries));
}

export class KmsKeyStore {
  readonly region: string;
  readonly accountId: string;
  private readonly keys = new Map<string, EmulatedKey>();
  private readonly aliases = new Map<string, string>();

  constructor(region: string, accountId: string) {
    this.region = region;
    this.accountId = accountId;
  }

  private arnPrefix(): string {
    return `arn:aws:kms:${this.region}:${this.accountId}:`;
  }

  createKey(spec: EmulatorKeySpec, description = ""): EmulatedKey {
    const id = randomUUID();
    const key: EmulatedKey = {
      id,
      arn: `${this.arnPrefix()}key/${id}`,
      spec,
      usage: spec === "SYMMETRIC_DEFAULT" ? "ENCRYPT_DECRYPT" : "SIGN_VERIFY",
      state: "Enabled",
      description,
      created: new Date(),
    };
    if (spec === "SYMMETRIC_DEFAULT") key.secret = randomBytes(32);
    else if (spec === "ECC_NIST_EDWARDS25519") Object.assign(key, generateKeyPairSync("ed25519"));
    else {
      Object.assign(key, generateKeyPairSync("ec", { namedCurve: "P-256" }));
      const d = key.privateKey!.export({ format: "jwk" }).d!;
      key.scalar = Uint8Array.from(Buffer.from(d, "base64url"));
    }
    this.keys.set(id, key);
    return key;
  }

  setAlias(aliasName: string, keyId: string): void {
    if (!/^alias\/[a-zA-Z0-9/_-]+$/.test(aliasName) || aliasName.startsWith("alias/aws/")) {
      throw new KmsEmulatorError(
        "InvalidAliasNameException",
        `Alias must start with the prefix "alias/" and not use "alias/aws/"`,
      );
    }
    this.aliases.set(aliasName, this.resolve(keyId).id);
  }

  setState(keyId: string, state: EmulatorKeyState): void {
    this.resolve(keyId).state = state;
  }

  /** Key id, key ARN, alias name or alias ARN -> the key, or the NotFoundException KMS gives. */
  resolve(input: string): EmulatedKey {
    let ref = input;
    if (ref.startsWith("arn:")) {
      if (!ref.startsWith(this.arnPrefix())) {
        if (!/^arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:(key|alias)\/.+$/.test(ref))
          throw new KmsEmulatorError("InvalidArnException", `ARN ${ref} is not valid.`);
        throw new KmsEmulatorError(
          "NotFoundException",
          ref.includes(":alias/") ? `Alias ${ref} is not found.` : `Key '${ref}' does not exist`,
        );
      }
      ref = ref.slice(this.arnPrefix().length);
      if (ref.startsWith("key/")) ref = ref.slice(4);
    }
    if (ref.startsWith("alias/")) {
      const id = this.aliases.get(ref);
      if (id === undefined)
        throw new KmsEmulatorError("NotFoundException", `Alias ${this.arnPrefix()}${ref} is not found.`);
      ref = id;
    }
    if (!UUID.test(ref)) throw new KmsEmulatorError("NotFoundException", `Invalid keyId '${input}'`);
    const key = this.keys.get(ref);
    if (key === undefined)
      throw new KmsEmulatorError("NotFoundException", `Key '${this.arnPrefix()}key/${ref}' does not exist`);
    return key;
  }

  private usable(key: EmulatedKey): EmulatedKey {
    if (key.state === "Disabled") throw new KmsEmulatorError("DisabledException", `${key.arn} is disabled.`);
    if (key.state === "PendingDeletion")
      throw new KmsEmulatorError("KMSInvalidStateException", `${key.arn} is pending deletion.`);
    return key;
  }

  private wrongUsage(key: EmulatedKey, operation: string): KmsEmulatorError {
    return new KmsEmulatorError(
      "InvalidKeyUsageException",
      `${key.arn} key usage is ${key.usage} which is not valid for ${operation}.`,
    );
  }

  private metadata(key: EmulatedKey): Json {
    const md: Json = {
      AWSAccountId: this.accountId,
      KeyId: key.id,
      Arn: key.arn,
      CreationDate: key.created.getTime() / 1000,
      Enabled: key.state === "Enabled",
      Description: key.description,
      KeyUsage: key.usage,
      KeyState: key.state,
      Origin: "AWS_KMS",
      KeyManager: "CUSTOMER",
      CustomerMasterKeySpec: key.spec,
      KeySpec: key.spec,
      MultiRegion: false,
    };
    if (key.usage === "SIGN_VERIFY") md.SigningAlgorithms = SIGNING_ALGORITHMS[key.spec];
    else md.EncryptionAlgorithms = ["SYMMETRIC_DEFAULT"];
    return md;
  }

  /** Runs one operation on a parsed request body. */
  handle(operation: string, body: Json): Json {
    switch (operation) {
      case "CreateKey":
        return this.opCreateKey(body);
      case "CreateAlias":
        this.setAlias(str(body, "AliasName", true), str(body, "TargetKeyId", true));
        return {};
      case "DescribeKey":
        return { KeyMetadata: this.metadata(this.resolve(str(body, "KeyId", true))) };
      case "EnableKey":
      case "DisableKey": {
        const key = this.resolve(str(body, "KeyId", true));
        if (key.state === "PendingDeletion") this.usable(key);
        key.state = operation === "EnableKey" ? "Enabled" : "Disabled";
        return {};
      }
      case "GetPublicKey":
        return this.opGetPublicKey(body);
      case "Sign":
        return this.opSign(body);
      case "Verify":
        return this.opVerify(body);
      case "Encrypt":
        return this.opEncrypt(body);
      case "Decrypt":
        return this.opDecrypt(body);
      default:
        throw new KmsEmulatorError(
          "UnknownOperationException",
          `The AWS KMS emulator does not implement ${operation}`,
        );
    }
  }

  private opCreateKey(body: Json): Json {
    const spec = str(body, "KeySpec") ?? str(body, "CustomerMasterKeySpec") ?? "SYMMETRIC_DEFAULT";
    if (spec !== "SYMMETRIC_DEFAULT" && spec !== "ECC_NIST_P256" && spec !== "ECC_NIST_EDWARDS25519") {
      throw new KmsEmulatorError(
        "UnsupportedOperationException",
        `The AWS KMS emulator does not implement key spec ${spec}`,
      );
    }
    const usage = str(body, "KeyUsage") ?? "ENCRYPT_DECRYPT";
    if (
      (spec === "SYMMETRIC_DEFAULT") !== (usage === "ENCRYPT_DECRYPT") ||
      (usage !== "ENCRYPT_DECRYPT" && usage !== "SIGN_VERIFY")
    ) {
      throw new KmsEmulatorError(
        "ValidationException",
        `KeyUsage ${usage} is not compatible with KeySpec ${spec}`,
      );
    }
    return { KeyMetadata: this.metadata(this.createKey(spec, str(body, "Description") ?? "")) };
  }

  private signingKey(body: Json, operation: string): { key: EmulatedKey; algorithm: string } {
    const key = this.usable(this.resolve(str(body, "KeyId", true)));
    if (key.usage !== "SIGN_VERIFY") throw this.wrongUsage(key, operation);
    const algorithm = str(body, "SigningAlgorithm", true);
    if (!SIGNING_ALGORITHMS[key.spec]!.includes(algorithm)) {
      throw new KmsEmulatorError(
        "InvalidKeyUsageException",
        `Signing algorithm ${algorithm} is not compatible with key spec ${key.spec}.`,
      );
    }
    return { key, algorithm };
  }

  /** The digest ECDSA signs, from RAW (hashed here) or DIGEST (checked for length). */
  private ecdsaDigest(message: Buffer, messageType: string): Uint8Array {
    if (messageType === "RAW") return createHash("sha256").update(message).digest();
    if (message.length !== 32)
      throw new KmsEmulatorError(
        "ValidationException",
        "Digest is invalid length for algorithm ECDSA_SHA_256.",
      );
    return message;
  }

  private messageType(body: Json, algorithm: string): string {
    const type = str(body, "MessageType") ?? "RAW";
    if (type !== "RAW" && type !== "DIGEST")
      throw validation("messageType", "Member must satisfy enum value set: [RAW, DIGEST, EXTERNAL_MU]");
    if (algorithm === "ED25519_SHA_512" && type !== "RAW") {
      throw new KmsEmulatorError(
        "ValidationException",
        "ED25519_SHA_512 signing algorithm requires MessageType RAW.",
      );
    }
    if (algorithm === "ED25519_PH_SHA_512") {
      throw new KmsEmulatorError(
        "UnsupportedOperationException",
        "The AWS KMS emulator does not implement ED25519_PH_SHA_512",
      );
    }
    return type;
  }

  private opGetPublicKey(body: Json): Json {
    const key = this.usable(this.resolve(str(body, "KeyId", true)));
    if (key.publicKey === undefined) {
      throw new KmsEmulatorError(
        "UnsupportedOperationException",
        `${key.arn} key usage is ENCRYPT_DECRYPT which is not valid for GetPublicKey.`,
      );
    }
    return {
      KeyId: key.arn,
      PublicKey: key.publicKey.export({ format: "der", type: "spki" }).toString("base64"),
      CustomerMasterKeySpec: key.spec,
      KeySpec: key.spec,
      KeyUsage: key.usage,
      SigningAlgorithms: SIGNING_ALGORITHMS[key.spec],
    };
  }

  private opSign(body: Json): Json {
    const { key, algorithm } = this.signingKey(body, "Sign");
    const message = blob(body, "Message", 4096);
    const type = this.messageType(body, algorithm);
    const signature =
      key.spec === "ECC_NIST_EDWARDS25519"
        ? sign(null, message, key.privateKey!)
        : // KMS does not normalise S: about half its ECDSA signatures are high-S, like these.
          Buffer.from(
            p256.sign(this.ecdsaDigest(message, type), key.scalar!, {
              prehash: false,
              lowS: false,
              format: "der",
              extraEntropy: true,
            }),
          );
    return { KeyId: key.arn, Signature: signature.toString("base64"), SigningAlgorithm: algorithm };
  }

  private opVerify(body: Json): Json {
    const { key, algorithm } = this.signingKey(body, "Verify");
    const message = blob(body, "Message", 4096);
    const signature = blob(body, "Signature", 6144);
    const type = this.messageType(body, algorithm);
    let valid: boolean;
    try {
      valid =
        key.spec === "ECC_NIST_EDWARDS25519"
          ? verify(null, message, key.publicKey!, signature)
          : p256.verify(signature, this.ecdsaDigest(message, type), p256.getPublicKey(key.scalar!, false), {
              prehash: false,
              lowS: false,
              format: "der",
            });
    } catch (e) {
      if (e instanceof KmsEmulatorError) throw e;
      valid = false;
    }
    if (!valid) throw new KmsEmulatorError("KMSInvalidSignatureException", "");
    return { KeyId: key.arn, SignatureValid: true, SigningAlgorithm: algorithm };
  }

  private encryptionAlgorithm(body: Json): void {
    const alg = str(body, "EncryptionAlgorithm") ?? "SYMMETRIC_DEFAULT";
    if (alg !== "SYMMETRIC_DEFAULT")
      throw new KmsEmulatorError(
        "InvalidKeyUsageException",
        `Encryption algorithm ${alg} is not valid for a symmetric key.`,
      );
  }

  /** Ciphertext blob: magic, key uuid (16), iv (12), tag (16), ciphertext. The context is the AAD. */
  private opEncrypt(body: Json): Json {
    const key = this.usable(this.resolve(str(body, "KeyId", true)));
    if (key.secret === undefined) throw this.wrongUsage(key, "Encrypt");
    this.encryptionAlgorithm(body);
    const plaintext = blob(body, "Plaintext", 4096);
    const iv = randomBytes(12);
    const cipher = createCipheriv("aes-256-gcm", key.secret, iv);
    cipher.setAAD(context(body));
    const ct = Buffer.concat([cipher.update(plaintext), cipher.final()]);
    const out = Buffer.concat([
      Buffer.from([BLOB_MAGIC]),
      Buffer.from(key.id.replaceAll("-", ""), "hex"),
      iv,
      cipher.getAuthTag(),
      ct,
    ]);
    return {
      CiphertextBlob: out.toString("base64"),
      KeyId: key.arn,
      EncryptionAlgorithm: "SYMMETRIC_DEFAULT",
    };
  }

  private opDecrypt(body: Json): Json {
    const data = blob(body, "CiphertextBlob", 6144);
    this.encryptionAlgorithm(body);
    const invalid = new KmsEmulatorError("InvalidCiphertextException", "");
    if (data.length < 1 + 16 + 12 + 16 + 1 || data[0] !== BLOB_MAGIC) throw invalid;
    const hex = data.subarray(1, 17).toString("hex");
    const blobKeyId = `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
    let key: EmulatedKey;
    try {
      key = this.resolve(blobKeyId);
    } catch {
      throw invalid;
    }
    const requested = str(body, "KeyId");
    if (requested !== undefined && this.resolve(requested).id !== key.id) {
      throw new KmsEmulatorError(
        "IncorrectKeyException",
        "The key ID in the request does not identify a CMK that can perform this operation.",
      );
    }
    this.usable(key);
    if (key.secret === undefined) throw invalid;
    try {
      const decipher = createDecipheriv("aes-256-gcm", key.secret, data.subarray(17, 29));
      decipher.setAuthTag(data.subarray(29, 45));
      decipher.setAAD(context(body));
      const plaintext = Buffer.concat([decipher.update(data.subarray(45)), decipher.final()]);
      return {
        KeyId: key.arn,
        Plaintext: plaintext.toString("base64"),
        EncryptionAlgorithm: "SYMMETRIC_DEFAULT",
      };
    } catch {
      throw invalid;
    }
  }
}
