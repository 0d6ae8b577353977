// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.28;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";

/// @title AuditLog: append-only, hash-chained audit events for a healthcare consortium
/// @notice Records who (`actor`) did what (`action`) to which record (`subject`) and when
/// (`timestamp`), numbered by a gapless `seq` starting at 1. `subject`, `action` and `dataHash`
/// are bytes32 pseudonymous ids or hashes: never write PHI in clear here.
///
/// Every record folds into a running head so that an auditor holding the exported events can
/// prove, off-chain, that none is missing, reordered or altered:
///
///     head_0 = GENESIS_HEAD = keccak256("VitalStream.AuditLog.v1")
///     head_n = keccak256(abi.encode(head_{n-1}, uint64 seq, bytes32 subject, bytes32 action,
///                                   bytes32 dataHash, address actor, uint64 timestamp))
///
/// with seq = n. `actor` is the writer account that sent the record and `timestamp` the block
/// time: both are attested by the chain, not claimed by the producer (a producer's own event
/// time or the human actor's pseudonym belong in the off-chain document that `dataHash` commits
/// to). Comparing the recomputed head with `head()` at the same block proves completeness.
/// @dev Roles: DEFAULT_ADMIN_ROLE grants and revokes WRITER_ROLE (and itself); only writers
/// record. Gas: one record writes four fresh storage slots and one log; batches write `head` and
/// `count` once; there is no loop over storage.
contract AuditLog is AccessControl {
    /// @notice Role allowed to append records.
    bytes32 public constant WRITER_ROLE = keccak256("WRITER_ROLE");

    /// @notice The head before the first record (domain separation and format version).
    bytes32 public constant GENESIS_HEAD = keccak256("VitalStream.AuditLog.v1");

    /// @notice Largest number of entries accepted by one `recordBatch` call (bounds its gas).
    uint256 public constant MAX_BATCH_SIZE = 128;

    /// @notice One audit entry as a producer sends it; actor, time and seq are added on-chain.
    struct Entry {
        bytes32 subject;
        bytes32 action;
        bytes32 dataHash;
    }

    /// @notice A stored audit record as returned by `eventAt`.
    struct AuditRecord {
        bytes32 subject;
        bytes32 action;
        bytes32 dataHash;
        address actor;
        uint64 timestamp;
        uint64 seq;
    }

    /// @dev Storage layout: actor and timestamp share one slot.
    struct StoredRecord {
        bytes32 subject;
        bytes32 action;
        bytes32 dataHash;
        address actor;
        uint64 timestamp;
    }

    /// @notice Emitted once per record; `head` is the chain head after this record.
    event AuditEvent(
        bytes32 indexed subject,
        bytes32 indexed action,
        address indexed actor,
        uint64 seq,
        bytes32 dataHash,
        uint64 timestamp,
        bytes32 head
    );

    /// @notice `admin` was the zero address.
    error ZeroAdmin();
    /// @notice Entry `index` of the call has a zero subject.
    error ZeroSubject(uint256 index);
    /// @notice Entry `index` of the call has a zero action.
    error ZeroAction(uint256 index);
    /// @notice `recordBatch` was called with no entries.
    error EmptyBatch();
    /// @notice `recordBatch` was called with `size` entries, more than `max`.
    error BatchTooLarge(uint256 size, uint256 max);
    /// @notice No record has sequence number `seq` (valid: 1..count).
    error UnknownSeq(uint64 seq);

    bytes32 private _head;
    uint64 private _count;
    mapping(uint64 seq => StoredRecord) private _records;

    /// @notice Deploys an empty log whose DEFAULT_ADMIN_ROLE is held by `admin`.
    /// @param admin Account (ideally a consortium multisig) that manages roles.
    constructor(address admin) {
        if (admin == address(0)) revert ZeroAdmin();
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        _head = GENESIS_HEAD;
    }

    /// @notice Appends one audit record, with `msg.sender` as actor and the block time.
    /// @param subject Pseudonymous id or hash of the record acted upon (non-zero).
    /// @param action Id of the action, e.g. keccak256("record.read") (non-zero).
    /// @param dataHash Hash of the off-chain event document (may be zero when there is none).
    /// @return seq Sequence number given to the record.
    /// @return newHead Chain head after the record.
    function record(bytes32 subject, bytes32 action, bytes32 dataHash)
        external
        onlyRole(WRITER_ROLE)
        returns (uint64 seq, bytes32 newHead)
    {
        seq = _count + 1;
        newHead = _append(_head, seq, subject, action, dataHash, 0);
        _head = newHead;
        _count = seq;
    }

    /// @notice Appends `entries` in order, in one transaction, as `record` would one by one.
    /// @param entries Between 1 and MAX_BATCH_SIZE entries.
    /// @return firstSeq Sequence number of the first entry (the last is firstSeq + length - 1).
    /// @return newHead Chain head after the last entry.
    function recordBatch(Entry[] calldata entries)
        external
        onlyRole(WRITER_ROLE)
        returns (uint64 firstSeq, bytes32 newHead)
    {
        uint256 size = entries.length;
        if (size == 0) revert EmptyBatch();
        if (size > MAX_BATCH_SIZE) revert BatchTooLarge(size, MAX_BATCH_SIZE);
        uint64 seq = _count;
        firstSeq = seq + 1;
        newHead = _head;
        for (uint256 i = 0; i < size; ++i) {
            Entry calldata entry = entries[i];
            ++seq;
            newHead = _append(newHead, seq, entry.subject, entry.action, entry.dataHash, i);
        }
        _head = newHead;
        _count = seq;
    }

    /// @notice Number of records so far; also the seq of the latest record (0 when empty).
    function count() external view returns (uint64) {
        return _count;
    }

    /// @notice Current chain head (GENESIS_HEAD when empty).
    function head() external view returns (bytes32) {
        return _head;
    }

    /// @notice Count and head read together, for an auditor's completeness check.
    /// @return count_ Number of records.
    /// @return head_ Chain head after record `count_`.
    function checkpoint() external view returns (uint64 count_, bytes32 head_) {
        return (_count, _head);
    }

    /// @notice The record with sequence number `seq`.
    /// @param seq Between 1 and `count()`.
    function eventAt(uint64 seq) external view returns (AuditRecord memory) {
        if (seq == 0 || seq > _count) revert UnknownSeq(seq);
        StoredRecord storage stored = _records[seq];
        return AuditRecord({
            subject: stored.subject,
            action: stored.action,
            dataHash: stored.dataHash,
            actor: stored.actor,
            timestamp: stored.timestamp,
            seq: seq
        });
    }

    /// @notice The chain step: head_n from head_{n-1} and record n (see the contract NatSpec).
    /// @dev Pure, so that clients can check their own implementation against the contract.
    function chainHead(
        bytes32 previousHead,
        uint64 seq,
        bytes32 subject,
        bytes32 action,
        bytes32 dataHash,
        address actor,
        uint64 timestamp
    ) public pure returns (bytes32) {
        return keccak256(abi.encode(previousHead, seq, subject, action, dataHash, actor, timestamp));
    }

    function _append(
        bytes32 previousHead,
        uint64 seq,
        bytes32 subject,
        bytes32 action,
        bytes32 dataHash,
        uint256 index
    ) private returns (bytes32 newHead) {
        if (subject == bytes32(0)) revert ZeroSubject(index);
        if (action == bytes32(0)) revert ZeroAction(index);
        uint64 timestamp = uint64(block.timestamp);
        newHead = chainHead(previousHead, seq, subject, action, dataHash, msg.sender, timestamp);
        _records[seq] = StoredRecord({
            subject: subject,
            action: action,
            dataHash: dataHash,
            actor: msg.sender,
            timestamp: timestamp
        });
        emit AuditEvent(subject, action, msg.sender, seq, dataHash, timestamp, newHead);
    }
}
