/**
 * `npm run sim` in process: argument checking, the table, JSON output, progress and replays.
 * simulator.test.ts runs the same CLI as a real process; these cover what an operator mistypes.
 */
import { describe, expect, it } from "vitest";
import { main } from "../../sim/cli.ts";
import { BYZANTINE_BEHAVIOURS } from "../../sim/scenario.ts";

function run(...argv: string[]) {
  const out: string[] = [];
  const err: string[] = [];
  const code = main(argv, { out: (line) => out.push(line), err: (text) => err.push(text) });
  return { code, stdout: out.join("\n"), stderr: err.join("") };
}

/** A seed that breaks the engine with its locking rule off (see "the simulator has teeth"). */
const BROKEN = [
  "--validators",
  "7",
  "--byzantine",
  "2",
  "--behaviours",
  "lockAttack,amnesia",
  "--unsafe-ignore-locks",
];
const BROKEN_SEED = "37";

describe("npm run sim: bad arguments exit 2 with the reason and the usage", () => {
  it.each([
    [["--seeds", "0"], "--seeds must be between 1 and 1000000, got 0"],
    [["--seeds", "1000001"], "--seeds must be between 1 and 1000000, got 1000001"],
    [["--seeds", "ten"], '--seeds must be a whole number, got "ten"'],
    [["--seeds=-5"], '--seeds must be a whole number, got "-5"'],
    [["--seeds", "2.5"], '--seeds must be a whole number, got "2.5"'],
    [["--first-seed", "4294967296"], "--first-seed must be between 0 and 4294967295"],
    [["--seed", "4294967296"], "--seed must be between 0 and 4294967295"],
    [["--validators", "0"], "--validators must be between 1 and 100, got 0"],
    [["--validators", "101"], "--validators must be between 1 and 100, got 101"],
    [["--validators", " , ,"], "--validators needs at least one value"],
    [["--byzantine", ""], "--byzantine needs at least one value"],
    [["--byzantine", "some"], '--byzantine must be a whole number, got "some"'],
    [["--validators", "4,7", "--byzantine", "2"], "--byzantine 2 is more than n=4 tolerates (at most 1"],
    [["--validators", "3", "--byzantine", "1"], "--byzantine 1 is more than n=3 tolerates (at most 0"],
    [["--crypto", "rsa"], '--crypto must be hmac or ed25519, got "rsa"'],
    [["--behaviours", "lockAttack,bribery"], 'unknown behaviour "bribery"; known: '],
    [["--frobnicate"], "Unknown option '--frobnicate'"],
    [["--seeds"], "--seeds <value>' argument missing"],
  ])("%j", (argv, reason) => {
    const r = run(...argv);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe("");
    expect(r.stderr).toContain(`sim: `);
    expect(r.stderr).toContain(reason);
    expect(r.stderr).toContain("Usage: npm run sim -- [options]");
  });

  it("lists every byzantine behaviour in the usage and in the unknown-behaviour message", () => {
    const r = run("--behaviours", "nope");
    const list = BYZANTINE_BEHAVIOURS.join(", ");
    expect(r.stderr).toContain(`known: ${list}`);
    expect(r.stderr.split(list).length - 1).toBe(2);
  });
});

