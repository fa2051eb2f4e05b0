#!/usr/bin/python3
"""baseline_transform.py: the report-to-records mapping, written plainly.

This is the yardstick of the transform benchmark: the mapping of SPEC
section 2 written the way the replaced Azure Function (Python 3.11) would do
it: json.loads of the whole blob, one dict per tc_report entry with the 17
columns of SpectraDetectLogs_CL, json.dumps of each record compactly, UTF-8
encoded as the request body would be. No tricks, no third-party modules, so
that "N times faster than the Python baseline" means something.

It is also the reference the benchmark checks the C transform against: for a
sample of reports, run.sh compares the C records with these, as parsed JSON.

Modes:
  baseline_transform.py --list MANIFEST [--max-field N]
      transforms every report file named in MANIFEST (one path a line) and
      prints one line of measurements:
      tool=python files=.. bytes=.. records=.. out_bytes=.. wall=.. user=.. sys=..
      wall, user and sys are seconds spent in the loop (not interpreter start).
  baseline_transform.py --dump FILE
      prints the records of one report as NDJSON.
  baseline_transform.py --compare FILE RECORDS_NDJSON
      compares RECORDS_NDJSON (records produced by another implementation for
      FILE) with this mapping's records: same count, same column order, equal
      values after number normalization (1 == 1.0, 1e2 == 100). Prints each
      mismatch and exits 1 if there is any.

Exit status: 0 success, 1 mismatch or bad input, 2 usage.
"""

import argparse
import datetime
import json
import math
import re
import resource
import sys
import time

MAX_FIELD_BYTES = 65536

# Column order of the table (SPEC section 2); records follow it.
COLUMNS = ("TimeGenerated", "task_id", "submitted", "processed",
           "process_duration", "direct_sender", "worker_address",
           "worker_hostname", "worker_ip", "forwarded_for", "info",
           "classification", "index", "parent", "story", "tags",
           "interesting_strings")

DECIMAL = re.compile(r"-?[0-9]+\Z")
INT64_MIN, INT64_MAX = -(1 << 63), (1 << 63) - 1
# RFC 3339 with a four-digit year: 0001-01-01 .. 9999-12-31.
TIME_MIN, TIME_MAX = -62135596800, 253402300799


class BadInput(Exception):
    pass


def to_int(v):
    """An int column: integers, finite reals (truncated), decimal strings."""
    if isinstance(v, bool) or v is None:
        return None
    if isinstance(v, int):
        r = v
    elif isinstance(v, float):
        if not math.isfinite(v):
            return None
        r = int(v)
    elif isinstance(v, str) and DECIMAL.match(v):
        r = int(v)
    else:
        return None
    return r if INT64_MIN <= r <= INT64_MAX else None


