#!/usr/bin/env bash
# kill -9 at random moments (issue 5): the daemon is killed ten times while
# it works through 1,000 reports and restarted each time. At the end every
# record must have arrived, and a record may arrive twice only if its blob
# was in flight (journalled as started, not finished) at one of the kills.
set -u
source "$TOP/tests/integration/daemon_lib.sh"

e2e_start_peers
e2e_corpus 1000 6 4
# Slow some requests down so that kills land in every phase. The five
# delays need 5 + 80 requests (see expect_faults); with 1 MB requests the
# whole corpus makes about 21, so requests are capped at 100 KB: its 9,828
# records, 10.8 MB, make at least 108 whatever the timing, and the test
# checks that all five fired.
fake_post "$FAKE" /_fake/faults \
  '[{"role":"ingest","skip":10,"delay":0.5},{"role":"ingest","skip":15,"delay":0.5},{"role":"ingest","skip":15,"delay":0.5},{"role":"ingest","skip":20,"delay":0.5},{"role":"ingest","skip":20,"delay":0.5}]'
E2E_MAX_REQUEST=100000 e2e_config
: > "$WORK/inflight.txt"
seed=${KILL_SEED:-$RANDOM}
echo "kill seed $seed"
RANDOM=$seed
kills=0
for i in $(seq 10); do
  n0=$(records_count)
  daemon_start
  # Let it deliver something first, so that kills land in every phase
  # (listing, downloads, transforms, requests in flight, commits).
  for _ in $(seq 100); do
    [ "$(records_count)" -gt "$n0" ] && break
    sleep 0.05
  done
  sleep "0.$((RANDOM % 9))$((RANDOM % 10))"
  daemon_kill9
  kills=$((kills + 1))
  "$PY" "$TOP/tests/tools/ck_pending.py" "$STATE" >> "$WORK/inflight.txt"
  # The state must always load after a kill.
  "$BIN" state -c "$CFG" > /dev/null || fail "state does not load after kill $i"
done
inflight=$(sort -u "$WORK/inflight.txt" | wc -l)
before=$(records_count)
daemon_start
wait_done "$(expected_blobs)" 240
wait_records "$(expected_records)" 60
daemon_stop 30
expect_faults ingest 5
e2e_check --allow-dup-blobs "$WORK/inflight.txt" ||
  fail "delivery check failed (kill seed $seed)"
ok "$kills kills: nothing lost ($before records before the last start; $inflight blobs were in flight at a kill)"
