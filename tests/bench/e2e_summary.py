#!/usr/bin/python3
"""e2e_summary.py: the tables, targets and chart of the end-to-end benchmark.

e2e.sh appends one JSON object per run to bench-out/e2e-runs.jsonl:
scenario, label, tool (daemon | peer), compression, mode (process |
repoll), blobs, bytes (report JSON bytes), records, user and sys (CPU
seconds of the measured process), rss_kb (its peak RSS), minflt (its minor
page faults), wall (seconds
from start to the last blob done), requests, request_bytes (uncompressed
JSON of the requests the fake accepted), r413, entries (checkpoint entries
in the grace window after the run), ok; the peer adds user_loop and
sys_loop (its CPU after the imports and client set-up).

  e2e_summary.py --runs FILE --out DIR [--max-request N]
      prints the tables and the targets, writes the chart's data
      (DIR/e2e-scaling-*.dat) and script (DIR/e2e-scaling.gp), and
      DIR/e2e-scaling.png when gnuplot is installed.
  e2e_summary.py --line
      one run (a JSON line on stdin) as one line of text, for progress.

Figures are medians over the runs of a label. CPU s/GB is CPU seconds per
10^9 bytes of report JSON; records/s is records over the wall time; fill is
the mean uncompressed request size over max_request_bytes.
"""

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys

TARGETS = {
    "ratio_gzip": 10.0,     # peer CPU/GB over daemon CPU/GB, gzip on
    "ratio_none": 20.0,     # the same with the daemon's compression: none
    "rss_typical_mb": 64.0,
    "rss_200mb_mb": 150.0,
    "fill": 0.90,
    "linear": 1.5,          # re-poll CPU per blob, largest over middle count
}


def cpu(r):
    return r["user"] + r["sys"]


def per_gb(r):
    return cpu(r) / (r["bytes"] / 1e9) if r.get("bytes") else 0.0


def fill(r, max_request):
    if not r.get("requests"):
        return 0.0
    return r["request_bytes"] / r["requests"] / max_request


def line(r):
    s = "%-20s %-6s %-8s cpu %6.2f s" % (r["label"], r["tool"],
                                        r.get("mode", ""), cpu(r))
    if r.get("bytes") and r.get("mode") != "repoll":
        s += " (%6.1f s/GB)" % per_gb(r)
    s += "  rss %6.1f MB  wall %6.1f s" % (r["rss_kb"] / 1024.0, r["wall"])
    if r.get("minflt"):
        s += "  %d page faults" % r["minflt"]
    if r.get("requests"):
        s += "  %d requests, fill %.0f%%" % (
            r["requests"], 100 * fill(r, 1000000))
    if r.get("mode") == "repoll":
        s += "  %d entries" % r.get("entries", 0)
    if not r.get("ok"):
        s += "  NOT OK"
    return s


def med(rows, f):
    vals = [f(r) for r in rows]
    return statistics.median(vals) if vals else 0.0


