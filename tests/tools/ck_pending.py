#!/usr/bin/python3
"""Print the blobs a checkpoint records as started and not finished: the
blobs that were in flight when the daemon last stopped (see the line format
at the top of src/checkpoint.c). These are the only blobs whose records may
be sent twice after a crash.

  ck_pending.py STATE_DIR
"""
import os
import re
import sys


def unescape(s):
    if s == "%":
        return ""
    return re.sub(r"%([0-9A-Fa-f]{2})", lambda m: chr(int(m.group(1), 16)),
                  s).encode("latin-1").decode("utf-8", "replace")


def lines(path):
    try:
        data = open(path, "rb").read().decode("latin-1")
    except FileNotFoundError:
        return []
    out = []
    for line in data.split("\n")[:-1]:      # a torn last line is ignored
        body = line.rsplit(" *", 1)[0]
        out.append(body.split(" "))
    return out


def main():
    d = sys.argv[1]
    pending = set()
    for f in lines(os.path.join(d, "checkpoint.snap")) + \
            lines(os.path.join(d, "checkpoint.journal")):
        if f[0] == "B" and len(f) >= 4:
            pending.add(unescape(f[3]))
        elif f[0] in ("D", "F") and len(f) >= 4:
            pending.discard(unescape(f[3]))
    for name in sorted(pending):
        print(name)


if __name__ == "__main__":
    main()
