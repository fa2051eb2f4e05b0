#!/usr/bin/env bash
# The token cache of cred.c against the fake Entra endpoint: refresh ahead
# of a short expiry (half the lifetime of a 4 s token), one request for many
# concurrent callers, a failed refresh that keeps the old token until it
# expires while backing off, and the last error once it has expired.
. "$TOP/tests/fakes/lib.sh"

compile_tool cred_driver
start_fake A --client "app1:secret:s3cr3t-value-1" --expires-in 4
P=$PORT_A
ARGS=(--method client_secret --authority "http://127.0.0.1:$P"
      --tenant tenant-1 --client-id app1 --secret s3cr3t-value-1)

# tokens FILE: the tokens printed, one per line, as short names A, B, C...
tokens() {
  awk '/^ok /{ if(!($2 in n)) n[$2]=sprintf("%c", 65 + k++); printf "%s", n[$2] }
       /^err /{ printf "E" } END { print "" }' "$1"
}

# Refresh ahead: the token lives 4 s and is refreshed after 2 s; until then
# the cache answers; the refresh itself still answers with the old token.
drive r cred_driver "${ARGS[@]}" get sleep=500 get sleep=1700 get sleep=400 get stats
[ "$(tokens "$WORK/r.out")" = AAAB ] || fail "refresh: $(cat "$WORK/r.out")"
grep -q 'stats requests=2 failures=0' "$WORK/r.out" || fail "refresh stats"
ok "refreshed ahead of a short expiry, cached until then"

# Coalescing: five callers, one request.
before=$(fake_stat "$P" token_requests)
drive b cred_driver "${ARGS[@]}" burst=5 stats
[ "$(tokens "$WORK/b.out")" = AAAAA ] || fail "burst: $(cat "$WORK/b.out")"
[ $(( $(fake_stat "$P" token_requests) - before )) = 1 ] ||
  fail "five concurrent callers made more than one token request"
ok "concurrent callers share one token request"

# A failed refresh: the old token stays in use while the provider backs off
# (full jitter up to 600 ms), then the next attempt succeeds. Token A is
# valid until about 3.6 s: the fourth answer (3.2 s) is A or B depending on
# the jitter, the fifth (3.5 s) must be B, and no answer is an error.
fake_post "$P" /_fake/faults \
  '[{"role":"token","skip":1,"status":500,"body":{"error":"temporarily_unavailable","error_description":"AADSTS50196: try later"}}]'
drive f cred_driver "${ARGS[@]}" --backoff-base-ms 600 --backoff-cap-ms 600 \
  get sleep=2200 get sleep=100 get sleep=900 get sleep=300 get stats
[[ "$(tokens "$WORK/f.out")" =~ ^AAA[AB]B$ ]] ||
  fail "failed refresh: $(cat "$WORK/f.out")"
grep -q 'stats requests=3 failures=1' "$WORK/f.out" ||
  fail "failed refresh stats: $(cat "$WORK/f.out")"
grep -q 'token refresh failed: .*500 temporarily_unavailable: AADSTS50196.*current token stays in use' \
  "$WORK/f.err" || fail "failed refresh log: $(cat "$WORK/f.err")"
ok "a failed refresh backs off and keeps the old token"

# Rotation: five tokens in a row (each refused, as after a 401). cred.c
# unregisters the tokens it retires, so the logger scrubs the client secret
# and at most the current and the previous token, not all five.
drive s cred_driver "${ARGS[@]}" get invalidate get invalidate get invalidate \
  get invalidate get stats
[ "$(tokens "$WORK/s.out")" = ABCDE ] || fail "rotation: $(cat "$WORK/s.out")"
grep -q 'stats requests=5 failures=0 secrets=3$' "$WORK/s.out" ||
  fail "rotation: retired tokens stay registered: $(cat "$WORK/s.out")"
ok "retired tokens are unregistered from the log scrubber"

# When every refresh fails, the token expires and callers get the error.
fake_post "$P" /_fake/faults \
  '[{"role":"token","skip":1,"status":503},{"role":"token","status":503},{"role":"token","status":503},{"role":"token","status":503},{"role":"token","status":503},{"role":"token","status":503}]'
drive e cred_driver "${ARGS[@]}" --backoff-base-ms 700 --backoff-cap-ms 700 \
  get sleep=4300 get
[ "$(tokens "$WORK/e.out")" = AE ] || fail "expiry: $(cat "$WORK/e.out")"
grep -q '^err NET .*answered HTTP 503' "$WORK/e.out" ||
  fail "expiry error: $(cat "$WORK/e.out")"
ok "after expiry without a refresh, callers get the last error"
