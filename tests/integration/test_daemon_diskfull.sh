#!/usr/bin/env bash
# Disk faults (issue 8): the state directory on a 1 MiB tmpfs. The daemon
# processes a first corpus, then the file system is filled up and a second
# corpus arrives. The daemon must report it, stay up, keep the blobs it
# cannot commit pending (nothing lost), and once space returns finish them
# without loss and without sending anything twice.
# Blobs of this size download into memory, so the journal is the only file
# that grows: its appends still fit in the slack of its last tmpfs page
# (under 4 KiB) and some commits succeed on the "full" disk, which is
# correct. The second corpus is made large enough (80 blobs, well over
# 4 KiB of journal lines) that the slack cannot hold all of it.
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
"$PY" "$TOP/tests/tools/gen_e2e.py" "$WORK/second" --count 80 --bad 0 \
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
[ "$done_full" -ge 30 ] && [ "$done_full" -lt 110 ] ||
  fail "the checkpoint shows $done_full blobs done on a full disk (expected 30 to 109)"
ok "disk full: reported, $(( $(records_count) - first )) records sent meanwhile, checkpoint held at $done_full of 110"

# Space returns: everything pending is finished, nothing is sent twice.
rm -f "$STATE/filler"
wait_done 110 120
wait_records "$(expected_records)" 60
daemon_stop 30
e2e_check --exact || fail "records lost or repeated around the full disk"
ok "recovered after the disk had space again: nothing lost, nothing twice"
