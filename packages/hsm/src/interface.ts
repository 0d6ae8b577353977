/**
 * The two interfaces every key provider implements. A provider never exposes private key
 * material: it signs and it wraps, nothing else.
 */

export type SignatureAlgorithm = "ed25519" | "ecdsa-p256";

export type ProviderName = "local" | "aws-kms" | "azure-keyvault" | "vault" | "pkcs11";

export interface SignerHealth {
  ok: boolean;
  provider: ProviderName;
  keyId: string;
  latencyMs: number;
  /** When not ok: the error code and a log-safe explanation. */
  code?: string;
  detail?: string;
}

export interface Signer {
  readonly provider: ProviderName;
  /** Log-safe identifier of the key (ARN, URL, label, path); never a secret. */
  readonly keyId: string;
  readonly algorithm: SignatureAlgorithm;
  /** Raw public key: Ed25519 32 bytes; P-256 65-byte uncompressed SEC1 (0x04 || x || y). */
  publicKey(): Promise<Uint8Array>;
  /**
   * Signs `message`. Ed25519: pure Ed25519 over the message (64 bytes). P-256: ECDSA over
   * SHA-256(message), returned as raw r||s (64 bytes) with low S. Always verifies with node:crypto.
   */
  sign(message: Uint8Array): Promise<Uint8Array>;
  /** A cheap round trip to the backend (never signs). */
  health(): Promise<SignerHealth>;
  close(): Promise<void>;
}

/** Wraps the node's storage data key (32 bytes) so that it is stored only encrypted. */
export interface KeyWrapper {
  readonly provider: ProviderName;
  readonly keyId: string;
  /** Returns a self-describing blob (JSON text as UTF-8 bytes) that `unwrap` accepts. */
  wrap(dataKey: Uint8Array): Promise<Uint8Array>;
  unwrap(blob: Uint8Array): Promise<Uint8Array>;
  close(): Promise<void>;
}

/** The envelope every wrapped key is stored in. */
export interface WrappedKeyEnvelope {
  format: "vitalstream-wrapped-key";
  version: 1;
  provider: ProviderName;
  keyId: string;
  /** Provider-specific fields (ciphertext, iv, algorithm...), base64 where binary. */
  [field: string]: unknown;
}
