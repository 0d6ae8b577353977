/** The AWS KMS key provider: a Signer on an asymmetric key, a KeyWrapper on a symmetric key. */
export type { AwsCredentials, AwsKmsDeps } from "./client.ts";
export { createAwsKmsSigner, KMS_MAX_RAW_MESSAGE_BYTES } from "./signer.ts";
export {
  type AwsKmsWrappedKeyEnvelope,
  createAwsKmsKeyWrapper,
  STORAGE_KEY_ENCRYPTION_CONTEXT,
} from "./wrapper.ts";
