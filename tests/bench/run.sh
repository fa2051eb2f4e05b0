#!/usr/bin/env bash
# run.sh: the transform throughput benchmark (`make bench`).
#
# Measures, in one run and on the same bytes (a corpus of typical Spectra
# Detect reports, >= 100 MB of uncompressed JSON):
#   transform         the C transform in-process (bench_transform.c), each
#                     report read into memory and run through transform_buffer
#   python            the same mapping in plain Python 3 (baseline_transform.py),
#                     the way the replaced Azure Function does it
#   jansson           json_loadb + json_dumpb of every report (bench_jansson.c)
#   yajl              yajl validate-only, no callbacks (bench_yajl.c)
# and, for information, transform_file over the same files (streamed from
# disk), transform over the whole corpus as one NDJSON stream, and yajl over
# that stream.
#
# Each tool runs RUNS times (default 5; fewer if that would not fit the time
# budget), interleaved round by round so that noise from other work on the
# machine spreads over every tool alike. For each tool it prints the median
# MB/s (MB = 10^6 bytes of input JSON), the min-max, and the median CPU
# seconds (user+sys, getrusage around the measured loop, start-up excluded),
# then the ratios against their targets: transform/python >= 3.0 and
# yajl/transform <= 1.5, marked PASS or MISS.
#
# It also checks correctness: the transform and the baseline must produce
# the same number of records (the corpus generator's count), and for a
# sample of about 20 reports the C records (from `spectra-sentinel transform`
# when the CLI works, else from bench_transform -d) must equal the
# baseline's as parsed JSON. And since skipping validation would make any
# transform look fast, it checks that two broken copies of the largest
# report (an invalid UTF-8 byte past the middle, a truncation) are rejected
# with no record emitted.
#
# Exit status: 0 when everything ran, whether the targets were met or not
# (this is a measurement, not a test); 1 when a build or a tool failed or
# the record counts disagree. Set BENCH_STRICT=1 to make record mismatches
# in the sample and accepted broken copies fatal too.
#
# Environment: BUILD (build directory, default build), CC (default cc),
# BENCH_MB (corpus size, default 100), BENCH_SEED (default 1), BENCH_RUNS
# (default 5), BENCH_BUDGET (seconds for the timed runs, default 150),
# BENCH_SAMPLE (reports in the equivalence check, default 20), BENCH_GZIP
# (0 skips the compression benchmark), BENCH_GZIP_RUNS (default 3).
#
# When tests/bench/bench_gzip.c exists, its compression benchmark (see
# docs/performance.md, "Compression") runs after the transform figures, on
# the records the transform makes of this corpus (bench_gzip -i), with
# GZIP_RUNS runs so that the whole of `make bench` stays within about five
# minutes on two cores.
#
# The corpus is cached under bench-out/ (gitignored) and generated only when
# missing. Results are also written to bench-out/results-latest.txt.
#
# Then the end-to-end benchmark (tests/bench/e2e.sh: Azurite -> daemon ->
# Logs Ingestion fake against the Azure SDK peer, memory and scaling runs;
# see docs/performance.md, "End to end") runs on the same corpus, unless
# BENCH_E2E=0; its failure makes this script fail. BENCH_QUICK=1 is a smoke
# check of a few minutes: one round of each tool here (RUNS 1, SAMPLE 5,
# GZIP_RUNS 1) and e2e.sh's quick mode.
set -euo pipefail

top=$(cd "$(dirname "$0")/../.." && pwd)
cd "$top"
BUILD=${BUILD:-build}
CC=${CC:-cc}
PY=/usr/bin/python3
MB=${BENCH_MB:-100}
SEED=${BENCH_SEED:-1}
QUICK=${BENCH_QUICK:-0}
if [ "$QUICK" = 1 ]; then
  RUNS=${BENCH_RUNS:-1}
  SAMPLE=${BENCH_SAMPLE:-5}
  GZIP_RUNS=${BENCH_GZIP_RUNS:-1}
else
  RUNS=${BENCH_RUNS:-5}
  SAMPLE=${BENCH_SAMPLE:-20}
  GZIP_RUNS=${BENCH_GZIP_RUNS:-3}
fi
BUDGET=${BENCH_BUDGET:-150}
STRICT=${BENCH_STRICT:-0}
GZIP=${BENCH_GZIP:-1}
E2E=${BENCH_E2E:-1}

