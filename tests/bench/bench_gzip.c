/*
 * bench_gzip.c: which gzip codec and level compress request bodies best.
 *
 * Every request body the daemon sends is gzip-compressed on a thread-pool
 * worker (SPEC section 3). This program measures, on the same ~100 MB of
 * realistic 1 MB bodies, how fast (MB/s of uncompressed JSON) and how well
 * (ratio = uncompressed / compressed) five candidates do:
 *   libdeflate levels 1, 3 and 6, through gzip_compress (the daemon's code
 *   path, output allocation included), and zlib levels 1 and 6 (a reused
 *   deflate stream, deflateReset per body, output sized by deflateBound).
 * The figures and the level chosen are in docs/performance.md,
 * "Compression".
 *
 * The bodies are built by the real batcher (batcher.h, max_request_bytes
 * 1,000,000) from synthetic records shaped like the transform's output for
 * Spectra Detect reports (transform.h; the columns of SPEC section 2 only):
 * task-level fields repeated on every record of a task, then info (file
 * names, hex digests, sizes), classification (scan_results of several
 * engines, threat names), index/parent, story, tags and interesting_strings
 * (URLs, IP addresses, paths, e-mail addresses). The vocabulary follows
 * tests/bench/gen_reports.py, which models the samples in the project's
 * report-format notes. Hex digests and random numbers are incompressible,
 * the repeated keys and names are not, as in real reports.
 *
 * Each run compresses every body once per candidate; runs are interleaved
 * (candidate by candidate within a run) so that noise from other work on a
 * shared machine spreads over all of them. For each candidate it prints the
 * median and range over the runs of MB/s by thread CPU time (the cost to a
 * worker thread, which other processes do not inflate) and by wall time,
 * the ratio, and the CPU milliseconds per 1 MB body. Every output is
 * decompressed once with zlib (gzip_decompress) and compared with its input
 * before anything is timed.
 *
 * With -i FILE the records come instead from FILE, NDJSON with one record
 * per line, such as the output of `spectra-sentinel transform` over a
 * report corpus (tests/bench/gen_reports.py); the file is read again from
 * the start as often as needed to reach the size asked for (each body is
 * compressed on its own, so repeats do not flatter the ratio).
 *
 * Build (not part of the Makefile yet):
 *   cc -std=c11 -D_GNU_SOURCE -O2 -Iinclude -o bench_gzip \
 *     tests/bench/bench_gzip.c src/gzip.c src/batcher.c src/buf.c src/err.c \
 *     -ldeflate -lz
 * Usage: bench_gzip [-m MB] [-r RUNS] [-s SEED] [-i RECORDS.ndjson]
 *        (defaults 100 MB, 5 runs, seed 1, synthetic records)
 * Exit status: 0 measured, 1 a failure (allocation, codec, round trip), 2
 * usage.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <zlib.h>

#include "batcher.h"
#include "buf.h"
#include "err.h"
#include "gzip.h"

#define MAX_RECORD ((size_t)4 * 1024 * 1024)
#define MAX_RUNS 25

/* ---- a deterministic PRNG (xorshift64*) ---- */

static uint64_t rng_state = 1;

static uint64_t
rng(void)
{
  rng_state ^= rng_state >> 12;
  rng_state ^= rng_state << 25;
  rng_state ^= rng_state >> 27;
  return rng_state * 2685821657736338717ULL;
}

/* A uniform integer in [lo, hi]. */
static int64_t
rng_int(int64_t lo, int64_t hi)
{
  return lo + (int64_t)(rng() % (uint64_t)(hi - lo + 1));
}

/* True with probability pct percent. */
static int
rng_pct(unsigned pct)
{
  return rng() % 100 < pct;
}

#define PICK(a) ((a)[rng() % (sizeof(a) / sizeof((a)[0]))])

/* ---- the vocabulary of tests/bench/gen_reports.py ---- */

static const char *const words[] = {
  "kernel32", "user32", "advapi32", "ws2_32", "wininet", "ntdll", "shell32",
  "ole32", "crypt32", "config", "update", "install", "payload", "loader",
  "stage", "service", "driver", "session", "token", "account", "invoice",
  "order", "report", "backup", "archive", "document", "setup", "client",
  "server", "agent", "module", "plugin", "helper", "runtime", "cache",
  "temp", "data", "system", "public",
};

