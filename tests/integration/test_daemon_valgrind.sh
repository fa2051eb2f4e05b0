#!/usr/bin/env bash
# The daemon end to end under valgrind (issue 5): 40 reports, two bad blobs
# and a fault, then SIGTERM. valgrind must report no error and no leak
# (definite or indirect), and every record must arrive. Skipped for an ASan
# build (the two cannot run together); `make test` runs it on the plain
# build.
set -u
if nm "$BIN" 2>/dev/null | grep -q __asan_init; then
  echo "skip: ASan build (valgrind runs on the plain build)"
  exit 0
fi
command -v valgrind >/dev/null || { echo "FAIL: valgrind missing (make deps)"; exit 1; }
source "$TOP/tests/integration/daemon_lib.sh"

e2e_start_peers
e2e_corpus 40 2 7
# The fault needs three requests; the records (about 445 KB) fill at least
# five of 100 KB whatever the timing.
fake_post "$FAKE" /_fake/faults '[{"role":"ingest","skip":2,"status":503}]'
E2E_MAX_REQUEST=100000 E2E_METRICS="127.0.0.1:0" e2e_config
DAEMON_WRAPPER="valgrind -q --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite,indirect --show-leak-kinds=definite,indirect --log-file=$WORK/valgrind.txt" \
  daemon_start
wait_done "$(expected_blobs)" 180
wait_records "$(expected_records)" 60
expect_faults ingest 1
daemon_stop 60
[ -s "$WORK/valgrind.txt" ] && fail "valgrind: $(head -40 "$WORK/valgrind.txt")"
e2e_check --exact || fail "delivery check failed under valgrind"
ok "valgrind: no errors, no leaks"
