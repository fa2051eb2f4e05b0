/*
 * transform.c: Spectra Detect report -> Log Analytics records (SPEC 2).
 *
 * The report is read in passes over a re-readable source (see transform.h
 * for why), with the scanner of jscan.h:
 *
 *   validate  checks the whole document and, for each task object, copies
 *             its task-level columns into a compact JSON fragment (the
 *             "task table") and notes where its tc_report array starts and
 *             how many entries it has;
 *   emit      reads again without validation, skips to each task's
 *             tc_report array and emits one record per entry: the fixed
 *             TimeGenerated prefix, the task's fragment, then the entry's
 *             columns.
 *
 * The task table is bounded (TF_TASK_BUDGET bytes). A blob with more tasks
 * than fit (a large NDJSON blob) is emitted in groups: after the emit pass
 * of one group, a collect pass (no validation) fills the table with the next
 * group's tasks, and so on. A report with one task, or a few hundred, needs
 * exactly two passes; memory never depends on the report's size.
 *
 * One pass for the common case: while its records stay within
 * TF_CAPTURE_BUDGET bytes, the validate pass also reads each tc_report
 * entry's columns and keeps the entry's part of its record (everything
 * after the task's fragment), so that once the whole document has checked
 * out the records are assembled from memory and the emit pass is not
 * needed. Records are about a fifth of a typical report, so reports up to
 * about ten megabytes are read once; the emit pass was a third of the
 * transform's time. A larger report, or a blob of several task groups,
 * drops what it captured and takes the passes above. Either way nothing
 * is emitted before the whole input is validated.
 *
 * A later pass that finds the input different from what the first pass saw
 * (a file rewritten between passes) stops with ERR_CHANGED.
 */
#include "transform.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "buf.h"
#include "civil.h"
#include "err.h"
#include "jscan.h"
#include "source.h"

#define TF_KEY_CAP 32                      /* longer keys match nothing */
#define TF_MAX_FIELD_LIMIT (16u << 20)     /* max_field_bytes above: INVAL */
#define TF_TASK_BUDGET ((size_t)8 << 20)   /* task table bytes per group */
#define TF_CAPTURE_BUDGET ((size_t)2 << 20) /* entry parts kept, one pass */
#define TF_CAPTURE_INITIAL ((size_t)64 << 10) /* their first allocation */
#define TF_TIME_MAX INT64_C(253402300799)  /* 9999-12-31T23:59:59Z */
#define TF_INT_MIN INT64_C(-2147483648)    /* Log Analytics int: 32 bits */
#define TF_INT_MAX INT64_C(2147483647)

enum tf_mode { TF_VALIDATE, TF_COLLECT, TF_EMIT };

/* The task-level columns held as JSON text, in the order of tf_task_keys. */
enum {
  TF_TASK_ID, TF_DIRECT_SENDER, TF_WORKER_HOSTNAME, /* string columns */
  TF_WORKER_ADDRESS, TF_WORKER_IP, TF_FORWARDED_FOR, /* dynamic columns */
  TF_NTASKF
};

/* The task-level int columns. */
enum { TF_SUBMITTED, TF_PROCESSED, TF_DURATION, TF_NTASKI };

/* The entry-level dynamic columns, in table order. */
enum {
  TF_INFO, TF_CLASSIFICATION, TF_STORY, TF_TAGS, TF_INTERESTING, TF_NENTRYF
};

/* What a key means, found by name in the tables below. */
enum tf_kind { TF_K_OTHER, TF_K_TEXT, TF_K_DYN, TF_K_INT, TF_K_TCREPORT,
               TF_K_INDEX, TF_K_PARENT };

struct tf_key {
  const char *name;
  size_t len;
  enum tf_kind kind;
  int slot; /* index into the field or int arrays */
};

#define K(n, kind, slot) { n, sizeof(n) - 1, kind, slot }
static const struct tf_key tf_task_keys[] = {
  K("tc_report", TF_K_TCREPORT, 0),
  K("task_id", TF_K_TEXT, TF_TASK_ID),
  K("submitted", TF_K_INT, TF_SUBMITTED),
  K("processed", TF_K_INT, TF_PROCESSED),
  K("process_duration", TF_K_INT, TF_DURATION),
  K("direct_sender", TF_K_TEXT, TF_DIRECT_SENDER),
  K("worker_address", TF_K_DYN, TF_WORKER_ADDRESS),
  K("worker_hostname", TF_K_TEXT, TF_WORKER_HOSTNAME),
  K("worker_ip", TF_K_DYN, TF_WORKER_IP),
  K("forwarded_for", TF_K_DYN, TF_FORWARDED_FOR),
};
static const struct tf_key tf_entry_keys[] = {
  K("info", TF_K_DYN, TF_INFO),
  K("classification", TF_K_DYN, TF_CLASSIFICATION),
  K("index", TF_K_INDEX, 0),
  K("parent", TF_K_PARENT, 0),
  K("story", TF_K_DYN, TF_STORY),
  K("tags", TF_K_DYN, TF_TAGS),
  K("interesting_strings", TF_K_DYN, TF_INTERESTING),
};
#undef K

