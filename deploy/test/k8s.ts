/**
 * Reading and checking Kubernetes manifests without a cluster: parsing as kubectl does, the schema
 * of each kind (kubernetes-models and its CRD packages), and kubectl's strict field validation
 * (unknown fields) through the same packages' TypeScript types.
 */
import { readdirSync, readFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import ts from "typescript";
import { parseAllDocuments } from "yaml";

export const DEPLOY = resolve(dirname(fileURLToPath(import.meta.url)), "..");
export const ROOT = resolve(DEPLOY, "..");
export const MANIFESTS = join(DEPLOY, "kubernetes");

/** A Kubernetes object as YAML gives it: checked by the schemas, read loosely by the tests. */
// biome-ignore lint/suspicious/noExplicitAny: manifests are arbitrary JSON; the schema tests check their shape
export type K8sObject = Record<string, any> & { apiVersion: string; kind: string };

export interface Manifest {
  file: string;
  index: number;
  object: K8sObject;
}

/** The resource files: every .yaml in deploy/kubernetes except the kustomization itself. */
export function manifestFiles(): string[] {
  return readdirSync(MANIFESTS)
    .filter((f) => /\.ya?ml$/.test(f) && f !== "kustomization.yaml")
    .sort();
}

/**
 * Every document of a file, as kubectl reads it: YAML 1.1 (an unquoted 0400 is octal, yes/on are
 * booleans). Parse errors and warnings throw, naming the file and the place.
 */
export function parseManifestFile(
  file: string,
  text = readFileSync(join(MANIFESTS, file), "utf8"),
): Manifest[] {
  const out: Manifest[] = [];
  parseAllDocuments(text, { version: "1.1", prettyErrors: true }).forEach((doc, index) => {
    const problems = [...doc.errors, ...doc.warnings];
    if (problems.length > 0) throw new Error(`${file} document ${index}: ${problems[0]!.message}`);
    const object = doc.toJS() as unknown;
    if (object === null || object === undefined) return; // an empty document (e.g. after a trailing ---)
    if (typeof object !== "object" || Array.isArray(object))
      throw new Error(`${file} document ${index} is not a mapping`);
    const o = object as Record<string, unknown>;
    if (typeof o.apiVersion !== "string" || typeof o.kind !== "string")
      throw new Error(`${file} document ${index} has no apiVersion or kind`);
    out.push({ file, index, object: o as K8sObject });
  });
  return out;
}

export function loadManifests(): Manifest[] {
  return manifestFiles().flatMap((file) => parseManifestFile(file));
}

export function describeManifest(m: Manifest): string {
  return `${m.file}: ${m.object.kind}/${m.object.metadata?.name ?? "(no name)"}`;
}

/** API groups served by CRDs, and the @kubernetes-models package that has their schemas. */
const CRD_MODELS: Record<string, string> = {
  "bitnami.com": "@kubernetes-models/sealed-secrets",
  "external-secrets.io": "@kubernetes-models/external-secrets",
  "monitoring.coreos.com": "@kubernetes-models/prometheus-operator",
};

/** The module that defines `kind` of `apiVersion` (its class and its `I<kind>` interface). */
export function modelModule(apiVersion: string, kind: string): string {
  const slash = apiVersion.indexOf("/");
  const group = slash < 0 ? "" : apiVersion.slice(0, slash);
  const version = slash < 0 ? apiVersion : apiVersion.slice(slash + 1);
  if (!/^[A-Z][A-Za-z0-9]*$/.test(kind) || !/^v\d+((alpha|beta)\d+)?$/.test(version))
    throw new Error(`not a Kubernetes apiVersion/kind: ${apiVersion} ${kind}`);
  // Built-in groups: the core group ("v1"), single-word groups (apps, batch, policy) and *.k8s.io.
  const builtIn = group === "" || !group.includes(".") || group.endsWith(".k8s.io");
  const pkg = builtIn ? "kubernetes-models" : CRD_MODELS[group];
  if (pkg === undefined)
    throw new Error(`no schema for ${apiVersion} ${kind}: add its @kubernetes-models package to CRD_MODELS`);
  return group === "" ? `${pkg}/${version}/${kind}` : `${pkg}/${group}/${version}/${kind}`;
}

interface ModelClass {
  apiVersion: string;
  kind: string;
  new (data: unknown): { validate(): void };
}

/** The model class of `kind`; throws for a kind no package knows (never a silent skip). */
export async function modelFor(apiVersion: string, kind: string): Promise<ModelClass> {
  const path = modelModule(apiVersion, kind);
  let mod: Record<string, unknown>;
  try {
    mod = (await import(/* @vite-ignore */ path)) as Record<string, unknown>;
  } catch (e) {
    throw new Error(`no schema for ${apiVersion} ${kind} (${path}: ${(e as Error).message.split("\n")[0]})`);
  }
  const model = mod[kind] as ModelClass | undefined;
  if (typeof model !== "function" || model.apiVersion !== apiVersion || model.kind !== kind)
    throw new Error(`no schema for ${apiVersion} ${kind} in ${path}`);
  return model;
}

/** Schema validation of one object; throws with the schema's messages. */
export async function validateSchema(object: K8sObject): Promise<void> {
  const Model = await modelFor(object.apiVersion, object.kind);
  new Model(object).validate();
}

/**
 * Fields that the kind does not have, as `kubectl apply --validate=strict` refuses them (the
 * schemas above allow unknown properties, as Kubernetes' OpenAPI does). Each object becomes a
 * fresh object literal typed with the model's `I<kind>` interface; TypeScript's excess-property
 * check then names every unknown field at any depth, and every wrong type. Returns one line per
 * problem: "<file>: <kind>/<name>: <message>".
 */
export function strictFieldProblems(manifests: Manifest[]): string[] {
  const file = join(DEPLOY, "test", "__manifests_strict__.ts");
  const imports = manifests.map(
    (m, i) =>
      `import type { I${m.object.kind} as T${i} } from "${modelModule(m.object.apiVersion, m.object.kind)}";\n`,
  );
  let text = imports.join("");
  let line = imports.length;
  // Where each object starts, to name the object a diagnostic is about.
  const owners: { line: number; label: string }[] = [];
  manifests.forEach((m, i) => {
    owners.push({ line, label: describeManifest(m) });
    const declaration = `export const m${i}: T${i} = ${JSON.stringify(m.object, null, 1)};\n`;
    text += declaration;
    line += declaration.split("\n").length - 1;
  });
  const options: ts.CompilerOptions = {
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
    target: ts.ScriptTarget.ES2023,
    strict: true,
    noEmit: true,
    skipLibCheck: true,
    types: [],
  };
  const host = ts.createCompilerHost(options);
  const getSourceFile = host.getSourceFile.bind(host);
  const fileExists = host.fileExists.bind(host);
  host.getSourceFile = (name, version, ...rest) =>
    name === file ? ts.createSourceFile(name, text, version, true) : getSourceFile(name, version, ...rest);
  host.fileExists = (name) => name === file || fileExists(name);
  const program = ts.createProgram([file], options, host);
  return ts
    .getPreEmitDiagnostics(program)
    .filter((d) => d.file === undefined || d.file.fileName === file)
    .map((d) => {
      const line =
        d.file !== undefined && d.start !== undefined
          ? d.file.getLineAndCharacterOfPosition(d.start).line
          : -1;
      const owner = [...owners].reverse().find((o) => o.line <= line);
      return `${owner?.label ?? "(imports)"}: ${ts.flattenDiagnosticMessageText(d.messageText, " ")}`;
    });
}

/** The pod templates of the workloads among `manifests` (StatefulSet, Deployment, Job, CronJob, ...). */
export function podTemplates(
  manifests: Manifest[],
): { owner: string; metadata: K8sObject["metadata"]; spec: K8sObject }[] {
  const out: { owner: string; metadata: K8sObject["metadata"]; spec: K8sObject }[] = [];
  for (const m of manifests) {
    const o = m.object;
    const template =
      o.kind === "CronJob"
        ? o.spec?.jobTemplate?.spec?.template
        : ["StatefulSet", "Deployment", "DaemonSet", "ReplicaSet", "Job"].includes(o.kind)
          ? o.spec?.template
          : o.kind === "Pod"
            ? o
            : undefined;
    if (template !== undefined)
      out.push({ owner: describeManifest(m), metadata: template.metadata, spec: template.spec });
  }
  return out;
}

export interface LabelSelector {
  matchLabels?: Record<string, string>;
  matchExpressions?: { key: string; operator: string; values?: string[] }[];
}

/** Whether a label selector (matchLabels and matchExpressions) selects `labels`. */
export function selects(
  selector: LabelSelector | undefined,
  labels: Record<string, string> | undefined,
): boolean {
  if (selector === undefined) return false;
  const have = labels ?? {};
  for (const [k, v] of Object.entries(selector.matchLabels ?? {})) if (have[k] !== v) return false;
  for (const e of selector.matchExpressions ?? []) {
    const value = have[e.key];
    if (e.operator === "In" && (value === undefined || !(e.values ?? []).includes(value))) return false;
    if (e.operator === "NotIn" && value !== undefined && (e.values ?? []).includes(value)) return false;
    if (e.operator === "Exists" && value === undefined) return false;
    if (e.operator === "DoesNotExist" && value !== undefined) return false;
  }
  return true;
}
