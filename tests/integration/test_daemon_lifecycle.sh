#!/usr/bin/env bash
# Lifecycle of the daemon (issue 5):
#  1. SIGTERM during a large backlog exits 0 within shutdown_timeout, and a
#     restart resumes where it stopped (nothing missing; duplicates only
#     from blobs in flight at the stop).
#  2. A corrupt checkpoint is refused with a clear message, and nothing is
#     sent again.
#  3. after_ingest: delete deletes exactly the blobs whose records were all
#     acknowledged: not those with a record the API rejected, nor bad ones.
set -u
source "$TOP/tests/integration/daemon_lib.sh"

e2e_start_peers
e2e_corpus 800 4 5
# Slow ingestion so that SIGTERM finds a backlog and requests in flight.
fake_post "$FAKE" /_fake/faults \
  "[$(for i in $(seq 60); do printf '{"role":"ingest","delay":0.3},'; done)
    {\"role\":\"ingest\",\"delay\":0.3}]"
E2E_SHUTDOWN=3s e2e_config
daemon_start
wait_records 200 60
t0=$(date +%s.%N)
daemon_stop 10
took=$("$PY" -c "print(round($(date +%s.%N) - $t0, 1))")
"$PY" -c "import sys; sys.exit(0 if $took <= 3 + 2 else 1)" ||
  fail "SIGTERM took ${took}s with shutdown_timeout 3s"
partial=$(records_count)
[ "$partial" -lt "$(expected_records)" ] ||
  fail "the backlog was already done at SIGTERM; the test proves nothing"
"$PY" "$TOP/tests/tools/ck_pending.py" "$STATE" > "$WORK/inflight.txt"
ok "SIGTERM with a backlog: exit 0 in ${took}s, $partial of $(expected_records) records sent"

daemon_start
wait_done "$(expected_blobs)" 180
wait_records "$(expected_records)" 60
daemon_stop 30
e2e_check --allow-dup-blobs "$WORK/inflight.txt" || fail "resume lost or repeated records"
ok "the restart resumed where it stopped"

# 2. A corrupt checkpoint: flip one byte inside a complete journal line (or
#    the snapshot, when a compaction emptied the journal).
target=$STATE/checkpoint.journal
[ "$(wc -l < "$target")" -ge 3 ] || target=$STATE/checkpoint.snap
"$PY" - "$target" <<'PYEOF'
import sys
p = sys.argv[1]
data = bytearray(open(p, "rb").read())
second = data.index(b"\n") + 1
data[second + 2] ^= 0x01
open(p, "wb").write(data)
PYEOF
before=$(records_count)
rc=0
timeout 20 "$BIN" run -c "$CFG" > "$WORK/corrupt.log" 2>&1 || rc=$?
[ $rc -ne 0 ] && [ $rc -ne 124 ] || fail "a corrupt checkpoint did not stop the daemon (rc $rc)"
grep -q 'corrupt line' "$WORK/corrupt.log" || fail "no clear message: $(cat "$WORK/corrupt.log")"
grep -q 'refusing to start' "$WORK/corrupt.log" || fail "no refusal explained"
[ "$(records_count)" = "$before" ] || fail "records were sent again from a corrupt state"
"$BIN" state -c "$CFG" > "$WORK/state.txt" 2>&1 && fail "state accepted a corrupt checkpoint"
ok "a corrupt checkpoint is refused: $(grep -o 'checkpoint[.a-z]*:[0-9]*: corrupt line' "$WORK/corrupt.log" | head -1)"

# 3. after_ingest: delete, in a fresh state on a fresh container.
rm -rf "$STATE"
: > "$RECORDS"
"$PY" "$TOP/tests/tools/gen_e2e.py" "$WORK/del" --count 30 --bad 2 --seed 6 \
  --prefix d/ > /dev/null || fail "gen"
# Two reports carry a record the API rejects (the fake refuses any request
# holding a task_id that starts with "poison").
poisoned=()
for f in $(cd "$WORK/del/blobs" && ls d/2026/0[12]/report-0000[0-9].json | head -2); do
  sed -i 's/"task_id": *"e2e-/"task_id": "poison-e2e-/' "$WORK/del/blobs/$f"
  poisoned+=("$f")
done
[ ${#poisoned[@]} = 2 ] || fail "could not poison two reports"
node "$TOP/tests/tools/upload_reports.js" "$CONN" deltest "$WORK/del/blobs" \
  > /dev/null || fail "upload"
sed -i 's/^  container: reports$/  container: deltest/; s/^  after_ingest: keep$/  after_ingest: delete/' "$CFG"
grep -q 'after_ingest: delete' "$CFG" || fail "config edit"
daemon_start
wait_done 32 120
sleep 1
daemon_stop 30
node "$TOP/tests/tools/upload_reports.js" "$CONN" deltest --list | sort > "$WORK/left.txt"
want=$( (printf '%s\n' "${poisoned[@]}"; cd "$WORK/del/blobs" && ls d/bad/*) | sort)
[ "$(cat "$WORK/left.txt")" = "$want" ] ||
  fail "after_ingest delete left: $(tr '\n' ' ' < "$WORK/left.txt"), want: $(echo $want)"
dl=$(cat "$STATE"/dead-letter/*.ndjson | grep -c '"kind":"record"')
[ "$dl" -ge 2 ] || fail "the rejected records were not dead-lettered ($dl)"
ok "after_ingest delete removed the 28 fully acknowledged blobs and kept the 2 with rejected records and the 2 bad ones"