out=bench-out
corpus=$out/corpus-s$SEED-${MB}mb
bdir=$BUILD/bench
raw=$out/runs-latest.txt
summary=$out/results-latest.txt
tmp=$(mktemp -d "${TMPDIR:-/tmp}/ss-bench.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$out" "$bdir"
start=$(date +%s)

say() { printf '%s\n' "$*"; }
die() { printf 'bench: %s\n' "$*" >&2; exit 1; }

# --- build --------------------------------------------------------------
# The drivers link the project's static library (built by the Makefile, so
# with its flags) and are compiled with the project's warnings, -O2.
say "== build ($CC, $BUILD)"
make --no-print-directory BUILD="$BUILD" "$BUILD/libspectra.a" >/dev/null ||
  die "building $BUILD/libspectra.a failed"
pkgs=(libcurl jansson openssl libuv yaml-0.1 zlib expat libdeflate yajl)
libs=$(pkg-config --libs "${pkgs[@]}" 2>/dev/null) ||
  libs="-lcurl -ljansson -lssl -lcrypto -luv -lyaml -lz -lexpat -ldeflate -lyajl"
cflags="-std=c11 -O2 -g -fno-strict-aliasing -D_GNU_SOURCE -Iinclude
        -Wall -Wextra -Werror -Wstrict-prototypes -Wmissing-prototypes -Wshadow
        -Wformat=2 -Wno-format-nonliteral
        $(pkg-config --cflags "${pkgs[@]}" 2>/dev/null || true)"
for d in transform jansson yajl; do
  # shellcheck disable=SC2086
  $CC $cflags -o "$bdir/bench_$d" "tests/bench/bench_$d.c" \
    "$BUILD/libspectra.a" $libs -lpthread -lm ||
    die "building bench_$d failed (is src/transform.c complete?)"
done

# --- corpus -------------------------------------------------------------
if [ ! -f "$corpus/meta.json" ]; then
  say "== generating a ${MB} MB corpus (seed $SEED) in $corpus"
  rm -rf "$corpus"
  "$PY" tests/bench/gen_reports.py --out "$corpus" --mb "$MB" --seed "$SEED" \
    >/dev/null || die "corpus generation failed"
fi
manifest=$corpus/manifest.txt
stream=$corpus/stream.ndjson
read -r nbytes nreports nrecords < <("$PY" -c '
import json, sys
m = json.load(open(sys.argv[1]))
print(m["bytes"], m["reports"], m["records"])' "$corpus/meta.json")
say "corpus: $corpus: $nreports reports, $nbytes bytes, $nrecords records"

# Read everything once so that every tool finds it in the page cache.
xargs -a "$manifest" cat >/dev/null
cat "$stream" >/dev/null

# --- timed runs ---------------------------------------------------------
# name|primary(1)/informational(0)|command
tools=(
  "transform|1|$bdir/bench_transform -m buffer -l $manifest"
  "python|1|$PY tests/bench/baseline_transform.py --list $manifest"
  "jansson|1|$bdir/bench_jansson -l $manifest"
  "yajl|1|$bdir/bench_yajl -l $manifest"
  "transform-file|0|$bdir/bench_transform -m file -l $manifest"
  "transform-stream|0|$bdir/bench_transform -m file $stream"
  "yajl-stream|0|$bdir/bench_yajl $stream"
)

: >"$raw"
failed=0
run_round() {
  local round=$1 t name cmd line
  for t in "${tools[@]}"; do
    name=${t%%|*}
    cmd=${t#*|*|}
    # shellcheck disable=SC2086
    if ! line=$($cmd 2>"$tmp/err"); then
      say "bench: $name failed (round $round):"
      sed 's/^/  /' "$tmp/err" | head -20
      failed=1
      continue
    fi
    printf '%s round=%s %s\n' "$name" "$round" "$line" >>"$raw"
  done
}

say "== load before the runs: $(cut -d' ' -f1-3 /proc/loadavg) ($(nproc) cores)"
t0=$(date +%s.%N)
run_round 1
t1=$(date +%s.%N)
[ $failed = 0 ] || die "a tool failed; no figures"
# One round took t1 - t0; run as many more as fit the budget, up to RUNS.
read -r runs secs < <("$PY" -c '
import sys
rnd = float(sys.argv[2]) - float(sys.argv[1])
budget, want = float(sys.argv[3]), int(sys.argv[4])
print(max(1, min(want, int(budget / max(rnd, 1e-3)))), "%.1f" % rnd)' \
  "$t0" "$t1" "$BUDGET" "$RUNS")
say "== $runs rounds (one round: $secs s)"
for ((r = 2; r <= runs; r++)); do
  run_round "$r"
done
say "== load after the runs: $(cut -d' ' -f1-3 /proc/loadavg)"

# --- summary ------------------------------------------------------------
set +e
"$PY" - "$raw" "$nbytes" "$nrecords" >"$tmp/summary" <<'EOF'
import statistics, sys

raw, nbytes, nrecords = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
runs = {}
order = []
for line in open(raw):
    parts = line.split()
    name = parts[0]
    kv = dict(p.split("=", 1) for p in parts[1:])
    if name not in runs:
        runs[name] = []
        order.append(name)
    runs[name].append(kv)

print("%-17s %8s %17s %8s %9s %5s  %s" % (
    "tool", "MB/s", "min-max", "CPU s", "MB/CPU-s", "runs", "records"))
med = {}
medcpu = {}
bad = 0
for name in order:
    rs = runs[name]
    rates = [int(r["bytes"]) / 1e6 / float(r["wall"]) for r in rs]
    cpu = [float(r["user"]) + float(r["sys"]) for r in rs]
    recs = sorted(set(int(r["records"]) for r in rs))
    byts = sorted(set(int(r["bytes"]) for r in rs))
    med[name] = statistics.median(rates)
    medcpu[name] = nbytes / 1e6 / max(statistics.median(cpu), 1e-6)
    print("%-17s %8.1f %8.1f-%-8.1f %8.2f %9.1f %5d  %s" % (
        name, med[name], min(rates), max(rates), statistics.median(cpu),
        medcpu[name], len(rs), ",".join(map(str, recs)) if not
        name.startswith(("yajl", "jansson")) else "-"))
    if byts != [nbytes]:
        print("  ERROR: %s read %s bytes, the corpus has %d" %
              (name, byts, nbytes))
        bad = 1
    if name.startswith(("transform", "python")) and recs != [nrecords]:
        print("  ERROR: %s produced %s records, the corpus has %d" %
              (name, recs, nrecords))
        bad = 1

def ratio(label, a, b, target, ge):
    if a not in med or b not in med:
        return
    r = med[a] / med[b]
    ok = r >= target if ge else r <= target
    # The same ratio on CPU time, which other work on a shared machine
    # disturbs less than wall time.
    print("%-28s %6.2f  target %s %.1f  %-4s  (on CPU time: %.2f)" % (
        label, r, ">=" if ge else "<=", target, "PASS" if ok else "MISS",
        medcpu[a] / medcpu[b]))

print()
ratio("transform/python", "transform", "python", 3.0, True)
ratio("yajl/transform", "yajl", "transform", 1.5, False)
if "transform-stream" in med and "yajl-stream" in med:
    r = med["yajl-stream"] / med["transform-stream"]
    print("%-28s %6.2f  (information)" % ("yajl/transform, one stream", r))
if "transform" in med and "jansson" in med:
    print("%-28s %6.2f  (information)" % ("transform/jansson",
                                           med["transform"] / med["jansson"]))
sys.exit(bad)
EOF
counts_ok=$?
set -e
cat "$tmp/summary"

# --- equivalence on a sample --------------------------------------------
# About SAMPLE reports: evenly spread over the corpus, plus the largest
# report and the reports with a field over 64 KB (the shrink path).
"$PY" - "$corpus/meta.json" "$manifest" "$SAMPLE" >"$tmp/sample" <<'EOF'
import json, os, sys
meta = json.load(open(sys.argv[1]))
paths = [l.strip() for l in open(sys.argv[2]) if l.strip()]
n = int(sys.argv[3])
big = meta.get("big_field_reports", [])[:3]
largest = max(paths, key=os.path.getsize)
rest = max(1, n - len(big) - 1)
step = max(1, len(paths) // rest)
pick = paths[::step][:rest] + [largest] + big
seen = []
for p in pick:
    if p not in seen:
        seen.append(p)
print("\n".join(seen))
EOF
cli="$BUILD/spectra-sentinel"
first=$(head -n1 "$tmp/sample")
if [ -x "$cli" ] && "$cli" transform "$first" >"$tmp/cli.ndjson" 2>/dev/null &&
   [ -s "$tmp/cli.ndjson" ]; then
  via="$cli transform"
  produce() { "$cli" transform "$1"; }
else
  via="$bdir/bench_transform -d"
  produce() { "$bdir/bench_transform" -d "$1"; }
fi
say ""
say "== equivalence: $(wc -l <"$tmp/sample") reports, C records via $via"
nsample=0
nbad=0
while read -r f; do
  nsample=$((nsample + 1))
  if ! produce "$f" >"$tmp/c.ndjson" 2>"$tmp/err"; then
    say "  $f: the C transform failed: $(head -c 300 "$tmp/err")"
    nbad=$((nbad + 1))
    failed=1
    continue
  fi
  if ! "$PY" tests/bench/baseline_transform.py --compare "$f" \
       "$tmp/c.ndjson" >"$tmp/cmp" 2>&1; then
    nbad=$((nbad + 1))
    sed 's/^/  /' "$tmp/cmp" | head -8
  fi
done <"$tmp/sample"
if [ $nbad = 0 ]; then
  say "equivalence: PASS ($nsample of $nsample reports give the same records)"
else
  say "equivalence: MISMATCH in $nbad of $nsample reports"
fi

# --- bad input is still rejected -----------------------------------------
# A transform can look fast by not validating what it skips. yajl checks
# every byte, so the comparison is fair only if the transform rejects, with
# no record emitted, the largest report of the corpus broken deep inside:
# an invalid UTF-8 byte in a string past the middle, and the report cut in
# half.
big=$("$PY" -c '
import os, sys
print(max((l.strip() for l in open(sys.argv[1]) if l.strip()),
          key=os.path.getsize))' "$manifest")
"$PY" - "$big" "$tmp" <<'EOF'
import sys
data = open(sys.argv[1], "rb").read()
at = data.index(b'":"', len(data) // 2) + 3
open(sys.argv[2] + "/bad-utf8.json", "wb").write(data[:at] + b"\xff" + data[at:])
open(sys.argv[2] + "/truncated.json", "wb").write(data[:len(data) // 2])
EOF
nreject=0
for bad in bad-utf8 truncated; do
  if produce "$tmp/$bad.json" >"$tmp/bad.ndjson" 2>"$tmp/err"; then
    say "rejection: MISS: $bad copy of $big was accepted"
  elif [ -s "$tmp/bad.ndjson" ]; then
    say "rejection: MISS: $bad copy of $big emitted records before failing"
  else
    nreject=$((nreject + 1))
  fi
done
if [ $nreject = 2 ]; then
  say "rejection: PASS (invalid UTF-8 and truncation rejected, no records)"
fi

# --- compression (tests/bench/bench_gzip.c, kept by its author) ----------
: >"$tmp/gzip"
if [ "$GZIP" = 1 ] && [ -f tests/bench/bench_gzip.c ]; then
  say ""
  say "== compression: bench_gzip -r $GZIP_RUNS -i (this corpus's records)"
  # shellcheck disable=SC2086
  if ! $CC $cflags -o "$bdir/bench_gzip" tests/bench/bench_gzip.c \
       "$BUILD/libspectra.a" $libs -lpthread -lm; then
    say "bench: building bench_gzip failed"
    failed=1
  elif ! "$bdir/bench_transform" -d "$stream" >"$tmp/records.ndjson"; then
    say "bench: the transform failed on $stream"
    failed=1
  elif ! "$bdir/bench_gzip" -r "$GZIP_RUNS" -i "$tmp/records.ndjson" \
         >"$tmp/gzip" 2>&1; then
    cat "$tmp/gzip"
    say "bench: bench_gzip failed"
    failed=1
  else
    cat "$tmp/gzip"
  fi
fi

{
  say "spectra-sentinel transform benchmark, $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  say "corpus: $nreports reports, $nbytes bytes, $nrecords records (seed $SEED)"
  say "machine: $(nproc) cores, $(uname -m), load $(cut -d' ' -f1-3 /proc/loadavg)"
  cat "$tmp/summary"
  say "equivalence: $nbad of $nsample sampled reports differ"
  say "rejection of broken copies: $nreject of 2"
  if [ -s "$tmp/gzip" ]; then
    say ""
    cat "$tmp/gzip"
  fi
} >"$summary"
say ""
say "bench: done in $(($(date +%s) - start)) s; figures in $summary"

e2e_rc=0
if [ "$E2E" = 1 ]; then
  say ""
  BUILD=$BUILD BENCH_QUICK=$QUICK BENCH_MB=$MB BENCH_SEED=$SEED \
    bash tests/bench/e2e.sh || e2e_rc=$?
fi

if [ $failed != 0 ] || [ $counts_ok != 0 ]; then
  say "bench: FAILED (a tool failed or the record counts disagree)"
  exit 1
fi
if [ $e2e_rc != 0 ]; then
  say "bench: FAILED (the end-to-end benchmark, tests/bench/e2e.sh)"
  exit 1
fi
if { [ $nbad != 0 ] || [ $nreject != 2 ]; } && [ "$STRICT" = 1 ]; then
  say "bench: FAILED (records differ or bad input accepted; BENCH_STRICT=1)"
  exit 1
fi
exit 0
