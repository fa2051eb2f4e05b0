#!/usr/bin/env bash
# Soak test (`make soak`, not in CI): SOAK_MINUTES (default 30) of reports
# arriving continuously in Azurite, random ingestion and token faults (429,
# 503, 500, dropped connections, slow answers, token endpoint outages), and
# a kill -9 and restart every SOAK_KILL_EVERY seconds (default 180). Every
# 5 s it samples the daemon's RSS and open file descriptors.
#
# At the end: no record missing, duplicates only from blobs in flight at a
# kill, RSS under 64 MB and descriptors under the backpressure bound in
# every process life, and once everything is delivered the daemon holds no
# more descriptors than at its start (no leak). Prints the figures.
set -u
export TOP=${TOP:-$(cd "$(dirname "$0")/../.." && pwd)}
export BUILD=${BUILD:-$TOP/build}
export BIN=${BIN:-$BUILD/spectra-sentinel}
source "$TOP/tests/integration/daemon_lib.sh"
minutes=${SOAK_MINUTES:-30}
kill_every=${SOAK_KILL_EVERY:-180}
end=$(( $(date +%s) + minutes * 60 ))

e2e_start_peers
E2E_LOG=warn e2e_config
mkdir -p "$WORK/all"
echo '{"records":{},"bad":{},"blobs":{}}' > "$WORK/all/expected.json"
: > "$WORK/inflight.txt"
: > "$WORK/samples.csv"
daemon_start
life=1
last_kill=$(date +%s)
batch=0
RANDOM=${SOAK_SEED:-$$}
faults() {
  local f='[' i kind
  for i in $(seq 4); do
    kind=$((RANDOM % 12))
    case $kind in
      0) f+="{\"role\":\"ingest\",\"skip\":$((RANDOM % 5)),\"status\":429,\"headers\":{\"Retry-After\":\"1\"}}," ;;
      1) f+="{\"role\":\"ingest\",\"skip\":$((RANDOM % 5)),\"status\":503}," ;;
      2) f+="{\"role\":\"ingest\",\"skip\":$((RANDOM % 5)),\"drop\":true}," ;;
      3) f+="{\"role\":\"ingest\",\"skip\":$((RANDOM % 5)),\"delay\":1.5}," ;;
      4) f+="{\"role\":\"ingest\",\"skip\":$((RANDOM % 5)),\"status\":500}," ;;
      5) f+="{\"role\":\"token\",\"status\":503}," ;;
      *) f+="{\"role\":\"ingest\",\"skip\":$((RANDOM % 20)),\"status\":503}," ;;
    esac
  done
  echo "${f%,}]"
}
while [ "$(date +%s)" -lt "$end" ]; do
  batch=$((batch + 1))
  "$PY" "$TOP/tests/tools/gen_e2e.py" "$WORK/b$batch" --count $((RANDOM % 40 + 10)) \
    --bad $((RANDOM % 2)) --seed "$batch" --prefix "soak/$batch/" > /dev/null
  node "$TOP/tests/tools/upload_reports.js" "$CONN" reports "$WORK/b$batch/blobs" > /dev/null ||
    fail "upload of batch $batch failed"
  "$PY" - "$WORK/all/expected.json" "$WORK/b$batch/expected.json" <<'PYEOF'
import json, sys
a = json.load(open(sys.argv[1])); b = json.load(open(sys.argv[2]))
for k in ("records", "bad", "blobs"):
    a[k].update(b[k])
json.dump(a, open(sys.argv[1], "w"))
PYEOF
  rm -rf "$WORK/b$batch"
  fake_post "$FAKE" /_fake/faults "$(faults)"
  for _ in 1 2; do
    sleep 5
    if [ -n "$DAEMON_PID" ] && [ -d "/proc/$DAEMON_PID" ]; then
      rss=$(awk '/^VmRSS/ {print $2}' "/proc/$DAEMON_PID/status")
      fds=$(ls "/proc/$DAEMON_PID/fd" | wc -l)
      echo "$life,$(date +%s),$rss,$fds" >> "$WORK/samples.csv"
    fi
  done
  kill -0 "$DAEMON_PID" 2>/dev/null || fail "the daemon died: $(tail -5 "$DAEMON_LOG")"
  if [ $(( $(date +%s) - last_kill )) -ge "$kill_every" ]; then
    daemon_kill9
    "$PY" "$TOP/tests/tools/ck_pending.py" "$STATE" >> "$WORK/inflight.txt"
    daemon_start
    life=$((life + 1))
    last_kill=$(date +%s)
  fi
done
want=$(json_get "$WORK/all/expected.json" 'len(d["records"])')
blobs=$(json_get "$WORK/all/expected.json" 'len(d["blobs"])')
wait_done "$blobs" 600
wait_records "$want" 120
# Idle again after the drain: what is still held now would be a leak.
sleep 3
idle_rss=$(awk '/^VmRSS/ {print $2}' "/proc/$DAEMON_PID/status")
idle_fds=$(ls "/proc/$DAEMON_PID/fd" | wc -l)
echo "idle,$life,$idle_rss,$idle_fds" > "$WORK/idle.csv"
daemon_stop 60
mkdir -p "$WORK/corpus"
cp "$WORK/all/expected.json" "$WORK/corpus/expected.json"
e2e_check --allow-dup-blobs "$WORK/inflight.txt" || fail "delivery check failed"
"$PY" - "$WORK/samples.csv" "$WORK/idle.csv" <<'PYEOF' || fail "resource growth"
import collections, statistics, sys
lives = collections.defaultdict(list)
for line in open(sys.argv[1]):
    life, t, rss, fds = map(int, line.split(","))
    lives[life].append((t, rss, fds))
_, _, idle_rss, idle_fds = open(sys.argv[2]).read().strip().split(",")
idle_rss, idle_fds = int(idle_rss) / 1024, int(idle_fds)
bad = False
print("life  samples  rss_median_MB  rss_max_MB  fds_median  fds_max")
base_fds = None
for life, s in sorted(lives.items()):
    rmed = statistics.median(x[1] for x in s) / 1024
    rmax = max(x[1] for x in s) / 1024
    fmed = statistics.median(x[2] for x in s)
    fmax = max(x[2] for x in s)
    base_fds = base_fds if base_fds is not None else min(x[2] for x in s)
    print("%4d  %7d  %13.1f  %10.1f  %10d  %7d" % (life, len(s), rmed, rmax, fmed, fmax))
    # Bounds: memory within the 64 MB target, descriptors within the
    # backpressure bound (256 staged spool files plus sockets).
    if rmax > 64 or fmax > 400:
        bad = True
print("idle after the drain: %.1f MB RSS, %d descriptors (first life's "
      "lowest: %d)" % (idle_rss, idle_fds, base_fds))
# A leak shows as descriptors still held once everything is done.
if idle_fds > base_fds + 4:
    bad = True
sys.exit(1 if bad else 0)
PYEOF
ok "soak of $minutes min: $batch batches, $want records, $((life - 1)) kills, nothing lost, resources flat"
