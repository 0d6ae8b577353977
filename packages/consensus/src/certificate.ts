/**
 * Commit certificates: the precommits that decided a height. A certificate verifies on its own
 * against the validator set of its height, which is what block sync relies on.
 */
import { bytesEqual } from "./bytes.ts";
import { signBytes } from "./encoding.ts";
import { type MessageError, messageError } from "./errors.ts";
import {
  type CommitCertificate,
  err,
  type Hash,
  MessageType,
  ok,
  type Result,
  type VerifyFn,
  type VoteMessage,
} from "./types.ts";
import type { ValidatorSet } from "./validatorSet.ts";

/** Builds a certificate from precommits for one value (the engine calls this on commit). */
export function buildCertificate(precommits: readonly VoteMessage[]): CommitCertificate {
  const first = precommits[0];
  if (first === undefined || first.valueHash === null)
    throw new RangeError("a certificate needs precommits for a value");
  const signatures = [...precommits]
    .sort((a, b) => a.validatorIndex - b.validatorIndex)
    .map((v) => ({ validatorIndex: v.validatorIndex, signature: v.signature }));
  return {
    chainId: first.chainId,
    height: first.height,
    round: first.round,
    valueHash: first.valueHash,
    signatures,
  };
}

/** The precommit a certificate's signature claims to be. */
export function certificateVote(cert: CommitCertificate, index: number): VoteMessage {
  const s = cert.signatures[index]!;
  return {
    type: MessageType.Precommit,
    chainId: cert.chainId,
    height: cert.height,
    round: cert.round,
    valueHash: cert.valueHash,
    validatorIndex: s.validatorIndex,
    signature: s.signature,
  };
}

export interface VerifyCertificateContext {
  chainId: string;
  validatorSet: ValidatorSet;
  verify: VerifyFn;
  /** When given, the certificate must be for this height and value. */
  height?: number;
  valueHash?: Hash;
}

/**
 * Verifies every signature, that signers are distinct members, and that they hold more than two
 * thirds of the voting power. Returns the signing power.
 */
export function verifyCertificate(
  cert: CommitCertificate,
  ctx: VerifyCertificateContext,
): Result<number, MessageError> {
  const fail = (detail: string) => err(messageError("CERTIFICATE_INVALID", detail));
  if (cert.chainId !== ctx.chainId) return fail(`certificate is for chain ${JSON.stringify(cert.chainId)}`);
  if (ctx.height !== undefined && cert.height !== ctx.height) {
    return fail(`certificate is for height ${cert.height}, expected ${ctx.height}`);
  }
  if (ctx.valueHash !== undefined && !bytesEqual(cert.valueHash, ctx.valueHash)) {
    return fail("certificate is for a different value");
  }
  const set = ctx.validatorSet;
  let power = 0;
  let previous = -1;
  for (let i = 0; i < cert.signatures.length; i++) {
    const { validatorIndex } = cert.signatures[i]!;
    if (validatorIndex <= previous) return fail("signatures are not sorted by distinct validator index");
    previous = validatorIndex;
    const validator = set.validators[validatorIndex];
    if (validator === undefined) return fail(`validator index ${validatorIndex} is not in the set`);
    const vote = certificateVote(cert, i);
    let valid = false;
    try {
      valid = ctx.verify(validator.algorithm, validator.publicKey, signBytes(vote), vote.signature);
    } catch {
      valid = false;
    }
    if (!valid) return fail(`signature of validator ${validatorIndex} does not verify`);
    power += validator.votingPower;
  }
  if (!set.hasQuorum(power)) {
    return fail(`signers hold ${power} of ${set.totalPower} voting power, more than two thirds is needed`);
  }
  return ok(power);
}
