/**
 * Structured JSON logs (pino). One logger per process, a child per module. Never pass key
 * material, tokens, passphrases or transaction payloads (they may carry PHI) to a logger.
 */
import { type Logger, pino } from "pino";

export type LogLevel = "fatal" | "error" | "warn" | "info" | "debug" | "trace" | "silent";

export function createLogger(opts: {
  level: LogLevel;
  name?: string;
  destination?: string | number;
}): Logger {
  return pino(
    {
      level: opts.level,
      base: opts.name === undefined ? { pid: process.pid } : { pid: process.pid, node: opts.name },
      timestamp: pino.stdTimeFunctions.isoTime,
      // A second line of defence: these field names never reach the output.
      redact: {
        paths: ["passphrase", "token", "privateKey", "secret", "*.passphrase", "*.token", "*.privateKey"],
        censor: "[redacted]",
      },
    },
    pino.destination({ dest: opts.destination ?? 1, sync: false }),
  );
}
