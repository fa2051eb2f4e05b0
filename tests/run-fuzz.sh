#!/usr/bin/env bash
# Smoke-runs every libFuzzer target given as an argument for FUZZ_SECONDS
# seconds, starting from its committed seed corpus (tests/fuzz/corpus/NAME),
# which is copied so that the run never writes into the tree. A crash fails.
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
secs=${FUZZ_SECONDS:-60}
fail=0; pass=0
for f in "$@"; do
  name=$(basename "$f"); name=${name#fuzz_}
  work=$(mktemp -d)
  mkdir -p "$work/corpus"
  [ -d "$top/tests/fuzz/corpus/$name" ] && cp -r "$top/tests/fuzz/corpus/$name/." "$work/corpus/"
  dict=(); [ -f "$top/tests/fuzz/$name.dict" ] && dict=(-dict="$top/tests/fuzz/$name.dict")
  if "$f" -max_total_time="$secs" -rss_limit_mb=2048 -print_final_stats=1 \
       -artifact_prefix="$work/" "${dict[@]}" "$work/corpus" >"$work/log" 2>&1; then
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$work/log")
    echo "PASS fuzz_$name: ${execs:-?} executions in ${secs}s"; pass=$((pass + 1))
  else
    tail -50 "$work/log"; echo "FAIL fuzz_$name (artifacts in $work)"; fail=$((fail + 1))
    continue
  fi
  rm -rf "$work"
done
echo "fuzz: $pass passed, $fail failed"
[ $fail -eq 0 ]
