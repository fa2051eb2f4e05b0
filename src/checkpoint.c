/*
 * checkpoint.c: the crash-safe done-blob ledger of checkpoint.h.
 *
 * Every line on disk, in the snapshot and in the journal, has the form
 *
 *   TYPE FIELD ... *CRC32\n
 *
 * where fields are percent-escaped (bytes outside 0x21..0x7e and '%' become
 * %XX; an empty field is a lone '%') so that any blob name or ETag splits
 * cleanly on spaces, and CRC32 (zlib's, eight hex digits) covers the bytes
 * before " *". Line types:
 *
 *   spectra-sentinel-checkpoint 1 FLOOR WATERMARK TOTAL_DONE TOTAL_FAILED
 *                                   first line of a snapshot
 *   D LASTMOD ETAG NAME RECORDS     a blob done
 *   F LASTMOD ETAG NAME REASON      a blob failed as bad input
 *   B LASTMOD ETAG NAME             a blob started (journal only)
 *   W WATERMARK                     the watermark moved (journal only)
 *   END COUNT FILECRC               last line of a snapshot: its entry count
 *                                   and the CRC of every byte before it
 *
 * Replaying the journal over the snapshot is idempotent (entries are keyed
 * by name, the watermark only moves forward), so a crash between writing a
 * new snapshot and emptying the journal loses nothing and corrupts nothing.
 */
#include "checkpoint.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "buf.h"
#include "err.h"
#include "fsio.h"

#define CK_MAGIC "spectra-sentinel-checkpoint"
#define CK_VERSION 1
#define CK_LINE_MAX (64 * 1024)      /* longest line accepted at load */
#define CK_FIELD_MAX 4096            /* longest name, ETag or reason kept */
#define CK_DEFAULT_COMPACT 10000
#define CK_MAX_FIELDS 8

struct ck_entry {
  struct ck_entry *next;     /* hash chain */
  char *name;                /* owned */
  char *etag;                /* owned */
  char *reason;              /* owned, NULL unless failed */
  int64_t last_modified;
  uint64_t records;
  enum checkpoint_state state; /* DONE, FAILED, or NEW (= pending) */
};

struct checkpoint {
  char *dir;                 /* owned */
  char *snap_path;           /* owned */
  char *journal_path;        /* owned */
  int journal_fd;            /* -1 when readonly */
  int readonly;
  int64_t grace;
  int64_t floor;
  int64_t watermark;
  uint64_t total_done;
  uint64_t total_failed;
  uint64_t journal_lines;
  uint64_t compact_lines;
  struct ck_entry **buckets; /* owned */
  size_t nbuckets;
  size_t nentries;
  struct buf line;           /* scratch for building lines */
};

/* ---- errors ----------------------------------------------------------- */

static void
seterr(char *err, size_t errlen, const char *fmt, ...)
  __attribute__((format(printf, 3, 4)));

static void
seterr(char *err, size_t errlen, const char *fmt, ...)
{
  va_list ap;

  if(!err || !errlen)
    return;
  va_start(ap, fmt);
  vsnprintf(err, errlen, fmt, ap);
  va_end(ap);
}

/* ---- the hash table --------------------------------------------------- */

static uint64_t
hash_name(const char *s)
{
  uint64_t h = 1469598103934665603ULL; /* FNV-1a */

  for(; *s; s++) {
    h ^= (unsigned char)*s;
    h *= 1099511628211ULL;
  }
  return h;
}

static struct ck_entry *
find(const struct checkpoint *c, const char *name)
{
  struct ck_entry *e;

  if(!c->nbuckets)
    return NULL;
  e = c->buckets[hash_name(name) % c->nbuckets];
  for(; e; e = e->next) {
    if(!strcmp(e->name, name))
      return e;
  }
  return NULL;
}

static void
entry_free(struct ck_entry *e)
{
  if(!e)
    return;
  free(e->name);
  free(e->etag);
  free(e->reason);
  free(e);
}

