import { spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { closeSync, openSync, readFileSync, writeSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { createGuardedSigner, type GuardedSigner } from "../../src/guard/doubleSignGuard.ts";
import { createLocalSigner } from "../../src/providers/local/signer.ts";
import { verifySignature } from "../../src/signature.ts";
import { hsmErrorOf } from "../compliance/signerCompliance.ts";
import { localKeystore, tempDir } from "../fixtures/local.ts";

const CHILD = fileURLToPath(new URL("../fixtures/guardChild.ts", import.meta.url));

async function setup(journalPath = join(tempDir("guard-"), "journal.jsonl")) {
  const ks = localKeystore("ed25519");
  const signer = await createLocalSigner({
    provider: "local",
    keystorePath: ks.keystorePath,
    passphraseFile: ks.passphraseFile,
  });
  const open = (path = journalPath) => createGuardedSigner(signer, { journalPath: path });
  return { ks, signer, journalPath, open, guard: await open() };
}

const req = (height: number, round: number, step: number, payload: Uint8Array, chainId = "chain-a") => ({
  chainId,
  height,
  round,
  step,
  payload,
});
const A = new TextEncoder().encode("prevote for A");
const B = new TextEncoder().encode("prevote for B");

describe("double-sign guard", () => {
  it("keeps its refusals across a restart (the journal is durable)", async () => {
    const { guard, open } = await setup();
    await guard.sign(req(10, 0, 2, A));
    await guard.close();
    const again = await open();
    expect((await hsmErrorOf(() => again.sign(req(10, 0, 2, B)))).code).toBe("HSM_DOUBLE_SIGN_REFUSED");
    expect((await hsmErrorOf(() => again.sign(req(9, 5, 3, B)))).code).toBe("HSM_DOUBLE_SIGN_REFUSED");
    expect((await again.sign(req(10, 0, 2, A))).length).toBe(64);
    expect(again.highWaterMark("chain-a")).toEqual({ height: 10, round: 0, step: 2 });
    expect(again.highWaterMark("chain-b")).toBeNull();
    expect((await again.sign(req(1, 0, 1, B, "chain-b"))).length).toBe(64); // chains are independent
  });

  it("allows an identical payload again even below the high-water mark (WAL replay)", async () => {
    const { guard } = await setup();
    await guard.sign(req(5, 0, 1, A));
    await guard.sign(req(5, 0, 2, B));
    await guard.sign(req(5, 0, 3, B));
    expect((await guard.sign(req(5, 0, 1, A))).length).toBe(64);
    expect((await hsmErrorOf(() => guard.sign(req(5, 0, 1, B)))).code).toBe("HSM_DOUBLE_SIGN_REFUSED");
  });

  it("serialises concurrent requests: of many conflicting payloads for one slot, exactly one is signed", async () => {
    const { guard } = await setup();
    const payloads = Array.from({ length: 25 }, () => randomBytes(40));
    const results = await Promise.allSettled(payloads.map((p) => guard.sign(req(3, 1, 2, p))));
    expect(results.filter((r) => r.status === "fulfilled")).toHaveLength(1);
    for (const r of results)
      if (r.status === "rejected") expect(r.reason.code).toBe("HSM_DOUBLE_SIGN_REFUSED");
  });

  it("tolerates a torn last line (a crash mid-write) and refuses a damaged journal", async () => {
    const { journalPath, guard, open } = await setup();
    await guard.sign(req(7, 0, 2, A));
    await guard.close();
    // A crash mid-write leaves part of a line where the next record goes (the file is preallocated).
    const used = () => readFileSync(journalPath).indexOf(0);
    const writeAt = (offset: number, text: string) => {
      const fd = openSync(journalPath, "r+");
      writeSync(fd, text, offset);
      closeSync(fd);
    };
    const end = used();
    writeAt(end, '{"c":"chain-a","h":7,"r":0,"s":3,"p":"ab');
    const reopened = await open();
    expect(reopened.highWaterMark("chain-a")).toEqual({ height: 7, round: 0, step: 2 });
    expect(used()).toBe(end); // the torn tail was zeroed
    await reopened.sign(req(7, 0, 3, B));
    await reopened.close();
    const text = readFileSync(journalPath).subarray(0, used()).toString("utf8");
    expect(text.endsWith("\n")).toBe(true);
    expect(text.trim().split("\n")).toHaveLength(3);
    // A damaged record in the middle is refused, by line.
    writeAt(text.indexOf("\n") + 1, "X");
    const e = await hsmErrorOf(() => open());
    expect(e.code).toBe("HSM_GUARD_STORE_FAILED");
    expect(e.message).toContain("line 2");
  });

  it("refuses a journal whose data continues after a zero byte (a record could be hidden)", async () => {
    const { journalPath, guard, open } = await setup();
    await guard.sign(req(1, 0, 1, A));
    await guard.close();
    const fd = openSync(journalPath, "r+");
    writeSync(fd, "x", 5000);
    closeSync(fd);
    expect((await hsmErrorOf(() => open())).message).toContain("followed by data");
  });

  it("refuses a journal that belongs to another key", async () => {
    const first = await setup();
    await first.guard.sign(req(1, 0, 1, A));
    const e = await hsmErrorOf(() => setup(first.journalPath));
    expect(e.code).toBe("HSM_GUARD_STORE_FAILED");
    expect(e.message).toContain("belongs to another key");
  });

  it("compacts the journal without forgetting the high-water mark", async () => {
    const ks = localKeystore("ed25519");
    const signer = await createLocalSigner({
      provider: "local",
      keystorePath: ks.keystorePath,
      passphraseFile: ks.passphraseFile,
    });
    const journalPath = join(tempDir(), "journal.jsonl");
    const guard = await createGuardedSigner(signer, { journalPath, compactAfter: 20 });
    for (let h = 1; h <= 30; h++) for (const s of [1, 2, 3]) await guard.sign(req(h, 0, s, randomBytes(8)));
    await guard.close();
    const used = readFileSync(journalPath).indexOf(0);
    expect(
      readFileSync(journalPath).subarray(0, used).toString("utf8").trim().split("\n").length,
    ).toBeLessThan(30);
    const again = await createGuardedSigner(signer, { journalPath });
    expect(again.highWaterMark("chain-a")).toEqual({ height: 30, round: 0, step: 3 });
    expect((await hsmErrorOf(() => again.sign(req(30, 0, 3, A)))).code).toBe("HSM_DOUBLE_SIGN_REFUSED");
  });
});

describe("signing-history interchange (moving a validator)", () => {
  it("exports, imports on a new machine, and keeps refusing there", async () => {
    const { guard, signer } = await setup();
    await guard.sign(req(20, 1, 2, A));
    const doc = JSON.parse(JSON.stringify(guard.exportHistory()));
    expect(doc.metadata).toMatchObject({
      interchange_format: "vitalstream.signing-history",
      interchange_format_version: "1",
    });
    expect(doc.data[0].signed[0]).toMatchObject({ chain_id: "chain-a", height: "20", round: "1", step: "2" });
    const moved = await createGuardedSigner(signer, { journalPath: join(tempDir(), "journal.jsonl") });
    expect(await moved.importHistory(doc)).toEqual({ imported: 1 });
    expect((await hsmErrorOf(() => moved.sign(req(20, 1, 2, B)))).code).toBe("HSM_DOUBLE_SIGN_REFUSED");
    expect((await hsmErrorOf(() => moved.sign(req(20, 0, 3, B)))).code).toBe("HSM_DOUBLE_SIGN_REFUSED");
    expect((await moved.sign(req(20, 1, 2, A))).length).toBe(64);
  });

  it("a slot two histories disagree on can never be signed", async () => {
    const { guard, signer } = await setup();
    await guard.sign(req(4, 0, 2, A));
    const doc = guard.exportHistory();
    const other = await createGuardedSigner(signer, { journalPath: join(tempDir(), "j") });
    await other.sign(req(4, 0, 2, B));
    await other.importHistory(doc);
    for (const p of [A, B])
      expect((await hsmErrorOf(() => other.sign(req(4, 0, 2, p)))).code).toBe("HSM_DOUBLE_SIGN_REFUSED");
  });

  it("refuses documents for another key and malformed documents by name", async () => {
    const a = await setup();
    const b = await setup();
    await a.guard.sign(req(1, 0, 1, A));
    const doc = a.guard.exportHistory();
    expect((await hsmErrorOf(() => b.guard.importHistory(doc))).code).toBe("HSM_GUARD_INTERCHANGE_INVALID");
    const bad = JSON.parse(JSON.stringify(doc));
    bad.data[0].signed[0].height = "-1";
    expect((await hsmErrorOf(() => a.guard.importHistory(bad))).message).toContain("decimal strings");
    expect((await hsmErrorOf(() => a.guard.importHistory({ hello: "world" }))).code).toBe(
      "HSM_GUARD_INTERCHANGE_INVALID",
    );
  });
});

describe("crash points (a real process killed with SIGKILL)", () => {
  function child(ks: ReturnType<typeof localKeystore>, journal: string, payload: Uint8Array, crash?: string) {
    return spawnSync(
      process.execPath,
      [
        CHILD,
        ks.keystorePath,
        ks.passphraseFile,
        journal,
        "42",
        "3",
        "2",
        Buffer.from(payload).toString("hex"),
      ],
      { encoding: "utf8", env: { ...process.env, VITALSTREAM_GUARD_CRASH_POINT: crash ?? "" } },
    );
  }

  it("killed between record and return: no signature left, and after restart the conflict is refused", async () => {
    const ks = localKeystore("ed25519");
    const journal = join(tempDir(), "journal.jsonl");
    const crashed = child(ks, journal, A, "after-record");
    expect(crashed.signal).toBe("SIGKILL");
    expect(crashed.stdout).not.toContain("SIGNATURE");
    const conflicting = child(ks, journal, B);
    expect(conflicting.status).not.toBe(0);
    expect(conflicting.stderr).toContain("HSM_DOUBLE_SIGN_REFUSED");
    const identical = child(ks, journal, A);
    expect(identical.status).toBe(0);
    const sig = Buffer.from(/SIGNATURE ([0-9a-f]+)/.exec(identical.stdout)![1]!, "hex");
    expect(verifySignature("ed25519", ks.publicKey, A, sig)).toBe(true);
  });

  it("killed before the record: nothing was promised, so the slot is still free", async () => {
    const ks = localKeystore("ed25519");
    const journal = join(tempDir(), "journal.jsonl");
    const crashed = child(ks, journal, A, "before-record");
    expect(crashed.signal).toBe("SIGKILL");
    expect(child(ks, journal, B).status).toBe(0);
  });
});

export type { GuardedSigner };
