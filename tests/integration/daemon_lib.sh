# daemon_lib.sh: shared setup of the daemon's end-to-end tests.
#
# Source after setting TOP and BUILD. Builds on tests/fakes/lib.sh (work
# directory, fakes on port 0, cleanup by PID) and tests/tools/azurite.sh.
#   e2e_start_peers             Azurite + the strict Logs Ingestion fake
#   e2e_corpus N [BAD] [SEED]   generate N reports (+BAD bad blobs), upload
#   e2e_config [KEY=VALUE...]   write $CFG for the daemon
#   daemon_start / daemon_stop / daemon_kill9
#   wait_records N [SECS]       until the fake holds N records
#   expect_faults ROLE N        all N faults queued for ROLE fired
#   e2e_check [ARGS]            tests/tools/check_e2e.py on what arrived
source "$TOP/tests/fakes/lib.sh"
source "$TOP/tests/tools/azurite.sh"

KEY='Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=='
CFG=$WORK/daemon.yaml
STATE=$WORK/state
RECORDS=$WORK/records.ndjson
DAEMON_PID=
DAEMON_LOG=$WORK/daemon.log
SECRET=e2e-client-secret-value-1

# On failure, show the daemon's log too; E2E_KEEP=1 keeps the work
# directory for a post-mortem.
fail() {
  echo "FAIL: $*" | cut -c1-3000 >&2
  if [ -s "$DAEMON_LOG" ]; then
    echo "--- daemon log (last lines)" >&2
    grep -v ' debug ' "$DAEMON_LOG" | tail -40 | cut -c1-400 >&2
  fi
  exit 1
}
e2e_cleanup() {
  daemon_kill9
  azurite_stop
  if [ "${E2E_KEEP:-0}" = 1 ]; then
    echo "work directory kept: $WORK" >&2
    FAKE_PIDS_KEEP=("${FAKE_PIDS[@]}")
    for p in "${FAKE_PIDS_KEEP[@]}"; do kill "$p" 2>/dev/null; done
  else
    cleanup_fakes
  fi
}
trap e2e_cleanup EXIT

e2e_start_peers() {
  azurite_start "$WORK" || fail "Azurite did not start"
  CONN="DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=$KEY;BlobEndpoint=$AZURITE_URL;"
  : > "$RECORDS"
  start_fake ing --client "app1:secret:$SECRET" --records "$RECORDS" \
    --log "$WORK/fake.log"
  FAKE=$PORT_ing
}

# e2e_corpus COUNT [BAD] [SEED] [PREFIX]: generates into $WORK/corpus and
# uploads it with the official SDK.
e2e_corpus() {
  local n=$1 bad=${2:-0} seed=${3:-1} prefix=${4:-in/}
  rm -rf "$WORK/corpus"
  "$PY" "$TOP/tests/tools/gen_e2e.py" "$WORK/corpus" --count "$n" \
    --bad "$bad" --seed "$seed" --prefix "$prefix" >/dev/null ||
    fail "gen_e2e.py failed"
  node "$TOP/tests/tools/upload_reports.js" "$CONN" reports \
    "$WORK/corpus/blobs" --markers >/dev/null || fail "upload failed"
}

# e2e_config [LINES...]: the daemon configuration; extra YAML lines replace
# nothing, so tests add whole sections they need through E2E_* variables.
e2e_config() {
  cat > "$CFG" <<EOC
source:
  connection_string: "$CONN"
  container: reports
  poll_interval: ${E2E_POLL:-1s}
  download_concurrency: 8
  after_ingest: ${E2E_AFTER:-keep}
destination:
  type: logs_ingestion
  endpoint: http://127.0.0.1:$FAKE
  dcr_immutable_id: dcr-00000000000000000000000000000000
  stream: Custom-SpectraDetectLogs_CL
  concurrency: ${E2E_CONCURRENCY:-4}
  timeout: ${E2E_TIMEOUT:-10s}
  max_request_bytes: ${E2E_MAX_REQUEST:-1000000}
credential:
  method: client_secret
  tenant_id: tenant-1
  client_id: app1
  client_secret: $SECRET
  authority_host: http://127.0.0.1:$FAKE
state:
  directory: $STATE
metrics:
  listen: "${E2E_METRICS:-}"
log:
  level: ${E2E_LOG:-info}
shutdown_timeout: ${E2E_SHUTDOWN:-20s}
EOC
  chmod 600 "$CFG"
}

