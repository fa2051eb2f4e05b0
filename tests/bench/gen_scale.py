#!/usr/bin/python3
"""gen_scale.py: report sets for the end-to-end benchmark's scaling runs.

The end-to-end benchmark (e2e.sh) needs, besides the typical corpus of
gen_reports.py, two kinds of input that corpus does not have:

  --small N --out DIR
      N small reports, one tc_report entry each (about 3 KB), named
      DIR/s/00000.json ... so that the blob-count runs (1,000, 10,000 and
      100,000 blobs) fit the time budget: per-blob costs (listing, the
      checkpoint, one download and one transform per blob) dominate, which
      is what that series measures. Blob name prefixes select subsets:
      "s/00" is the first 1,000, "s/0" the first 10,000.

  --big MB --entries N --out FILE
      one report of about MB megabytes whose tc_report holds N entries (the
      submitted file and N - 1 extracted files), each of about MB / N of
      typical content: the "one 200 MB report with 20,000 extracted files"
      of the memory target, and its 1, 10 and 100 MB siblings.

The entries come from gen_reports.py's entry(), so they have the same
shapes and vocabulary as the typical corpus. The output depends only on the
arguments (fixed seeds). Files are written under a temporary name and
renamed, so a present file is complete. Prints a JSON summary (bytes,
reports, records) on stdout.
"""

import argparse
import json
import os
import random
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gen_reports as gr  # noqa: E402


def task_keys(rng, seq, t):
    """The task-level keys of a modern report, after tc_report."""
    t["task_id"] = rng.randint(1, 10 ** 7)
    submitted = 1767225600 + seq * 3 + rng.randint(0, 2)
    t["submitted"] = submitted
    t["processed"] = submitted + rng.randint(0, 900)
    t["worker_ip"] = ["10.%d.%d.%d" % (rng.randrange(256), rng.randrange(256),
                                       rng.randrange(1, 255))]
    t["worker_address"] = ["tiscale-worker%02d.corp.example" %
                           rng.randint(1, 12)]
    t["worker_hostname"] = "tiscale-worker%02d" % rng.randint(1, 12)
    t["direct_sender"] = gr.ipv4(rng).split(":")[0]
    t["forwarded_for"] = []
    return t


def dumps(obj):
    return (json.dumps(obj, ensure_ascii=False, separators=(",", ":"),
                       allow_nan=False) + "\n").encode("utf-8")


def write_atomic(path, data):
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(data)
    os.rename(tmp, path)


def small(n, out):
    rng = random.Random(7)
    sdir = os.path.join(out, "s")
    os.makedirs(sdir, exist_ok=True)
    total = 0
    for i in range(n):
        e = gr.entry(rng, 0, None, "modern", 2200, gr.hexstr(rng, 160), 0)
        data = dumps(task_keys(rng, i, {"tc_report": [e]}))
        write_atomic(os.path.join(sdir, "%05d.json" % i), data)
        total += len(data)
    return {"bytes": total, "reports": n, "records": n}


def big(mb, entries, path):
    """Writes the report piece by piece: tc_report's entries one at a time,
    so that a 200 MB report never sits whole in this process either."""
    rng = random.Random(11)
    target = int(mb * 1e6) // entries
    root = gr.hexstr(rng, 160)
    tmp = path + ".tmp"
    total = 0
    with open(tmp, "wb") as f:
        def put(b):
            nonlocal total
            f.write(b)
            total += len(b)
        put(b'{"tc_report":[')
        for pos in range(entries):
            parent = None if pos == 0 else (rng.randrange(pos)
                                             if rng.random() < 0.3 else 0)
            # The entry builder overshoots its target by about 8 %.
            e = gr.entry(rng, pos, parent, "modern", target * 92 // 100,
                         root, 0)
            put((b"," if pos else b"") +
                json.dumps(e, ensure_ascii=False, separators=(",", ":"),
                           allow_nan=False).encode("utf-8"))
        keys = task_keys(rng, 0, {})
        put(b"]," + dumps(keys)[1:])
    os.rename(tmp, path)
    return {"bytes": total, "reports": 1, "records": entries}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--small", type=int)
    ap.add_argument("--big", type=float, metavar="MB")
    ap.add_argument("--entries", type=int, default=20000)
    args = ap.parse_args()
    if (args.small is None) == (args.big is None):
        ap.error("give exactly one of --small and --big")
    if args.small is not None:
        res = small(args.small, args.out)
    else:
        res = big(args.big, args.entries, args.out)
    json.dump(res, sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
