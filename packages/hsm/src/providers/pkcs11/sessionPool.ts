/**
 * A pool of logged-in sessions on one token, and the recovery logic around every operation.
 *
 * A PKCS#11 session runs one operation at a time, so each operation leases a session (waiting
 * when all are busy) and returns it. When an operation fails the pool decides, from the CKR value,
 * what is broken and retries a bounded number of times:
 *  - the session (closed behind our back, logged out, stuck in an operation): drop it, open a
 *    new one (logging in again if the token lost its login) and retry at once;
 *  - the key handle: find the key again by label;
 *  - the device: probe the token with C_GetTokenInfo; if it does not answer, the next attempt
 *    re-initialises the library and finds the token again by label (backing off between tries).
 * A token that was found once and is gone now is an outage (HSM_UNREACHABLE), not a missing key.
 */
import pkcs11js from "pkcs11js";
import { HsmError, type HsmErrorMeta } from "../../errors.ts";
import { CKS_RO_USER_FUNCTIONS, CKS_RW_USER_FUNCTIONS } from "./constants.ts";
import { ckrOf, failureKind, toHsmError } from "./errors.ts";
import type { Pkcs11, Pkcs11Module } from "./module.ts";
import type { Pkcs11Options } from "./options.ts";
import { ensureLoggedIn, findToken, openSession, type TokenRef } from "./token.ts";

export interface PoolTarget<K> {
  library: string;
  tokenLabel: string;
  pinFile: string;
  size: number;
  meta: HsmErrorMeta;
  /** Finds the key objects with a logged-in session; runs on every (re)connect. */
  resolve(pkcs11: Pkcs11, session: Buffer, token: TokenRef): K;
  /** False when a reconnect found a different key under the same label. */
  sameKey(first: K, now: K): boolean;
}

interface Connection<K> {
  generation: number;
  token: TokenRef;
  keys: K;
}

export interface Lease<K> {
  readonly session: Buffer;
  readonly connection: Connection<K>;
  /** Close the session instead of returning it to the pool. */
  discard: boolean;
  /** The library already forgot the session: never pass its handle again. */
  gone: boolean;
}

interface Waiter {
  wake(): void;
  fail(e: HsmError): void;
}

export interface SessionPoolMetrics {
  sessionsOpen: number;
  sessionsIdle: number;
  waiting: number;
  operationsTotal: number;
  operationFailuresTotal: number;
  /** Sessions dropped because the library reported them broken. */
  sessionRecoveriesTotal: number;
  /** Times the pool found its token and key again after losing them. */
  reconnectsTotal: number;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Thrown instead of calling the library with a handle from before a re-initialisation. */
class StaleLease extends Error {}

export class SessionPool<K> {
  private readonly mod: Pkcs11Module;
  private readonly target: PoolTarget<K>;
  private readonly opts: Pkcs11Options;
  private connection: Connection<K> | null = null;
  private connecting: Promise<Connection<K>> | null = null;
  private firstKeys: K | undefined;
  /** Library generation in which the token stopped answering: the next connect re-initialises it. */
  private resetNeededAt: number | null = null;
  private readonly idle: Lease<K>[] = [];
  /** Sessions open or being opened (idle + leased). */
  private open = 0;
  private leased = 0;
  private readonly waiters: Waiter[] = [];
  private closed = false;
  private onDrained: (() => void) | undefined;
  private readonly counters = {
    operationsTotal: 0,
    operationFailuresTotal: 0,
    sessionRecoveriesTotal: 0,
    reconnectsTotal: 0,
  };

  constructor(mod: Pkcs11Module, target: PoolTarget<K>, opts: Pkcs11Options) {
    this.mod = mod;
    this.target = target;
    this.opts = opts;
  }

  /** Connects (token, login, key) and opens the sessions; errors surface here, at creation. */
  async start(): Promise<K> {
    const connection = await this.connect();
    return connection.keys;
  }

  private connect(): Promise<Connection<K>> {
    const current = this.connection;
    if (current !== null && current.generation === this.mod.generation) return Promise.resolve(current);
    this.connecting ??= this.reconnect()
      .catch((e: unknown) => {
        // Everyone waiting for a session would wait for nothing: let them see the failure themselves.
        this.wakeAll();
        throw e;
      })
      .finally(() => {
        this.connecting = null;
      });
    return this.connecting;
  }

