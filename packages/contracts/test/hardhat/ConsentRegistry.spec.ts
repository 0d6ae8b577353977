/// <reference types="mocha" />
import type { HardhatEthersSigner } from "@nomicfoundation/hardhat-ethers/signers.js";
import { expect } from "chai";
import { decodeConsentEvent } from "../../src/events.ts";
import {
  type AuditLogContract,
  type ConsentRegistryContract,
  deployAuditLog,
  deployConsentRegistry,
  ethers,
  id,
  latestTimestamp,
  mineAt,
  setNextTimestamp,
} from "../fixtures/hardhat.ts";

const PATIENT = id("patient-pseudonym-42");
const OTHER_PATIENT = id("patient-pseudonym-43");
const TREATMENT = id("purpose.treatment");
const RESEARCH = id("purpose.research");
const EVIDENCE = id("signed-consent-form-1");
const REVOCATION = id("signed-revocation-1");
const ZERO = ethers.ZeroHash;

describe("ConsentRegistry", () => {
  let admin: HardhatEthersSigner;
  let recorder: HardhatEthersSigner;
  let hospital: HardhatEthersSigner;
  let lab: HardhatEthersSigner;
  let registry: ConsentRegistryContract;
  let RECORDER_ROLE: string;

  beforeEach(async () => {
    [admin, recorder, hospital, lab] = (await ethers.getSigners()) as [
      HardhatEthersSigner,
      HardhatEthersSigner,
      HardhatEthersSigner,
      HardhatEthersSigner,
    ];
    registry = await deployConsentRegistry(admin.address);
    RECORDER_ROLE = await registry.RECORDER_ROLE();
    await registry.grantRole(RECORDER_ROLE, recorder.address);
  });

  const asRecorder = () => registry.connect(recorder);

  it("refuses a zero admin and gives the admin role to the deployer's choice", async () => {
    const factory = await ethers.getContractFactory("ConsentRegistry");
    await expect(factory.deploy(ethers.ZeroAddress)).to.be.revertedWithCustomError(factory, "ZeroAdmin");
    expect(await registry.hasRole(ZERO, admin.address)).to.equal(true);
    expect(RECORDER_ROLE).to.equal(id("CONSENT_RECORDER_ROLE"));
  });

  it("lets only recorders grant and revoke", async () => {
    await expect(registry.connect(hospital).grantConsent(PATIENT, hospital.address, TREATMENT, 0, EVIDENCE))
      .to.be.revertedWithCustomError(registry, "AccessControlUnauthorizedAccount")
      .withArgs(hospital.address, RECORDER_ROLE);
    await asRecorder().grantConsent(PATIENT, hospital.address, TREATMENT, 0, EVIDENCE);
    await expect(registry.connect(admin).revokeConsent(PATIENT, hospital.address, TREATMENT, REVOCATION))
      .to.be.revertedWithCustomError(registry, "AccessControlUnauthorizedAccount")
      .withArgs(admin.address, RECORDER_ROLE);
  });

  it("records a grant with an event and answers hasConsent for that purpose and organisation only", async () => {
    const t = (await latestTimestamp()) + 5n;
    await setNextTimestamp(t);
    expect(
      await asRecorder().grantConsent.staticCall(PATIENT, hospital.address, TREATMENT, 0, EVIDENCE),
    ).to.equal(1n);
    await expect(asRecorder().grantConsent(PATIENT, hospital.address, TREATMENT, 0, EVIDENCE))
      .to.emit(registry, "ConsentGranted")
      .withArgs(PATIENT, hospital.address, TREATMENT, 0, EVIDENCE, 1, recorder.address);
    expect(await registry.hasConsent(PATIENT, hospital.address, TREATMENT)).to.equal(true);
    expect(await registry.hasConsent(PATIENT, hospital.address, RESEARCH)).to.equal(false);
    expect(await registry.hasConsent(PATIENT, lab.address, TREATMENT)).to.equal(false);
    expect(await registry.hasConsent(OTHER_PATIENT, hospital.address, TREATMENT)).to.equal(false);
    const c = await registry.getConsent(PATIENT, hospital.address, TREATMENT);
    expect([c.grantedAt, c.validUntil, c.revokedAt, c.version]).to.deep.equal([t, 0n, 0n, 1n]);
  });

  it("derives the storage key as documented", async () => {
    const expected = ethers.keccak256(
      ethers.AbiCoder.defaultAbiCoder().encode(
        ["bytes32", "address", "bytes32"],
        [PATIENT, hospital.address, TREATMENT],
      ),
    );
    expect(await registry.consentKey(PATIENT, hospital.address, TREATMENT)).to.equal(expected);
  });

  it("expires a grant at validUntil (exclusive)", async () => {
    const now = await latestTimestamp();
    const validUntil = now + 1000n;
    await asRecorder().grantConsent(PATIENT, hospital.address, RESEARCH, validUntil, EVIDENCE);
    await mineAt(validUntil - 1n);
    expect(await registry.hasConsent(PATIENT, hospital.address, RESEARCH)).to.equal(true);
    await mineAt(validUntil);
    expect(await registry.hasConsent(PATIENT, hospital.address, RESEARCH)).to.equal(false);
  });

  it("refuses an expiry that is not in the future", async () => {
    const t = (await latestTimestamp()) + 10n;
    await setNextTimestamp(t);
    await expect(asRecorder().grantConsent(PATIENT, hospital.address, TREATMENT, t, EVIDENCE))
      .to.be.revertedWithCustomError(registry, "ExpiryNotInFuture")
      .withArgs(t, t);
    await setNextTimestamp(t + 1n);
    await expect(asRecorder().grantConsent(PATIENT, hospital.address, TREATMENT, 1, EVIDENCE))
      .to.be.revertedWithCustomError(registry, "ExpiryNotInFuture")
      .withArgs(1, t + 1n);
  });

  it("renews a consent in force, counting the version up", async () => {
    await asRecorder().grantConsent(PATIENT, hospital.address, TREATMENT, 0, EVIDENCE);
    const until = (await latestTimestamp()) + 3600n;
    await expect(asRecorder().grantConsent(PATIENT, hospital.address, TREATMENT, until, id("renewal")))
      .to.emit(registry, "ConsentGranted")
      .withArgs(PATIENT, hospital.address, TREATMENT, until, id("renewal"), 2, recorder.address);
    expect((await registry.getConsent(PATIENT, hospital.address, TREATMENT)).validUntil).to.equal(until);
  });

  it("records a revocation with an event; a later grant reinstates the consent", async () => {
    await asRecorder().grantConsent(PATIENT, hospital.address, TREATMENT, 0, EVIDENCE);
    const t = (await latestTimestamp()) + 7n;
    await setNextTimestamp(t);
    expect(
      await asRecorder().revokeConsent.staticCall(PATIENT, hospital.address, TREATMENT, REVOCATION),
    ).to.equal(2n);
    await expect(asRecorder().revokeConsent(PATIENT, hospital.address, TREATMENT, REVOCATION))
      .to.emit(registry, "ConsentRevoked")
      .withArgs(PATIENT, hospital.address, TREATMENT, REVOCATION, 2, recorder.address);
    expect(await registry.hasConsent(PATIENT, hospital.address, TREATMENT)).to.equal(false);
    expect((await registry.getConsent(PATIENT, hospital.address, TREATMENT)).revokedAt).to.equal(t);

    await expect(asRecorder().grantConsent(PATIENT, hospital.address, TREATMENT, 0, id("new-form")))
      .to.emit(registry, "ConsentGranted")
      .withArgs(PATIENT, hospital.address, TREATMENT, 0, id("new-form"), 3, recorder.address);
    const c = await registry.getConsent(PATIENT, hospital.address, TREATMENT);
    expect([c.revokedAt, c.version]).to.deep.equal([0n, 3n]);
    expect(await registry.hasConsent(PATIENT, hospital.address, TREATMENT)).to.equal(true);
  });

  it("refuses to revoke what was never granted or is already revoked", async () => {
    await expect(asRecorder().revokeConsent(PATIENT, hospital.address, TREATMENT, REVOCATION))
      .to.be.revertedWithCustomError(registry, "NotGranted")
      .withArgs(PATIENT, hospital.address, TREATMENT);
    await asRecorder().grantConsent(PATIENT, hospital.address, TREATMENT, 0, EVIDENCE);
    await asRecorder().revokeConsent(PATIENT, hospital.address, TREATMENT, REVOCATION);
    await expect(asRecorder().revokeConsent(PATIENT, hospital.address, TREATMENT, REVOCATION))
      .to.be.revertedWithCustomError(registry, "NotGranted")
      .withArgs(PATIENT, hospital.address, TREATMENT);
  });

  it("revokes an expired grant, making the withdrawal explicit", async () => {
    const until = (await latestTimestamp()) + 100n;
    await asRecorder().grantConsent(PATIENT, hospital.address, TREATMENT, until, EVIDENCE);
    await mineAt(until + 1n);
    await expect(asRecorder().revokeConsent(PATIENT, hospital.address, TREATMENT, REVOCATION)).to.emit(
      registry,
      "ConsentRevoked",
    );
  });

  it("refuses zero ids and zero evidence, on grant and on revoke", async () => {
    const org = hospital.address;
    const cases: [string, () => Promise<unknown>, () => Promise<unknown>][] = [
      [
        "ZeroPatient",
        () => asRecorder().grantConsent(ZERO, org, TREATMENT, 0, EVIDENCE),
        () => asRecorder().revokeConsent(ZERO, org, TREATMENT, EVIDENCE),
      ],
      [
        "ZeroOrganisation",
        () => asRecorder().grantConsent(PATIENT, ethers.ZeroAddress, TREATMENT, 0, EVIDENCE),
        () => asRecorder().revokeConsent(PATIENT, ethers.ZeroAddress, TREATMENT, EVIDENCE),
      ],
      [
        "ZeroPurpose",
        () => asRecorder().grantConsent(PATIENT, org, ZERO, 0, EVIDENCE),
        () => asRecorder().revokeConsent(PATIENT, org, ZERO, EVIDENCE),
      ],
      [
        "ZeroEvidence",
        () => asRecorder().grantConsent(PATIENT, org, TREATMENT, 0, ZERO),
        () => asRecorder().revokeConsent(PATIENT, org, TREATMENT, ZERO),
      ],
    ];
    for (const [error, grant, revoke] of cases) {
      await expect(grant()).to.be.revertedWithCustomError(registry, error);
      await expect(revoke()).to.be.revertedWithCustomError(registry, error);
    }
  });

  it("keeps the record: the logs replay every change with gapless versions", async () => {
    await asRecorder().grantConsent(PATIENT, hospital.address, TREATMENT, 0, EVIDENCE);
    await asRecorder().revokeConsent(PATIENT, hospital.address, TREATMENT, REVOCATION);
    await asRecorder().grantConsent(PATIENT, hospital.address, TREATMENT, 0, id("again"));
    const logs = await ethers.provider.getLogs({ address: await registry.getAddress(), fromBlock: 0 });
    const changes = logs.map(decodeConsentEvent).filter((r) => r.ok);
    expect(changes.map((r) => (r.ok ? [r.value.kind, r.value.version] : []))).to.deep.equal([
      ["ConsentGranted", 1n],
      ["ConsentRevoked", 2n],
      ["ConsentGranted", 3n],
    ]);
    const first = changes[0]!;
    expect(first.ok && first.value).to.deep.equal({
      kind: "ConsentGranted",
      patient: PATIENT,
      organisation: hospital.address,
      purpose: TREATMENT,
      validUntil: 0n,
      evidenceHash: EVIDENCE,
      version: 1n,
      recorder: recorder.address,
    });
  });

  describe("with AuditLog", () => {
    let log: AuditLogContract;

    beforeEach(async () => {
      log = await deployAuditLog(admin.address);
      await log.grantRole(await log.WRITER_ROLE(), hospital.address);
    });

    it("a writer checks consent before acting and records both access and refusal", async () => {
      const ACCESS = id("record.read");
      const DENIED = id("record.read.denied");
      await asRecorder().grantConsent(PATIENT, hospital.address, TREATMENT, 0, EVIDENCE);

      const writerLog = log.connect(hospital);
      const act = async (purpose: string) => {
        const allowed = await registry.hasConsent(PATIENT, hospital.address, purpose);
        await writerLog.record(PATIENT, allowed ? ACCESS : DENIED, purpose);
        return allowed;
      };
      expect(await act(TREATMENT)).to.equal(true);
      expect(await act(RESEARCH)).to.equal(false);
      expect((await log.eventAt(1)).action).to.equal(ACCESS);
      expect((await log.eventAt(2)).action).to.equal(DENIED);
    });
  });
});
