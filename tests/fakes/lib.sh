# tests/fakes/lib.sh: shared helpers of the integration tests that run the
# credential and ingestion drivers against tests/fakes/fake_azure.py.
# Source it after setting TOP and BUILD (tests/run-integration.sh sets
# both). It makes a work directory, compiles drivers against
# $BUILD/libspectra.a with the compiler and sanitizers the library was built
# with, starts fakes on 127.0.0.1 port 0, and kills them by PID on exit.

set -u
: "${TOP:?}" "${BUILD:?}"
PY=/usr/bin/python3
WORK=$(mktemp -d /tmp/ss-fake-test.XXXXXX)
# The credential chain reads these; a test sets what it needs per command.
unset AZURE_TENANT_ID AZURE_CLIENT_ID AZURE_CLIENT_SECRET \
  AZURE_CLIENT_CERTIFICATE_PATH AZURE_CLIENT_CERTIFICATE_PASSWORD \
  AZURE_FEDERATED_TOKEN_FILE AZURE_AUTHORITY_HOST IDENTITY_ENDPOINT \
  IDENTITY_HEADER IMDS_ENDPOINT
FAKE_PIDS=()

cleanup_fakes() {
  for p in "${FAKE_PIDS[@]}"; do
    kill "$p" 2>/dev/null
    wait "$p" 2>/dev/null
  done
  rm -rf "$WORK"
}
trap cleanup_fakes EXIT

fail() {
  echo "FAIL: $*" | cut -c1-3000 >&2
  for f in "$WORK"/*.err "$WORK"/*.out; do
    [ -s "$f" ] && { echo "--- $f" >&2; tail -20 "$f" | cut -c1-600 >&2; }
  done
  exit 1
}

ok() {
  echo "ok: $*"
}

# compile_tool NAME: builds tests/tools/NAME.c into $WORK/NAME.
compile_tool() {
  local name=$1 cc=cc san=() obj
  obj=$(ls "$BUILD"/obj/*.o 2>/dev/null | head -1)
  if [ -n "$obj" ] && readelf -p .comment "$obj" 2>/dev/null | grep -q clang; then
    cc=clang
  fi
  if nm "$BUILD/libspectra.a" 2>/dev/null | grep -q '__asan_report'; then
    san=(-fsanitize=address,undefined -fno-omit-frame-pointer)
  fi
  local libs
  libs=$(pkg-config --libs libcurl jansson openssl libuv yaml-0.1 zlib expat \
         libdeflate 2>/dev/null) ||
    libs="-lcurl -ljansson -lssl -lcrypto -luv -lyaml -lz -lexpat -ldeflate"
  # shellcheck disable=SC2086
  "$cc" -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -g "${san[@]}" \
    -I"$TOP/include" -o "$WORK/$name" "$TOP/tests/tools/$name.c" \
    "$BUILD/libspectra.a" $libs -lpthread -lm ||
    fail "cannot compile tests/tools/$name.c"
}

# start_fake NAME ARGS...: starts fake_azure.py; sets PORT_<NAME>.
start_fake() {
  local name=$1; shift
  local pf="$WORK/$name.port"
  "$PY" "$TOP/tests/fakes/fake_azure.py" --port-file "$pf" "$@" \
    >"$WORK/$name.out" 2>"$WORK/$name.err" &
  FAKE_PIDS+=($!)
  for _ in $(seq 100); do
    [ -s "$pf" ] && break
    sleep 0.05
  done
  [ -s "$pf" ] || fail "fake $name did not start"
  printf -v "PORT_$name" '%s' "$(cat "$pf")"
}

# fake_post PORT PATH JSON [SCHEME]: a control request to a fake.
fake_post() {
  local scheme=${4:-http} extra=()
  [ "$scheme" = https ] && extra=(--cacert "$WORK/ca.pem")
  curl -sf "${extra[@]}" -X POST -H 'Content-Type: application/json' \
    --data "$3" "$scheme://127.0.0.1:$1$2" >/dev/null ||
    fail "control request $2 to the fake failed"
}

# fake_stat PORT KEY: a counter of the fake (0 when absent).
fake_stat() {
  curl -sf "http://127.0.0.1:$1/_fake/stats" |
    "$PY" -c "import json,sys; print(json.load(sys.stdin).get('$2', 0))"
}

# json_get FILE EXPR: evaluates a Python expression on the JSON in FILE
# (bound to d).
json_get() {
  "$PY" -c "import json,sys; d=json.load(open(sys.argv[1])); print($2)" "$1"
}

# drive NAME TOOL ARGS...: runs $WORK/TOOL with ARGS, output in
# $WORK/NAME.out and $WORK/NAME.err. A tool that crashes, or that a
# sanitizer stops (ASan, UBSan, LeakSanitizer), fails the test; exit 0 and
# 3 (a provider that cannot be created) are for the caller to judge.
drive() {
  local name=$1 tool=$2 rc=0; shift 2
  "$WORK/$tool" "$@" >"$WORK/$name.out" 2>"$WORK/$name.err" || rc=$?
  if grep -q 'Sanitizer\|runtime error:' "$WORK/$name.err"; then
    fail "$name: sanitizer report"
  fi
  [ $rc -eq 0 ] || [ $rc -eq 3 ] || fail "$name: $tool exited with $rc"
}
