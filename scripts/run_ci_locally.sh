#!/usr/bin/env bash
# The whole CI pipeline on this machine, the same one .github/workflows/blockchain_ci.yml runs:
# lint, typecheck, the test suite once (vitest JSON + JUnit reports and v8 coverage from the same
# run), the Hardhat suite and its coverage, npm audit and the benchmarks. Every report goes to
# ci_artifacts/ (its README lists them). Exits 1 if tests, lint or typecheck fail or a benchmark
# crashes; a missed coverage or performance goal and an unreachable audit endpoint are reported in
# the summary, never fatal. --help lists the options.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 2
root=$PWD
options="$*"

usage() {
  cat <<'EOF'
Usage: bash scripts/run_ci_locally.sh [--skip-benchmarks | --quick] [--only STEPS] [--help]

Runs lint, typecheck, the test suite with coverage, the Hardhat suite and its coverage, npm audit
and the benchmarks; writes every report to ci_artifacts/ and ends with a summary table.

Options:
  --skip-benchmarks  run no benchmark at all (neither bench:* nor the TPS benchmark)
  --quick            of the benchmarks, run only the quick TPS one (generate_tps_benchmark.sh --quick)
  --only STEPS       run only these steps, comma-separated: lint,typecheck,tests,hardhat,audit,benchmarks
  -h, --help         this text

Environment:
  CI_SKIP_SLOW_BENCHMARKS=1  skip bench:node and bench:network (each starts validator processes)
  COVERAGE_GOAL=90           lines % goal for packages/consensus and packages/hsm (reported, not enforced)

Exit status: 0 when every step passed (warnings included), 1 when tests, lint or typecheck failed
or a benchmark crashed, 2 on a usage error.
EOF
}

skip_benchmarks=false
quick=false
only=""
while [ $# -gt 0 ]; do
  case $1 in
    --skip-benchmarks) skip_benchmarks=true ;;
    --quick) quick=true ;;
    --only)
      [ $# -ge 2 ] || { echo "--only needs a list of steps (see --help)" >&2; exit 2; }
      only=$2
      shift
      ;;
    --only=*) only=${1#--only=} ;;
    -h | --help) usage; exit 0 ;;
    *) echo "unknown option: $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done
for s in ${only//,/ }; do
  case $s in
    lint | typecheck | tests | hardhat | audit | benchmarks) ;;
    *) echo "unknown step in --only: $s (see --help)" >&2; exit 2 ;;
  esac
done
wants() { [ -z "$only" ] || [[ ",$only," == *",$1,"* ]]; }

export CI=true
export PATH="$PWD/node_modules/.bin:$PATH"
OUT=ci_artifacts
LOGS=$OUT/logs
BENCH=$OUT/benchmark_results
COVERAGE_GOAL=${COVERAGE_GOAL:-90}
if [ ! -x node_modules/.bin/node ]; then
  echo "node_modules is missing: run 'npm ci' first" >&2
  exit 1
fi
mkdir -p "$LOGS"
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT

# ---- step bookkeeping ---------------------------------------------------------------------------
names=()
statuses=()
durations=()
notes=()
failed=false
current=""
step_started=0

duration() { printf '%dm%02ds' $(($1 / 60)) $(($1 % 60)); }

begin() {
  current=$1
  step_started=$SECONDS
  printf '\n==> [%s] %s: %s\n' "$(date +%H:%M:%S)" "$1" "$2"
}

# end STATUS [NOTE]: PASS, WARN (reported, not fatal), FAIL (fails the pipeline) or SKIP.
end() {
  local status=$1 note=${2:-} secs=$((SECONDS - step_started))
  names+=("$current")
  statuses+=("$status")
  durations+=("$secs")
  notes+=("$note")
  if [ "$status" = FAIL ]; then failed=true; fi
  printf '<== %s: %s in %s%s\n' "$current" "$status" "$(duration "$secs")" "${note:+ ($note)}"
}

skipped() {
  current=$1
  step_started=$SECONDS
  end SKIP "$2"
}

