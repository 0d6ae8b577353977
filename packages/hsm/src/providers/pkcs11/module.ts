/**
 * One loaded and initialised PKCS#11 library per path per process, shared by every signer,
 * wrapper and provisioning call that uses it (Cryptoki allows one C_Initialize per process).
 *
 * - C_Initialize always passes CKF_OS_LOCKING_OK: without it concurrent async calls crashed
 *   SoftHSM2 (5 of 6 runs).
 * - Reference counted: the last user to close finalises the library (the library stays loaded,
 *   re-initialising a loaded library is cheaper and safer than dlclose/dlopen).
 * - `reset()` re-initialises the library (C_Finalize + C_Initialize) after the token went away:
 *   SoftHSM2, and many vendor libraries after a device failure, only see a token again once
 *   their store is re-read. Every user notices through `generation` and reopens its sessions.
 * - Asynchronous calls (C_SignAsync...) run on libuv threads; `run()` counts them so that
 *   C_Finalize never runs under one.
 */
import { createHmac, randomBytes } from "node:crypto";
import { realpathSync } from "node:fs";
import pkcs11js from "pkcs11js";
import { HsmError } from "../../errors.ts";
import { ckrOf, toHsmError } from "./errors.ts";

export type Pkcs11 = InstanceType<typeof pkcs11js.PKCS11>;

/** How long finalisation waits for running calls before giving up (and leaving the library initialised). */
const DRAIN_TIMEOUT_MS = 30_000;

const modules = new Map<string, Pkcs11Module>();
/** Fingerprints of PINs are keyed with a per-process secret: never comparable across processes. */
const fingerprintKey = randomBytes(32);

export function pinFingerprint(pin: string): string {
  return createHmac("sha256", fingerprintKey).update(pin, "utf8").digest("hex");
}

export interface Pkcs11ModuleStats {
  library: string;
  users: number;
  initialized: boolean;
  generation: number;
  resetsTotal: number;
  inFlight: number;
}

export class Pkcs11Module {
  readonly library: string;
  readonly pkcs11: Pkcs11;
  /** Bumped by every finalisation: session and object handles of older generations are meaningless. */
  generation = 0;
  resetsTotal = 0;
  private users = 0;
  private initialized = false;
  private inFlight = 0;
  private drainWaiters: (() => void)[] = [];
  /** Set while finalising or re-initialising: calls wait for it. */
  private gate: Promise<void> | null = null;
  /**
   * Login state is per token and application, so a second user of a logged-in token cannot
   * prove its PIN with C_Login (it gets CKR_USER_ALREADY_LOGGED_IN). The fingerprint of the PIN
   * that did log in lets us refuse a different one. Keyed by token; cleared with the login state.
   */
  private readonly logins = new Map<string, string>();

  private constructor(library: string, pkcs11: Pkcs11) {
    this.library = library;
    this.pkcs11 = pkcs11;
  }

  static loaded(path: string, pkcs11: Pkcs11): Pkcs11Module {
    return new Pkcs11Module(path, pkcs11);
  }

  /** Loads (once) and initialises (if no one else has) the library, and counts a user. */
  static async open(library: string): Promise<Pkcs11Module> {
    let path: string;
    try {
      path = realpathSync(library);
    } catch (e) {
      const reason = (e as NodeJS.ErrnoException).code ?? "unreadable";
      throw new HsmError("HSM_INVALID_CONFIG", `PKCS#11 library ${library} cannot be loaded (${reason})`, {
        provider: "pkcs11",
      });
    }
    let mod = modules.get(path);
    if (mod === undefined) {
      const pkcs11 = new pkcs11js.PKCS11();
      try {
        pkcs11.load(path);
      } catch (e) {
        const reason = e instanceof Error ? e.message : String(e);
        throw new HsmError(
          "HSM_INVALID_CONFIG",
          `PKCS#11 library ${library} cannot be loaded: ${reason}`,
          { provider: "pkcs11" },
          { cause: e },
        );
      }
      mod = Pkcs11Module.loaded(path, pkcs11);
      modules.set(path, mod);
    }
    await mod.retain();
    return mod;
  }

  private async retain(): Promise<void> {
    while (this.gate) await this.gate;
    this.users++;
    try {
      this.initialize();
    } catch (e) {
      this.users--;
      throw e;
    }
  }

  private initialize(): void {
    if (this.initialized) return;
    try {
      this.pkcs11.C_Initialize({ flags: pkcs11js.CKF_OS_LOCKING_OK });
    } catch (e) {
      // Someone else in this process initialised it outside this registry: use it as it is.
      if (ckrOf(e) !== pkcs11js.CKR_CRYPTOKI_ALREADY_INITIALIZED) {
        throw toHsmError(
          e,
          `C_Initialize of PKCS#11 library ${this.library}`,
          { provider: "pkcs11" },
          "HSM_UNREACHABLE",
        );
      }
    }
    this.initialized = true;
  }