  private async reconnect(): Promise<Connection<K>> {
    const wasConnected = this.firstKeys !== undefined;
    this.connection = null;
    for (const lease of this.idle.splice(0)) this.retire(lease);
    if (this.resetNeededAt !== null) await this.mod.reset(this.resetNeededAt);
    await this.mod.ready();
    // Synchronous from here on: no reset can interleave.
    const { meta, library, tokenLabel, pinFile } = this.target;
    const generation = this.mod.generation;
    const p = this.mod.pkcs11;
    let token: TokenRef;
    let session: Buffer;
    try {
      token = findToken(p, library, tokenLabel, { wasPresent: wasConnected, meta });
      session = openSession(p, token, meta);
    } catch (e) {
      if (e instanceof HsmError && e.code === "HSM_UNREACHABLE") this.resetNeededAt = generation;
      throw e;
    }
    let keys: K;
    try {
      ensureLoggedIn(this.mod, session, token, pinFile, meta);
      keys = this.target.resolve(p, session, token);
    } catch (e) {
      closeQuietly(p, session);
      throw e;
    }
    if (this.firstKeys !== undefined && !this.target.sameKey(this.firstKeys, keys)) {
      closeQuietly(p, session);
      throw new HsmError(
        "HSM_KEY_NOT_FOUND",
        `the key this provider was opened with is no longer on token ${JSON.stringify(tokenLabel)}: a different key now carries its label`,
        meta,
      );
    }
    if (this.closed) {
      closeQuietly(p, session);
      throw this.closedError();
    }
    if (wasConnected) this.counters.reconnectsTotal++;
    this.firstKeys ??= keys;
    this.resetNeededAt = null;
    const connection: Connection<K> = { generation, token, keys };
    this.connection = connection;
    this.open++;
    this.idle.push({ session, connection, discard: false, gone: false });
    while (this.open < this.target.size) {
      try {
        this.idle.push({ session: openSession(p, token, meta), connection, discard: false, gone: false });
        this.open++;
      } catch {
        break; // the token limits sessions: work with fewer, open more on demand
      }
    }
    for (let i = 0; i < this.idle.length; i++) this.wakeOne();
    return connection;
  }

  private async acquire(deadline: number): Promise<Lease<K>> {
    for (;;) {
      if (this.closed) throw this.closedError();
      const connection = await this.connect();
      if (this.closed) throw this.closedError();
      const lease = this.idle.pop();
      if (lease !== undefined) {
        if (lease.connection === connection) {
          this.leased++;
          return lease;
        }
        this.retire(lease);
        continue;
      }
      if (this.open < this.target.size) {
        this.open++;
        let session: Buffer | undefined;
        try {
          await this.mod.ready();
          if (
            this.closed ||
            connection !== this.connection ||
            connection.generation !== this.mod.generation
          ) {
            this.open--;
            continue;
          }
          session = openSession(this.mod.pkcs11, connection.token, this.target.meta);
          ensureLoggedIn(this.mod, session, connection.token, this.target.pinFile, this.target.meta);
          this.leased++;
          return { session, connection, discard: false, gone: false };
        } catch (e) {
          if (session !== undefined) closeQuietly(this.mod.pkcs11, session);
          this.open--;
          this.wakeOne();
          throw e;
        }
      }
      await this.waitForSession(deadline);
    }
  }

  private waitForSession(deadline: number): Promise<void> {
    return new Promise((resolve, reject) => {
      if (this.closed) {
        reject(this.closedError());
        return;
      }
      const waiter: Waiter = {
        wake: () => {
          clearTimeout(timer);
          resolve();
        },
        fail: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      };
      const timer = setTimeout(
        () => {
          const i = this.waiters.indexOf(waiter);
          if (i >= 0) this.waiters.splice(i, 1);
          reject(
            new HsmError(
              "HSM_TIMEOUT",
              `no PKCS#11 session on token ${JSON.stringify(this.target.tokenLabel)} became free within ${this.opts.acquireTimeoutMs} ms (pool of ${this.target.size})`,
              this.target.meta,
            ),
          );
        },
        Math.max(0, deadline - Date.now()),
      );
      this.waiters.push(waiter);
    });
  }

  private wakeOne(): void {
    this.waiters.shift()?.wake();
  }