# logged LOG CMD...: runs CMD, its output both on the terminal and in LOG; returns CMD's status.
logged() {
  local log=$1
  shift
  "$@" 2>&1 | tee "$log"
  return "${PIPESTATUS[0]}"
}

# js ARGS... <<'JS': runs an ES module given on stdin.
js() { node --input-type=module - "$@"; }

printf 'VitalStream CI: node %s, npm %s, %s cores; reports in %s/\n' \
  "$(node --version)" "$(npm --version)" "$(nproc 2>/dev/null || echo '?')" "$OUT"
# The same Debian packages that .ci/run installs; here they are only checked for.
for tool in softhsm2-util:softhsm2 promtool:prometheus yamllint:yamllint; do
  if ! command -v "${tool%%:*}" >/dev/null 2>&1; then
    echo "warning: ${tool%%:*} is missing (apt-get install ${tool#*:}): the tests that need it will fail"
  fi
done
pipeline_started=$SECONDS

# ---- lint and typecheck -------------------------------------------------------------------------
if wants lint; then
  begin lint "npm run lint (Biome)"
  if logged "$LOGS/lint.log" npm run lint; then end PASS; else end FAIL "see $LOGS/lint.log"; fi
fi

if wants typecheck; then
  begin typecheck "npm run typecheck (tsc --noEmit, strict)"
  if logged "$LOGS/typecheck.log" npm run typecheck; then end PASS; else end FAIL "see $LOGS/typecheck.log"; fi
fi

