/**
 * deploy/kubernetes, checked without a cluster: every document parses as kubectl reads it and
 * passes its kind's schema (kubernetes-models and the Sealed Secrets, External Secrets and
 * Prometheus Operator packages) with no unknown field; every pod runs restricted; the
 * kustomization lists exactly the files; ports and probes are the node's own; the example config
 * (deploy/config) is one the node accepts and fits the manifests; yamllint passes.
 */
import { spawnSync } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { parseProviderConfig } from "@vitalstream/hsm";
import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import { vitalstreamMethods } from "../../packages/node/src/rpc/vitalstreamMethods.ts";
import { parseNodeConfig } from "../../packages/node/src/runtime/config.ts";
import {
  DEPLOY,
  describeManifest,
  type K8sObject,
  loadManifests,
  MANIFESTS,
  manifestFiles,
  modelFor,
  parseManifestFile,
  podTemplates,
  ROOT,
  selects,
  strictFieldProblems,
  validateSchema,
} from "./k8s.ts";

const manifests = loadManifests();
const find = (kind: string, name: string): K8sObject => {
  const m = manifests.find((x) => x.object.kind === kind && x.object.metadata?.name === name);
  if (m === undefined) throw new Error(`no ${kind}/${name} in deploy/kubernetes`);
  return m.object;
};
const statefulSet = find("StatefulSet", "vitalstream-validator");
const validatorPod = statefulSet.spec.template.spec;
const validator = validatorPod.containers.find((c: K8sObject) => c.name === "validator");
const cronJob = find("CronJob", "vitalstream-backup");
const backupPod = cronJob.spec.jobTemplate.spec.template.spec;
const headless = find("Service", "vitalstream-validator");
const rpcService = find("Service", "vitalstream-rpc");

/** The node's own defaults: config schema defaults and the REST probe routes. */
const nodeDefaults = (() => {
  const config = parseNodeConfig({ genesisFile: "g.json", dataDir: "d", metrics: {} }, "/");
  const listen = /\/tcp\/(\d+)$/.exec(config.p2p.listen[0]!);
  const stub = {
    chain: {},
    consensusStatus: () => ({}),
    signer: null,
    minPeers: 0,
    peerCount: () => 0,
    syncing: () => false,
  };
  const routes = vitalstreamMethods(stub as unknown as Parameters<typeof vitalstreamMethods>[0]).routes;
  return {
    rpc: config.rpc.port,
    p2p: Number(listen?.[1]),
    metrics: config.metrics!.port,
    routes: routes.map((r) => `${r.method} ${r.path}`),
  };
})();

/** A container port's number, given its number or its name. */
function portNumber(container: K8sObject, port: number | string): number {
  if (typeof port === "number") return port;
  const named = (container.ports ?? []).find((p: K8sObject) => p.name === port);
  if (named === undefined) throw new Error(`container ${container.name} has no port named ${port}`);
  return named.containerPort;
}

