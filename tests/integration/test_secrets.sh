#!/usr/bin/env bash
# test_secrets.sh: no secret ever leaves the daemon, and its files are
# private (SPEC section 7, issue 8 "Security").
#
# The daemon runs at log level debug with known, distinctive secret values:
# an account key (a custom AZURITE_ACCOUNTS account on Azurite), a SAS
# token (in a connection string), a client secret for the fake Entra
# endpoint of tests/fakes/fake_azure.py, and the access tokens that fake
# issues (all starting with a known prefix: --token-prefix). It goes
# through the success path and the error paths at the same time, one daemon
# per scenario:
#   key       shared key storage, a poison record and a bad blob
#             (dead-lettered), /metrics scraped, `state` run
#   sas       a SAS in a connection string written inline in a config that
#             others can read (the loader must warn)
#   wrongkey  a wrong account key (storage 403 AuthenticationFailed)
#   i401      the ingestion API answers 401 (token refused) three times,
#             echoing the client secret in its error message
#   i403      the ingestion API answers 403 (role missing)
#   i400      every ingestion request fails with 400 whose message echoes
#             the client secret and the account key: every record is
#             dead-lettered with that message
#   tok400    the token endpoint answers 400 invalid_client, echoing the
#             secret, then 401 for a wrong client secret
#   badcfg    configurations with a secret in the wrong place
# Then it fails if any secret, or its URL-encoded or base64 forms, appears
# in the daemons' stderr, the dead-letter files, the state directory
# files, a /metrics scrape, the output of `state` and `check`, or the
# records the fake Sentinel received. Every daemon must also exit 0 within
# shutdown_timeout of SIGTERM (LeakSanitizer included, in ASan builds).
# Last, the permissions: state directory 0700, checkpoint and dead-letter
# files 0600 (directories 0700), and the warning for a secret in a
# configuration file readable by others.
# Env: TOP, BUILD, BIN (tests/run-integration.sh).
. "$TOP/tests/fakes/lib.sh"
. "$TOP/tests/tools/azurite.sh"
: "${BIN:=$BUILD/spectra-sentinel}"

if [ ! -d "$TOP/tests/node_modules/azurite" ]; then
  echo "tests/node_modules missing: run make deps" >&2
  exit 1
fi
[ -x "$BIN" ] || fail "no daemon binary at $BIN"

DAEMON_PIDS=()
stop_all() {
  for p in "${DAEMON_PIDS[@]}"; do
    kill -KILL "$p" 2>/dev/null
    wait "$p" 2>/dev/null
  done
  azurite_stop
  # KEEP_WORK=DIR keeps a copy of the work directory for a post-mortem.
  [ -n "${KEEP_WORK:-}" ] && rm -rf "$KEEP_WORK" && cp -r "$WORK" "$KEEP_WORK"
  cleanup_fakes
}
trap stop_all EXIT

# ---- the secrets ---------------------------------------------------------

rnd() { "$PY" -c 'import secrets; print(secrets.token_hex(6))'; }
R=$(rnd)
ACCOUNT=sentinelacct
# Account keys are base64; their decoded text is distinctive too.
ACCOUNT_KEY=$("$PY" -c 'import base64,sys; print(base64.b64encode(("ss-acct-key/" + sys.argv[1] + "+Secret-Key-Material-0123").encode()).decode())' "$R")
WRONG_KEY=$("$PY" -c 'import base64,sys; print(base64.b64encode(("ss-wrong-key/" + sys.argv[1] + "+Other-Key-Material-9876").encode()).decode())' "$R")
CLIENT_SECRET="cs+Sentinel/Secret~$R.Value"
WRONG_SECRET="cs+Wrong/Secret~$R.Value"
TOKEN_PREFIX="tok-S3ntinelT0ken-$R-"

# ---- Azurite, the reports, the SAS -----------------------------------------

