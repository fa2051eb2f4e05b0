#!/usr/bin/env bash
# e2e.sh: the end-to-end benchmark (issue 7), run by `make bench` after the
# transform figures (tests/bench/run.sh calls it).
#
# The same workload goes through spectra-sentinel (`spectra-sentinel run`)
# and through a baseline peer written the way the replaced Azure Function
# works (tests/bench/peer_sdk.py: Python 3 with Debian's Azure SDK, one
# report at a time). Both read from Azurite and send to the strict Logs
# Ingestion fake (tests/fakes/fake_azure.py), each run with a fresh fake.
# CPU time (user + sys of the measured process alone, from wait4() through
# tests/bench/rusage.py, to the microsecond; Azurite and the fake are other
# processes) is the headline figure: the emulators bound wall time for
# both.
#
# Scenarios (every one starts its own Azurite, in memory):
#   headline  the typical corpus of run.sh (gen_reports.py, >= 100 MB):
#             E2E_RUNS rounds, interleaved, of the daemon with gzip, the
#             daemon with compression none and the SDK peer (which always
#             gzips: LogsIngestionClient.upload has no other mode); the peer
#             without gzip (the SDK's chunks posted uncompressed) once, for
#             information. Medians; ratios against the targets.
#   typical   E2E_TYPICAL blobs (default 10,000) cycling through the corpus:
#             the daemon's peak RSS over many typical reports (<= 64 MB).
#   sizes     one report of 1, 10, 100 and 200 MB (100 extracted files per
#             MB, gen_scale.py --big): the daemon's CPU and RSS (200 MB with
#             20,000 files must stay under 150 MB), and the peer's for
#             E2E_PEER_SIZES.
#   blobs     1,000 / 10,000 / 100,000 small one-entry reports (gen_scale.py
#             --small) processed into a file destination (the source side
#             of the pipeline, without the fake's cost), then one more poll
#             over the same container, now all processed: the listing and
#             comparison cost per blob, and the checkpoint's entries.
#
# Output: the tables on stdout and in bench-out/e2e-latest.txt, one JSON
# line per run in bench-out/e2e-runs.jsonl, and the scaling chart
# bench-out/e2e-scaling.png (when gnuplot is installed; the data and script
# are beside it).
#
# Environment: BUILD (default build), BIN (default $BUILD/spectra-sentinel),
# BENCH_QUICK=1 (a smoke check of a few minutes: a 20 MB slice of the
# corpus, 1 round, 500 typical blobs, 1 and 10 MB reports, 1,000 small
# blobs), BENCH_MB and BENCH_SEED (the corpus, as for run.sh), E2E_RUNS
# (default 3), E2E_TYPICAL, E2E_SIZES (default "1 10 100 200"),
# E2E_PEER_SIZES (default "1 10 100"), E2E_BLOBS (default "1000 10000
# 100000"), E2E_PEER=0 (skip the peer), E2E_ONLY (a space-separated subset
# of the scenario names).
#
# Exit status: 0 when every run completed or ran out of its time limit
# (whether or not the targets were met: this is a measurement; a run cut
# short is reported as not finished and its targets as missed); 1 when a
# program failed (the daemon exited with an error, the peer failed) or a
# finished run delivered the wrong number of records.
set -euo pipefail

top=$(cd "$(dirname "$0")/../.." && pwd)
cd "$top"
BUILD=${BUILD:-build}
BIN=${BIN:-$BUILD/spectra-sentinel}
PY=/usr/bin/python3
QUICK=${BENCH_QUICK:-0}
MB=${BENCH_MB:-100}
SEED=${BENCH_SEED:-1}
if [ "$QUICK" = 1 ]; then
  RUNS=${E2E_RUNS:-1}
  TYPICAL=${E2E_TYPICAL:-500}
  SIZES=${E2E_SIZES:-"1 10"}
  PEER_SIZES=${E2E_PEER_SIZES:-"1"}
  BLOBS=${E2E_BLOBS:-"1000"}
  SLICE_MB=20
else
  RUNS=${E2E_RUNS:-3}
  TYPICAL=${E2E_TYPICAL:-10000}
  SIZES=${E2E_SIZES:-"1 10 100 200"}
  PEER_SIZES=${E2E_PEER_SIZES:-"1 10 100"}
  BLOBS=${E2E_BLOBS:-"1000 10000 100000"}
  SLICE_MB=0
