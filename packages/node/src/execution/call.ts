/**
 * Read-only EVM calls against committed state: `eth_call`, `eth_estimateGas`, and running the
 * constructors of predeployed contracts when `vitalstream init` writes a genesis. Nothing is
 * written: the overlay's changes are returned, never applied.
 */
import { createBlock } from "@ethereumjs/block";
import type { Common } from "@ethereumjs/common";
import { Address } from "@ethereumjs/util";
import { createVM, type VM } from "@ethereumjs/vm";
import { decodeRevert, type RevertInfo } from "./executor.ts";
import { StateOverlay } from "./overlay.ts";
import type { StateChange, StateReader } from "./state.ts";

export interface CallRequest {
  from?: Uint8Array;
  /** Absent: contract creation with `data` as init code. */
  to?: Uint8Array;
  data: Uint8Array;
  value: bigint;
  gasLimit: bigint;
  gasPrice?: bigint;
}

export interface CallContext {
  height: bigint;
  timestamp: bigint;
  blockGasLimit: bigint;
}

export interface CallResult {
  success: boolean;
  returnValue: Uint8Array;
  /** Execution gas (without the intrinsic gas of a transaction). */
  gasUsed: bigint;
  revert: RevertInfo | undefined;
  exceptionError: string | undefined;
  createdAddress: Uint8Array | undefined;
  changes: StateChange[];
}

const ZERO = new Uint8Array(20);

/** Gas a transaction pays before execution (Ethereum's intrinsic gas, Cancun rules, no access list). */
export function intrinsicGas(req: Pick<CallRequest, "to" | "data">): bigint {
  let gas = 21_000n;
  for (const byte of req.data) gas += byte === 0 ? 4n : 16n;
  if (req.to === undefined) gas += 32_000n + 2n * BigInt(Math.ceil(req.data.length / 32));
  return gas;
}

export interface CallRunner {
  call(req: CallRequest, state: StateReader, ctx: CallContext): Promise<CallResult>;
  /** The smallest gas limit (intrinsic included) with which the call succeeds, or the failure. */
  estimateGas(
    req: Omit<CallRequest, "gasLimit">,
    state: StateReader,
    ctx: CallContext,
  ): Promise<{ ok: true; gas: bigint } | { ok: false; result: CallResult }>;
}

export async function createCallRunner(common: Common): Promise<CallRunner> {
  const overlay = new StateOverlay({
    getAccount: async () => undefined,
    getStorage: async () => undefined,
    getCode: async () => undefined,
    storageSlots: async () => [],
  });
  const vm: VM = await createVM({ common, stateManager: overlay });
  let queue: Promise<unknown> = Promise.resolve();

  const runOnce = async (req: CallRequest, state: StateReader, ctx: CallContext): Promise<CallResult> => {
    overlay.reset(state);
    // Warm addresses and slots of a previous call must not make this one cheaper (EIP-2929).
    vm.evm.journal.cleanJournal();
    const block = createBlock(
      {
        header: {
          number: ctx.height,
          timestamp: ctx.timestamp,
          gasLimit: ctx.blockGasLimit,
          baseFeePerGas: 0n,
        },
      },
      { common },
    );
    const result = await vm.evm.runCall({
      caller: new Address(req.from ?? ZERO),
      origin: new Address(req.from ?? ZERO),
      to: req.to === undefined ? undefined : new Address(req.to),
      data: req.data,
      value: req.value,
      gasLimit: req.gasLimit,
      gasPrice: req.gasPrice ?? 0n,
      block,
      skipBalance: true,
    });
    const exec = result.execResult;
    const reverted = exec.exceptionError?.error === "revert";
    return {
      success: exec.exceptionError === undefined,
      returnValue: exec.returnValue,
      gasUsed: exec.executionGasUsed,
      revert: reverted ? { reason: decodeRevert(exec.returnValue), data: exec.returnValue } : undefined,
      exceptionError: exec.exceptionError !== undefined && !reverted ? exec.exceptionError.error : undefined,
      createdAddress: result.createdAddress?.bytes,
      changes: await overlay.changes(),
    };
  };

  const serial = <T>(run: () => Promise<T>): Promise<T> => {
    const next = queue.then(run);
    queue = next.catch(() => undefined);
    return next;
  };

  return {
    call: (req, state, ctx) => serial(() => runOnce(req, state, ctx)),
    estimateGas: (req, state, ctx) =>
      serial(async () => {
        const intrinsic = intrinsicGas(req);
        const cap = ctx.blockGasLimit;
        const full = await runOnce({ ...req, gasLimit: cap - intrinsic }, state, ctx);
        if (!full.success) return { ok: false, result: full };
        // Binary search: refunds and the 63/64 rule make "gas used" an underestimate of the limit.
        let low = full.gasUsed - 1n;
        let high = cap - intrinsic;
        while (high - low > 1n) {
          const mid = (low + high) / 2n;
          const attempt = await runOnce({ ...req, gasLimit: mid }, state, ctx);
          if (attempt.success) high = mid;
          else low = mid;
        }
        return { ok: true, gas: high + intrinsic };
      }),
  };
}