static int
grow(struct checkpoint *c)
{
  size_t n = c->nbuckets ? c->nbuckets * 2 : 1024;
  struct ck_entry **nb = calloc(n, sizeof(*nb));

  if(!nb)
    return ERR_NOMEM;
  for(size_t i = 0; i < c->nbuckets; i++) {
    struct ck_entry *e = c->buckets[i], *next;

    for(; e; e = next) {
      size_t h = hash_name(e->name) % n;

      next = e->next;
      e->next = nb[h];
      nb[h] = e;
    }
  }
  free(c->buckets);
  c->buckets = nb;
  c->nbuckets = n;
  return 0;
}

/*
 * Sets the entry for name (creating it) to the given values. The strings are
 * copied. On ERR_NOMEM the table is unchanged.
 */
static int
upsert(struct checkpoint *c, const char *name, const char *etag,
       int64_t lm, enum checkpoint_state st, uint64_t records,
       const char *reason)
{
  struct ck_entry *e = find(c, name);
  char *netag = strdup(etag);
  char *nreason = reason ? strdup(reason) : NULL;

  if(!netag || (reason && !nreason))
    goto nomem;
  if(!e) {
    if(c->nentries >= c->nbuckets && grow(c) != 0)
      goto nomem;
    e = calloc(1, sizeof(*e));
    if(!e || !(e->name = strdup(name))) {
      free(e);
      goto nomem;
    }
    size_t h = hash_name(name) % c->nbuckets;
    e->next = c->buckets[h];
    c->buckets[h] = e;
    c->nentries++;
  }
  free(e->etag);
  free(e->reason);
  e->etag = netag;
  e->reason = nreason;
  e->last_modified = lm;
  e->state = st;
  e->records = records;
  return 0;
nomem:
  free(netag);
  free(nreason);
  return ERR_NOMEM;
}

/*
 * W - grace, the Last-Modified before which every blob is done. Saturated:
 * the watermark comes from a file, and a (checksummed but absurd) value
 * near INT64_MIN must not overflow.
 */
static int64_t
window_start(const struct checkpoint *c)
{
  int64_t grace = c->grace > 0 ? c->grace : 0;

  return c->watermark < INT64_MIN + grace ? INT64_MIN
                                          : c->watermark - grace;
}

/* Drops finished entries older than the watermark window. */
static void
prune(struct checkpoint *c)
{
  int64_t limit = window_start(c);

  for(size_t i = 0; i < c->nbuckets; i++) {
    struct ck_entry **pp = &c->buckets[i];

    while(*pp) {
      struct ck_entry *e = *pp;

      if(e->state != CHECKPOINT_NEW && e->last_modified < limit) {
        *pp = e->next;
        entry_free(e);
        c->nentries--;
      }
      else
        pp = &e->next;
    }
  }
}

/* ---- line encoding ---------------------------------------------------- */

static int
put_field(struct buf *b, const char *s)
{
  static const char hex[] = "0123456789ABCDEF";
  int rc = buf_putc(b, ' ');

  if(!rc && !*s)
    rc = buf_putc(b, '%');
  for(; !rc && *s; s++) {
    unsigned char ch = (unsigned char)*s;

    if(ch > 0x20 && ch < 0x7f && ch != '%')
      rc = buf_putc(b, (char)ch);
    else {
      char esc[3] = { '%', hex[ch >> 4], hex[ch & 15] };
      rc = buf_append(b, esc, 3);
    }
  }
  return rc;
}

static int
put_int(struct buf *b, int64_t v)
{
  return buf_printf(b, " %" PRId64, v);
}

/* Appends " *CRC\n" for the line built so far in b (from offset start). */
static int
put_crc(struct buf *b, size_t start)
{
  uLong crc = crc32(0L, (const Bytef *)b->data + start,
                    (uInt)(b->len - start));

  return buf_printf(b, " *%08lx\n", (unsigned long)crc);
}

static int
hexval(int ch)
{
  if(ch >= '0' && ch <= '9')
    return ch - '0';
  if(ch >= 'A' && ch <= 'F')
    return ch - 'A' + 10;
  if(ch >= 'a' && ch <= 'f')
    return ch - 'a' + 10;
  return -1;
}