def to_str(v):
    """A string column: strings, and numbers and booleans as text."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return v
    if isinstance(v, (int, float)):
        return json.dumps(v)
    return None


def rfc3339(t):
    return datetime.datetime.fromtimestamp(
        t, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def dumps(v):
    return json.dumps(v, ensure_ascii=False, separators=(",", ":"))


def size(v):
    return len(dumps(v).encode("utf-8"))


def shrink(v, budget):
    """The largest prefix of v whose compact JSON fits budget bytes, or
    None when not even an empty container or string fits. Arrays keep their
    fitting prefix, objects their fitting members in order, strings are cut
    at a character boundary; the first element that does not fit whole is
    itself shrunk into what is left."""
    if size(v) <= budget:
        return v
    if isinstance(v, str):
        if budget < 2:
            return None
        lo, hi = 0, len(v)
        while lo < hi:  # the longest prefix that fits
            mid = (lo + hi + 1) // 2
            if size(v[:mid]) <= budget:
                lo = mid
            else:
                hi = mid - 1
        return v[:lo]
    if isinstance(v, list):
        if budget < 2:
            return None
        out, used = [], 2
        for x in v:
            sep = 1 if out else 0
            s = size(x)
            if used + sep + s <= budget:
                out.append(x)
                used += sep + s
                continue
            part = shrink(x, budget - used - sep)
            if part is not None:
                out.append(part)
            break
        return out
    if isinstance(v, dict):
        if budget < 2:
            return None
        out, used = {}, 2
        for k, x in v.items():
            sep = 1 if out else 0
            ks = size(k) + 1
            s = size(x)
            if used + sep + ks + s <= budget:
                out[k] = x
                used += sep + ks + s
                continue
            part = shrink(x, budget - used - sep - ks)
            if part is not None:
                out[k] = part
            break
        return out
    return None


def tasks_of(doc):
    """The task objects of a blob: an object, an array of them, or NDJSON."""
    try:
        top = json.loads(doc)
    except ValueError:
        top = None
        tasks = []
        for line in doc.splitlines():
            if line.strip():
                tasks.append(json.loads(line))  # ValueError: bad input
        return tasks
    return top if isinstance(top, list) else [top]


def records_of(doc, max_field=MAX_FIELD_BYTES, now=None):
    """The records of one report (bytes) as compact UTF-8 JSON (bytes),
    as they would go into a request body."""
    if now is None:
        now = int(time.time())
    try:
        tasks = tasks_of(doc)
    except ValueError as e:
        raise BadInput("invalid JSON: %s" % e)
    if not tasks:
        raise BadInput("no tc_report array")
    out = []
    for task in tasks:
        if not isinstance(task, dict) or \
           not isinstance(task.get("tc_report"), list):
            raise BadInput("no tc_report array")
        submitted = to_int(task.get("submitted"))
        processed = to_int(task.get("processed"))
        tg = None
        for t in (processed, submitted, now):
            if t is not None and TIME_MIN <= t <= TIME_MAX:
                tg = t
                break
        duration = to_int(task.get("process_duration"))
        if duration is None and processed is not None and \
           submitted is not None and processed >= submitted:
            duration = processed - submitted
        common = (
            ("TimeGenerated", rfc3339(tg)),
            ("task_id", to_str(task.get("task_id"))),
            ("submitted", submitted),
            ("processed", processed),
            ("process_duration", duration),
            ("direct_sender", to_str(task.get("direct_sender"))),
            ("worker_address", task.get("worker_address")),
            ("worker_hostname", to_str(task.get("worker_hostname"))),
            ("worker_ip", task.get("worker_ip")),
            ("forwarded_for", task.get("forwarded_for")),
        )
        for pos, e in enumerate(task["tc_report"]):
            if not isinstance(e, dict):
                e = {}
            # An absent (or null) index is the entry's position; one of
            # another type that cannot be converted omits the column.
            index = e.get("index")
            index = pos if index is None else to_int(index)
            rec = {k: v for k, v in common if v is not None}
            for k, v in (("info", e.get("info")),
                         ("classification", e.get("classification")),
                         ("index", index),
                         ("parent", to_int(e.get("parent"))),
                         ("story", e.get("story")),
                         ("tags", e.get("tags")),
                         ("interesting_strings",
                          e.get("interesting_strings"))):
                if v is not None:
                    rec[k] = v
            s = dumps(rec).encode("utf-8")
            # Only a record larger than the limit can hold a field larger
            # than the limit, so the per-field check is rarely needed.
            if len(s) > max_field:
                for k, v in rec.items():
                    if size(v) > max_field:
                        rec[k] = shrink(v, max_field)
                rec = {k: v for k, v in rec.items() if v is not None}
                s = dumps(rec).encode("utf-8")
            out.append(s)
    return out


def run_list(manifest, max_field):
    with open(manifest) as f:
        paths = [line.rstrip("\n") for line in f if line.strip()]
    files = nbytes = records = out_bytes = 0
    r0 = resource.getrusage(resource.RUSAGE_SELF)
    t0 = time.perf_counter()
    now = int(time.time())
    for p in paths:
        with open(p, "rb") as f:
            doc = f.read()
        try:
            recs = records_of(doc, max_field, now)
        except BadInput as e:
            sys.stderr.write("%s: %s\n" % (p, e))
            return 1
        for s in recs:
            out_bytes += len(s)
        files += 1
        nbytes += len(doc)
        records += len(recs)
    wall = time.perf_counter() - t0
    r1 = resource.getrusage(resource.RUSAGE_SELF)
    print("tool=python files=%d bytes=%d records=%d out_bytes=%d "
          "wall=%.6f user=%.6f sys=%.6f" %
          (files, nbytes, records, out_bytes, wall,
           r1.ru_utime - r0.ru_utime, r1.ru_stime - r0.ru_stime))
    return 0


def run_dump(path, max_field):
    with open(path, "rb") as f:
        doc = f.read()
    try:
        recs = records_of(doc, max_field)
    except BadInput as e:
        sys.stderr.write("%s: %s\n" % (path, e))
        return 1
    sys.stdout.buffer.write(b"".join(s + b"\n" for s in recs))
    return 0


def same(a, b):
    """JSON equality with numbers normalized (1 == 1.0 == 1e0) but, unlike
    Python's ==, true and 1 kept apart."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return a == b
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    return type(a) is type(b) and a == b


def run_compare(path, other, max_field):
    with open(path, "rb") as f:
        doc = f.read()
    want = [json.loads(s) for s in records_of(doc, max_field)]
    with open(other, "rb") as f:
        got = []
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                got.append(json.loads(line))
            except ValueError as e:
                print("%s: record line %d is not JSON: %s" % (path, n, e))
                return 1
    bad = 0
    if len(got) != len(want):
        print("%s: %d records, baseline has %d" % (path, len(got), len(want)))
        bad += 1
    for i, (g, w) in enumerate(zip(got, want)):
        if not isinstance(g, dict):
            print("%s: record %d is not an object" % (path, i))
            bad += 1
            continue
        if list(g) != list(w):
            print("%s: record %d columns %s, baseline %s" %
                  (path, i, list(g), list(w)))
            bad += 1
        for k in w:
            if k in g and not same(g[k], w[k]):
                print("%s: record %d column %s differs (%d vs %d bytes "
                      "serialized)" % (path, i, k, size(g[k]), size(w[k])))
                bad += 1
        if bad > 20:
            print("%s: more mismatches not shown" % path)
            break
    return 1 if bad else 0


def main():
    ap = argparse.ArgumentParser(
        description="Spectra Detect report to SpectraDetectLogs_CL records, "
                    "plain Python baseline.")
    g = ap.add_mutually_exclusive_group(required=True)
    g.add_argument("--list", metavar="MANIFEST")
    g.add_argument("--dump", metavar="FILE")
    g.add_argument("--compare", nargs=2, metavar=("FILE", "RECORDS"))
    ap.add_argument("--max-field", type=int, default=MAX_FIELD_BYTES)
    args = ap.parse_args()
    if args.list:
        return run_list(args.list, args.max_field)
    if args.dump:
        return run_dump(args.dump, args.max_field)
    return run_compare(args.compare[0], args.compare[1], args.max_field)


if __name__ == "__main__":
    sys.exit(main())
