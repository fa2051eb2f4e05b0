#!/usr/bin/python3
"""Generate report blobs for the daemon's end-to-end tests, with what each
must yield.

  gen_e2e.py OUTDIR [--count N] [--seed S] [--prefix P] [--bad K]

Writes OUTDIR/blobs/<name> (the files to upload, named as the blob) and
OUTDIR/expected.json:

  {"records": {"<task_id>|<index>": "<blob name>", ...},
   "bad": {"<blob name>": "<expected reason fragment>", ...},
   "blobs": {"<blob name>": <record count>, ...}}

Every record is identified by (task_id, index), unique across the corpus:
each task gets its own task_id string, and entries without an explicit
index get their position, as the daemon assigns it. The mix covers what
SPEC section 2 names: single objects, arrays of tasks, NDJSON, gzip, tc_report
before the task keys, missing index/parent, null processed, integer and
string task ids, decimal-string and real numbers, archives with many
extracted files, fields over 64 KB, and bad blobs (truncated, invalid UTF-8,
no tc_report, empty, nesting too deep).
"""
import argparse
import gzip
import json
import os
import random
import time

CLASSES = [0, 1, 2, 3]
THREATS = ["Win32.Trojan.Emotet", "Win32.Downloader.Unruy",
           "Linux.Trojan.Mirai", "Win64.Coinminer.Malxmr"]


def entry(rng, i, with_index, parent, big=False):
    cls = rng.choice(CLASSES)
    e = {
        "info": {"file": {
            "file_name": f"file-{i}.bin", "file_type": rng.choice(["PE", "ELF", "Text"]),
            "size": rng.randint(10, 10**7),
            "hashes": [{"name": "sha1", "value": "%040x" % rng.getrandbits(160)},
                       {"name": "sha256", "value": "%064x" % rng.getrandbits(256)}]}},
        "classification": {"classification": cls, "factor": rng.randint(0, 5),
                           "result": rng.choice(THREATS) if cls == 3 else "",
                           "scan_results": [{"name": "av", "type": rng.choice(["av", 1]),
                                             "classification": cls}]},
        "indicators": [{"priority": 2, "description": "Loads libraries."}],
        "metadata": {"application": {"capabilities": rng.getrandbits(30)}},
    }
    if with_index:
        e["index"] = i
        if parent is not None:
            e["parent"] = parent
    if rng.random() < 0.5:
        e["story"] = "This file was identified as a sample. " * rng.randint(1, 4)
    if rng.random() < 0.5:
        e["tags"] = {"ticore": ["capability-network", "crypto-aes"]}
    if rng.random() < 0.5:
        e["interesting_strings"] = [{"category": "http", "values": ["example.com"]}]
    if big:
        e["interesting_strings"] = [{"category": "ipv4", "values":
                                     ["10.0.%d.%d" % (k // 256, k % 256) for k in range(9000)]}]
    return e


def task(rng, task_id, n, now, style):
    with_index = style != "old"
    tc = [entry(rng, i, with_index, 0 if i else None, big=(style == "big" and i == 0))
          for i in range(n)]
    t = {"tc_report": tc}   # tc_report first, as real reports have it
    if style == "string_id":
        t["task_id"] = task_id
    else:
        t["task_id"] = task_id  # always a unique string the test can key on
    sub = now - rng.randint(60, 3000)
    t["submitted"] = sub if style != "strnum" else str(sub)
    if style == "pending":
        t["processed"] = None
    elif style == "real":
        t["processed"] = sub + 12.75
    else:
        t["processed"] = sub + rng.randint(1, 50)
    t["worker_hostname"] = "tiscale-worker%02d" % rng.randint(1, 9)
    t["worker_ip"] = ["10.1.2.%d" % rng.randint(1, 250)]
    t["direct_sender"] = "1.2.3.4"
    t["forwarded_for"] = []
    return t


def main():
    p = argparse.ArgumentParser()
    p.add_argument("out")
    p.add_argument("--count", type=int, default=1000)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--prefix", default="in/")
    p.add_argument("--bad", type=int, default=12)
    a = p.parse_args()
    rng = random.Random(a.seed)
    now = int(time.time())
    blobs_dir = os.path.join(a.out, "blobs")
    os.makedirs(blobs_dir, exist_ok=True)
    exp = {"records": {}, "bad": {}, "blobs": {}}
    styles = ["typical"] * 10 + ["archive", "old", "pending", "real", "strnum",
                                 "array", "ndjson", "gzip", "big"]
    tid = 0

    def write(name, data):
        path = os.path.join(blobs_dir, name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(data)

    for b in range(a.count):
        style = styles[b % len(styles)]
        name = "%s%04d/%02d/report-%05d.json" % (a.prefix, 2026, b % 12 + 1, b)
        ntasks = 2 if style in ("array", "ndjson") else 1
        tasks = []
        for _ in range(ntasks):
            tid += 1
            n = rng.randint(50, 200) if style == "archive" else rng.randint(1, 5)
            if style == "big":
                n = 2
            t = task(rng, "e2e-%s%06d" % (a.prefix.replace("/", "-"), tid), n,
                     now, style)
            tasks.append(t)
            for i in range(n):
                exp["records"]["%s|%d" % (t["task_id"], i)] = name
        if style == "array":
            data = json.dumps(tasks).encode()
        elif style == "ndjson":
            data = "\n".join(json.dumps(t) for t in tasks).encode() + b"\n"
        else:
            data = json.dumps(tasks[0], indent=1 if b % 7 == 0 else None).encode()
        if style == "gzip":
            data = gzip.compress(data)
        write(name, data)
        exp["blobs"][name] = sum(len(t["tc_report"]) for t in tasks)

    bad = [
        ("truncated", lambda: json.dumps(task(rng, "bad-t", 3, now, "typical")).encode()[:-40],
         "unexpected end of input"),
        ("invalid-utf8", lambda: b'{"tc_report":[{"story":"caf\xe9"}],"task_id":"bad-u"}',
         "invalid UTF-8"),
        ("no-tc-report", lambda: b'{"task_id":"bad-n","submitted":1}', "no tc_report array"),
        ("empty", lambda: b"", "empty input"),
        ("too-deep", lambda: b'{"tc_report":[{"info":' + b"[" * 400 + b"]" * 400 +
         b'}],"task_id":"bad-d"}', "deep"),
        ("not-json", lambda: b"<html>not a report</html>", "not an object or array"),
    ]
    for k in range(a.bad):
        kind, make, why = bad[k % len(bad)]
        name = "%sbad/%s-%02d.json" % (a.prefix, kind, k)
        write(name, make())
        exp["bad"][name] = why
        exp["blobs"][name] = 0
    with open(os.path.join(a.out, "expected.json"), "w") as f:
        json.dump(exp, f)
    print("generated %d blobs, %d records, %d bad" %
          (len(exp["blobs"]), len(exp["records"]), len(exp["bad"])))


if __name__ == "__main__":
    main()
