/**
 * The peer-to-peer network: libp2p over TCP with yamux and Noise (default) or TLS 1.3, admitting
 * only permitted node ids, optionally also checking each peer's consortium X.509 certificate.
 *
 * Two protocols, both length-prefixed frames (see wire.ts):
 *   /vitalstream/<chainId>/msg/1.0.0   one long-lived stream per direction per peer: each node
 *                                      writes consensus messages, transaction batches and its
 *                                      status on its own outbound stream and reads the peer's on
 *                                      the inbound one. With a CA configured, the first frame is
 *                                      the certificate; nothing else is sent or accepted before
 *                                      both sides verified each other.
 *   /vitalstream/<chainId>/sync/1.0.0  one stream per request: committed blocks with their commit
 *                                      certificates, for a node that is behind.
 *
 * Consensus messages go directly to every peer (a full mesh of validators; docs/network.md has
 * the numbers against gossipsub). Every frame is counted against the peer's rate limits and every
 * malformed or invalid one against its score; a peer over the limit is disconnected and refused
 * for a while. Nothing a peer sends can throw out of this module.
 */
// @libp2p/tls builds certificates with @peculiar/x509, which needs the Reflect metadata API loaded.
import "reflect-metadata";
import { noise } from "@chainsafe/libp2p-noise";
import { yamux } from "@chainsafe/libp2p-yamux";
import type { Connection, PeerId, PrivateKey, Stream } from "@libp2p/interface";
import { tcp } from "@libp2p/tcp";
import { tls } from "@libp2p/tls";
import { LengthPrefixedDecoder } from "@libp2p/utils";
import { multiaddr } from "@multiformats/multiaddr";
import type { ConsensusMessage } from "@vitalstream/consensus";
import { createLibp2p, type Libp2p } from "libp2p";
import type { Logger } from "pino";
import { type OffenceKind, type PeerLimits, PeerScore } from "./peerScore.ts";
import type { ConsortiumPki } from "./pki.ts";
import { decodeFrame, encodeFrame, type Frame, type PeerStatus, type WireLimits } from "./wire.ts";

export interface StaticPeer {
  nodeId: string;
  /** A multiaddr without the /p2p part, e.g. /ip4/10.0.0.2/tcp/26656 or /dns4/validator-1/tcp/26656. */
  address: string;
}

export interface NetworkOptions {
  chainId: string;
  listen: string[];
  /** Peers this node keeps a connection to (reconnecting when they drop). */
  peers: StaticPeer[];
  /** Node ids allowed to connect at all (validators, observers). */
  permitted: ReadonlySet<string>;
  encryption: "noise" | "tls";
  /** Largest frame accepted on a stream (a frame over it resets the stream and bans the peer). */
  maxFrameBytes: number;
  /** Most bytes queued for one slow peer before its oldest frames are dropped. */
  maxQueueBytes: number;
  wire: WireLimits;
  limits: PeerLimits;
  statusIntervalMs: number;
  reconnectIntervalMs: number;
  /** How long one sync request may take before the peer is considered unresponsive. */
  syncTimeoutMs: number;
}

export interface SyncedBlock {
  block: Uint8Array;
  certificate: Uint8Array;
}

export interface NetworkHandlers {
  consensus(message: ConsensusMessage, peer: string): void;
  transactions(txs: Uint8Array[], peer: string): void;
  status(status: PeerStatus, peer: string): void;
  localStatus(): PeerStatus;
  /** Committed blocks from `fromHeight`, at most `maxBlocks`, for a peer that is behind. */
  serveBlocks(fromHeight: number, maxBlocks: number): AsyncIterable<SyncedBlock>;
  /** A peer completed the handshake (after its certificate, if any, verified). */
  peerReady?(peer: string): void;
}

export interface PeerInfo {
  nodeId: string;
  direction: "inbound" | "outbound";
  address: string;
  status: PeerStatus | null;
  score: number;
  certificate: { subject: string; notAfter: string } | null;
  connectedAt: string;
}

export interface NetworkCounters {
  framesIn: number;
  framesOut: number;
  bytesIn: number;
  bytesOut: number;
  framesDropped: number;
  disconnects: number;
  refusedCertificates: number;
  syncBlocksServed: number;
}

