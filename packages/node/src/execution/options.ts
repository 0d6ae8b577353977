export interface ExecutionOptions {
  /** EIP-155 chain id every transaction must carry. */
  chainId: bigint;
  /** Sum of the gas limits of the transactions a block may execute. */
  blockGasLimit: bigint;
  /**
   * EVM rules. Cancun matches the contracts' `evmVersion`; changing it changes execution results,
   * so every validator of a network must use the same value.
   */
  hardfork: string;
  /**
   * Longest stretch, in milliseconds, that executing a block keeps the event loop to itself before
   * letting pending I/O (RPC, peers, timers) run. State reads that complete synchronously never
   * yield on their own, and a block of thousands of transactions takes seconds. No effect on results.
   */
  yieldIntervalMs: number;
}

export const defaultExecutionOptions: Omit<ExecutionOptions, "chainId"> = {
  blockGasLimit: 30_000_000n,
  hardfork: "cancun",
  yieldIntervalMs: 10,
};
