/**
 * The guard's durable record: a JSON-lines file, each line durable (fdatasync) before the
 * signature it covers may leave.
 *
 *   {"format":"vitalstream-sign-journal","version":1,"publicKey":"<hex>","algorithm":"ed25519"}
 *   {"c":"<chain id>","h":12,"r":0,"s":2,"p":"<sha256 of the signed payload, hex>"}
 *   ...
 *
 * The file is preallocated with zero bytes in 1 MiB steps and records are written in place through
 * an O_DSYNC descriptor, so an append is one positional write that is durable when it completes,
 * never changes the file's size (no metadata to flush), and runs on libuv's thread pool while the
 * backend signs (measured here: ~150 us instead of ~300 us for append + fsync). The journal ends at the first zero byte;
 * everything after it must be zero. A crash can tear only the last line; it is ignored (and
 * zeroed) on open. Any other damage is a named error: the guard refuses to start rather than
 * sign without its history.
 */
import {
  closeSync,
  constants,
  existsSync,
  fsyncSync,
  openSync,
  readFileSync,
  renameSync,
  write,
  writeSync,
} from "node:fs";
import { dirname } from "node:path";
import { promisify } from "node:util";
import { HsmError } from "../errors.ts";
import type { SignatureAlgorithm } from "../interface.ts";

const writeAsync = promisify(write);
/** O_DSYNC: every write is durable when it completes (data, no size change to flush). */
const DURABLE_RW = constants.O_RDWR | constants.O_DSYNC;
const CHUNK = 1024 * 1024;

export interface JournalHeader {
  format: "vitalstream-sign-journal";
  version: 1;
  publicKey: string;
  algorithm: SignatureAlgorithm;
}

export interface SignRecord {
  chainId: string;
  height: number;
  round: number;
  step: number;
  /** Hex SHA-256 of the payload, or "conflict" for a slot that imported histories disagree on. */
  payloadHash: string;
}

const FORMAT = "vitalstream-sign-journal";

function fail(path: string, detail: string, cause?: unknown): never {
  throw new HsmError("HSM_GUARD_STORE_FAILED", `signing journal ${path}: ${detail}`, {}, { cause });
}

function encodeRecord(r: SignRecord): string {
  return `${JSON.stringify({ c: r.chainId, h: r.height, r: r.round, s: r.step, p: r.payloadHash })}\n`;
}

function decodeRecord(line: string): SignRecord | null {
  let o: unknown;
  try {
    o = JSON.parse(line);
  } catch {
    return null;
  }
  if (typeof o !== "object" || o === null) return null;
  const { c, h, r, s, p } = o as Record<string, unknown>;
  if (typeof c !== "string" || typeof p !== "string") return null;
  if (![h, r, s].every((x) => Number.isSafeInteger(x) && (x as number) >= 0)) return null;
  return { chainId: c, height: h as number, round: r as number, step: s as number, payloadHash: p };
}