export class NetworkError extends Error {
  readonly code: "NETWORK_START_FAILED" | "NETWORK_SYNC_FAILED" | "NETWORK_CONFIG";

  constructor(code: NetworkError["code"], message: string) {
    super(message);
    this.name = "NetworkError";
    this.code = code;
  }
}

interface PeerState {
  id: string;
  peerId: PeerId;
  out: Stream | null;
  opening: boolean;
  queue: Uint8Array[];
  queuedBytes: number;
  score: PeerScore;
  /** Its certificate verified (or no PKI): frames flow both ways. */
  verified: boolean;
  /** We sent our certificate (or no PKI). */
  introduced: boolean;
  status: PeerStatus | null;
  certificate: { subject: string; notAfter: Date; pem: string } | null;
  connectedAt: number;
  lastFloodPenaltyMs: number;
}

function varint(n: number): Uint8Array {
  const out: number[] = [];
  while (n >= 0x80) {
    out.push((n & 0x7f) | 0x80);
    n = Math.floor(n / 128);
  }
  out.push(n);
  return Uint8Array.from(out);
}

function lengthPrefixed(frame: Uint8Array): Uint8Array {
  const prefix = varint(frame.length);
  const out = new Uint8Array(prefix.length + frame.length);
  out.set(prefix);
  out.set(frame, prefix.length);
  return out;
}

export interface NetworkModules {
  privateKey: PrivateKey;
  logger: Logger;
  handlers: NetworkHandlers;
  pki?: ConsortiumPki | null;
  now?(): number;
}

export class Network {
  readonly counters: NetworkCounters = {
    framesIn: 0,
    framesOut: 0,
    bytesIn: 0,
    bytesOut: 0,
    framesDropped: 0,
    disconnects: 0,
    refusedCertificates: 0,
    syncBlocksServed: 0,
  };
  private readonly opts: NetworkOptions;
  private readonly log: Logger;
  private readonly handlers: NetworkHandlers;
  private readonly pki: ConsortiumPki | null;
  private readonly now: () => number;
  private readonly privateKey: PrivateKey;
  private node: Libp2p | null = null;
  private readonly peers = new Map<string, PeerState>();
  private readonly banned = new Map<string, number>();
  private readonly timers: NodeJS.Timeout[] = [];
  private readonly msgProtocol: string;
  private readonly syncProtocol: string;
  private stopping = false;
  private dialing = new Set<string>();
  private txBatch: Uint8Array[] = [];
  private txBatchBytes = 0;
  private txTimer: NodeJS.Timeout | null = null;

  constructor(opts: NetworkOptions, modules: NetworkModules) {
    this.opts = opts;
    this.log = modules.logger;
    this.handlers = modules.handlers;
    this.pki = modules.pki ?? null;
    this.now = modules.now ?? Date.now;
    this.privateKey = modules.privateKey;
    this.msgProtocol = `/vitalstream/${opts.chainId}/msg/1.0.0`;
    this.syncProtocol = `/vitalstream/${opts.chainId}/sync/1.0.0`;
  }

  get nodeId(): string {
    if (this.node === null) throw new NetworkError("NETWORK_CONFIG", "the network is not started");
    return this.node.peerId.toString();
  }

  /** The addresses peers can dial (with /p2p/<nodeId>). */
  addresses(): string[] {
    return this.node?.getMultiaddrs().map((m) => m.toString()) ?? [];
  }