describe("deploy/kubernetes: parsing and schemas", () => {
  it("has the objects the deployment is made of", () => {
    const kinds = manifests.map((m) => `${m.object.kind}/${m.object.metadata?.name}`);
    for (const expected of [
      "Namespace/vitalstream",
      "StatefulSet/vitalstream-validator",
      "Service/vitalstream-validator",
      "Service/vitalstream-rpc",
      "PodDisruptionBudget/vitalstream-validator",
      "NetworkPolicy/default-deny-all",
      "ServiceAccount/vitalstream-validator",
      "CronJob/vitalstream-backup",
      "PersistentVolumeClaim/vitalstream-backups",
      "SealedSecret/vitalstream-validator-keys",
      "ExternalSecret/vitalstream-validator-hsm",
      "SecretStore/vault",
      "ServiceMonitor/vitalstream-validator",
    ])
      expect(kinds).toContain(expected);
  });

  it.each(manifests.map((m) => [describeManifest(m), m] as const))(
    "%s passes its kind's schema",
    async (_, m) => {
      await validateSchema(m.object);
    },
  );

  it("fails on a kind no schema package knows, instead of skipping it", async () => {
    await expect(modelFor("example.com/v1", "Widget")).rejects.toThrow(
      /no schema for example.com\/v1 Widget/,
    );
    await expect(modelFor("apps/v1", "Widget")).rejects.toThrow(/no schema for apps\/v1 Widget/);
    await expect(validateSchema({ apiVersion: "bitnami.com/v1", kind: "SealedSecret" })).rejects.toThrow(
      /no schema/,
    );
  });

  it("and the schemas have teeth: a broken StatefulSet fails", async () => {
    const broken = structuredClone(statefulSet);
    broken.spec.replicas = "four";
    delete broken.spec.selector;
    await expect(validateSchema(broken)).rejects.toThrow(
      /replicas must be integer.*selector|selector.*replicas/s,
    );
  });

  it("have no field their kind does not know (kubectl apply --validate=strict)", () => {
    expect(strictFieldProblems(manifests)).toEqual([]);
  });

  it("and that check has teeth: a misspelt field and a wrong type are named", () => {
    const misspelt = structuredClone(statefulSet);
    const c = misspelt.spec.template.spec.containers[0];
    c.securityContex = c.securityContext;
    delete c.securityContext;
    const wrongType = structuredClone(statefulSet);
    wrongType.spec.template.spec.containers[0].ports[0].containerPort = "8545";
    const problems = strictFieldProblems([
      { file: "misspelt.yaml", index: 0, object: misspelt },
      { file: "wrong-type.yaml", index: 0, object: wrongType },
    ]);
    expect(problems).toHaveLength(2);
    expect(problems[0]).toMatch(
      /^misspelt\.yaml: StatefulSet\/vitalstream-validator: .*"securityContex".* does not exist in type 'IContainer'/,
    );
    expect(problems[1]).toMatch(
      /^wrong-type\.yaml: StatefulSet\/vitalstream-validator: .*'string'.*'number'/,
    );
  });

  it("are read as kubectl reads YAML (1.1): the secret files' mode 0400 is octal", () => {
    const secrets = validatorPod.volumes.find((v: K8sObject) => v.name === "secrets");
    expect(secrets.projected.defaultMode).toBe(0o400);
    expect(() =>
      parseManifestFile("bad.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x\n"),
    ).toThrow(/bad\.yaml document 0/);
  });
});