static const char *const file_types[][2] = {
  { "PE", "Exe" }, { "PE", "Dll" }, { "PE+", "Exe" }, { "PE+", "Dll" },
  { "Text", "XML" }, { "Text", "JavaScript" }, { "Text", "PowerShell" },
  { "Text", "HTML" }, { "Document", "PDF" }, { "Document", "Word" },
  { "Archive", "ZIP" }, { "Archive", "7-Zip" }, { "Image", "PNG" },
  { "Binary", "Data" }, { "ELF", "Executable" },
};

static const char *const av_names[] = {
  "Antivirus (based on the RCA Classify)", "TitaniumCore Machine Learning",
  "Next-Generation Antivirus", "TitaniumCloud", "drweb", "clamav",
  "TitaniumCore RHA1", "TitaniumCore Certificate Validation",
};

static const char *const scan_types[] = { "av", "internal", "ng_av", "cloud" };

static const char *const threats[] = {
  "Win32.Downloader.Unruy", "Win32.Trojan.Graftor", "Win64.Coinminer.Malxmr",
  "Win32.Malware.Heuristic", "Script-JS.Trojan.Nemucod",
  "Document-Word.Downloader.Emotet", "Win32.Ransomware.Lockbit",
  "Linux.Backdoor.Mirai", "ByteCode-MSIL.Infostealer.Agenttesla",
};

static const char *const tags[] = {
  "crypto-aes", "capability-network", "capability-execution",
  "anonymous-email", "cert-expired", "cert-invalid", "packed", "installer",
  "macros", "overlay", "stripped", "obfuscated", "persistence-registry",
  "antidebug",
};

static const char *const string_categories[] = {
  "http", "https", "ipv4", "mailto", "domain", "path", "registry", "email",
};

static const char *const unicode_names[] = {
  "счёт-фактура", "文档", "Rechnung_März", "factura_año", "προσφορά",
  "請求書",
};

static const char *const tlds[] = { "com", "net", "org", "ru", "xyz", "info" };

/* ---- record generation (errors are sticky in the buffer's rc) ---- */

struct out {
  struct buf b;
  int rc;
};