  async start(): Promise<void> {
    const allowed = (id: string) => this.opts.permitted.has(id) && !this.isBanned(id);
    const deny = (peerId: PeerId) => {
      const id = peerId.toString();
      const refuse = !allowed(id);
      if (refuse && !this.stopping)
        this.log.warn(
          { peer: id, banned: this.isBanned(id) },
          this.isBanned(id) ? "refused a banned peer" : "refused a peer that is not permitted",
        );
      return refuse;
    };
    const loopbackAndPeers = [
      "/ip4/127.0.0.1",
      "/ip6/::1",
      ...this.opts.peers.flatMap((p) => {
        const m = /^\/(ip4|ip6)\/([^/]+)/.exec(p.address);
        return m === null ? [] : [`/${m[1]}/${m[2]}`];
      }),
    ];
    try {
      this.node = await createLibp2p({
        privateKey: this.privateKey,
        addresses: { listen: this.opts.listen },
        transports: [tcp()],
        streamMuxers: [yamux()],
        connectionEncrypters: [this.opts.encryption === "tls" ? tls() : noise()],
        connectionGater: {
          denyDialMultiaddr: () => false,
          denyDialPeer: deny,
          denyInboundEncryptedConnection: deny,
          denyOutboundEncryptedConnection: deny,
        },
        connectionManager: {
          allow: [...new Set(loopbackAndPeers)],
          maxConnections: Math.max(64, this.opts.permitted.size * 4),
        },
        // The monitor aborts connections on one slow ping: under load that cut healthy validators.
        connectionMonitor: { abortConnectionOnPingFailure: false },
      });
    } catch (e) {
      throw new NetworkError(
        "NETWORK_START_FAILED",
        `cannot start the p2p network on ${this.opts.listen.join(", ")}: ${(e as Error).message}`,
      );
    }
    const node = this.node;
    await node.handle(this.msgProtocol, (stream, connection) => this.onInboundMessages(stream, connection), {
      maxInboundStreams: 4,
      maxOutboundStreams: 4,
    });
    await node.handle(this.syncProtocol, (stream, connection) => this.onSyncRequest(stream, connection), {
      maxInboundStreams: 4,
      maxOutboundStreams: 8,
    });
    node.addEventListener("peer:connect", (evt) => this.onConnect(evt.detail));
    node.addEventListener("peer:disconnect", (evt) => this.onDisconnect(evt.detail.toString()));
    this.timers.push(
      setInterval(() => this.sendStatus(), this.opts.statusIntervalMs),
      setInterval(() => this.reconnect(), this.opts.reconnectIntervalMs),
    );
    for (const t of this.timers) t.unref();
    this.log.info(
      {
        nodeId: node.peerId.toString(),
        listen: this.addresses(),
        encryption: this.opts.encryption,
        pki: this.pki !== null,
      },
      "p2p network listening",
    );
    this.reconnect();
  }

  async stop(): Promise<void> {
    this.stopping = true;
    if (this.txTimer !== null) clearTimeout(this.txTimer);
    for (const t of this.timers) clearInterval(t);
    this.timers.length = 0;
    try {
      await this.node?.stop();
    } catch (e) {
      this.log.debug({ err: (e as Error).message }, "libp2p stop failed");
    }
    this.peers.clear();
  }

  /** Peers that completed the handshake. */
  peerCount(): number {
    let n = 0;
    for (const p of this.peers.values()) if (p.verified) n++;
    return n;
  }

  /** Open connections by the encrypter they negotiated ("/noise", "/tls/1.0.0"): for metrics. */
  connectionsByEncryption(): Map<string, number> {
    const out = new Map<string, number>();
    for (const c of this.node?.getConnections() ?? []) {
      const key = c.encryption ?? "unknown";
      out.set(key, (out.get(key) ?? 0) + 1);
    }
    return out;
  }

  peerInfo(): PeerInfo[] {
    const node = this.node;
    return [...this.peers.values()].map((p) => {
      const conn = node?.getConnections(p.peerId)[0];
      return {
        nodeId: p.id,
        direction: conn?.direction ?? "outbound",
        address: conn?.remoteAddr.toString() ?? "",
        status: p.status,
        score: Math.round(p.score.value(this.now()) * 10) / 10,
        certificate:
          p.certificate === null
            ? null
            : { subject: p.certificate.subject, notAfter: p.certificate.notAfter.toISOString() },
        connectedAt: new Date(p.connectedAt).toISOString(),
      };
    });
  }

  /** Peers that said (in their status) they hold blocks above `height`, best first. */
  peersAhead(height: number): { id: string; headHeight: number }[] {
    return [...this.peers.values()]
      .filter((p) => p.verified && p.status !== null && p.status.headHeight > height)
      .map((p) => ({ id: p.id, headHeight: p.status!.headHeight }))
      .sort((a, b) => b.headHeight - a.headHeight);
  }