describe("deploy/kubernetes: security", () => {
  const pods = podTemplates(manifests);

  it("finds the validator and backup pod templates", () => {
    expect(pods.map((p) => p.owner)).toEqual(
      expect.arrayContaining([
        "validator-deployment.yaml: StatefulSet/vitalstream-validator",
        "backup-cronjob.yaml: CronJob/vitalstream-backup",
      ]),
    );
  });

  for (const pod of pods) {
    const containers: K8sObject[] = [...(pod.spec.containers ?? []), ...(pod.spec.initContainers ?? [])];

    it(`${pod.owner}: every container and init container runs restricted`, () => {
      expect(containers.length).toBeGreaterThan(0);
      const podContext = pod.spec.securityContext ?? {};
      for (const c of containers) {
        const sc = c.securityContext ?? {};
        const effective = (field: string) => sc[field] ?? podContext[field];
        const where = `${pod.owner} container ${c.name}`;
        expect(effective("runAsNonRoot"), where).toBe(true);
        expect(effective("runAsUser"), where).toBe(10001);
        expect(effective("runAsGroup"), where).toBe(10001);
        expect(sc.readOnlyRootFilesystem, where).toBe(true);
        expect(sc.allowPrivilegeEscalation, where).toBe(false);
        expect(sc.privileged ?? false, where).toBe(false);
        expect(sc.capabilities?.drop, where).toContain("ALL");
        expect(sc.capabilities?.add ?? [], where).toEqual([]);
        expect((sc.seccompProfile ?? podContext.seccompProfile)?.type, where).toBe("RuntimeDefault");
        // A pinned image: a tag that is not "latest" (or a digest).
        expect(c.image, where).toMatch(/^[^:@\s]+(:(?!latest$)[\w.-]+|@sha256:[0-9a-f]{64})$/);
      }
      expect(podContext.fsGroup).toBe(10001);
      expect(podContext.seccompProfile?.type).toBe("RuntimeDefault");
    });

    it(`${pod.owner}: no API token, no host access, secrets 0400, a writable /tmp only where mounted`, () => {
      expect(pod.spec.automountServiceAccountToken).toBe(false);
      expect(pod.spec.serviceAccountName).toMatch(/^vitalstream-/);
      for (const field of ["hostNetwork", "hostPID", "hostIPC"]) expect(pod.spec[field] ?? false).toBe(false);
      const volumes: K8sObject[] = pod.spec.volumes ?? [];
      for (const v of volumes) {
        expect(v.hostPath, `${pod.owner} volume ${v.name}`).toBeUndefined();
        if (v.secret !== undefined) expect(v.secret.defaultMode).toBe(0o400);
        if (v.projected?.sources?.some((s: K8sObject) => s.secret !== undefined))
          expect(v.projected.defaultMode, `${pod.owner} volume ${v.name}`).toBe(0o400);
      }
      for (const c of containers) {
        const tmp = (c.volumeMounts ?? []).find((m: K8sObject) => m.mountPath === "/tmp");
        expect(tmp, `${c.name} has a writable /tmp`).toBeDefined();
        expect(volumes.find((v) => v.name === tmp.name)?.emptyDir).toBeDefined();
        for (const m of c.volumeMounts ?? []) {
          const volume = volumes.find((v) => v.name === m.name);
          if (
            volume?.secret !== undefined ||
            volume?.projected !== undefined ||
            volume?.configMap !== undefined
          )
            expect(m.readOnly, `${c.name} mounts ${m.name} read-only`).toBe(true);
        }
      }
    });
  }

  it("the namespace enforces, audits and warns the restricted Pod Security profile", () => {
    const labels = find("Namespace", "vitalstream").metadata.labels;
    for (const mode of ["enforce", "audit", "warn"])
      expect(labels[`pod-security.kubernetes.io/${mode}`]).toBe("restricted");
  });

  it("every namespaced object is in the vitalstream namespace", () => {
    for (const m of manifests.filter((x) => x.object.kind !== "Namespace"))
      expect(m.object.metadata?.namespace, describeManifest(m)).toBe("vitalstream");
  });

  it("no Role or ClusterRole is granted: nothing here calls the Kubernetes API", () => {
    const rbac = manifests.filter((m) => m.object.apiVersion.startsWith("rbac.authorization.k8s.io/"));
    expect(rbac.map(describeManifest)).toEqual([]);
    for (const m of manifests.filter((x) => x.object.kind === "ServiceAccount"))
      expect(m.object.automountServiceAccountToken, describeManifest(m)).toBe(false);
  });

  it("network policies deny everything by default and allow only the documented paths", () => {
    const policies = manifests.filter((m) => m.object.kind === "NetworkPolicy").map((m) => m.object);
    const deny = policies.find((p) => p.metadata.name === "default-deny-all")!;
    expect(deny.spec).toEqual({ podSelector: {}, policyTypes: ["Ingress", "Egress"] });
    const validatorLabels = statefulSet.spec.template.metadata.labels;
    const backupLabels = cronJob.spec.jobTemplate.spec.template.metadata.labels;
    const ingressPorts = (labels: Record<string, string>) =>
      policies
        .filter((p) => selects(p.spec.podSelector, labels))
        .flatMap((p) =>
          (p.spec.ingress ?? []).flatMap((r: K8sObject) => r.ports.map((x: K8sObject) => x.port)),
        );
    expect(new Set(ingressPorts(validatorLabels))).toEqual(
      new Set([nodeDefaults.p2p, nodeDefaults.rpc, nodeDefaults.metrics]),
    );
    expect(ingressPorts(backupLabels)).toEqual([]);
    const metrics = policies.find((p) => p.metadata.name === "validator-metrics")!;
    expect(metrics.spec.ingress[0].from[0].namespaceSelector.matchLabels).toEqual({
      "kubernetes.io/metadata.name": "monitoring",
    });
    const rpc = policies.find((p) => p.metadata.name === "validator-rpc")!;
    expect(rpc.spec.ingress[0].from[0].namespaceSelector.matchLabels).toEqual({
      "vitalstream.io/rpc-access": "true",
    });
    const dns = policies.find((p) => p.metadata.name === "allow-dns-egress")!;
    expect(dns.spec.podSelector).toEqual({});
    expect(dns.spec.egress[0].ports.map((p: K8sObject) => `${p.protocol}/${p.port}`)).toEqual([
      "UDP/53",
      "TCP/53",
    ]);
  });
});

