/**
 * Storage buckets: the first byte of every store key. The numbers only ever grow: a value is
 * never reused or renumbered, so old data can never be read as something else. Keys carry no
 * sensitive data (heights, hashes, addresses); everything sensitive is in encrypted values.
 */
export const Prefix = {
  /** Store metadata (format version, wrapped data key, key canary). Values here are not encrypted. */
  Meta: 1,
  /** height (u64 BE) -> block */
  Block: 2,
  /** block hash -> height */
  BlockHeightByHash: 3,
  /** height -> commit certificate */
  Certificate: 4,
  /** transaction hash -> (height, index) */
  TxLocation: 5,
  /** (height, index) -> receipt */
  Receipt: 6,
  /** (height, log index) -> log */
  Log: 7,
  /** address -> account (nonce, balance, code hash, storage root) */
  Account: 8,
  /** (address, slot) -> storage value */
  AccountStorage: 9,
  /** code hash -> bytecode */
  Code: 10,
  /** height -> validator set */
  ValidatorSet: 11,
  /** (height u64, sequence u32) -> consensus write-ahead log entry */
  ConsensusWal: 12,
  /** height -> execution result of that block (state root, receipts root, gas, bloom, rejections) */
  BlockExecution: 13,
  /** name (UTF-8) -> chain metadata: the genesis document, the head */
  ChainMeta: 14,
} as const;

export type Prefix = (typeof Prefix)[keyof typeof Prefix];

const NAMES = new Map<number, string>(Object.entries(Prefix).map(([name, value]) => [value, name]));

export function prefixName(prefix: number): string {
  return NAMES.get(prefix) ?? `unknown(${prefix})`;
}
