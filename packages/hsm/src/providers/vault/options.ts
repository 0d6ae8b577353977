/**
 * The Vault provider's resolved options: the validated config plus what every module needs from
 * it (the log-safe key id, the retry settings). Names and the mount are checked here because they
 * are spliced into URL paths: `../sys/...` must never reach Vault.
 */
import { parseProviderConfig, retryOptions, type VaultConfig } from "../../config.ts";
import { HsmError } from "../../errors.ts";
import type { RetryOptions } from "../../retry.ts";

export interface ResolvedVaultConfig {
  /** VAULT_ADDR without a trailing slash (what node-vault is given). */
  address: string;
  tokenFile: string;
  /** Mount path of the transit engine, without leading or trailing slashes. */
  mount: string;
  keyName: string;
  namespace: string | undefined;
  retry: RetryOptions;
  /** `<address>[/<namespace>]/<mount>/keys/<name>`: log-safe. */
  keyId: string;
}

/** Vault's `framework.GenericNameRegex` for key names. */
const KEY_NAME = /^\w(?:[\w\-.@]*\w)?$/;
const PATH_SEGMENT = /^[\w\-.@]+$/;

function checkPath(field: string, envVar: string, value: string): string {
  const trimmed = value.replace(/^\/+|\/+$/g, "");
  const segments = trimmed.split("/");
  if (trimmed === "" || segments.some((s) => !PATH_SEGMENT.test(s) || s === "." || s === "..")) {
    throw new HsmError(
      "HSM_INVALID_CONFIG",
      `vault: ${field} (${envVar}) must be path segments of letters, digits, "_", "-", "." or "@" separated by "/"`,
      { provider: "vault" },
    );
  }
  return trimmed;
}

export function resolveVaultConfig(config: VaultConfig): ResolvedVaultConfig {
  const parsed = parseProviderConfig({ ...config, provider: "vault" });
  if (parsed.provider !== "vault")
    throw new HsmError("HSM_INVALID_CONFIG", "vault: not a Vault configuration");

  const url = new URL(parsed.address);
  if (url.protocol !== "https:" && url.protocol !== "http:") {
    throw new HsmError(
      "HSM_INVALID_CONFIG",
      `vault: address (VAULT_ADDR) must be an http(s) URL, got ${url.protocol}`,
      {
        provider: "vault",
      },
    );
  }
  if (url.username !== "" || url.password !== "") {
    throw new HsmError(
      "HSM_INVALID_CONFIG",
      "vault: address (VAULT_ADDR) must not contain credentials: the token is read from VAULT_TOKEN_FILE",
      { provider: "vault" },
    );
  }
  if (url.search !== "" || url.hash !== "") {
    throw new HsmError(
      "HSM_INVALID_CONFIG",
      "vault: address (VAULT_ADDR) must not have a query or fragment",
      {
        provider: "vault",
      },
    );
  }
  const address = `${url.protocol}//${url.host}${url.pathname.replace(/\/+$/, "")}`;
  const mount = checkPath("mount", "VAULT_TRANSIT_MOUNT", parsed.mount);
  const namespace =
    parsed.namespace === undefined ? undefined : checkPath("namespace", "VAULT_NAMESPACE", parsed.namespace);
  if (!KEY_NAME.test(parsed.keyName)) {
    throw new HsmError(
      "HSM_INVALID_CONFIG",
      'vault: keyName (VAULT_KEY_NAME / VAULT_WRAP_KEY_NAME) must be letters, digits, "_", "-", "." or "@" (a Vault transit key name)',
      { provider: "vault" },
    );
  }
  const keyId = [address, namespace, mount, "keys", parsed.keyName].filter((p) => p !== undefined).join("/");
  return {
    address,
    tokenFile: parsed.tokenFile,
    mount,
    keyName: parsed.keyName,
    namespace,
    retry: retryOptions(parsed.retry),
    keyId,
  };
}
