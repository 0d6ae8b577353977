// Reads solidity-coverage's coverage/coverage-summary.json, prints lines and branches per contract
// and exits 1 if any of our contracts is under the threshold.
//   node scripts/coverage-check.ts [--min 95]
import { readFileSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

interface Metric {
  total: number;
  covered: number;
  pct: number | "Unknown";
}
type Summary = Record<string, { lines: Metric; branches: Metric; statements: Metric; functions: Metric }>;

const packageDir = join(dirname(fileURLToPath(import.meta.url)), "..");
const minIndex = process.argv.indexOf("--min");
const min = minIndex > 0 ? Number(process.argv[minIndex + 1]) : 95;
const pct = (m: Metric) => (m.total === 0 ? 100 : (100 * m.covered) / m.total);

let summary: Summary;
try {
  summary = JSON.parse(
    readFileSync(join(packageDir, "coverage", "coverage-summary.json"), "utf8"),
  ) as Summary;
} catch {
  console.error(
    "coverage/coverage-summary.json not found: run `npx hardhat coverage --solcoverjs .solcover.cjs`",
  );
  process.exit(2);
}

let failed = false;
for (const [file, m] of Object.entries(summary)) {
  if (file === "total" || !file.endsWith(".sol")) continue;
  const lines = pct(m.lines);
  const branches = pct(m.branches);
  const ok = lines >= min && branches >= min;
  failed ||= !ok;
  console.log(
    `${ok ? "ok  " : "LOW "} ${basename(file).padEnd(22)} lines ${lines.toFixed(2)}% (${m.lines.covered}/${m.lines.total})` +
      `  branches ${branches.toFixed(2)}% (${m.branches.covered}/${m.branches.total})` +
      `  functions ${pct(m.functions).toFixed(2)}%  statements ${pct(m.statements).toFixed(2)}%`,
  );
}
console.log(
  failed ? `coverage below ${min}% for at least one contract` : `coverage >= ${min}% for every contract`,
);
process.exit(failed ? 1 : 0);
