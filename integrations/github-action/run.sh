#!/usr/bin/env bash
# The check step of action.yml: writes the SARIF report, prints annotations,
# and records upkeep's exit status as step outputs; the action's last step
# fails the job with that status after the SARIF upload.
#
# Environment (set by action.yml from its inputs):
#   UPKEEP_CONFIG       main config (default nginx.conf)
#   UPKEEP_ARGS         further `upkeep check` arguments, split on whitespace
#   UPKEEP_FAIL_ON      --fail-on severity (default warning)
#   UPKEEP_ANNOTATIONS  "true" to print `--format github` annotations
#   UPKEEP_SARIF        where to write the SARIF report
#   UPKEEP_BIN          an installed upkeep; empty builds it with cargo
#   GITHUB_OUTPUT       the runner's step-output file
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
upkeep="$here/../pre-commit/upkeep-hook" # UPKEEP_BIN or a cargo build
config="${UPKEEP_CONFIG:-nginx.conf}"
sarif="${UPKEEP_SARIF:-upkeep.sarif}"
fail_on="${UPKEEP_FAIL_ON:-warning}"
read -r -a extra <<<"${UPKEEP_ARGS:-}"

status=0
"$upkeep" check --format sarif --fail-on "$fail_on" "${extra[@]}" "$config" >"$sarif" || status=$?

if [ "$status" -le 1 ] && [ "${UPKEEP_ANNOTATIONS:-true}" = true ]; then
  # Same findings as workflow commands; its exit status is the one above.
  "$upkeep" check --format github --fail-on never "${extra[@]}" "$config" || true
fi
if [ "$status" -ge 2 ]; then
  echo "::error title=upkeep::upkeep check could not read the configuration (exit $status); see the log above"
fi

{
  echo "sarif=$sarif"
  echo "exit-code=$status"
} >>"${GITHUB_OUTPUT:-/dev/stdout}"
