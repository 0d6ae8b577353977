/**
 * Native secp256k1 sender recovery (libsecp256k1 through the `secp256k1` addon), handed to
 * @ethereumjs through `Common.customCrypto`: ~30x faster than the pure-JS curve.
 *
 * `secp256k1`'s main entry silently falls back to a pure-JS implementation when the addon fails
 * to load; we load the native bindings directly so that a missing addon is a startup error.
 */
import { createRequire } from "node:module";
import { calculateSigRecovery, setLengthLeft } from "@ethereumjs/util";

type Secp256k1 = typeof import("secp256k1");

const require = createRequire(import.meta.url);
const native = require("secp256k1/bindings") as Secp256k1;

/** @ethereumjs `ecrecover` signature: the 64-byte uncompressed public key (no 0x04 prefix). */
export function nativeEcrecover(
  msgHash: Uint8Array,
  v: bigint,
  r: Uint8Array,
  s: Uint8Array,
  chainId?: bigint,
): Uint8Array {
  const recovery = calculateSigRecovery(v, chainId);
  if (recovery !== 0n && recovery !== 1n) throw new Error("invalid signature v value");
  const signature = new Uint8Array(64);
  signature.set(setLengthLeft(r, 32), 0);
  signature.set(setLengthLeft(s, 32), 32);
  return native.ecdsaRecover(signature, Number(recovery), msgHash, false).subarray(1);
}
