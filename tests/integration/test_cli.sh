#!/usr/bin/env bash
# The command line (SPEC section 8): exit statuses 0/1/2/3/4, `check` with a
# valid and an invalid file (file, line, column and key in the message, no
# secret echoed), `check --online` against Azurite and the Entra/Logs
# Ingestion fake (and with a wrong account key), `transform` on good and bad
# input, `state` before the first run.
set -u
source "$TOP/tests/integration/daemon_lib.sh"

expect_rc() {
  local want=$1; shift
  local rc=0
  "$@" > "$WORK/out.txt" 2> "$WORK/err.txt" || rc=$?
  [ $rc -eq "$want" ] || fail "$* exited $rc, want $want: $(head -5 "$WORK/err.txt")"
}

expect_rc 0 "$BIN" --version
grep -q '^spectra-sentinel [0-9]' "$WORK/out.txt" || fail "--version output"
expect_rc 0 "$BIN" --help
grep -q 'transform' "$WORK/out.txt" || fail "--help output"
expect_rc 2 "$BIN"
expect_rc 2 "$BIN" frobnicate
expect_rc 2 "$BIN" check --bogus
expect_rc 2 "$BIN" transform
ok "usage errors exit 2"

expect_rc 0 "$BIN" transform "$TOP/tests/data/samples/malicious-pe.json"
grep -q '"TimeGenerated"' "$WORK/out.txt" || fail "transform printed no record"
printf '{"tc_report":[{"info":1}],"task_id":"x"' > "$WORK/bad.json"
expect_rc 4 "$BIN" transform --blob-name in/bad.json "$WORK/bad.json"
grep -q 'in/bad.json' "$WORK/err.txt" || fail "bad input message lacks the blob name"
[ "$(wc -l < "$WORK/err.txt")" -eq 1 ] || fail "bad input message is not one line"
expect_rc 4 "$BIN" transform - < "$WORK/bad.json"
ok "transform: 0 on a report, 4 on bad input with a one-line message"

e2e_start_peers
node "$TOP/tests/tools/upload_reports.js" "$CONN" reports "$TOP/tests/data/samples" \
  > /dev/null || fail "upload"
e2e_config
expect_rc 0 "$BIN" check -c "$CFG"
grep -q "$SECRET" "$WORK/out.txt" && fail "check printed the client secret"
grep -q 'AccountKey=Eby8' "$WORK/out.txt" && fail "check printed the account key"
expect_rc 0 "$BIN" state -c "$CFG"
grep -q 'none yet' "$WORK/out.txt" || fail "state before the first run: $(cat "$WORK/out.txt")"

expect_rc 0 "$BIN" check -c "$CFG" --online
grep -q '^ok    Entra ID token' "$WORK/out.txt" || fail "--online token: $(cat "$WORK/out.txt")"
grep -q '^ok    list .*8 blobs on the first page\|^ok    list .*5 blobs on the first page, more follow' "$WORK/out.txt" ||
  fail "--online listing: $(cat "$WORK/out.txt")"
ok "check --online: token and listing work"

sed "s|AccountKey=$KEY|AccountKey=V3JvbmdLZXlXcm9uZ0tleVdyb25nS2V5V3JvbmdLZXk=|" "$CFG" > "$WORK/wrong.yaml"
chmod 600 "$WORK/wrong.yaml"
expect_rc 1 "$BIN" check -c "$WORK/wrong.yaml" --online
grep -q '^FAIL  list' "$WORK/out.txt" || fail "--online with a wrong key: $(cat "$WORK/out.txt")"
grep -qi 'shared key' "$WORK/out.txt" || fail "the failure does not name the auth method"
ok "check --online with a wrong key: exit 1, $(grep -o 'FAIL  list[^:]*' "$WORK/out.txt")"

printf 'source:\n  container: reports\n  poll_interval: 5 parsecs\n  account_key: SuperSecretKeyValue123==\n' > "$WORK/invalid.yaml"
expect_rc 3 "$BIN" check -c "$WORK/invalid.yaml"
grep -q 'invalid.yaml:3:18: source.poll_interval' "$WORK/err.txt" ||
  fail "no file:line:column:key in: $(cat "$WORK/err.txt")"
grep -q 'SuperSecretKeyValue' "$WORK/err.txt" && fail "an error echoed the account key"
expect_rc 3 "$BIN" run -c "$WORK/invalid.yaml"
expect_rc 3 "$BIN" check -c "$WORK/does-not-exist.yaml"
ok "invalid configuration: exit 3 with file, line, column and key"