/* The output member prefixes, in table order. */
static const char *const tf_task_names[TF_NTASKF] = {
  ",\"task_id\":", ",\"direct_sender\":", ",\"worker_hostname\":",
  ",\"worker_address\":", ",\"worker_ip\":", ",\"forwarded_for\":",
};
static const char *const tf_int_names[TF_NTASKI] = {
  ",\"submitted\":", ",\"processed\":", ",\"process_duration\":",
};
static const char *const tf_entry_names[TF_NENTRYF] = {
  ",\"info\":", ",\"classification\":", ",\"story\":", ",\"tags\":",
  ",\"interesting_strings\":",
};

/* One captured column value. */
struct tf_field {
  struct buf b;   /* the JSON text; capped at max_field_bytes */
  int present;
  int shrunk;
};

/* What the emit pass needs to know about one task of the current group. */
struct tf_task {
  int64_t tg;                    /* TimeGenerated, Unix s */
  char tgs[TRANSFORM_TG_LEN + 1];
  uint64_t tc_off;               /* offset of the '[' of its tc_report */
  uint64_t nentries;
  size_t frag_off, frag_len;     /* its columns, in tf->frag */
  unsigned shrunk;               /* its task-level columns shrunk */
  size_t cent0;                  /* its first captured entry (one pass) */
};

/* The entry part of one record, captured by the validate pass. */
struct tf_centry {
  size_t off, len;               /* in tf->cap */
  unsigned shrunk;               /* its entry-level columns shrunk */
};

struct tf {
  struct jscan *js;
  enum tf_mode mode;
  size_t maxf;
  int64_t last_modified, now;
  transform_emit_cb emit;
  void *ud;
  int emit_rc;                   /* emit's non-zero result, if any */

  /* The task table of the current group: tasks first .. first+ntab-1. */
  struct tf_task *tab;
  size_t ntab, captab;
  struct buf frag;
  size_t budget;
  int tab_full;                  /* a task did not fit: the group ends */
  size_t first;
  uint64_t ntasks;               /* counted by the validate pass */

  /* The task object being read. */
  struct tf_field tf[TF_NTASKF];
  int ihas[TF_NTASKI];
  int64_t ival[TF_NTASKI];
  int has_tc;
  uint64_t tc_off, nentries;

  /* The tc_report entry being read. */
  struct tf_field ef[TF_NENTRYF];
  int index_seen;                /* a non-null index key was read */
  int has_index, has_parent;     /* ... and converted to an integer */
  int64_t index, parent;

  struct buf rec;
  struct transform_stats st;

  /* One pass (see the top of this file): entry parts, while they fit. */
  int cap_on;                    /* capturing, nothing dropped yet */
  struct buf cap;
  struct tf_centry *cent;
  size_t ncent, capcent;
  size_t task_cent0, task_cap0;  /* where the task being read starts */
};

static const struct tf_key *
tf_lookup(const struct tf_key *keys, size_t n, const char *k, size_t len)
{
  for(size_t i = 0; i < n; i++) {
    if(keys[i].len == len && !memcmp(keys[i].name, k, len))
      return &keys[i];
  }
  return NULL;
}

static int
tf_fail(struct tf *t, const char *msg, uint64_t offset)
{
  return jscan_fail(t->js, msg, offset);
}

/* For an unexpected byte c from jscan_peek: the right error. */
static int
tf_unexpected(struct tf *t, int c, const char *msg)
{
  if(c < 0)
    return c;
  if(c == JSCAN_END)
    return tf_fail(t, "unexpected end of input", jscan_offset(t->js));
  return tf_fail(t, msg, jscan_offset(t->js));
}

static int
in_int32(int64_t v)
{
  return v >= TF_INT_MIN && v <= TF_INT_MAX;
}

/* Writes v in decimal at p; returns the length (at most 20). */
static size_t
fmt_i64(char *p, int64_t v)
{
  char tmp[24];
  size_t n = 0, len;
  uint64_t u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;

  do {
    tmp[n++] = (char)('0' + u % 10);
    u /= 10;
  } while(u);
  len = n + (v < 0);
  if(v < 0)
    *p++ = '-';
  while(n)
    *p++ = tmp[--n];
  return len;
}

/* Formats t (0..TF_TIME_MAX) as YYYY-MM-DDTHH:MM:SSZ plus a NUL. */
static void
fmt_time(int64_t t, char out[TRANSFORM_TG_LEN + 1])
{
  /* t is within 1970..9999 (tf_time_ok), so this cannot fail. */
  (void)civil_format_utc(t, out);
  out[TRANSFORM_TG_LEN] = '\0';
}

