#!/usr/bin/env bash
# Runs the cmocka unit-test binaries given as arguments (after the build
# directory) and prints one closing line: "unit: N passed, N failed".
# With VALGRIND=1 each runs under valgrind and any error or leak fails it.
set -u
build=$1; shift
top=$(cd "$(dirname "$0")/.." && pwd)
export TOP=$top BUILD=$top/$build BIN=$top/$build/spectra-sentinel
pass=0; fail=0; failed=()
for t in "$@"; do
  name=$(basename "$t")
  if [ "${VALGRIND:-0}" = 1 ]; then
    cmd=(valgrind -q --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite,indirect "$t")
  else
    cmd=("$t")
  fi
  out=$(cd "$top" && "${cmd[@]}" 2>&1); rc=$?
  printf '%s\n' "$out" | grep -E '^\[ *(PASSED|FAILED|ERROR) *\]|^\[  (FAILED|ERROR)' || true
  p=$(printf '%s\n' "$out" | sed -n 's/^\[  PASSED  \] \([0-9]*\) test.*/\1/p' | awk '{s+=$1} END {print s+0}')
  f=$(printf '%s\n' "$out" | sed -n 's/^\[  FAILED  \] \([0-9]*\) test.*/\1/p' | awk '{s+=$1} END {print s+0}')
  if [ $rc -ne 0 ] && [ "$f" -eq 0 ]; then f=1; fi
  pass=$((pass + p)); fail=$((fail + f))
  if [ $rc -ne 0 ]; then
    failed+=("$name"); printf '%s\n' "$out" | tail -40
    echo "unit: $name FAILED (exit $rc)"
  fi
done
echo "unit: $pass passed, $fail failed"
[ $fail -eq 0 ]
