/**
 * Per-peer accounting (pure: time comes in as an argument). A token bucket limits how many frames
 * and bytes a peer may send; a score counts its misbehaviour and decays over time. A peer whose
 * score reaches the limit is disconnected and refused for a while (a permitted validator is only
 * ever banned temporarily: it may have been restarted with a bug, not turned hostile).
 */

export interface PeerLimits {
  /** Sustained frames per second (burst: twice that). */
  framesPerSecond: number;
  /** Sustained bytes per second (burst: twice that). */
  bytesPerSecond: number;
  /** Score at which the peer is disconnected. */
  disconnectScore: number;
  /** Score points forgiven per second. */
  decayPerSecond: number;
  /** How long a disconnected peer is refused. */
  banMs: number;
}

export const defaultPeerLimits: PeerLimits = {
  framesPerSecond: 5_000,
  bytesPerSecond: 64 * 1024 * 1024,
  disconnectScore: 100,
  decayPerSecond: 1,
  banMs: 60_000,
};

/** What a peer did wrong, and what it costs. */
export const Offence = {
  /** A frame that does not decode (garbage, truncated, unknown kind): four in a second disconnect. */
  malformed: 25,
  /** Decodes but is refused: a bad signature, a certificate that does not verify, a bad sync block. */
  invalid: 10,
  /** Over its rate limit (the frame is dropped). */
  flooding: 1,
  /** A frame larger than the cap: the stream is reset, so this is always fatal. */
  oversized: 100,
} as const;
export type OffenceKind = keyof typeof Offence;

export class PeerScore {
  private readonly limits: PeerLimits;
  private frameTokens: number;
  private byteTokens: number;
  private score = 0;
  private updatedMs: number;
  readonly offences: Record<OffenceKind, number> = { malformed: 0, invalid: 0, flooding: 0, oversized: 0 };

  constructor(limits: PeerLimits, nowMs: number) {
    this.limits = limits;
    this.frameTokens = limits.framesPerSecond * 2;
    this.byteTokens = limits.bytesPerSecond * 2;
    this.updatedMs = nowMs;
  }

  private advance(nowMs: number): void {
    const dt = Math.max(0, nowMs - this.updatedMs) / 1000;
    this.updatedMs = Math.max(this.updatedMs, nowMs);
    const l = this.limits;
    this.frameTokens = Math.min(l.framesPerSecond * 2, this.frameTokens + dt * l.framesPerSecond);
    this.byteTokens = Math.min(l.bytesPerSecond * 2, this.byteTokens + dt * l.bytesPerSecond);
    this.score = Math.max(0, this.score - dt * l.decayPerSecond);
  }

  /** Takes one frame of `bytes` from the bucket; false means over the limit (drop it). */
  admit(bytes: number, nowMs: number): boolean {
    this.advance(nowMs);
    if (this.frameTokens < 1 || this.byteTokens < bytes) return false;
    this.frameTokens -= 1;
    this.byteTokens -= bytes;
    return true;
  }

  /** Records an offence; true when the peer must now be disconnected. */
  penalise(kind: OffenceKind, nowMs: number): boolean {
    this.advance(nowMs);
    this.offences[kind]++;
    this.score += Offence[kind];
    // Within a second's decay of the limit counts: four malformed frames a few milliseconds apart
    // must disconnect, not stop at 99.99.
    return this.score > this.limits.disconnectScore - this.limits.decayPerSecond;
  }

  value(nowMs: number): number {
    this.advance(nowMs);
    return this.score;
  }
}
