/** Hex and ABI-word helpers. Pure, browser-safe (no node: imports), so auditors can run them. */
import { keccak_256 } from "@noble/hashes/sha3.js";
import { bytesToHex, hexToBytes, utf8ToBytes } from "@noble/hashes/utils.js";
import { ContractsError } from "./errors.ts";

export type Hex = `0x${string}`;

const MAX_UINT64 = (1n << 64n) - 1n;

function invalid(message: string): ContractsError {
  return new ContractsError("CONTRACTS_INVALID_INPUT", message);
}

/** True for a 0x-prefixed hex string of exactly `bytes` bytes (any letter case). */
export function isHexOfLength(value: unknown, bytes: number): value is Hex {
  return typeof value === "string" && value.length === 2 + bytes * 2 && /^0x[0-9a-fA-F]*$/.test(value);
}

export function toHex(bytes: Uint8Array): Hex {
  return `0x${bytesToHex(bytes)}`;
}

export function fromHex(hex: Hex): Uint8Array {
  return hexToBytes(hex.slice(2));
}

export function keccak256(bytes: Uint8Array): Hex {
  return toHex(keccak_256(bytes));
}

/** keccak256 of a UTF-8 string, as Solidity's keccak256("...") of a string literal. */
export function keccak256Utf8(text: string): Hex {
  return keccak256(utf8ToBytes(text));
}

/** A uint64 as one left-padded 32-byte ABI word. */
export function uint64Word(value: bigint): Uint8Array {
  if (value < 0n || value > MAX_UINT64) throw invalid(`not a uint64: ${value}`);
  return hexToBytes(value.toString(16).padStart(64, "0"));
}

/** A 32-byte value as an ABI word. */
export function bytes32Word(value: Hex): Uint8Array {
  if (!isHexOfLength(value, 32)) throw invalid(`not a bytes32: ${value}`);
  return fromHex(value);
}

/** A 20-byte address as a left-padded 32-byte ABI word. */
export function addressWord(value: Hex): Uint8Array {
  if (!isHexOfLength(value, 20)) throw invalid(`not an address: ${value}`);
  const word = new Uint8Array(32);
  word.set(fromHex(value), 12);
  return word;
}

/** abi.encode of static values given as 32-byte words: their concatenation. */
export function encodeWords(words: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(words.length * 32);
  words.forEach((word, i) => {
    out.set(word, i * 32);
  });
  return out;
}
