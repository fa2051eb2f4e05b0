#!/usr/bin/env bash
# test_storage_azurite.sh: the storage client against Azurite, the official
# storage emulator. Blobs are uploaded with the official @azure/storage-blob
# SDK (tests/tools/upload.js): 5,000+ reports in nested folders with
# hdi_isfolder directory markers, names with XML specials and non-ASCII
# letters, a gzip blob, and one blob over the cap. The C driver
# (tests/tools/storage_probe.c, built here against $BUILD/libspectra.a)
# lists them with maxresults=1000 and downloads every one under each auth
# method; every byte is compared through SHA-256 with the SDK's manifest.
# Env: TOP, BUILD (from tests/run-integration.sh).
set -euo pipefail
TOP=${TOP:-$(cd "$(dirname "$0")/../.." && pwd)}
BUILD=${BUILD:-$TOP/build}
COUNT=${STORAGE_TEST_BLOBS:-5000}
CAP=1048576            # the test's max_blob_bytes
BIG=$((CAP + 4096))    # big/over-cap.bin

if [ ! -d "$TOP/tests/node_modules/azurite" ]; then
  echo "tests/node_modules missing: run make deps" >&2
  exit 1
fi
work=$(mktemp -d)
source "$TOP/tests/tools/azurite.sh"
cleanup() { azurite_stop; [ -n "${KEEP_WORK:-}" ] && echo "work dir kept: $work" >&2 || rm -rf "$work"; }
trap cleanup EXIT

fail() { echo "FAIL: $*" >&2; exit 1; }

# The driver, built the way the library was (sanitizers included).
cflags=(-std=c11 -D_GNU_SOURCE "-DSS_VERSION=\"test\"" -I"$TOP/include" -g -O1)
if nm "$BUILD/libspectra.a" 2>/dev/null | grep __asan_ >/dev/null; then
  cflags+=(-fsanitize=address,undefined -fno-omit-frame-pointer)
fi
# shellcheck disable=SC2046
${CC:-cc} "${cflags[@]}" -o "$work/probe" "$TOP/tests/tools/storage_probe.c" \
  "$BUILD/libspectra.a" $(pkg-config --libs libcurl openssl libuv expat) \
  -lpthread -lm
P=$work/probe

azurite_start "$work"
KEY='Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=='
CONN="DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=$KEY;BlobEndpoint=$AZURITE_URL"
node() { (cd "$TOP/tests" && command node tools/upload.js "$@"); }

start=$(date +%s)
node populate "$CONN" reports "$COUNT" "$BIG" "$work/manifest"
echo "uploaded in $(( $(date +%s) - start ))s"
nfiles=$(wc -l < "$work/manifest")
grep -v ' big/over-cap.bin$' "$work/manifest" > "$work/want"

# Lists and downloads everything with the given auth options; compares.
check_all() {
  local label=$1; shift
  local t0; t0=$(date +%s)
  "$P" "$@" --container reports getall --max 1000 --cap "$CAP" \
    > "$work/got.raw" 2> "$work/err" || { cat "$work/err" >&2; fail "$label: getall"; }
  grep -v '^TOOBIG ' "$work/got.raw" | sort -k3 > "$work/got"
  diff -q "$work/want" "$work/got" >/dev/null ||
    { diff "$work/want" "$work/got" | head >&2; fail "$label: content differs"; }
  grep -qx 'TOOBIG big/over-cap.bin' "$work/got.raw" || fail "$label: no TOOBIG"
  grep -q "is $BIG bytes, over max_blob_bytes ($CAP); refused without reading it" \
    "$work/err" || fail "$label: over-cap message"
  local pages; pages=$(sed -n 's/.*pages=\([0-9]*\).*/\1/p' "$work/err")
  # COUNT reports + markers in pages of 1000: at least ceil(COUNT/1000).
  [ "$pages" -ge $(( (COUNT + 999) / 1000 )) ] || fail "$label: only $pages pages"
  grep -q "listed=$nfiles " "$work/err" || { cat "$work/err" >&2; fail "$label: listed count"; }
  echo "$label: $nfiles blobs in $pages pages, every byte equal ($(( $(date +%s) - t0 ))s)"
}

check_all "shared key" --endpoint "$AZURITE_URL" --account devstoreaccount1 --key "$KEY"
SAS_C=$(node sas "$CONN" reports container rl)
check_all "container SAS" --endpoint "$AZURITE_URL" --sas "$SAS_C"
SAS_A=$(node sas "$CONN" reports account rl)
check_all "account SAS" --endpoint "$AZURITE_URL" --sas "$SAS_A"
check_all "connection string" --conn "$CONN"
check_all "UseDevelopmentStorage" --conn "UseDevelopmentStorage=true;BlobEndpoint=$AZURITE_URL"
check_all "SAS connection string" --conn "BlobEndpoint=$AZURITE_URL;SharedAccessSignature=$SAS_C"