static int
tf_time_ok(int64_t t)
{
  return t >= 0 && t <= TF_TIME_MAX;
}

/*
 * Captures the value at the scanner into f: a string column (text) or a
 * dynamic one. A null (or, for text, an object or array) leaves f absent.
 * A later duplicate key replaces an earlier value (last one wins).
 */
static int
tf_capture(struct tf *t, struct tf_field *f, int text, unsigned depth)
{
  enum jscan_fit fit;
  int rc;

  f->b.len = 0;
  f->present = 0;
  f->shrunk = 0;
  rc = text ? jscan_copy_text(t->js, &f->b, t->maxf, depth, &fit)
            : jscan_copy(t->js, &f->b, t->maxf, depth, &fit);
  if(rc)
    return rc;
  f->present = fit == JSCAN_FULL || fit == JSCAN_SHRUNK || fit == JSCAN_EMPTY;
  f->shrunk = fit == JSCAN_SHRUNK || fit == JSCAN_EMPTY ||
              fit == JSCAN_DROPPED;
  if(!f->present)
    f->b.len = 0;
  return 0;
}

static int tf_read_entry(struct tf *t, unsigned depth);
static int tf_capture_entry(struct tf *t, int64_t position);

/*
 * Reads a tc_report array in the validate and collect passes: counts its
 * entries and (validating) checks that each is an object. While the one
 * pass is on, the validate pass reads each entry's columns and keeps its
 * part of the record instead of skipping it.
 */
static int
tf_count_entries(struct tf *t, unsigned depth, uint64_t *n)
{
  struct jscan *js = t->js;
  int c, rc;

  *n = 0;
  jscan_next(js); /* '[' */
  c = jscan_peek(js);
  if(c == ']') {
    jscan_next(js);
    return 0;
  }
  for(;;) {
    if(c != '{')
      return tf_unexpected(t, c, "tc_report entry is not an object");
    if(t->mode == TF_VALIDATE && t->cap_on) {
      if((rc = tf_read_entry(t, depth + 1)) != 0 ||
         (rc = tf_capture_entry(t, (int64_t)*n)) != 0)
        return rc;
    }
    else if((rc = jscan_skip(js, depth + 1)) != 0)
      return rc;
    (*n)++;
    c = jscan_peek(js);
    if(c == ',') {
      jscan_next(js);
      c = jscan_peek(js);
      continue;
    }
    if(c == ']') {
      jscan_next(js);
      return 0;
    }
    return tf_unexpected(t, c, "expected ',' or ']'");
  }
}

/* Gives up the one pass: what was captured is dropped, nothing more is. */
static void
tf_cap_drop(struct tf *t)
{
  t->cap_on = 0;
  t->cap.len = 0;
  t->ncent = 0;
  t->task_cent0 = 0;
  t->task_cap0 = 0;
}

/*
 * Adds the task just read to the table, as one JSON fragment holding its
 * task-level columns in table order, unless the table's budget is spent
 * (then the group ends before this task).
 */
