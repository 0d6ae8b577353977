/**
 * `vitalstream init --signer-configs` with a real HSM: the consensus key is generated inside a
 * SoftHSM2 token (PKCS#11), never leaves it, and the validator process signs every proposal and
 * vote through it (behind the double-sign guard).
 */
import { type ChildProcess, execFile, spawn } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, describe, expect, it } from "vitest";
import { provisionPkcs11Key } from "../../packages/hsm/src/providers/pkcs11/index.ts";
import { findSoftHsm, SoftHsm } from "../../packages/hsm/test/fixtures/softhsm.ts";
import { BIN as BIN_DIR } from "./helpers.ts";

const run = promisify(execFile);
const BIN = join(BIN_DIR, "vitalstream.js");
const install = findSoftHsm();
const ci = process.env.CI === "true";

if ("missing" in install) {
  if (ci) throw new Error(`SoftHSM2 is required in CI: ${install.missing}`);
  console.warn(
    `skipped: PKCS#11 validator test needs SoftHSM2 (${install.missing}); apt-get install softhsm2`,
  );
}

const children: ChildProcess[] = [];
afterAll(() => {
  for (const c of children) if (c.exitCode === null) c.kill("SIGKILL");
});

describe.skipIf("missing" in install)("a validator whose key lives in a PKCS#11 token (SoftHSM2)", () => {
  it("init reads the public key from the HSM, and the node commits blocks signing through it", async () => {
    if ("missing" in install) return;
    const hsm = SoftHsm.create(install);
    const token = hsm.initToken("vs-validator");
    const signer = {
      provider: "pkcs11",
      library: hsm.library,
      tokenLabel: token.label,
      pinFile: token.pinFile,
      keyLabel: "consensus",
    };
    const key = await provisionPkcs11Key({ ...signer, algorithm: "ed25519" } as Parameters<
      typeof provisionPkcs11Key
    >[0]);
    const dir = mkdtempSync(join(tmpdir(), "vs-hsm-net-"));
    writeFileSync(join(dir, "signers.json"), JSON.stringify([signer]));
    const port = 27_000 + Math.floor(Math.random() * 3000);
    const env = { ...process.env, SOFTHSM2_CONF: hsm.confPath };
    const init = await run(
      process.execPath,
      [
        BIN,
        "init",
        "--dir",
        join(dir, "net"),
        "--signer-configs",
        join(dir, "signers.json"),
        "--rpc-base-port",
        String(port),
        "--p2p-base-port",
        String(port + 10_000),
      ],
      { env },
    );
    expect(init.stderr).toMatch(/reading the public key from pkcs11/);
    const genesis = JSON.parse(readFileSync(join(dir, "net/genesis.json"), "utf8"));
    expect(genesis.validators[0].publicKey).toBe(`0x${Buffer.from(key.publicKey).toString("hex")}`);
    const config = join(dir, "net/validator-0/config.json");
    expect(JSON.parse(readFileSync(config, "utf8")).signer.provider).toBe("pkcs11");

    const child = spawn(process.execPath, [BIN, "start", "--config", config], { env, stdio: "ignore" });
    children.push(child);
    const url = `http://127.0.0.1:${port}`;
    let height = 0;
    for (let i = 0; i < 300 && height < 3; i++) {
      try {
        height = ((await (await fetch(`${url}/consensus/status`)).json()) as { head: { height: number } })
          .head.height;
      } catch {}
      await new Promise((d) => setTimeout(d, 100));
    }
    expect(height).toBeGreaterThanOrEqual(3);
    const ready = (await (await fetch(`${url}/ready`)).json()) as {
      checks: { signer: { ok: boolean; detail: string } };
    };
    expect(ready.checks.signer.ok).toBe(true);
    expect(ready.checks.signer.detail).toMatch(/^pkcs11/);
    const cert = (await (
      await fetch(url, {
        method: "POST",
        body: JSON.stringify({
          jsonrpc: "2.0",
          id: 1,
          method: "vitalstream_getCommitCertificate",
          params: [2],
        }),
      })
    ).json()) as { result: { signatures: { publicKey: string }[] } };
    expect(cert.result.signatures[0]!.publicKey).toBe(genesis.validators[0].publicKey);
    const exited = new Promise((d) => child.once("exit", d));
    child.kill("SIGTERM");
    await exited;
    hsm.destroy();
  });
});
