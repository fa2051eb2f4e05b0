#!/usr/bin/env bash
# `make install PREFIX=/usr DESTDIR=tmp` with the binary already built in
# $BUILD, then checks the tree: exactly the expected files, their modes, the
# unit with @BINDIR@ substituted, an example configuration that names every
# key of SPEC section 7, and a man page that renders without warnings.
set -euo pipefail
: "${TOP:?}" "${BUILD:?}" "${BIN:?}"
[ -x "$BIN" ] || { echo "FAIL: $BIN is not built"; exit 1; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
dest=$tmp/root

# -o "$BIN": install what is built; never rebuild here (the test is about
# the install rule, and the build belongs to `make all`).
if ! make -s --no-print-directory -C "$TOP" -o "$BIN" install \
     BUILD="$BUILD" PREFIX=/usr DESTDIR="$dest" > "$tmp/make.log" 2>&1; then
  echo "FAIL: make install"; cat "$tmp/make.log"; exit 1
fi

fail=0
bad() { echo "FAIL: $*"; fail=1; }

# The whole tree, files only: nothing missing, nothing unexpected.
expected=$(printf '%s\n' \
  /etc/spectra-sentinel/spectra-sentinel.yaml.example \
  /usr/bin/spectra-sentinel \
  /usr/lib/systemd/system/spectra-sentinel.service \
  /usr/share/man/man8/spectra-sentinel.8 | sort)
actual=$(cd "$dest" && find . -type f -o -type l | sed 's|^\.||' | sort)
if [ "$expected" != "$actual" ]; then
  bad "installed tree differs from the expected one"
  diff <(printf '%s\n' "$expected") <(printf '%s\n' "$actual") || true
fi

mode() { stat -c %a "$dest$1" 2>/dev/null || echo missing; }
[ "$(mode /usr/bin/spectra-sentinel)" = 755 ] || bad "binary mode $(mode /usr/bin/spectra-sentinel), want 755"
[ "$(mode /etc/spectra-sentinel/spectra-sentinel.yaml.example)" = 640 ] ||
  bad "example config mode $(mode /etc/spectra-sentinel/spectra-sentinel.yaml.example), want 640"
[ "$(mode /usr/share/man/man8/spectra-sentinel.8)" = 644 ] || bad "man page mode, want 644"

# The installed binary is the built one and runs.
cmp -s "$BIN" "$dest/usr/bin/spectra-sentinel" || bad "installed binary differs from $BIN"
v=$("$dest/usr/bin/spectra-sentinel" --version 2>&1) || bad "--version failed: $v"
case $v in "spectra-sentinel "[0-9]*) ;; *) bad "unexpected --version output: $v" ;; esac

# The unit: BINDIR substituted, nothing else left to substitute.
unit=$dest/usr/lib/systemd/system/spectra-sentinel.service
if [ -f "$unit" ]; then
  grep -qxF 'ExecStart=/usr/bin/spectra-sentinel run -c /etc/spectra-sentinel/spectra-sentinel.yaml' "$unit" ||
    bad "unit ExecStart does not run /usr/bin/spectra-sentinel"
  ! grep -n '@[A-Z_]*@' "$unit" || bad "placeholder left in the unit"
  cmp -s <(sed 's|@BINDIR@|/usr/bin|g' "$TOP/systemd/spectra-sentinel.service") "$unit" ||
    bad "installed unit is not the source unit with @BINDIR@=/usr/bin"
fi

# The example configuration names every key of SPEC section 7, each as
# "key:" at the start of a line, commented out or not.
ex=$dest/etc/spectra-sentinel/spectra-sentinel.yaml.example
if [ -f "$ex" ]; then
  for k in source connection_string account endpoint auth account_key_file \
           sas_token container prefix suffixes poll_interval \
           download_concurrency max_blob_bytes after_ingest start_from \
           destination type dcr_immutable_id stream path compression \
           max_request_bytes max_field_bytes concurrency timeout \
           credential method tenant_id client_id client_secret_file \
           certificate_file authority_host scope imds_endpoint \
           state directory grace tls ca_file metrics listen log level format \
           shutdown_timeout; do
    grep -qE "^[#[:space:]]*$k:" "$ex" || bad "example config lacks the key $k"
  done
  grep -q '^ *#' "$ex" || bad "example config has no comments"
fi

# The man page renders cleanly and documents what the issue asks for.
man8=$dest/usr/share/man/man8/spectra-sentinel.8
if [ -f "$man8" ]; then
  if command -v man >/dev/null 2>&1; then
    out=$(LC_ALL=C.UTF-8 MANWIDTH=80 man --warnings -l "$man8" 2>&1 >/dev/null) || bad "man failed"
    [ -z "$out" ] || bad "man page warnings: $out"
  fi
  for s in NAME SYNOPSIS DESCRIPTION COMMANDS OPTIONS "EXIT STATUS" SIGNALS \
           FILES ENVIRONMENT "SEE ALSO"; do
    grep -qx "\.SH \"\?$s\"\?" "$man8" || bad "man page lacks the section $s"
  done
fi

[ $fail -eq 0 ] && echo "install: tree, modes, unit, example config and man page ok"
exit $fail
