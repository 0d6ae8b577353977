/**
 * Wraps the node's storage data key with a Vault transit AEAD key (aes256-gcm96 recommended).
 *
 * The key is read once at creation: transit's encrypt endpoint would otherwise create a missing
 * key on the fly (upsert), and a typo in VAULT_WRAP_KEY_NAME would silently wrap under a fresh
 * key. Every encrypt/decrypt carries fixed associated data, so a ciphertext made by this key for
 * another purpose does not unwrap as a storage key.
 */
import type { VaultConfig } from "../../config.ts";
import type { KeyWrapper, WrappedKeyEnvelope } from "../../interface.ts";
import { withRetry } from "../../retry.ts";
import { createVaultTransport } from "./client.ts";
import { vaultError } from "./errors.ts";
import { parseKeyInfo, parseVaultValue, strictBase64, WRAPPING_KEY_TYPES } from "./keys.ts";
import { resolveVaultConfig } from "./options.ts";

const ASSOCIATED_DATA = Buffer.from("vitalstream-wrapped-key/v1 storage-data-key").toString("base64");
const MAX_DATA_KEY_BYTES = 1024;

export interface VaultWrappedKeyEnvelope extends WrappedKeyEnvelope {
  provider: "vault";
  mount: string;
  keyName: string;
  /** The transit key type, e.g. aes256-gcm96. */
  algorithm: string;
  keyVersion: number;
  /** `vault:v<N>:<base64>` as transit returned it. */
  ciphertext: string;
}

export async function createVaultKeyWrapper(config: VaultConfig): Promise<KeyWrapper> {
  const cfg = resolveVaultConfig(config);
  const transport = await createVaultTransport(cfg);
  const ctx = { keyId: cfg.keyId };
  const encryptPath = transport.path("encrypt");
  const decryptPath = transport.path("decrypt");

  const info = parseKeyInfo(
    await withRetry(cfg.retry, (signal) => transport.read(transport.path("keys"), "read-key", signal)),
    ctx,
  );
  if (!WRAPPING_KEY_TYPES.has(info.type) || info.derived) {
    throw vaultError(
      "HSM_UNSUPPORTED_KEY",
      ctx,
      `transit key type "${info.type}"${info.derived ? " (derived)" : ""} cannot wrap the storage key: create it with type=aes256-gcm96 and without derived=true`,
    );
  }
  const algorithm = info.type;
  let closed = false;

  const ensureOpen = () => {
    if (closed) throw vaultError("HSM_CLOSED", ctx, "the key wrapper is closed");
  };
  const unwrapFailed = (what: string) =>
    vaultError("HSM_UNWRAP_FAILED", ctx, `cannot unwrap the storage key: ${what}`);

  const parseEnvelope = (blob: Uint8Array): VaultWrappedKeyEnvelope => {
    let parsed: unknown;
    try {
      parsed = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(blob));
    } catch {
      throw unwrapFailed("the blob is not a JSON envelope (is this a wrapped key file?)");
    }
    if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
      throw unwrapFailed("the blob is not a JSON object");
    }
    const e = parsed as Record<string, unknown>;
    if (e.format !== "vitalstream-wrapped-key")
      throw unwrapFailed('the blob is not a "vitalstream-wrapped-key" envelope');
    if (e.version !== 1)
      throw unwrapFailed(`envelope version ${JSON.stringify(e.version)} is not supported (expected 1)`);
    if (e.provider !== "vault") {
      throw unwrapFailed(
        `it was wrapped by provider ${JSON.stringify(e.provider)}, not vault: unwrap it with that provider's HSM_PROVIDER settings`,
      );
    }
    if (e.mount !== cfg.mount || e.keyName !== cfg.keyName) {
      throw unwrapFailed(
        `it was wrapped with ${String(e.mount)}/keys/${String(e.keyName)}, but this node uses ${cfg.mount}/keys/${cfg.keyName}: check VAULT_TRANSIT_MOUNT and VAULT_WRAP_KEY_NAME`,
      );
    }
    const value = parseVaultValue(e.ciphertext);
    if (value === undefined)
      throw unwrapFailed('the envelope\'s ciphertext is not a "vault:v<N>:<base64>" value');
    return e as VaultWrappedKeyEnvelope;
  };

  return {
    provider: "vault",
    keyId: cfg.keyId,

    async wrap(dataKey: Uint8Array) {
      ensureOpen();
      if (dataKey.length === 0 || dataKey.length > MAX_DATA_KEY_BYTES) {
        throw new RangeError(
          `vault: a data key to wrap must be 1-${MAX_DATA_KEY_BYTES} bytes, got ${dataKey.length}`,
        );
      }
      const body = { plaintext: Buffer.from(dataKey).toString("base64"), associated_data: ASSOCIATED_DATA };
      const answer = await withRetry(cfg.retry, (signal) =>
        transport.write(encryptPath, body, "encrypt", signal),
      );
      const value = parseVaultValue(answer.ciphertext);
      if (value === undefined) {
        throw vaultError(
          "HSM_BAD_RESPONSE",
          ctx,
          'the encrypt answer has no "vault:v<N>:<base64>" ciphertext',
        );
      }
      const envelope: VaultWrappedKeyEnvelope = {
        format: "vitalstream-wrapped-key",
        version: 1,
        provider: "vault",
        keyId: cfg.keyId,
        mount: cfg.mount,
        keyName: cfg.keyName,
        algorithm,
        keyVersion: value.keyVersion,
        ciphertext: answer.ciphertext as string,
      };
      return new TextEncoder().encode(`${JSON.stringify(envelope)}\n`);
    },

    async unwrap(blob: Uint8Array) {
      ensureOpen();
      const envelope = parseEnvelope(blob);
      const body = { ciphertext: envelope.ciphertext, associated_data: ASSOCIATED_DATA };
      const answer = await withRetry(cfg.retry, (signal) =>
        transport.write(decryptPath, body, "decrypt", signal),
      );
      const plaintext = typeof answer.plaintext === "string" ? strictBase64(answer.plaintext) : undefined;
      if (plaintext === undefined || plaintext.length === 0) {
        throw vaultError("HSM_BAD_RESPONSE", ctx, "the decrypt answer has no base64 plaintext");
      }
      return plaintext;
    },

    async close() {
      closed = true;
    },
  };
}
