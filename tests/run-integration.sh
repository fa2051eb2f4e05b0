#!/usr/bin/env bash
# Runs every tests/integration/test_*.sh in turn and prints one closing
# line: "integration: N passed, N failed". Each script starts and stops the
# servers it needs (on 127.0.0.1, port 0) and exits non-zero on failure.
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
export TOP=$top BUILD=$top/${BUILD:-build}
export BIN=$BUILD/spectra-sentinel
pass=0; fail=0
for t in "$top"/tests/integration/test_*.sh; do
  [ -e "$t" ] || continue
  name=$(basename "$t" .sh)
  start=$(date +%s)
  if out=$(bash "$t" 2>&1); then
    pass=$((pass + 1)); echo "PASS $name ($(( $(date +%s) - start ))s)"
  else
    fail=$((fail + 1)); printf '%s\n' "$out" | tail -60; echo "FAIL $name"
  fi
done
echo "integration: $pass passed, $fail failed"
[ $fail -eq 0 ]
