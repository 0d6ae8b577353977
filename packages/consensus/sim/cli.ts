/**
 * `npm run sim -- --seeds 1000 [--validators 4,7,10] [--byzantine 0,max] [--seed S]`
 *
 * Runs the deterministic simulator over many seeds per configuration, prints a table per
 * configuration, and for every failure the exact command that replays it.
 */
import { parseArgs } from "node:util";
import { BYZANTINE_BEHAVIOURS, type ByzantineBehaviour, maxByzantine } from "./scenario.ts";
import { replayCommand, runSimulation, type SimulationConfig, type SimulationResult } from "./simulation.ts";

const USAGE = `Usage: npm run sim -- [options]

Runs the consensus engine under the seeded adversarial simulator.

Options:
  --seeds N               seeds per configuration (default 100)
  --first-seed S          first seed of the range (default 1)
  --validators LIST       validator counts, e.g. 4,7,10 (default 4,7,10)
  --byzantine LIST        byzantine counts per configuration; "max" is floor((n-1)/3) (default 0,max)
  --seed S                run one seed only and print its details (replay)
  --crypto hmac|ed25519   simulated MAC (fast, default) or real Ed25519 signatures
  --behaviours LIST       restrict byzantine validators to these behaviours:
                          ${BYZANTINE_BEHAVIOURS.join(", ")}
  --unsafe-ignore-locks   break the locking rule (shows the checkers catch it)
  --json                  print results as JSON
  -h, --help              this text
`;

class UsageError extends Error {}

function parseList(text: string, what: string): string[] {
  const items = text
    .split(",")
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
  if (items.length === 0) throw new UsageError(`--${what} needs at least one value`);
  return items;
}

function parseInteger(text: string, what: string, min: number, max = Number.MAX_SAFE_INTEGER): number {
  if (!/^\d+$/.test(text))
    throw new UsageError(`--${what} must be a whole number, got ${JSON.stringify(text)}`);
  const n = Number(text);
  if (n < min || n > max) throw new UsageError(`--${what} must be between ${min} and ${max}, got ${n}`);
  return n;
}

interface Plan {
  configs: { validators: number; byzantine: number }[];
  seeds: number[];
  base: Omit<SimulationConfig, "seed" | "validators" | "byzantine">;
  single: boolean;
  json: boolean;
}

function plan(argv: string[]): Plan | "help" {
  const { values } = parseArgs({
    args: argv,
    options: {
      seeds: { type: "string" },
      "first-seed": { type: "string" },
      validators: { type: "string" },
      byzantine: { type: "string" },
      seed: { type: "string" },
      crypto: { type: "string" },
      behaviours: { type: "string" },
      "unsafe-ignore-locks": { type: "boolean" },
      json: { type: "boolean" },
      help: { type: "boolean", short: "h" },
    },
    strict: true,
  });
  if (values.help) return "help";
  const validators = parseList(values.validators ?? "4,7,10", "validators").map((v) =>
    parseInteger(v, "validators", 1, 100),
  );
  const byzantineSpec = parseList(values.byzantine ?? "0,max", "byzantine");
  const configs: Plan["configs"] = [];
  for (const n of validators) {
    const counts = new Set<number>();
    for (const b of byzantineSpec) {
      const count = b === "max" ? maxByzantine(n) : parseInteger(b, "byzantine", 0);
      if (count > maxByzantine(n)) {
        throw new UsageError(
          `--byzantine ${count} is more than n=${n} tolerates (at most ${maxByzantine(n)}, n >= 3f + 1)`,
        );
      }
      counts.add(count);
    }
    for (const b of counts) configs.push({ validators: n, byzantine: b });
  }
  const crypto = values.crypto ?? "hmac";
  if (crypto !== "hmac" && crypto !== "ed25519")
    throw new UsageError(`--crypto must be hmac or ed25519, got ${JSON.stringify(crypto)}`);
  let behaviours: ByzantineBehaviour[] | undefined;
  if (values.behaviours !== undefined) {
    behaviours = parseList(values.behaviours, "behaviours").map((b) => {
      if (!(BYZANTINE_BEHAVIOURS as readonly string[]).includes(b)) {
        throw new UsageError(
          `unknown behaviour ${JSON.stringify(b)}; known: ${BYZANTINE_BEHAVIOURS.join(", ")}`,
        );
      }
      return b as ByzantineBehaviour;
    });
  }
  const single = values.seed !== undefined;
  const seeds = single
    ? [parseInteger(values.seed!, "seed", 0, 2 ** 32 - 1)]
    : (() => {
        const count = parseInteger(values.seeds ?? "100", "seeds", 1, 1_000_000);
        const first = parseInteger(values["first-seed"] ?? "1", "first-seed", 0, 2 ** 32 - 1);
        return Array.from({ length: count }, (_, i) => (first + i) >>> 0);
      })();
  const base: Plan["base"] = { crypto };
  if (behaviours) base.behaviours = behaviours;
  if (values["unsafe-ignore-locks"]) base.unsafeIgnoreLocks = true;
  return { configs, seeds, base, single, json: values.json === true };
}

interface Row {
  validators: number;
  byzantine: number;
  seeds: number;
  passed: number;
  failed: number;
  heightsPerRun: number;
  maxRound: number;
  messagesPerHeight: number;
  evidence: number;
  syncCommits: number;
  livenessP50Ms: number | null;
  wallSeconds: number;
  failures: { seed: number; violation: string; replay: string }[];
}