fi
PEER=${E2E_PEER:-1}
ONLY=${E2E_ONLY:-"headline typical sizes blobs"}
MAX_REQUEST=1000000
TENANT=tenant-1
CLIENT=app1
SECRET=bench-secret-0123
# The well-known key of Azurite's devstoreaccount1.
KEY='Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=='

out=bench-out
corpus=$out/corpus-s$SEED-${MB}mb
runs=$out/e2e-runs.jsonl
summary=$out/e2e-latest.txt
mkdir -p "$out"
work=$(mktemp -d "${TMPDIR:-/tmp}/ss-e2e.XXXXXX")
start=$(date +%s)
failed=0

say() { printf '%s\n' "$*"; }
die() { printf 'e2e: %s\n' "$*" >&2; exit 1; }

# ---- processes we start, stopped by PID on exit -------------------------
FAKE_PID=
DAEMON_PID=
. tests/tools/azurite.sh
cleanup() {
  [ -n "$DAEMON_PID" ] && pkill -KILL -P "$DAEMON_PID" 2>/dev/null
  [ -n "${STORE_PID:-}" ] && kill "$STORE_PID" 2>/dev/null
  [ -n "$FAKE_PID" ] && kill "$FAKE_PID" 2>/dev/null
  azurite_stop
  rm -rf "$work"
}
trap cleanup EXIT

# ---- prerequisites -------------------------------------------------------
[ -x "$BIN" ] || die "$BIN missing (make BUILD=$BUILD first)"
[ -x tests/node_modules/.bin/azurite-blob ] ||
  die "tests/node_modules missing (make deps)"
if [ "$PEER" = 1 ] &&
   ! "$PY" -c 'import azure.storage.blob, azure.monitor.ingestion' \
     2>/dev/null; then
  say "e2e: python3-azure is not installed; the SDK peer is skipped"
  PEER=0
fi
if [ ! -f "$corpus/meta.json" ]; then
  say "== generating a ${MB} MB corpus (seed $SEED) in $corpus"
  rm -rf "$corpus"
  "$PY" tests/bench/gen_reports.py --out "$corpus" --mb "$MB" \
    --seed "$SEED" >/dev/null || die "corpus generation failed"
fi

free_port() {
  "$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0));
print(s.getsockname()[1])'
}

# ---- Azurite and uploads ------------------------------------------------
CONN=
azurite_up() {
  azurite_stop
  mkdir -p "$work/az"
  azurite_start "$work/az" >/dev/null || die "Azurite did not start"
  CONN="DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=$KEY;BlobEndpoint=$AZURITE_URL"
}

# upload CONTAINER DIR: every file under DIR, named by its relative path.
upload() {
  local t0=$SECONDS
  node tests/tools/upload_reports.js "$CONN" "$1" "$2" --concurrency 32 \
    >"$work/upload.out" 2>&1 || { cat "$work/upload.out"; die "upload failed"; }
  say "   uploaded $(sed -n 's/^uploaded //p' "$work/upload.out") blobs to $1 in $((SECONDS - t0)) s"
}

# ---- the Logs Ingestion fake --------------------------------------------
FAKE_PORT=
fake_up() {
  local pf="$work/fake.port"
  rm -f "$pf" "$work/fake.log"
  "$PY" tests/fakes/fake_azure.py --port-file "$pf" \
    --client "$CLIENT:secret:$SECRET" --tenant "$TENANT" \
    --records /dev/null --log "$work/fake.log" \
    >"$work/fake.out" 2>&1 &
  FAKE_PID=$!
  for _ in $(seq 200); do
    [ -s "$pf" ] && break
    sleep 0.05
  done
  [ -s "$pf" ] || die "the fake did not start"
  FAKE_PORT=$(cat "$pf")
}
fake_down() {
  [ -n "$FAKE_PID" ] && { kill "$FAKE_PID" 2>/dev/null; wait "$FAKE_PID" 2>/dev/null || true; }
  FAKE_PID=
}

