export interface MempoolOptions {
  /** Transactions the pool holds; when full the policy in `mempool.ts` evicts or refuses. */
  maxTxs: number;
  /** Largest encoded transaction admitted (geth's txMaxSize). Checked before any decoding. */
  maxTxBytes: number;
  /** Transactions one sender may hold in the pool, executable or not. */
  maxTxsPerSender: number;
  /**
   * How many nonces, starting at the account's next nonce, a sender may use: with 64, nonces
   * next .. next+63 are admitted, next+64 is "nonce too high".
   */
  nonceWindow: number;
  /** Floor on a transaction's gas limit; the intrinsic gas of the transaction is always a floor too. */
  minGasLimit: bigint;
  /**
   * Ceiling on a transaction's gas limit. When undefined and an executor is given, its block gas
   * limit; otherwise `defaultExecutionOptions.blockGasLimit`.
   */
  maxGasLimit: bigint | undefined;
  /** Minimum price per gas (gas price, or min(maxFeePerGas, maxPriorityFeePerGas) at base fee 0). */
  minGasPrice: bigint;
  /** A replacement (same sender and nonce) must pay at least this many percent more per gas. */
  priceBumpPercent: number;
}

export const defaultMempoolOptions: MempoolOptions = {
  maxTxs: 10_000,
  maxTxBytes: 128 * 1024,
  maxTxsPerSender: 64,
  nonceWindow: 64,
  minGasLimit: 0n,
  maxGasLimit: undefined,
  minGasPrice: 0n,
  priceBumpPercent: 10,
};
