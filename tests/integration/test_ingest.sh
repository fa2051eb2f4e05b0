#!/usr/bin/env bash
# The Logs Ingestion client (ingest.c) through the real batcher against the
# strict fake of tests/fakes/fake_azure.py: delivery with gzip, the status
# policy (poison records bisected and dead-lettered with the server's error
# code, 413 split, 429 with Retry-After waited for, 503 / 500 / dropped
# connection / slow answers retried, 401 refreshed once, 403 and 404 keep
# the data), the concurrency limit and the 47 h / 23 h TimeGenerated clamp.
. "$TOP/tests/fakes/lib.sh"

compile_tool ingest_driver

# run NAME FAKE-PORT ARGS...: runs the driver against that fake.
run() {
  local name=$1 port=$2; shift 2
  drive "$name" ingest_driver --authority "http://127.0.0.1:$port" \
    --tenant tenant-1 --client-id app1 --secret s3cr3t-value-1 \
    --endpoint "http://127.0.0.1:$port" "$@"
  [ -s "$WORK/$name.out" ] || fail "$name: no result"
}
# new_fake NAME [ARGS]: a fresh fake (requiring gzip unless ARGS say
# otherwise) whose accepted records go to NAME.records.
new_fake() {
  local name=$1; shift
  [ $# -eq 0 ] && set -- --require-gzip
  : >"$WORK/$name.records"
  start_fake "$name" --client "app1:secret:s3cr3t-value-1" \
    --records "$WORK/$name.records" --log "$WORK/$name.log" "$@"
}
val() { json_get "$WORK/$1.out" "$2"; }

# Delivery: 1,000 records in one gzip body.
new_fake A
run basic "$PORT_A" --count 1000
[ "$(val basic 'd["acked"]')" = 1000 ] || fail "basic: $(cat "$WORK/basic.out")"
[ "$(wc -l <"$WORK/A.records")" = 1000 ] || fail "basic: fake records"
[ "$(val basic 'd["requests"]')" = 1 ] || fail "basic: one request"
ok "1,000 records delivered in one gzip request"

# 3 poison records among 1,000: 997 delivered, 3 dead-lettered with the
# server's error code, status and the attempt's request id.
new_fake B
run poison "$PORT_B" --count 1000 --poison 17,500,998 \
  --deadletter "$WORK/state/dead-letter"
[ "$(val poison 'd["acked"]')" = 997 ] || fail "poison: $(cat "$WORK/poison.out")"
[ "$(val poison 'd["rejected"]')" = 3 ] || fail "poison: rejected"
[ "$(val poison 'sorted(r["index"] for r in d["rejects"])')" = "[17, 500, 998]" ] ||
  fail "poison: which"
[ "$(val poison 'set(r["code"] for r in d["rejects"])')" = "{'InvalidRecord'}" ] ||
  fail "poison: code"
[ "$(wc -l <"$WORK/B.records")" = 997 ] || fail "poison: fake got other than 997"
! grep -q '"task_id":"poison' "$WORK/B.records" || fail "poison delivered"
dl=$(ls "$WORK"/state/dead-letter/*.ndjson)
[ "$(wc -l <"$dl")" = 3 ] || fail "poison: dead-letter lines"
"$PY" - "$dl" "$WORK/B.log" <<'PYEOF' || fail "poison: dead-letter content"
import json, sys
lines = [json.loads(l) for l in open(sys.argv[1])]
ids = {json.loads(l).get("request_id") for l in open(sys.argv[2])
       if json.loads(l).get("status") == 400}
for e in lines:
    assert e["kind"] == "record" and e["reason"] == "rejected", e
    assert e["http_status"] == 400 and e["error_code"] == "InvalidRecord", e
    assert e["record"]["task_id"] == "poison-%d" % e["record_index"], e
    assert "poison-%d" % e["record_index"] in e["error_message"], e
    assert e["request_id"] in ids, e
PYEOF
[ "$(stat -c %a "$dl")" = 600 ] || fail "dead-letter file mode"
[ "$(stat -c %a "$WORK/state/dead-letter")" = 700 ] || fail "dead-letter dir mode"
ok "3 poison records of 1,000: 997 delivered, 3 dead-lettered ($(val poison 'd["requests"]') requests)"

# 413: a body over 1,048,576 bytes, uncompressed and then compressed
# (the fake checks the decompressed size too), is split in halves.
new_fake C --verbose
for comp in none gzip; do
  run split-$comp "$PORT_C" --count 1400 --pad 1000 --max-request 1500000 \
    --compression $comp
  [ "$(val split-$comp 'd["acked"]')" = 1400 ] ||
    fail "split $comp: $(cat "$WORK/split-$comp.out")"
  [ "$(val split-$comp 'd["splits"] >= 1 and d["rejected"] == 0')" = True ] ||
    fail "split $comp: no split"
done
[ "$(wc -l <"$WORK/C.records")" = 2800 ] || fail "split: fake records"
grep -q '"status": 413' "$WORK/C.log" || fail "split: no 413 seen"
ok "bodies over 1 MiB (raw and gzip) split on 413"

# 429 with Retry-After: 2 is waited for at least 2 s, and every request
# waits (the limit is per DCR).
new_fake E
fake_post "$PORT_E" /_fake/faults \
  '[{"status":429,"headers":{"Retry-After":"2"},"body":{"error":{"code":"TooManyRequests","message":"slow down"}}}]'
run throttle "$PORT_E" --count 50 --backoff-base-ms 50
[ "$(val throttle 'd["acked"]')" = 50 ] || fail "429: $(cat "$WORK/throttle.out")"
[ "$(val throttle 'd["throttled"]')" = 1 ] || fail "429: throttled count"
"$PY" - "$WORK/E.log" <<'PYEOF' || fail "429: did not wait 2 s"
import json, sys
reqs = [json.loads(l) for l in open(sys.argv[1]) if '"ingest"' in l]
assert reqs[0]["status"] == 429 and reqs[1]["status"] == 204, reqs
gap = reqs[1]["received"] - reqs[0]["received"]
assert gap >= 2.0, gap
print("waited %.2f s" % gap)
PYEOF
ok "429 Retry-After: 2 waited for"

# 503 (no hint), a dropped connection, an answer cut short, 500, 502, a slow
# answer past the timeout and 408: all retried with backoff, nothing lost,
# no request id used twice (the fake refuses that). (curl itself resends a
# request once when a reused connection closes before any answer, so the
# drop may not reach the client; the cut answer always does.)
new_fake F
fake_post "$PORT_F" /_fake/faults \
  '[{"status":503},{"drop":true},{"truncate":true},{"status":500,"body":{"error":{"code":"InternalServerError","message":"x"}}},{"status":502},{"delay":2.5,"status":503},{"status":408}]'
run transient "$PORT_F" --count 200 --timeout-ms 1000 --backoff-base-ms 50 \
  --backoff-cap-ms 200
[ "$(val transient 'd["acked"]')" = 200 ] ||
  fail "transient: $(cat "$WORK/transient.out")"
[ "$(val transient 'd["retries"] >= 6 and d["rejected"] == 0')" = True ] ||
  fail "transient: retries"
[ "$(wc -l <"$WORK/F.records")" = 200 ] || fail "transient: fake records"
grep -q 'timed out' "$WORK/transient.err" || fail "transient: no timeout seen"
grep -q 'transfer closed with' "$WORK/transient.err" ||
  fail "transient: the cut answer was not seen"
ok "503, dropped connection, 500, 502, timeout and 408 retried"

# 401 once: a new token, then success.
new_fake G
fake_post "$PORT_G" /_fake/faults \
  '[{"status":401,"body":{"error":{"code":"InvalidAuthenticationToken","message":"expired"}}}]'
run auth "$PORT_G" --count 20
[ "$(val auth 'd["acked"]')" = 20 ] || fail "401: $(cat "$WORK/auth.out")"
[ "$(val auth 'd["auth_refreshes"]')" = 1 ] || fail "401: refreshes"
[ "$(fake_stat "$PORT_G" tokens_issued)" = 2 ] || fail "401: no new token"
ok "401: token refreshed, request retried once"

# 403 (role missing) and 404 (wrong DCR) keep the data pending and are
# never dead-lettered.
new_fake H
fake_post "$PORT_H" /_fake/config '{"forbid":true}'
run forbidden "$PORT_H" --count 30 --backoff-base-ms 100 --backoff-cap-ms 200 \
  --close-after-ms 1500 --deadletter "$WORK/dl403"
[ "$(val forbidden '(d["acked"], d["rejected"], d["pending"])')" = "(0, 0, 30)" ] ||
  fail "403: $(cat "$WORK/forbidden.out")"
[ "$(val forbidden 'd["config_errors"] >= 2')" = True ] || fail "403: retried"
[ -z "$(ls "$WORK/dl403")" ] || fail "403: something was dead-lettered"
grep -q 'Monitoring Metrics Publisher' "$WORK/forbidden.err" ||
  fail "403: the log does not say what to check"
run notfound "$PORT_H" --count 30 --dcr dcr-wrong --backoff-base-ms 100 \
  --close-after-ms 800
[ "$(val notfound '(d["acked"], d["rejected"], d["pending"])')" = "(0, 0, 30)" ] ||
  fail "404: $(cat "$WORK/notfound.out")"
grep -qi 'check destination.endpoint, dcr_immutable_id' "$WORK/notfound.err" ||
  fail "404: the log does not say what to check"
[ ! -s "$WORK/H.records" ] || fail "403/404: records reached the fake"
ok "403 and 404 keep the data pending and say what to check"

# At most `concurrency` requests in flight: 24 bodies, every request slowed.
new_fake I
fake_post "$PORT_I" /_fake/faults "$("$PY" -c 'import json; print(json.dumps([{"delay":0.2}]*24))')"
run conc "$PORT_I" --count 240 --max-request 3000 --concurrency 3
[ "$(val conc 'd["acked"]')" = 240 ] || fail "concurrency: $(cat "$WORK/conc.out")"
[ "$(fake_stat "$PORT_I" ingest_max_concurrent)" = 3 ] ||
  fail "concurrency: $(fake_stat "$PORT_I" ingest_max_concurrent) in flight"
ok "never more than 3 requests in flight with concurrency 3"

# The clamp: times 50 h in the past and 25 h in the future are sent as the
# send time (the fake counts rows Azure would drop); processed keeps the
# original.
new_fake J
for off in -180000 90000; do
  run clamp$off "$PORT_J" --count 100 --time-offset $off
  [ "$(val clamp$off '(d["acked"], d["clamped"])')" = "(100, 100)" ] ||
    fail "clamp $off: $(cat "$WORK/clamp$off.out")"
done
[ "$(fake_stat "$PORT_J" dropped_out_of_window)" = 0 ] ||
  fail "clamp: rows outside Azure's window reached the fake"
"$PY" - "$WORK/J.records" <<'PYEOF' || fail "clamp: times"
import datetime, json, sys, time
now = time.time()
for l in open(sys.argv[1]):
    r = json.loads(l)
    t = datetime.datetime.fromisoformat(r["TimeGenerated"].replace("Z", "+00:00")).timestamp()
    assert abs(t - now) < 120, r
    assert abs(r["processed"] - now) > 80000, r
PYEOF
ok "TimeGenerated outside 47 h / 23 h set to the send time, processed kept"