# fake_requests: requests, their uncompressed JSON bytes and 413s, from the
# fake's log of the run: "N BYTES N413".
fake_requests() {
  "$PY" - "$work/fake.log" <<'EOF'
import json, sys
n = b = r413 = 0
try:
    for line in open(sys.argv[1]):
        e = json.loads(line)
        if e.get("role") != "ingest":
            continue
        if e.get("status") == 413:
            r413 += 1
        if e.get("status") == 204:
            n += 1
            b += e.get("raw_bytes", e.get("bytes", 0))
except FileNotFoundError:
    pass
print(n, b, r413)
EOF
}

# ---- one run -------------------------------------------------------------
# record KEY=VALUE...: appends a JSON object of the pairs to the runs file
# (numbers stay numbers).
record() {
  "$PY" - "$@" >>"$runs" <<'EOF'
import json, sys
d = {}
for kv in sys.argv[1:]:
    k, v = kv.split("=", 1)
    try:
        d[k] = int(v)
    except ValueError:
        try:
            d[k] = float(v)
        except ValueError:
            d[k] = v
print(json.dumps(d))
EOF
}

# metric PORT NAME: a series of the daemon's /metrics ("" while it is not
# listening yet).
metric() {
  { curl -s --max-time 2 "http://127.0.0.1:$1/metrics" 2>/dev/null || true; } |
    awk -v m="$2" '$1 == m { print $2; exit }'
}

# daemon_cfg FILE CONTAINER PREFIX COMPRESSION DEST STATE GRACE MPORT
daemon_cfg() {
  local f=$1 container=$2 prefix=$3 comp=$4 dest=$5 state=$6 grace=$7
  local mport=$8
  {
    printf 'source:\n  connection_string: "%s"\n  container: %s\n' \
      "$CONN" "$container"
    printf '  prefix: "%s"\n  poll_interval: 2s\n' "$prefix"
    if [ "$dest" = fake ]; then
      printf 'destination:\n  type: logs_ingestion\n'
      printf '  endpoint: http://127.0.0.1:%s\n' "$FAKE_PORT"
      printf '  dcr_immutable_id: dcr-00000000000000000000000000000000\n'
      printf '  stream: Custom-SpectraDetectLogs_CL\n'
      printf '  compression: %s\n  max_request_bytes: %s\n' "$comp" \
        "$MAX_REQUEST"
      printf 'credential:\n  method: client_secret\n  tenant_id: %s\n' \
        "$TENANT"
      printf '  client_id: %s\n  client_secret: %s\n' "$CLIENT" "$SECRET"
      printf '  authority_host: http://127.0.0.1:%s\n' "$FAKE_PORT"
    else
      printf 'destination:\n  type: file\n  path: %s\n' "$dest"
    fi
    printf 'state:\n  directory: %s\n  grace: %s\n' "$state" "$grace"
    printf 'metrics:\n  listen: 127.0.0.1:%s\nlog:\n  level: warn\n' \
      "$mport"
  } >"$f"
  chmod 600 "$f"
}

