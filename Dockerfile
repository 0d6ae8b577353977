# syntax=docker/dockerfile:1
# The VitalStream validator image: `vitalstream start --config /etc/vitalstream/config.json`.
# Node 24 runs the TypeScript sources directly (type stripping): there is no build step, only
# production dependencies, three of which are native addons (classic-level, secp256k1, pkcs11js).
# Not built in this repository's CI (no container engine there): npm test lints this file
# (deploy/test/dockerfile.test.ts) and installs the same production tree without Docker.
#
#   docker build -t registry.example.com/vitalstream/node:0.1.0 .
#
# Pin the base image by digest in your registry mirror (node:24-bookworm-slim@sha256:...) for
# reproducible builds; both stages must use the same one (the addons are built for its Node ABI).

FROM node:24-bookworm-slim AS build
# node-gyp needs a compiler and Python for the addons that have no prebuilt binary (pkcs11js).
RUN apt-get update \
  && apt-get install -y --no-install-recommends python3 make g++ \
  && rm -rf /var/lib/apt/lists/*
# Build the addons against this image's own Node headers; node-gyp downloads nothing.
ENV npm_config_nodedir=/usr/local
WORKDIR /app
# Manifests first: the dependency layer is rebuilt only when they change.
COPY package.json package-lock.json ./
COPY packages/consensus/package.json packages/consensus/
COPY packages/hsm/package.json packages/hsm/
COPY packages/contracts/package.json packages/contracts/
COPY packages/node/package.json packages/node/
# Production dependencies of every workspace, exactly as locked. The root's devDependencies (the
# pinned `node` binary, vitest, Biome, TypeScript) and the packages' (Hardhat, emulators' SDKs) stay
# out.
RUN npm ci --omit=dev --no-audit --no-fund \
  && npm cache clean --force
COPY packages/consensus/src packages/consensus/src
COPY packages/hsm/src packages/hsm/src
COPY packages/contracts/src packages/contracts/src
COPY packages/node/src packages/node/src
COPY packages/node/bin packages/node/bin
RUN chmod 0755 packages/node/bin/*.js

FROM node:24-bookworm-slim AS runtime
ENV NODE_ENV=production
# The node's user: numeric, so that Kubernetes can check runAsNonRoot without reading /etc/passwd.
RUN groupadd --system --gid 10001 vitalstream \
  && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
    --shell /usr/sbin/nologin vitalstream \
  && install -d -o 10001 -g 10001 -m 0750 /var/lib/vitalstream
WORKDIR /app
# Owned by root and not writable by the node: the code cannot be changed by the process running it.
COPY --from=build /app /app
# The three commands on PATH (npm ci ran before bin/ was copied, so it linked none).
RUN ln -s /app/packages/node/bin/vitalstream.js /usr/local/bin/vitalstream \
  && ln -s /app/packages/node/bin/blockchain-backup.js /usr/local/bin/blockchain-backup \
  && ln -s /app/packages/node/bin/blockchain-restore.js /usr/local/bin/blockchain-restore \
  && vitalstream --version
USER 10001:10001
# JSON-RPC/REST (/health, /ready), libp2p, Prometheus /metrics.
EXPOSE 8545 26656 9090
# For `docker run`; Kubernetes uses its own probes (validator-deployment.yaml). Assumes RPC without
# TLS on its default port.
HEALTHCHECK --interval=30s --timeout=5s --start-period=10m --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:8545/health').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
ENTRYPOINT ["vitalstream"]
CMD ["start", "--config", "/etc/vitalstream/config.json"]
