/**
 * The Dockerfile as data (dockerfile-ast): its stages and their instructions, and what
 * .dockerignore lets into the build context. There is no container engine here: the tests read
 * the file, and image.test.ts replays the build stage's install without one.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { DockerfileParser, type Flag, type Instruction } from "dockerfile-ast";
import { ROOT } from "./k8s.ts";

export interface Stage {
  /** The FROM image, e.g. "node:24-bookworm-slim". */
  image: string;
  name: string | null;
  instructions: StageInstruction[];
}

export interface StageInstruction {
  keyword: string;
  /** The arguments without flags, continuation lines joined. */
  args: string;
  /** The exec (JSON) form's strings, if written that way. */
  json: string[] | null;
  /** --name=value flags (COPY --from, --chown; FROM --platform). */
  flags: Record<string, string>;
}

function jsonArgs(instruction: Instruction): string[] | null {
  const text = instruction.getArgumentsContent()?.trim() ?? "";
  if (!text.startsWith("[")) return null;
  try {
    const parsed = JSON.parse(text) as unknown;
    return Array.isArray(parsed) && parsed.every((a) => typeof a === "string") ? (parsed as string[]) : null;
  } catch {
    return null;
  }
}

export function readStages(text = readFileSync(join(ROOT, "Dockerfile"), "utf8")): Stage[] {
  const stages: Stage[] = [];
  for (const instruction of DockerfileParser.parse(text).getInstructions()) {
    const keyword = instruction.getKeyword();
    const flags = Object.fromEntries(
      ((instruction as { getFlags?(): Flag[] }).getFlags?.() ?? []).map((f) => [
        f.getName(),
        f.getValue() ?? "",
      ]),
    );
    const args = (instruction.getArgumentsContent() ?? "")
      .replace(/\\\r?\n/g, " ")
      .replace(/\s+/g, " ")
      .trim();
    if (keyword === "FROM") {
      const from = args.split(" ").filter((a) => !a.startsWith("--"));
      const as = from.findIndex((a) => a.toUpperCase() === "AS");
      stages.push({ image: from[0] ?? "", name: as < 0 ? null : (from[as + 1] ?? null), instructions: [] });
      continue;
    }
    const stage = stages[stages.length - 1];
    if (stage === undefined) {
      if (keyword !== "ARG") throw new Error(`${keyword} before the first FROM`);
      continue;
    }
    stage.instructions.push({ keyword, args, json: jsonArgs(instruction), flags });
  }
  return stages;
}

/** A COPY's stage (--from), sources (build context paths unless --from) and destination. */
export function copyArgs(i: StageInstruction): { from: string | null; sources: string[]; dest: string } {
  const paths = i.args.split(" ");
  return { from: i.flags.from ?? null, sources: paths.slice(0, -1), dest: paths[paths.length - 1] ?? "" };
}

/**
 * Whether .dockerignore lets `path` into the build context. Docker's rules: patterns in order, the
 * last one matching the path or one of its parent directories decides; `!` re-includes. Only the
 * forms our file uses are supported (`*`, and literal paths with an optional trailing slash), so a
 * new form fails here rather than being misread.
 */
export function inBuildContext(
  path: string,
  ignoreText = readFileSync(join(ROOT, ".dockerignore"), "utf8"),
): boolean {
  const patterns = ignoreText
    .split("\n")
    .map((l) => l.trim())
    .filter((l) => l !== "" && !l.startsWith("#"));
  const parts = path.replace(/\/$/, "").split("/");
  const prefixes = parts.map((_, i) => parts.slice(0, i + 1).join("/"));
  let included = true;
  for (const raw of patterns) {
    const negated = raw.startsWith("!");
    const pattern = (negated ? raw.slice(1) : raw).replace(/\/$/, "");
    if (pattern !== "*" && /[*?[\]]/.test(pattern))
      throw new Error(`.dockerignore pattern not supported here: ${raw}`);
    const matches = pattern === "*" ? true : prefixes.includes(pattern);
    if (matches) included = negated;
  }
  return included;
}