describe("npm run sim: output", () => {
  it("--help prints the usage and exits 0 without running anything", () => {
    for (const flag of ["--help", "-h"]) {
      const r = run(flag, "--seeds", "not checked");
      expect(r.code).toBe(0);
      expect(r.stdout).toContain("--unsafe-ignore-locks");
      expect(r.stderr).toBe("");
    }
  });

  it("prints one aligned row per distinct (n, byzantine): 'max' and its number are one row", () => {
    const r = run("--seeds", "3", "--first-seed", "11", "--validators", "1,4", "--byzantine", "0,max");
    expect(r.code).toBe(0);
    const lines = r.stdout.split("\n");
    const [header, ...rows] = lines.slice(0, 4);
    expect(header).toMatch(/^n\s+byz\s+seeds\s+passed\s+failed\s+heights\/run\s+max round/);
    // For n=1, "max" is 0: one row, not two.
    expect(rows).toHaveLength(3);
    expect(rows[0]).toMatch(/^1\s+0\s+3\s+3\s+0\s/);
    expect(rows[1]).toMatch(/^4\s+0\s+3\s+3\s+0\s/);
    expect(rows[2]).toMatch(/^4\s+1\s+3\s+3\s+0\s/);
    // Every row is as wide as the header: the columns line up.
    for (const row of rows) expect(row!.length).toBe(header!.length);
    expect(lines.at(-1)).toBe("9 passed, 0 failed");
    const dedup = run("--seeds", "1", "--validators", "4", "--byzantine", "1,max,1", "--json");
    expect(JSON.parse(dedup.stdout).map((row: { byzantine: number }) => row.byzantine)).toEqual([1]);
  });

  it("--json prints the rows as JSON, with the seeds counted per configuration", () => {
    const r = run("--seeds", "2", "--validators", "4", "--byzantine", "max", "--json");
    expect(r.code).toBe(0);
    const rows = JSON.parse(r.stdout);
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({
      validators: 4,
      byzantine: 1,
      seeds: 2,
      passed: 2,
      failed: 0,
      failures: [],
    });
    expect(rows[0].heightsPerRun).toBeGreaterThan(0);
    expect(rows[0].messagesPerHeight).toBeGreaterThan(0);
    expect(r.stderr).toBe("");
  });

  it("reports progress on stderr every 10% for 50 seeds or more, never 100%", () => {
    const r = run("--seeds", "50", "--validators", "1", "--byzantine", "0");
    expect(r.code).toBe(0);
    const progress = r.stderr.trimEnd().split("\n");
    expect(progress).toEqual(
      [10, 20, 30, 40, 50, 60, 70, 80, 90].map((pct) => `  n=1 byzantine=0: ${pct}% (${pct / 2}/50 seeds)`),
    );
    expect(r.stdout).toContain("50 passed, 0 failed");
    // Not with --json: stderr stays quiet for whoever parses stdout.
    expect(run("--seeds", "50", "--validators", "1", "--byzantine", "0", "--json").stderr).toBe("");
  });

  it("--seed replays one seed as JSON; with several configurations it says it uses the first", () => {
    const one = run("--seed", "5", "--validators", "4", "--byzantine", "1");
    expect(one.code).toBe(0);
    expect(one.stderr).toBe("");
    const result = JSON.parse(one.stdout);
    expect(result).toMatchObject({
      ok: true,
      violations: [],
      config: { seed: 5, validators: 4, byzantine: 1 },
    });
    const several = run("--seed", "5", "--validators", "4,7", "--byzantine", "1");
    expect(several.stderr).toContain("using the first of --validators/--byzantine");
    expect(JSON.parse(several.stdout).traceDigest).toBe(result.traceDigest);
  });

  it("a failing seed exits 1 and prints a replay command that reproduces the same violation", () => {
    const sweep = run("--seeds", "1", "--first-seed", BROKEN_SEED, ...BROKEN);
    expect(sweep.code).toBe(1);
    expect(sweep.stdout).toMatch(new RegExp(`FAILED seed ${BROKEN_SEED}: agreement: .* \\(at \\d+ ms\\)`));
    expect(sweep.stdout).toContain("0 passed, 1 failed");
    const replay = /replay: npm run sim -- (.*)/.exec(sweep.stdout)?.[1];
    expect(replay).toBe(
      `--validators 7 --byzantine 2 --seed ${BROKEN_SEED} --behaviours lockAttack,amnesia --unsafe-ignore-locks`,
    );
    const again = run(...replay!.split(" "));
    expect(again.code).toBe(1);
    const result = JSON.parse(again.stdout);
    expect(result.ok).toBe(false);
    expect(result.violations[0].kind).toBe("agreement");
    // The same seed against the real engine (locking rule on) is safe.
    const safe = run("--seed", BROKEN_SEED, ...BROKEN.slice(0, -1));
    expect(safe.code).toBe(0);
  });

  it("runs with real Ed25519 signatures when asked", () => {
    const r = run("--seeds", "1", "--validators", "1", "--byzantine", "0", "--crypto", "ed25519", "--json");
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)[0]).toMatchObject({ seeds: 1, passed: 1 });
  });
});
