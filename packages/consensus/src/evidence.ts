/** Equivocation evidence: verifiable by anyone who knows the validator set of its height. */
import { bytesEqual, hashEqual } from "./bytes.ts";
import { signBytes } from "./encoding.ts";
import { type MessageError, messageError } from "./errors.ts";
import {
  type Evidence,
  err,
  MessageType,
  ok,
  type ProposalHeader,
  type Result,
  type SignedMessage,
  type VerifyFn,
  type VoteMessage,
} from "./types.ts";
import type { ValidatorSet } from "./validatorSet.ts";

export function duplicateVoteEvidence(a: VoteMessage, b: VoteMessage): Evidence {
  return { kind: "duplicateVote", a: stripVote(a), b: stripVote(b) };
}

export function duplicateProposalEvidence(a: ProposalHeader, b: ProposalHeader): Evidence {
  return { kind: "duplicateProposal", a: stripProposal(a), b: stripProposal(b) };
}

function stripVote(v: VoteMessage): VoteMessage {
  const { type, chainId, height, round, valueHash, validatorIndex, signature } = v;
  return { type, chainId, height, round, valueHash, validatorIndex, signature };
}

function stripProposal(p: ProposalHeader): ProposalHeader {
  const { type, chainId, height, round, polRound, valueHash, validatorIndex, signature } = p;
  return { type, chainId, height, round, polRound, valueHash, validatorIndex, signature };
}

/** Checks both messages are signed by the accused validator and genuinely conflict. */
export function verifyEvidence(
  evidence: Evidence,
  ctx: { chainId: string; validatorSet: ValidatorSet; verify: VerifyFn },
): Result<number, MessageError> {
  const fail = (detail: string) => err(messageError("EVIDENCE_INVALID", detail));
  const { a, b } = evidence;
  if (a.chainId !== ctx.chainId || b.chainId !== ctx.chainId) return fail("evidence is for another chain");
  if (a.type !== b.type || a.height !== b.height || a.round !== b.round) {
    return fail("messages are not for the same height, round and type");
  }
  if (a.validatorIndex !== b.validatorIndex) return fail("messages are from different validators");
  const isProposal = a.type === MessageType.Proposal;
  if (isProposal !== (evidence.kind === "duplicateProposal")) return fail("evidence kind does not match");
  if (!conflicting(a, b)) return fail("messages do not conflict");
  const validator = ctx.validatorSet.validators[a.validatorIndex];
  if (validator === undefined) return fail(`validator index ${a.validatorIndex} is not in the set`);
  for (const m of [a, b]) {
    let valid = false;
    try {
      valid = ctx.verify(validator.algorithm, validator.publicKey, signBytes(m), m.signature);
    } catch {
      valid = false;
    }
    if (!valid) return fail("a signature does not verify");
  }
  return ok(a.validatorIndex);
}

function conflicting(a: SignedMessage, b: SignedMessage): boolean {
  if (a.type === MessageType.Proposal && b.type === MessageType.Proposal) {
    return a.polRound !== b.polRound || !bytesEqual(a.valueHash, b.valueHash);
  }
  return !hashEqual(a.valueHash, b.valueHash);
}
