# azurite.sh: start and stop the Azurite blob emulator for a test script.
#
# Source it, then:
#   azurite_start WORKDIR   starts azurite-blob on 127.0.0.1 with port 0 (a
#                           free port), in memory, and sets AZURITE_PID,
#                           AZURITE_PORT and AZURITE_URL (the path-style
#                           blob endpoint of devstoreaccount1)
#   azurite_stop            stops it by PID (call it from an EXIT trap)
# Needs tests/node_modules (make deps). Output goes to WORKDIR/azurite.log.
# Safe under set -euo pipefail.

azurite_start() {
  local work=$1 top bin i
  top=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
  bin=$top/tests/node_modules/.bin/azurite-blob
  if [ ! -x "$bin" ]; then
    echo "azurite.sh: $bin missing; run make deps" >&2
    return 1
  fi
  "$bin" --blobHost 127.0.0.1 --blobPort 0 --inMemoryPersistence \
    --skipApiVersionCheck --disableTelemetry --silent \
    >"$work/azurite.log" 2>&1 &
  AZURITE_PID=$!
  AZURITE_PORT=
  for i in $(seq 1 300); do
    AZURITE_PORT=$(grep -o 'successfully listen[a-z]* [a-z]* http://127\.0\.0\.1:[0-9]*' \
                   "$work/azurite.log" | head -1 | sed 's/.*://' || true)
    [ -n "$AZURITE_PORT" ] && break
    if ! kill -0 "$AZURITE_PID" 2>/dev/null; then
      echo "azurite.sh: Azurite exited:" >&2; cat "$work/azurite.log" >&2
      return 1
    fi
    sleep 0.1
  done
  if [ -z "$AZURITE_PORT" ]; then
    echo "azurite.sh: Azurite did not start in 30 s:" >&2
    cat "$work/azurite.log" >&2
    return 1
  fi
  AZURITE_URL=http://127.0.0.1:$AZURITE_PORT/devstoreaccount1
  export AZURITE_PID AZURITE_PORT AZURITE_URL
}

azurite_stop() {
  if [ -n "${AZURITE_PID:-}" ]; then
    kill "$AZURITE_PID" 2>/dev/null || true
    wait "$AZURITE_PID" 2>/dev/null || true
    AZURITE_PID=
  fi
}
