#!/usr/bin/env bash
# HTTPS with a private CA: the fake serves TLS with a certificate signed by a
# CA made here; the token request and the ingestion work when tls.ca_file
# names that CA, and fail with a clear message (and keep the data) without.
. "$TOP/tests/fakes/lib.sh"

compile_tool ingest_driver
compile_tool cred_driver

# A CA and a server certificate for 127.0.0.1.
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$WORK/ca.key" \
  -out "$WORK/ca.pem" -days 1 -subj "/CN=spectra-sentinel test CA" \
  -addext basicConstraints=critical,CA:TRUE \
  -addext keyUsage=critical,keyCertSign,cRLSign 2>/dev/null || fail "CA"
openssl req -newkey rsa:2048 -nodes -keyout "$WORK/srv.key" \
  -out "$WORK/srv.csr" -subj /CN=127.0.0.1 2>/dev/null || fail "CSR"
printf '%s\n' "subjectAltName=IP:127.0.0.1" "basicConstraints=CA:FALSE" \
  "keyUsage=digitalSignature,keyEncipherment" "extendedKeyUsage=serverAuth" \
  >"$WORK/srv.ext"
openssl x509 -req -in "$WORK/srv.csr" -CA "$WORK/ca.pem" -CAkey "$WORK/ca.key" \
  -CAcreateserial -out "$WORK/srv.pem" -days 1 -extfile "$WORK/srv.ext" \
  2>/dev/null || fail "server certificate"

: >"$WORK/T.records"
start_fake T --tls "$WORK/srv.pem" "$WORK/srv.key" --require-gzip \
  --client "app1:secret:s3cr3t-value-1" --records "$WORK/T.records"
U=https://127.0.0.1:$PORT_T
ARGS=(--authority "$U" --tenant tenant-1 --client-id app1
      --secret s3cr3t-value-1 --endpoint "$U")

drive ok ingest_driver "${ARGS[@]}" --count 100 --ca-file "$WORK/ca.pem"
[ "$(json_get "$WORK/ok.out" 'd["acked"]')" = 100 ] ||
  fail "with tls.ca_file: $(cat "$WORK/ok.out")"
[ "$(wc -l <"$WORK/T.records")" = 100 ] || fail "records over TLS"
ok "token and ingestion over HTTPS with tls.ca_file"

# Without the CA: nothing is delivered or lost, and the log says why and
# what to set.
drive no ingest_driver "${ARGS[@]}" --count 100 --close-after-ms 1500 \
  --backoff-base-ms 100
[ "$(json_get "$WORK/no.out" '(d["acked"], d["rejected"], d["pending"])')" = \
  "(0, 0, 100)" ] || fail "without tls.ca_file: $(cat "$WORK/no.out")"
grep -q 'SSL certificate problem' "$WORK/no.err" ||
  fail "no certificate error in the log"
grep -q 'TLS verification failed: if the server uses a private CA, set tls.ca_file' \
  "$WORK/no.err" || fail "the log does not point at tls.ca_file"
ok "without tls.ca_file: a clear TLS message, data kept"

# The credential alone, both ways.
drive c1 cred_driver --method client_secret --authority "$U" --tenant tenant-1 \
  --client-id app1 --secret s3cr3t-value-1 --ca-file "$WORK/ca.pem" get
grep -q '^ok fake\.' "$WORK/c1.out" || fail "cred with CA: $(cat "$WORK/c1.out")"
drive c2 cred_driver --method client_secret --authority "$U" --tenant tenant-1 \
  --client-id app1 --secret s3cr3t-value-1 get
grep -q '^err NET .*SSL certificate problem.*set tls.ca_file' "$WORK/c2.out" ||
  fail "cred without CA: $(cat "$WORK/c2.out")"
ok "credential over HTTPS with and without tls.ca_file"
