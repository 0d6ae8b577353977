export {
  createKeystore,
  DEFAULT_SCRYPT_N,
  KEYSTORE_FORMAT,
  type KeystoreFile,
  readKeystore,
  unlockKeystore,
} from "./keystore.ts";
export { createLocalSigner } from "./signer.ts";
export { createLocalKeyWrapper } from "./wrapper.ts";
