import { ConsensusError } from "./errors.ts";

/** Timeouts grow linearly with the round so that, after GST, some round lasts long enough. */
export interface TimeoutOptions {
  proposeMs: number;
  proposeDeltaMs: number;
  prevoteMs: number;
  prevoteDeltaMs: number;
  precommitMs: number;
  precommitDeltaMs: number;
}

export interface ConsensusOptions {
  chainId: string;
  timeouts: TimeoutOptions;
  /** Messages for rounds further ahead than this are refused (bounds memory under attack). */
  maxRoundsAhead: number;
  /** Messages buffered for the next height while this one finishes. */
  maxNextHeightMessages: number;
  /**
   * TEST ONLY: ignore the locking rule when prevoting. Exists so that tests can prove the
   * simulator detects a broken engine. Never set in a node.
   */
  unsafeIgnoreLocks?: boolean;
}

export const defaultTimeoutOptions: TimeoutOptions = {
  proposeMs: 3000,
  proposeDeltaMs: 500,
  prevoteMs: 1000,
  prevoteDeltaMs: 500,
  precommitMs: 1000,
  precommitDeltaMs: 500,
};

export const defaultConsensusOptions: Omit<ConsensusOptions, "chainId"> = {
  timeouts: defaultTimeoutOptions,
  maxRoundsAhead: 64,
  maxNextHeightMessages: 4096,
};

export const MAX_CHAIN_ID_BYTES = 64;

export function validateConsensusOptions(opts: ConsensusOptions): void {
  const bytes = new TextEncoder().encode(opts.chainId);
  if (bytes.length === 0 || bytes.length > MAX_CHAIN_ID_BYTES) {
    throw new ConsensusError("CONSENSUS_ERROR_INVALID_OPTIONS", "chainId must be 1 to 64 bytes of UTF-8");
  }
  for (const [name, value] of Object.entries(opts.timeouts)) {
    if (!Number.isFinite(value) || value < 0) {
      throw new ConsensusError(
        "CONSENSUS_ERROR_INVALID_OPTIONS",
        `timeouts.${name} must be a non-negative number`,
      );
    }
  }
  if (!Number.isInteger(opts.maxRoundsAhead) || opts.maxRoundsAhead < 1) {
    throw new ConsensusError("CONSENSUS_ERROR_INVALID_OPTIONS", "maxRoundsAhead must be a positive integer");
  }
  // It bounds the memory buffered for the next height: NaN or Infinity would unbound it.
  if (!Number.isInteger(opts.maxNextHeightMessages) || opts.maxNextHeightMessages < 0) {
    throw new ConsensusError(
      "CONSENSUS_ERROR_INVALID_OPTIONS",
      "maxNextHeightMessages must be a non-negative integer",
    );
  }
}

export function timeoutDuration(t: TimeoutOptions, step: 1 | 2 | 3, round: number): number {
  switch (step) {
    case 1:
      return t.proposeMs + round * t.proposeDeltaMs;
    case 2:
      return t.prevoteMs + round * t.prevoteDeltaMs;
    case 3:
      return t.precommitMs + round * t.precommitDeltaMs;
  }
}
