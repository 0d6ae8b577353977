import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { EXIT_CHAIN_BROKEN, EXIT_OK, EXIT_USAGE } from "../../src/verifyCli.ts";
import { makeChain, toJson, toRawLog } from "../fixtures/chain.ts";
import { packageDir, repoRoot, run } from "../fixtures/process.ts";

const dir = mkdtempSync(join(tmpdir(), "verify-audit-log-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function file(name: string, content: unknown): string {
  const path = join(dir, name);
  writeFileSync(path, typeof content === "string" ? content : JSON.stringify(content));
  return path;
}

const events = makeChain(4);
const checkpoint = { count: "4", head: events[3]!.head };
const verify = (...args: string[]) => run(["scripts/verify-audit-log.ts", ...args]);

function expectNoStackTrace(r: { stdout: string; stderr: string }) {
  expect(`${r.stdout}${r.stderr}`).not.toMatch(/\n\s+at /);
}

describe("scripts/verify-audit-log.ts (as a process)", () => {
  it("verifies an anchored export of raw logs: exit 0", async () => {
    const r = await verify(file("ok.json", { checkpoint, logs: events.map((e) => toRawLog(e)) }));
    expect(r).toMatchObject({ code: EXIT_OK, stderr: "" });
    expect(r.stdout).toBe(`ok: 4 events verified; count 4, head ${events[3]!.head}\n`);
  });

  it("warns when there is no checkpoint, and takes one from flags", async () => {
    const path = file("plain.json", events.map(toJson));
    const plain = await verify(path);
    expect(plain.code).toBe(EXIT_OK);
    expect(plain.stdout).toMatch(/note: no checkpoint given/);
    const anchored = await verify(path, "--expect-count", "4", "--expect-head", events[3]!.head);
    expect(anchored.code).toBe(EXIT_OK);
    expect(anchored.stdout).not.toMatch(/note/);
  });

  it("reports the first fault: exit 1", async () => {
    const gap = await verify(
      file(
        "gap.json",
        [events[0], events[2], events[3]].map((e) => toJson(e!)),
      ),
    );
    expect(gap.code).toBe(EXIT_CHAIN_BROKEN);
    expect(gap.stdout).toBe("FAIL gap at seq 2 (event #1): seq 2 missing before event #1 (seq 3)\n");
    const tail = await verify(file("tail.json", { checkpoint, events: events.slice(0, 3).map(toJson) }));
    expect(tail.code).toBe(EXIT_CHAIN_BROKEN);
    expect(tail.stdout).toMatch(/^FAIL gap at seq 4 \(at the end\)/);
    expectNoStackTrace(tail);
  });

  it("prints JSON with --json, bigints as strings", async () => {
    const r = await verify(
      file("j.json", events.map(toJson)),
      "--json",
      "--from-seq",
      "0",
      "--from-head",
      events[0]!.head,
    );
    expect(r.code).toBe(EXIT_CHAIN_BROKEN);
    expect(JSON.parse(r.stdout)).toMatchObject({ ok: false, kind: "mismatch", firstBadSeq: "1", index: 0 });
  });

  it("refuses bad usage and bad input with one clear line: exit 2", async () => {
    const cases: [string[], RegExp][] = [
      [[], /expected exactly one export file/],
      [["a.json", "b.json"], /expected exactly one export file/],
      [["--bogus", "x.json"], /Unknown option '--bogus'/],
      [[join(dir, "missing.json")], /cannot read .*missing\.json \(ENOENT\)/],
      [[file("bad.json", "{not json")], /is not valid JSON/],
      [[file("obj.json", { nope: 1 })], /has no `events` \(or `logs`\) array/],
      [[file("e.json", []), "--expect-count", "4"], /give both --expect-count and --expect-head/],
      [
        [file("e2.json", []), "--expect-count=-1", "--expect-head", checkpoint.head],
        /--expect-count must be/,
      ],
      [[file("e3.json", []), "--from-seq", "1", "--from-head", "0x12"], /--from-head must be 0x/],
    ];
    for (const [args, message] of cases) {
      const r = await verify(...args);
      expect(r.code, args.join(" ")).toBe(EXIT_USAGE);
      expect(r.stdout).toBe("");
      expect(r.stderr).toMatch(message);
      expectNoStackTrace(r);
    }
  });

  it("prints help", async () => {
    const r = await verify("--help");
    expect(r.code).toBe(EXIT_OK);
    expect(r.stdout).toMatch(/^usage: verify-audit-log <export.json>/);
  });

  it("runs the README's example as written, from the repository root", async () => {
    const readme = readFileSync(join(packageDir, "README.md"), "utf8");
    const line = readme
      .split("\n")
      .find((l) => l.startsWith("node packages/contracts/scripts/verify-audit-log.ts"));
    expect(line).toBeDefined();
    const r = await run(line!.split(" ").slice(1), { cwd: repoRoot });
    expect(r.code).toBe(EXIT_OK);
    expect(r.stdout).toMatch(/^ok: 3 events verified; count 3, head 0x[0-9a-f]{64}\n$/);
  });
});
