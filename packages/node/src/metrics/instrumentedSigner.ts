/**
 * Counts and times every call a signer or key wrapper makes to its provider (the HSM or KMS), for
 * `blockchain_hsm_operations_total` and `blockchain_signer_latency_seconds`. It wraps the raw
 * provider, inside the double-sign guard: a signature the guard refuses never reaches the HSM and
 * is not an HSM operation.
 */
import type { KeyWrapper, Signer } from "@vitalstream/hsm";

export type HsmOperation = "sign" | "public_key" | "health" | "wrap" | "unwrap";

export interface HsmObserver {
  operation(provider: string, operation: HsmOperation, ok: boolean, seconds: number): void;
}

async function timed<T>(
  observer: HsmObserver,
  provider: string,
  operation: HsmOperation,
  run: () => Promise<T>,
  isOk: (value: T) => boolean = () => true,
): Promise<T> {
  const started = performance.now();
  try {
    const value = await run();
    observer.operation(provider, operation, isOk(value), (performance.now() - started) / 1000);
    return value;
  } catch (e) {
    observer.operation(provider, operation, false, (performance.now() - started) / 1000);
    throw e;
  }
}

export function instrumentSigner(signer: Signer, observer: HsmObserver): Signer {
  const p = signer.provider;
  return {
    provider: signer.provider,
    keyId: signer.keyId,
    algorithm: signer.algorithm,
    publicKey: () => timed(observer, p, "public_key", () => signer.publicKey()),
    sign: (message) => timed(observer, p, "sign", () => signer.sign(message)),
    health: () =>
      timed(
        observer,
        p,
        "health",
        () => signer.health(),
        (h) => h.ok,
      ),
    close: () => signer.close(),
  };
}

export function instrumentKeyWrapper(wrapper: KeyWrapper, observer: HsmObserver): KeyWrapper {
  const p = wrapper.provider;
  return {
    provider: wrapper.provider,
    keyId: wrapper.keyId,
    wrap: (dataKey) => timed(observer, p, "wrap", () => wrapper.wrap(dataKey)),
    unwrap: (blob) => timed(observer, p, "unwrap", () => wrapper.unwrap(blob)),
    close: () => wrapper.close(),
  };
}