static void
put(struct out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void
put(struct out *o, const char *fmt, ...)
{
  va_list ap;

  if(o->rc)
    return;
  va_start(ap, fmt);
  o->rc = buf_vprintf(&o->b, fmt, ap);
  va_end(ap);
}

/* Appends bits/4 random lowercase hex digits. */
static void
put_hex(struct out *o, int bits)
{
  char h[65];

  for(int i = 0; i < bits / 4; i++)
    h[i] = "0123456789abcdef"[rng() & 15];
  h[bits / 4] = '\0';
  put(o, "%s", h);
}

static void
put_file_name(struct out *o)
{
  uint64_t r = rng() % 100;

  if(r < 8) {
    put(o, "%s_%d.%s", PICK(unicode_names), (int)rng_int(0, 999),
        rng_pct(50) ? "pdf" : "docx");
  }
  else if(r < 50) {
    put_hex(o, 32);
    put(o, "-");
    put_hex(o, 16);
    put(o, "-");
    put_hex(o, 16);
    put(o, "_%d", (int)rng_int(0, 9999));
  }
  else {
    put(o, "%s_%s.%s", PICK(words), PICK(words),
        rng_pct(50) ? "exe" : "dll");
  }
}

/* One interesting_strings value of a category, as a JSON string. */
static void
put_interesting(struct out *o, const char *cat)
{
  if(!strcmp(cat, "http") || !strcmp(cat, "https")) {
    put(o, "\"%s://%s.%s.%s/%s/%s.php?id=%d\"", cat, PICK(words),
        PICK(words), PICK(tlds), PICK(words), PICK(words),
        (int)rng_int(0, 1 << 20));
  }
  else if(!strcmp(cat, "ipv4")) {
    put(o, "\"%d.%d.%d.%d", (int)rng_int(0, 255), (int)rng_int(0, 255),
        (int)rng_int(0, 255), (int)rng_int(0, 255));
    if(rng_pct(30))
      put(o, ":%d", rng_pct(50) ? 443 : 8080);
    put(o, "\"");
  }
  else if(!strcmp(cat, "mailto") || !strcmp(cat, "email")) {
    put(o, "\"%s.%s@%s.com\"", PICK(words), PICK(words), PICK(words));
  }
  else if(!strcmp(cat, "domain")) {
    put(o, "\"%s.%s.com\"", PICK(words), PICK(words));
  }
  else if(!strcmp(cat, "registry")) {
    put(o, "\"HKEY_LOCAL_MACHINE\\\\SOFTWARE\\\\Microsoft\\\\Windows\\\\"
        "CurrentVersion\\\\Run\\\\%s\"", PICK(words));
  }
  else {
    put(o, "\"C:\\\\Users\\\\%s\\\\AppData\\\\Local\\\\Temp\\\\%s\\\\%s.%s\"",
        PICK(words), PICK(words), PICK(words), rng_pct(50) ? "exe" : "tmp");
  }
}

/* About target bytes of [{"category":..,"values":[..]},...]. */
static void
put_interesting_strings(struct out *o, size_t target)
{
  size_t start = o->b.len, ncat = 0;
  const size_t ncats = sizeof(string_categories) /
                       sizeof(string_categories[0]);
  size_t first = (size_t)(rng() % ncats);

  put(o, "[");
  while(!o->rc && o->b.len - start < target && ncat < ncats) {
    const char *cat = string_categories[(first + ncat) % ncats];
    size_t share = (target - (o->b.len - start)) / 2, begun;

    if(share < 60)
      share = 60;
    put(o, "%s{\"category\":\"%s\",\"values\":[", ncat ? "," : "", cat);
    begun = o->b.len;
    for(int v = 0; !o->rc && o->b.len - begun < share; v++) {
      if(v)
        put(o, ",");
      put_interesting(o, cat);
    }
    put(o, "]}");
    ncat++;
  }
  put(o, "]");
}

struct task {
  char task_id[24];
  int64_t submitted, processed;
  int modern;               /* newer appliance: index/parent/story/tags */
  char worker[8];           /* the worker's number, "01".."12" */
  char root_sha1[41];
};

/* A new task (report) of sequence number seq, 37 s after the previous. */
static void
new_task(struct task *t, uint64_t seq)
{
  /* The transform turns an integer task_id into its decimal string. */
  snprintf(t->task_id, sizeof(t->task_id), "%d", (int)rng_int(1, 10000000));
  t->submitted = 1767225600 + (int64_t)seq * 37 + rng_int(0, 30);
  t->processed = t->submitted + rng_int(0, 900);
  t->modern = !rng_pct(15);
  for(int i = 0; i < 40; i++)
    t->root_sha1[i] = "0123456789abcdef"[rng() & 15];
  t->root_sha1[40] = '\0';
  snprintf(t->worker, sizeof(t->worker), "%02d", (int)rng_int(1, 12));
}

/* Writes one record of task t, entry pos, as the transform would emit it. */
static int
gen_record(struct out *o, const struct task *t, int pos, char ts[21])
{
  const char *const *ft = file_types[rng() % (sizeof(file_types) /
                                              sizeof(file_types[0]))];
  int verdict = (int)(rng() % 100), nscan;
  const char *threat = PICK(threats);

  verdict = verdict < 30 ? 0 : verdict < 70 ? 1 : verdict < 80 ? 2 : 3;
  buf_reset(&o->b);
  o->rc = 0;
  put(o, "{\"TimeGenerated\":\"%s\",\"task_id\":\"%s\",\"submitted\":%" PRId64
      ",\"processed\":%" PRId64 ",\"process_duration\":%" PRId64, ts,
      t->task_id, t->submitted, t->processed, t->processed - t->submitted);
  if(t->modern) {
    put(o, ",\"direct_sender\":\"%d.%d.%d.%d\"", (int)(t->submitted % 223),
        (int)(t->submitted / 7 % 256), (int)(t->submitted / 11 % 256),
        (int)(t->submitted / 13 % 256));
    put(o, ",\"worker_address\":[\"tiscale-worker%s.corp.example\"]"
        ",\"worker_hostname\":\"tiscale-worker%s\""
        ",\"worker_ip\":[\"10.%d.%d.%d\"],\"forwarded_for\":[]",
        t->worker, t->worker, (int)(t->submitted % 256),
        (int)(t->submitted / 3 % 256), (int)(t->submitted / 5 % 254 + 1));
  }
  /* info */
  put(o, ",\"info\":{\"file\":{\"entropy\":%.15g,\"file_name\":\"",
      (double)rng_int(0, 8000000) / 1000000.0);
  put_file_name(o);
  if(pos == 0)
    put(o, "\",\"file_path\":\"/scratch/%.16s\"", t->root_sha1);
  else
    put(o, "\",\"file_path\":\"%.16s/binary_layer/%s/%d\"", t->root_sha1,
        rng_pct(50) ? "resource" : "overlay", pos);
  put(o, ",\"file_subtype\":\"%s\",\"file_type\":\"%s\",\"hashes\":["
      "{\"name\":\"imphash\",\"value\":\"", ft[1], ft[0]);
  put_hex(o, 128);
  put(o, "\"},{\"name\":\"md5\",\"value\":\"");
  put_hex(o, 128);
  put(o, "\"},{\"name\":\"rha0\",\"value\":\"");
  put_hex(o, 160);
  put(o, "\"},{\"name\":\"sha1\",\"value\":\"");
  if(pos == 0)
    put(o, "%s", t->root_sha1);
  else
    put_hex(o, 160);
  put(o, "\"},{\"name\":\"sha256\",\"value\":\"");
  put_hex(o, 256);
  put(o, "\"}],\"size\":%d}", (int)rng_int(200, 50000000));
  if(t->modern)
    put(o, ",\"identification\":{\"success\":%s,\"name\":\"%s\",\"author\":"
        "\"ReversingLabs\",\"version\":\"Generic\"},\"unpacking\":"
        "{\"status\":%d,\"warnings\":[]}", rng_pct(90) ? "true" : "false",
        ft[1], (int)rng_int(0, 2));
  put(o, "}");
  /* classification */
  put(o, ",\"classification\":{\"classification\":%d,\"factor\":%d,"
      "\"propagated\":false,\"rca_factor\":%d", verdict,
      verdict == 3 ? 5 : (int)rng_int(0, 4),
      verdict >= 2 ? (int)rng_int(6, 10) : (int)rng_int(0, 5));
  if(verdict >= 2)
    put(o, ",\"result\":\"%s\"", threat);
  put(o, ",\"scan_results\":[");
  nscan = (int)rng_int(2, 6);
  for(int i = 0; i < nscan; i++) {
    int c = rng_pct(80) ? verdict : (int)rng_int(0, 3);

    put(o, "%s{\"classification\":%d,\"factor\":%d,\"ignored\":%s,"
        "\"name\":\"%s\",\"rca_factor\":%d", i ? "," : "", c,
        (int)rng_int(0, 5), rng_pct(5) ? "true" : "false", PICK(av_names),
        (int)rng_int(0, 10));
    if(c >= 2)
      put(o, ",\"result\":\"%s\"", threat);
    put(o, ",\"type\":\"%s\"", PICK(scan_types));
    if(rng_pct(60))
      put(o, ",\"version\":\"%d.%d.%d\"", (int)rng_int(1, 5),
          (int)rng_int(0, 99), (int)rng_int(0, 999));
    put(o, "}");
  }
  put(o, "]}");
  /* index, parent */
  put(o, ",\"index\":%d", pos);
  if(t->modern && pos > 0)
    put(o, ",\"parent\":%d", rng_pct(30) ? (int)rng_int(0, pos - 1) : 0);
  if(t->modern) {
    put(o, ",\"story\":\"This file (SHA1: ");
    put_hex(o, 160);
    put(o, ") was identified as %s %s. There are %d extracted files.\"",
        ft[0], ft[1], (int)rng_int(0, 200));
    put(o, ",\"tags\":{\"ticore\":[");
    for(int i = 0, n = (int)rng_int(0, 5); i < n; i++)
      put(o, "%s\"%s\"", i ? "," : "", PICK(tags));
    put(o, "]}");
  }
  /* interesting_strings: in most entries; big in a few (shrunk to 64 KB). */
  if(rng_pct(70)) {
    uint64_t r = rng() % 100;
    size_t target = r < 70 ? (size_t)rng_int(150, 1500)
                  : r < 95 ? (size_t)rng_int(1500, 12000)
                  : (size_t)rng_int(12000, 60000);

    put(o, ",\"interesting_strings\":");
    put_interesting_strings(o, target);
  }
  put(o, "}");
  return o->rc;
}

/* ---- bodies ---- */

struct body {
  char *json;
  size_t len;
};

struct corpus {
  struct body *bodies;
  size_t n, cap;
  size_t bytes;
  uint64_t records;
};

static int
keep_body(void *ud, const struct batcher_body *b)
{
  struct corpus *c = ud;
  struct body *nb;

  if(c->n == c->cap) {
    c->cap = c->cap ? c->cap * 2 : 128;
    nb = realloc(c->bodies, c->cap * sizeof(*nb));
    if(!nb)
      return ERR_NOMEM;
    c->bodies = nb;
  }
  c->bodies[c->n].json = malloc(b->len);
  if(!c->bodies[c->n].json)
    return ERR_NOMEM;
  memcpy(c->bodies[c->n].json, b->json, b->len);
  c->bodies[c->n].len = b->len;
  c->n++;
  c->bytes += b->len;
  c->records += b->count;
  return 0;
}

static int
no_reject(void *ud, uint64_t seq, const char *json, size_t len,
          const char *reason)
{
  (void)ud;
  (void)json;
  (void)len;
  fprintf(stderr, "bench_gzip: record %" PRIu64 " rejected: %s\n", seq,
          reason);
  return ERR_TOOBIG;
}

/* Builds bodies until they hold at least want bytes. */
static int
build_corpus(struct corpus *c, size_t want)
{
  struct batcher *b = NULL;
  struct out o;
  struct task t;
  uint64_t seq = 0;
  char ts[21];
  int rc;

  memset(&o, 0, sizeof(o));
  buf_init(&o.b, MAX_RECORD);
  rc = batcher_create(BATCHER_DEFAULT_MAX_REQUEST, keep_body, no_reject, c,
                      &b);
  while(!rc && c->bytes < want) {
    /* A report: one task, 1..200 entries (most reports are small). */
    int n = rng_pct(35) ? 1 : (int)rng_int(1, rng_pct(80) ? 12 : 200);

    new_task(&t, seq++);
    batcher_time_format(t.processed, ts);
    ts[20] = '\0';
    for(int pos = 0; !rc && pos < n; pos++) {
      rc = gen_record(&o, &t, pos, ts);
      if(!rc)
        rc = batcher_add(b, o.b.data, o.b.len, t.processed);
    }
  }
  if(!rc)
    rc = batcher_flush(b);
  batcher_destroy(b);
  buf_free(&o.b);
  return rc;
}

/*
 * Builds bodies from the NDJSON records in path until they hold at least
 * want bytes, starting over at the end of the file.
 */
static int
load_corpus(struct corpus *c, size_t want, const char *path)
{
  struct batcher *b = NULL;
  FILE *f = fopen(path, "r");
  char *line = NULL;
  size_t cap = 0;
  ssize_t n;
  int64_t t;
  int rc, any = 0;

  if(!f) {
    perror(path);
    return ERR_NOTFOUND;
  }
  rc = batcher_create(BATCHER_DEFAULT_MAX_REQUEST, keep_body, no_reject, c,
                      &b);
  while(!rc && c->bytes < want) {
    n = getline(&line, &cap, f);
    if(n < 0) {
      if(!any) {
        rc = ERR_PARSE;
        break;
      }
      rewind(f);
      continue;
    }
    while(n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
      line[--n] = '\0';
    if(!n)
      continue;
    any = 1;
    /* Records from the transform start with the TimeGenerated column. */
    if((size_t)n < 40 || batcher_time_parse(line + 18, &t))
      t = 0;
    rc = batcher_add(b, line, (size_t)n, t);
  }
  if(!rc)
    rc = batcher_flush(b);
  batcher_destroy(b);
  free(line);
  fclose(f);
  return rc;
}

/* ---- codecs ---- */

enum codec { LIBDEFLATE, ZLIB };

struct candidate {
  const char *name;
  enum codec codec;
  int level;
  struct gzip_compressor *gz;
  z_stream zs;
  int zinit;
  double cpu[MAX_RUNS], wall[MAX_RUNS];
  size_t out_bytes;
};

/* Compresses one body; *out is malloc'ed (the caller frees it). */
static int
compress_one(struct candidate *k, const struct body *b, void **out,
             size_t *out_len)
{
  size_t cap;
  unsigned char *p;

  if(k->codec == LIBDEFLATE)
    return gzip_compress(k->gz, b->json, b->len, out, out_len);
  if(deflateReset(&k->zs) != Z_OK)
    return ERR_INVAL;
  cap = deflateBound(&k->zs, (uLong)b->len);
  p = malloc(cap);
  if(!p)
    return ERR_NOMEM;
  k->zs.next_in = (unsigned char *)b->json;
  k->zs.avail_in = (uInt)b->len;
  k->zs.next_out = p;
  k->zs.avail_out = (uInt)cap;
  if(deflate(&k->zs, Z_FINISH) != Z_STREAM_END) {
    free(p);
    return ERR_INVAL;
  }
  *out = p;
  *out_len = cap - k->zs.avail_out;
  return 0;
}

static double
clock_s(clockid_t id)
{
  struct timespec ts;

  clock_gettime(id, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int
cmp_double(const void *a, const void *b)
{
  double x = *(const double *)a, y = *(const double *)b;

  return x < y ? -1 : x > y;
}

static double
median(const double *v, int n)
{
  double s[MAX_RUNS];

  memcpy(s, v, (size_t)n * sizeof(*s));
  qsort(s, (size_t)n, sizeof(*s), cmp_double);
  return n % 2 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
}

static double
minimum(const double *v, int n)
{
  double m = v[0];

  for(int i = 1; i < n; i++)
    m = v[i] < m ? v[i] : m;
  return m;
}

static double
maximum(const double *v, int n)
{
  double m = v[0];

  for(int i = 1; i < n; i++)
    m = v[i] > m ? v[i] : m;
  return m;
}

static void
usage(void)
{
  fprintf(stderr, "usage: bench_gzip [-m MB] [-r RUNS] [-s SEED] "
          "[-i RECORDS.ndjson]\n");
  exit(2);
}

int
main(int argc, char **argv)
{
  struct candidate ks[] = {
    { "libdeflate", LIBDEFLATE, 1, NULL, { 0 }, 0, { 0 }, { 0 }, 0 },
    { "libdeflate", LIBDEFLATE, 3, NULL, { 0 }, 0, { 0 }, { 0 }, 0 },
    { "libdeflate", LIBDEFLATE, 6, NULL, { 0 }, 0, { 0 }, { 0 }, 0 },
    { "zlib", ZLIB, 1, NULL, { 0 }, 0, { 0 }, { 0 }, 0 },
    { "zlib", ZLIB, 6, NULL, { 0 }, 0, { 0 }, { 0 }, 0 },
  };
  const size_t nk = sizeof(ks) / sizeof(ks[0]);
  struct corpus c;
  double mb = 100, t0, c0, mbytes;
  int runs = 5, opt, rc = 0, status = 1;
  uint64_t seed = 1;
  const char *input = NULL;

  memset(&c, 0, sizeof(c));
  while((opt = getopt(argc, argv, "i:m:r:s:")) != -1) {
    switch(opt) {
    case 'm': mb = atof(optarg); break;
    case 'r': runs = atoi(optarg); break;
    case 's': seed = strtoull(optarg, NULL, 10); break;
    case 'i': input = optarg; break;
    default: usage();
    }
  }
  if(mb <= 0 || runs < 1 || runs > MAX_RUNS)
    usage();
  rng_state = seed * 2 + 1;   /* xorshift must not start at 0 */

  if(input)
    rc = load_corpus(&c, (size_t)(mb * 1e6), input);
  else
    rc = build_corpus(&c, (size_t)(mb * 1e6));
  if(rc) {
    fprintf(stderr, "bench_gzip: building bodies: %s\n", err_str(rc));
    goto out;
  }
  mbytes = (double)c.bytes / 1e6;

  /* Set up every candidate and prove its output is standard gzip. */
  for(size_t k = 0; k < nk; k++) {
    if(ks[k].codec == LIBDEFLATE)
      rc = gzip_compressor_create(ks[k].level, &ks[k].gz);
    else if(deflateInit2(&ks[k].zs, ks[k].level, Z_DEFLATED, 16 + MAX_WBITS,
                         8, Z_DEFAULT_STRATEGY) != Z_OK)
      rc = ERR_NOMEM;
    else
      ks[k].zinit = 1;
    for(size_t i = 0; !rc && i < c.n; i++) {
      void *z, *back;
      size_t zlen, blen;

      rc = compress_one(&ks[k], &c.bodies[i], &z, &zlen);
      if(rc)
        break;
      ks[k].out_bytes += zlen;
      rc = gzip_decompress(z, zlen, c.bodies[i].len, &back, &blen);
      if(!rc && (blen != c.bodies[i].len ||
                 memcmp(back, c.bodies[i].json, blen)))
        rc = ERR_PARSE;
      if(!rc)
        free(back);
      free(z);
    }
    if(rc) {
      fprintf(stderr, "bench_gzip: %s level %d: %s\n", ks[k].name,
              ks[k].level, err_str(rc));
      goto out;
    }
  }

  for(int r = 0; r < runs; r++) {
    for(size_t k = 0; k < nk; k++) {
      t0 = clock_s(CLOCK_MONOTONIC);
      c0 = clock_s(CLOCK_THREAD_CPUTIME_ID);
      for(size_t i = 0; i < c.n; i++) {
        void *z;
        size_t zlen;

        rc = compress_one(&ks[k], &c.bodies[i], &z, &zlen);
        if(rc)
          goto out;
        free(z);
      }
      ks[k].cpu[r] = mbytes / (clock_s(CLOCK_THREAD_CPUTIME_ID) - c0);
      ks[k].wall[r] = mbytes / (clock_s(CLOCK_MONOTONIC) - t0);
    }
  }

  printf("bench_gzip: %zu bodies, %.1f MB of JSON, %" PRIu64 " records "
         "(mean %.0f bytes), mean body %.0f bytes, %d runs, records from %s",
         c.n, mbytes, c.records, (double)c.bytes / (double)c.records,
         (double)c.bytes / (double)c.n, runs, input ? input : "generator");
  if(!input)
    printf(" (seed %" PRIu64 ")", seed);
  printf("\n");
  printf("| codec | level | MB/s CPU (median) | CPU min-max | MB/s wall "
         "(median) | ratio | compressed | ms CPU per 1 MB body |\n");
  printf("|---|---|---|---|---|---|---|---|\n");
  for(size_t k = 0; k < nk; k++) {
    double m = median(ks[k].cpu, runs);

    printf("| %s | %d | %.0f | %.0f-%.0f | %.0f | %.2f | %.1f%% | %.1f |\n",
           ks[k].name, ks[k].level, m, minimum(ks[k].cpu, runs),
           maximum(ks[k].cpu, runs), median(ks[k].wall, runs),
           (double)c.bytes / (double)ks[k].out_bytes,
           100.0 * (double)ks[k].out_bytes / (double)c.bytes, 1000.0 / m);
  }
  status = 0;

out:
  for(size_t k = 0; k < nk; k++) {
    gzip_compressor_destroy(ks[k].gz);
    if(ks[k].zinit)
      deflateEnd(&ks[k].zs);
  }
  for(size_t i = 0; i < c.n; i++)
    free(c.bodies[i].json);
  free(c.bodies);
  return status;
}