describe("deploy/kubernetes: the validators", () => {
  it("4 validators, at most one voluntarily down (BFT needs more than 2/3), one per host", () => {
    expect(statefulSet.spec.replicas).toBe(4);
    const pdb = find("PodDisruptionBudget", "vitalstream-validator");
    expect(pdb.spec.minAvailable).toBe(3);
    expect(pdb.spec.minAvailable).toBeGreaterThan((statefulSet.spec.replicas * 2) / 3);
    const anti = validatorPod.affinity.podAntiAffinity;
    expect(anti.requiredDuringSchedulingIgnoredDuringExecution[0].topologyKey).toBe("kubernetes.io/hostname");
    expect(anti.preferredDuringSchedulingIgnoredDuringExecution[0].podAffinityTerm.topologyKey).toBe(
      "topology.kubernetes.io/zone",
    );
    // Pods start together: one waiting for another to be Ready would wait forever (/ready needs a peer).
    expect(statefulSet.spec.podManagementPolicy).toBe("Parallel");
    expect(validator.resources).toEqual({ requests: { cpu: "2", memory: "4Gi" }, limits: { memory: "4Gi" } });
  });

  it("every selector selects the pods it is meant for", () => {
    const validatorLabels = statefulSet.spec.template.metadata.labels;
    expect(selects(statefulSet.spec.selector, validatorLabels)).toBe(true);
    expect(selects(find("PodDisruptionBudget", "vitalstream-validator").spec.selector, validatorLabels)).toBe(
      true,
    );
    expect(selects({ matchLabels: headless.spec.selector }, validatorLabels)).toBe(true);
    expect(selects({ matchLabels: rpcService.spec.selector }, validatorLabels)).toBe(true);
    for (const term of validatorPod.affinity.podAntiAffinity.requiredDuringSchedulingIgnoredDuringExecution)
      expect(selects(term.labelSelector, validatorLabels)).toBe(true);
    const monitor = find("ServiceMonitor", "vitalstream-validator");
    expect(selects(monitor.spec.selector, headless.metadata.labels)).toBe(true);
    expect(selects(monitor.spec.selector, rpcService.metadata.labels)).toBe(false);
    expect(statefulSet.spec.serviceName).toBe(headless.metadata.name);
  });

  it("ports and probes are the node's defaults: 8545 (/health, /ready), 26656, 9090 (/metrics)", () => {
    expect(nodeDefaults).toMatchObject({ rpc: 8545, p2p: 26656, metrics: 9090 });
    expect(nodeDefaults.routes).toEqual(expect.arrayContaining(["GET /health", "GET /ready"]));
    const ports = Object.fromEntries(validator.ports.map((p: K8sObject) => [p.name, p.containerPort]));
    expect(ports).toEqual({ rpc: nodeDefaults.rpc, p2p: nodeDefaults.p2p, metrics: nodeDefaults.metrics });
    const probe = (name: string) => ({
      path: validator[name].httpGet.path,
      port: portNumber(validator, validator[name].httpGet.port),
    });
    expect(probe("startupProbe")).toEqual({ path: "/health", port: nodeDefaults.rpc });
    expect(probe("livenessProbe")).toEqual({ path: "/health", port: nodeDefaults.rpc });
    expect(probe("readinessProbe")).toEqual({ path: "/ready", port: nodeDefaults.rpc });

    const servicePorts = (s: K8sObject) =>
      s.spec.ports.map((p: K8sObject) => `${p.name} ${p.port}->${portNumber(validator, p.targetPort)}`);
    expect(servicePorts(headless)).toEqual([
      `p2p ${nodeDefaults.p2p}->${nodeDefaults.p2p}`,
      `metrics ${nodeDefaults.metrics}->${nodeDefaults.metrics}`,
    ]);
    expect(headless.spec.clusterIP).toBe("None");
    expect(headless.spec.publishNotReadyAddresses).toBe(true);
    expect(servicePorts(rpcService)).toEqual([`rpc ${nodeDefaults.rpc}->${nodeDefaults.rpc}`]);
    expect(rpcService.spec.type).toBe("ClusterIP");

    const monitor = find("ServiceMonitor", "vitalstream-validator");
    expect(monitor.spec.endpoints).toMatchObject([{ port: "metrics", path: "/metrics" }]);
    // job="vitalstream-validator", the job the alerts select.
    expect(headless.metadata.labels[monitor.spec.jobLabel]).toBe("vitalstream-validator");
  });

  it("the backup job targets validator-0's RPC port through the headless Service", () => {
    const env = Object.fromEntries(backupPod.containers[0].env.map((e: K8sObject) => [e.name, e.value]));
    expect(env.BACKUP_RPC_URL).toBe(
      `http://${statefulSet.metadata.name}-0.${headless.metadata.name}:${nodeDefaults.rpc}`,
    );
    expect(cronJob.spec.concurrencyPolicy).toBe("Forbid");
    expect(Number(env.BACKUP_KEEP)).toBeGreaterThan(0);
  });
});

