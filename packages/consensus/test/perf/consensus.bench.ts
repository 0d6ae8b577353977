/**
 * `npm run bench:consensus`: heights per second and messages per height for n = 4, 7, 10, 16
 * validators on a zero-latency in-memory network, with real Ed25519 signing and verification
 * (node:crypto), and the share of time spent in signature operations. Every message goes through
 * the wire encoding, as in a node. Writes ci_artifacts/consensus_benchmark.json.
 *
 * Goal: the engine is cheap, so at n = 4 at least 70% of the time is signature work.
 */
import { execFileSync } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { cpus } from "node:os";
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { ed25519KeyFromSeed } from "../../sim/crypto.ts";
import { createNodeCryptoVerify, sha256 } from "../../src/crypto.ts";
import { decodeMessage, encodeMessage } from "../../src/encoding.ts";
import { createEngine, type EngineAction, type EngineInput, signedMessage } from "../../src/engine.ts";
import { ValidatorSet } from "../../src/validatorSet.ts";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "../../../..");
const GOAL_SIGNATURE_SHARE_N4 = 0.7;

interface Result {
  validators: number;
  heights: number;
  seconds: number;
  heightsPerSecond: number;
  messagesPerHeight: number;
  deliveriesPerHeight: number;
  signaturesPerHeight: number;
  verificationsPerHeight: number;
  signatureSeconds: number;
  signatureShare: number;
  encodingShare: number;
}

function bench(n: number, heights: number): Result {
  let signNs = 0n;
  let verifyNs = 0n;
  let codecNs = 0n;
  let signatures = 0;
  let verifications = 0;
  let messages = 0;
  let deliveries = 0;
  const rawVerify = createNodeCryptoVerify();
  const verify: typeof rawVerify = (alg, key, msg, sig) => {
    const t = process.hrtime.bigint();
    const ok = rawVerify(alg, key, msg, sig);
    verifyNs += process.hrtime.bigint() - t;
    verifications++;
    return ok;
  };
  const keys = Array.from({ length: n }, (_, i) =>
    ed25519KeyFromSeed(sha256(new TextEncoder().encode(`bench-${i}`))),
  );
  let set = ValidatorSet.create(
    keys.map((k) => ({ publicKey: k.publicKey, algorithm: k.algorithm, votingPower: 1 })),
  );
  const engines = keys.map((k) =>
    createEngine({ chainId: "vitalstream-bench", selfPublicKey: k.publicKey }, { verify, hashValue: sha256 }),
  );
  const block = new Uint8Array(256);
  const queue: { to: number; input: EngineInput }[] = [];
  let committed = 0;
  const commitsAt = new Map<number, number>();

  const handle = (i: number, actions: EngineAction[]) => {
    for (const a of actions) {
      switch (a.type) {
        case "requestSignature": {
          const t = process.hrtime.bigint();
          const signature = keys[i]!.sign(a.signBytes);
          signNs += process.hrtime.bigint() - t;
          signatures++;
          queue.push({ to: i, input: { type: "message", message: signedMessage(a, signature) } });
          break;
        }
        case "broadcast": {
          const t = process.hrtime.bigint();
          const bytes = encodeMessage(a.message);
          messages++;
          for (let j = 0; j < n; j++) {
            if (j === i) continue;
            const decoded = decodeMessage(bytes);
            if (!decoded.ok) throw new Error(decoded.error.detail);
            queue.push({ to: j, input: { type: "message", message: decoded.value } });
            deliveries++;
          }
          codecNs += process.hrtime.bigint() - t;
          break;
        }
        case "requestProposal":
          block.set(sha256(Uint8Array.of(a.height & 0xff, a.round & 0xff)), 0);
          queue.push({
            to: i,
            input: { type: "proposalValue", height: a.height, round: a.round, value: Uint8Array.from(block) },
          });
          break;
        case "validateValue":
          queue.push({
            to: i,
            input: { type: "valueValidated", height: a.height, valueHash: a.valueHash, valid: true },
          });
          break;
        case "commit": {
          const count = (commitsAt.get(a.height) ?? 0) + 1;
          commitsAt.set(a.height, count);
          if (count === n) committed = a.height;
          break;
        }
        case "scheduleTimeout": // zero-latency network: no timeout ever fires before progress
        case "evidence":
        case "rejected":
          break;
      }
    }
  };

  const started = process.hrtime.bigint();
  for (let h = 1; h <= heights; h++) {
    engines.forEach((e, i) => {
      handle(i, e.step({ type: "startHeight", height: h, validatorSet: set }));
    });
    while (queue.length > 0) {
      const { to, input } = queue.shift()!;
      handle(to, engines[to]!.step(input));
    }
    if (committed !== h) throw new Error(`height ${h} was not committed by every validator`);
    set = set.next();
  }
  const totalNs = Number(process.hrtime.bigint() - started);
  const seconds = totalNs / 1e9;
  const sigSeconds = Number(signNs + verifyNs) / 1e9;
  return {
    validators: n,
    heights,
    seconds: round(seconds, 3),
    heightsPerSecond: round(heights / seconds, 1),
    messagesPerHeight: round(messages / heights, 1),
    deliveriesPerHeight: round(deliveries / heights, 1),
    signaturesPerHeight: round(signatures / heights, 1),
    verificationsPerHeight: round(verifications / heights, 1),
    signatureSeconds: round(sigSeconds, 3),
    signatureShare: round(sigSeconds / seconds, 3),
    encodingShare: round(Number(codecNs) / totalNs, 3),
  };
}