export AZURITE_ACCOUNTS="$ACCOUNT:$ACCOUNT_KEY"
azurite_start "$WORK" || fail "Azurite did not start"
unset AZURITE_ACCOUNTS
ENDPOINT="http://127.0.0.1:$AZURITE_PORT/$ACCOUNT"
CONN="DefaultEndpointsProtocol=http;AccountName=$ACCOUNT;AccountKey=$ACCOUNT_KEY;BlobEndpoint=$ENDPOINT"
mkdir -p "$WORK/reports"
cp "$TOP"/tests/data/samples/* "$WORK/reports/"
printf '{"task_id":"poison-1","processed":%d,"tc_report":[{"info":{"file":{"file_name":"x"}}}]}\n' \
  "$(date +%s)" >"$WORK/reports/poison.json"
printf 'this is not JSON {\n' >"$WORK/reports/bad.json"
(cd "$TOP/tests" && node tools/upload_reports.js "$CONN" reports "$WORK/reports") \
  >"$WORK/upload.log" 2>&1 || fail "upload: $(cat "$WORK/upload.log")"
SAS=$(cd "$TOP/tests" && node tools/upload.js sas "$CONN" reports container rl) ||
  fail "cannot make a SAS"
SAS_SIG=$("$PY" -c 'import sys,urllib.parse as u; print(u.parse_qs(sys.argv[1])["sig"][0])' "$SAS")
[ ${#SAS_SIG} -ge 20 ] || fail "SAS without a signature: $SAS"
RECORDS=16  # the good records of tests/data/samples (poison.json: 1 more)

# ---- configurations ----------------------------------------------------------

free_port() {
  "$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

printf '%s\n' "$ACCOUNT_KEY" >"$WORK/account-key"
printf '%s\n' "$CLIENT_SECRET" >"$WORK/client-secret"
chmod 600 "$WORK/account-key" "$WORK/client-secret"

# config NAME FAKE-PORT SOURCE-LINES [CREDENTIAL-SECRET-LINE]: writes
# $WORK/NAME.yaml (mode 0600) for a daemon reading the reports container
# and sending to the fake on FAKE-PORT; sets MPORT_NAME.
config() {
  local name=$1 port=$2 src=$3
  local cred=${4:-"  client_secret_file: $WORK/client-secret"}
  local mport; mport=$(free_port)
  printf -v "MPORT_$name" '%s' "$mport"
  cat >"$WORK/$name.yaml" <<EOF
source:
$src
  container: reports
  poll_interval: 1s
destination:
  type: logs_ingestion
  endpoint: http://127.0.0.1:$port
  dcr_immutable_id: dcr-00000000000000000000000000000000
  stream: Custom-SpectraDetectLogs_CL
  timeout: 5s
credential:
  method: client_secret
  tenant_id: tenant-1
  client_id: app1
$cred
  authority_host: http://127.0.0.1:$port
state:
  directory: $WORK/state-$name
metrics:
  listen: 127.0.0.1:$mport
log:
  level: debug
shutdown_timeout: 5s
EOF
  chmod 600 "$WORK/$name.yaml"
}

# fake NAME [ARGS]: a fake token + ingestion endpoint for scenario NAME.
fake() {
  local name=$1; shift
  : >"$WORK/$name.records"
  start_fake "$name" --client "app1:secret:$CLIENT_SECRET" \
    --token-prefix "$TOKEN_PREFIX" --records "$WORK/$name.records" \
    --log "$WORK/$name.fakelog" "$@"
}

# start NAME: runs the daemon on $WORK/NAME.yaml, stderr to d-NAME.err.
start() {
  "$BIN" run -c "$WORK/$1.yaml" >"$WORK/d-$1.out" 2>"$WORK/d-$1.err" &
  DAEMON_PIDS+=($!)
  printf -v "PID_$1" '%s' "$!"
}

# stop NAME: SIGTERM, then the daemon must exit 0 within 15 s.
stop() {
  local pidvar="PID_$1" rc=0
  local pid=${!pidvar}
  kill -TERM "$pid" 2>/dev/null
  for _ in $(seq 150); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  kill -0 "$pid" 2>/dev/null && fail "$1: still running 15 s after SIGTERM"
  wait "$pid" || rc=$?
  [ $rc -eq 0 ] || fail "$1: exit status $rc after SIGTERM"
  grep -q 'Sanitizer\|runtime error:' "$WORK/d-$1.err" &&
    fail "$1: sanitizer report"
  return 0
}

# scrape NAME: saves /metrics (and /healthz, /readyz) of daemon NAME.
scrape() {
  local portvar="MPORT_$1"
  curl -s "http://127.0.0.1:${!portvar}/metrics" >"$WORK/d-$1.metrics" ||
    fail "$1: /metrics did not answer"
  curl -s "http://127.0.0.1:${!portvar}/healthz" >>"$WORK/d-$1.metrics"
  curl -s "http://127.0.0.1:${!portvar}/readyz" >>"$WORK/d-$1.metrics"
  grep -q '^spectra_sentinel_' "$WORK/d-$1.metrics" ||
    fail "$1: /metrics holds no metric"
}

lines() { cat "$@" 2>/dev/null | wc -l; }

# wait_for SECONDS WHAT COMMAND...: polls COMMAND every 0.2 s.
wait_for() {
  local secs=$1 what=$2; shift 2
  for _ in $(seq $((secs * 5))); do
    "$@" && return 0
    sleep 0.2
  done
  fail "timed out after ${secs}s waiting for $what"
}

# ---- the scenarios -----------------------------------------------------------

KEYSRC="  account: $ACCOUNT
  endpoint: $ENDPOINT
  auth: shared_key
  account_key_file: $WORK/account-key"

fake key
config key "$PORT_key" "$KEYSRC"

fake sas
config sas "$PORT_sas" "  connection_string: \"BlobEndpoint=$ENDPOINT;SharedAccessSignature=$SAS\""
chmod 644 "$WORK/sas.yaml"   # readable by others: the loader warns

fake wrongkey
config wrongkey "$PORT_wrongkey" "  account: $ACCOUNT
  endpoint: $ENDPOINT
  auth: shared_key
  account_key: \"$WRONG_KEY\""

fake i401
fake_post "$PORT_i401" /_fake/faults "$("$PY" -c '
import json, sys
f = {"role": "ingest", "status": 401, "body": {"error": {
     "code": "InvalidAuthenticationToken",
     "message": "token rejected; client secret was " + sys.argv[1]}}}
print(json.dumps([f, f, f]))' "$CLIENT_SECRET")"
config i401 "$PORT_i401" "$KEYSRC"

fake i403
fake_post "$PORT_i403" /_fake/config '{"forbid":true}'
# Nothing can be delivered here (nor for tok400): the stop must still end
# within shutdown_timeout (an earlier daemon waited forever for request
# slots that never freed).
config i403 "$PORT_i403" "$KEYSRC"

fake i400
fake_post "$PORT_i400" /_fake/faults "$("$PY" -c '
import json, sys
f = {"role": "ingest", "status": 400, "body": {"error": {
     "code": "InvalidRecord",
     "message": "rejected; secret %s key %s" % (sys.argv[1], sys.argv[2])}}}
print(json.dumps([f] * 200))' "$CLIENT_SECRET" "$ACCOUNT_KEY")"
config i400 "$PORT_i400" "$KEYSRC"

fake tok400
fake_post "$PORT_tok400" /_fake/faults "$("$PY" -c '
import json, sys
f = {"role": "token", "status": 400, "body": {
     "error": "invalid_client",
     "error_description": "AADSTS7000215: Invalid client secret provided: " +
                          sys.argv[1]}}
print(json.dumps([f, f]))' "$WRONG_SECRET")"
config tok400 "$PORT_tok400" "$KEYSRC" "  client_secret: \"$WRONG_SECRET\""

for s in key sas wrongkey i401 i403 i400 tok400; do start $s; done

# Success: every good record delivered, the poison record and the bad blob
# dead-lettered.
dl_lines() { lines "$WORK/state-$1"/dead-letter/*.ndjson; }
wait_for 40 "key: $RECORDS records and 2 dead-letter lines" \
  eval '[ "$(lines "$WORK/key.records")" -ge $RECORDS ] && [ "$(dl_lines key)" -ge 2 ]'
scrape key
wait_for 20 "sas: $RECORDS records" eval '[ "$(lines "$WORK/sas.records")" -ge $RECORDS ]'
scrape sas
wait_for 20 "i401: $RECORDS records after the 401s" \
  eval '[ "$(lines "$WORK/i401.records")" -ge $RECORDS ]'
[ "$(fake_stat "$PORT_i401" tokens_issued)" -ge 2 ] ||
  fail "i401: the refused token was not replaced"
wait_for 20 "i400: every record dead-lettered" \
  eval '[ "$(dl_lines i400)" -ge $((RECORDS + 2)) ]'
# The error paths have had their say once these lines are in the logs.
wait_for 20 "wrongkey: the storage 403" \
  grep -q 'AuthenticationFailed\|403' "$WORK/d-wrongkey.err"
wait_for 20 "i403: the ingestion 403" \
  grep -q 'Monitoring Metrics Publisher' "$WORK/d-i403.err"
wait_for 20 "tok400: the token endpoint's refusals" \
  eval '[ "$(fake_stat "$PORT_tok400" token_requests)" -ge 3 ]'
grep -q 'invalid_client' "$WORK/d-tok400.err" ||
  fail "tok400: invalid_client not reported"
for s in wrongkey i403 tok400 i400; do scrape $s; done
for s in key sas wrongkey i401 i403 i400 tok400; do stop $s; done
[ "$(lines "$WORK/i403.records" "$WORK/tok400.records" "$WORK/wrongkey.records")" = 0 ] ||
  fail "records delivered despite the refusals"
ok "success and error paths ran (shared key, SAS, wrong key, 401, 403, 400, invalid_client)"

# `state` and `check` print nothing secret either.
for s in key i400; do
  "$BIN" state -c "$WORK/$s.yaml" >"$WORK/d-$s.state.out" 2>&1 ||
    fail "state $s: $(cat "$WORK/d-$s.state.out")"
done
"$BIN" check -c "$WORK/sas.yaml" >"$WORK/d-sas.check.out" 2>&1 ||
  fail "check: $(cat "$WORK/d-sas.check.out")"
"$BIN" check -c "$WORK/tok400.yaml" >"$WORK/d-tok400.check.out" 2>&1 ||
  fail "check: $(cat "$WORK/d-tok400.check.out")"

# Secrets in the wrong places: the daemon refuses to start (exit 3), and
# says why without repeating them.
n=0
for line in "  account: $ACCOUNT_KEY" \
            "  container: \"$CLIENT_SECRET\"" \
            "  poll_interval: \"$WRONG_KEY\"" \
            "  endpoint: \"$ENDPOINT/?$SAS\"" \
            "  prefix: [\"$SAS_SIG\"]" \
            "  \"$CLIENT_SECRET\": 1"; do
  n=$((n + 1))
  printf 'source:\n%s\n  container: reports\ndestination:\n  type: file\n  path: %s\n' \
    "$line" "$WORK/out.ndjson" >"$WORK/badcfg$n.yaml"
  chmod 600 "$WORK/badcfg$n.yaml"
  rc=0
  "$BIN" run -c "$WORK/badcfg$n.yaml" >"$WORK/d-badcfg$n.err" 2>&1 || rc=$?
  [ $rc -eq 3 ] || fail "badcfg$n: exit $rc, not 3: $(cat "$WORK/d-badcfg$n.err")"
  grep -q "badcfg$n.yaml:2:" "$WORK/d-badcfg$n.err" ||
    fail "badcfg$n: the error does not say where"
done
ok "bad configurations refused without repeating the secret"

# ---- the search -----------------------------------------------------------

# scan LIST: searches the files named in LIST for every secret in its raw,
# URL-encoded and base64 forms (and an account key's decoded bytes).
scan() {
  "$PY" - "$1" "$ACCOUNT_KEY" "$WRONG_KEY" "$CLIENT_SECRET" "$WRONG_SECRET" \
    "$SAS" "$SAS_SIG" "$TOKEN_PREFIX" <<'PYEOF'
import base64, sys, urllib.parse
files = [l.strip() for l in open(sys.argv[1]) if l.strip()]
names = ["account key", "wrong account key", "client secret",
         "wrong client secret", "SAS", "SAS signature", "access token"]
forms = {}
for name, s in zip(names, sys.argv[2:]):
    raw = s.encode()
    cand = {raw, urllib.parse.quote(s, safe="").encode(),
            urllib.parse.quote_plus(s).encode(),
            urllib.parse.quote(s, safe="").lower().encode()}
    # base64 of the secret (as in a Basic header), standard and URL-safe;
    # for the tokens, of the prefix they start with.
    cut = raw if name != "access token" else raw[:len(raw) - len(raw) % 3]
    for enc in (base64.b64encode(cut), base64.urlsafe_b64encode(cut)):
        cand.add(enc.rstrip(b"="))
    if "key" in name:
        cand.add(base64.b64decode(s))  # an account key's decoded bytes
    forms[name] = [c for c in cand if len(c) >= 8]
bad = 0
for f in files:
    data = open(f, "rb").read()
    for name, cands in forms.items():
        for c in cands:
            i = data.find(c)
            if i >= 0:
                ctx = data[max(0, i - 60):i + len(c) + 20]
                print("LEAK: %s (%r) in %s: ...%r..." % (name, c[:24], f, ctx))
                bad += 1
print("scanned %d files for %d forms of %d secrets: %d leaks" %
      (len(files), sum(len(v) for v in forms.values()), len(forms), bad))
sys.exit(1 if bad else 0)
PYEOF
}

# The scanner finds each kind of form (so that a clean scan means
# something): a URL-encoded client secret, a base64 token start, a SAS
# signature, an account key's decoded bytes.
"$PY" -c 'import sys,urllib.parse as u; print("x=" + u.quote(sys.argv[1], safe=""))' \
  "$CLIENT_SECRET" >"$WORK/canary1"
"$PY" -c 'import sys,base64; print(base64.b64encode((sys.argv[1] + "abcdefgh").encode()).decode())' \
  "$TOKEN_PREFIX" >"$WORK/canary2"
printf 'sig %s\n' "$SAS_SIG" >"$WORK/canary3"
"$PY" -c 'import sys,base64; sys.stdout.buffer.write(base64.b64decode(sys.argv[1]))' \
  "$ACCOUNT_KEY" >"$WORK/canary4"
for i in 1 2 3 4; do
  echo "$WORK/canary$i" >"$WORK/canary.list"
  scan "$WORK/canary.list" >/dev/null && fail "the scanner misses canary $i"
done
rm -f "$WORK"/canary*

# Everything the daemons wrote or showed: logs, dead-letter and state files
# (checkpoint, spool), /metrics, `state`, `check`, and the records the fake
# Sentinel received.
find "$WORK" -maxdepth 1 \( -name 'd-*' -o -name '*.records' \) -type f \
  >"$WORK/scan.list"
find "$WORK"/state-* -type f >>"$WORK/scan.list"
[ "$(grep -c dead-letter "$WORK/scan.list")" -ge 2 ] || fail "no dead-letter files to scan"
grep -q 'checkpoint.journal' "$WORK/scan.list" || fail "no checkpoint to scan"
scan "$WORK/scan.list" || fail "a secret leaked (above)"
ok "no secret in any log, dead-letter or state file, /metrics, state or check output"

# The echoed secrets did reach the daemons, and were scrubbed.
grep -q '\*\*\*' "$WORK/state-i400"/dead-letter/*.ndjson ||
  fail "i400: the dead-lettered error messages were not scrubbed (no ***)"

# ---- permissions -----------------------------------------------------------

mode() { stat -c %a "$1"; }
for s in key i400; do
  st=$WORK/state-$s
  [ "$(mode "$st")" = 700 ] || fail "$s: state directory mode $(mode "$st")"
  for f in "$st/checkpoint.snap" "$st/checkpoint.journal"; do
    [ -f "$f" ] || fail "$s: no $f"
    [ "$(mode "$f")" = 600 ] || fail "$s: $f mode $(mode "$f")"
  done
  [ "$(mode "$st/dead-letter")" = 700 ] ||
    fail "$s: dead-letter directory mode $(mode "$st/dead-letter")"
  for f in "$st"/dead-letter/*; do
    [ "$(mode "$f")" = 600 ] || fail "$s: $f mode $(mode "$f")"
  done
  # Nothing else in the state directory may be readable by others.
  others=$(find "$st" -perm /077 | head -3)
  [ -z "$others" ] || fail "$s: readable by others: $others"
done
ok "state directory 0700, checkpoint and dead-letter files 0600"

grep -q 'sas.yaml holds a secret (source.connection_string) and is readable by group or others (mode 0644)' \
  "$WORK/d-sas.err" || fail "no warning for a secret in a world-readable config"
grep -q 'readable by group or others' "$WORK/d-key.err" &&
  fail "a warning for a config that is 0600"
ok "a secret in a configuration readable by others is warned about"
