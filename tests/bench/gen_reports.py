#!/usr/bin/python3
"""gen_reports.py: a deterministic corpus of typical Spectra Detect reports.

The transform benchmark (tests/bench/run.sh) needs at least 100 MB of reports
that look like what an appliance writes into the ADLS container, so that the
measured throughput means something for production. Real reports cannot be
committed, so this script synthesizes them from the shapes documented in
/work/shared/docs/report-format-notes.md:

- the task object puts tc_report first, then the task keys (task_id,
  submitted, processed, worker_*, direct_sender, forwarded_for), because that
  is the order real exports use and the order that forces the transform's
  two-pass design;
- tc_report holds 1 to 200 entries, the submitted file first, then the files
  extracted from it, each with info, classification (with scan_results),
  indicators, interesting_strings, metadata, strings, story and tags;
- reports weigh 20 KB to 2 MB, most of them small, some large; the bulk of a
  large report is metadata and strings, as in real full reports;
- the variations real samples show: old-style entries without index/parent,
  task_id as a string, processed null, scan_results[].type as an integer,
  non-ASCII file names, escaped Windows paths, and a few interesting_strings
  values larger than 64 KB so that the field shrink path is exercised.

Every report is written compactly on one line (with a trailing newline) to
OUT/reports/rNNNNN.json, and the same bytes are concatenated into
OUT/stream.ndjson, so that per-blob and one-stream measurements read exactly
the same JSON. OUT/manifest.txt lists the report files and OUT/meta.json
holds the totals (bytes, reports, expected records) and the reports with a
field over 64 KB; it is written last, so its presence marks a complete
corpus.

The output depends only on --seed and --mb: the same arguments produce the
same bytes on every run (random.Random with an integer seed, no hash-order
or clock dependence).

Usage: gen_reports.py --out DIR [--mb 100] [--seed 1]
"""

import argparse
import json
import os
import random
import sys

KB = 1000

WORDS = (
    "kernel32 user32 advapi32 ws2_32 wininet ntdll shell32 ole32 crypt32 "
    "config update install payload loader stage service driver session token "
    "account invoice order report backup archive document setup client "
    "server agent module plugin helper runtime cache temp data system public"
).split()

APIS = (
    "LoadLibraryA GetProcAddress VirtualAlloc VirtualProtect CreateThread "
    "CreateRemoteThread WriteProcessMemory OpenProcess RegOpenKeyExA "
    "RegSetValueExA InternetOpenA InternetOpenUrlA HttpSendRequestA "
    "CreateFileA WriteFile ReadFile DeleteFileA GetTempPathA WinExec "
    "ShellExecuteA CryptAcquireContextA CryptEncrypt GetTickCount Sleep "
    "IsDebuggerPresent GetModuleHandleA ExitProcess FindFirstFileA"
).split()

FILE_TYPES = (
    ("PE", "Exe"), ("PE", "Dll"), ("PE+", "Exe"), ("PE+", "Dll"),
    ("Text", "XML"), ("Text", "JavaScript"), ("Text", "PowerShell"),
    ("Text", "HTML"), ("Document", "PDF"), ("Document", "Word"),
    ("Archive", "ZIP"), ("Archive", "7-Zip"), ("Image", "PNG"),
    ("Binary", "Data"), ("ELF", "Executable"),
)

AV_NAMES = (
    "Antivirus (based on the RCA Classify)", "TitaniumCore Machine Learning",
    "Next-Generation Antivirus", "TitaniumCloud", "drweb", "clamav",
    "TitaniumCore RHA1", "TitaniumCore Certificate Validation",
)
SCAN_TYPES = ("av", "internal", "ng_av", "cloud")

THREATS = (
    "Win32.Downloader.Unruy", "Win32.Trojan.Graftor", "Win64.Coinminer.Malxmr",
    "Win32.Malware.Heuristic", "Script-JS.Trojan.Nemucod",
    "Document-Word.Downloader.Emotet", "Win32.Ransomware.Lockbit",
    "Linux.Backdoor.Mirai", "ByteCode-MSIL.Infostealer.Agenttesla",
)

TAGS = (
    "crypto-aes", "capability-network", "capability-execution",
    "anonymous-email", "cert-expired", "cert-invalid", "packed",
    "installer", "macros", "overlay", "stripped", "obfuscated",
    "persistence-registry", "antidebug",
)

INDICATOR_TEXT = (
    "Loads additional libraries.", "Executes a file.",
    "Contains references to network APIs.", "Tampers with the registry.",
    "Allocates memory in another process.", "Enumerates files.",
    "Deletes files.", "Uses cryptographic APIs.", "Detects a debugger.",
    "Creates a service.", "Contains an embedded executable.",
)