# Suffix filter and directory markers: only .json.gz under in/gz/.
"$P" --conn "$CONN" --container reports list --prefix in/ --suffix .json.gz \
  > "$work/gz" 2>/dev/null || fail "suffix list"
[ "$(cut -f1 "$work/gz")" = "in/gz/report.json.gz" ] || fail "suffix filter: $(cat "$work/gz")"
# The gzip blob arrives byte for byte (no transparent decoding).
"$P" --conn "$CONN" --container reports get in/gz/report.json.gz > "$work/gzsum" ||
  fail "get gzip blob"
[ "$(cut -d' ' -f1-2 "$work/gzsum")" = "$(grep ' in/gz/report.json.gz$' "$work/manifest" | cut -d' ' -f1-2)" ] ||
  fail "gzip blob differs"

# Wrong key and a SAS without list permission fail with clear messages.
if "$P" --endpoint "$AZURITE_URL" --account devstoreaccount1 --key Zm9vYmFyYmF6 \
     --container reports list > /dev/null 2> "$work/err"; then fail "wrong key listed"; fi
grep -q 'authentication failed (403' "$work/err" || fail "wrong key: $(cat "$work/err")"
grep -q "Shared Key authentication for account 'devstoreaccount1' was refused" "$work/err" ||
  fail "wrong key message: $(cat "$work/err")"
grep -q 'source.account_key' "$work/err" || fail "wrong key hint"
grep -q 'Zm9vYmFyYmF6' "$work/err" && fail "the key reached the message"
SAS_R=$(node sas "$CONN" reports container r)
if "$P" --endpoint "$AZURITE_URL" --sas "$SAS_R" --container reports list \
     > /dev/null 2> "$work/err"; then fail "SAS without l listed"; fi
grep -q 'the SAS token does not allow this (403 AuthorizationPermissionMismatch)' "$work/err" ||
  fail "SAS message: $(cat "$work/err")"
grep -q 'needs list (l) permission' "$work/err" || fail "SAS hint"
sig=$(printf '%s' "$SAS_R" | sed 's/.*sig=\([^&]*\).*/\1/')
grep -qF "$sig" "$work/err" && fail "the SAS signature reached the message"
# A missing container says so.
if "$P" --conn "$CONN" --container nosuch list > /dev/null 2> "$work/err"; then
  fail "missing container listed"; fi
grep -q "container 'nosuch' does not exist" "$work/err" || fail "missing container message"

# Get and delete with If-Match: a stale ETag is reported as a change (412),
# a deleted blob as gone (404), the current ETag deletes.
ETAG1=$(node put "$CONN" reports tmp/victim.json '{"v":1}')
ETAG2=$(node put "$CONN" reports tmp/victim.json '{"v":2}')
[ "$ETAG1" != "$ETAG2" ] || fail "ETag did not change"
if "$P" --conn "$CONN" --container reports get tmp/victim.json --etag "$ETAG1" \
     > /dev/null 2> "$work/err"; then fail "get with a stale ETag"; fi
grep -q 'changed (412' "$work/err" || grep -q 'blob changed since it was listed' "$work/err" ||
  fail "412 message: $(cat "$work/err")"
if "$P" --conn "$CONN" --container reports delete tmp/victim.json --etag "$ETAG1" \
     > /dev/null 2> "$work/err"; then fail "delete with a stale ETag"; fi
grep -q 'blob changed since it was listed' "$work/err" || fail "delete 412 message"
"$P" --conn "$CONN" --container reports get tmp/victim.json --etag "$ETAG2" > /dev/null ||
  fail "get with the current ETag"
"$P" --conn "$CONN" --container reports delete tmp/victim.json --etag "$ETAG2" > /dev/null ||
  fail "delete with the current ETag"
if "$P" --conn "$CONN" --container reports get tmp/victim.json > /dev/null 2> "$work/err"; then
  fail "get after delete"; fi
grep -q 'no longer exists' "$work/err" || fail "404 message: $(cat "$work/err")"

# A dead endpoint: connection errors are retried, then reported.
port=$AZURITE_PORT
azurite_stop
if "$P" --endpoint "http://127.0.0.1:$port/devstoreaccount1" --account devstoreaccount1 \
     --key "$KEY" --container reports list > /dev/null 2> "$work/err"; then
  fail "listed from a stopped emulator"; fi
grep -q 'cannot reach http://127.0.0.1:[0-9]*/devstoreaccount1 after 3 attempts' "$work/err" ||
  fail "network message: $(cat "$work/err")"

echo "storage against Azurite: all checks passed in $(( $(date +%s) - start ))s"