describe("deploy/config: the example validator config", () => {
  const configDir = validator.volumeMounts.find((m: K8sObject) => m.name === "config").mountPath;
  const secretDir = validator.volumeMounts.find((m: K8sObject) => m.name === "secrets").mountPath;
  const dataDir = validator.volumeMounts.find((m: K8sObject) => m.name === "data").mountPath;
  const podName = `${statefulSet.metadata.name}-0`;
  const raw = JSON.parse(readFileSync(join(DEPLOY, "config", `${podName}.json`), "utf8"));
  const config = parseNodeConfig(raw, configDir);

  it("is the file the pod's arguments name, and the node accepts it", () => {
    expect(validator.args).toEqual(["start", "--config", `${configDir}/$(POD_NAME).json`]);
    expect(validator.env.find((e: K8sObject) => e.name === "POD_NAME").valueFrom.fieldRef.fieldPath).toBe(
      "metadata.name",
    );
    expect(config.production).toBe(true);
    expect(config.genesisFile).toBe(`${configDir}/genesis.json`);
    expect(config.dataDir).toBe(dataDir);
  });

  it("listens where the pod's ports and probes expect it", () => {
    expect(config.rpc).toMatchObject({ host: "0.0.0.0", port: nodeDefaults.rpc });
    expect(config.metrics).toMatchObject({ host: "0.0.0.0", port: nodeDefaults.metrics });
    expect(config.p2p.listen).toEqual([`/ip4/0.0.0.0/tcp/${nodeDefaults.p2p}`]);
    expect(config.rpc.tls).toBeUndefined(); // the probes speak HTTP
  });

  it("dials its peers by their headless-Service DNS names", () => {
    const others = [1, 2, 3].map(
      (i) =>
        `/dns4/${statefulSet.metadata.name}-${i}.${headless.metadata.name}.vitalstream.svc.cluster.local/tcp/${nodeDefaults.p2p}`,
    );
    expect(config.p2p.peers.map((p) => p.address)).toEqual(others);
  });

  it("reads its secrets from files the Secrets provide, and the rest from the ConfigMap", () => {
    const sealed = find("SealedSecret", "vitalstream-validator-keys");
    const keys = Object.keys(sealed.spec.encryptedData);
    expect(config.nodeKeyFile).toBe(`${secretDir}/${podName}.node-key`);
    expect(config.rpc.adminTokenFile).toBe(`${secretDir}/${podName}.admin-token`);
    expect(keys).toEqual(expect.arrayContaining([`${podName}.node-key`, `${podName}.admin-token`]));
    for (let i = 0; i < statefulSet.spec.replicas; i++)
      expect(keys).toEqual(expect.arrayContaining([`${statefulSet.metadata.name}-${i}.node-key`]));
    const hsm = find("ExternalSecret", "vitalstream-validator-hsm");
    const projected = validatorPod.volumes.find((v: K8sObject) => v.name === "secrets").projected.sources;
    expect(projected.map((s: K8sObject) => s.secret.name)).toEqual([
      sealed.spec.template.metadata.name,
      hsm.spec.target.name,
    ]);
    expect(config.p2p.pki?.caFile).toBe(`${configDir}/ca.pem`);
    expect(config.p2p.pki?.revocationFile).toBe(`${configDir}/revoked.json`);
    const configVolume = validatorPod.volumes.find((v: K8sObject) => v.name === "config");
    expect(configVolume.configMap.items).toBeUndefined(); // the whole map, so updates reach revoked.json
  });

  it("the backup job's chain check config restores into its scratch volume", () => {
    const container = backupPod.containers[0];
    const env = Object.fromEntries(container.env.map((e: K8sObject) => [e.name, e.value]));
    const mount = (name: string) => container.volumeMounts.find((m: K8sObject) => m.name === name).mountPath;
    expect(env.VERIFY_CONFIG).toBe(`${mount("config")}/backup-verify.json`);
    const verify = parseNodeConfig(
      JSON.parse(readFileSync(join(DEPLOY, "config/backup-verify.json"), "utf8")),
      "/x",
    );
    expect(verify.dataDir.startsWith(`${mount("scratch")}/`)).toBe(true);
    expect(verify.storageKey).toEqual(config.storageKey);
    expect(verify.production).toBe(true);
  });
});

