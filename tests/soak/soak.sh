#!/usr/bin/env bash
# Soak test (`make soak`, not in CI): SOAK_MINUTES (default 30) of reports
# arriving continuously in Azurite, random ingestion and token faults (429,
# 503, 500, dropped connections, slow answers, token endpoint outages), and
# a kill -9 and restart every SOAK_KILL_EVERY seconds (default 180). Every
# 5 s it samples the daemon's RSS and open file descriptors.
#
# At the end: no record missing, duplicates only from blobs in flight at a
# kill, and within each process life RSS and descriptors flat (no growth
# trend between its first and last quarter). Prints the figures.
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
daemon_stop 60
mkdir -p "$WORK/corpus"
cp "$WORK/all/expected.json" "$WORK/corpus/expected.json"
e2e_check --allow-dup-blobs "$WORK/inflight.txt" || fail "delivery check failed"
"$PY" - "$WORK/samples.csv" <<'PYEOF' || fail "resource growth"
import collections, statistics, sys
lives = collections.defaultdict(list)
for line in open(sys.argv[1]):
    life, t, rss, fds = map(int, line.split(","))
    lives[life].append((t, rss, fds))
bad = False
print("life  samples  rss_first_q_MB  rss_last_q_MB  rss_max_MB  fds_first_q  fds_last_q")
for life, s in sorted(lives.items()):
    if len(s) < 8:
        continue
    q = len(s) // 4
    r1 = statistics.median(x[1] for x in s[:q]) / 1024
    r4 = statistics.median(x[1] for x in s[-q:]) / 1024
    f1 = statistics.median(x[2] for x in s[:q])
    f4 = statistics.median(x[2] for x in s[-q:])
    rmax = max(x[1] for x in s) / 1024
    print("%4d  %7d  %14.1f  %13.1f  %10.1f  %11d  %10d" % (life, len(s), r1, r4, rmax, f1, f4))
    # Flat: the last quarter's median within 20 % (and 4 MB) of the first's.
    fmax = max(x[2] for x in s)
    if r4 > r1 * 1.2 + 4 or f4 > f1 + 4:
        bad = True
    # Spool files are bounded (256 staged blobs), sockets by concurrency.
    if fmax > 400:
        print("life %d: %d descriptors open at once" % (life, fmax))
        bad = True
sys.exit(1 if bad else 0)
PYEOF
ok "soak of $minutes min: $batch batches, $want records, $((life - 1)) kills, nothing lost, resources flat"