def verdict(ok):
    return "PASS" if ok else "MISS"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs")
    ap.add_argument("--out")
    ap.add_argument("--max-request", type=int, default=1000000)
    ap.add_argument("--line", action="store_true")
    args = ap.parse_args()
    if args.line:
        print(line(json.loads(sys.stdin.readline())))
        return 0
    runs = [json.loads(l) for l in open(args.runs) if l.strip()]
    mr = args.max_request
    by = {}
    for r in runs:
        by.setdefault((r["label"], r.get("mode", "process")), []).append(r)
    bad = [r for r in runs if not r.get("ok")]

    def get(label, mode="process"):
        return by.get((label, mode), [])

    targets = []
    # ---- headline ------------------------------------------------------
    hl = [("spectra-sentinel, gzip", get("headline-gzip")),
          ("spectra-sentinel, none", get("headline-none")),
          ("SDK peer (gzip)", get("headline-peer")),
          ("SDK peer, none (info)", get("headline-peer-none"))]
    hl = [(n, rs) for n, rs in hl if rs]
    if hl:
        r0 = hl[0][1][0]
        print("Headline: %d typical reports, %.1f MB of report JSON, %d "
              "records (medians of %d runs)" % (
                  r0["blobs"] if "blobs" in r0 else 0, r0["bytes"] / 1e6,
                  r0.get("records", 0), len(hl[0][1])))
        print()
        print("%-24s %7s %8s %9s %8s %8s %6s %4s %7s" % (
            "tool", "CPU s", "CPU s/GB", "records/s", "RSS MB",
            "requests", "fill", "413", "wall s"))
        for name, rs in hl:
            print("%-24s %7.2f %8.1f %9.0f %8.1f %8.0f %5.0f%% %4d %7.1f" % (
                name, med(rs, cpu), med(rs, per_gb),
                med(rs, lambda r: r.get("records", 0) / max(r["wall"], 1e-3)),
                med(rs, lambda r: r["rss_kb"] / 1024.0),
                med(rs, lambda r: r.get("requests", 0)),
                100 * med(rs, lambda r: fill(r, mr)),
                max(r.get("r413", 0) for r in rs), med(rs, lambda r: r["wall"])))
        peer = get("headline-peer")
        if peer:
            pg = med(peer, per_gb)
            ploop = med(peer, lambda r: (r.get("user_loop", 0) +
                                         r.get("sys_loop", 0)) /
                        (r["bytes"] / 1e9))
            print("  (the peer's CPU after its imports and client set-up: "
                  "%.1f s/GB)" % ploop)
            print()
            for label, key, name in (
                    ("headline-gzip", "ratio_gzip",
                     "SDK peer / spectra-sentinel gzip"),
                    ("headline-none", "ratio_none",
                     "SDK peer / spectra-sentinel none")):
                rs = get(label)
                if not rs:
                    continue
                d = med(rs, per_gb)
                ratio = pg / d if d else 0.0
                targets.append((name + " (CPU per GB)", "%.1fx" % ratio,
                                ">= %.0fx" % TARGETS[key],
                                ratio >= TARGETS[key]))
                print("%-38s %6.1fx  (%.1fx on the peer's loop CPU)" % (
                    name, ratio, ploop / d if d else 0.0))
            pn = get("headline-peer-none")
            dn = get("headline-none")
            if pn and dn:
                print("%-38s %6.1fx  (information: both uncompressed)" % (
                    "SDK peer none / spectra-sentinel none",
                    med(pn, per_gb) / max(med(dn, per_gb), 1e-9)))
        for label in ("headline-gzip", "headline-none"):
            rs = get(label)
            if rs:
                f = med(rs, lambda r: fill(r, mr))
                r413 = sum(r.get("r413", 0) for r in rs)
                targets.append(("requests full, %s" % label,
                                "%.0f%%, %d x 413" % (100 * f, r413),
                                ">= 90%, no 413",
                                f >= TARGETS["fill"] and r413 == 0))
        print()

    # ---- typical -----------------------------------------------------------
    ty = get("typical-gzip")
    if ty:
        r = ty[0]
        rss = r["rss_kb"] / 1024.0
        print("Typical: %d reports (%.0f MB) through spectra-sentinel, gzip: "
              "CPU %.1f s (%.1f s/GB), peak RSS %.1f MB, %.0f records/s, "
              "%d requests %.0f%% full, %d x 413" % (
                  r["blobs"], r["bytes"] / 1e6, cpu(r), per_gb(r), rss,
                  r.get("records", 0) / max(r["wall"], 1e-3),
                  r.get("requests", 0), 100 * fill(r, mr), r.get("r413", 0)))
        targets.append(("peak RSS over %d typical reports" % r["blobs"],
                        "%.1f MB" % rss, "<= 64 MB",
                        rss <= TARGETS["rss_typical_mb"]))
        f = fill(r, mr)
        targets.append(("requests full, typical", "%.0f%%, %d x 413" % (
            100 * f, r.get("r413", 0)), ">= 90%, no 413",
            f >= TARGETS["fill"] and r.get("r413", 0) == 0))
        print()

    # ---- scaling table -----------------------------------------------------
    size_rows = sorted({int(k[0].split("-")[1][:-2]) for k in by
                        if k[0].startswith("size-") and
                        not k[0].endswith("-peer")})
    blob_rows = sorted({int(k[0].split("-")[1]) for k in by
                        if k[0].startswith("blobs-")})
    dat = []
    if blob_rows:
        print("Scaling by blob count (small one-entry reports, file "
              "destination; then one poll with every blob done):")
        print("%8s | %7s %9s %7s %8s | %7s %10s %7s %7s %8s" % (
            "blobs", "CPU s", "ms/blob", "RSS MB", "blobs/s",
            "poll s", "CPU s", "ms/1k", "RSS MB", "entries"))
        rep = {}
        for n in blob_rows:
            p = get("blobs-%d" % n)
            q = get("blobs-%d" % n, "repoll")
            pc = med(p, cpu) if p else 0.0
            qc = med(q, cpu) if q else 0.0
            # A run cut short: per blob over the blobs it did finish.
            done = med(p, lambda r: r.get("done", n) or n) if p else n
            rep[n] = qc
            print("%8d | %7.2f %9.3f %7.1f %8.0f | %7.1f %10.3f %7.2f "
                  "%7.1f %8d%s" % (
                      n, pc, 1000 * pc / max(done, 1),
                      med(p, lambda r: r["rss_kb"] / 1024.0) if p else 0,
                      done / max(med(p, lambda r: r["wall"]), 1e-3)
                      if p else 0,
                      med(q, lambda r: r["wall"]) if q else 0, qc,
                      1000 * qc / (n / 1000.0),
                      med(q, lambda r: r["rss_kb"] / 1024.0) if q else 0,
                      q[0].get("entries", 0) if q else 0,
                      "" if done == n else
                      "  (%d done in the time limit; no poll)" % done))
            dat.append(("blobs", n, 1000 * pc / max(done, 1),
                        med(p, lambda r: r["rss_kb"] / 1024.0) if p else 0,
                        1000 * qc / (n / 1000.0),
                        med(q, lambda r: r["rss_kb"] / 1024.0) if q else 0))
        if len(blob_rows) >= 2:
            a, b = blob_rows[-2], blob_rows[-1]
            ga = rep[a] / a if rep[a] else 0.0
            gb = rep[b] / b if rep[b] else 0.0
            growth = gb / ga if ga else 0.0
            targets.append(("poll over %d done blobs: CPU per blob vs %d" % (
                b, a), "%.2fx" % growth, "<= %.1fx (linear)" %
                TARGETS["linear"], 0 < growth <= TARGETS["linear"]))
        print()
    if size_rows:
        print("Scaling by report size (one report, 100 extracted files per "
              "MB, gzip):")
        print("%8s | %7s %8s %7s %8s %9s | %9s %9s" % (
            "MB", "CPU s", "CPU s/GB", "RSS MB", "MB/s", "records/s",
            "peer CPU", "peer RSS"))
        for s in size_rows:
            p = get("size-%dmb" % s)
            q = get("size-%dmb-peer" % s)
            rss = med(p, lambda r: r["rss_kb"] / 1024.0) if p else 0.0
            print("%8d | %7.2f %8.1f %7.1f %8.1f %9.0f | %9s %9s" % (
                s, med(p, cpu), med(p, per_gb), rss,
                med(p, lambda r: r["bytes"] / 1e6 / max(r["wall"], 1e-3)),
                med(p, lambda r: r.get("records", 0) / max(r["wall"], 1e-3)),
                "%.2f s" % med(q, cpu) if q else "-",
                "%.0f MB" % med(q, lambda r: r["rss_kb"] / 1024.0)
                if q else "-"))
            dat.append(("size", s, med(p, per_gb), rss,
                        med(q, per_gb) if q else 0.0,
                        med(q, lambda r: r["rss_kb"] / 1024.0) if q else 0.0))
            if s == 200:
                targets.append(("peak RSS, one 200 MB report",
                                "%.1f MB" % rss, "< 150 MB",
                                rss < TARGETS["rss_200mb_mb"]))
        print()

    # ---- targets -----------------------------------------------------------
    if targets:
        print("Targets:")
        for name, val, want, ok in targets:
            print("  %-52s %-16s %-18s %s" % (name, val, want, verdict(ok)))
    if bad:
        print()
        for r in bad:
            print("not finished or failed: %s%s" % (
                line(r), ("  (%s)" % r["note"]) if r.get("note") else ""))
    if dat and args.out:
        chart(dat, args.out)
    # Runs cut short are measurements too (their targets show MISS); e2e.sh
    # decides whether a program failed.
    return 0


