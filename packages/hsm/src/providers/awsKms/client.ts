/**
 * The KMS client and one way to call it: every call runs under `withRetry` (bounded attempts, a
 * deadline per attempt) with the SDK's own retries off, and every failure becomes an HsmError.
 */
import { KMSClient } from "@aws-sdk/client-kms";
import { type AwsKmsConfig, retryOptions } from "../../config.ts";
import type { RetryOptions } from "../../retry.ts";
import { withRetry } from "../../retry.ts";
import { type KmsCallContext, kmsHsmError, toHsmError } from "./errors.ts";

export interface AwsCredentials {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string;
}

/** Live dependencies. Without `credentials`, the SDK's default credential chain is used. */
export interface AwsKmsDeps {
  credentials?: AwsCredentials;
}

export class KmsConnection {
  readonly config: AwsKmsConfig;
  readonly retry: RetryOptions;
  private readonly client: KMSClient;
  private readonly secrets: string[];
  private closed = false;
  /** The key ARN, once KMS has told us; later calls use it so an alias change cannot swap keys. */
  keyArn: string | undefined;

  constructor(config: AwsKmsConfig, deps: AwsKmsDeps = {}) {
    this.config = config;
    this.retry = retryOptions(config.retry);
    this.client = new KMSClient({
      region: config.region,
      ...(config.endpoint !== undefined ? { endpoint: config.endpoint } : {}),
      ...(deps.credentials !== undefined ? { credentials: { ...deps.credentials } } : {}),
      // Attempts are counted and spaced by withRetry alone.
      maxAttempts: 1,
    });
    this.secrets = [deps.credentials?.secretAccessKey, deps.credentials?.sessionToken].filter(
      (s): s is string => s !== undefined && s !== "",
    );
  }

  /** The key to address: the resolved ARN once known, else the configured id. */
  get target(): string {
    return this.keyArn ?? this.config.keyId;
  }

  context(operation: string): KmsCallContext {
    const ctx: KmsCallContext = {
      keyId: this.config.keyId,
      operation,
      region: this.config.region,
      secrets: this.secrets,
      attemptTimeoutMs: this.retry.attemptTimeoutMs,
    };
    if (this.keyArn !== undefined) ctx.keyArn = this.keyArn;
    if (this.config.endpoint !== undefined) ctx.endpoint = this.config.endpoint;
    return ctx;
  }

  /**
   * Runs one KMS operation with bounded retries. `send` must pass the signal to the SDK so that an
   * attempt past its deadline is aborted.
   */
  async call<T>(
    operation: string,
    send: (client: KMSClient, abortSignal: AbortSignal) => Promise<T>,
    opts: { attempts?: number } = {},
  ): Promise<T> {
    this.assertOpen();
    const retry = opts.attempts === undefined ? this.retry : { ...this.retry, attempts: opts.attempts };
    return withRetry(retry, async (signal) => {
      this.assertOpen();
      try {
        return await send(this.client, signal);
      } catch (e) {
        throw toHsmError(e, this.context(operation), signal);
      }
    });
  }

  assertOpen(): void {
    if (this.closed) throw kmsHsmError("HSM_CLOSED", this.context(""), "the provider was closed");
  }

  get isClosed(): boolean {
    return this.closed;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.client.destroy();
  }
}