/* Decodes a percent-escaped field in place. Returns 0 or -1. */
static int
unescape(char *s)
{
  char *w = s;

  if(!strcmp(s, "%")) {
    *s = '\0';
    return 0;
  }
  for(char *r = s; *r; r++) {
    if(*r == '%') {
      int hi = hexval((unsigned char)r[1]), lo;

      if(hi < 0 || (lo = hexval((unsigned char)r[2])) < 0)
        return -1;
      *w++ = (char)(hi * 16 + lo);
      r += 2;
      if(w[-1] == '\0')
        return -1;
    }
    else
      *w++ = *r;
  }
  *w = '\0';
  return (size_t)(w - s) > CK_FIELD_MAX ? -1 : 0;
}

static int
parse_i64(const char *s, int64_t *out)
{
  char *end;
  long long v;

  errno = 0;
  v = strtoll(s, &end, 10);
  if(errno || end == s || *end)
    return -1;
  *out = v;
  return 0;
}

/*
 * Splits a line (without its newline) into fields after checking its CRC.
 * Returns the number of fields, or -1 when the CRC or format is wrong.
 */
static int
split_line(char *line, char **fields)
{
  char *star = strrchr(line, '*');
  unsigned long want;
  char *end, *save = NULL;
  int n = 0;

  if(!star || star == line || star[-1] != ' ')
    return -1;
  errno = 0;
  want = strtoul(star + 1, &end, 16);
  if(errno || *end || end - (star + 1) != 8)
    return -1;
  if(crc32(0L, (const Bytef *)line, (uInt)(star - 1 - line)) != want)
    return -1;
  star[-1] = '\0';
  /* strtok_r: the lane runs this on a pool thread. */
  for(char *tok = strtok_r(line, " ", &save); tok;
      tok = strtok_r(NULL, " ", &save)) {
    if(n == CK_MAX_FIELDS)
      return -1;
    fields[n++] = tok;
  }
  /* A line of only a checksum (" *00000000" is the CRC of nothing) has no
     type: callers read fields[0]. */
  return n ? n : -1;
}

/* ---- applying lines --------------------------------------------------- */

/*
 * Applies one D, F, B or W line (already split and CRC-checked). Returns 0,
 * ERR_PARSE (a malformed line) or ERR_NOMEM.
 */
static int
apply(struct checkpoint *c, char **f, int n, int in_journal)
{
  int64_t lm, v;
  struct ck_entry *e;

  if(!strcmp(f[0], "W") && n == 2 && in_journal) {
    if(parse_i64(f[1], &v))
      return ERR_PARSE;
    if(v > c->watermark) {
      c->watermark = v;
      prune(c);
    }
    return 0;
  }
  if(n < 4 || parse_i64(f[1], &lm) || unescape(f[2]) || unescape(f[3]))
    return ERR_PARSE;
  if(!strcmp(f[0], "D") && n == 5) {
    if(parse_i64(f[4], &v) || v < 0)
      return ERR_PARSE;
    if(in_journal)
      c->total_done++;
    return upsert(c, f[3], f[2], lm, CHECKPOINT_DONE, (uint64_t)v, NULL);
  }
  if(!strcmp(f[0], "F") && n == 5) {
    if(unescape(f[4]))
      return ERR_PARSE;
    if(in_journal)
      c->total_failed++;
    return upsert(c, f[3], f[2], lm, CHECKPOINT_FAILED, 0, f[4]);
  }
  if(!strcmp(f[0], "B") && n == 4 && in_journal) {
    /* A start does not override a finished entry for the same ETag: the
       begin line of a blob retried after its commit is harmless. */
    e = find(c, f[3]);
    if(e && e->state != CHECKPOINT_NEW && !strcmp(e->etag, f[2]))
      return 0;
    return upsert(c, f[3], f[2], lm, CHECKPOINT_NEW, 0, NULL);
  }
  return ERR_PARSE;
}

/* ---- file helpers ----------------------------------------------------- */