# ---- the test suite: one run gives the unit, JUnit, e2e and coverage reports ----------------------
if wants tests; then
  begin tests "npm test, the whole vitest suite once: JSON + JUnit reports and v8 coverage"
  rm -rf "$OUT/unit_test_results.json" "$OUT/unit_test_results.xml" "$OUT/coverage" \
    "$OUT/coverage_summary.json" "$OUT/integration_test_results.json"
  logged "$LOGS/tests.log" npm test -- --coverage --coverage.reportsDirectory="$OUT/coverage" \
    --reporter=default --reporter=json --reporter=junit \
    --outputFile.json="$OUT/unit_test_results.json" --outputFile.junit="$OUT/unit_test_results.xml"
  rc=$?
  if [ -f "$OUT/unit_test_results.json" ]; then
    counts=$(js "$OUT/unit_test_results.json" <<'JS'
import { readFileSync } from "node:fs";
const r = JSON.parse(readFileSync(process.argv[2], "utf8"));
// A file that fails to load has no failed test but is a failure all the same.
const failed = r.numFailedTests > 0 ? r.numFailedTests : r.success ? 0 : 1;
console.log(`${r.numPassedTests} passed, ${failed} failed, ${r.numPendingTests + r.numTodoTests} skipped`);
JS
    )
  else
    counts="no unit_test_results.json written"
  fi
  if [ "$rc" -eq 0 ] && [ -f "$OUT/unit_test_results.xml" ]; then end PASS "$counts"; else end FAIL "exit $rc: $counts"; fi

  # The e2e project is the root test/ folder (test/vitest.config.ts): its files are picked out of
  # the whole-suite report in vitest's JSON format rather than running them a second time.
  begin integration "the e2e project's results, taken from unit_test_results.json"
  if [ -f "$OUT/unit_test_results.json" ]; then
    line=$(js "$OUT/unit_test_results.json" "$OUT/integration_test_results.json" "$root/test/" <<'JS'
import { readFileSync, writeFileSync } from "node:fs";
const [from, to, dir] = process.argv.slice(2);
const all = JSON.parse(readFileSync(from, "utf8"));
const files = all.testResults.filter((f) => f.name.startsWith(dir));
const tests = files.flatMap((f) => f.assertionResults);
const count = (status) => tests.filter((t) => t.status === status).length;
const failedFiles = files.filter((f) => f.status === "failed").length;
const report = {
  project: "e2e",
  extractedFrom: from,
  // Suites are counted per file here (vitest's own count adds describe blocks).
  numTotalTestSuites: files.length,
  numPassedTestSuites: files.filter((f) => f.status === "passed").length,
  numFailedTestSuites: failedFiles,
  numPendingTestSuites: files.filter((f) => f.status !== "passed" && f.status !== "failed").length,
  numTotalTests: tests.length,
  numPassedTests: count("passed"),
  numFailedTests: count("failed"),
  numPendingTests: count("pending") + count("skipped"),
  numTodoTests: count("todo"),
  startTime: Math.min(...files.map((f) => f.startTime)),
  success: files.length > 0 && failedFiles === 0 && count("failed") === 0,
  testResults: files,
};
writeFileSync(to, `${JSON.stringify(report, null, 2)}\n`);
console.log(`${report.success ? "PASS" : "FAIL"}|${files.length} files: ${report.numPassedTests} passed, ${report.numFailedTests} failed, ${report.numPendingTests + report.numTodoTests} skipped`);
JS
    )
    echo "${line#*|}"
    end "${line%%|*}" "${line#*|}"
  else
    end FAIL "no unit_test_results.json to take it from"
  fi

  begin coverage "lines % per package from $OUT/coverage/coverage-summary.json (goal: >= $COVERAGE_GOAL% for consensus and hsm)"
  if [ -f "$OUT/coverage/coverage-summary.json" ]; then
    line=$(js "$OUT/coverage/coverage-summary.json" "$OUT/coverage_summary.json" "$root/" "$COVERAGE_GOAL" <<'JS'
import { readFileSync, writeFileSync } from "node:fs";
const [from, to, root, goalText] = process.argv.slice(2);
const goal = Number(goalText);
const goalPackages = ["packages/consensus", "packages/hsm"];
const summary = JSON.parse(readFileSync(from, "utf8"));
const pct = (covered, total) => (total === 0 ? 100 : Math.round((10000 * covered) / total) / 100);
const packages = {};
for (const [file, m] of Object.entries(summary)) {
  if (file === "total") continue;
  const parts = file.replace(root, "").split("/");
  const name = parts[0] === "packages" ? parts.slice(0, 2).join("/") : parts[0];
  const dir = parts[0] === "packages" ? parts[2] : parts[1];
  const p = (packages[name] ??= { covered: 0, total: 0, files: 0, dirs: {} });
  const d = (p.dirs[dir] ??= { covered: 0, total: 0, files: 0 });
  for (const x of [p, d]) {
    x.covered += m.lines.covered;
    x.total += m.lines.total;
    x.files += 1;
  }
}
const out = {};
for (const [name, p] of Object.entries(packages).sort()) {
  const dirs = Object.fromEntries(
    Object.entries(p.dirs).map(([d, x]) => [d, { linesPct: pct(x.covered, x.total), ...x }]),
  );
  out[name] = {
    linesPct: pct(p.covered, p.total),
    covered: p.covered,
    total: p.total,
    files: p.files,
    ...(goalPackages.includes(name) ? { goalPct: goal, met: pct(p.covered, p.total) >= goal } : {}),
    dirs,
  };
}
const met = goalPackages.every((name) => out[name]?.met === true);
const report = {
  metric: "lines",
  provider: "v8",
  source: from,
  scope:
    "code run inside vitest's workers: packages/*/src and packages/consensus/sim; the vitalstream " +
    "processes that end-to-end tests start and CLIs run as child processes are not measured",
  goal: { linesPct: goal, packages: goalPackages, met },
  total: { linesPct: summary.total.lines.pct, covered: summary.total.lines.covered, total: summary.total.lines.total },
  packages: out,
};
writeFileSync(to, `${JSON.stringify(report, null, 2)}\n`);
for (const [name, p] of Object.entries(out)) {
  const mark = p.met === undefined ? "" : p.met ? `  goal ${goal}%: met` : `  goal ${goal}%: NOT MET`;
  console.error(`  ${name.padEnd(22)} lines ${p.linesPct.toFixed(2).padStart(6)}% (${p.covered}/${p.total})${mark}`);
}
const gist = goalPackages.map((n) => `${n.split("/")[1]} ${out[n]?.linesPct ?? "?"}%`).join(", ");
console.log(`${met ? "PASS" : "WARN"}|${gist}: goal >= ${goal}% ${met ? "met" : "NOT MET"}`);
JS
    )
    end "${line%%|*}" "${line#*|}"
  else
    end WARN "vitest wrote no coverage-summary.json (see $LOGS/tests.log)"
  fi
