#!/usr/bin/env bash
# Backpressure from a slow destination (issue 7). While every request slot
# waits on an answer, the daemon must stop taking up new blobs once the
# request bodies it holds in memory reach their budget, rather than run the
# backlog through the transform into body spool files that it then reads
# back: that cost CPU and disk for nothing, since no record can leave before
# the destination answers.
#
# The corpus is about 100 MB of typical reports (about 20 MB of records,
# more than the 8 MiB body budget). The daemon gets one request slot, and
# the first ingestion request is held for 8 s. Meanwhile the test
# samples the daemon's open descriptors: a body spool file is an unlinked
# file under state/spool, and none may appear (the test checks that every
# report is under the 4 MiB in-memory download limit, so no blob spool
# file is expected either). Afterwards every record must arrive exactly
# once.
set -u
source "$TOP/tests/integration/daemon_lib.sh"

e2e_start_peers
"$PY" "$TOP/tests/bench/gen_reports.py" --out "$WORK/corpus" --mb 100 \
  --seed 2 >/dev/null || fail "gen_reports.py failed"
# gen_reports.py counts the reports and their records in meta.json.
meta=$WORK/corpus/meta.json
want=$(json_get "$meta" 'd["records"]')
blobs=$(json_get "$meta" 'd["reports"]')
[ "${want:-0}" -gt 0 ] || fail "no records in the corpus"
[ "$(json_get "$meta" 'd["max_report_bytes"] < 4 << 20')" = True ] ||
  fail "a report reaches the 4 MiB in-memory download limit"
node "$TOP/tests/tools/upload_reports.js" "$CONN" reports "$WORK/corpus/reports" \
  --concurrency 32 >/dev/null || fail "upload failed"

# One request slot, held for 8 s: a shipment in flight and one being built
# take about 2 MB of records out of the budget, so most of the rest would
# have to wait in memory or on disk.
fake_post "$FAKE" /_fake/faults '[{"role":"ingest","delay":8}]'
E2E_TIMEOUT=30s E2E_CONCURRENCY=1 e2e_config
t0=$(date +%s%N)
daemon_start

# Sample the descriptors that point into the spool directory, and keep the
# most seen at once, for 6.5 s from the start: the held request reaches
# the fake after t0, so its 8 s stall outlasts the sampling however slowly
# this machine runs the loop.
max_spool=0
while [ $(( $(date +%s%N) - t0 )) -lt 6500000000 ]; do
  n=$(ls -l "/proc/$DAEMON_PID/fd" 2>/dev/null | grep -c "$STATE/spool/")
  [ "$n" -gt "$max_spool" ] && max_spool=$n
  sleep 0.1
done
echo "spool files open at once during the stall: at most $max_spool"
held=$(wc -l < "$RECORDS")
[ "$held" = 0 ] || fail "$held records arrived while the destination stalled"

wait_done "$blobs" 120
wait_records "$want" 60
daemon_stop 30
got=$(records_count)
[ "$got" = "$want" ] || fail "$got records arrived, $want expected"
dups=$(sort "$RECORDS" | uniq -d | wc -l)
[ "$dups" = 0 ] || fail "$dups records arrived twice"
[ "$max_spool" = 0 ] ||
  fail "the daemon spooled request bodies to disk while the destination" \
    "stalled ($max_spool spool files open at once)"
ok "a stalled destination held the pipeline without spooling bodies" \
  "($blobs blobs, $want records)"
