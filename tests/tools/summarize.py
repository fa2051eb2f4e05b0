#!/usr/bin/env python3
"""Summarize spectra-sentinel records (NDJSON) for a person to read.

Reads records from the files named on the command line (or standard input)
and prints records per classification, the malicious files with their threat
names, and the tasks seen. Used by `make demo`.
"""
import collections
import json
import sys

NAMES = {0: "unknown", 1: "goodware", 2: "suspicious", 3: "malicious"}


def records(paths):
    streams = [open(p, encoding="utf-8") for p in paths] or [sys.stdin]
    for f in streams:
        for line in f:
            line = line.strip()
            if line:
                yield json.loads(line)


def main():
    paths = [a for a in sys.argv[1:] if not a.startswith("--")]
    elapsed = next((a.split("=", 1)[1] for a in sys.argv[1:]
                    if a.startswith("--elapsed=")), None)
    per_class = collections.Counter()
    tasks = set()
    malicious = []
    total = 0
    for r in records(paths):
        total += 1
        tasks.add(r.get("task_id"))
        c = (r.get("classification") or {})
        code = c.get("classification") if isinstance(c, dict) else None
        per_class[NAMES.get(code, "unclassified")] += 1
        if code == 3:
            info = (r.get("info") or {}).get("file") or {}
            name = info.get("file_name") or info.get("file_path") or "?"
            threat = c.get("result") or next(
                (sr.get("result") for sr in c.get("scan_results") or []
                 if isinstance(sr, dict) and sr.get("result")),
                "(no threat name)")
            malicious.append((r.get("task_id"), r.get("index"), name, threat))
    print(f"records: {total} from {len(tasks)} tasks")
    print("records per classification:")
    for k in ["malicious", "suspicious", "goodware", "unknown",
              "unclassified"]:
        if per_class[k]:
            print(f"  {k:<12} {per_class[k]}")
    if malicious:
        print("malicious files:")
        for task, idx, name, threat in malicious:
            print(f"  task {task} #{idx}: {threat}  ({name[:60]})")
    if elapsed:
        print(f"time taken: {elapsed}")
    return 0 if total else 1


if __name__ == "__main__":
    sys.exit(main())