REASON_CATEGORIES = ("Imported API Name", "Strings", "Behavior", "Structure")

STRING_CATEGORIES = ("http", "https", "ipv4", "mailto", "domain", "path",
                     "registry", "email")

UNICODE_NAMES = ("счёт-фактура", "文档", "Rechnung_März", "factura_año",
                 "προσφορά", "請求書")


def hexstr(rng, bits):
    """Returns a lowercase hex digest of the given number of bits."""
    return "%0*x" % (bits // 4, rng.getrandbits(bits))


def word(rng):
    return rng.choice(WORDS)


def file_name(rng):
    r = rng.random()
    if r < 0.08:
        return "%s_%d.%s" % (rng.choice(UNICODE_NAMES), rng.randrange(1000),
                             rng.choice(("pdf", "docx", "xlsm", "zip")))
    if r < 0.5:
        return "%s-%s-%s_%d" % (hexstr(rng, 32), hexstr(rng, 16),
                                hexstr(rng, 16), rng.randrange(10000))
    return "%s_%s.%s" % (word(rng), word(rng),
                         rng.choice(("exe", "dll", "js", "ps1", "xml", "bin")))


def hashes(rng):
    return [
        {"name": "imphash", "value": hexstr(rng, 128)},
        {"name": "md5", "value": hexstr(rng, 128)},
        {"name": "rha0", "value": hexstr(rng, 160)},
        {"name": "sha1", "value": hexstr(rng, 160)},
        {"name": "sha256", "value": hexstr(rng, 256)},
    ]


def url(rng):
    return "%s://%s.%s.%s/%s/%s.php?id=%d" % (
        rng.choice(("http", "https")), word(rng), word(rng),
        rng.choice(("com", "net", "org", "ru", "xyz", "info")), word(rng),
        word(rng), rng.randrange(1 << 20))


def ipv4(rng):
    s = "%d.%d.%d.%d" % tuple(rng.randrange(256) for _ in range(4))
    if rng.random() < 0.3:
        s += ":%d" % rng.choice((80, 443, 8080, 4444, 3389))
    return s


def win_path(rng):
    return "C:\\Users\\%s\\AppData\\Local\\Temp\\%s\\%s.%s" % (
        word(rng), word(rng), word(rng), rng.choice(("exe", "dll", "tmp")))


def interesting_value(rng, category):
    if category in ("http", "https"):
        return url(rng)
    if category == "ipv4":
        return ipv4(rng)
    if category in ("mailto", "email"):
        return "%s.%s@%s.com" % (word(rng), word(rng), word(rng))
    if category == "domain":
        return "%s.%s.com" % (word(rng), word(rng))
    if category == "registry":
        return "HKEY_LOCAL_MACHINE\\SOFTWARE\\Microsoft\\Windows\\" \
               "CurrentVersion\\Run\\%s" % word(rng)
    return win_path(rng)


def interesting_strings(rng, target):
    """About target bytes of {category, values[]} groups."""
    out, size = [], 2
    cats = list(STRING_CATEGORIES)
    rng.shuffle(cats)
    for cat in cats:
        if size >= target:
            break
        values = []
        share = max(60, (target - size) // 2)
        grown = 0
        while grown < share:
            v = interesting_value(rng, cat)
            values.append(v)
            grown += len(v) + 3
        size += grown + 32
        out.append({"category": cat, "values": values})
    return out


def scan_results(rng, verdict, threat):
    out = []
    for name in rng.sample(AV_NAMES, rng.randint(2, 6)):
        c = verdict if rng.random() < 0.8 else rng.choice((0, 1, verdict))
        r = {"classification": c, "factor": rng.randint(0, 5),
             "ignored": rng.random() < 0.05, "name": name,
             "rca_factor": rng.randint(0, 10)}
        if c >= 2:
            r["result"] = threat
        # Spectra Analyze writes the type as an integer; Detect as a string.
        if rng.random() < 0.05:
            r["type"] = rng.randint(0, 6)
        else:
            r["type"] = rng.choice(SCAN_TYPES)
        if rng.random() < 0.6:
            r["version"] = "%d.%d.%d" % (rng.randint(1, 5), rng.randint(0, 99),
                                         rng.randint(0, 999))
        out.append(r)
    return out


def classification(rng, verdict, propagated_from):
    threat = rng.choice(THREATS)
    c = {"classification": verdict, "factor": 5 if verdict == 3 else
         rng.randint(0, 4), "propagated": propagated_from is not None,
         "rca_factor": rng.randint(6, 10) if verdict >= 2 else
         rng.randint(0, 5)}
    if propagated_from is not None:
        c["propagation_source"] = {"name": "sha1", "value": propagated_from}
    if verdict >= 2:
        c["result"] = threat
    c["scan_results"] = scan_results(rng, verdict, threat)
    return c


def indicators(rng, n):
    out = []
    for _ in range(n):
        reasons = []
        for _ in range(rng.randint(1, 4)):
            reasons.append({
                "category": rng.choice(REASON_CATEGORIES),
                "description": "Imports the following function: %s" %
                               rng.choice(APIS),
                "propagated": rng.random() < 0.2})
        out.append({"category": rng.randint(0, 22),
                    "description": rng.choice(INDICATOR_TEXT),
                    "id": rng.randint(1, 3000), "priority": rng.randint(1, 8),
                    "reasons": reasons, "relevance": rng.randint(0, 3)})
    return out


def metadata(rng, target):
    """An application block: PE sections, imports and resources, ~target."""
    sections = []
    for name in (".text", ".rdata", ".data", ".rsrc", ".reloc")[
            :rng.randint(2, 5)]:
        sections.append({"name": name, "entropy": rng.uniform(0, 8),
                         "flags": rng.getrandbits(32),
                         "physical_base": rng.getrandbits(20),
                         "physical_size": rng.getrandbits(18),
                         "relative_base": rng.getrandbits(20),
                         "relative_size": rng.getrandbits(18),
                         "hashes": hashes(rng)[1:4]})
    imports, size = [], 600 * len(sections)
    while size < target:
        apis = rng.sample(APIS, rng.randint(3, 12))
        imports.append({"name": "%s.dll" % word(rng), "apis": apis})
        size += 20 + sum(len(a) + 3 for a in apis)
    return {"application": {"capabilities": rng.getrandbits(32),
                            "pe": {"sections": sections, "imports": imports,
                                   "timestamp": 1262304000 +
                                   rng.randrange(500000000)}}}


def strings(rng, target):
    """Extracted strings, the filler that makes large full reports large."""
    out, size = [], 2
    while size < target:
        r = rng.random()
        if r < 0.5:
            v = " ".join(word(rng) for _ in range(rng.randint(1, 8)))
        elif r < 0.7:
            v = rng.choice(APIS)
        elif r < 0.85:
            v = url(rng)
        elif r < 0.95:
            v = win_path(rng)
        else:
            v = "%s\t%s \"%s\"" % (word(rng), hexstr(rng, 64), word(rng))
        out.append({"c": rng.randint(1, 40), "f": rng.randint(0, 3),
                    "o": rng.getrandbits(24), "v": v})
        size += len(v) + 34
    return out


def entry(rng, pos, parent, style, target, root_sha1, big_strings):
    """One tc_report entry of roughly target bytes."""
    ftype, fsub = rng.choice(FILE_TYPES)
    verdict = rng.choices((0, 1, 2, 3), (30, 40, 10, 20))[0]
    e = {}
    propagated = root_sha1 if pos == 0 and rng.random() < 0.2 else None
    e["classification"] = classification(rng, verdict, propagated)
    if style == "modern":
        e["index"] = pos
        if parent is not None:
            e["parent"] = parent
    n_ind = rng.randint(0, 3 if target < 4 * KB else 25)
    if n_ind:
        e["indicators"] = indicators(rng, n_ind)
    name = file_name(rng)
    info = {"file": {"entropy": rng.uniform(0, 8), "file_name": name,
                     "file_path": name if pos == 0 else
                     "%s/binary_layer/%s/%d" % (root_sha1[:16], rng.choice(
                         ("overlay", "resource", "section")), pos),
                     "file_subtype": fsub, "file_type": ftype,
                     "hashes": hashes(rng),
                     "size": rng.randint(200, 50000000)}}
    if style == "modern":
        info["identification"] = {"success": rng.random() < 0.9,
                                  "name": fsub, "author": "ReversingLabs",
                                  "version": "Generic"}
        info["unpacking"] = {"status": rng.randint(0, 2), "warnings": []}
    e["info"] = info
    used = 1800 + 220 * n_ind
    if rng.random() < 0.7 or big_strings:
        want = big_strings or rng.randint(150, max(200, target // 10))
        e["interesting_strings"] = interesting_strings(rng, want)
        used += want
    rest = max(0, target - used)
    # Legacy (summary) entries have no strings section, so their metadata
    # carries the whole weight.
    share = rest * 2 // 5 if style == "modern" else rest
    e["metadata"] = metadata(rng, share) if rest > 2 * KB else \
        {"application": {"capabilities": rng.getrandbits(32)}}
    if style == "modern":
        if rest > 2 * KB:
            e["strings"] = strings(rng, rest * 3 // 5)
        e["story"] = ("This file (SHA1: %s) was identified as %s %s. "
                      "There are %d extracted files." %
                      (hexstr(rng, 160), ftype, fsub, rng.randint(0, 200)))
        e["tags"] = {"ticore": rng.sample(TAGS, rng.randint(0, 5))}
    return e


def report_shape(rng):
    """Chooses a report's target size and entry count."""
    r = rng.random()
    if r < 0.60:
        size = rng.randint(23 * KB, 100 * KB)
    elif r < 0.90:
        size = rng.randint(100 * KB, 500 * KB)
    else:
        size = rng.randint(500 * KB, 1800 * KB)
    # A bare entry weighs about 2 KB, so a small report cannot hold many.
    most = max(1, min(200, size // (3 * KB)))
    if rng.random() < 0.35:
        n = 1
    else:
        n = rng.randint(1, most)
    return size, n


def report(rng, seq):
    size, n = report_shape(rng)
    # The entry builders estimate their sizes and overshoot by about 8%.
    size = size * 92 // 100
    style = "legacy" if rng.random() < 0.15 else "modern"
    root_sha1 = hexstr(rng, 160)
    root_share = rng.uniform(0.3, 0.6) if n > 1 else 1.0
    weights = [rng.random() + 0.1 for _ in range(n - 1)]
    wsum = sum(weights) or 1.0
    big = 0
    # About one report in 40 carries an interesting_strings value larger
    # than the 64 KB field limit, which the transform must shrink.
    if size > 200 * KB and rng.random() < 0.1:
        big = rng.randint(70 * KB, 150 * KB)
    entries = []
    for pos in range(n):
        if pos == 0:
            target = int(size * root_share)
            parent = None
        else:
            target = int(size * (1 - root_share) * weights[pos - 1] / wsum)
            parent = rng.randrange(pos) if rng.random() < 0.3 else 0
        entries.append(entry(rng, pos, parent, style, target, root_sha1,
                             big if pos == 0 else 0))
    t = {"tc_report": entries}
    if rng.random() < 0.1:
        t["task_id"] = str(rng.randint(1, 10 ** 7))
    else:
        t["task_id"] = rng.randint(1, 10 ** 7)
    submitted = 1767225600 + seq * 37 + rng.randint(0, 30)
    t["submitted"] = submitted
    t["processed"] = None if rng.random() < 0.03 else \
        submitted + rng.randint(0, 900)
    if style == "modern":
        t["worker_ip"] = ["10.%d.%d.%d" % (rng.randrange(256),
                                           rng.randrange(256),
                                           rng.randrange(1, 255))]
        t["worker_address"] = ["tiscale-worker%02d.corp.example" %
                               rng.randint(1, 12)]
        t["worker_hostname"] = "tiscale-worker%02d" % rng.randint(1, 12)
        t["direct_sender"] = ipv4(rng).split(":")[0]
        t["forwarded_for"] = [] if rng.random() < 0.7 else [ipv4(rng)]
    if rng.random() < 0.05:
        t["custom_data"] = {"ticket": "INC%07d" % rng.randrange(10 ** 7),
                            "source": word(rng)}
    return t, n, big > 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", required=True, help="output directory")
    ap.add_argument("--mb", type=float, default=100.0,
                    help="minimum corpus size in MB (10^6 bytes)")
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()

    rng = random.Random(args.seed)
    want = int(args.mb * 1e6)
    rdir = os.path.join(args.out, "reports")
    os.makedirs(rdir, exist_ok=True)
    meta_path = os.path.join(args.out, "meta.json")
    if os.path.exists(meta_path):
        os.unlink(meta_path)

    total = reports = records = 0
    sizes = []
    big_field = []
    paths = []
    with open(os.path.join(args.out, "stream.ndjson"), "wb") as stream:
        while total < want:
            t, n, big = report(rng, reports)
            data = (json.dumps(t, ensure_ascii=False, separators=(",", ":"),
                               allow_nan=False) + "\n").encode("utf-8")
            path = os.path.join(rdir, "r%05d.json" % reports)
            with open(path, "wb") as f:
                f.write(data)
            stream.write(data)
            paths.append(path)
            if big:
                big_field.append(path)
            sizes.append(len(data))
            total += len(data)
            reports += 1
            records += n
    with open(os.path.join(args.out, "manifest.txt"), "w") as f:
        f.write("".join(p + "\n" for p in paths))
    sizes.sort()
    meta = {"seed": args.seed, "mb": args.mb, "bytes": total,
            "reports": reports, "records": records,
            "min_report_bytes": sizes[0], "max_report_bytes": sizes[-1],
            "median_report_bytes": sizes[len(sizes) // 2],
            "big_field_reports": big_field}
    with open(meta_path + ".tmp", "w") as f:
        json.dump(meta, f, indent=1)
        f.write("\n")
    os.rename(meta_path + ".tmp", meta_path)
    json.dump(meta, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