  broadcast(message: ConsensusMessage): void {
    this.broadcastFrame({ kind: "consensus", message });
  }

  /**
   * Gossips a transaction this node admitted from a client. Transactions are batched for a few
   * milliseconds (one frame per peer instead of one per transaction); peers do not relay them
   * again, since every validator is connected to every other.
   */
  gossipTransaction(raw: Uint8Array): void {
    if (this.peers.size === 0 || raw.length === 0 || raw.length > this.opts.wire.maxTxBytes) return;
    // A batch never exceeds the frame cap (RLP adds at most 5 bytes per item, 16 per frame).
    if (this.txBatchBytes + raw.length + 5 + 16 > this.opts.maxFrameBytes) this.flushTransactions();
    this.txBatch.push(raw);
    this.txBatchBytes += raw.length + 5;
    if (this.txBatch.length >= this.opts.wire.maxTxsPerFrame) this.flushTransactions();
    else if (this.txTimer === null) this.txTimer = setTimeout(() => this.flushTransactions(), 5);
  }

  private flushTransactions(): void {
    if (this.txTimer !== null) clearTimeout(this.txTimer);
    this.txTimer = null;
    const txs = this.txBatch;
    this.txBatch = [];
    this.txBatchBytes = 0;
    if (txs.length > 0) this.broadcastFrame({ kind: "txs", txs });
  }

  /** Sends our status to every peer now (after a commit, so lagging peers learn it at once). */
  sendStatus(): void {
    if (this.peers.size === 0) return;
    this.broadcastFrame({ kind: "status", status: this.handlers.localStatus() });
  }

  /**
   * Checks connected peers' certificates again (after the revocation list changed, and
   * periodically for expiry): a peer whose certificate no longer verifies is disconnected.
   */
  recheckCertificates(): void {
    if (this.pki === null) return;
    for (const p of [...this.peers.values()]) {
      if (p.certificate === null) continue;
      const result = this.pki.verifyPeer(p.certificate.pem, p.id, this.now());
      if (result.ok) continue;
      this.counters.refusedCertificates++;
      this.log.warn({ peer: p.id, code: result.code }, `peer certificate no longer valid: ${result.message}`);
      this.disconnect(p, `certificate refused (${result.code})`);
    }
  }

  /** Records an offence by `peer` found above this layer (e.g. a consensus message with a bad signature). */
  penalise(peer: string, kind: OffenceKind, reason: string): void {
    const p = this.peers.get(peer);
    if (p === undefined) return;
    if (p.score.penalise(kind, this.now())) this.disconnect(p, `score limit reached (${reason})`);
    else this.log.debug({ peer, kind, reason }, "peer penalised");
  }

