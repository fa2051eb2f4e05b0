#!/usr/bin/env bash
# Disk faults (issue 8): the state directory on a 1 MiB tmpfs. The daemon
# processes a first corpus, then the file system is filled up and a second
# corpus arrives. The daemon must report it, stay up, keep the new blobs
# pending (nothing committed, nothing lost), and once space returns finish
# them without loss and without sending anything twice.
# Needs mount(2) (root); skipped where the sandbox forbids it.
set -u
source "$TOP/tests/integration/daemon_lib.sh"

mkdir -p "$STATE"
if ! mount -t tmpfs -o size=1m,mode=0700 tmpfs "$STATE" 2>/dev/null; then
  echo "skip: cannot mount a tmpfs here"
  exit 0
fi
unmount_state() { umount "$STATE" 2>/dev/null; }
trap 'daemon_kill9; azurite_stop; unmount_state; cleanup_fakes' EXIT

e2e_start_peers
"$PY" "$TOP/tests/tools/gen_e2e.py" "$WORK/second" --count 30 --bad 0 \
  --seed 9 --prefix later/ > /dev/null || fail "gen"
e2e_corpus 30 0 8
E2E_POLL=1s e2e_config
daemon_start
wait_done 30 60
wait_records "$(expected_records)" 30
first=$(records_count)
ok "first corpus done: $first records"

# Fill the file system, then let more reports arrive.
dd if=/dev/zero of="$STATE/filler" bs=4k 2>/dev/null
df -k "$STATE" | tail -1 | awk '{ if ($4 > 8) exit 1 }' || fail "could not fill the tmpfs"
node "$TOP/tests/tools/upload_reports.js" "$CONN" reports "$WORK/second/blobs" \
  > /dev/null || fail "upload"
"$PY" - "$WORK/corpus/expected.json" "$WORK/second/expected.json" <<'PYEOF'
import json, sys
a = json.load(open(sys.argv[1])); b = json.load(open(sys.argv[2]))
for k in ("records", "bad", "blobs"):
    a[k].update(b[k])
json.dump(a, open(sys.argv[1], "w"))
PYEOF
sleep 6
kill -0 "$DAEMON_PID" || fail "the daemon died on a full disk"
grep -qiE 'no space|spool|state directory' "$DAEMON_LOG" ||
  fail "a full state directory was not reported"
done_full=$("$BIN" state -c "$CFG" | awk '/^blobs done/ {print $3}')
[ "$done_full" = 30 ] || fail "the checkpoint advanced to $done_full on a full disk"
ok "disk full: reported, $(( $(records_count) - first )) records sent meanwhile, checkpoint held at 30"

# Space returns: everything pending is finished, nothing is sent twice.
rm -f "$STATE/filler"
wait_done 60 120
wait_records "$(expected_records)" 60
daemon_stop 30
e2e_check --exact || fail "records lost or repeated around the full disk"
ok "recovered after the disk had space again: nothing lost, nothing twice"
