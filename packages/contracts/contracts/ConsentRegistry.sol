// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.28;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";

/// @title ConsentRegistry: purpose-bound consents of pseudonymous patients to organisations
/// @notice A patient, known here only by a pseudonymous bytes32 id, grants or revokes consent for
/// one organisation (its chain account) to process their data for one purpose (a bytes32 id such
/// as keccak256("treatment") or keccak256("research")). Patients hold no chain account: the
/// consortium's consent service, holding RECORDER_ROLE, records each decision after
/// authenticating the patient off-chain, and anchors the signed consent document by its hash
/// (`evidenceHash`). AuditLog writers call `hasConsent` before they act.
///
/// The record: every grant and revocation emits an event carrying a per-consent `version` that
/// counts the changes of that (patient, organisation, purpose) consent, 1, 2, 3... so that an
/// auditor can tell from the logs alone whether a change is missing. Storage keeps only the
/// current state, one slot per consent.
/// @dev Roles: DEFAULT_ADMIN_ROLE grants and revokes RECORDER_ROLE (and itself).
contract ConsentRegistry is AccessControl {
    /// @notice Role allowed to record grants and revocations.
    bytes32 public constant RECORDER_ROLE = keccak256("CONSENT_RECORDER_ROLE");

    /// @notice Current state of one consent (all zero: never granted). `grantedAt`: block time
    /// of the latest grant; `validUntil`: its expiry, exclusive, 0 for none; `revokedAt`: block
    /// time of its revocation, 0 if in force; `version`: grants plus revocations so far.
    struct Consent {
        uint64 grantedAt;
        uint64 validUntil;
        uint64 revokedAt;
        uint32 version;
    }

    /// @notice Emitted on each grant, including a renewal of a consent still in force.
    event ConsentGranted(
        bytes32 indexed patient,
        address indexed organisation,
        bytes32 indexed purpose,
        uint64 validUntil,
        bytes32 evidenceHash,
        uint32 version,
        address recorder
    );

    /// @notice Emitted on each revocation.
    event ConsentRevoked(
        bytes32 indexed patient,
        address indexed organisation,
        bytes32 indexed purpose,
        bytes32 evidenceHash,
        uint32 version,
        address recorder
    );

    /// @notice `admin` was the zero address.
    error ZeroAdmin();
    /// @notice The patient id is zero.
    error ZeroPatient();
    /// @notice The organisation is the zero address.
    error ZeroOrganisation();
    /// @notice The purpose id is zero.
    error ZeroPurpose();
    /// @notice The evidence hash is zero: every change must anchor its evidence.
    error ZeroEvidence();
    /// @notice `validUntil` is not after the current block time `nowTimestamp`.
    error ExpiryNotInFuture(uint64 validUntil, uint64 nowTimestamp);
    /// @notice There is no grant to revoke: never granted, or already revoked.
    error NotGranted(bytes32 patient, address organisation, bytes32 purpose);

    mapping(bytes32 key => Consent) private _consents;

    /// @notice Deploys an empty registry whose DEFAULT_ADMIN_ROLE is held by `admin`.
    /// @param admin Account (ideally a consortium multisig) that manages roles.
    constructor(address admin) {
        if (admin == address(0)) revert ZeroAdmin();
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
    }

    /// @notice Records that `patient` consents to `organisation` processing their data for
    /// `purpose` until `validUntil`. Granting a consent in force renews it (new expiry).
    /// @param patient Pseudonymous patient id (non-zero).
    /// @param organisation Chain account of the organisation (non-zero).
    /// @param purpose Purpose id (non-zero).
    /// @param validUntil Expiry as a unix time, after the current block; 0 for no expiry.
    /// @param evidenceHash Hash of the signed consent document (non-zero).
    /// @return version The consent's version after this grant.
    function grantConsent(
        bytes32 patient,
        address organisation,
        bytes32 purpose,
        uint64 validUntil,
        bytes32 evidenceHash
    ) external onlyRole(RECORDER_ROLE) returns (uint32 version) {
        _checkIds(patient, organisation, purpose, evidenceHash);
        uint64 nowTimestamp = uint64(block.timestamp);
        if (validUntil != 0 && validUntil <= nowTimestamp) revert ExpiryNotInFuture(validUntil, nowTimestamp);
        Consent storage consent = _consents[consentKey(patient, organisation, purpose)];
        version = consent.version + 1;
        consent.grantedAt = nowTimestamp;
        consent.validUntil = validUntil;
        consent.revokedAt = 0;
        consent.version = version;
        emit ConsentGranted(patient, organisation, purpose, validUntil, evidenceHash, version, msg.sender);
    }

    /// @notice Records that `patient` withdraws the consent given to `organisation` for `purpose`.
    /// An expired grant can still be revoked, which makes the withdrawal explicit.
    /// @param patient Pseudonymous patient id (non-zero).
    /// @param organisation Chain account of the organisation (non-zero).
    /// @param purpose Purpose id (non-zero).
    /// @param evidenceHash Hash of the signed revocation document (non-zero).
    /// @return version The consent's version after this revocation.
    function revokeConsent(bytes32 patient, address organisation, bytes32 purpose, bytes32 evidenceHash)
        external
        onlyRole(RECORDER_ROLE)
        returns (uint32 version)
    {
        _checkIds(patient, organisation, purpose, evidenceHash);
        Consent storage consent = _consents[consentKey(patient, organisation, purpose)];
        if (consent.grantedAt == 0 || consent.revokedAt != 0) revert NotGranted(patient, organisation, purpose);
        version = consent.version + 1;
        consent.revokedAt = uint64(block.timestamp);
        consent.version = version;
        emit ConsentRevoked(patient, organisation, purpose, evidenceHash, version, msg.sender);
    }

    /// @notice Whether the consent is in force now: granted, not revoked, not expired.
    /// @param patient Pseudonymous patient id.
    /// @param organisation Chain account of the organisation.
    /// @param purpose Purpose id.
    function hasConsent(bytes32 patient, address organisation, bytes32 purpose) external view returns (bool) {
        Consent storage consent = _consents[consentKey(patient, organisation, purpose)];
        return consent.grantedAt != 0 && consent.revokedAt == 0
            && (consent.validUntil == 0 || block.timestamp < consent.validUntil);
    }

    /// @notice The stored state of a consent (all zero if never granted).
    /// @param patient Pseudonymous patient id.
    /// @param organisation Chain account of the organisation.
    /// @param purpose Purpose id.
    function getConsent(bytes32 patient, address organisation, bytes32 purpose)
        external
        view
        returns (Consent memory)
    {
        return _consents[consentKey(patient, organisation, purpose)];
    }

    /// @notice Storage key of a consent: keccak256(abi.encode(patient, organisation, purpose)).
    function consentKey(bytes32 patient, address organisation, bytes32 purpose) public pure returns (bytes32) {
        return keccak256(abi.encode(patient, organisation, purpose));
    }

    function _checkIds(bytes32 patient, address organisation, bytes32 purpose, bytes32 evidenceHash) private pure {
        if (patient == bytes32(0)) revert ZeroPatient();
        if (organisation == address(0)) revert ZeroOrganisation();
        if (purpose == bytes32(0)) revert ZeroPurpose();
        if (evidenceHash == bytes32(0)) revert ZeroEvidence();
    }
}
