#!/usr/bin/env bash
# Every credential method against the strict fakes of tests/fakes/
# fake_azure.py: client_secret, client_certificate (PS256 and RS256, checked
# by the fake with `openssl dgst -verify` against the test certificate),
# workload_identity (the token file rotates), managed identity through IMDS
# (system- and user-assigned), App Service and Azure Arc (the 401 challenge
# and the .key path rule), the default chain, and the storage scope.
. "$TOP/tests/fakes/lib.sh"

compile_tool cred_driver

# A test certificate with its key, and an unregistered one.
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$WORK/k.pem" \
  -out "$WORK/c.pem" -days 1 -subj /CN=spectra-sentinel-test 2>/dev/null ||
  fail "openssl req"
cat "$WORK/c.pem" "$WORK/k.pem" >"$WORK/client.pem"
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$WORK/k2.pem" \
  -out "$WORK/c2.pem" -days 1 -subj /CN=other 2>/dev/null || fail "openssl req"
cat "$WORK/c2.pem" "$WORK/k2.pem" >"$WORK/other.pem"
echo "federated-token-v1.$RANDOM$RANDOM" >"$WORK/fed.jwt"
mkdir -p "$WORK/arc-tokens" "$WORK/elsewhere"
chmod 0700 "$WORK/arc-tokens"

SECRET='s3cr3t~value/with+chars='
start_fake A --client "app-secret:secret:$SECRET" \
  --client "app-cert:cert:$WORK/c.pem" \
  --client "app-fed:federated:$WORK/fed.jwt" \
  --scope "https://monitor.azure.com//.default" \
  --scope "https://storage.azure.com/.default" \
  --resource "https://monitor.azure.com/" \
  --resource "https://storage.azure.com" \
  --arc-key-dir "$WORK/arc-tokens" --identity-header app-svc-header-1234
P=$PORT_A
AUTH=(--authority "http://127.0.0.1:$P" --tenant tenant-1)
U=http://127.0.0.1:$P

# expect_token OUTFILE: the driver got exactly the tokens it asked for.
expect_ok() {
  grep -q '^ok fake\.' "$1" || fail "no token in $1: $(cat "$1")"
  ! grep -q '^err' "$1" || fail "unexpected error in $1: $(cat "$1")"
}

# client_secret, with a secret that needs form encoding.
drive s cred_driver --method client_secret "${AUTH[@]}" --client-id app-secret \
  --secret "$SECRET" get
expect_ok "$WORK/s.out"
ok "client_secret"

# A wrong secret: Entra's error code and description, never the secret.
drive s2 cred_driver --method client_secret "${AUTH[@]}" --client-id app-secret \
  --secret "wrong-$SECRET" get
grep -q '^err AUTH .*401 invalid_client: AADSTS7000215: Invalid client secret' \
  "$WORK/s2.out" || fail "wrong secret: $(cat "$WORK/s2.out")"
! grep -q "wrong-" "$WORK/s2.out" "$WORK/s2.err" || fail "the secret leaked"
ok "client_secret refused with Entra's error, secret not shown"

# client_certificate, PS256 (x5t#S256) and RS256 (x5t); two tokens each, so
# the fake's jti replay check sees two assertions.
for alg in ps256 rs256; do
  drive c-$alg cred_driver --method client_certificate "${AUTH[@]}" --client-id app-cert \
    --cert "$WORK/client.pem" --alg $alg get invalidate get
  expect_ok "$WORK/c-$alg.out"
  [ "$(grep -c '^ok' "$WORK/c-$alg.out")" = 2 ] || fail "$alg: two tokens"
  grep -q "describe client_certificate (${alg^^})" "$WORK/c-$alg.out" ||
    fail "$alg describe"
done
ok "client_certificate PS256 and RS256 verified by the fake"

# A certificate the application does not have: the thumbprint is refused.
drive c3 cred_driver --method client_certificate "${AUTH[@]}" --client-id app-cert \
  --cert "$WORK/other.pem" get
grep -q '^err AUTH .*invalid_client: AADSTS700027' "$WORK/c3.out" ||
  fail "unregistered certificate: $(cat "$WORK/c3.out")"
ok "an unregistered certificate is refused"

# A PEM without a key fails at creation with a clear reason.
drive c4 cred_driver --method client_certificate "${AUTH[@]}" --client-id app-cert \
  --cert "$WORK/c.pem" get
grep -q '^create err CONFIG' "$WORK/c4.out" || fail "key-less PEM accepted"
grep -q 'no usable private key' "$WORK/c4.err" || fail "key-less PEM message"
ok "a PEM without its key is a configuration error"

# workload_identity: the file is read for every token request, so a
# rotation is picked up (the fake accepts only the current contents).
drive w cred_driver --method workload_identity "${AUTH[@]}" --client-id app-fed \
  --fed-file "$WORK/fed.jwt" get sleep=2000 invalidate get &
wpid=$!
# Rotate only after the first token was issued with the first contents.
for _ in $(seq 100); do
  grep -q '^ok' "$WORK/w.out" 2>/dev/null && break
  sleep 0.05
done
grep -q '^ok' "$WORK/w.out" || fail "workload: no first token"
echo "federated-token-v2.$RANDOM$RANDOM" >"$WORK/fed.jwt.new"
mv "$WORK/fed.jwt.new" "$WORK/fed.jwt"
wait $wpid || fail "workload: the driver failed"
expect_ok "$WORK/w.out"
[ "$(grep -c '^ok' "$WORK/w.out")" = 2 ] || fail "workload: $(cat "$WORK/w.out")"
ok "workload_identity follows a rotated token file"

