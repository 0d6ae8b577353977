/// <reference types="mocha" />
import type { HardhatEthersSigner } from "@nomicfoundation/hardhat-ethers/signers.js";
import { expect } from "chai";
import { AUDIT_EVENT_TOPIC, decodeAuditEvent } from "../../src/events.ts";
import { chainHead, foldHeads, GENESIS_HEAD } from "../../src/hashChain.ts";
import type { Hex } from "../../src/hex.ts";
import { verifyAuditChain } from "../../src/verify.ts";
import {
  type AuditLogContract,
  deployAuditLog,
  ethers,
  id,
  latestTimestamp,
  setNextTimestamp,
} from "../fixtures/hardhat.ts";

const READ = id("record.read");
const UPDATE = id("record.update");
const subject = (n: number): string => id(`patient-record-${n}`);
const dataHash = (n: number): string => id(`document-${n}`);

/** The chain step computed independently with ethers' ABI coder, to cross-check src/hashChain.ts. */
function ethersChainHead(
  previous: string,
  seq: bigint,
  s: string,
  a: string,
  d: string,
  actor: string,
  t: bigint,
) {
  return ethers.keccak256(
    ethers.AbiCoder.defaultAbiCoder().encode(
      ["bytes32", "uint64", "bytes32", "bytes32", "bytes32", "address", "uint64"],
      [previous, seq, s, a, d, actor, t],
    ),
  );
}