static int
fsync_dir(const char *dir)
{
  int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  int rc = 0;

  if(fd < 0)
    return ERR_IO;
  if(fsync(fd) < 0)
    rc = ERR_IO;
  close(fd);
  return rc;
}

/*
 * Reads the whole file at path into a malloc'ed, NUL-terminated buffer
 * (owned by the caller) of at most max bytes. ERR_NOTFOUND when it does not
 * exist, ERR_TOOBIG past max, ERR_IO otherwise.
 */
static int
slurp(const char *path, size_t max, char **out, size_t *len)
{
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  struct buf b;
  char chunk[65536];
  int rc = 0;

  buf_init(&b, max);
  *out = NULL;
  if(fd < 0)
    return errno == ENOENT ? ERR_NOTFOUND : ERR_IO;
  for(;;) {
    ssize_t r = read(fd, chunk, sizeof(chunk));

    if(r < 0 && errno == EINTR)
      continue;
    if(r < 0) {
      rc = ERR_IO;
      goto out;
    }
    if(r == 0)
      break;
    if((rc = buf_append(&b, chunk, (size_t)r)) != 0)
      goto out;
  }
  if(!b.data && (rc = buf_reserve(&b, 0)) != 0)
    goto out;
  *len = b.len;
  *out = buf_detach(&b, NULL);
out:
  buf_free(&b);
  close(fd);
  return rc;
}

/* ---- snapshot --------------------------------------------------------- */

static int
entry_line(struct buf *b, const struct ck_entry *e)
{
  size_t start = b->len;
  int rc = buf_puts(b, e->state == CHECKPOINT_FAILED ? "F" : "D");

  if(!rc)
    rc = put_int(b, e->last_modified);
  if(!rc)
    rc = put_field(b, e->etag);
  if(!rc)
    rc = put_field(b, e->name);
  if(!rc)
    rc = e->state == CHECKPOINT_FAILED ? put_field(b, e->reason)
                                       : put_int(b, (int64_t)e->records);
  if(!rc)
    rc = put_crc(b, start);
  return rc;
}

static int
write_snapshot(struct checkpoint *c)
{
  struct buf b;
  char *tmp = NULL;
  uint64_t count = 0;
  size_t start;
  int fd = -1, rc;

  buf_init(&b, (size_t)1 << 34);
  rc = buf_printf(&b, "%s %d %" PRId64 " %" PRId64 " %" PRIu64 " %" PRIu64,
                  CK_MAGIC, CK_VERSION, c->floor, c->watermark,
                  c->total_done, c->total_failed);
  if(!rc)
    rc = put_crc(&b, 0);
  for(size_t i = 0; !rc && i < c->nbuckets; i++) {
    for(struct ck_entry *e = c->buckets[i]; !rc && e; e = e->next) {
      if(e->state == CHECKPOINT_NEW)
        continue; /* pending blobs live only in the journal */
      rc = entry_line(&b, e);
      count++;
    }
  }
  if(rc)
    goto out;
  start = b.len;
  rc = buf_printf(&b, "END %" PRIu64 " %08lx", count,
                  (unsigned long)crc32(0L, (const Bytef *)b.data,
                                       (uInt)b.len));
  if(!rc)
    rc = put_crc(&b, start);
  if(rc)
    goto out;
  if(asprintf(&tmp, "%s.tmp", c->snap_path) < 0) {
    tmp = NULL;
    rc = ERR_NOMEM;
    goto out;
  }
  fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if(fd < 0) {
    rc = ERR_IO;
    goto out;
  }
  if((rc = fsio_write_all(fd, b.data, b.len)) != 0 || fsync(fd) < 0) {
    rc = ERR_IO;
    goto out;
  }
  close(fd);
  fd = -1;
  if(rename(tmp, c->snap_path) < 0 || fsync_dir(c->dir) != 0) {
    rc = ERR_IO;
    goto out;
  }
out:
  if(fd >= 0)
    close(fd);
  if(rc && tmp)
    unlink(tmp);
  free(tmp);
  buf_free(&b);
  return rc;
}

