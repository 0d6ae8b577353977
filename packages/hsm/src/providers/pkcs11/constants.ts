/**
 * PKCS#11 numbers this provider needs that pkcs11js 2.1.7 does not export (PKCS#11 3.0 EdDSA),
 * and the DER encodings of the curves it accepts. Checked against SoftHSM2 2.6.1.
 */

export const CKK_EC_EDWARDS = 0x40;
export const CKM_EC_EDWARDS_KEY_PAIR_GEN = 0x1055;
export const CKM_EDDSA = 0x1057;
/** PKCS#11 3.0 attribute: the DER SubjectPublicKeyInfo of a key (optional on tokens). */
export const CKA_PUBLIC_KEY_INFO = 0x129;
/** PKCS#11 3.0 return value of an AEAD tag mismatch (2.40 tokens use other codes). */
export const CKR_AEAD_DECRYPT_FAILED = 0x35;

/** Session states in which the application is logged in as the normal user. */
export const CKS_RO_USER_FUNCTIONS = 1;
export const CKS_RW_USER_FUNCTIONS = 3;

/** OID 1.3.101.112 (id-Ed25519). */
export const ED25519_OID_DER = Buffer.from("06032b6570", "hex");
/** PKCS#11 3.0 also allows the curve name as a PrintableString. */
export const ED25519_NAME_DER = Buffer.concat([
  Buffer.from([0x13, 12]),
  Buffer.from("edwards25519", "latin1"),
]);
/** OID 1.2.840.10045.3.1.7 (prime256v1 / secp256r1). */
export const P256_OID_DER = Buffer.from("06082a8648ce3d030107", "hex");

/** AAD bound into every wrapped storage key, so a ciphertext made for another purpose never unwraps. */
export const WRAP_AAD = Buffer.from("vitalstream-storage-key", "utf8");
export const WRAP_IV_BYTES = 12;
export const WRAP_TAG_BITS = 128;
export const DATA_KEY_BYTES = 32;
