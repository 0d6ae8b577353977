/**
 * `verify-audit-log <export.json>`: the offline verifier as a command. Exit codes: 0 the chain
 * verifies, 1 it does not (first fault printed), 2 usage error or unreadable input. Errors are
 * one line each, never a stack trace. The node's CLI reuses runVerifyAuditLog().
 */
import { readFile } from "node:fs/promises";
import { parseArgs } from "node:util";
import { type Hex, isHexOfLength } from "./hex.ts";
import { parseAuditLogExport, parseUint64, type VerifyOptions, verifyAuditChain } from "./verify.ts";

export const EXIT_OK = 0;
export const EXIT_CHAIN_BROKEN = 1;
export const EXIT_USAGE = 2;

export interface CliIo {
  out(line: string): void;
  err(line: string): void;
  readFile(path: string): Promise<string>;
}

const defaultIo: CliIo = {
  out: (line) => process.stdout.write(`${line}\n`),
  err: (line) => process.stderr.write(`${line}\n`),
  readFile: (path) => readFile(path, "utf8"),
};

export const VERIFY_USAGE = `usage: verify-audit-log <export.json> [options]

Recomputes the AuditLog hash chain over exported AuditEvent records and reports the first
gap, reordering, alteration or malformed entry.

<export.json>: a JSON array of events (decoded or raw eth_getLogs logs), or an object
  { "events": [...], "from": { "seq", "head" }, "checkpoint": { "count", "head" } }

options:
  --expect-count N    AuditLog.count() at the export's block (with --expect-head)
  --expect-head 0x..  AuditLog.head() at the export's block: proves nothing is missing at the end
  --from-seq N        the events start after record N (with --from-head; default: genesis)
  --from-head 0x..    the chain head after record N
  --json              print the result as JSON
  -h, --help          print this help

exit codes: 0 verified, 1 chain broken, 2 usage error or unreadable input`;

class UsageError extends Error {}

function uint64Flag(name: string, value: string | undefined): bigint | undefined {
  if (value === undefined) return undefined;
  const n = parseUint64(value);
  if (n === undefined) throw new UsageError(`--${name} must be a non-negative integer, got "${value}"`);
  return n;
}

function headFlag(name: string, value: string | undefined): Hex | undefined {
  if (value === undefined) return undefined;
  if (!isHexOfLength(value, 32)) throw new UsageError(`--${name} must be 0x followed by 64 hex digits`);
  return value;
}

function pair<A, B>(names: string, a: A | undefined, b: B | undefined): [A, B] | undefined {
  if (a === undefined && b === undefined) return undefined;
  if (a === undefined || b === undefined) throw new UsageError(`give both ${names}`);
  return [a, b];
}

const jsonReplacer = (_key: string, value: unknown) => (typeof value === "bigint" ? value.toString() : value);

/** Runs the command; returns the exit code. */
export async function runVerifyAuditLog(argv: readonly string[], io: CliIo = defaultIo): Promise<number> {
  let file: string;
  const options: VerifyOptions = {};
  let json = false;
  try {
    const { values, positionals } = parseArgs({
      args: [...argv],
      allowPositionals: true,
      strict: true,
      options: {
        "expect-count": { type: "string" },
        "expect-head": { type: "string" },
        "from-seq": { type: "string" },
        "from-head": { type: "string" },
        json: { type: "boolean", default: false },
        help: { type: "boolean", short: "h", default: false },
      },
    });
    if (values.help) {
      io.out(VERIFY_USAGE);
      return EXIT_OK;
    }
    if (positionals.length !== 1) throw new UsageError("expected exactly one export file");
    file = positionals[0]!;
    json = values.json;
    const expected = pair(
      "--expect-count and --expect-head",
      uint64Flag("expect-count", values["expect-count"]),
      headFlag("expect-head", values["expect-head"]),
    );
    const from = pair(
      "--from-seq and --from-head",
      uint64Flag("from-seq", values["from-seq"]),
      headFlag("from-head", values["from-head"]),
    );
    if (expected) options.expected = { count: expected[0], head: expected[1] };
    if (from) options.from = { seq: from[0], head: from[1] };
  } catch (e) {
    // parseArgs throws TypeErrors with a readable message for unknown or malformed flags.
    io.err(`error: ${e instanceof Error ? e.message : String(e)}`);
    io.err("run with --help for usage");
    return EXIT_USAGE;
  }

  let text: string;
  try {
    text = await io.readFile(file);
  } catch (e) {
    const code = (e as { code?: string }).code;
    io.err(`error: cannot read ${file}${code ? ` (${code})` : ""}`);
    return EXIT_USAGE;
  }
  let parsedJson: unknown;
  try {
    parsedJson = JSON.parse(text);
  } catch (e) {
    io.err(`error: ${file} is not valid JSON: ${e instanceof Error ? e.message : String(e)}`);
    return EXIT_USAGE;
  }
  const exported = parseAuditLogExport(parsedJson);
  if (!exported.ok) {
    io.err(`error: ${file}: ${exported.error}`);
    return EXIT_USAGE;
  }
  // Flags win over the file's own anchors.
  const from = options.from ?? exported.value.from;
  const expected = options.expected ?? exported.value.expected;
  const result = verifyAuditChain(exported.value.events, {
    ...(from && { from }),
    ...(expected && { expected }),
  });

  if (json) {
    io.out(JSON.stringify(result, jsonReplacer));
  } else if (result.ok) {
    io.out(`ok: ${result.verified} events verified; count ${result.count}, head ${result.head}`);
    if (!result.anchored) {
      io.out(
        "note: no checkpoint given, so this proves the events agree with each other only; pass " +
          "--expect-count/--expect-head from AuditLog.checkpoint() to prove none is missing or altered",
      );
    }
  } else {
    const at = result.index === null ? "at the end" : `event #${result.index}`;
    io.out(`FAIL ${result.kind} at seq ${result.firstBadSeq} (${at}): ${result.detail}`);
  }
  return result.ok ? EXIT_OK : EXIT_CHAIN_BROKEN;
}