static int
load_snapshot(struct checkpoint *c, char *err, size_t errlen)
{
  char *data = NULL, *p, *nl, *f[CK_MAX_FIELDS];
  size_t len = 0, lineno = 0;
  uint64_t count = 0, want;
  uLong running = crc32(0L, Z_NULL, 0), crc_before;
  int rc, n, ended = 0;
  int64_t v[4];

  rc = slurp(c->snap_path, (size_t)1 << 34, &data, &len);
  if(rc) {
    seterr(err, errlen, "%s: cannot read: %s", c->snap_path,
           rc == ERR_IO ? strerror(errno) : err_str(rc));
    return rc;
  }
  rc = ERR_PARSE;
  for(p = data; p < data + len; p = nl + 1) {
    char *line = p;

    lineno++;
    nl = memchr(p, '\n', (size_t)(data + len - p));
    if(!nl) {
      seterr(err, errlen, "%s:%zu: truncated (no end of line)",
             c->snap_path, lineno);
      goto out;
    }
    /* The END line's CRC covers the original bytes before it; parsing
       below modifies the line in place, so fold it in first. */
    crc_before = running;
    running = crc32(running, (const Bytef *)line, (uInt)(nl + 1 - line));
    *nl = '\0';
    if(ended) {
      seterr(err, errlen, "%s:%zu: data after the END line", c->snap_path,
             lineno);
      goto out;
    }
    if(nl - line > CK_LINE_MAX || memchr(line, '\0', (size_t)(nl - line)) ||
       (n = split_line(line, f)) < 0) {
      seterr(err, errlen, "%s:%zu: corrupt line (bad checksum or format)",
             c->snap_path, lineno);
      goto out;
    }
    if(lineno == 1) {
      if(n != 6 || strcmp(f[0], CK_MAGIC) || strcmp(f[1], "1") ||
         parse_i64(f[2], &v[0]) || parse_i64(f[3], &v[1]) ||
         parse_i64(f[4], &v[2]) || parse_i64(f[5], &v[3]) ||
         v[2] < 0 || v[3] < 0) {
        /* Negative totals would be written back as huge unsigned
           numbers that the next load refuses. */
        seterr(err, errlen, "%s:1: not a version %d checkpoint header",
               c->snap_path, CK_VERSION);
        goto out;
      }
      c->floor = v[0];
      c->watermark = v[1];
      c->total_done = (uint64_t)v[2];
      c->total_failed = (uint64_t)v[3];
      continue;
    }
    if(!strcmp(f[0], "END")) {
      char *end;
      int bad = n != 3;

      if(!bad) {
        errno = 0;
        want = strtoull(f[2], &end, 16);
        bad = errno || *end || parse_i64(f[1], &v[0]) ||
              (uint64_t)v[0] != count || want != crc_before;
      }
      if(bad) {
        seterr(err, errlen, "%s:%zu: END line does not match the content "
               "(%" PRIu64 " entries read)", c->snap_path, lineno, count);
        goto out;
      }
      ended = 1;
      continue;
    }
    rc = apply(c, f, n, 0);
    if(rc == ERR_NOMEM)
      goto out;
    if(rc) {
      rc = ERR_PARSE;
      seterr(err, errlen, "%s:%zu: malformed entry", c->snap_path, lineno);
      goto out;
    }
    rc = ERR_PARSE;
    count++;
  }
  if(!ended) {
    seterr(err, errlen, "%s: truncated (no END line after %zu lines)",
           c->snap_path, lineno);
    goto out;
  }
  rc = 0;
out:
  free(data);
  return rc;
}

/* ---- journal ---------------------------------------------------------- */

/*
 * Replays the journal. A final line without a newline, or only NUL bytes
 * after the last newline, is a torn write from a crash: it is ignored and,
 * unless read-only, cut off so that the next append starts a clean line.
 */