static int
tf_store_task(struct tf *t)
{
  struct tf_task ti;
  int64_t dur = 0;
  int has_dur = 0, rc;
  size_t need = 3 * 48;
  char num[24];

  if(t->tab_full)
    return 0;
  memset(&ti, 0, sizeof(ti));
  /* TimeGenerated: processed, submitted, Last-Modified, now. */
  if(t->ihas[TF_PROCESSED] && tf_time_ok(t->ival[TF_PROCESSED]))
    ti.tg = t->ival[TF_PROCESSED];
  else if(t->ihas[TF_SUBMITTED] && tf_time_ok(t->ival[TF_SUBMITTED]))
    ti.tg = t->ival[TF_SUBMITTED];
  else if(tf_time_ok(t->last_modified))
    ti.tg = t->last_modified;
  else
    ti.tg = t->now < 0 ? 0 : t->now > TF_TIME_MAX ? TF_TIME_MAX : t->now;
  fmt_time(ti.tg, ti.tgs);
  if(t->ihas[TF_DURATION] && in_int32(t->ival[TF_DURATION])) {
    dur = t->ival[TF_DURATION];
    has_dur = 1;
  }
  else if(t->ihas[TF_PROCESSED] && t->ihas[TF_SUBMITTED] &&
          t->ival[TF_PROCESSED] >= t->ival[TF_SUBMITTED]) {
    dur = t->ival[TF_PROCESSED] - t->ival[TF_SUBMITTED];
    has_dur = in_int32(dur);
  }
  for(int i = 0; i < TF_NTASKF; i++) {
    if(t->tf[i].present)
      need += 24 + t->tf[i].b.len;
    ti.shrunk += (unsigned)t->tf[i].shrunk;
  }
  if(t->ntab > 0 && t->frag.len + (t->ntab + 1) * sizeof(ti) + need >
                    t->budget) {
    t->tab_full = 1;
    tf_cap_drop(t); /* more than one group: the emit passes it is */
    return 0;
  }
  if(t->ntab == t->captab) {
    size_t ncap = t->captab ? t->captab * 2 : 16;
    struct tf_task *n = realloc(t->tab, ncap * sizeof(*n));

    if(!n)
      return ERR_NOMEM;
    t->tab = n;
    t->captab = ncap;
  }
  ti.tc_off = t->tc_off;
  ti.nentries = t->nentries;
  ti.cent0 = t->task_cent0;
  ti.frag_off = t->frag.len;
  if((rc = buf_reserve(&t->frag, need)) != 0)
    return rc;

#define PUT_TEXT(i)                                                      \
  do {                                                                   \
    if(t->tf[i].present) {                                               \
      buf_puts(&t->frag, tf_task_names[i]);                              \
      buf_append(&t->frag, t->tf[i].b.data, t->tf[i].b.len);            \
    }                                                                    \
  } while(0)
#define PUT_INT(i, has, v)                                               \
  do {                                                                   \
    if((has) && in_int32(v)) {                                           \
      buf_puts(&t->frag, tf_int_names[i]);                               \
      buf_append(&t->frag, num, fmt_i64(num, v));                        \
    }                                                                    \
  } while(0)

  /* Space was reserved above; these appends cannot fail. */
  PUT_TEXT(TF_TASK_ID);
  PUT_INT(TF_SUBMITTED, t->ihas[TF_SUBMITTED], t->ival[TF_SUBMITTED]);
  PUT_INT(TF_PROCESSED, t->ihas[TF_PROCESSED], t->ival[TF_PROCESSED]);
  PUT_INT(TF_DURATION, has_dur, dur);
  PUT_TEXT(TF_DIRECT_SENDER);
  PUT_TEXT(TF_WORKER_ADDRESS);
  PUT_TEXT(TF_WORKER_HOSTNAME);
  PUT_TEXT(TF_WORKER_IP);
  PUT_TEXT(TF_FORWARDED_FOR);
#undef PUT_TEXT
#undef PUT_INT

  ti.frag_len = t->frag.len - ti.frag_off;
  t->tab[t->ntab++] = ti;
  return 0;
}

/*
 * Reads one task object in the validate or collect pass: its task-level
 * columns and where its tc_report is. depth counts the containers around
 * the task object (1 inside a top-level array).
 */
static int
tf_read_task(struct tf *t, unsigned depth)
{
  struct jscan *js = t->js;
  const struct tf_key *k;
  char key[TF_KEY_CAP];
  uint64_t start = jscan_offset(js), at;
  size_t klen;
  int c, rc;

  for(int i = 0; i < TF_NTASKF; i++) {
    t->tf[i].b.len = 0;
    t->tf[i].present = 0;
    t->tf[i].shrunk = 0;
  }
  memset(t->ihas, 0, sizeof(t->ihas));
  t->has_tc = 0;
  t->nentries = 0;
  t->task_cent0 = t->ncent;
  t->task_cap0 = t->cap.len;
  jscan_next(js); /* '{' */
  c = jscan_peek(js);
  if(c == '}') {
    jscan_next(js);
    return tf_fail(t, "no tc_report array", start);
  }
  for(;;) {
    if(c != '"')
      return tf_unexpected(t, c, "expected a string key");
    if((rc = jscan_key(js, key, sizeof(key), &klen)) != 0)
      return rc;
    k = tf_lookup(tf_task_keys, sizeof(tf_task_keys) / sizeof(*k), key,
                  klen);
    switch(k ? k->kind : TF_K_OTHER) {
    case TF_K_TCREPORT:
      c = jscan_peek(js);
      at = jscan_offset(js);
      if(c != '[')
        return tf_unexpected(t, c, "tc_report is not an array");
      /* A duplicate tc_report replaces the earlier one (last wins), and
         so do the entries captured from it. */
      t->has_tc = 1;
      t->tc_off = at;
      if(t->cap_on) {
        t->ncent = t->task_cent0;
        t->cap.len = t->task_cap0;
      }
      rc = tf_count_entries(t, depth + 1, &t->nentries);
      break;
    case TF_K_TEXT:
      rc = tf_capture(t, &t->tf[k->slot], 1, depth + 1);
      break;
    case TF_K_DYN:
      rc = tf_capture(t, &t->tf[k->slot], 0, depth + 1);
      break;
    case TF_K_INT:
      rc = jscan_int(js, depth + 1, &t->ihas[k->slot], &t->ival[k->slot]);
      break;
    default:
      rc = jscan_skip(js, depth + 1);
      break;
    }
    if(rc)
      return rc;
    c = jscan_peek(js);
    if(c == ',') {
      jscan_next(js);
      c = jscan_peek(js);
      continue;
    }
    if(c == '}') {
      jscan_next(js);
      break;
    }
    return tf_unexpected(t, c, "expected ',' or '}'");
  }
  if(!t->has_tc)
    return tf_fail(t, "no tc_report array", start);
  return 0;
}

