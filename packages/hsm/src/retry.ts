/**
 * Timeouts and bounded retries with exponential backoff and full jitter, for calls to remote
 * backends. Only retryable HsmErrors (unreachable, timeout, throttled, 5xx) are retried.
 */
import { HsmError } from "./errors.ts";

export interface RetryOptions {
  /** Total attempts, including the first. */
  attempts: number;
  baseDelayMs: number;
  maxDelayMs: number;
  /** Deadline for one attempt; the attempt's AbortSignal fires then. */
  attemptTimeoutMs: number;
}

export const defaultRetryOptions: RetryOptions = {
  attempts: 4,
  baseDelayMs: 50,
  maxDelayMs: 2000,
  attemptTimeoutMs: 5000,
};

/**
 * Runs `attempt` until it succeeds, throws a non-retryable error, or attempts run out.
 * `attempt` must turn backend failures into HsmErrors (and honour the signal).
 */
export async function withRetry<T>(
  opts: RetryOptions,
  attempt: (signal: AbortSignal, attemptNumber: number) => Promise<T>,
  onRetry?: (error: HsmError, attemptNumber: number, delayMs: number) => void,
): Promise<T> {
  let last: unknown;
  for (let n = 1; n <= opts.attempts; n++) {
    const signal = AbortSignal.timeout(opts.attemptTimeoutMs);
    try {
      return await attempt(signal, n);
    } catch (e) {
      last = e;
      if (!(e instanceof HsmError) || !e.retryable || n === opts.attempts) throw e;
      const ceiling = Math.min(opts.maxDelayMs, opts.baseDelayMs * 2 ** (n - 1));
      const delay = Math.floor(Math.random() * ceiling);
      onRetry?.(e, n, delay);
      await new Promise((resolve) => setTimeout(resolve, delay));
    }
  }
  throw last;
}