static int
load_journal(struct checkpoint *c, char *err, size_t errlen)
{
  char *data = NULL, *p, *nl, *f[CK_MAX_FIELDS];
  size_t len = 0, lineno = 0, valid = 0;
  int rc, n;

  rc = slurp(c->journal_path, (size_t)1 << 34, &data, &len);
  if(rc == ERR_NOTFOUND)
    return 0;
  if(rc) {
    seterr(err, errlen, "%s: cannot read: %s", c->journal_path,
           rc == ERR_IO ? strerror(errno) : err_str(rc));
    return rc;
  }
  for(p = data; p < data + len; p = nl + 1) {
    char *line = p;

    nl = memchr(p, '\n', (size_t)(data + len - p));
    if(!nl)
      break; /* torn tail */
    lineno++;
    *nl = '\0';
    if(nl - line > CK_LINE_MAX || memchr(line, '\0', (size_t)(nl - line)) ||
       (n = split_line(line, f)) < 0 || (rc = apply(c, f, n, 1)) == ERR_PARSE) {
      seterr(err, errlen, "%s:%zu: corrupt line (bad checksum or format)",
             c->journal_path, lineno);
      rc = ERR_PARSE;
      goto out;
    }
    if(rc)
      goto out;
    valid = (size_t)(nl + 1 - data);
  }
  c->journal_lines = lineno;
  if(valid < len && !c->readonly) {
    if(ftruncate(c->journal_fd, (off_t)valid) < 0 || fsync(c->journal_fd) < 0) {
      seterr(err, errlen, "%s: cannot cut a torn final line: %s",
             c->journal_path, strerror(errno));
      rc = ERR_IO;
      goto out;
    }
  }
  rc = 0;
out:
  free(data);
  return rc;
}

/*
 * Appends the line in c->line to the journal. If the write fails part way
 * (a full disk), the journal is cut back so that no partial line stays.
 */
static int
journal_append(struct checkpoint *c)
{
  off_t end;

  if(c->readonly)
    return ERR_INVAL;
  end = lseek(c->journal_fd, 0, SEEK_END);
  if(end < 0)
    return ERR_IO;
  if(fsio_write_all(c->journal_fd, c->line.data, c->line.len) != 0) {
    int saved = errno;

    if(ftruncate(c->journal_fd, end) < 0) {
      /* Nothing more can be done: the torn line is cut at the next load. */
    }
    errno = saved;
    return ERR_IO;
  }
  c->journal_lines++;
  return 0;
}

/* ---- public API ------------------------------------------------------- */

