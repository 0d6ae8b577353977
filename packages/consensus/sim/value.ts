/**
 * Simulated proposal values. A value names its height and carries a validity flag so that a
 * byzantine proposer can propose something honest validators must refuse.
 * Layout: "SIMV" | height u64 | round u32 | proposer u32 | valid u8 | nonce 8B
 */
const MAGIC = [0x53, 0x49, 0x4d, 0x56];
const LENGTH = 4 + 8 + 4 + 4 + 1 + 8;

export interface SimValue {
  height: number;
  round: number;
  proposer: number;
  valid: boolean;
}

export function makeValue(v: SimValue, nonce: Uint8Array): Uint8Array {
  const out = new Uint8Array(LENGTH);
  const view = new DataView(out.buffer);
  out.set(MAGIC, 0);
  view.setBigUint64(4, BigInt(v.height));
  view.setUint32(12, v.round);
  view.setUint32(16, v.proposer);
  out[20] = v.valid ? 1 : 0;
  out.set(nonce.subarray(0, 8), 21);
  return out;
}

export function readValue(bytes: Uint8Array): SimValue | null {
  if (bytes.length !== LENGTH || MAGIC.some((b, i) => bytes[i] !== b)) return null;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return {
    height: Number(view.getBigUint64(4)),
    round: view.getUint32(12),
    proposer: view.getUint32(16),
    valid: bytes[20] === 1,
  };
}

/** What an honest validator's application would check. */
export function isValidValue(bytes: Uint8Array, height: number): boolean {
  const v = readValue(bytes);
  return v?.valid === true && v.height === height;
}