  private wakeAll(): void {
    for (const w of this.waiters.splice(0)) w.wake();
  }

  private release(lease: Lease<K>): void {
    this.leased--;
    if (lease.discard || this.closed || lease.connection !== this.connection) this.retire(lease);
    else this.idle.push(lease);
    this.wakeOne();
    if (this.closed && this.leased === 0) this.onDrained?.();
  }

  /** Closes a session (unless the library already forgot it or was re-initialised since). */
  private retire(lease: Lease<K>): void {
    this.open--;
    if (!lease.gone && lease.connection.generation === this.mod.generation)
      closeQuietly(this.mod.pkcs11, lease.session);
  }

  /** After one session was found dead, drop the idle ones that died with it (C_CloseAllSessions). */
  private sweepIdle(): void {
    for (const lease of this.idle.splice(0)) {
      if (lease.connection.generation !== this.mod.generation) {
        this.retire(lease);
        continue;
      }
      try {
        this.mod.pkcs11.C_GetSessionInfo(lease.session);
        this.idle.push(lease);
      } catch {
        lease.gone = true;
        this.counters.sessionRecoveriesTotal++;
        this.retire(lease);
      }
    }
  }

  /** Whether the token still answers (C_GetTokenInfo); false means re-initialise the library. */
  private tokenAnswers(connection: Connection<K>): boolean {
    if (connection.generation !== this.mod.generation) return true; // someone re-initialised already
    try {
      this.mod.pkcs11.C_GetTokenInfo(connection.token.slot);
      return true;
    } catch {
      return false;
    }
  }

  private invalidate(connection: Connection<K>, resetLibrary: boolean): void {
    if (this.connection !== connection) return;
    this.connection = null;
    if (resetLibrary) this.resetNeededAt = connection.generation;
    this.wakeAll(); // they reconnect (or learn that they cannot) instead of waiting for stale sessions
  }

  /** Makes sure the lease's session is logged in (after the token lost its login). */
  ensureLoggedIn(lease: Lease<K>): void {
    ensureLoggedIn(this.mod, lease.session, lease.connection.token, this.target.pinFile, this.target.meta);
  }

  isLoggedIn(state: number): boolean {
    return state === CKS_RW_USER_FUNCTIONS || state === CKS_RO_USER_FUNCTIONS;
  }

  /**
   * Runs `fn` with a leased session, recovering and retrying as described above. `fn` may throw
   * an HsmError to give a final answer, or let a pkcs11js error through for the pool to judge.
   */
  async withSession<T>(
    action: string,
    fn: (pkcs11: Pkcs11, lease: Lease<K>) => Promise<T> | T,
    attempts = this.opts.attempts,
  ): Promise<T> {
    const meta = this.target.meta;
    const deadline = Date.now() + this.opts.acquireTimeoutMs;
    let last: HsmError | undefined;
    let delay = this.opts.retryDelayMs;
    this.counters.operationsTotal++;
    for (let attempt = 1; attempt <= attempts; attempt++) {
      let lease: Lease<K>;
      try {
        lease = await this.acquire(deadline);
      } catch (e) {
        const err = toHsmError(e, action, meta);
        if (
          (err.code === "HSM_UNREACHABLE" || err.code === "HSM_BACKEND_ERROR") &&
          attempt < attempts &&
          !this.closed
        ) {
          last = err;
          await sleep(delay);
          delay *= 2;
          continue;
        }
        this.counters.operationFailuresTotal++;
        throw err;
      }
      const outcome = await this.runBounded(lease, fn);
      if (outcome.ok) {
        this.release(lease);
        return outcome.value;
      }
      const e = outcome.error;
      if (e instanceof StaleLease || lease.connection.generation !== this.mod.generation) {
        // The library was re-initialised under this lease: its handles mean nothing now.
        lease.gone = true;
        this.release(lease);
        last = new HsmError(
          "HSM_UNREACHABLE",
          `${action} failed: the PKCS#11 library was re-initialised`,
          meta,
        );
        continue;
      }
      if (e instanceof HsmError) {
        if (e.code !== "HSM_TIMEOUT") this.release(lease); // a timed-out lease returns when its call ends
        this.counters.operationFailuresTotal++;
        throw e;
      }
      const ckr = ckrOf(e);
      const kind = failureKind(ckr);
      const connection = lease.connection;
      if (kind === "auth" || kind === "other") {
        this.release(lease);
        this.counters.operationFailuresTotal++;
        throw toHsmError(e, action, meta);
      }
      if (ckr === pkcs11js.CKR_USER_NOT_LOGGED_IN) {
        // The token dropped its login but kept the session (some network HSMs do): log in again.
        try {
          this.ensureLoggedIn(lease);
        } catch (err) {
          lease.discard = true;
          const h = toHsmError(err, action, meta);
          if (h.code === "HSM_AUTH_FAILED" || h.code === "HSM_INVALID_CONFIG") {
            this.release(lease);
            this.counters.operationFailuresTotal++;
            throw h;
          }
        }
        this.counters.sessionRecoveriesTotal++;
        this.release(lease);
        last = toHsmError(e, action, meta);
        continue;
      }
      if (kind === "session") {
        lease.discard = true;
        lease.gone = ckr === pkcs11js.CKR_SESSION_HANDLE_INVALID || ckr === pkcs11js.CKR_SESSION_CLOSED;
        this.counters.sessionRecoveriesTotal++;
        this.release(lease);
        this.sweepIdle();
        last = toHsmError(e, action, meta);
        continue; // a fresh session is cheap: retry at once
      }
      const answers = this.tokenAnswers(connection);
      if (kind === "object") this.invalidate(connection, !answers);
      else if (!answers) this.invalidate(connection, true);
      else lease.discard = true;
      this.release(lease);
      last = toHsmError(e, action, meta, answers ? undefined : "HSM_UNREACHABLE");
      if (attempt < attempts) {
        await sleep(delay);
        delay *= 2;
      }
    }
    this.counters.operationFailuresTotal++;
    throw last ?? new HsmError("HSM_BACKEND_ERROR", `${action} failed`, meta);
  }

