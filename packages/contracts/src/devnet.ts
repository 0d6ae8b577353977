// The permissioned devnet's parameters, in one place. The values live in devnet.json so that
// hardhat.config.cts (CommonJS) and the node's devnet genesis can read the very same file.
// DEV ONLY: the mnemonic is Hardhat's public default; a real network gets its own keys.
import devnet from "./devnet.json" with { type: "json" };
import type { Hex } from "./hex.ts";

export interface DevnetAccount {
  /** BIP-44 derivation path from DEVNET_MNEMONIC. */
  path: string;
  address: Hex;
  privateKey: Hex;
  /** Balance the devnet genesis gives this account, in wei. */
  balanceWei: bigint;
}

export const DEVNET_CHAIN_ID: number = devnet.chainId;
export const DEVNET_RPC_URL: string = devnet.rpcUrl;
/** DEV ONLY: public, well-known mnemonic. */
export const DEVNET_MNEMONIC: string = devnet.mnemonic;
/** Funded, permitted account that deploys the contracts and holds their admin role on devnet. */
export const DEVNET_DEPLOYER: DevnetAccount = {
  path: devnet.deployer.path,
  address: devnet.deployer.address as Hex,
  privateKey: devnet.deployer.privateKey as Hex,
  balanceWei: BigInt(devnet.deployer.balanceWei),
};
