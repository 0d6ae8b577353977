import { execFileSync, spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { runSimulation, type SimulationConfig } from "../../sim/simulation.ts";

const CLI = fileURLToPath(new URL("../../sim/cli.ts", import.meta.url));

describe("the simulator has teeth", () => {
  it("finds a safety violation in an engine whose locking rule is switched off", () => {
    const attack: Omit<SimulationConfig, "seed"> = {
      validators: 7,
      byzantine: 2,
      behaviours: ["lockAttack", "amnesia"],
      unsafeIgnoreLocks: true,
    };
    let found: number | null = null;
    for (let seed = 1; seed <= 400 && found === null; seed++) {
      const r = runSimulation({ ...attack, seed });
      if (!r.ok) {
        expect(r.violations[0]!.kind).toBe("agreement");
        found = seed;
      }
    }
    expect(found, "no violation within 400 seeds").not.toBeNull();
    // The same adversary, seed and network against the real engine: safe.
    expect(runSimulation({ ...attack, unsafeIgnoreLocks: false, seed: found! }).ok).toBe(true);
  });
});

describe("regressions found by 1000-seed sweeps", () => {
  it.each([
    // A vote lost for good: hosts re-gossiped only their own messages (fixed: relay verified votes).
    { validators: 4, byzantine: 1, seed: 10934 },
    // A regressing signature request after restart: the WAL held messages the engine had dropped.
    { validators: 10, byzantine: 0, seed: 20246 },
    // An incomplete proof of lock: hosts relayed others' valid-round prevotes but not their own.
    { validators: 4, byzantine: 1, seed: 30697 },
  ])("n=$validators byzantine=$byzantine seed $seed", (config) => {
    const r = runSimulation(config);
    expect(r.violations).toEqual([]);
  });
});

describe("determinism", () => {
  it("replays a seed byte for byte, and different seeds differ", () => {
    const a = runSimulation({ seed: 4242, validators: 7, byzantine: 2 });
    const b = runSimulation({ seed: 4242, validators: 7, byzantine: 2 });
    const c = runSimulation({ seed: 4243, validators: 7, byzantine: 2 });
    expect(a.traceDigest).toBe(b.traceDigest);
    expect(a.stats).toEqual(b.stats);
    expect(c.traceDigest).not.toBe(a.traceDigest);
  });
});

describe("with real Ed25519 signatures (node:crypto)", () => {
  it("keeps safety and liveness with a byzantine validator", () => {
    for (let seed = 1; seed <= 6; seed++) {
      const r = runSimulation({ seed, validators: 4, byzantine: 1, crypto: "ed25519" });
      expect(r.violations).toEqual([]);
      expect(r.stats.heights).toBeGreaterThanOrEqual(3);
    }
  });
});

describe("one validator", () => {
  it("commits alone, through crashes and restarts", () => {
    for (let seed = 1; seed <= 20; seed++) {
      const r = runSimulation({ seed, validators: 1, byzantine: 0 });
      expect(r.violations).toEqual([]);
      expect(r.stats.heights).toBeGreaterThan(3);
    }
  });
});

describe("npm run sim (the CLI, as a process)", () => {
  const node = process.execPath;

  it("prints a table per configuration and a closing count", () => {
    const out = execFileSync(node, [CLI, "--seeds", "5", "--validators", "4", "--byzantine", "0,max"], {
      encoding: "utf8",
    });
    expect(out).toMatch(/n\s+byz\s+seeds\s+passed\s+failed/);
    expect(out).toMatch(/^4\s+0\s+5\s+5\s+0/m);
    expect(out).toMatch(/^4\s+1\s+5\s+5\s+0/m);
    expect(out).toContain("10 passed, 0 failed");
  });

  it("prints a replay command for a failure, and the replay reproduces it", () => {
    const broken = spawnSync(
      node,
      [
        CLI,
        "--seeds",
        "60",
        "--validators",
        "7",
        "--byzantine",
        "2",
        "--behaviours",
        "lockAttack,amnesia",
        "--unsafe-ignore-locks",
      ],
      { encoding: "utf8" },
    );
    expect(broken.status).toBe(1);
    const replay = /replay: npm run sim -- (.*)/.exec(broken.stdout)?.[1];
    expect(replay).toBeDefined();
    const again = spawnSync(node, [CLI, ...replay!.split(" ")], { encoding: "utf8" });
    expect(again.status).toBe(1);
    expect(JSON.parse(again.stdout).violations[0].kind).toBe("agreement");
  });

  it("explains bad arguments without a stack trace", () => {
    const r = spawnSync(node, [CLI, "--validators", "4", "--byzantine", "2"], { encoding: "utf8" });
    expect(r.status).toBe(2);
    expect(r.stderr).toContain("more than n=4 tolerates");
    expect(r.stderr).not.toMatch(/\n\s+at /);
    const unknown = spawnSync(node, [CLI, "--frobnicate"], { encoding: "utf8" });
    expect(unknown.status).toBe(2);
    expect(unknown.stderr).toContain("Usage:");
  });
});