# run_daemon SCENARIO LABEL CONTAINER PREFIX COMPRESSION DEST MODE WANT
#            BYTES RECORDS LIMIT [GRACE]
#   DEST: fake (the Logs Ingestion fake), or a file path (destination type
#   file); MODE: process (a fresh state; until WANT blobs are processed) or
#   repoll (the state of LABEL's process run; until WANT listed blobs were
#   found done). RECORDS: the records the run must deliver (process runs to
#   the fake; 0: not checked). LIMIT: seconds before the run is cut short
#   and reported as not finished. Appends a run line.
run_daemon() {
  local scen=$1 label=$2 container=$3 prefix=$4 comp=$5 dest=$6 mode=$7
  local want=$8 bytes=$9 wantrec=${10} limit=${11} grace=${12:-1h}
  local state="$work/state-$label" cfg="$work/$label-$mode.yaml"
  local metric_name=spectra_sentinel_blobs_processed_total
  local mport t0 t1 n= rc=0 records entries user sys rss minflt
  local req=0 reqbytes=0 r413=0 ok=1 note=
  if [ "$mode" = process ]; then
    rm -rf "$state"
  else
    metric_name='spectra_sentinel_blobs_skipped_total{reason="already_done"}'
  fi
  [ "$dest" = fake ] && fake_up
  [ "$dest" != fake ] && rm -f "$dest"
  mport=$(free_port)
  daemon_cfg "$cfg" "$container" "$prefix" "$comp" "$dest" "$state" \
    "$grace" "$mport"
  t0=$(date +%s.%N)
  "$PY" tests/bench/rusage.py "$work/time.txt" "$BIN" run -c "$cfg" \
    >"$work/daemon.log" 2>&1 &
  DAEMON_PID=$!
  for _ in $(seq $((limit * 10))); do
    n=$(metric "$mport" "$metric_name")
    [ "${n:-0}" -ge "$want" ] 2>/dev/null && break
    kill -0 "$DAEMON_PID" 2>/dev/null || break
    sleep 0.1
  done
  t1=$(date +%s.%N)
  records=$(metric "$mport" spectra_sentinel_records_sent_total)
  # rusage.py's child is the daemon: SIGTERM it; rusage.py reports after.
  pkill -TERM -P "$DAEMON_PID" 2>/dev/null || true
  wait "$DAEMON_PID" || rc=$?
  DAEMON_PID=
  entries=$({ "$BIN" state -c "$cfg" 2>/dev/null || true; } |
            sed -n 's/^in the grace window *\([0-9]*\) done.*/\1/p')
  read -r user sys rss minflt < <(tail -n1 "$work/time.txt") ||
    { user=0; sys=0; rss=0; minflt=0; }
  if [ "$dest" = fake ]; then
    read -r req reqbytes r413 < <(fake_requests)
    fake_down
  fi
  if [ "$rc" != 0 ]; then
    say "e2e: $label ($mode): the daemon exited with $rc; its log:"
    tail -5 "$work/daemon.log" | cut -c1-300
    failed=1
    ok=0
  elif [ "${n:-0}" != "$want" ]; then
    note="not finished in $limit s: ${n:-0} of $want blobs"
    ok=0
  elif [ "$mode" = process ] && [ "$wantrec" != 0 ] &&
       [ "${records:-0}" != "$wantrec" ]; then
    say "e2e: $label: ${records:-0} records delivered, $wantrec expected"
    failed=1
    ok=0
  fi
  LAST_OK=$ok
  record scenario="$scen" label="$label" tool=daemon compression="$comp" \
    mode="$mode" blobs="$want" bytes="$bytes" records="${records:-0}" \
    user="$user" sys="$sys" rss_kb="$rss" minflt="${minflt:-0}" \
    wall="$("$PY" -c "print(round($t1 - $t0, 3))")" requests="$req" \
    request_bytes="$reqbytes" r413="$r413" entries="${entries:-0}" \
    grace="$grace" ok="$ok" done="${n:-0}" note="$note"
  say "   $(tail -n1 "$runs" | "$PY" tests/bench/e2e_summary.py --line)"
}

# run_peer SCENARIO LABEL CONTAINER PREFIX COMPRESSION BLOBS BYTES RECORDS
#   The SDK peer over the container, once, with a fresh fake.
run_peer() {
  local scen=$1 label=$2 container=$3 prefix=$4 comp=$5 want=$6 bytes=$7
  local wantrec=$8 line user sys rss minflt req reqbytes r413 kv ok=1
  fake_up
  if ! line=$("$PY" tests/bench/rusage.py "$work/time.txt" \
              "$PY" tests/bench/peer_sdk.py --conn "$CONN" \
              --container "$container" ${prefix:+--prefix "$prefix"} \
              --endpoint "http://127.0.0.1:$FAKE_PORT" \
              --authority "http://127.0.0.1:$FAKE_PORT" --tenant "$TENANT" \
              --client-id "$CLIENT" --secret "$SECRET" \
              --compression "$comp" 2>"$work/peer.err"); then
    say "e2e: the peer failed ($label):"
    tail -5 "$work/peer.err" | cut -c1-300
    failed=1
    fake_down
    return
  fi
  read -r user sys rss minflt < <(tail -n1 "$work/time.txt")
  read -r req reqbytes r413 < <(fake_requests)
  fake_down
  # blobs, records, the loop's wall and CPU from the peer's own line.
  kv=$(printf '%s\n' "$line" | tr ' ' '\n' |
       grep -E '^(blobs|records|wall|user_loop|sys_loop)=' |
       sed 's/^wall=/wall_loop=/' | tr '\n' ' ')
  if ! printf ' %s \n' "$line" | grep -q " blobs=$want " ||
     ! printf ' %s \n' "$line" | grep -q " records=$wantrec "; then
    say "e2e: the peer ($label) did not move $want blobs, $wantrec records:"
    say "  $line"
    failed=1
    ok=0
  fi
  # shellcheck disable=SC2086
  record scenario="$scen" label="$label" tool=peer compression="$comp" \
    mode=process bytes="$bytes" user="$user" sys="$sys" rss_kb="$rss" \
    minflt="${minflt:-0}" requests="$req" request_bytes="$reqbytes" r413="$r413" $kv \
    wall="$(printf '%s\n' "$line" | sed -n 's/.*wall_total=\([0-9.]*\).*/\1/p')" \
    ok="$ok"
  say "   $(tail -n1 "$runs" | "$PY" tests/bench/e2e_summary.py --line)"
}

