#!/usr/bin/python3
"""rusage.py: the CPU, peak RSS and page faults of one command, precisely.

  rusage.py OUT CMD [ARGS...]

Runs CMD as its child, waits for it and writes one line to OUT:

  USER SYS MAXRSS_KB MINFLT

the child's user and system CPU seconds to the microsecond, its peak RSS in
KB and its minor page faults, all from wait4(). It is what
`/usr/bin/time -f '%U %S %M %R' -o OUT` printed for e2e.sh, except that
GNU time rounds CPU to 10 ms, 3% of a headline run of the daemon. A SIGTERM
to this process is passed on to the child (e2e.sh stops the daemon by
signalling the child of the process it started, which is then the child of
this one). Exits with the child's status (128 + the signal if a signal
ended it), as a shell would.

ab.py uses run() for its A/B runs.
"""
import os
import signal
import sys


def run(argv):
    """Runs argv as a child; returns (exit status as a shell reports it,
    the child's resource usage)."""
    pid = os.fork()
    if pid == 0:
        try:
            os.execvp(argv[0], argv)
        finally:
            os._exit(127)
    signal.signal(signal.SIGTERM, lambda *a: os.kill(pid, signal.SIGTERM))
    while True:
        try:
            _, st, ru = os.wait4(pid, 0)
            break
        except InterruptedError:
            continue
    rc = os.waitstatus_to_exitcode(st)
    return (128 - rc if rc < 0 else rc), ru


def main():
    if len(sys.argv) < 3:
        sys.stderr.write("usage: rusage.py OUT CMD [ARGS...]\n")
        return 2
    rc, ru = run(sys.argv[2:])
    with open(sys.argv[1], "w") as f:
        f.write("%.6f %.6f %d %d\n" % (ru.ru_utime, ru.ru_stime,
                                       ru.ru_maxrss, ru.ru_minflt))
    return rc


if __name__ == "__main__":
    sys.exit(main())