/* An upper bound on the bytes tf_put_entry writes for the entry just read. */
static size_t
tf_entry_need(const struct tf *t)
{
  size_t need = 2 * 48;

  for(int i = 0; i < TF_NENTRYF; i++) {
    if(t->ef[i].present)
      need += 32 + t->ef[i].b.len;
  }
  return need;
}

/*
 * Writes the entry's part of its record at w (room for tf_entry_need
 * bytes): its columns in table order, index and parent included. Returns
 * the end of what was written.
 */
static char *
tf_put_entry(const struct tf *t, char *w, int64_t position)
{
#define PUT_FIELD(i)                                                     \
  do {                                                                   \
    if(t->ef[i].present) {                                               \
      size_t nl = strlen(tf_entry_names[i]);                             \
      memcpy(w, tf_entry_names[i], nl);                                  \
      w += nl;                                                           \
      memcpy(w, t->ef[i].b.data, t->ef[i].b.len);                        \
      w += t->ef[i].b.len;                                               \
    }                                                                    \
  } while(0)

  PUT_FIELD(TF_INFO);
  PUT_FIELD(TF_CLASSIFICATION);
  /*
   * index: the entry's own; its position in tc_report when it has none (or
   * null); omitted, like any int column, when it does not convert.
   */
  if(!t->index_seen || (t->has_index && in_int32(t->index))) {
    memcpy(w, ",\"index\":", 9);
    w += 9;
    w += fmt_i64(w, t->index_seen ? t->index : position);
  }
  if(t->has_parent && in_int32(t->parent)) {
    memcpy(w, ",\"parent\":", 10);
    w += 10;
    w += fmt_i64(w, t->parent);
  }
  PUT_FIELD(TF_STORY);
  PUT_FIELD(TF_TAGS);
  PUT_FIELD(TF_INTERESTING);
#undef PUT_FIELD
  return w;
}

/* The entry-level columns of the entry just read that were shrunk. */
static unsigned
tf_entry_shrunk(const struct tf *t)
{
  unsigned shrunk = 0;

  for(int i = 0; i < TF_NENTRYF; i++)
    shrunk += (unsigned)t->ef[i].shrunk;
  return shrunk;
}

/*
 * Starts a record in t->rec with room for extra more bytes: the fixed
 * TimeGenerated prefix and the task's fragment. Returns where the entry's
 * part goes, or NULL when the room cannot be had (ERR_NOMEM).
 */
static char *
tf_rec_begin(struct tf *t, const struct tf_task *ti, size_t extra)
{
  char *w;

  t->rec.len = 0;
  if(buf_reserve(&t->rec, 64 + ti->frag_len + extra) != 0)
    return NULL;
  w = t->rec.data;
  memcpy(w, "{\"TimeGenerated\":\"", TRANSFORM_TG_OFFSET);
  w += TRANSFORM_TG_OFFSET;
  memcpy(w, ti->tgs, TRANSFORM_TG_LEN);
  w += TRANSFORM_TG_LEN;
  *w++ = '"';
  memcpy(w, t->frag.data + ti->frag_off, ti->frag_len);
  return w + ti->frag_len;
}

/* Closes the record that ends at w and hands it to emit. */
static int
tf_rec_end(struct tf *t, const struct tf_task *ti, size_t task, size_t entry,
           char *w, unsigned shrunk)
{
  struct transform_record r;
  int rc;

  *w++ = '}';
  t->rec.len = (size_t)(w - t->rec.data);
  r.json = t->rec.data;
  r.len = t->rec.len;
  r.time_generated = ti->tg;
  r.task = task;
  r.entry = entry;
  r.shrunk = shrunk;
  t->st.records++;
  t->st.shrunk += shrunk;
  rc = t->emit(t->ud, &r);
  if(rc) {
    t->emit_rc = rc;
    return ERR_ABORTED;
  }
  return 0;
}

/* Assembles the record of the entry just read and hands it to emit. */
static int
tf_emit_record(struct tf *t, const struct tf_task *ti, size_t task,
               size_t entry, int64_t position)
{
  char *w = tf_rec_begin(t, ti, tf_entry_need(t));

  if(!w)
    return ERR_NOMEM;
  w = tf_put_entry(t, w, position);
  return tf_rec_end(t, ti, task, entry, w, ti->shrunk + tf_entry_shrunk(t));
}

/*
 * Keeps the entry part of the record of the entry just read (the one
 * pass), or gives the one pass up when it does not fit TF_CAPTURE_BUDGET.
 */