function fsyncDir(path: string): void {
  try {
    const fd = openSync(dirname(path), "r");
    try {
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
  } catch {
    // Some filesystems cannot fsync a directory; the file itself was fsynced.
  }
}

export class Journal {
  readonly path: string;
  readonly header: JournalHeader;
  private fd: number;
  private lines: number;
  private position: number;
  private allocated: number;

  private constructor(
    path: string,
    header: JournalHeader,
    fd: number,
    lines: number,
    position: number,
    allocated: number,
  ) {
    this.path = path;
    this.header = header;
    this.fd = fd;
    this.lines = lines;
    this.position = position;
    this.allocated = allocated;
  }

  get recordCount(): number {
    return this.lines;
  }

  /** Opens (or creates) the journal and returns it with every record in it. */
  static open(
    path: string,
    expected: Omit<JournalHeader, "format" | "version">,
  ): { journal: Journal; records: SignRecord[] } {
    if (!existsSync(path)) {
      const header: JournalHeader = { format: FORMAT, version: 1, ...expected };
      Journal.writeAtomically(path, header, []);
    }
    let bytes: Buffer;
    try {
      bytes = readFileSync(path);
    } catch (e) {
      fail(path, `cannot read (${(e as NodeJS.ErrnoException).code ?? e})`, e);
    }
    const end = bytes.indexOf(0);
    const used = end === -1 ? bytes.length : end;
    if (end !== -1 && bytes.subarray(end).some((b) => b !== 0)) {
      fail(path, `a zero byte at offset ${end} is followed by data: the journal is damaged`);
    }
    const text = bytes.subarray(0, used).toString("utf8");
    const lines = text.split("\n");
    const torn = !text.endsWith("\n");
    if (lines[lines.length - 1] === "") lines.pop();
    let header: JournalHeader;
    try {
      header = JSON.parse(lines[0] ?? "");
    } catch (e) {
      fail(path, "the header line is damaged", e);
    }
    if (header.format !== FORMAT || header.version !== 1) fail(path, "not a version 1 signing journal");
    if (header.publicKey !== expected.publicKey || header.algorithm !== expected.algorithm) {
      fail(
        path,
        `belongs to another key (${header.algorithm} ${header.publicKey.slice(0, 16)}...), not to this signer`,
      );
    }
    const records: SignRecord[] = [];
    let goodBytes = Buffer.byteLength(`${lines[0]}\n`);
    for (let i = 1; i < lines.length; i++) {
      const rec = decodeRecord(lines[i]!);
      const last = i === lines.length - 1;
      if (rec === null) {
        if (last && torn) break; // a crash tore the final append: that signature never left
        fail(path, `line ${i + 1} is damaged`);
      }
      records.push(rec);
      goodBytes += Buffer.byteLength(`${lines[i]}\n`);
    }
    let fd: number;
    try {
      fd = openSync(path, DURABLE_RW);
      if (goodBytes < used) {
        writeSync(fd, Buffer.alloc(used - goodBytes), 0, used - goodBytes, goodBytes);
        fsyncSync(fd);
      }
    } catch (e) {
      fail(path, `cannot open for writing (${(e as NodeJS.ErrnoException).code ?? e})`, e);
    }
    return { journal: new Journal(path, header, fd, records.length, goodBytes, bytes.length), records };
  }

  /** Writes one record durably: when the promise resolves, the record survives a crash. */
  async append(record: SignRecord): Promise<void> {
    const line = Buffer.from(encodeRecord(record));
    try {
      if (this.position + line.length > this.allocated) {
        const grow = Math.max(CHUNK, line.length);
        writeSync(this.fd, Buffer.alloc(grow), 0, grow, this.allocated);
        fsyncSync(this.fd); // the size changed: a full fsync, once per megabyte
        this.allocated += grow;
      }
      await writeAsync(this.fd, line, 0, line.length, this.position);
    } catch (e) {
      fail(this.path, `append failed (${(e as NodeJS.ErrnoException).code ?? e}); nothing was signed`, e);
    }
    this.position += line.length;
    this.lines++;
  }

  /** Replaces the file with just these records (compaction), atomically. */
  rewrite(records: SignRecord[]): void {
    const { position, allocated } = Journal.writeAtomically(this.path, this.header, records);
    try {
      closeSync(this.fd);
      this.fd = openSync(this.path, DURABLE_RW);
    } catch (e) {
      fail(this.path, "cannot reopen after compaction", e);
    }
    this.lines = records.length;
    this.position = position;
    this.allocated = allocated;
  }

  private static writeAtomically(
    path: string,
    header: JournalHeader,
    records: SignRecord[],
  ): { position: number; allocated: number } {
    const tmp = `${path}.tmp-${process.pid}`;
    const content = Buffer.from(`${JSON.stringify(header)}\n${records.map(encodeRecord).join("")}`);
    const allocated = Math.ceil((content.length + 1) / CHUNK) * CHUNK;
    try {
      const fd = openSync(tmp, "w", 0o600);
      const file = Buffer.alloc(allocated);
      content.copy(file);
      writeSync(fd, file);
      fsyncSync(fd);
      closeSync(fd);
      renameSync(tmp, path);
      fsyncDir(path);
    } catch (e) {
      fail(path, `cannot write (${(e as NodeJS.ErrnoException).code ?? e})`, e);
    }
    return { position: content.length, allocated };
  }

  close(): void {
    try {
      closeSync(this.fd);
    } catch {
      // already closed
    }
  }
}
