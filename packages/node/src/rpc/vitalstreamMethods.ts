/**
 * The consensus namespace (`vitalstream_*`) and the REST probes: what operators and auditors ask a
 * node about consensus, and what Kubernetes asks about the process.
 */
import { encodeCertificate } from "@vitalstream/consensus";
import type { Signer } from "@vitalstream/hsm";
import { z } from "zod";
import type { Chain } from "../chain/chain.ts";
import type { ConsensusStatus } from "../consensusHost/host.ts";
import { RpcError } from "./errors.ts";
import { data } from "./format.ts";
import type { RpcMethod } from "./jsonrpc.ts";
import type { RestRoute } from "./server.ts";

export interface VitalstreamModules {
  chain: Chain;
  consensusStatus(): ConsensusStatus;
  /** The consensus signer (null for an observer). */
  signer: Signer | null;
  /** Peers needed for readiness. */
  minPeers: number;
  peerCount(): number;
  /** Whether the node is catching up. */
  syncing(): boolean;
  /** Admin-only routes the node adds (the backup download). */
  adminRoutes?: RestRoute[];
}

const heightParam = z.union([
  z.enum(["latest", "earliest"]),
  z.string().regex(/^0x(0|[1-9a-fA-F][0-9a-fA-F]*)$/, "expected a 0x-prefixed hex block number"),
  z.number().int().min(0),
]);

function method<S extends z.ZodType>(
  params: S,
  handler: (p: z.output<S>) => unknown | Promise<unknown>,
): RpcMethod<z.output<S>> {
  return { params: params as unknown as z.ZodType<z.output<S>>, handler };
}

/** Signer health is a round trip to an HSM or KMS: cache it briefly so probes stay cheap. */
function cachedHealth(signer: Signer | null, ttlMs = 5_000) {
  let last: { at: number; ok: boolean; detail?: string } | null = null;
  return async (): Promise<{ ok: boolean; detail?: string }> => {
    if (signer === null) return { ok: true, detail: "observer (no signer)" };
    if (last !== null && Date.now() - last.at < ttlMs) return { ok: last.ok, detail: last.detail };
    try {
      const h = await signer.health();
      last = {
        at: Date.now(),
        ok: h.ok,
        detail: h.ok ? `${h.provider} ${h.latencyMs.toFixed(1)} ms` : `${h.code}: ${h.detail}`,
      };
    } catch (e) {
      last = { at: Date.now(), ok: false, detail: (e as { code?: string }).code ?? "health check failed" };
    }
    return { ok: last.ok, detail: last.detail };
  };
}

export function vitalstreamMethods(m: VitalstreamModules): {
  methods: Record<string, RpcMethod>;
  routes: RestRoute[];
} {
  const { chain } = m;
  const resolve = (p: z.infer<typeof heightParam> | undefined): number => {
    if (p === undefined || p === "latest") return chain.head.height;
    if (p === "earliest") return 0;
    return typeof p === "number" ? p : Number(BigInt(p));
  };
  const health = cachedHealth(m.signer);

  const status = () => {
    const s = m.consensusStatus();
    const head = chain.head;
    return {
      chainId: chain.genesis.chainId,
      evmChainId: Number(chain.evmChainId),
      ...s,
      head: { height: head.height, hash: data(head.hash), time: new Date(head.timestampMs).toISOString() },
    };
  };

  const validators = async (height: number) => {
    const set = await chain.getValidatorSet(Math.max(1, height));
    if (set === undefined) throw new RpcError(-32000, `no validator set for block ${height}`);
    return set.validators.map((v, index) => ({
      index,
      name: chain.genesis.validators[index]?.name ?? `validator-${index}`,
      publicKey: data(v.publicKey),
      algorithm: v.algorithm,
      votingPower: v.votingPower,
      proposerPriority: set.priorities[index],
      nodeId: chain.genesis.validators[index]?.nodeId ?? "",
    }));
  };

  const methods: Record<string, RpcMethod> = {
    vitalstream_consensusStatus: method(z.tuple([]), status),
    vitalstream_getValidators: method(z.tuple([heightParam.optional()]), async ([p]) => {
      const height = resolve(p);
      if (height > chain.head.height + 1)
        throw new RpcError(-32000, `block ${height} is beyond the next height`);
      return validators(height);
    }),
    vitalstream_getCommitCertificate: method(z.tuple([heightParam.optional()]), async ([p]) => {
      const height = resolve(p);
      if (height === 0) throw new RpcError(-32000, "the genesis block has no commit certificate");
      const cert = await chain.getCertificate(height);
      if (cert === undefined) return null;
      const set = await validators(height);
      return {
        chainId: cert.chainId,
        height: cert.height,
        round: cert.round,
        blockHash: data(cert.valueHash),
        signatures: cert.signatures.map((s) => ({
          validatorIndex: s.validatorIndex,
          validator: set[s.validatorIndex]?.name,
          publicKey: set[s.validatorIndex]?.publicKey,
          algorithm: set[s.validatorIndex]?.algorithm,
          signature: data(s.signature),
        })),
        encoded: data(encodeCertificate(cert)),
      };
    }),
  };

  const routes: RestRoute[] = [
    { method: "GET", path: "/health", handler: async () => ({ body: { status: "ok" } }) },
    {
      method: "GET",
      path: "/ready",
      handler: async () => {
        const s = m.consensusStatus();
        const signer = await health();
        let storeOk = true;
        try {
          await chain.getExecution(chain.head.height);
        } catch {
          storeOk = false;
        }
        const peers = m.peerCount();
        const checks = {
          store: { ok: storeOk },
          signer,
          consensus: { ok: s.halted === null, ...(s.halted === null ? {} : { detail: s.halted }) },
          synced: { ok: !m.syncing() },
          peers: { ok: peers >= m.minPeers, detail: `${peers} of ${m.minPeers} needed` },
        };
        const ready = Object.values(checks).every((c) => c.ok);
        return { status: ready ? 200 : 503, body: { ready, checks } };
      },
    },
    { method: "GET", path: "/consensus/status", handler: async () => ({ body: status() }) },
    ...(m.adminRoutes ?? []),
  ];
  return { methods, routes };
}