int
checkpoint_open(const struct checkpoint_opts *opts, struct checkpoint **out,
                char *err, size_t errlen)
{
  struct checkpoint *c;
  struct stat st;
  int rc = ERR_NOMEM, have_snap, have_journal;

  *out = NULL;
  if(!opts || !opts->dir || !*opts->dir)
    return ERR_INVAL;
  c = calloc(1, sizeof(*c));
  if(!c)
    return ERR_NOMEM;
  c->journal_fd = -1;
  c->readonly = opts->readonly;
  c->grace = opts->grace;
  c->compact_lines = opts->compact_lines ? opts->compact_lines
                                         : CK_DEFAULT_COMPACT;
  buf_init(&c->line, CK_LINE_MAX);
  if(!(c->dir = strdup(opts->dir)))
    goto fail;
  if(asprintf(&c->snap_path, "%s/%s", opts->dir, CHECKPOINT_SNAPSHOT) < 0) {
    c->snap_path = NULL; /* undefined after a failed asprintf */
    goto fail;
  }
  if(asprintf(&c->journal_path, "%s/%s", opts->dir, CHECKPOINT_JOURNAL) < 0) {
    c->journal_path = NULL;
    goto fail;
  }

  if(!c->readonly) {
    if(mkdir(opts->dir, 0700) < 0 && errno != EEXIST) {
      seterr(err, errlen, "%s: cannot create the state directory: %s",
             opts->dir, strerror(errno));
      rc = ERR_IO;
      goto fail;
    }
  }
  have_snap = stat(c->snap_path, &st) == 0;
  have_journal = stat(c->journal_path, &st) == 0 && st.st_size > 0;
  if(!have_snap && have_journal) {
    seterr(err, errlen, "%s: journal present but snapshot %s missing; "
           "refusing to start from an empty state", c->journal_path,
           c->snap_path);
    rc = ERR_PARSE;
    goto fail;
  }
  if(!c->readonly) {
    c->journal_fd = open(c->journal_path,
                         O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if(c->journal_fd < 0) {
      seterr(err, errlen, "%s: cannot open: %s", c->journal_path,
             strerror(errno));
      rc = ERR_IO;
      goto fail;
    }
    if(flock(c->journal_fd, LOCK_EX | LOCK_NB) < 0) {
      seterr(err, errlen, "%s: locked by another process (is another "
             "spectra-sentinel running on this state directory?)",
             c->journal_path);
      rc = ERR_IO;
      goto fail;
    }
  }
  if(!have_snap) {
    if(c->readonly) {
      seterr(err, errlen, "%s: no checkpoint yet", c->snap_path);
      rc = ERR_NOTFOUND;
      goto fail;
    }
    /* A new state: write its snapshot now, so that the floor is durable
       and a journal never exists without a snapshot. */
    c->floor = opts->start_from;
    if((rc = write_snapshot(c)) != 0) {
      seterr(err, errlen, "%s: cannot write: %s", c->snap_path,
             strerror(errno));
      goto fail;
    }
  }
  else if((rc = load_snapshot(c, err, errlen)) != 0)
    goto fail;
  if((rc = load_journal(c, err, errlen)) != 0)
    goto fail;
  prune(c);
  *out = c;
  return 0;
fail:
  checkpoint_destroy(c);
  return rc;
}

void
checkpoint_destroy(struct checkpoint *c)
{
  if(!c)
    return;
  for(size_t i = 0; i < c->nbuckets; i++) {
    struct ck_entry *e = c->buckets[i], *next;

    for(; e; e = next) {
      next = e->next;
      entry_free(e);
    }
  }
  free(c->buckets);
  if(c->journal_fd >= 0)
    close(c->journal_fd);
  buf_free(&c->line);
  free(c->dir);
  free(c->snap_path);
  free(c->journal_path);
  free(c);
}

enum checkpoint_state
checkpoint_lookup(const struct checkpoint *c, const char *name,
                  const char *etag, int64_t last_modified)
{
  const struct ck_entry *e;

  if(last_modified < c->floor)
    return CHECKPOINT_BEFORE_START;
  e = find(c, name);
  if(e && e->state != CHECKPOINT_NEW && !strcmp(e->etag, etag))
    return e->state;
  if(last_modified < window_start(c) && !e)
    return CHECKPOINT_OLD;
  return CHECKPOINT_NEW;
}

/* Builds "TYPE LM ETAG NAME" into c->line. */
static int
start_line(struct checkpoint *c, const char *type, const char *name,
           const char *etag, int64_t lm)
{
  int rc;

  if(strlen(name) > CK_FIELD_MAX || strlen(etag) > CK_FIELD_MAX)
    return ERR_TOOBIG;
  buf_reset(&c->line);
  rc = buf_puts(&c->line, type);
  if(!rc)
    rc = put_int(&c->line, lm);
  if(!rc)
    rc = put_field(&c->line, etag);
  if(!rc)
    rc = put_field(&c->line, name);
  return rc;
}

int
checkpoint_begin(struct checkpoint *c, const char *name, const char *etag,
                 int64_t last_modified)
{
  int rc;

  if(c->readonly)
    return ERR_INVAL;
  rc = start_line(c, "B", name, etag, last_modified);
  if(!rc)
    rc = put_crc(&c->line, 0);
  if(!rc)
    rc = journal_append(c);
  if(!rc)
    rc = upsert(c, name, etag, last_modified, CHECKPOINT_NEW, 0, NULL);
  return rc;
}

int
checkpoint_commit(struct checkpoint *c, const char *name, const char *etag,
                  int64_t last_modified, uint64_t records,
                  const char *reason)
{
  char rbuf[512];
  int rc;

  if(c->readonly)
    return ERR_INVAL;
  rc = start_line(c, reason ? "F" : "D", name, etag, last_modified);
  if(!rc && reason) {
    /* Reasons are one line of bounded length. */
    snprintf(rbuf, sizeof(rbuf), "%s", reason);
    for(char *p = rbuf; *p; p++) {
      if(*p == '\n' || *p == '\r')
        *p = ' ';
    }
    rc = put_field(&c->line, rbuf);
  }
  else if(!rc)
    rc = put_int(&c->line, (int64_t)records);
  if(!rc)
    rc = put_crc(&c->line, 0);
  if(!rc)
    rc = journal_append(c);
  if(!rc)
    rc = upsert(c, name, etag, last_modified,
                reason ? CHECKPOINT_FAILED : CHECKPOINT_DONE, records,
                reason ? rbuf : NULL);
  if(!rc) {
    if(reason)
      c->total_failed++;
    else
      c->total_done++;
  }
  return rc;
}

int
checkpoint_sync(struct checkpoint *c)
{
  if(c->readonly)
    return ERR_INVAL;
  if(fdatasync(c->journal_fd) < 0)
    return ERR_IO;
  if(c->journal_lines >= c->compact_lines)
    return checkpoint_compact(c);
  return 0;
}

int
checkpoint_advance(struct checkpoint *c, int64_t w)
{
  int rc;

  if(c->readonly)
    return ERR_INVAL;
  if(w <= c->watermark)
    return 0;
  buf_reset(&c->line);
  rc = buf_printf(&c->line, "W %" PRId64, w);
  if(!rc)
    rc = put_crc(&c->line, 0);
  if(!rc)
    rc = journal_append(c);
  if(!rc) {
    c->watermark = w;
    prune(c);
  }
  return rc;
}

int
checkpoint_compact(struct checkpoint *c)
{
  int rc;

  if(c->readonly)
    return ERR_INVAL;
  if((rc = write_snapshot(c)) != 0)
    return rc;
  /* Pending blobs live only in the journal; write them again after the
     truncation so that `state` still sees them. A crash between the
     truncation and these lines only loses advisory information. */
  if(ftruncate(c->journal_fd, 0) < 0)
    return ERR_IO;
  c->journal_lines = 0;
  for(size_t i = 0; i < c->nbuckets; i++) {
    for(struct ck_entry *e = c->buckets[i]; e; e = e->next) {
      if(e->state != CHECKPOINT_NEW)
        continue;
      rc = start_line(c, "B", e->name, e->etag, e->last_modified);
      if(!rc)
        rc = put_crc(&c->line, 0);
      if(!rc)
        rc = journal_append(c);
      if(rc)
        return rc;
    }
  }
  return fdatasync(c->journal_fd) < 0 ? ERR_IO : 0;
}

void
checkpoint_get_stats(const struct checkpoint *c, struct checkpoint_stats *st)
{
  memset(st, 0, sizeof(*st));
  for(size_t i = 0; i < c->nbuckets; i++) {
    for(const struct ck_entry *e = c->buckets[i]; e; e = e->next) {
      if(e->state == CHECKPOINT_DONE)
        st->done++;
      else if(e->state == CHECKPOINT_FAILED)
        st->failed++;
      else
        st->pending++;
    }
  }
  st->total_done = c->total_done;
  st->total_failed = c->total_failed;
  st->watermark = c->watermark;
  st->floor = c->floor;
  st->journal_lines = c->journal_lines;
}

int
checkpoint_foreach(const struct checkpoint *c,
                   int (*fn)(void *ud, const struct checkpoint_entry *e),
                   void *ud)
{
  for(size_t i = 0; i < c->nbuckets; i++) {
    for(const struct ck_entry *e = c->buckets[i]; e; e = e->next) {
      struct checkpoint_entry pub = {
        e->name, e->etag, e->last_modified, e->state,
        e->reason ? e->reason : "", e->records
      };
      int rc = fn(ud, &pub);

      if(rc)
        return rc;
    }
  }
  return 0;
}
