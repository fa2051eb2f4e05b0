#!/usr/bin/python3
"""Check what the Logs Ingestion fake received against gen_e2e.py's
expectations.

  check_e2e.py EXPECTED RECORDS [--deadletter DIR] [--exact]
               [--allow-dup-blobs FILE] [--only-blobs FILE]

RECORDS is the fake's --records file (one accepted record a line). Fails
(exit 1, with the reasons) when a record is missing, when a record that no
report holds arrives, when a record arrives twice and either --exact is set
or its blob is not listed in --allow-dup-blobs (the blobs that were in flight
at a crash), or when a bad blob has no dead-letter line with its reason.
"""
import argparse
import collections
import glob
import json
import os
import sys


def main():
    p = argparse.ArgumentParser()
    p.add_argument("expected")
    p.add_argument("records")
    p.add_argument("--deadletter")
    p.add_argument("--exact", action="store_true")
    p.add_argument("--allow-dup-blobs")
    p.add_argument("--any-dup", action="store_true",
                   help="duplicates are allowed (a retry after a response "
                        "was lost is at-least-once)")
    a = p.parse_args()
    exp = json.load(open(a.expected))
    want = exp["records"]
    got = collections.Counter()
    unexpected = []
    with open(a.records) as f:
        for line in f:
            if not line.strip():
                continue
            r = json.loads(line)
            key = "%s|%s" % (r.get("task_id"), r.get("index"))
            if key not in want:
                unexpected.append(key)
            got[key] += 1
    allowed = set()
    if a.allow_dup_blobs and os.path.exists(a.allow_dup_blobs):
        allowed = {l.rstrip("\n") for l in open(a.allow_dup_blobs) if l.strip()}
    missing = [k for k in want if k not in got]
    dups = {k: n for k, n in got.items() if n > 1 and k in want}
    bad_dups = [k for k in dups
                if a.exact or (not a.any_dup and want[k] not in allowed)]
    problems = []
    if missing:
        problems.append("%d records missing, e.g. %s (blob %s)" %
                        (len(missing), missing[0], want[missing[0]]))
    if unexpected:
        problems.append("%d unexpected records, e.g. %s" %
                        (len(unexpected), unexpected[0]))
    if bad_dups:
        problems.append("%d records received more than once from blobs not "
                        "in flight at a crash, e.g. %s x%d (blob %s)" %
                        (len(bad_dups), bad_dups[0], dups[bad_dups[0]],
                         want[bad_dups[0]]))
    nbad = 0
    if a.deadletter is not None:
        lines = []
        for fn in glob.glob(os.path.join(a.deadletter, "*.ndjson")):
            lines += [json.loads(l) for l in open(fn) if l.strip()]
        blobs = {l["blob"]: l for l in lines if l.get("kind") == "blob"}
        for name, why in exp["bad"].items():
            l = blobs.get(name)
            text = (l.get("error_message") or "").lower() if l else ""
            if not l:
                problems.append("bad blob %s has no dead-letter line" % name)
            elif why.lower() not in text:
                problems.append("bad blob %s: reason %r lacks %r" %
                                (name, l.get("error_message"), why))
            else:
                nbad += 1
        good_dl = [n for n in blobs if n not in exp["bad"]]
        if good_dl:
            problems.append("good blob %s dead-lettered as a whole" % good_dl[0])
    dup_blobs = {want[k] for k in dups}
    print("e2e: %d of %d records received, %d duplicated (from %d blobs in "
          "flight at a crash), %d unexpected, %d bad blobs recorded" %
          (len(want) - len(missing), len(want), len(dups), len(dup_blobs),
           len(unexpected), nbad))
    for pr in problems:
        print("FAIL: " + pr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