# IMDS, system-assigned, through the configurable IMDS address.
drive i cred_driver --method managed_identity --imds "$U" get
expect_ok "$WORK/i.out"
grep -q 'describe managed_identity (IMDS)' "$WORK/i.out" || fail "imds describe"
ok "managed identity: IMDS system-assigned (numbers as strings)"

# IMDS, user-assigned: the fake requires the identity.
fake_post "$P" /_fake/config '{"imds_user":"uami-42"}'
for sel in --mi-client-id --mi-object-id --mi-res-id; do
  drive iu cred_driver --method managed_identity --imds "$U" $sel uami-42 get
  expect_ok "$WORK/iu.out"
done
drive iu2 cred_driver --method managed_identity --imds "$U" get
grep -q '^err AUTH .*Identity not found' "$WORK/iu2.out" ||
  fail "imds without the user-assigned id: $(cat "$WORK/iu2.out")"
fake_post "$P" /_fake/config '{"imds_user":null}'
ok "managed identity: IMDS user-assigned by client_id, object_id, msi_res_id"

# App Service: IDENTITY_ENDPOINT + IDENTITY_HEADER.
IDENTITY_ENDPOINT=$U/appservice/token IDENTITY_HEADER=app-svc-header-1234 \
  drive a cred_driver --method managed_identity get
expect_ok "$WORK/a.out"
grep -q 'describe managed_identity (App Service)' "$WORK/a.out" ||
  fail "app service describe"
IDENTITY_ENDPOINT=$U/appservice/token IDENTITY_HEADER=wrong-header-5678 \
  drive a2 cred_driver --method managed_identity get
grep -q '^err AUTH .*X-IDENTITY-HEADER' "$WORK/a2.out" ||
  fail "app service wrong header: $(cat "$WORK/a2.out")"
ok "managed identity: App Service"

# Azure Arc: IDENTITY_ENDPOINT + IMDS_ENDPOINT, the 401 challenge and the key
# file in the (test) token directory.
IDENTITY_ENDPOINT=$U/arc/token IMDS_ENDPOINT=$U \
  drive r cred_driver --method managed_identity --arc-key-dir "$WORK/arc-tokens" get
expect_ok "$WORK/r.out"
grep -q 'describe managed_identity (Azure Arc)' "$WORK/r.out" || fail "arc"
[ "$(fake_stat "$P" arc_challenges)" = 1 ] || fail "arc challenge count"
# A realm outside the directory, and one that is not a .key file, are
# refused without reading them.
echo "not-a-key" >"$WORK/elsewhere/x.key"
for realm in "$WORK/elsewhere/x.key" /etc/passwd \
             "$WORK/arc-tokens/../elsewhere/x.key"; do
  fake_post "$P" /_fake/config "{\"arc_realm\":\"$realm\"}"
  IDENTITY_ENDPOINT=$U/arc/token IMDS_ENDPOINT=$U \
    drive r2 cred_driver --method managed_identity --arc-key-dir "$WORK/arc-tokens" get
  grep -q "^err AUTH .*which is not a .key file in" "$WORK/r2.out" ||
    fail "arc realm $realm: $(cat "$WORK/r2.out")"
done
fake_post "$P" /_fake/config '{"arc_realm":null}'
ok "managed identity: Azure Arc challenge, .key path rule enforced"

# The default chain: environment first...
AZURE_TENANT_ID=tenant-1 AZURE_CLIENT_ID=app-secret \
  AZURE_CLIENT_SECRET=$SECRET AZURE_AUTHORITY_HOST=$U \
  drive d1 cred_driver get
expect_ok "$WORK/d1.out"
grep -q 'describe default: client_secret' "$WORK/d1.out" || fail "default 1"
AZURE_TENANT_ID=tenant-1 AZURE_CLIENT_ID=app-cert \
  AZURE_CLIENT_CERTIFICATE_PATH=$WORK/client.pem AZURE_AUTHORITY_HOST=$U \
  drive d2 cred_driver get
expect_ok "$WORK/d2.out"
grep -q 'describe default: client_certificate' "$WORK/d2.out" ||
  fail "default 2"
AZURE_TENANT_ID=tenant-1 AZURE_CLIENT_ID=app-fed \
  AZURE_FEDERATED_TOKEN_FILE=$WORK/fed.jwt AZURE_AUTHORITY_HOST=$U \
  drive d3 cred_driver get
expect_ok "$WORK/d3.out"
grep -q 'describe default: workload_identity' "$WORK/d3.out" || fail "default 3"
# ...then managed identity.
drive d4 cred_driver --imds "$U" get
expect_ok "$WORK/d4.out"
grep -q 'describe default: managed_identity (IMDS)' "$WORK/d4.out" ||
  fail "default 4"
ok "default chain: secret, certificate, workload identity, managed identity"

# The storage scope: the same methods, another audience.
drive st cred_driver --method client_secret "${AUTH[@]}" --client-id app-secret \
  --secret "$SECRET" --scope https://storage.azure.com/.default get
expect_ok "$WORK/st.out"
drive st2 cred_driver --method managed_identity --imds "$U" \
  --scope https://storage.azure.com/.default get
expect_ok "$WORK/st2.out"
ok "storage scope (source.auth: entra)"

# No token ever reaches a log line.
for f in "$WORK"/*.err; do
  ! grep -q 'fake\.' "$f" || fail "a token reached the log in $f"
done
ok "no token in any log"