static int
tf_capture_entry(struct tf *t, int64_t position)
{
  size_t need = tf_entry_need(t);
  struct tf_centry *ce;
  char *w;

  if(t->cap.len + need + (t->ncent + 1) * sizeof(*ce) > TF_CAPTURE_BUDGET) {
    tf_cap_drop(t);
    return 0;
  }
  if(t->ncent == t->capcent) {
    size_t ncap = t->capcent ? t->capcent * 2 : 64;
    struct tf_centry *n = realloc(t->cent, ncap * sizeof(*n));

    if(!n)
      return ERR_NOMEM;
    t->cent = n;
    t->capcent = ncap;
  }
  if(buf_reserve(&t->cap, need) != 0) {
    tf_cap_drop(t);
    return 0;
  }
  w = tf_put_entry(t, t->cap.data + t->cap.len, position);
  ce = &t->cent[t->ncent++];
  ce->off = t->cap.len;
  ce->len = (size_t)(w - (t->cap.data + t->cap.len));
  ce->shrunk = tf_entry_shrunk(t);
  t->cap.len += ce->len;
  return 0;
}

/* Emits every record from what the validate pass captured (one pass). */
static int
tf_emit_captured(struct tf *t)
{
  int rc;

  for(size_t i = 0; i < t->ntab; i++) {
    const struct tf_task *ti = &t->tab[i];

    for(uint64_t k = 0; k < ti->nentries; k++) {
      const struct tf_centry *ce = &t->cent[ti->cent0 + k];
      char *w = tf_rec_begin(t, ti, ce->len);

      if(!w)
        return ERR_NOMEM;
      memcpy(w, t->cap.data + ce->off, ce->len);
      rc = tf_rec_end(t, ti, i, (size_t)k, w + ce->len,
                      ti->shrunk + ce->shrunk);
      if(rc)
        return rc;
    }
  }
  return 0;
}

/*
 * Reads one tc_report entry (at its '{'): its columns into t->ef, index and
 * parent. depth counts the containers around the entry. Validates when the
 * scanner does.
 */
static int
tf_read_entry(struct tf *t, unsigned depth)
{
  struct jscan *js = t->js;
  const struct tf_key *k;
  char key[TF_KEY_CAP];
  size_t klen;
  int c, rc;

  for(int i = 0; i < TF_NENTRYF; i++) {
    t->ef[i].b.len = 0;
    t->ef[i].present = 0;
    t->ef[i].shrunk = 0;
  }
  t->index_seen = t->has_index = t->has_parent = 0;
  jscan_next(js); /* '{' */
  c = jscan_peek(js);
  if(c == '}') {
    jscan_next(js);
    return 0;
  }
  for(;;) {
    if(c != '"')
      return tf_unexpected(t, c, "expected a string key");
    if((rc = jscan_key(js, key, sizeof(key), &klen)) != 0)
      return rc;
    k = tf_lookup(tf_entry_keys, sizeof(tf_entry_keys) / sizeof(*k), key,
                  klen);
    switch(k ? k->kind : TF_K_OTHER) {
    case TF_K_DYN:
      rc = tf_capture(t, &t->ef[k->slot], 0, depth + 1);
      break;
    case TF_K_INDEX:
      /* A null index counts as absent: the position stands in. */
      t->index_seen = jscan_peek(js) != 'n';
      rc = jscan_int(js, depth + 1, &t->has_index, &t->index);
      break;
    case TF_K_PARENT:
      rc = jscan_int(js, depth + 1, &t->has_parent, &t->parent);
      break;
    default:
      rc = jscan_skip(js, depth + 1);
      break;
    }
    if(rc)
      return rc;
    c = jscan_peek(js);
    if(c == ',') {
      jscan_next(js);
      c = jscan_peek(js);
      continue;
    }
    if(c == '}') {
      jscan_next(js);
      return 0;
    }
    return tf_unexpected(t, c, "expected ',' or '}'");
  }
}

/* Reads one tc_report entry (at its '{') in the emit pass and emits it. */
static int
tf_entry(struct tf *t, const struct tf_task *ti, size_t task, size_t pos,
         unsigned depth)
{
  int rc = tf_read_entry(t, depth);

  if(rc)
    return rc;
  return tf_emit_record(t, ti, task, pos, (int64_t)pos);
}