  /** Waits until no finalisation is running; then synchronous calls may be made until the next await. */
  async ready(): Promise<void> {
    while (this.gate) await this.gate;
    if (this.users === 0)
      throw new HsmError("HSM_CLOSED", `PKCS#11 library ${this.library} is closed`, { provider: "pkcs11" });
    if (!this.initialized) this.initialize();
  }

  /** Runs `fn` as one unit that a reset or finalisation waits for (use it for asynchronous calls). */
  async run<T>(fn: (pkcs11: Pkcs11) => Promise<T> | T): Promise<T> {
    // A reset may have closed the gate between ready() resolving and this line running.
    do await this.ready();
    while (this.gate);
    this.inFlight++;
    try {
      return await fn(this.pkcs11);
    } finally {
      this.inFlight--;
      if (this.inFlight === 0) for (const wake of this.drainWaiters.splice(0)) wake();
    }
  }

  /**
   * Re-initialises the library if no one did since `seenGeneration`. Called when the token stopped
   * answering: afterwards every session handle of every user is stale.
   */
  async reset(seenGeneration: number): Promise<void> {
    while (this.gate) await this.gate;
    if (seenGeneration !== this.generation || this.users === 0) return;
    await this.closeGate(async () => {
      if (!(await this.drain())) return;
      this.finalize();
      this.resetsTotal++;
      try {
        this.initialize();
      } catch {
        // Left uninitialised: the next call tries again and reports the failure itself.
      }
    });
  }

  /** Counts a user out; the last one finalises the library. */
  async release(): Promise<void> {
    while (this.gate) await this.gate;
    if (this.users === 0) return;
    this.users--;
    if (this.users > 0) return;
    await this.closeGate(async () => {
      if (await this.drain()) this.finalize();
    });
  }

  private async closeGate(body: () => Promise<void>): Promise<void> {
    let open = () => {};
    this.gate = new Promise<void>((resolve) => {
      open = resolve;
    });
    try {
      await body();
    } finally {
      this.gate = null;
      open();
    }
  }

  private finalize(): void {
    try {
      this.pkcs11.C_Finalize();
    } catch {
      // Already finalised (or the library failed): the state is the same either way.
    }
    this.initialized = false;
    this.logins.clear();
    this.generation++;
  }

  /** Resolves true once no call is running, false if one is still running after the timeout. */
  private drain(): Promise<boolean> {
    if (this.inFlight === 0) return Promise.resolve(true);
    return new Promise((resolve) => {
      const timer = setTimeout(() => resolve(false), DRAIN_TIMEOUT_MS);
      timer.unref();
      this.drainWaiters.push(() => {
        clearTimeout(timer);
        resolve(true);
      });
    });
  }

  loginFingerprint(token: string): string | undefined {
    return this.logins.get(token);
  }

  recordLogin(token: string, fingerprint: string): void {
    this.logins.set(token, fingerprint);
  }

  stats(): Pkcs11ModuleStats {
    return {
      library: this.library,
      users: this.users,
      initialized: this.initialized,
      generation: this.generation,
      resetsTotal: this.resetsTotal,
      inFlight: this.inFlight,
    };
  }
}

/** Stats of the library at `library` if this process loaded it (for tests and diagnostics). */
export function pkcs11ModuleStats(library: string): Pkcs11ModuleStats | undefined {
  let path: string;
  try {
    path = realpathSync(library);
  } catch {
    return undefined;
  }
  return modules.get(path)?.stats();
}

export interface Pkcs11Availability {
  available: boolean;
  /** Why not, when not available (log-safe). */
  reason?: string;
}

/**
 * Whether the pkcs11js binding works and `library` can be loaded (without initialising it).
 * For startup checks and for tests that need a real token.
 */
export function isPkcs11Available(library: string): Pkcs11Availability {
  let path: string;
  try {
    path = realpathSync(library);
  } catch {
    return { available: false, reason: `PKCS#11 library ${library} does not exist` };
  }
  if (modules.has(path)) return { available: true };
  try {
    // Kept loaded and registered: unloading and reloading a library that links its own OpenSSL is
    // not something to do casually.
    const pkcs11 = new pkcs11js.PKCS11();
    pkcs11.load(path);
    modules.set(path, Pkcs11Module.loaded(path, pkcs11));
    return { available: true };
  } catch (e) {
    return {
      available: false,
      reason: `PKCS#11 library ${library} cannot be loaded: ${e instanceof Error ? e.message : String(e)}`,
    };
  }
}
