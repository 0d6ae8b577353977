import { it } from "vitest";
import { RLP } from "@ethereumjs/rlp";
import { decodeBlock } from "../../src/chain/block.ts";
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => { a = (a + 0x6d2b79f5) >>> 0; let t = a; t = Math.imul(t ^ (t >>> 15), t | 1); t ^= t + Math.imul(t ^ (t >>> 7), t | 61); return ((t ^ (t >>> 14)) >>> 0) / 4294967296; };
}
function randomBytes(next: () => number, length: number) { const out = new Uint8Array(length); for (let i = 0; i < length; i++) out[i] = Math.floor(next() * 256); return out; }
it("tally", () => {
  const next = prng(0xabcdef);
  type Item = Uint8Array | Item[];
  const item = (depth: number): Item => {
    const r = next();
    if (depth > 3 || r < 0.6) {
      const choices = [0, 1, 8, 31, 32, 33, Math.floor(next() * 70)];
      const bytes = randomBytes(next, choices[Math.floor(next() * choices.length)]!);
      if (next() < 0.2 && bytes.length > 0) bytes[0] = 0;
      return bytes;
    }
    return Array.from({ length: Math.floor(next() * 12) }, () => item(depth + 1));
  };
  const tally = new Map<string, number>();
  for (let i = 0; i < 300; i++) {
    const shape: Item = next() < 0.5 ? [item(1), item(1)] : [Array.from({ length: 10 }, () => item(2)), item(1)];
    let m = "ok";
    try { decodeBlock(RLP.encode(shape as Uint8Array[])); } catch (e) { m = (e as Error).message.replace(/\d+/g, "N"); }
    tally.set(m, (tally.get(m) ?? 0) + 1);
  }
  console.log(tally);
});