def chart(dat, out):
    """Writes the chart's data and gnuplot script (one panel per series
    that has data) and runs gnuplot when it is installed."""
    blobs = [d[1:] for d in dat if d[0] == "blobs"]
    sizes = [d[1:] for d in dat if d[0] == "size"]
    gpf = os.path.join(out, "e2e-scaling.gp")
    png = os.path.join(out, "e2e-scaling.png")
    panels = []
    if blobs:
        f = os.path.join(out, "e2e-scaling-blobs.dat")
        with open(f, "w") as fh:
            fh.write("# blobs, CPU ms per blob, RSS MB, poll CPU ms per "
                     "1000 done blobs, poll RSS MB\n")
            for d in blobs:
                fh.write("%d %.4f %.2f %.4f %.2f\n" % d)
        panels.append("""set title "By blob count (small reports; then a poll with all done)"
set xlabel "blobs in the container"
set ylabel "CPU ms per blob, per 1000 blobs polled"
set y2label "peak RSS MB"
unset logscale y
unset logscale y2
set yrange [0:*]
set y2range [0:*]
plot "%s" using 1:2 with linespoints lw 2 title "process: CPU ms per blob", \\
     "" using 1:4 with linespoints lw 2 title "poll, all done: CPU ms per 1000", \\
     "" using 1:3 axes x1y2 with linespoints dt 2 title "process: peak RSS MB", \\
     "" using 1:5 axes x1y2 with linespoints dt 2 title "poll: peak RSS MB"
""" % f)
    if sizes:
        f = os.path.join(out, "e2e-scaling-sizes.dat")
        with open(f, "w") as fh:
            fh.write("# report MB, daemon CPU s/GB, daemon RSS MB, peer CPU "
                     "s/GB (0: not run), peer RSS MB\n")
            for d in sizes:
                fh.write("%d %.3f %.2f %.3f %.2f\n" % d)
        panels.append("""set title "By report size (one report, 100 extracted files per MB)"
set xlabel "report MB"
set ylabel "CPU s per GB of reports"
set y2label "peak RSS MB"
set logscale y
set logscale y2
set yrange [*:*]
set y2range [10:*]
plot "%s" using 1:2 with linespoints lw 2 title "spectra-sentinel: CPU s/GB", \\
     "" using 1:($4 > 0 ? $4 : 1/0) with linespoints lw 2 title "SDK peer: CPU s/GB", \\
     "" using 1:3 axes x1y2 with linespoints dt 2 title "spectra-sentinel: peak RSS MB", \\
     "" using 1:($5 > 0 ? $5 : 1/0) axes x1y2 with linespoints dt 2 title "SDK peer: peak RSS MB"
""" % f)
    if not panels:
        return
    with open(gpf, "w") as fh:
        fh.write("""set terminal pngcairo size %d,520 font ",10"
set output "%s"
set multiplot layout 1,%d title "spectra-sentinel end to end (make bench)"
set logscale x
set grid
set key top left box opaque
set ytics nomirror
set y2tics
""" % (620 * len(panels), png, len(panels)))
        fh.write("".join(panels))
        fh.write("unset multiplot\n")
    if shutil.which("gnuplot"):
        rc = subprocess.run(["gnuplot", gpf], capture_output=True, text=True)
        if rc.returncode == 0:
            print("\nchart: %s" % png)
        else:
            print("\nchart: gnuplot failed: %s" % rc.stderr.strip()[:300])
    else:
        print("\nchart: gnuplot not installed (Debian package gnuplot-nox); "
              "data and script beside %s" % gpf)


if __name__ == "__main__":
    sys.exit(main())