/* Emits the records of one task of the group (at its '{'). */
static int
tf_emit_task(struct tf *t, const struct tf_task *ti, size_t task,
             unsigned depth)
{
  struct jscan *js = t->js;
  char key[TF_KEY_CAP];
  size_t klen, pos;
  int c, rc, done = 0;

  jscan_next(js); /* '{' */
  c = jscan_peek(js);
  while(c != '}') {
    if(c != '"')
      return tf_unexpected(t, c, "expected a string key");
    if((rc = jscan_key(js, key, sizeof(key), &klen)) != 0)
      return rc;
    c = jscan_peek(js);
    if(c == '[' && jscan_offset(js) == ti->tc_off && klen == 9 &&
       !memcmp(key, "tc_report", 9)) {
      jscan_next(js);
      pos = 0;
      c = jscan_peek(js);
      if(c == ']')
        jscan_next(js);
      else {
        for(;;) {
          if(c != '{')
            return tf_unexpected(t, c, "tc_report entry is not an object");
          if((rc = tf_entry(t, ti, task, pos, depth + 2)) != 0)
            return rc;
          pos++;
          c = jscan_peek(js);
          if(c == ',') {
            jscan_next(js);
            c = jscan_peek(js);
            continue;
          }
          if(c == ']') {
            jscan_next(js);
            break;
          }
          return tf_unexpected(t, c, "expected ',' or ']'");
        }
      }
      if(pos != ti->nentries)
        return tf_fail(t, "tc_report changed", jscan_offset(js));
      done = 1;
    }
    else if((rc = jscan_skip(js, depth + 1)) != 0)
      return rc;
    c = jscan_peek(js);
    if(c == ',') {
      jscan_next(js);
      c = jscan_peek(js);
    }
    else if(c != '}')
      return tf_unexpected(t, c, "expected ',' or '}'");
  }
  jscan_next(js);
  if(!done)
    return tf_fail(t, "tc_report moved", jscan_offset(js));
  return 0;
}

/*
 * Handles the task object idx (at its '{') in the current pass. Sets *stop
 * when the pass has nothing more to do with the rest of the input.
 */
static int
tf_task(struct tf *t, size_t idx, unsigned depth, int *stop)
{
  int rc;

  switch(t->mode) {
  case TF_VALIDATE:
    if((rc = tf_read_task(t, depth)) != 0)
      return rc;
    t->ntasks++;
    return tf_store_task(t);
  case TF_COLLECT:
    if(idx < t->first)
      return jscan_skip(t->js, depth);
    if(t->tab_full) {
      *stop = 1;
      return 0;
    }
    if((rc = tf_read_task(t, depth)) != 0)
      return rc;
    return tf_store_task(t);
  default:
    if(idx < t->first)
      return jscan_skip(t->js, depth);
    if(idx >= t->first + t->ntab) {
      *stop = 1;
      return 0;
    }
    return tf_emit_task(t, &t->tab[idx - t->first], idx, depth);
  }
}

/* One pass over the whole input: the top level, then each task object. */
static int
tf_pass(struct tf *t)
{
  struct jscan *js = t->js;
  size_t idx = 0;
  int c, rc, stop = 0;

  if((rc = jscan_rewind(js)) != 0 || (rc = jscan_skip_bom(js)) != 0)
    return rc;
  c = jscan_peek(js);
  if(c < 0)
    return c;
  if(c == JSCAN_END)
    return tf_fail(t, "empty input", jscan_offset(js));
  if(c == '[') {
    jscan_next(js);
    c = jscan_peek(js);
    if(c == ']')
      return tf_fail(t, "empty top-level array", jscan_offset(js));
    for(;; idx++) {
      if(c != '{')
        return tf_unexpected(t, c, "task report is not an object");
      if((rc = tf_task(t, idx, 1, &stop)) != 0 || stop)
        return rc;
      c = jscan_peek(js);
      if(c == ',') {
        jscan_next(js);
        c = jscan_peek(js);
        continue;
      }
      if(c == ']') {
        jscan_next(js);
        break;
      }
      return tf_unexpected(t, c, "expected ',' or ']'");
    }
    c = jscan_peek(js);
    if(c != JSCAN_END)
      return tf_unexpected(t, c, "unexpected data after the top-level array");
    return 0;
  }
  if(c != '{')
    return tf_fail(t, "top-level value is not an object or array",
                   jscan_offset(js));
  /* One object, or NDJSON: objects separated by whitespace. */
  for(;; idx++) {
    if((rc = tf_task(t, idx, 0, &stop)) != 0 || stop)
      return rc;
    c = jscan_peek(js);
    if(c == JSCAN_END)
      return 0;
    if(c != '{')
      return tf_unexpected(t, c, "unexpected data after a task object");
  }
}

static void
tf_free(struct tf *t)
{
  jscan_destroy(t->js);
  for(int i = 0; i < TF_NTASKF; i++)
    buf_free(&t->tf[i].b);
  for(int i = 0; i < TF_NENTRYF; i++)
    buf_free(&t->ef[i].b);
  buf_free(&t->frag);
  buf_free(&t->rec);
  buf_free(&t->cap);
  free(t->cent);
  free(t->tab);
}

int
transform_run(const struct transform_source *src,
              const struct transform_opts *opts, transform_emit_cb emit,
              void *ud, struct transform_stats *stats,
              struct transform_error *err)
{
  struct tf t;
  const char *msg;
  uint64_t off;
  int rc;

