#!/usr/bin/env bash
# Checks deploy/azure (ARM template, workbook, analytics rule, KQL) against
# the columns the daemon emits: tests/tools/check_deploy.py does the work
# (see its header). Then makes sure the checker can fail: a copy of the
# template whose stream declaration lost a column, and a copy of the
# queries with a misspelt column, must both be rejected.
set -euo pipefail
: "${TOP:?}" "${BIN:?}"
check=$TOP/tests/tools/check_deploy.py

python3 "$check" --top "$TOP" --bin "$BIN"

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/deploy"
cp -r "$TOP/deploy/azure" "$tmp/deploy/"
python3 - "$tmp/deploy/azure/azuredeploy.json" <<'PY'
import json, sys
p = sys.argv[1]
t = json.load(open(p))
t["variables"]["columns"].pop()   # the stream declaration loses a column
json.dump(t, open(p, "w"), indent=2)
PY
if out=$(python3 "$check" --top "$tmp" 2>&1); then
  echo "FAIL: the checker accepted a stream declaration missing a column"
  exit 1
fi
grep -q 'table columns differ from the stream declaration' <<<"$out" || {
  echo "FAIL: unexpected checker output for the mutated template:"; echo "$out"; exit 1; }

cp "$TOP/deploy/azure/azuredeploy.json" "$tmp/deploy/azure/"
sed -i 's/worker_hostname/worker_hostnme/' "$tmp/deploy/azure/queries.kql"
if out=$(python3 "$check" --top "$tmp" 2>&1); then
  echo "FAIL: the checker accepted a query naming a column that does not exist"
  exit 1
fi
grep -q "unknown identifier 'worker_hostnme'" <<<"$out" || {
  echo "FAIL: unexpected checker output for the mutated query:"; echo "$out"; exit 1; }
echo "deploy artifacts: checks passed, and the checker rejects both mutations"
