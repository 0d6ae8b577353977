/**
 * records.bin: the store's records exactly as LevelDB holds them (values still encrypted), in key
 * order, so that a restore is a plain copy and needs no key.
 *
 *   header   magic "VSRECORD" (8 B) | version u32 BE (1)
 *   record   key length u32 BE (>= 1) | key | value length u32 BE | value      (repeated)
 *   trailer  u32 BE 0 | record count u64 BE
 *
 * Keys are strictly ascending (LevelDB order), so a duplicate or reordered record is a framing
 * error; the trailer tells a complete stream from a cut one even without the manifest.
 */

export const RECORDS_MAGIC = Buffer.from("VSRECORD", "latin1");
export const RECORDS_VERSION = 1;
const HEADER_BYTES = RECORDS_MAGIC.length + 4;
const TRAILER_COUNT_BYTES = 8;
/** Store keys are a bucket byte and a hash, height or address: short. */
export const MAX_KEY_BYTES = 64 * 1024;
/** Bounds what a damaged length field can make a reader buffer. */
export const MAX_VALUE_BYTES = 256 * 1024 * 1024;

export type RawRecord = [key: Buffer, value: Buffer];

export function encodeRecordsHeader(): Buffer {
  const out = Buffer.alloc(HEADER_BYTES);
  RECORDS_MAGIC.copy(out, 0);
  out.writeUInt32BE(RECORDS_VERSION, RECORDS_MAGIC.length);
  return out;
}

/** The caller checks the limits first (it can say which record is too large). */
export function encodeRecord(key: Uint8Array, value: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(8 + key.length + value.length);
  out.writeUInt32BE(key.length, 0);
  out.set(key, 4);
  out.writeUInt32BE(value.length, 4 + key.length);
  out.set(value, 8 + key.length);
  return out;
}

export function encodeRecordsTrailer(count: number): Buffer {
  const out = Buffer.alloc(4 + TRAILER_COUNT_BYTES);
  out.writeBigUInt64BE(BigInt(count), 4);
  return out;
}

/** Why records.bin cannot be read; the archive reader names the file around it. */
export class RecordFramingError extends Error {
  readonly unsupportedVersion: boolean;

  constructor(message: string, unsupportedVersion = false) {
    super(message);
    this.name = "RecordFramingError";
    this.unsupportedVersion = unsupportedVersion;
  }
}

/** Chunks in arrival order; `take` copies only when a field spans chunks. */
class ByteQueue {
  private readonly chunks: Buffer[] = [];
  private offset = 0;
  length = 0;

  push(chunk: Buffer): void {
    if (chunk.length === 0) return;
    this.chunks.push(chunk);
    this.length += chunk.length;
  }

  take(n: number): Buffer {
    const first = this.chunks[0];
    if (first !== undefined && first.length - this.offset >= n) {
      const out = first.subarray(this.offset, this.offset + n);
      this.advance(first, n);
      return out;
    }
    const out = Buffer.allocUnsafe(n);
    let copied = 0;
    while (copied < n) {
      const chunk = this.chunks[0]!;
      const part = Math.min(chunk.length - this.offset, n - copied);
      chunk.copy(out, copied, this.offset, this.offset + part);
      copied += part;
      this.advance(chunk, part);
    }
    return out;
  }

  private advance(chunk: Buffer, n: number): void {
    this.offset += n;
    this.length -= n;
    if (this.offset === chunk.length) {
      this.chunks.shift();
      this.offset = 0;
    }
  }
}

type Expect = "header" | "keyLength" | "key" | "valueLength" | "value" | "count" | "end";

/** Incremental reader: push chunks as they come, get whole records back; `finish` at the end. */
export class RecordDecoder {
  private readonly queue = new ByteQueue();
  private expect: Expect = "header";
  private need = HEADER_BYTES;
  private key: Buffer | undefined;
  private previousKey: Buffer | undefined;
  /** Records decoded so far. */
  count = 0;

  private get ended(): boolean {
    return this.expect === "end";
  }

  push(chunk: Buffer): RawRecord[] {
    if (this.ended) {
      if (chunk.length > 0) throw new RecordFramingError("data after the end of the record stream");
      return [];
    }
    this.queue.push(chunk);
    const out: RawRecord[] = [];
    while (!this.ended && this.queue.length >= this.need) {
      const field = this.queue.take(this.need);
      const record = this.consume(field);
      if (record !== undefined) out.push(record);
    }
    if (this.ended && this.queue.length > 0)
      throw new RecordFramingError("data after the end of the record stream");
    return out;
  }

  finish(): void {
    if (this.expect === "header")
      throw new RecordFramingError("the record stream is empty or cut short before its header");
    if (this.expect !== "end")
      throw new RecordFramingError(
        `the record stream is cut short after ${this.count} records (no end marker): the archive is truncated`,
      );
  }

  private consume(field: Buffer): RawRecord | undefined {
    switch (this.expect) {
      case "header": {
        if (!field.subarray(0, RECORDS_MAGIC.length).equals(RECORDS_MAGIC))
          throw new RecordFramingError("it does not start with the record stream magic");
        const version = field.readUInt32BE(RECORDS_MAGIC.length);
        if (version !== RECORDS_VERSION)
          throw new RecordFramingError(`record stream version ${version} is not supported`, true);
        return this.next("keyLength", 4);
      }
      case "keyLength": {
        const length = field.readUInt32BE(0);
        if (length === 0) return this.next("count", TRAILER_COUNT_BYTES);
        if (length > MAX_KEY_BYTES)
          throw new RecordFramingError(`record ${this.count} has an impossible key length ${length}`);
        return this.next("key", length);
      }
      case "key": {
        if (this.previousKey !== undefined && Buffer.compare(this.previousKey, field) >= 0)
          throw new RecordFramingError(`record ${this.count} is out of key order (duplicated or reordered)`);
        this.key = Buffer.from(field);
        return this.next("valueLength", 4);
      }
      case "valueLength": {
        const length = field.readUInt32BE(0);
        if (length > MAX_VALUE_BYTES)
          throw new RecordFramingError(`record ${this.count} has an impossible value length ${length}`);
        this.expect = "value";
        this.need = length;
        // A zero-length value is complete without waiting for another byte.
        return length === 0 ? this.consume(Buffer.alloc(0)) : undefined;
      }
      case "value": {
        const key = this.key!;
        this.previousKey = key;
        this.key = undefined;
        this.count++;
        this.next("keyLength", 4);
        return [key, field];
      }
      case "count": {
        const declared = field.readBigUInt64BE(0);
        if (declared !== BigInt(this.count))
          throw new RecordFramingError(
            `the end marker counts ${declared} records but the stream holds ${this.count}`,
          );
        this.expect = "end";
        this.need = 0;
        return undefined;
      }
      case "end":
        return undefined;
    }
  }

  private next(expect: Expect, need: number): undefined {
    this.expect = expect;
    this.need = need;
    return undefined;
  }
}
