/**
 * The consensus write-ahead log, in the encrypted store (bucket ConsensusWal, key (height, seq)).
 *
 * Every engine input of the current height (peer and own messages, timeouts, proposal values) is
 * appended before the engine handles it; an entry is durable when its batch is written (fsync).
 * On restart the entries of the next height to decide are replayed through the same code path.
 * The entries of a height are deleted in the same batch that commits its block.
 */
import {
  type ConsensusMessage,
  decodeMessage,
  type EngineInput,
  encodeMessage,
  type Step,
} from "@vitalstream/consensus";
import { heightIndexKey, heightKey } from "../chain/records.ts";
import type { EncryptedStore, StoreWrite } from "../store/encryptedStore.ts";
import { Prefix } from "../store/prefixes.ts";

const KIND_MESSAGE = 1;
const KIND_TIMEOUT = 2;
const KIND_PROPOSAL_VALUE = 3;

export type WalInput = Extract<EngineInput, { type: "message" | "timeout" | "proposalValue" }>;

function encodeInput(input: WalInput): Uint8Array {
  if (input.type === "message") {
    const body = encodeMessage(input.message);
    const out = new Uint8Array(body.length + 1);
    out[0] = KIND_MESSAGE;
    out.set(body, 1);
    return out;
  }
  if (input.type === "timeout") {
    const out = new Uint8Array(1 + 8 + 4 + 1);
    const view = new DataView(out.buffer);
    out[0] = KIND_TIMEOUT;
    view.setBigUint64(1, BigInt(input.height));
    view.setUint32(9, input.round);
    out[13] = input.step;
    return out;
  }
  const out = new Uint8Array(1 + 8 + 4 + input.value.length);
  const view = new DataView(out.buffer);
  out[0] = KIND_PROPOSAL_VALUE;
  view.setBigUint64(1, BigInt(input.height));
  view.setUint32(9, input.round);
  out.set(input.value, 13);
  return out;
}

function decodeInput(bytes: Uint8Array): WalInput | undefined {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  switch (bytes[0]) {
    case KIND_MESSAGE: {
      const decoded = decodeMessage(bytes.subarray(1));
      return decoded.ok ? { type: "message", message: decoded.value as ConsensusMessage } : undefined;
    }
    case KIND_TIMEOUT:
      if (bytes.length !== 14) return undefined;
      return {
        type: "timeout",
        height: Number(view.getBigUint64(1)),
        round: view.getUint32(9),
        step: bytes[13] as Step,
      };
    case KIND_PROPOSAL_VALUE:
      if (bytes.length < 13) return undefined;
      return {
        type: "proposalValue",
        height: Number(view.getBigUint64(1)),
        round: view.getUint32(9),
        value: bytes.slice(13),
      };
    default:
      return undefined;
  }
}

export class ConsensusWal {
  private readonly store: EncryptedStore;
  private readonly nextSeq = new Map<number, number>();

  constructor(store: EncryptedStore) {
    this.store = store;
  }

  /** The logged inputs of one height, in order (entries that no longer decode are skipped). */
  async read(height: number): Promise<WalInput[]> {
    const out: WalInput[] = [];
    let seq = 0;
    for await (const [key, value] of this.store.range(Prefix.ConsensusWal, {
      gte: heightIndexKey(height, 0),
      lt: heightKey(height + 1),
    })) {
      seq = new DataView(key.buffer, key.byteOffset).getUint32(8) + 1;
      const input = decodeInput(value);
      if (input !== undefined) out.push(input);
    }
    this.nextSeq.set(height, Math.max(this.nextSeq.get(height) ?? 0, seq));
    return out;
  }

  /** The next free sequence number of a height: after what an earlier process appended, too. */
  private async sequence(height: number): Promise<number> {
    const known = this.nextSeq.get(height);
    if (known !== undefined) return known;
    let seq = 0;
    for await (const [key] of this.store.range(Prefix.ConsensusWal, {
      gte: heightIndexKey(height, 0),
      lt: heightKey(height + 1),
      reverse: true,
      limit: 1,
    }))
      seq = new DataView(key.buffer, key.byteOffset).getUint32(8) + 1;
    return seq;
  }

  /** Appends inputs of one height durably (one fsynced batch). */
  async append(height: number, inputs: readonly WalInput[]): Promise<void> {
    if (inputs.length === 0) return;
    const batch = this.store.batch();
    let seq = await this.sequence(height);
    for (const input of inputs)
      batch.put(Prefix.ConsensusWal, heightIndexKey(height, seq++), encodeInput(input));
    this.nextSeq.set(height, seq);
    await batch.write();
  }

  /** Keys of every entry up to `height`: the block commit's batch deletes them. */
  async keysThrough(height: number): Promise<Uint8Array[]> {
    const keys: Uint8Array[] = [];
    for await (const [key] of this.store.range(Prefix.ConsensusWal, { lt: heightKey(height + 1) }))
      keys.push(key.slice());
    return keys;
  }

  /** Forgets sequence numbers of heights that were committed. */
  committed(height: number): void {
    for (const h of [...this.nextSeq.keys()]) if (h <= height) this.nextSeq.delete(h);
  }

  deleteKeys(keys: readonly Uint8Array[], batch: StoreWrite): void {
    for (const key of keys) batch.del(Prefix.ConsensusWal, key);
  }
}
