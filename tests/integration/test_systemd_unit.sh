#!/usr/bin/env bash
# Checks systemd/spectra-sentinel.service the way `make install` ships it:
# @BINDIR@ substituted with the directory of the built binary ($BIN), then
#   - `systemd-analyze verify` prints nothing and succeeds (the binary and
#     the man page named in Documentation= must exist, so the man page is
#     put on a temporary MANPATH);
#   - `systemd-analyze security --offline=yes` rates the unit at most 2.0;
#   - the settings the daemon's contract relies on (SPEC sections 7 and 8)
#     are present.
# Neither command needs a running systemd. Without systemd-analyze (the
# Debian package `systemd`) the test is skipped with a message, not failed.
set -euo pipefail
: "${TOP:?}" "${BIN:?}"
unit=$TOP/systemd/spectra-sentinel.service
max_exposure=2.0

if ! command -v systemd-analyze >/dev/null 2>&1; then
  echo "SKIP: systemd-analyze not found (install the Debian package systemd)"
  exit 0
fi
[ -x "$BIN" ] || { echo "FAIL: $BIN is not built"; exit 1; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
bindir=$(cd "$(dirname "$BIN")" && pwd)
# systemd-analyze verify resolves ExecStart= to bindir/spectra-sentinel.
if [ "$(basename "$BIN")" != spectra-sentinel ]; then
  mkdir -p "$tmp/bin" && ln -s "$BIN" "$tmp/bin/spectra-sentinel"
  bindir=$tmp/bin
fi
mkdir -p "$tmp/unit" "$tmp/man/man8"
sed "s|@BINDIR@|$bindir|g" "$unit" > "$tmp/unit/spectra-sentinel.service"
if grep -q '@[A-Z]*@' "$tmp/unit/spectra-sentinel.service"; then
  echo "FAIL: unsubstituted placeholder left in the unit:"
  grep -n '@[A-Z]*@' "$tmp/unit/spectra-sentinel.service"
  exit 1
fi
cp "$TOP/docs/spectra-sentinel.8" "$tmp/man/man8/"

fail=0

# 1. verify: clean means exit 0 and not a single line of output. verify
# runs man(1) for Documentation=man:...; without man-db that part is off.
man_opt=()
if ! command -v man >/dev/null 2>&1; then
  echo "note: man(1) not installed (Debian package man-db): Documentation= not checked"
  man_opt=(--man=no)
fi
out=$(cd "$tmp/unit" && MANPATH=$tmp/man \
      systemd-analyze verify "${man_opt[@]}" ./spectra-sentinel.service 2>&1) && rc=0 || rc=$?
if [ $rc -ne 0 ] || [ -n "$out" ]; then
  echo "FAIL: systemd-analyze verify (exit $rc):"
  printf '%s\n' "$out"
  fail=1
else
  echo "ok: systemd-analyze verify is clean"
fi

# 2. security: the last line is "→ Overall exposure level for NAME: X.Y ...".
out=$(cd "$tmp/unit" && systemd-analyze security --offline=yes \
      --no-pager ./spectra-sentinel.service 2>&1) && rc=0 || rc=$?
level=$(printf '%s\n' "$out" | sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p')
if [ -z "$level" ]; then
  echo "FAIL: systemd-analyze security gave no exposure level (exit $rc):"
  printf '%s\n' "$out" | tail -20
  fail=1
elif awk -v l="$level" -v m="$max_exposure" 'BEGIN { exit !(l > m) }'; then
  echo "FAIL: exposure level $level is above $max_exposure; the exposed items:"
  printf '%s\n' "$out" | grep '✗' || true
  fail=1
else
  echo "ok: exposure level $level (at most $max_exposure)"
fi

# 3. The contract: each line must appear exactly as written.
want=(
  'Type=notify'
  'NotifyAccess=main'
  'WatchdogSec=30s'
  'Restart=on-failure'
  "ExecStart=$bindir/spectra-sentinel run -c /etc/spectra-sentinel/spectra-sentinel.yaml"
  'ExecReload=/bin/kill -HUP $MAINPID'
  'DynamicUser=yes'
  'StateDirectory=spectra-sentinel'
  'StateDirectoryMode=0700'
  'ConfigurationDirectory=spectra-sentinel'
  'UMask=0077'
  'ProtectSystem=strict'
  'NoNewPrivileges=yes'
  'CapabilityBoundingSet='
  'RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX'
  'SystemCallFilter=@system-service'
  'MemoryDenyWriteExecute=yes'
)
for w in "${want[@]}"; do
  if ! grep -qxF -- "$w" "$tmp/unit/spectra-sentinel.service"; then
    echo "FAIL: the unit lacks the line: $w"
    fail=1
  fi
done
grep -q '^LoadCredential=' "$unit" || { echo "FAIL: no LoadCredential="; fail=1; }

# TimeoutStopSec must leave the daemon its shutdown_timeout (30s) plus a
# margin for the final checkpoint before systemd sends SIGKILL.
stop=$(sed -n 's/^TimeoutStopSec=\([0-9]*\)s$/\1/p' "$unit")
if [ -z "$stop" ] || [ "$stop" -le 30 ]; then
  echo "FAIL: TimeoutStopSec must be given in seconds and exceed 30s (is '${stop}')"
  fail=1
fi
[ $fail -eq 0 ] && echo "systemd unit: all checks passed"
exit $fail