  if(err)
    memset(err, 0, sizeof(*err));
  if(stats)
    memset(stats, 0, sizeof(*stats));
  if(!src || !emit)
    return ERR_INVAL;
  memset(&t, 0, sizeof(t));
  t.maxf = opts && opts->max_field_bytes ? opts->max_field_bytes
                                         : TRANSFORM_DEFAULT_MAX_FIELD;
  if(t.maxf > TF_MAX_FIELD_LIMIT)
    return ERR_INVAL;
  t.last_modified = opts ? opts->last_modified : -1;
  t.now = opts ? opts->now : (int64_t)time(NULL);
  t.emit = emit;
  t.ud = ud;
  /* At least one task always fits, whatever max_field_bytes is. */
  t.budget = TF_TASK_BUDGET;
  if(t.budget < 12 * (t.maxf + 64))
    t.budget = 12 * (t.maxf + 64);
  for(int i = 0; i < TF_NTASKF; i++)
    buf_init(&t.tf[i].b, t.maxf + 64);
  for(int i = 0; i < TF_NENTRYF; i++)
    buf_init(&t.ef[i].b, t.maxf + 64);
  buf_init(&t.frag, t.budget);
  buf_init(&t.rec, 17 * (t.maxf + 64) + 256);
  buf_init(&t.cap, TF_CAPTURE_BUDGET);
  t.cap_on = !(opts && opts->two_pass);
  /* As the batcher's body (batcher_create): a typical blob's entry parts
     at once rather than grown from 64 bytes (a failure here only means
     growing later). */
  if(t.cap_on)
    (void)buf_reserve(&t.cap, TF_CAPTURE_INITIAL);
  if((rc = jscan_create(src, &t.js)) != 0)
    goto out;

  /* Pass 1: validate everything, collect the first group of tasks. */
  t.mode = TF_VALIDATE;
  jscan_set_validate(t.js, 1);
  if((rc = tf_pass(&t)) != 0)
    goto fail;
  t.st.bytes = jscan_offset(t.js);
  t.st.tasks = t.ntasks;
  if(t.cap_on) {
    /* Everything checked out and every record's entry part is at hand. */
    if((rc = tf_emit_captured(&t)) != 0)
      goto fail;
    goto out;
  }

  /* Then emit group by group. */
  jscan_set_validate(t.js, 0);
  for(;;) {
    t.mode = TF_EMIT;
    if((rc = tf_pass(&t)) != 0)
      goto fail;
    if(t.first + t.ntab >= t.ntasks)
      break;
    t.first += t.ntab;
    t.ntab = 0;
    t.tab_full = 0;
    buf_reset(&t.frag);
    t.mode = TF_COLLECT;
    if((rc = tf_pass(&t)) != 0)
      goto fail;
    if(t.ntab == 0) {
      rc = ERR_CHANGED;
      goto fail;
    }
  }
  goto out;

fail:
  if(t.emit_rc) {
    rc = t.emit_rc;
    goto out;
  }
  if(t.mode != TF_VALIDATE && rc == ERR_PARSE)
    rc = ERR_CHANGED;
  if(err) {
    msg = jscan_error(t.js, &off);
    if(rc == ERR_CHANGED)
      msg = "the input changed between passes";
    else if(!msg)
      msg = err_str(rc);
    snprintf(err->text, sizeof(err->text), "%s", msg);
    err->offset = off;
    if(rc == ERR_PARSE || rc == ERR_TOOBIG)
      jscan_locate(t.js, off, &err->line, &err->column);
  }
out:
  if(stats)
    *stats = t.st;
  tf_free(&t);
  return rc;
}

int
transform_buffer(const void *data, size_t len,
                 const struct transform_opts *opts, transform_emit_cb emit,
                 void *ud, struct transform_stats *stats,
                 struct transform_error *err)
{
  struct source *s = NULL;
  int rc;

  if(err)
    memset(err, 0, sizeof(*err));
  if(stats)
    memset(stats, 0, sizeof(*stats));
  rc = source_open_buffer(data, len, opts ? opts->max_input_bytes : 0, &s);
  if(rc)
    return rc;
  rc = transform_run(source_transform(s), opts, emit, ud, stats, err);
  source_destroy(s);
  return rc;
}

int
transform_file(const char *path, const struct transform_opts *opts,
               transform_emit_cb emit, void *ud,
               struct transform_stats *stats, struct transform_error *err)
{
  struct source *s = NULL;
  int rc;

  if(err)
    memset(err, 0, sizeof(*err));
  if(stats)
    memset(stats, 0, sizeof(*stats));
  rc = source_open_file(path, opts ? opts->max_input_bytes : 0, &s);
  if(rc)
    return rc;
  rc = transform_run(source_transform(s), opts, emit, ud, stats, err);
  source_destroy(s);
  return rc;
}