daemon_start() {
  ${DAEMON_WRAPPER:-} "$BIN" run -c "$CFG" >>"$DAEMON_LOG" 2>&1 &
  DAEMON_PID=$!
}

# daemon_stop [SECS]: SIGTERM, then the exit status must be 0 within SECS.
daemon_stop() {
  local secs=${1:-30} rc=0
  [ -n "$DAEMON_PID" ] || return 0
  kill -TERM "$DAEMON_PID"
  for _ in $(seq $((secs * 10))); do
    kill -0 "$DAEMON_PID" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$DAEMON_PID" 2>/dev/null; then
    kill -9 "$DAEMON_PID"
    fail "the daemon did not exit within ${secs}s of SIGTERM"
  fi
  wait "$DAEMON_PID" || rc=$?
  DAEMON_PID=
  [ $rc -eq 0 ] || fail "the daemon exited with $rc after SIGTERM"
  if grep -q 'Sanitizer\|runtime error:' "$DAEMON_LOG"; then
    fail "sanitizer report in the daemon log"
  fi
}

daemon_kill9() {
  if [ -n "${DAEMON_PID:-}" ]; then
    kill -9 "$DAEMON_PID" 2>/dev/null
    wait "$DAEMON_PID" 2>/dev/null
    DAEMON_PID=
  fi
}

records_count() {
  wc -l < "$RECORDS"
}

# wait_records N [SECS]: waits until the fake accepted N records (or more).
wait_records() {
  local n=$1 secs=${2:-120}
  for _ in $(seq $((secs * 5))); do
    [ "$(records_count)" -ge "$n" ] && return 0
    if [ -n "$DAEMON_PID" ] && ! kill -0 "$DAEMON_PID" 2>/dev/null; then
      fail "the daemon died: $(tail -5 "$DAEMON_LOG")"
    fi
    sleep 0.2
  done
  fail "only $(records_count) of $n records arrived in ${secs}s"
}

# wait_done N [SECS]: waits until the checkpoint holds N finished blobs.
wait_done() {
  local n=$1 secs=${2:-120} got
  for _ in $(seq $((secs * 2))); do
    got=$("$BIN" state -c "$CFG" 2>/dev/null |
          awk '/^blobs done/ {d=$3} /^blobs failed/ {f=$3} END {print d+f}')
    [ "${got:-0}" -ge "$n" ] && return 0
    sleep 0.5
  done
  fail "only ${got:-0} of $n blobs finished in ${secs}s"
}

# expect_faults ROLE N: all N faults queued for ROLE fired. The fake's
# faults form a queue per role, each letting its "skip" requests pass after
# the one before it fired, and it counts a fault when a request takes it;
# a test that relies on its faults checks that enough requests came.
expect_faults() {
  local got
  got=$(fake_stat "$FAKE" "$1_faults")
  [ "$got" = "$2" ] || fail "$got of $2 $1 faults fired"
}

expected_records() {
  json_get "$WORK/corpus/expected.json" 'len(d["records"])'
}

expected_blobs() {
  json_get "$WORK/corpus/expected.json" 'len(d["blobs"])'
}

e2e_check() {
  "$PY" "$TOP/tests/tools/check_e2e.py" "$WORK/corpus/expected.json" \
    "$RECORDS" --deadletter "$STATE/dead-letter" "$@"
}