function percentile(values: number[], p: number): number | null {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  return Math.round(sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!);
}

function summarise(config: Plan["configs"][number], results: SimulationResult[], wallSeconds: number): Row {
  const failed = results.filter((r) => !r.ok);
  const sum = (f: (r: SimulationResult) => number) => results.reduce((s, r) => s + f(r), 0);
  return {
    ...config,
    seeds: results.length,
    passed: results.length - failed.length,
    failed: failed.length,
    heightsPerRun: Math.round((sum((r) => r.stats.heights) / results.length) * 10) / 10,
    maxRound: Math.max(...results.map((r) => r.stats.maxCommitRound)),
    messagesPerHeight: Math.round(
      sum((r) => r.stats.messagesSent) /
        Math.max(
          1,
          sum((r) => r.stats.heights),
        ),
    ),
    evidence: sum((r) => r.stats.evidence),
    syncCommits: sum((r) => r.stats.commitsViaSync),
    livenessP50Ms: percentile(
      results.flatMap((r) => (r.stats.livenessMs === null ? [] : [r.stats.livenessMs])),
      50,
    ),
    wallSeconds: Math.round(wallSeconds * 10) / 10,
    failures: failed.map((r) => ({
      seed: r.config.seed,
      violation: `${r.violations[0]!.kind}: ${r.violations[0]!.detail} (at ${Math.round(r.violations[0]!.atMs)} ms)`,
      replay: replayCommand(r.config),
    })),
  };
}

/** Where the CLI writes: the process streams, or a test's buffers. */
export interface CliOutput {
  out(line: string): void;
  err(text: string): void;
}

const processOutput: CliOutput = {
  out: (line) => console.log(line),
  err: (text) => process.stderr.write(text),
};

function printTable(rows: Row[], io: CliOutput): void {
  const header = [
    "n",
    "byz",
    "seeds",
    "passed",
    "failed",
    "heights/run",
    "max round",
    "msgs/height",
    "evidence",
    "sync commits",
    "liveness p50 ms",
    "wall s",
  ];
  const lines = rows.map((r) =>
    [
      r.validators,
      r.byzantine,
      r.seeds,
      r.passed,
      r.failed,
      r.heightsPerRun,
      r.maxRound,
      r.messagesPerHeight,
      r.evidence,
      r.syncCommits,
      r.livenessP50Ms ?? "-",
      r.wallSeconds,
    ].map(String),
  );
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i]!.length)));
  const fmt = (cells: string[]) => cells.map((c, i) => c.padStart(widths[i]!)).join("  ");
  io.out(fmt(header));
  for (const l of lines) io.out(fmt(l));
}

/** Runs the CLI over `argv` (without node and script) and returns the exit code. */
export function main(argv: string[], io: CliOutput = processOutput): number {
  let p: Plan | "help";
  try {
    p = plan(argv);
  } catch (e) {
    const message =
      e instanceof UsageError || (e as { code?: string }).code?.startsWith("ERR_PARSE_ARGS")
        ? (e as Error).message
        : String(e);
    io.err(`sim: ${message}\n\n${USAGE}\n`);
    return 2;
  }
  if (p === "help") {
    io.out(USAGE);
    return 0;
  }
  if (p.single) {
    const cfg = p.configs[0]!;
    if (p.configs.length > 1)
      io.err("sim: --seed replays one configuration; using the first of --validators/--byzantine\n");
    const result = runSimulation({ ...p.base, ...cfg, seed: p.seeds[0]! });
    io.out(JSON.stringify(result, null, 2));
    return result.ok ? 0 : 1;
  }
  const rows: Row[] = [];
  for (const cfg of p.configs) {
    const started = performance.now();
    const results: SimulationResult[] = [];
    let nextReport = 10;
    for (const seed of p.seeds) {
      results.push(runSimulation({ ...p.base, ...cfg, seed }));
      const pct = Math.floor((results.length / p.seeds.length) * 100);
      if (!p.json && p.seeds.length >= 50 && pct >= nextReport && pct < 100) {
        io.err(
          `  n=${cfg.validators} byzantine=${cfg.byzantine}: ${pct}% (${results.length}/${p.seeds.length} seeds)\n`,
        );
        nextReport = pct + 10;
      }
    }
    rows.push(summarise(cfg, results, (performance.now() - started) / 1000));
  }
  if (p.json) {
    io.out(JSON.stringify(rows, null, 2));
  } else {
    printTable(rows, io);
    const failures = rows.flatMap((r) => r.failures);
    for (const f of failures.slice(0, 20))
      io.out(`\nFAILED seed ${f.seed}: ${f.violation}\n  replay: ${f.replay}`);
    if (failures.length > 20) io.out(`\n... and ${failures.length - 20} more failures`);
    const total = rows.reduce((s, r) => s + r.seeds, 0);
    io.out(`\n${total - failures.length} passed, ${failures.length} failed`);
  }
  return rows.some((r) => r.failed > 0) ? 1 : 0;
}

// Imported by tests, which call main() with their own output; run only as `node sim/cli.ts`.
if (import.meta.main) process.exitCode = main(process.argv.slice(2));