describe("deploy/kubernetes: kustomization and lint", () => {
  it("kustomization.yaml lists exactly the manifest files present", () => {
    const kustomization = parse(readFileSync(join(MANIFESTS, "kustomization.yaml"), "utf8"));
    expect(kustomization.kind).toBe("Kustomization");
    expect([...kustomization.resources].sort()).toEqual(manifestFiles());
    const images = new Set(
      podTemplates(manifests).flatMap((p) => p.spec.containers.map((c: K8sObject) => c.image)),
    );
    expect([...images].map((i) => i.replace(/:[^:/]+$/, ""))).toEqual([kustomization.images[0].name]);
  });

  // kubectl is not a Debian package here (Debian's kubernetes-client is 1.20 with an old kustomize):
  // this runs where a kubectl is installed and is skipped elsewhere.
  const kubectl = spawnSync("kubectl", ["version", "--client"], { encoding: "utf8" }).status === 0;
  it.skipIf(!kubectl)("kubectl kustomize renders the same objects, with 0400 as mode 256", () => {
    const r = spawnSync("kubectl", ["kustomize", MANIFESTS], {
      encoding: "utf8",
      maxBuffer: 64 * 1024 * 1024,
    });
    expect(r.status, r.stderr).toBe(0);
    const rendered = parseManifestFile("(kustomize output)", r.stdout);
    const key = (o: K8sObject) => `${o.kind}/${o.metadata?.name}`;
    expect(rendered.map((m) => key(m.object)).sort()).toEqual(manifests.map((m) => key(m.object)).sort());
    const sts = rendered.find((m) => m.object.kind === "StatefulSet")!.object;
    expect(
      sts.spec.template.spec.volumes.find((v: K8sObject) => v.name === "secrets").projected.defaultMode,
    ).toBe(256);
  });

  it("yamllint passes (Debian package yamllint)", () => {
    const r = spawnSync("yamllint", ["-f", "parsable", "-c", join(DEPLOY, ".yamllint.yaml"), MANIFESTS], {
      encoding: "utf8",
    });
    if (r.error !== undefined)
      throw new Error(`yamllint is not installed: apt-get install yamllint (${r.error.message})`);
    expect(r.stdout.split("\n").filter((l) => l.includes("[error]"))).toEqual([]);
    expect(r.status).toBe(0);
  });

  it("and yamllint has teeth: a YAML 1.1 boolean in disguise is an error", () => {
    const r = spawnSync("yamllint", ["-f", "parsable", "-c", join(DEPLOY, ".yamllint.yaml"), "-"], {
      input: "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\ndata:\n  enabled: yes\n",
      encoding: "utf8",
    });
    expect(r.status).toBe(1);
    expect(r.stdout).toContain("truthy");
  });
});

describe("docs/operations.md", () => {
  const text = readFileSync(join(ROOT, "docs/operations.md"), "utf8");
  // GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens.
  const anchors = (text.match(/^#+ .*$/gm) ?? []).map((h) =>
    h
      .replace(/^#+ /, "")
      .toLowerCase()
      .replace(/[^a-z0-9 -]/g, "")
      .replace(/ /g, "-"),
  );

  it("has every section that the manifests, configs and its own links point to", () => {
    const files = [
      ...readdirSync(MANIFESTS).map((f) => join(MANIFESTS, f)),
      ...readdirSync(join(DEPLOY, "config")).map((f) => join(DEPLOY, "config", f)),
    ];
    const links = [
      ...files.flatMap((f) => [...readFileSync(f, "utf8").matchAll(/docs\/operations\.md#([a-z0-9-]+)/g)]),
      ...text.matchAll(/\]\(#([a-z0-9-]+)\)/g),
    ].map((m) => m[1]!);
    expect(links.length).toBeGreaterThan(10);
    for (const link of new Set(links)) expect(anchors, `#${link}`).toContain(link);
  });

  it("gives signer configs the node accepts", () => {
    const blocks = [...text.matchAll(/```json\n([\s\S]*?)```/g)].map((m) => JSON.parse(m[1]!));
    const providers = blocks.filter((b) => typeof b.provider === "string");
    expect(providers.map((p) => p.provider).sort()).toEqual(["aws-kms", "azure-keyvault", "pkcs11", "vault"]);
    for (const p of providers) {
      expect(() => parseProviderConfig(p), p.provider).not.toThrow();
      for (const field of ["pinFile", "tokenFile", "clientSecretFile"])
        if (p[field] !== undefined)
          expect(p[field]).toMatch(/^\/var\/run\/secrets\/vitalstream\/vitalstream-validator-0\./);
    }
  });
});