function round(x: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

function gitCommit(): string | null {
  try {
    return execFileSync("git", ["rev-parse", "HEAD"], {
      cwd: ROOT,
      encoding: "utf8",
      stdio: ["ignore", "pipe", "ignore"],
    }).trim();
  } catch {
    return null;
  }
}

function main(): number {
  const { values } = parseArgs({
    options: { quick: { type: "boolean" }, out: { type: "string" }, help: { type: "boolean", short: "h" } },
  });
  if (values.help) {
    console.log("Usage: npm run bench:consensus -- [--quick] [--out FILE]");
    return 0;
  }
  const plan: [number, number][] = values.quick
    ? [
        [4, 60],
        [7, 30],
        [10, 20],
        [16, 10],
      ]
    : [
        [4, 400],
        [7, 200],
        [10, 120],
        [16, 60],
      ];
  // Warm up the JIT and OpenSSL so the first configuration is not penalised.
  bench(4, values.quick ? 10 : 40);
  const results: Result[] = [];
  for (const [n, heights] of plan) {
    process.stderr.write(`bench:consensus n=${n}: ${heights} heights ... `);
    const r = bench(n, heights);
    process.stderr.write(
      `${r.heightsPerSecond} heights/s, ${Math.round(r.signatureShare * 100)}% signature work\n`,
    );
    results.push(r);
  }
  const n4 = results.find((r) => r.validators === 4)!;
  const report = {
    benchmark: "consensus",
    generatedAt: new Date().toISOString(),
    environment: {
      node: process.version,
      cpuModel: cpus()[0]?.model ?? "unknown",
      cores: cpus().length,
      platform: `${process.platform}-${process.arch}`,
      gitCommit: gitCommit(),
    },
    parameters: {
      network: "zero-latency, in-memory, every message through the wire encoding",
      signatures: "Ed25519 via node:crypto (sign and verify, own messages verified too)",
      quick: values.quick === true,
    },
    results,
    goal: {
      description: "at n=4 at least 70% of the time is signature work",
      signatureShareN4: n4.signatureShare,
      threshold: GOAL_SIGNATURE_SHARE_N4,
      met: n4.signatureShare >= GOAL_SIGNATURE_SHARE_N4,
    },
  };
  const out = values.out ? resolve(values.out) : resolve(ROOT, "ci_artifacts/consensus_benchmark.json");
  mkdirSync(dirname(out), { recursive: true });
  writeFileSync(out, `${JSON.stringify(report, null, 2)}\n`);
  const header = [
    "n",
    "heights/s",
    "msgs/height",
    "deliveries/height",
    "signs/height",
    "verifies/height",
    "signature share",
  ];
  console.log(header.join("  "));
  for (const r of results) {
    console.log(
      [
        r.validators,
        r.heightsPerSecond,
        r.messagesPerHeight,
        r.deliveriesPerHeight,
        r.signaturesPerHeight,
        r.verificationsPerHeight,
        `${Math.round(r.signatureShare * 100)}%`,
      ]
        .map((c, i) => String(c).padStart(header[i]!.length))
        .join("  "),
    );
  }
  console.log(`\ngoal (n=4 signature share >= 70%): ${report.goal.met ? "met" : "NOT met"}; report: ${out}`);
  return 0;
}

process.exitCode = main();
