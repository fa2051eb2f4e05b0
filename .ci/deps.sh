#!/usr/bin/env bash
# Installs every build, test and benchmark dependency of spectra-sentinel on a
# Debian 12 machine, idempotently. Called by `make deps` and by .ci/run.
# It is fast when everything is already there: apt is only touched when a
# package is missing, and npm only when the lockfile changed.
set -euo pipefail
cd "$(dirname "$0")/.."

pkgs=(
  build-essential pkg-config clang llvm libclang-rt-14-dev valgrind
  libcurl4-openssl-dev libjansson-dev libssl-dev libuv1-dev libyaml-dev
  zlib1g-dev libdeflate-dev libexpat1-dev libcmocka-dev
  libyajl-dev libmicrohttpd-dev python3 ca-certificates openssl curl
  systemd
  python3-azure python3-azure-storage gnuplot-nox
)

missing=()
for p in "${pkgs[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done
# Node.js runs Azurite and the official Azure SDK in the tests. A machine may
# already carry a newer Node.js with its own npm; only install Debian's when
# there is none, since Debian's npm package conflicts with such builds.
if ! command -v node >/dev/null 2>&1; then missing+=(nodejs); fi
if ! command -v npm >/dev/null 2>&1; then missing+=(npm); fi

if [ ${#missing[@]} -gt 0 ]; then
  echo "deps: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# The test harness's npm packages (Azurite, @azure/storage-blob), pinned by
# tests/package-lock.json. Skip the install when node_modules matches it.
if [ -f tests/package.json ]; then
  stamp=tests/node_modules/.lock-stamp
  want=$(sha256sum tests/package-lock.json 2>/dev/null | cut -d' ' -f1 || true)
  if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
    echo "deps: npm ci in tests/"
    (cd tests && npm ci --no-audit --no-fund --loglevel=error)
    echo "$want" > "$stamp"
  fi
fi
echo "deps: ok"
