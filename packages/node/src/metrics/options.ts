/** Options of the Prometheus metrics listener. */
export interface MetricsOptions {
  /** Loopback by default: a pod sets 0.0.0.0 and a NetworkPolicy lets only the monitoring namespace in. */
  host: string;
  /** 0 picks a free port; `listen()` reports the one chosen. */
  port: number;
  /** How often the signer's health is checked for `blockchain_signer_healthy` (an HSM round trip). */
  signerHealthIntervalMs: number;
  /** How often the store's size on disk is summed for `blockchain_store_size_bytes`. */
  storeSizeIntervalMs: number;
  /** Window of `blockchain_tps`. */
  tpsWindowSeconds: number;
}

export const defaultMetricsOptions: MetricsOptions = {
  host: "127.0.0.1",
  port: 9090,
  signerHealthIntervalMs: 15_000,
  storeSizeIntervalMs: 30_000,
  tpsWindowSeconds: 10,
};
