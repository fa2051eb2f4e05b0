#!/usr/bin/python3
"""ab.py: A/B runs of several daemon binaries inside one e2e.sh invocation.

On this shared 2-core machine one binary's CPU moves by about 20% from run
to run, and more between invocations (Azurite, the fake and other work
share the cores). Comparing binaries fairly means alternating them run by
run under the same conditions. ab.py does that as e2e.sh's BIN:

  AB_BINS=/tmp/old:/tmp/new AB_OUT=/tmp/ab.txt BIN=tests/bench/ab.py \\
    E2E_ONLY=headline E2E_RUNS=16 E2E_PEER=0 bash tests/bench/e2e.sh
  tests/bench/ab.py --summary /tmp/ab.txt

Each `run` call goes to the next binary of AB_BINS in turn, two calls per
turn (the headline runs gzip, then none); every other call (`state`) goes
to the first binary. For each run it appends one line to AB_OUT: the
binary, the call's index, user and system CPU seconds, peak RSS (KB) and
minor page faults of the daemon, taken from wait4() (rusage.py). e2e.sh's
own tables then mix the binaries: read --summary instead. The turn counter is
AB_OUT + ".n"; remove both files before a new comparison.
"""
import fcntl
import os
import statistics
import sys

import rusage


def summary(path):
    runs = {}
    for line in open(path):
        b, i, user, sys_, rss, flt = line.split()
        kind = "gzip" if int(i) % 2 == 0 else "none"
        runs.setdefault((b, kind), []).append(
            (float(user) + float(sys_), float(sys_), int(rss), int(flt)))
    for (b, kind), v in sorted(runs.items()):
        print("%-28s %-4s runs %2d  CPU median %.3f s (min %.3f, max %.3f)"
              "  sys %.3f  RSS %.1f MB  faults %d" % (
                  b, kind, len(v), statistics.median(x[0] for x in v),
                  min(x[0] for x in v), max(x[0] for x in v),
                  statistics.median(x[1] for x in v),
                  statistics.median(x[2] for x in v) / 1024.0,
                  statistics.median(x[3] for x in v)))


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "--summary":
        summary(sys.argv[2])
        return 0
    bins = os.environ["AB_BINS"].split(":")
    out = os.environ["AB_OUT"]
    if len(sys.argv) < 2 or sys.argv[1] != "run":
        os.execv(bins[0], [bins[0]] + sys.argv[1:])
    with open(out + ".n", "a+") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        f.seek(0)
        n = int(f.read() or 0)
        f.seek(0)
        f.truncate()
        f.write(str(n + 1))
    b = bins[(n // 2) % len(bins)]
    # e2e.sh stops the daemon by signalling the child of the process it
    # started (rusage.py), which is this one: run() passes SIGTERM on.
    rc, ru = rusage.run([b] + sys.argv[1:])
    with open(out, "a") as f:
        f.write("%s %d %.3f %.3f %d %d\n" % (
            os.path.basename(b), n, ru.ru_utime, ru.ru_stime, ru.ru_maxrss,
            ru.ru_minflt))
    return rc


if __name__ == "__main__":
    sys.exit(main())