fi

# ---- Hardhat: the contracts' mocha suite with a JSON reporter, then solidity-coverage ---------------
if wants hardhat; then
  begin "hardhat tests" "the Hardhat mocha suite of packages/contracts, mocha's json reporter"
  rm -f "$OUT/hardhat_test_results.json"
  # `hardhat test` has no reporter flag: the same task, run through the runtime with the reporter set.
  (cd packages/contracts && logged "$root/$LOGS/hardhat_tests.log" node -e '
    const hre = require("hardhat");
    hre.config.mocha = { ...hre.config.mocha, reporter: "json", reporterOption: { output: process.argv[1] } };
    hre.run("test").then(
      (failures) => { process.exitCode = failures > 0 ? 1 : 0; },
      (error) => { console.error(error); process.exitCode = 2; },
    );' "$root/$OUT/hardhat_test_results.json")
  rc=$?
  if [ -f "$OUT/hardhat_test_results.json" ]; then
    counts=$(js "$OUT/hardhat_test_results.json" <<'JS'
import { readFileSync } from "node:fs";
const { stats } = JSON.parse(readFileSync(process.argv[2], "utf8"));
console.log(`${stats.passes} passed, ${stats.failures} failed, ${stats.pending} pending`);
JS
    )
    echo "$counts" | tee -a "$LOGS/hardhat_tests.log"
  else
    counts="no hardhat_test_results.json written"
  fi
  if [ "$rc" -eq 0 ]; then end PASS "$counts"; else end FAIL "exit $rc: $counts"; fi

  begin "hardhat coverage" "npm run coverage -w @vitalstream/contracts (solidity-coverage)"
  rm -rf packages/contracts/coverage "$OUT/hardhat_coverage.json"
  logged "$LOGS/hardhat_coverage.log" npm run coverage -w @vitalstream/contracts
  rc=$?
  if [ -f packages/contracts/coverage/coverage-summary.json ]; then
    cp packages/contracts/coverage/coverage-summary.json "$OUT/hardhat_coverage.json"
    lines=$(js "$OUT/hardhat_coverage.json" <<'JS'
import { readFileSync } from "node:fs";
const { total } = JSON.parse(readFileSync(process.argv[2], "utf8"));
console.log(`lines ${total.lines.pct}%, branches ${total.branches.pct}%`);
JS
    )
    # scripts/coverage-check.ts exits 1 when a contract is under its 95% threshold: reported only.
    if [ "$rc" -eq 0 ]; then end PASS "$lines"; else end WARN "$lines; under the 95% threshold (see $LOGS/hardhat_coverage.log)"; fi
  else
    end FAIL "exit $rc, no coverage/coverage-summary.json (see $LOGS/hardhat_coverage.log)"
  fi
fi

# ---- npm audit: a real report, or an explicit "unavailable", never a made-up clean result --------
if wants audit; then
  begin audit "npm audit --json"
  rm -f "$OUT/security_audit.json"
  npm audit --json >"$scratch/audit.json" 2>"$LOGS/audit.log"
  rc=$?
  line=$(js "$scratch/audit.json" "$LOGS/audit.log" "$rc" "$OUT/security_audit.json" <<'JS'
import { readFileSync, writeFileSync } from "node:fs";
const [stdoutFile, stderrFile, code, to] = process.argv.slice(2);
const text = readFileSync(stdoutFile, "utf8");
let raw;
try {
  raw = JSON.parse(text);
} catch {
  raw = undefined;
}
const checkedAt = new Date().toISOString();
const npmExitCode = Number(code);
let report;
let line;
// A report has metadata.vulnerabilities; anything else means the endpoint gave no answer.
if (raw?.metadata?.vulnerabilities) {
  const v = raw.metadata.vulnerabilities;
  report = { status: "ok", checkedAt, npmExitCode, ...raw };
  line =
    v.total === 0
      ? "PASS|no known vulnerabilities"
      : `WARN|${v.total} vulnerable packages (critical ${v.critical}, high ${v.high}, moderate ${v.moderate}, low ${v.low})`;
} else {
  const stderr = readFileSync(stderrFile, "utf8").trim();
  const reason =
    raw?.message ?? raw?.error?.summary ?? stderr.split("\n").find((l) => l.trim()) ?? "npm audit printed no report";
  report = {
    status: "unavailable",
    reason: `the registry's audit endpoint gave no report: ${reason}`,
    checkedAt,
    npmExitCode,
    endpoint: raw?.uri ?? null,
    httpStatus: raw?.statusCode ?? null,
    npmOutput: raw ?? text,
  };
  line = `WARN|audit unavailable: ${reason}`;
}
writeFileSync(to, `${JSON.stringify(report, null, 2)}\n`);
console.log(line);
JS
  )
  echo "${line#*|}"
  end "${line%%|*}" "${line#*|}"
fi

# ---- benchmarks ---------------------------------------------------------------------------------
# Each writes ci_artifacts/<name>.json itself (kept there); a copy goes to benchmark_results/, and
# benchmark_results/benchmark_status.json records what ran, how it ended and whether goals were met.
bench_rows=$scratch/bench_rows
: >"$bench_rows"
bench_row() { printf '%s\t%s\t%s\t%s\t%s\n' "$@" >>"$bench_rows"; } # name status exit seconds note

# run_bench NAME REPORT CMD...: a non-zero exit or no fresh report is a crash; a missed goal is not.
run_bench() {
  local name=$1 report=$2
  shift 2
  begin "$name" "$*"
  # No ':' in file names: upload-artifact refuses them.
  local log=$LOGS/${name//:/_}.log stamp=$scratch/stamp-${name//:/_}
  touch "$stamp"
  logged "$log" "$@"
  local rc=$?
  if [ "$rc" -ne 0 ]; then
    end FAIL "exited $rc (see $log)"
  elif [ ! "$OUT/$report" -nt "$stamp" ]; then
    end FAIL "exited 0 but wrote no $OUT/$report"
  else
    cp "$OUT/$report" "$BENCH/"
    local svg=${report%.json}.svg
    if [ "$OUT/$svg" -nt "$stamp" ]; then cp "$OUT/$svg" "$BENCH/"; fi
    local goal
    goal=$(js "$OUT/$report" <<'JS'
import { readFileSync } from "node:fs";
const r = JSON.parse(readFileSync(process.argv[2], "utf8"));
// Reports name their goals differently: { goal: { met } }, { goals: [{ met }] }, { goals: { xMet } }.
const met = [];
const walk = (x) => {
  if (Array.isArray(x)) x.forEach(walk);
  else if (x && typeof x === "object") {
    for (const [k, v] of Object.entries(x)) if (typeof v === "boolean" && /^met$|Met$/.test(k)) met.push(v);
    Object.values(x).forEach(walk);
  }
};
walk([r.goal, r.goals]);
console.log(met.length === 0 ? "none" : met.every(Boolean) ? "met" : "NOT MET");
JS
    )
    case $goal in
      met) end PASS "goals met" ;;
      none) end PASS "ran; its report states no goal" ;;
      *) end WARN "a goal NOT MET: reported, not fatal" ;;
    esac
  fi
  bench_row "$name" "${statuses[-1]}" "$rc" "${durations[-1]}" "${notes[-1]}"
}

