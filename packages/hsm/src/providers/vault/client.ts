/**
 * One Vault request at a time, through the real node-vault client: the token from its file, a
 * deadline per attempt, Vault's `{data}` envelope unwrapped and every failure classified.
 *
 * The token file is re-read once when Vault answers 403: Vault Agent (auto-auth with a file sink)
 * and similar renewers replace the token in place, and the new one should be used without a
 * restart.
 */
import nodeVault from "node-vault";
import { readSecretFile } from "../../secretFile.ts";
import { mapVaultError, type VaultErrorContext, type VaultOperation, vaultError } from "./errors.ts";
import type { ResolvedVaultConfig } from "./options.ts";

/** The part of node-vault's client this provider uses (its bundled types say `any` for results). */
interface NodeVaultClient {
  token: string;
  /** Set explicitly: node-vault would otherwise fall back to VAULT_NAMESPACE / VAULT_PREFIX. */
  namespace?: string;
  pathPrefix?: string;
  read(path: string, requestOptions?: { timeout?: number }): Promise<unknown>;
  write(path: string, data: Record<string, unknown>, requestOptions?: { timeout?: number }): Promise<unknown>;
}

type VaultOptions = NonNullable<Parameters<typeof nodeVault>[0]>;

export type VaultData = Record<string, unknown>;

export interface VaultTransport {
  readonly config: ResolvedVaultConfig;
  /** `GET /v1/<path>`; returns the response's `data`. */
  read(path: string, operation: VaultOperation, signal: AbortSignal): Promise<VaultData>;
  /** `POST /v1/<path>`; returns the response's `data`. */
  write(path: string, body: VaultData, operation: VaultOperation, signal: AbortSignal): Promise<VaultData>;
  /** `<mount>/<verb>/<name>` for this config. */
  path(verb: "keys" | "sign" | "encrypt" | "decrypt"): string;
  errorContext(operation: VaultOperation, path: string): VaultErrorContext;
}

/** The token, trimmed; errors name the file and never its content. */
export async function readTokenFile(path: string): Promise<string> {
  return readSecretFile({
    path,
    what: "token",
    variable: "VAULT_TOKEN_FILE",
    meta: { provider: "vault" },
    singleToken: true,
  });
}

/** Rejects with the signal's reason (a TimeoutError) if it fires first. */
function abortable<T>(work: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener("abort", onAbort, { once: true });
    work.then(
      (value) => {
        signal.removeEventListener("abort", onAbort);
        resolve(value);
      },
      (error: unknown) => {
        signal.removeEventListener("abort", onAbort);
        reject(error);
      },
    );
  });
}

export async function createVaultTransport(config: ResolvedVaultConfig): Promise<VaultTransport> {
  let token = await readTokenFile(config.tokenFile);
  const seenTokens = new Set([token]);

  const options: VaultOptions & { rpDefaults: { strictSSL: boolean } } = {
    endpoint: config.address,
    token,
    // node-vault logs request bodies (sign inputs, data keys) through `debug` when DEBUG is set.
    debug: () => undefined,
    // TLS verification stays on whatever VAULT_SKIP_VERIFY says; trust a private CA instead.
    rpDefaults: { strictSSL: true },
  };
  const client: NodeVaultClient = nodeVault(options);
  client.namespace = config.namespace ?? "";
  client.pathPrefix = "";

  const errorContext = (operation: VaultOperation, path: string): VaultErrorContext => ({
    operation,
    path,
    keyPath: `${config.mount}/keys/${config.keyName}`,
    keyId: config.keyId,
    address: config.address,
    tokenFile: config.tokenFile,
    attemptTimeoutMs: config.retry.attemptTimeoutMs,
    secrets: [...seenTokens],
  });

  /** True when the file now holds another usable token (which is then in use). */
  const reloadToken = async (): Promise<boolean> => {
    let fresh: string;
    try {
      fresh = await readTokenFile(config.tokenFile);
    } catch {
      return false;
    }
    if (fresh === token) return false;
    seenTokens.add(fresh);
    token = fresh;
    client.token = fresh;
    return true;
  };

  const unwrapData = (body: unknown, ctx: VaultErrorContext): VaultData => {
    const data = typeof body === "object" && body !== null ? (body as { data?: unknown }).data : undefined;
    if (typeof data !== "object" || data === null || Array.isArray(data)) {
      throw vaultError(
        "HSM_BAD_RESPONSE",
        ctx,
        `${ctx.operation} ${ctx.path}: the answer has no "data" object: does VAULT_ADDR point at the Vault API (not a proxy or the UI)?`,
        { operation: ctx.operation },
      );
    }
    return data as VaultData;
  };

  const call = async (
    operation: VaultOperation,
    path: string,
    signal: AbortSignal,
    send: (timeout: number) => Promise<unknown>,
  ): Promise<VaultData> => {
    const once = async () =>
      unwrapData(await abortable(send(config.retry.attemptTimeoutMs), signal), errorContext(operation, path));
    try {
      return await once();
    } catch (e) {
      const error = mapVaultError(e, errorContext(operation, path));
      if (error.code !== "HSM_AUTH_FAILED" || !(await reloadToken())) throw error;
    }
    try {
      return await once();
    } catch (e) {
      throw mapVaultError(e, errorContext(operation, path));
    }
  };

  return {
    config,
    read: (path, operation, signal) =>
      call(operation, path, signal, (timeout) => client.read(path, { timeout })),
    write: (path, body, operation, signal) =>
      call(operation, path, signal, (timeout) => client.write(path, body, { timeout })),
    path: (verb) => `${config.mount}/${verb}/${config.keyName}`,
    errorContext,
  };
}
