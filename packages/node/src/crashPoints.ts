/**
 * Named crash points for tests (CometBFT's FAIL_TEST_INDEX): with VITALSTREAM_CRASH_POINT=<name>
 * the process SIGKILLs itself the first time it passes that point at a height of at least
 * VITALSTREAM_CRASH_HEIGHT (default 2). Nothing happens when the variable is unset.
 */
export type CrashPoint =
  /** The WAL batch is durable, the engine has not seen it yet. */
  | "after-wal-append"
  /** The block is executed, its batch not yet written. */
  | "before-block-commit"
  /** The block's batch is durable, the mempool and the next height not yet updated. */
  | "after-block-commit";

export function crashPoint(point: CrashPoint, height: number): void {
  const wanted = process.env.VITALSTREAM_CRASH_POINT;
  if (wanted === undefined || wanted !== point) return;
  if (height < Number(process.env.VITALSTREAM_CRASH_HEIGHT ?? 2)) return;
  process.kill(process.pid, "SIGKILL");
}