if wants benchmarks; then
  rm -rf "$BENCH"
  mkdir -p "$BENCH"
  if $skip_benchmarks; then
    skipped benchmarks "--skip-benchmarks"
    for b in bench:consensus bench:hsm bench:node bench:network tps; do bench_row "$b" SKIP "" 0 "--skip-benchmarks"; done
  else
    if $quick; then
      skipped "bench:*" "--quick: the quick TPS benchmark only"
      for b in bench:consensus bench:hsm bench:node bench:network; do bench_row "$b" SKIP "" 0 "--quick"; done
    else
      run_bench bench:consensus consensus_benchmark.json npm run bench:consensus
      run_bench bench:hsm hsm_benchmark.json npm run bench:hsm
      if [ "${CI_SKIP_SLOW_BENCHMARKS:-}" = 1 ]; then
        for b in bench:node bench:network; do
          skipped "$b" "CI_SKIP_SLOW_BENCHMARKS=1"
          bench_row "$b" SKIP "" 0 "CI_SKIP_SLOW_BENCHMARKS=1"
        done
      else
        run_bench bench:node node_benchmark.json npm run bench:node
        run_bench bench:network network_benchmark.json npm run bench:network
      fi
    fi
    if [ -x scripts/generate_tps_benchmark.sh ]; then
      run_bench tps tps_benchmark_report.json scripts/generate_tps_benchmark.sh --quick
    else
      current=tps
      step_started=$SECONDS
      end WARN "scripts/generate_tps_benchmark.sh is missing or not executable: no TPS report"
      bench_row tps MISSING "" 0 "scripts/generate_tps_benchmark.sh is missing or not executable"
    fi
  fi
  js "$bench_rows" "$BENCH/benchmark_status.json" <<'JS'
