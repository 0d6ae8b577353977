import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { parseRevocationList, RevocationList } from "../../src/revocation.ts";
import { hsmErrorOf } from "../compliance/signerCompliance.ts";
import { tempDir } from "../fixtures/local.ts";

const KEY = new Uint8Array(32).map((_, i) => i + 1);
const HEX = Buffer.from(KEY).toString("hex");

describe("revocation list", () => {
  it("accepts the seed's revoked_tokens.json shape, plain arrays, hex and base64 keys", () => {
    const forms = [
      JSON.stringify({ revoked_tokens: [HEX] }),
      JSON.stringify([Buffer.from(KEY).toString("base64")]),
      JSON.stringify({
        revoked: [{ publicKey: `0x${HEX}`, reason: "laptop stolen", revokedAt: "2026-11-01T00:00:00Z" }],
      }),
    ];
    for (const text of forms) {
      const list = RevocationList.fromEntries(parseRevocationList(text));
      expect(list.isRevoked({ publicKey: KEY })).toBe(true);
      expect(list.isRevoked({ publicKey: new Uint8Array(32) })).toBe(false);
    }
    const byId = RevocationList.fromEntries(
      parseRevocationList(JSON.stringify(["arn:aws:kms:eu-west-1:1:key/abc"])),
    );
    expect(byId.isRevoked({ keyId: "arn:aws:kms:eu-west-1:1:key/abc" })).toBe(true);
    expect(byId.isRevoked({ keyId: "other" })).toBe(false);
  });

  it("names what is wrong with a bad file instead of treating it as empty", async () => {
    for (const [text, fragment] of [
      ["{ nope", "not valid JSON"],
      ['{"other": []}', '"revoked" array'],
      ["[42]", "entry 0"],
      ['[{"reason": "x"}]', "neither keyId nor publicKey"],
      ['[{"publicKey": "zz"}]', "hex or base64"],
    ] as const) {
      const e = await hsmErrorOf(async () => parseRevocationList(text));
      expect(e.code).toBe("HSM_INVALID_CONFIG");
      expect(e.message).toContain(fragment);
    }
    const e = await hsmErrorOf(async () => RevocationList.load(join(tempDir(), "missing.json")));
    expect(e.message).toContain("cannot read revocation list");
  });

  it("is reloaded when the file changes, and keeps the last good list if the new one is broken", async () => {
    const path = join(tempDir(), "revoked_tokens.json");
    writeFileSync(path, "[]");
    let reloads = 0;
    const list = RevocationList.load(path, { watch: true, onReload: () => reloads++ });
    expect(list.isRevoked({ publicKey: KEY })).toBe(false);
    writeFileSync(path, JSON.stringify([HEX]));
    await expect.poll(() => list.isRevoked({ publicKey: KEY }), { timeout: 5000 }).toBe(true);
    expect(reloads).toBeGreaterThan(0);
    writeFileSync(path, "{ broken");
    await expect.poll(() => list.lastError?.code, { timeout: 5000 }).toBe("HSM_INVALID_CONFIG");
    expect(list.isRevoked({ publicKey: KEY })).toBe(true);
    list.close();
  });
});
