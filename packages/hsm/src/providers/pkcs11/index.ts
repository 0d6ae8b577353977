/** The PKCS#11 key provider: signer, storage-key wrapper and key provisioning over any Cryptoki library. */
export { ckrName } from "./errors.ts";
export {
  isPkcs11Available,
  type Pkcs11Availability,
  type Pkcs11ModuleStats,
  pkcs11ModuleStats,
} from "./module.ts";
export { defaultPkcs11Options, type Pkcs11Options } from "./options.ts";
export {
  type Pkcs11KeyTarget,
  type ProvisionedSigningKey,
  provisionPkcs11Key,
  provisionPkcs11WrapKey,
} from "./provision.ts";
export type { SessionPoolMetrics } from "./sessionPool.ts";
export { createPkcs11Signer, type Pkcs11Signer } from "./signer.ts";
export { pkcs11KeyUri } from "./token.ts";
export { createPkcs11KeyWrapper, PKCS11_WRAP_MECHANISM, type Pkcs11WrappedKeyEnvelope } from "./wrapper.ts";