import { readFileSync, writeFileSync } from "node:fs";
const [rows, to] = process.argv.slice(2);
const benchmarks = readFileSync(rows, "utf8")
  .split("\n")
  .filter(Boolean)
  .map((l) => {
    const [name, status, exit, seconds, note] = l.split("\t");
    return { name, status, exitCode: exit === "" ? null : Number(exit), seconds: Number(seconds), note };
  });
writeFileSync(to, `${JSON.stringify({ writtenAt: new Date().toISOString(), benchmarks }, null, 2)}\n`);
JS
fi

# ---- summary ------------------------------------------------------------------------------------
total=$((SECONDS - pipeline_started))
printf '\n%-18s %-6s %8s  %s\n' step status time notes
printf '%-18s %-6s %8s  %s\n' ------------------ ------ -------- -----
: >"$scratch/steps"
failures=""
for i in "${!names[@]}"; do
  printf '%-18s %-6s %8s  %s\n' "${names[$i]}" "${statuses[$i]}" "$(duration "${durations[$i]}")" "${notes[$i]}"
  printf '%s\t%s\t%s\t%s\n' "${names[$i]}" "${statuses[$i]}" "${durations[$i]}" "${notes[$i]}" >>"$scratch/steps"
  if [ "${statuses[$i]}" = FAIL ]; then failures+="${failures:+, }${names[$i]}"; fi
done
result=passed
if $failed; then result=failed; fi
js "$scratch/steps" "$OUT/ci_summary.json" "$result" "$total" "$options" <<'JS'
import { readFileSync, writeFileSync } from "node:fs";
const [rows, to, result, seconds, options] = process.argv.slice(2);
const steps = readFileSync(rows, "utf8")
  .split("\n")
  .filter(Boolean)
  .map((l) => {
    const [step, status, secs, note] = l.split("\t");
    return { step, status, seconds: Number(secs), note };
  });
const summary = { result, options, seconds: Number(seconds), finishedAt: new Date().toISOString(), steps };
writeFileSync(to, `${JSON.stringify(summary, null, 2)}\n`);
JS
echo
if $failed; then
  echo "CI FAILED in $(duration "$total"): $failures (reports in $OUT/, logs in $LOGS/)"
  exit 1
fi
echo "CI passed in $(duration "$total") (WARN is reported, not fatal); reports in $OUT/"
