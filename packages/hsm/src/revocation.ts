/**
 * The key revocation list: a JSON file of revoked key ids and public keys. A revoked key is never
 * used to sign (the guard checks it), and the node uses the same list to refuse revoked peers and
 * validators. The file is re-read when it changes.
 *
 * Accepted shapes (the seed's `revoked_tokens.json` among them):
 *   ["key-id", "<hex or base64 public key>", ...]
 *   {"revoked": [...]}  or  {"revoked_tokens": [...]}
 * where an entry is a string or {"keyId"?, "publicKey"?, "reason"?, "revokedAt"?}.
 */
import { type FSWatcher, readFileSync, watch } from "node:fs";
import { HsmError } from "./errors.ts";

export interface RevocationEntry {
  keyId?: string;
  /** Lower-case hex of the raw public key. */
  publicKey?: string;
  reason?: string;
  revokedAt?: string;
}

export interface RevocationQuery {
  keyId?: string;
  publicKey?: Uint8Array;
}

function normaliseKey(text: string): string | null {
  const t = text.trim();
  if (
    /^(0x)?[0-9a-fA-F]+$/.test(t) &&
    (t.replace(/^0x/, "").length === 64 || t.replace(/^0x/, "").length === 130)
  ) {
    return t.replace(/^0x/, "").toLowerCase();
  }
  if (/^[A-Za-z0-9+/_-]+={0,2}$/.test(t)) {
    const bytes = Buffer.from(t, t.includes("-") || t.includes("_") ? "base64url" : "base64");
    if (bytes.length === 32 || bytes.length === 65) return bytes.toString("hex");
  }
  return null;
}

/** Parses the list; unknown shapes are an error naming the problem (never silently empty). */
export function parseRevocationList(text: string, source = "revocation list"): RevocationEntry[] {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new HsmError("HSM_INVALID_CONFIG", `${source} is not valid JSON: ${(e as Error).message}`);
  }
  const list = Array.isArray(json)
    ? json
    : typeof json === "object" && json !== null
      ? ((json as Record<string, unknown>).revoked ?? (json as Record<string, unknown>).revoked_tokens)
      : undefined;
  if (!Array.isArray(list)) {
    throw new HsmError(
      "HSM_INVALID_CONFIG",
      `${source} must be an array or an object with a "revoked" array`,
    );
  }
  return list.map((item, i): RevocationEntry => {
    if (typeof item === "string") {
      const key = normaliseKey(item);
      return key === null ? { keyId: item } : { publicKey: key, keyId: item };
    }
    if (typeof item === "object" && item !== null) {
      const o = item as Record<string, unknown>;
      const entry: RevocationEntry = {};
      if (typeof o.keyId === "string") entry.keyId = o.keyId;
      if (typeof o.publicKey === "string") {
        const key = normaliseKey(o.publicKey);
        if (key === null)
          throw new HsmError(
            "HSM_INVALID_CONFIG",
            `${source} entry ${i}: publicKey is not a hex or base64 key`,
          );
        entry.publicKey = key;
      }
      if (typeof o.reason === "string") entry.reason = o.reason;
      if (typeof o.revokedAt === "string") entry.revokedAt = o.revokedAt;
      if (entry.keyId === undefined && entry.publicKey === undefined) {
        throw new HsmError("HSM_INVALID_CONFIG", `${source} entry ${i} names neither keyId nor publicKey`);
      }
      return entry;
    }
    throw new HsmError("HSM_INVALID_CONFIG", `${source} entry ${i} must be a string or an object`);
  });
}

export class RevocationList {
  private keyIds = new Set<string>();
  private publicKeys = new Set<string>();
  private list: RevocationEntry[] = [];
  private watcher: FSWatcher | null = null;
  private debounce: NodeJS.Timeout | null = null;
  readonly path: string | null;
  /** The last reload error (the previous list stays in force), for health reporting. */
  lastError: HsmError | null = null;

  private constructor(path: string | null) {
    this.path = path;
  }

  static fromEntries(entries: RevocationEntry[]): RevocationList {
    const r = new RevocationList(null);
    r.apply(entries);
    return r;
  }

  /**
   * Loads the file. A missing or invalid file at start is an error. With `watch`, changes are
   * picked up; a later invalid version is reported in `lastError` and the previous list is kept.
   */
  static load(
    path: string,
    opts: { watch?: boolean; onReload?: (r: RevocationList) => void } = {},
  ): RevocationList {
    const r = new RevocationList(path);
    r.reload();
    if (opts.watch) {
      r.watcher = watch(path, { persistent: false }, () => {
        if (r.debounce) clearTimeout(r.debounce);
        r.debounce = setTimeout(() => {
          try {
            r.reload();
            r.lastError = null;
            opts.onReload?.(r);
          } catch (e) {
            r.lastError = e instanceof HsmError ? e : new HsmError("HSM_INVALID_CONFIG", String(e));
          }
        }, 50);
      });
    }
    return r;
  }

  reload(): void {
    if (this.path === null) return;
    let text: string;
    try {
      text = readFileSync(this.path, "utf8");
    } catch (e) {
      throw new HsmError(
        "HSM_INVALID_CONFIG",
        `cannot read revocation list ${this.path}: ${(e as NodeJS.ErrnoException).code ?? e}`,
      );
    }
    this.apply(parseRevocationList(text, `revocation list ${this.path}`));
  }

  private apply(entries: RevocationEntry[]): void {
    this.list = entries;
    this.keyIds = new Set(entries.flatMap((e) => (e.keyId === undefined ? [] : [e.keyId])));
    this.publicKeys = new Set(entries.flatMap((e) => (e.publicKey === undefined ? [] : [e.publicKey])));
  }

  isRevoked(q: RevocationQuery): boolean {
    if (q.keyId !== undefined && this.keyIds.has(q.keyId)) return true;
    if (q.publicKey !== undefined && this.publicKeys.has(Buffer.from(q.publicKey).toString("hex")))
      return true;
    return false;
  }

  entries(): readonly RevocationEntry[] {
    return this.list;
  }

  close(): void {
    this.watcher?.close();
    this.watcher = null;
    if (this.debounce) clearTimeout(this.debounce);
  }
}
