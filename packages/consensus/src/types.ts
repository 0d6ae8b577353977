/**
 * Core types of the BFT engine. Everything here is plain data: no classes with hidden state, so a
 * message can be logged, encoded, replayed and compared.
 */

export type Hash = Uint8Array;

export type SignatureAlgorithm = "ed25519" | "ecdsa-p256";

/** Message types; a message's type is also the signing "step" used by the double-sign guard. */
export const MessageType = { Proposal: 1, Prevote: 2, Precommit: 3 } as const;
export type MessageType = (typeof MessageType)[keyof typeof MessageType];
export type VoteType = typeof MessageType.Prevote | typeof MessageType.Precommit;

/** Steps of a round. Timeouts name the step they guard. */
export const Step = { Propose: 1, Prevote: 2, Precommit: 3 } as const;
export type Step = (typeof Step)[keyof typeof Step];

export interface Validator {
  /** Raw public key: 32 bytes for Ed25519, 65 bytes (uncompressed SEC1) for ECDSA P-256. */
  publicKey: Uint8Array;
  algorithm: SignatureAlgorithm;
  votingPower: number;
}

export interface UnsignedVote {
  type: VoteType;
  chainId: string;
  height: number;
  round: number;
  /** `null` is a vote for nil. */
  valueHash: Hash | null;
  validatorIndex: number;
}

export interface VoteMessage extends UnsignedVote {
  signature: Uint8Array;
}

export interface UnsignedProposalHeader {
  type: typeof MessageType.Proposal;
  chainId: string;
  height: number;
  round: number;
  /** The round in which the proposed value gathered a prevote quorum, or -1. */
  polRound: number;
  valueHash: Hash;
  validatorIndex: number;
}

/** A signed proposal without its value: what the signature covers, and what evidence carries. */
export interface ProposalHeader extends UnsignedProposalHeader {
  signature: Uint8Array;
}

/** A proposal as it travels: the signed header plus the value whose hash it names. */
export interface ProposalMessage extends ProposalHeader {
  value: Uint8Array;
}

export type UnsignedMessage = UnsignedVote | UnsignedProposalHeader;
export type SignedMessage = VoteMessage | ProposalHeader;
export type ConsensusMessage = VoteMessage | ProposalMessage;

export interface CommitSignature {
  validatorIndex: number;
  signature: Uint8Array;
}

/** More than two thirds of the voting power precommitted `valueHash` in `round` of `height`. */
export interface CommitCertificate {
  chainId: string;
  height: number;
  round: number;
  valueHash: Hash;
  /** Sorted by validator index, no duplicates. */
  signatures: CommitSignature[];
}

/** Two conflicting signed messages from one validator for one (height, round, type). */
export type Evidence =
  | { kind: "duplicateVote"; a: VoteMessage; b: VoteMessage }
  | { kind: "duplicateProposal"; a: ProposalHeader; b: ProposalHeader };

/** Pure signature verification, injected by the host (node:crypto in production). */
export type VerifyFn = (
  algorithm: SignatureAlgorithm,
  publicKey: Uint8Array,
  message: Uint8Array,
  signature: Uint8Array,
) => boolean;

/** Pure hash of a proposal value (SHA-256 in production). */
export type HashFn = (value: Uint8Array) => Hash;

export type Result<T, E> = { ok: true; value: T } | { ok: false; error: E };

export function ok<T>(value: T): { ok: true; value: T } {
  return { ok: true, value };
}

export function err<E>(error: E): { ok: false; error: E } {
  return { ok: false, error };
}