: >"$runs"
say "== end to end: $BIN, $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"

# links LIST DIR COUNT NAMEFMT: hard links in DIR to COUNT files of LIST
# (cycling; NAMEFMT "" keeps the names), then prints "BYTES RECORDS": the
# report bytes and the tc_report entries the daemon must deliver.
links() {
  "$PY" - "$@" <<'EOF2'
import json, os, sys
lst, d, count, fmt = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
paths = [l.strip() for l in open(lst) if l.strip()][:count or None]
cache = {}
total = records = 0
for i in range(count or len(paths)):
    p = paths[i % len(paths)]
    os.link(p, os.path.join(d, fmt % i if fmt else os.path.basename(p)))
    if p not in cache:
        doc = json.load(open(p, "rb"))
        tasks = doc if isinstance(doc, list) else [doc]
        cache[p] = (os.path.getsize(p),
                    sum(len(t.get("tc_report", [])) for t in tasks))
    total += cache[p][0]
    records += cache[p][1]
print(total, records)
EOF2
}

# ---- headline ------------------------------------------------------------
if [[ " $ONLY " == *" headline "* ]]; then
  say "== headline: the typical corpus, $RUNS rounds"
  azurite_up
  hdir="$work/headline"
  mkdir -p "$hdir"
  # The corpus, or (quick) its first reports up to SLICE_MB.
  "$PY" - "$corpus/manifest.txt" "$SLICE_MB" >"$work/headline.list" <<'EOF2'
import os, sys
total = 0
for l in open(sys.argv[1]):
    p = l.strip()
    if not p or (float(sys.argv[2]) and total >= float(sys.argv[2]) * 1e6):
        continue
    total += os.path.getsize(p)
    print(p)
EOF2
  hblobs=$(wc -l <"$work/headline.list")
  read -r hbytes hrecs < <(links "$work/headline.list" "$hdir" 0 "")
  upload headline "$hdir"
  for ((r = 1; r <= RUNS; r++)); do
    run_daemon headline headline-gzip headline "" gzip fake process \
      "$hblobs" "$hbytes" "$hrecs" 300
    run_daemon headline headline-none headline "" none fake process \
      "$hblobs" "$hbytes" "$hrecs" 300
    if [ "$PEER" = 1 ]; then
      run_peer headline headline-peer headline "" gzip "$hblobs" "$hbytes" \
        "$hrecs"
      [ "$r" = 1 ] && run_peer headline headline-peer-none headline "" \
        none "$hblobs" "$hbytes" "$hrecs"
    fi
  done
fi

# ---- typical: many typical reports, peak RSS ------------------------------
if [[ " $ONLY " == *" typical "* ]]; then
  say "== typical: $TYPICAL blobs cycling through the corpus"
  azurite_up
  tdir="$work/typical"
  mkdir -p "$tdir"
  read -r tbytes trecs < <(links "$corpus/manifest.txt" "$tdir" "$TYPICAL" \
                           "t%05d.json")
  upload typical "$tdir"
  rm -rf "$tdir"
  run_daemon typical typical-gzip typical "" gzip fake process \
    "$TYPICAL" "$tbytes" "$trecs" 900
fi

