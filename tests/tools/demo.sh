#!/usr/bin/env bash
# The main job on an embedded default (`make demo`): no Azure account needed.
# Starts Azurite (the official Azure Storage emulator) on a free local port,
# uploads the bundled sample reports with the official Azure SDK into an
# ADLS-style folder tree, runs `spectra-sentinel run` with the NDJSON file
# destination until every report is done, then prints a summary and stops
# everything it started.
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
bin=${BUILD:+$top/$BUILD/spectra-sentinel}
bin=${bin:-$top/build/spectra-sentinel}
samples=$top/tests/data/samples
work=$(mktemp -d /tmp/spectra-demo.XXXXXX)
daemon=
source "$top/tests/tools/azurite.sh"
cleanup() {
  [ -n "$daemon" ] && kill "$daemon" 2>/dev/null && wait "$daemon" 2>/dev/null
  azurite_stop
  rm -rf "$work"
}
trap cleanup EXIT

start=$(date +%s.%N)
echo "demo: starting Azurite (Azure Storage emulator) on 127.0.0.1"
azurite_start "$work"
key='Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=='
conn="DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=$key;BlobEndpoint=$AZURITE_URL;"
n=$(find "$samples" -type f | wc -l)
echo "demo: uploading $n sample reports with the Azure SDK to container 'reports'"
node "$top/tests/tools/upload_reports.js" "$conn" reports "$samples" \
  --prefix "spectra-detect/$(date -u +%Y/%m/%d)/" --markers > /dev/null

umask 077
cat > "$work/demo.yaml" <<EOC
# The demo's configuration: Azurite as the source, an NDJSON file as the
# destination (a dry run: nothing is sent to Azure).
source:
  connection_string: "$conn"
  container: reports
  poll_interval: 1s
destination:
  type: file
  path: $work/records.ndjson
state:
  directory: $work/state
metrics:
  listen: ""
log:
  level: warn
EOC
echo "demo: running spectra-sentinel (destination: $work/records.ndjson)"
"$bin" run -c "$work/demo.yaml" 2> "$work/daemon.log" &
daemon=$!
for _ in $(seq 300); do
  done_n=$("$bin" state -c "$work/demo.yaml" 2>/dev/null |
           awk '/^blobs done/ {d=$3} /^blobs failed/ {f=$3} END {print d+f}')
  [ "${done_n:-0}" -ge "$n" ] && break
  kill -0 "$daemon" 2>/dev/null || { cat "$work/daemon.log"; exit 1; }
  sleep 0.2
done
kill -TERM "$daemon"
wait "$daemon"
daemon=
elapsed=$(python3 -c "print('%.1f s' % ($(date +%s.%N) - $start))")
echo
python3 "$top/tests/tools/summarize.py" "$work/records.ndjson" --elapsed="$elapsed"
echo
"$bin" state -c "$work/demo.yaml" | head -3