  /**
   * Fetches committed blocks from one peer. Resolves with what arrived (possibly fewer than asked
   * for); rejects when the peer cannot be asked or stops answering.
   */
  async requestBlocks(peer: string, fromHeight: number, maxBlocks: number): Promise<SyncedBlock[]> {
    const p = this.peers.get(peer);
    if (p === undefined || !p.verified || this.node === null)
      throw new NetworkError("NETWORK_SYNC_FAILED", `peer ${peer} is not connected`);
    const signal = AbortSignal.timeout(this.opts.syncTimeoutMs);
    let stream: Stream;
    try {
      stream = await this.node.dialProtocol(p.peerId, this.syncProtocol, { signal });
    } catch (e) {
      throw new NetworkError(
        "NETWORK_SYNC_FAILED",
        `cannot open a sync stream to ${peer}: ${(e as Error).message}`,
      );
    }
    const blocks: SyncedBlock[] = [];
    try {
      stream.send(lengthPrefixed(encodeFrame({ kind: "syncRequest", fromHeight, maxBlocks })));
      const decoder = new LengthPrefixedDecoder({ maxDataLength: this.opts.maxFrameBytes });
      const onAbort = () => stream.abort(new Error("sync request timed out"));
      signal.addEventListener("abort", onAbort, { once: true });
      try {
        for await (const chunk of stream) {
          for (const buf of decoder.decode(chunk)) {
            const bytes = buf.subarray();
            this.counters.bytesIn += bytes.length;
            const decoded = decodeFrame(bytes, this.opts.wire);
            if (!decoded.ok || (decoded.frame.kind !== "syncBlock" && decoded.frame.kind !== "syncEnd")) {
              this.penalise(peer, "malformed", "a bad sync response frame");
              throw new NetworkError("NETWORK_SYNC_FAILED", `peer ${peer} sent a bad sync response`);
            }
            if (decoded.frame.kind === "syncEnd") return blocks;
            blocks.push({ block: decoded.frame.block, certificate: decoded.frame.certificate });
            if (blocks.length > maxBlocks) {
              this.penalise(peer, "invalid", "more sync blocks than asked for");
              return blocks.slice(0, maxBlocks);
            }
          }
        }
      } finally {
        signal.removeEventListener("abort", onAbort);
      }
      if (signal.aborted)
        throw new NetworkError("NETWORK_SYNC_FAILED", `peer ${peer} did not answer a sync request in time`);
      return blocks;
    } catch (e) {
      if (e instanceof NetworkError) throw e;
      if (blocks.length > 0) return blocks;
      throw new NetworkError("NETWORK_SYNC_FAILED", `sync from ${peer} failed: ${(e as Error).message}`);
    } finally {
      try {
        await stream.close();
      } catch {
        stream.abort(new Error("closing"));
      }
    }
  }

  // ------------------------------------------------------------------ connections

  private isBanned(id: string): boolean {
    const until = this.banned.get(id);
    if (until === undefined) return false;
    if (until > this.now()) return true;
    this.banned.delete(id);
    return false;
  }

  private reconnect(): void {
    const node = this.node;
    if (node === null || this.stopping) return;
    for (const peer of this.opts.peers) {
      if (peer.nodeId === node.peerId.toString() || this.isBanned(peer.nodeId)) continue;
      if (this.peers.has(peer.nodeId) || this.dialing.has(peer.nodeId)) continue;
      this.dialing.add(peer.nodeId);
      const target = multiaddr(`${peer.address}/p2p/${peer.nodeId}`);
      node
        .dial(target, { signal: AbortSignal.timeout(5_000) })
        .catch((e: Error) => this.log.debug({ peer: peer.nodeId, err: e.message }, "dial failed; will retry"))
        .finally(() => this.dialing.delete(peer.nodeId));
    }
  }

  private peerState(peerId: PeerId): PeerState {
    const id = peerId.toString();
    let p = this.peers.get(id);
    if (p === undefined) {
      p = {
        id,
        peerId,
        out: null,
        opening: false,
        queue: [],
        queuedBytes: 0,
        score: new PeerScore(this.opts.limits, this.now()),
        verified: this.pki === null,
        introduced: this.pki === null,
        status: null,
        certificate: null,
        connectedAt: this.now(),
        lastFloodPenaltyMs: 0,
      };
      this.peers.set(id, p);
    }
    return p;
  }

  private onConnect(peerId: PeerId): void {
    const id = peerId.toString();
    if (!this.opts.permitted.has(id)) return;
    const p = this.peerState(peerId);
    this.log.info({ peer: id }, "peer connected");
    void this.openOutbound(p);
    if (p.verified) this.ready(p);
  }

  private onDisconnect(id: string): void {
    const p = this.peers.get(id);
    if (p === undefined) return;
    this.peers.delete(id);
    if (!this.stopping) this.log.info({ peer: id }, "peer disconnected");
  }

  private disconnect(p: PeerState, reason: string): void {
    this.counters.disconnects++;
    this.banned.set(p.id, this.now() + this.opts.limits.banMs);
    this.log.warn({ peer: p.id, reason, banMs: this.opts.limits.banMs }, "disconnecting a peer");
    this.peers.delete(p.id);
    void this.node?.hangUp(p.peerId).catch(() => undefined);
  }

  private ready(p: PeerState): void {
    this.log.info({ peer: p.id }, "peer ready");
    this.sendTo(p, { kind: "status", status: this.handlers.localStatus() });
    this.handlers.peerReady?.(p.id);
  }