# ---- sizes: one large report ----------------------------------------------
if [[ " $ONLY " == *" sizes "* ]]; then
  say "== sizes: one report of $SIZES MB (100 extracted files per MB)"
  azurite_up
  for s in $SIZES; do
    f=$out/e2e-report-${s}mb.json
    if [ ! -f "$f" ]; then
      "$PY" tests/bench/gen_scale.py --big "$s" --entries $((s * 100)) \
        --out "$f" >/dev/null || die "generating $f failed"
    fi
    mkdir -p "$work/size$s"
    ln "$f" "$work/size$s/report.json"
    upload "size$s" "$work/size$s"
    rm -rf "$work/size$s"
    sbytes=$(stat -c %s "$f")
    run_daemon sizes "size-${s}mb" "size$s" "" gzip fake process 1 \
      "$sbytes" $((s * 100)) 300
    if [ "$PEER" = 1 ] && [[ " $PEER_SIZES " == *" $s "* ]]; then
      run_peer sizes "size-${s}mb-peer" "size$s" "" gzip 1 "$sbytes" \
        $((s * 100))
    fi
  done
fi
azurite_stop

# ---- blobs: many small blobs, then a poll over all of them done ------------
# Served by tests/bench/fake_storage.py (see there why not Azurite), as a
# container that filled at one report every 0.1 s.
STORE_PID=
if [[ " $ONLY " == *" blobs "* ]]; then
  maxb=0
  for n in $BLOBS; do [ "$n" -gt "$maxb" ] && maxb=$n; done
  say "== blobs: $BLOBS small reports (one written every 0.1 s), then one" \
      "poll with all done"
  sdir=$out/e2e-small-$maxb
  if [ ! -f "$sdir/done" ]; then
    rm -rf "$sdir"
    "$PY" tests/bench/gen_scale.py --small "$maxb" --out "$sdir" \
      >"$work/small.json" || die "generating $sdir failed"
    cp "$work/small.json" "$sdir/done"
  fi
  rm -f "$work/store.port"
  "$PY" tests/bench/fake_storage.py --dir "$sdir/s" --port-file \
    "$work/store.port" --container small --step 0.1 \
    >"$work/store.out" 2>&1 &
  STORE_PID=$!
  for _ in $(seq 600); do
    [ -s "$work/store.port" ] && break
    sleep 0.1
  done
  [ -s "$work/store.port" ] || die "fake_storage.py did not start"
  CONN="DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=$KEY;BlobEndpoint=http://127.0.0.1:$(cat "$work/store.port")/devstoreaccount1"
  for n in $BLOBS; do
    case $n in
      1000) prefix=00 ;;
      10000) prefix=0 ;;
      100000) prefix= ;;
      *) die "E2E_BLOBS: $n is not 1000, 10000 or 100000" ;;
    esac
    [ "$n" -le "$maxb" ] || die "E2E_BLOBS: $n over the $maxb generated"
    nbytes=$("$PY" - "$sdir/s" "$n" <<'EOF2'
import os, sys
print(sum(os.path.getsize(os.path.join(sys.argv[1], "%05d.json" % i))
          for i in range(int(sys.argv[2]))))
EOF2
)
    run_daemon blobs "blobs-$n" small "$prefix" gzip "$work/records.ndjson" \
      process "$n" "$nbytes" 0 $((60 + n / 500))
    # A poll over a container the daemon did not finish would not be one
    # over done blobs.
    [ "$LAST_OK" = 1 ] &&
      run_daemon blobs "blobs-$n" small "$prefix" gzip \
        "$work/records.ndjson" repoll "$n" "$nbytes" 0 120
    rm -f "$work/records.ndjson"
  done
  kill "$STORE_PID" 2>/dev/null || true
  wait "$STORE_PID" 2>/dev/null || true
  STORE_PID=
fi

# ---- summary ---------------------------------------------------------------
say ""
set +e
"$PY" tests/bench/e2e_summary.py --runs "$runs" --out "$out" \
  --max-request "$MAX_REQUEST" | tee "$summary"
sumrc=${PIPESTATUS[0]}
set -e
say ""
say "e2e: done in $(($(date +%s) - start)) s; figures in $summary, runs in $runs"
if [ $failed != 0 ] || [ "$sumrc" != 0 ]; then
  say "e2e: FAILED (a program failed or a run delivered the wrong records)"
  exit 1
fi
exit 0