  /** Runs `fn` under the library's in-flight count, giving up waiting after the operation timeout. */
  private runBounded<T>(
    lease: Lease<K>,
    fn: (pkcs11: Pkcs11, lease: Lease<K>) => Promise<T> | T,
  ): Promise<{ ok: true; value: T } | { ok: false; error: unknown }> {
    const call = this.mod
      .run((p) => {
        // run() may have waited for a re-initialisation: handle numbers restart after one, and a
        // stale session handle could name another user's new session.
        if (lease.connection.generation !== this.mod.generation) throw new StaleLease();
        return fn(p, lease);
      })
      .then(
        (value) => ({ ok: true as const, value }),
        (error: unknown) => ({ ok: false as const, error }),
      );
    return new Promise((resolve) => {
      let answered = false;
      const timer = setTimeout(() => {
        answered = true;
        // The call still owns the session: it is released (and closed) only when the call ends.
        void call.then(() => {
          lease.discard = true;
          this.release(lease);
        });
        const message = `PKCS#11 operation on token ${JSON.stringify(this.target.tokenLabel)} did not finish within ${this.opts.operationTimeoutMs} ms`;
        resolve({ ok: false, error: new HsmError("HSM_TIMEOUT", message, this.target.meta) });
      }, this.opts.operationTimeoutMs);
      void call.then((outcome) => {
        if (answered) return;
        answered = true;
        clearTimeout(timer);
        resolve(outcome);
      });
    });
  }

  /** Closes every session (waiting for running operations, up to the operation timeout). */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const w of this.waiters.splice(0)) w.fail(this.closedError());
    if (this.leased > 0) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, this.opts.operationTimeoutMs);
        this.onDrained = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
    for (const lease of this.idle.splice(0)) this.retire(lease);
    this.connection = null;
  }

  get isClosed(): boolean {
    return this.closed;
  }

  private closedError(): HsmError {
    return new HsmError(
      "HSM_CLOSED",
      `the PKCS#11 provider for token ${JSON.stringify(this.target.tokenLabel)} is closed`,
      this.target.meta,
    );
  }

  metrics(): SessionPoolMetrics {
    return {
      sessionsOpen: this.open,
      sessionsIdle: this.idle.length,
      waiting: this.waiters.length,
      ...this.counters,
    };
  }
}

function closeQuietly(pkcs11: Pkcs11, session: Buffer): void {
  try {
    pkcs11.C_CloseSession(session);
  } catch {
    // already closed: nothing left to release
  }
}