  private async openOutbound(p: PeerState): Promise<void> {
    if (p.out !== null || p.opening || this.node === null) return;
    p.opening = true;
    try {
      const stream = await this.node.dialProtocol(p.peerId, this.msgProtocol, {
        signal: AbortSignal.timeout(10_000),
      });
      if (this.peers.get(p.id) !== p) {
        stream.abort(new Error("peer gone"));
        return;
      }
      p.out = stream;
      stream.addEventListener("drain", () => this.flush(p));
      stream.addEventListener("close", () => {
        if (p.out === stream) p.out = null;
      });
      if (this.pki !== null) {
        this.write(p, encodeFrame({ kind: "certificate", pem: this.pki.ownCertificatePem() }), true);
        p.introduced = true;
      }
      this.flush(p);
    } catch (e) {
      this.log.debug({ peer: p.id, err: (e as Error).message }, "cannot open the message stream");
    } finally {
      p.opening = false;
    }
  }

  // ------------------------------------------------------------------ sending

  private broadcastFrame(frame: Frame): void {
    const bytes = encodeFrame(frame);
    for (const p of this.peers.values()) if (p.verified) this.write(p, bytes, false);
  }

  private sendTo(p: PeerState, frame: Frame): void {
    this.write(p, encodeFrame(frame), false);
  }

  private write(p: PeerState, frame: Uint8Array, first: boolean): void {
    const data = lengthPrefixed(frame);
    if (first) p.queue.unshift(data);
    else p.queue.push(data);
    p.queuedBytes += data.length;
    // A peer that does not read: drop its oldest frames rather than grow without bound (consensus
    // re-gossips what matters; a status is resent every interval).
    while (p.queuedBytes > this.opts.maxQueueBytes && p.queue.length > 1) {
      const dropped = p.queue.splice(first ? 1 : 0, 1)[0]!;
      p.queuedBytes -= dropped.length;
      this.counters.framesDropped++;
    }
    this.flush(p);
  }

  private flush(p: PeerState): void {
    const out = p.out;
    if (out === null) {
      if (!p.opening) void this.openOutbound(p);
      return;
    }
    try {
      while (p.queue.length > 0 && !out.writableNeedsDrain && out.status === "open") {
        const data = p.queue.shift()!;
        p.queuedBytes -= data.length;
        this.counters.framesOut++;
        this.counters.bytesOut += data.length;
        if (!out.send(data)) break;
      }
    } catch (e) {
      this.log.debug({ peer: p.id, err: (e as Error).message }, "write failed");
      p.out = null;
    }
  }

  // ------------------------------------------------------------------ receiving

  private onInboundMessages(stream: Stream, connection: Connection): void {
    const id = connection.remotePeer.toString();
    if (!this.opts.permitted.has(id)) {
      stream.abort(new Error("not permitted"));
      return;
    }
    const p = this.peerState(connection.remotePeer);
    const decoder = new LengthPrefixedDecoder({
      maxDataLength: this.opts.maxFrameBytes,
      // Room for a whole frame plus the start of the next in one chunk; maxDataLength is the cap.
      maxBufferSize: 2 * this.opts.maxFrameBytes + 64 * 1024,
    });
    stream.addEventListener("message", (evt) => {
      try {
        for (const buf of decoder.decode(evt.data)) {
          if (this.peers.get(id) !== p) return;
          this.onFrame(p, buf.subarray());
        }
      } catch (e) {
        // The decoder refuses a frame over the cap: the stream cannot be resynchronised.
        stream.abort(new Error("frame too large"));
        p.score.penalise("oversized", this.now());
        this.disconnect(p, `sent an oversized or unframed message (${(e as Error).message})`);
      }
    });
  }