describe("AuditLog", () => {
  let admin: HardhatEthersSigner;
  let writer: HardhatEthersSigner;
  let writer2: HardhatEthersSigner;
  let outsider: HardhatEthersSigner;
  let log: AuditLogContract;
  let WRITER_ROLE: string;

  beforeEach(async () => {
    [admin, writer, writer2, outsider] = (await ethers.getSigners()) as [
      HardhatEthersSigner,
      HardhatEthersSigner,
      HardhatEthersSigner,
      HardhatEthersSigner,
    ];
    log = await deployAuditLog(admin.address);
    WRITER_ROLE = await log.WRITER_ROLE();
    await log.grantRole(WRITER_ROLE, writer.address);
  });

  async function allEvents() {
    const logs = await ethers.provider.getLogs({
      address: await log.getAddress(),
      topics: [AUDIT_EVENT_TOPIC],
      fromBlock: 0,
    });
    return logs.map((l) => {
      const decoded = decodeAuditEvent(l);
      if (!decoded.ok) throw new Error(decoded.error);
      return decoded.value;
    });
  }

  describe("deployment", () => {
    it("starts empty at the documented genesis head, admin only", async () => {
      expect(await log.count()).to.equal(0n);
      expect(await log.head()).to.equal(GENESIS_HEAD);
      expect(await log.GENESIS_HEAD()).to.equal(ethers.id("VitalStream.AuditLog.v1"));
      expect(await log.checkpoint()).to.deep.equal([0n, GENESIS_HEAD]);
      expect(await log.MAX_BATCH_SIZE()).to.equal(128n);
      expect(WRITER_ROLE).to.equal(ethers.id("WRITER_ROLE"));
      expect(await log.hasRole(await log.DEFAULT_ADMIN_ROLE(), admin.address)).to.equal(true);
      expect(await log.hasRole(WRITER_ROLE, admin.address)).to.equal(false);
    });

    it("refuses a zero admin", async () => {
      const factory = await ethers.getContractFactory("AuditLog");
      await expect(factory.deploy(ethers.ZeroAddress)).to.be.revertedWithCustomError(factory, "ZeroAdmin");
    });

    it("supports the IAccessControl and ERC-165 interfaces", async () => {
      expect(await log.supportsInterface("0x7965db0b")).to.equal(true);
      expect(await log.supportsInterface("0x01ffc9a7")).to.equal(true);
      expect(await log.supportsInterface("0xffffffff")).to.equal(false);
    });
  });

  describe("roles", () => {
    it("lets only writers record", async () => {
      await expect(log.connect(outsider).record(subject(1), READ, dataHash(1)))
        .to.be.revertedWithCustomError(log, "AccessControlUnauthorizedAccount")
        .withArgs(outsider.address, WRITER_ROLE);
      await expect(log.connect(admin).record(subject(1), READ, dataHash(1)))
        .to.be.revertedWithCustomError(log, "AccessControlUnauthorizedAccount")
        .withArgs(admin.address, WRITER_ROLE);
      await expect(
        log.connect(outsider).recordBatch([{ subject: subject(1), action: READ, dataHash: dataHash(1) }]),
      )
        .to.be.revertedWithCustomError(log, "AccessControlUnauthorizedAccount")
        .withArgs(outsider.address, WRITER_ROLE);
    });

    it("lets the admin grant and revoke the writer role, with events", async () => {
      await expect(log.grantRole(WRITER_ROLE, writer2.address))
        .to.emit(log, "RoleGranted")
        .withArgs(WRITER_ROLE, writer2.address, admin.address);
      await expect(log.connect(writer2).record(subject(1), READ, dataHash(1))).to.emit(log, "AuditEvent");
      await expect(log.revokeRole(WRITER_ROLE, writer2.address))
        .to.emit(log, "RoleRevoked")
        .withArgs(WRITER_ROLE, writer2.address, admin.address);
      await expect(log.connect(writer2).record(subject(2), READ, dataHash(2))).to.be.revertedWithCustomError(
        log,
        "AccessControlUnauthorizedAccount",
      );
    });

    it("refuses role changes from anyone but the admin", async () => {
      const adminRole = await log.DEFAULT_ADMIN_ROLE();
      await expect(log.connect(writer).grantRole(WRITER_ROLE, outsider.address))
        .to.be.revertedWithCustomError(log, "AccessControlUnauthorizedAccount")
        .withArgs(writer.address, adminRole);
      await expect(log.connect(outsider).revokeRole(WRITER_ROLE, writer.address))
        .to.be.revertedWithCustomError(log, "AccessControlUnauthorizedAccount")
        .withArgs(outsider.address, adminRole);
    });

    it("lets a writer renounce its own role only", async () => {
      await expect(
        log.connect(writer).renounceRole(WRITER_ROLE, writer2.address),
      ).to.be.revertedWithCustomError(log, "AccessControlBadConfirmation");
      await log.connect(writer).renounceRole(WRITER_ROLE, writer.address);
      expect(await log.hasRole(WRITER_ROLE, writer.address)).to.equal(false);
    });
  });

  describe("record", () => {
    it("stores the record, emits an indexed AuditEvent and advances the head", async () => {
      const t = (await latestTimestamp()) + 10n;
      await setNextTimestamp(t);
      const expectedHead = chainHead(GENESIS_HEAD, {
        seq: 1n,
        subject: subject(1) as Hex,
        action: READ as Hex,
        dataHash: dataHash(1) as Hex,
        actor: writer.address as Hex,
        timestamp: t,
      });
      expect(expectedHead).to.equal(
        ethersChainHead(GENESIS_HEAD, 1n, subject(1), READ, dataHash(1), writer.address, t),
      );

      await expect(log.connect(writer).record(subject(1), READ, dataHash(1)))
        .to.emit(log, "AuditEvent")
        .withArgs(subject(1), READ, writer.address, 1n, dataHash(1), t, expectedHead);
      expect(await log.count()).to.equal(1n);
      expect(await log.head()).to.equal(expectedHead);
      expect(await log.checkpoint()).to.deep.equal([1n, expectedHead]);
      const stored = await log.eventAt(1);
      expect([
        stored.subject,
        stored.action,
        stored.dataHash,
        stored.actor,
        stored.timestamp,
        stored.seq,
      ]).to.deep.equal([subject(1), READ, dataHash(1), writer.address, t, 1n]);
    });

    it("returns the new seq and head", async () => {
      const [seq, head] = await log.connect(writer).record.staticCall(subject(1), READ, dataHash(1));
      expect(seq).to.equal(1n);
      expect(head).to.match(/^0x[0-9a-f]{64}$/);
    });

    it("indexes subject, action and actor so logs can be filtered by each", async () => {
      await log.connect(writer).record(subject(1), READ, dataHash(1));
      await log.connect(writer).record(subject(2), UPDATE, dataHash(2));
      await log.connect(writer).record(subject(1), UPDATE, dataHash(3));
      const bySubject = await log.queryFilter(log.filters.AuditEvent!(subject(1)));
      expect(bySubject).to.have.length(2);
      const byAction = await log.queryFilter(log.filters.AuditEvent!(null, UPDATE));
      expect(byAction).to.have.length(2);
      const byActor = await log.queryFilter(log.filters.AuditEvent!(null, null, writer.address));
      expect(byActor).to.have.length(3);
    });

    it("accepts a zero dataHash (an event with no document)", async () => {
      await expect(log.connect(writer).record(subject(1), READ, ethers.ZeroHash)).to.emit(log, "AuditEvent");
    });

    it("refuses a zero subject or action", async () => {
      await expect(log.connect(writer).record(ethers.ZeroHash, READ, dataHash(1)))
        .to.be.revertedWithCustomError(log, "ZeroSubject")
        .withArgs(0);
      await expect(log.connect(writer).record(subject(1), ethers.ZeroHash, dataHash(1)))
        .to.be.revertedWithCustomError(log, "ZeroAction")
        .withArgs(0);
      expect(await log.count()).to.equal(0n);
    });

    it("reads a record by seq and refuses unknown seqs", async () => {
      await log.connect(writer).record(subject(1), READ, dataHash(1));
      expect((await log.eventAt(1)).seq).to.equal(1n);
      await expect(log.eventAt(0)).to.be.revertedWithCustomError(log, "UnknownSeq").withArgs(0);
      await expect(log.eventAt(2)).to.be.revertedWithCustomError(log, "UnknownSeq").withArgs(2);
    });

    it("exposes the chain step as a pure function equal to the off-chain one", async () => {
      const args = [id("prev"), 7n, subject(7), READ, dataHash(7), outsider.address, 1_700_000_000n] as const;
      const onChain = await log.chainHead(...args);
      expect(onChain).to.equal(ethersChainHead(...args));
      expect(onChain).to.equal(
        chainHead(args[0] as Hex, {
          seq: args[1],
          subject: args[2] as Hex,
          action: args[3] as Hex,
          dataHash: args[4] as Hex,
          actor: args[5] as Hex,
          timestamp: args[6],
        }),
      );
    });
  });

  describe("recordBatch", () => {
    const entries = (n: number, offset = 0) =>
      Array.from({ length: n }, (_, i) => ({
        subject: subject(offset + i),
        action: READ,
        dataHash: dataHash(offset + i),
      }));

    it("appends consecutive seqs with one event each, as single records would", async () => {
      await log.connect(writer).record(subject(100), UPDATE, dataHash(100));
      const [firstSeq] = await log.connect(writer).recordBatch.staticCall(entries(5));
      expect(firstSeq).to.equal(2n);
      const tx = await log.connect(writer).recordBatch(entries(5));
      const receipt = await tx.wait();
      expect(receipt!.logs).to.have.length(5);
      expect(await log.count()).to.equal(6n);

      const events = await allEvents();
      expect(events.map((e) => e.seq)).to.deep.equal([1n, 2n, 3n, 4n, 5n, 6n]);
      expect(new Set(events.slice(1).map((e) => e.timestamp)).size).to.equal(1);
      expect(foldHeads(events)).to.equal(await log.head());
      expect(events[5]!.head).to.equal(await log.head());
    });

    it("accepts exactly MAX_BATCH_SIZE entries, within a reasonable gas budget", async () => {
      const tx = await log.connect(writer).recordBatch(entries(128));
      const receipt = await tx.wait();
      expect(await log.count()).to.equal(128n);
      // Four fresh slots (~88k gas) + one log per record; a regression would show here.
      expect(receipt!.gasUsed / 128n < 100_000n).to.equal(true);
    });

    it("refuses an empty or oversized batch", async () => {
      await expect(log.connect(writer).recordBatch([])).to.be.revertedWithCustomError(log, "EmptyBatch");
      await expect(log.connect(writer).recordBatch(entries(129)))
        .to.be.revertedWithCustomError(log, "BatchTooLarge")
        .withArgs(129, 128);
    });

    it("is atomic: a bad entry names its index and nothing is recorded", async () => {
      const badSubject = entries(4);
      badSubject[2]!.subject = ethers.ZeroHash;
      await expect(log.connect(writer).recordBatch(badSubject))
        .to.be.revertedWithCustomError(log, "ZeroSubject")
        .withArgs(2);
      const badAction = entries(4);
      badAction[3]!.action = ethers.ZeroHash;
      await expect(log.connect(writer).recordBatch(badAction))
        .to.be.revertedWithCustomError(log, "ZeroAction")
        .withArgs(3);
      expect(await log.checkpoint()).to.deep.equal([0n, GENESIS_HEAD]);
    });
  });

  describe("hash chain", () => {
    it("is reproduced off-chain from the logs and anchored to the on-chain checkpoint", async () => {
      await log.grantRole(WRITER_ROLE, writer2.address);
      await log.connect(writer).record(subject(1), READ, dataHash(1));
      await log.connect(writer2).recordBatch([
        { subject: subject(2), action: UPDATE, dataHash: dataHash(2) },
        { subject: subject(3), action: READ, dataHash: ethers.ZeroHash },
      ]);
      await log.connect(writer).record(subject(1), UPDATE, dataHash(4));

      const [count, head] = await log.checkpoint();
      const events = await allEvents();
      expect(events.map((e) => e.actor)).to.deep.equal([
        writer.address,
        writer2.address,
        writer2.address,
        writer.address,
      ]);
      for (const e of events) {
        const stored = await log.eventAt(e.seq);
        expect([
          stored.subject,
          stored.action,
          stored.dataHash,
          stored.actor,
          stored.timestamp,
        ]).to.deep.equal([e.subject, e.action, e.dataHash, e.actor, e.timestamp]);
      }
      expect(verifyAuditChain(events, { expected: { count, head: head as Hex } })).to.deep.equal({
        ok: true,
        count: 4n,
        head,
        verified: 4,
        anchored: true,
      });

      // Dropping, reordering or altering any record is caught.
      expect(verifyAuditChain([events[0], events[2], events[3]])).to.include({
        ok: false,
        kind: "gap",
        firstBadSeq: 2n,
      });
      expect(verifyAuditChain([events[1], events[0]])).to.include({
        ok: false,
        kind: "gap",
        firstBadSeq: 1n,
      });
      const altered = events.map((e) => ({ ...e }));
      altered[2]!.dataHash = dataHash(99) as Hex;
      expect(verifyAuditChain(altered)).to.include({ ok: false, kind: "mismatch", firstBadSeq: 3n });
      expect(verifyAuditChain(events.slice(0, 3), { expected: { count, head: head as Hex } })).to.include({
        ok: false,
        kind: "gap",
        firstBadSeq: 4n,
      });
    });

    it("emits the head in each event so that a range verifies from its predecessor", async () => {
      for (let i = 1; i <= 4; i++) await log.connect(writer).record(subject(i), READ, dataHash(i));
      const events = await allEvents();
      const result = verifyAuditChain(events.slice(2), { from: { seq: 2n, head: events[1]!.head } });
      expect(result).to.include({ ok: true, count: 4n, head: await log.head() });
    });
  });
});