  private onFrame(p: PeerState, bytes: Uint8Array): void {
    const now = this.now();
    this.counters.framesIn++;
    this.counters.bytesIn += bytes.length;
    if (!p.score.admit(bytes.length, now)) {
      this.counters.framesDropped++;
      // One point a second at most: a busy validator's burst costs frames, not its connection.
      if (now - p.lastFloodPenaltyMs >= 1_000) {
        p.lastFloodPenaltyMs = now;
        this.penalise(p.id, "flooding", "over its rate limit");
      }
      return;
    }
    const decoded = decodeFrame(bytes, this.opts.wire);
    if (!decoded.ok) {
      this.log.debug({ peer: p.id, err: decoded.error.message }, "malformed frame");
      this.penalise(p.id, "malformed", decoded.error.message);
      return;
    }
    const frame = decoded.frame;
    if (!p.verified) {
      if (frame.kind === "certificate") this.verifyCertificate(p, frame.pem);
      else this.penalise(p.id, "invalid", `sent ${frame.kind} before its certificate`);
      return;
    }
    switch (frame.kind) {
      case "consensus":
        this.handlers.consensus(frame.message, p.id);
        break;
      case "txs":
        this.handlers.transactions(frame.txs, p.id);
        break;
      case "status":
        p.status = frame.status;
        this.handlers.status(frame.status, p.id);
        break;
      case "certificate":
        break; // already verified: a repeat is harmless
      default:
        this.penalise(p.id, "invalid", `sent a ${frame.kind} frame on the message stream`);
    }
  }

  private verifyCertificate(p: PeerState, pem: string): void {
    if (this.pki === null) return;
    const result = this.pki.verifyPeer(pem, p.id, this.now());
    if (this.peers.get(p.id) !== p) return;
    if (!result.ok) {
      this.counters.refusedCertificates++;
      this.log.warn({ peer: p.id, code: result.code }, `refused peer certificate: ${result.message}`);
      p.score.penalise("invalid", this.now());
      this.disconnect(p, `certificate refused (${result.code})`);
      return;
    }
    p.certificate = { subject: result.subject, notAfter: result.notAfter, pem };
    p.verified = true;
    this.ready(p);
  }

  private async onSyncRequest(stream: Stream, connection: Connection): Promise<void> {
    const id = connection.remotePeer.toString();
    const p = this.peers.get(id);
    if (p === undefined || !p.verified) {
      stream.abort(new Error("not ready"));
      return;
    }
    const decoder = new LengthPrefixedDecoder({ maxDataLength: 1024 });
    try {
      let request: Extract<Frame, { kind: "syncRequest" }> | null = null;
      for await (const chunk of stream) {
        for (const buf of decoder.decode(chunk)) {
          const decoded = decodeFrame(buf.subarray(), this.opts.wire);
          if (!decoded.ok || decoded.frame.kind !== "syncRequest") {
            this.penalise(id, "malformed", "a bad sync request");
            stream.abort(new Error("bad request"));
            return;
          }
          request = decoded.frame;
        }
        if (request !== null) break;
      }
      if (request === null) return;
      if (!p.score.admit(1, this.now())) {
        this.penalise(id, "flooding", "too many sync requests");
        stream.abort(new Error("rate limited"));
        return;
      }
      for await (const b of this.handlers.serveBlocks(request.fromHeight, request.maxBlocks)) {
        const data = lengthPrefixed(
          encodeFrame({ kind: "syncBlock", block: b.block, certificate: b.certificate }),
        );
        this.counters.syncBlocksServed++;
        this.counters.bytesOut += data.length;
        if (!stream.send(data)) await waitForDrain(stream);
      }
      stream.send(lengthPrefixed(encodeFrame({ kind: "syncEnd", reason: "done" })));
      await stream.close();
    } catch (e) {
      this.log.debug({ peer: id, err: (e as Error).message }, "sync request ended early");
      stream.abort(e as Error);
    }
  }
}

/** Waits for the stream's `drain` event (not `onDrain()`: see docs/network.md on libp2p 3's drain bug). */
function waitForDrain(stream: Stream): Promise<void> {
  return new Promise((resolve, reject) => {
    const onDrain = () => {
      stream.removeEventListener("close", onClose);
      resolve();
    };
    const onClose = () => {
      stream.removeEventListener("drain", onDrain);
      reject(new Error("stream closed"));
    };
    stream.addEventListener("drain", onDrain, { once: true });
    stream.addEventListener("close", onClose, { once: true });
  });
}
