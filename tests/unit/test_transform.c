/*
 * test_transform.c: the report-to-records transform (SPEC section 2).
 *
 * Records are checked three ways: byte for byte against fixtures whose
 * values were checked by hand (and against the Python baseline), against
 * an independent mapping written here over jansson's parse of the input
 * (ref_record), and structurally (every record parses, columns in table
 * order, TimeGenerated at its fixed offset). Shrinking is checked against
 * a reference shrink over jansson values (ref_shrink), on both code paths
 * (task-level columns are copied while validating, entry-level ones by the
 * block copier of the emit pass). Bad input is checked for its message and
 * its exact location.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <jansson.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "buf.h"
#include "err.h"
#include "source.h"
#include "transform.h"

#define NOW INT64_C(1782864000) /* 2026-07-01T00:00:00Z, the tests' "now" */

static const char *const columns[] = {
  "TimeGenerated", "task_id", "submitted", "processed", "process_duration",
  "direct_sender", "worker_address", "worker_hostname", "worker_ip",
  "forwarded_for", "info", "classification", "index", "parent", "story",
  "tags", "interesting_strings",
};
#define NCOLUMNS (sizeof(columns) / sizeof(columns[0]))

/* ---- Collecting records ------------------------------------------------ */

struct got {
  json_t *recs;       /* the parsed records */
  struct buf raw;     /* the records, one per line */
  size_t n;
  unsigned shrunk;    /* sum of rec->shrunk */
  size_t *task, *entry;
  size_t cap;
  size_t max_len;     /* if non-zero: every record must be at most this */
  size_t stop_at;     /* if non-zero: return 42 at this record (1-based) */
};

static void
got_init(struct got *g)
{
  memset(g, 0, sizeof(*g));
  g->recs = json_array();
  buf_init(&g->raw, (size_t)1 << 30);
}

static void
got_free(struct got *g)
{
  json_decref(g->recs);
  buf_free(&g->raw);
  free(g->task);
  free(g->entry);
}

/* The RFC 3339 form of t, computed with the C library, not the transform. */
static void
rfc3339(int64_t t, char out[32])
{
  time_t tt = (time_t)t;
  struct tm tm;

  assert_non_null(gmtime_r(&tt, &tm));
  strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* Checks what every record must be, then keeps it. */
static int
collect(void *ud, const struct transform_record *r)
{
  struct got *g = ud;
  json_error_t je;
  json_t *rec, *v;
  const char *key;
  char tg[32];
  size_t col = 0;

  /*
   * Valid JSON, an object, columns in table order, each at most once
   * (values are verbatim: duplicate keys inside them are not ours).
   */
  rec = json_loadb(r->json, r->len, JSON_ALLOW_NUL, &je);
  if(!rec)
    fail_msg("record %zu is not JSON: %s: %.*s", g->n, je.text,
             (int)r->len, r->json);
  assert_true(json_is_object(rec));
  json_object_foreach(rec, key, v) {
    while(col < NCOLUMNS && strcmp(columns[col], key))
      col++;
    if(col == NCOLUMNS)
      fail_msg("column %s out of order or unknown", key);
    col++;
  }
  /* TimeGenerated first, at its fixed offset, matching time_generated. */
  assert_memory_equal(r->json, "{\"TimeGenerated\":\"", TRANSFORM_TG_OFFSET);
  rfc3339(r->time_generated, tg);
  assert_int_equal(strlen(tg), TRANSFORM_TG_LEN);
  assert_memory_equal(r->json + TRANSFORM_TG_OFFSET, tg, TRANSFORM_TG_LEN);
  assert_int_equal(r->json[TRANSFORM_TG_OFFSET + TRANSFORM_TG_LEN], '"');
  if(g->max_len)
    assert_true(r->len <= g->max_len);
  json_array_append_new(g->recs, rec);
  assert_int_equal(buf_append(&g->raw, r->json, r->len), 0);
  assert_int_equal(buf_putc(&g->raw, '\n'), 0);
  if(g->n == g->cap) {
    g->cap = g->cap ? 2 * g->cap : 64;
    g->task = realloc(g->task, g->cap * sizeof(size_t));
    g->entry = realloc(g->entry, g->cap * sizeof(size_t));
    assert_non_null(g->task);
    assert_non_null(g->entry);
  }
  g->task[g->n] = r->task;
  g->entry[g->n] = r->entry;
  g->shrunk += r->shrunk;
  g->n++;
  if(g->stop_at && g->n == g->stop_at)
    return 42;
  return 0;
}

static struct transform_opts
opts_default(void)
{
  struct transform_opts o;

  memset(&o, 0, sizeof(o));
  o.max_field_bytes = 0;
  o.last_modified = -1;
  o.now = NOW;
  return o;
}

/*
 * Transforms in again, scanned in place from a padded copy (the daemon's
 * way for a blob held in memory), and checks that the outcome is the one
 * the copying source gave: rc, every record byte, the stats and the error
 * with its location. The copy ends exactly at its TRANSFORM_PAD bytes of
 * slack, so a read past them is a fault under ASan and valgrind.
 */
static void
check_in_place(const char *in, size_t len, const struct transform_opts *o,
               const struct got *g, int rc, const struct transform_stats *st,
               const struct transform_error *e)
{
  unsigned char *copy = malloc(len + TRANSFORM_PAD);
  struct transform_stats st2;
  struct transform_error e2;
  struct source *src = NULL;
  struct got g2;
  int rc2, gz = len >= 2 && (unsigned char)in[0] == 0x1f &&
                (unsigned char)in[1] == 0x8b;
  uint64_t max = o ? o->max_input_bytes : 0;

  assert_non_null(copy);
  if(len)
    memcpy(copy, in, len);
  memset(copy + len, 0, TRANSFORM_PAD);
  memset(&st2, 0, sizeof(st2));
  memset(&e2, 0, sizeof(e2));
  got_init(&g2);
  g2.max_len = g->max_len;
  g2.stop_at = g->stop_at;
  assert_int_equal(source_open_padded(copy, len, max, &src), 0);
  /* Offered in place exactly when it can be: plain JSON within the cap. */
  if(!gz && len && (!max || len <= max))
    assert_ptr_equal(source_transform(src)->data, copy);
  else
    assert_null(source_transform(src)->data);
  rc2 = transform_run(source_transform(src), o, collect, &g2, &st2, &e2);
  source_destroy(src);
  assert_int_equal(rc2, rc);
  assert_int_equal(g2.n, g->n);
  assert_int_equal(g2.raw.len, g->raw.len);
  if(g->raw.len)
    assert_memory_equal(g2.raw.data, g->raw.data, g->raw.len);
  assert_memory_equal(&st2, st, sizeof(st2));
  assert_string_equal(e2.text, e->text);
  assert_int_equal(e2.offset, e->offset);
  assert_int_equal(e2.line, e->line);
  assert_int_equal(e2.column, e->column);
  got_free(&g2);
  free(copy);
}

/* Every run is checked both ways: copied through the window and in place. */
static int
run_len(const char *in, size_t len, const struct transform_opts *o,
        struct got *g, struct transform_stats *st,
        struct transform_error *e)
{
  struct transform_stats st1;
  struct transform_error e1;
  int rc = transform_buffer(in, len, o, collect, g, &st1, &e1);

  check_in_place(in, len, o, g, rc, &st1, &e1);
  if(st)
    *st = st1;
  if(e)
    *e = e1;
  return rc;
}

/* Transforms in (a string) with the default options into g. */
static int
run(const char *in, struct got *g, struct transform_error *e)
{
  struct transform_opts o = opts_default();

  got_init(g);
  return run_len(in, strlen(in), &o, g, NULL, e);
}

/*
 * Transforms in, which must succeed, and compares its records, one per
 * line, byte for byte with want (the records joined by newlines).
 */
static void
expect_records(const char *in, const char *want)
{
  struct transform_error e;
  struct got g;
  size_t wl = strlen(want);
  int rc = run(in, &g, &e);

  if(rc)
    fail_msg("transform failed (%d): %s at %llu", rc, e.text,
             (unsigned long long)e.offset);
  if(g.raw.len != wl + 1 || memcmp(g.raw.data, want, wl) ||
     g.raw.data[wl] != '\n')
    fail_msg("input %s\n got  %s want %s", in, g.raw.data, want);
  got_free(&g);
}

static char *
read_file(const char *path, size_t *len)
{
  FILE *f = fopen(path, "rb");
  struct buf b;
  char chunk[65536];
  size_t n;

  assert_non_null(f);
  buf_init(&b, (size_t)1 << 30);
  while((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
    assert_int_equal(buf_append(&b, chunk, n), 0);
  fclose(f);
  if(!b.data)
    assert_int_equal(buf_puts(&b, ""), 0);
  return buf_detach(&b, len);
}

/* ---- An independent mapping over jansson values ------------------------ */

/* int columns: integers, finite reals truncated, decimal strings. */
static int
ref_int(json_t *v, int64_t *out)
{
  if(json_is_integer(v)) {
    *out = json_integer_value(v);
    return 1;
  }
  if(json_is_real(v)) {
    double d = json_real_value(v);

    if(!isfinite(d) || fabs(d) >= 9.2e18)
      return 0;
    *out = (int64_t)trunc(d);
    return 1;
  }
  if(json_is_string(v)) {
    const char *s = json_string_value(v);
    size_t i = *s == '+' || *s == '-';

    if(!s[i])
      return 0;
    for(size_t j = i; s[j]; j++) {
      if(s[j] < '0' || s[j] > '9')
        return 0;
    }
    *out = strtoll(s, NULL, 10);
    return 1;
  }
  return 0;
}

static int
ref_in32(int64_t v)
{
  return v >= INT32_MIN && v <= INT32_MAX;
}

/* string columns: strings, integers and booleans as text. */
static json_t *
ref_text(json_t *v)
{
  char num[32];

  if(json_is_string(v))
    return json_incref(v);
  if(json_is_integer(v)) {
    snprintf(num, sizeof(num), "%" JSON_INTEGER_FORMAT,
             json_integer_value(v));
    return json_string(num);
  }
  if(json_is_true(v))
    return json_string("true");
  if(json_is_false(v))
    return json_string("false");
  return NULL;
}

static void
ref_set(json_t *rec, const char *k, json_t *v)
{
  if(v)
    json_object_set_new(rec, k, v);
}

static void
ref_set_int(json_t *rec, const char *k, json_t *src)
{
  int64_t i;

  if(ref_int(src, &i) && ref_in32(i))
    json_object_set_new(rec, k, json_integer(i));
}

static void
ref_set_dyn(json_t *rec, const char *k, json_t *src)
{
  if(src && !json_is_null(src))
    json_object_set(rec, k, src);
}

/* The record SPEC section 2 asks for, for entry pos of task (no shrink). */
static json_t *
ref_record(json_t *task, size_t pos, int64_t last_modified, int64_t now)
{
  json_t *rec = json_object();
  json_t *e = json_array_get(json_object_get(task, "tc_report"), pos);
  json_t *iv;
  int64_t sub = 0, proc = 0, t, dur, idx;
  int has_sub, has_proc;
  char tg[32];

  has_sub = ref_int(json_object_get(task, "submitted"), &sub);
  has_proc = ref_int(json_object_get(task, "processed"), &proc);
  if(has_proc && proc >= 0 && proc <= INT64_C(253402300799))
    t = proc;
  else if(has_sub && sub >= 0 && sub <= INT64_C(253402300799))
    t = sub;
  else if(last_modified >= 0)
    t = last_modified;
  else
    t = now;
  rfc3339(t, tg);
  json_object_set_new(rec, "TimeGenerated", json_string(tg));
  ref_set(rec, "task_id", ref_text(json_object_get(task, "task_id")));
  ref_set_int(rec, "submitted", json_object_get(task, "submitted"));
  ref_set_int(rec, "processed", json_object_get(task, "processed"));
  if(ref_int(json_object_get(task, "process_duration"), &dur) &&
     ref_in32(dur))
    json_object_set_new(rec, "process_duration", json_integer(dur));
  else if(has_sub && has_proc && proc >= sub && ref_in32(proc - sub))
    json_object_set_new(rec, "process_duration", json_integer(proc - sub));
  ref_set(rec, "direct_sender",
          ref_text(json_object_get(task, "direct_sender")));
  ref_set_dyn(rec, "worker_address", json_object_get(task, "worker_address"));
  ref_set(rec, "worker_hostname",
          ref_text(json_object_get(task, "worker_hostname")));
  ref_set_dyn(rec, "worker_ip", json_object_get(task, "worker_ip"));
  ref_set_dyn(rec, "forwarded_for", json_object_get(task, "forwarded_for"));
  ref_set_dyn(rec, "info", json_object_get(e, "info"));
  ref_set_dyn(rec, "classification", json_object_get(e, "classification"));
  iv = json_object_get(e, "index");
  if(!iv || json_is_null(iv))
    json_object_set_new(rec, "index", json_integer((json_int_t)pos));
  else if(ref_int(iv, &idx) && ref_in32(idx))
    json_object_set_new(rec, "index", json_integer(idx));
  ref_set_int(rec, "parent", json_object_get(e, "parent"));
  ref_set_dyn(rec, "story", json_object_get(e, "story"));
  ref_set_dyn(rec, "tags", json_object_get(e, "tags"));
  ref_set_dyn(rec, "interesting_strings",
              json_object_get(e, "interesting_strings"));
  return rec;
}

/* Checks g's records against ref_record for the tasks in the array. */
static void
check_against_ref(struct got *g, json_t *tasks, int64_t last_modified)
{
  size_t k = 0;

  for(size_t t = 0; t < json_array_size(tasks); t++) {
    json_t *task = json_array_get(tasks, t);
    size_t n = json_array_size(json_object_get(task, "tc_report"));

    for(size_t i = 0; i < n; i++, k++) {
      json_t *want = ref_record(task, i, last_modified, NOW);
      json_t *got = json_array_get(g->recs, k);

      assert_true(k < g->n);
      assert_int_equal(g->task[k], t);
      assert_int_equal(g->entry[k], i);
      if(!json_equal(want, got)) {
        char *a = json_dumps(want, JSON_COMPACT | JSON_PRESERVE_ORDER);
        char *b = json_dumps(got, JSON_COMPACT | JSON_PRESERVE_ORDER);

        fail_msg("task %zu entry %zu:\n want %s\n got  %s", t, i, a, b);
      }
      json_decref(want);
    }
  }
  assert_int_equal(k, g->n);
}

/* ---- The typical report ------------------------------------------------ */

static void
test_typical_report_every_column(void **state)
{
  struct transform_opts o = opts_default();
  struct transform_stats st;
  struct transform_error e;
  struct got g;
  size_t len, wlen;
  char *in = read_file("tests/data/reports/typical.json", &len);
  char *want = read_file("tests/data/reports/typical.ndjson", &wlen);
  json_t *doc, *tasks;

  (void)state;
  got_init(&g);
  assert_int_equal(run_len(in, len, &o, &g, &st, &e), 0);
  /* Byte for byte: compact, columns in order, strings verbatim. */
  assert_int_equal(g.raw.len, wlen);
  assert_memory_equal(g.raw.data, want, wlen);
  assert_int_equal(st.bytes, len);
  assert_int_equal(st.tasks, 1);
  assert_int_equal(st.records, 3);
  assert_int_equal(st.shrunk, 0);
  /* And value for value against the independent mapping. */
  doc = json_loadb(in, len, 0, NULL);
  assert_non_null(doc);
  tasks = json_pack("[O]", doc);
  check_against_ref(&g, tasks, -1);
  json_decref(tasks);
  json_decref(doc);
  got_free(&g);
  free(in);
  free(want);
}

static void
test_file_and_gzip_give_the_same_records(void **state)
{
  struct transform_opts o = opts_default();
  struct transform_error e;
  struct got a, b;
  char path[] = "/tmp/test_transform_XXXXXX";
  size_t len;
  char *in = read_file("tests/data/reports/typical.json", &len);
  uLongf zcap = compressBound((uLong)len) + 64;
  unsigned char *z = malloc(zcap);
  z_stream zs;
  int fd;

  (void)state;
  /* gzip it (a gzip wrapper: windowBits 16 + 15). */
  memset(&zs, 0, sizeof(zs));
  assert_int_equal(deflateInit2(&zs, 9, Z_DEFLATED, 31, 8,
                                Z_DEFAULT_STRATEGY), Z_OK);
  zs.next_in = (unsigned char *)in;
  zs.avail_in = (uInt)len;
  zs.next_out = z;
  zs.avail_out = (uInt)zcap;
  assert_int_equal(deflate(&zs, Z_FINISH), Z_STREAM_END);
  zcap -= zs.avail_out;
  deflateEnd(&zs);

  got_init(&a);
  assert_int_equal(run_len((const char *)z, zcap, &o, &a, NULL, &e), 0);
  assert_int_equal(a.n, 3);

  fd = mkstemp(path);
  assert_true(fd >= 0);
  assert_int_equal(write(fd, z, zcap), (ssize_t)zcap);
  close(fd);
  got_init(&b);
  assert_int_equal(transform_file(path, &o, collect, &b, NULL, &e), 0);
  assert_int_equal(b.raw.len, a.raw.len);
  assert_memory_equal(b.raw.data, a.raw.data, a.raw.len);
  unlink(path);
  assert_int_equal(transform_file(path, &o, collect, &b, NULL, &e),
                   ERR_NOTFOUND);
  got_free(&a);
  got_free(&b);
  free(z);
  free(in);
}

/* ---- An archive with 500 extracted files ------------------------------- */

static void
test_archive_500_children(void **state)
{
  struct transform_stats st;
  struct transform_error e;
  struct got g;
  struct buf in;

  (void)state;
  buf_init(&in, 1 << 24);
  assert_int_equal(buf_puts(&in, "{\"tc_report\":[{\"index\":0,\"info\":{"
                   "\"file\":{\"file_name\":\"archive.zip\"}},\"story\":"
                   "\"There are 500 extracted files.\"}"), 0);
  for(int i = 1; i <= 500; i++) {
    /* Every tenth child is old-style: no index, no parent. */
    if(i % 10 == 0)
      assert_int_equal(buf_printf(&in, ",\n {\"info\":{\"file\":{\"file_name"
                       "\":\"f%d\"}},\"classification\":{\"classification\":"
                       "%d}}", i, i % 4), 0);
    else
      assert_int_equal(buf_printf(&in, ",\n {\"index\":%d,\"parent\":%d,"
                       "\"info\":{\"file\":{\"file_name\":\"f%d\"}},"
                       "\"classification\":{\"classification\":%d}}",
                       i, i < 250 ? 0 : i - 1, i, i % 4), 0);
  }
  assert_int_equal(buf_puts(&in, "],\"task_id\":\"42\",\"processed\":"
                   "1782864423}"), 0);
  got_init(&g);
  assert_int_equal(transform_buffer(in.data, in.len, NULL, collect, &g, &st,
                                    &e), 0);
  assert_int_equal(g.n, 501);
  assert_int_equal(st.records, 501);
  for(size_t i = 0; i <= 500; i++) {
    json_t *r = json_array_get(g.recs, i);
    char name[32];

    assert_int_equal(g.entry[i], i);
    /* The index is the entry's own, or its position when absent. */
    assert_int_equal(json_integer_value(json_object_get(r, "index")), i);
    if(i == 0 || i % 10 == 0)
      assert_null(json_object_get(r, "parent"));
    else
      assert_int_equal(json_integer_value(json_object_get(r, "parent")),
                       i < 250 ? 0 : i - 1);
    snprintf(name, sizeof(name), i ? "f%zu" : "archive.zip", i);
    assert_string_equal(json_string_value(json_object_get(json_object_get(
                          json_object_get(r, "info"), "file"), "file_name")),
                        name);
    assert_string_equal(json_string_value(json_object_get(r, "task_id")),
                        "42");
  }
  got_free(&g);
  buf_free(&in);
}

/* ---- Column coercions (SPEC section 2) --------------------------------- */

#define TG_NOW "{\"TimeGenerated\":\"2026-07-01T00:00:00Z\""

static void
test_missing_keys_and_nulls(void **state)
{
  (void)state;
  /* Nothing but tc_report: TimeGenerated from now, index from position. */
  expect_records("{\"tc_report\":[{}]}", TG_NOW ",\"index\":0}");
  /* Nulls everywhere are absent columns. */
  expect_records("{\"tc_report\":[{\"info\":null,\"classification\":null,"
             "\"index\":null,\"parent\":null,\"story\":null,\"tags\":null,"
             "\"interesting_strings\":null}],\"task_id\":null,\"submitted\":"
             "null,\"processed\":null,\"process_duration\":null,"
             "\"direct_sender\":null,\"worker_address\":null,"
             "\"worker_hostname\":null,\"worker_ip\":null,"
             "\"forwarded_for\":null}",
             TG_NOW ",\"index\":0}");
  /* processed null (an unfinished task): TimeGenerated from submitted. */
  expect_records("{\"tc_report\":[{}],\"submitted\":1782864421,"
             "\"processed\":null}",
             "{\"TimeGenerated\":\"2026-07-01T00:07:01Z\",\"submitted\":"
             "1782864421,\"index\":0}");
}

static void
test_task_id_string_and_integer(void **state)
{
  (void)state;
  expect_records("{\"tc_report\":[{}],\"task_id\":15794}",
             TG_NOW ",\"task_id\":\"15794\",\"index\":0}");
  expect_records("{\"tc_report\":[{}],\"task_id\":\"abc-15794\"}",
             TG_NOW ",\"task_id\":\"abc-15794\",\"index\":0}");
  /* Numbers become their JSON text, whatever their size or form. */
  expect_records("{\"tc_report\":[{}],\"task_id\":-1.5e3}",
             TG_NOW ",\"task_id\":\"-1.5e3\",\"index\":0}");
  expect_records("{\"tc_report\":[{}],\"task_id\":"
                 "123456789012345678901234567890}",
             TG_NOW ",\"task_id\":\"123456789012345678901234567890\","
             "\"index\":0}");
  /* Objects and arrays cannot be a string column. */
  expect_records("{\"tc_report\":[{}],\"task_id\":{\"a\":1},"
             "\"direct_sender\":[1]}", TG_NOW ",\"index\":0}");
}

static void
test_booleans_to_strings(void **state)
{
  (void)state;
  expect_records("{\"tc_report\":[{}],\"worker_hostname\":true,"
             "\"direct_sender\":false,\"task_id\":true}",
             TG_NOW ",\"task_id\":\"true\",\"direct_sender\":\"false\","
             "\"worker_hostname\":\"true\",\"index\":0}");
  /* A boolean is not an int. */
  expect_records("{\"tc_report\":[{\"parent\":true}],\"submitted\":false}",
             TG_NOW ",\"index\":0}");
}

static void
test_int_columns_reals_and_decimal_strings(void **state)
{
  (void)state;
  /* Reals are truncated toward zero, exactly (not through a double). */
  expect_records("{\"tc_report\":[{\"parent\":-1.9}],\"submitted\":"
             "1624487864.9,\"processed\":1.6244878659e9,"
             "\"process_duration\":25e-1}",
             "{\"TimeGenerated\":\"2021-06-23T22:37:45Z\",\"submitted\":"
             "1624487864,\"processed\":1624487865,\"process_duration\":2,"
             "\"index\":0,\"parent\":-1}");
  expect_records("{\"tc_report\":[{\"parent\":2147483647.99999999999999999}]}",
             TG_NOW ",\"index\":0,\"parent\":2147483647}");
  expect_records("{\"tc_report\":[{\"parent\":0.000123e7,\"index\":-0.5}]}",
             TG_NOW ",\"index\":0,\"parent\":1230}");
  /* Decimal strings: an optional sign and digits, nothing else. */
  expect_records("{\"tc_report\":[{\"index\":\"7\",\"parent\":\"+0003\"}],"
             "\"submitted\":\"-12\"}",
             TG_NOW ",\"submitted\":-12,\"index\":7,\"parent\":3}");
  expect_records("{\"tc_report\":[{\"parent\":\" 5\"},{\"parent\":\"5 \"},"
             "{\"parent\":\"1.0\"},{\"parent\":\"\"},{\"parent\":\"0x10\"},"
             "{\"parent\":\"-\"},{\"parent\":\"1e3\"}]}",
             TG_NOW ",\"index\":0}\n" TG_NOW ",\"index\":1}\n"
             TG_NOW ",\"index\":2}\n" TG_NOW ",\"index\":3}\n"
             TG_NOW ",\"index\":4}\n" TG_NOW ",\"index\":5}\n"
             TG_NOW ",\"index\":6}");
}

static void
test_out_of_range_ints_are_omitted(void **state)
{
  (void)state;
  /* Log Analytics int is 32 bits: the limits pass, one beyond does not. */
  expect_records("{\"tc_report\":[{\"parent\":2147483647},{\"parent\":"
             "-2147483648},{\"parent\":2147483648},{\"parent\":-2147483649},"
             "{\"parent\":\"99999999999999999999\"},{\"parent\":1e10}]}",
             TG_NOW ",\"index\":0,\"parent\":2147483647}\n"
             TG_NOW ",\"index\":1,\"parent\":-2147483648}\n"
             TG_NOW ",\"index\":2}\n" TG_NOW ",\"index\":3}\n"
             TG_NOW ",\"index\":4}\n" TG_NOW ",\"index\":5}");
  /*
   * An index that is present but does not convert is omitted like any int
   * column; only an absent (or null) index takes the position.
   */
  expect_records("{\"tc_report\":[{\"index\":\"abc\"},{\"index\":4294967296},"
             "{\"index\":[0]}]}",
             TG_NOW "}\n" TG_NOW "}\n" TG_NOW "}");
  /* A submitted time beyond 2038 still dates the record. */
  expect_records("{\"tc_report\":[{}],\"submitted\":4102444800}",
             "{\"TimeGenerated\":\"2100-01-01T00:00:00Z\",\"index\":0}");
}

static void
test_process_duration(void **state)
{
  (void)state;
  /* Given: taken as is (also from a string), not recomputed. */
  expect_records("{\"tc_report\":[{}],\"submitted\":100,\"processed\":150,"
             "\"process_duration\":\"7\"}",
             "{\"TimeGenerated\":\"1970-01-01T00:02:30Z\",\"submitted\":100,"
             "\"processed\":150,\"process_duration\":7,\"index\":0}");
  /* Absent: processed - submitted. */
  expect_records("{\"tc_report\":[{}],\"submitted\":100,\"processed\":150}",
             "{\"TimeGenerated\":\"1970-01-01T00:02:30Z\",\"submitted\":100,"
             "\"processed\":150,\"process_duration\":50,\"index\":0}");
  /* Not when processed < submitted, nor with one of them missing. */
  expect_records("{\"tc_report\":[{}],\"submitted\":150,\"processed\":100}",
             "{\"TimeGenerated\":\"1970-01-01T00:01:40Z\",\"submitted\":150,"
             "\"processed\":100,\"index\":0}");
  expect_records("{\"tc_report\":[{}],\"processed\":100,\"process_duration\":"
             "\"x\"}",
             "{\"TimeGenerated\":\"1970-01-01T00:01:40Z\",\"processed\":100,"
             "\"index\":0}");
  /* An unconvertible given value falls back to the difference. */
  expect_records("{\"tc_report\":[{}],\"submitted\":1,\"processed\":4,"
             "\"process_duration\":{}}",
             "{\"TimeGenerated\":\"1970-01-01T00:00:04Z\",\"submitted\":1,"
             "\"processed\":4,\"process_duration\":3,\"index\":0}");
}

static void
test_time_generated_fallbacks(void **state)
{
  struct transform_opts o = opts_default();
  struct transform_error e;
  struct got g;
  const char *in = "{\"tc_report\":[{}]}";

  (void)state;
  /* processed, then submitted (each only within 1970..9999). */
  expect_records("{\"tc_report\":[{}],\"submitted\":1,\"processed\":2}",
             "{\"TimeGenerated\":\"1970-01-01T00:00:02Z\",\"submitted\":1,"
             "\"processed\":2,\"process_duration\":1,\"index\":0}");
  expect_records("{\"tc_report\":[{}],\"submitted\":0,\"processed\":-5}",
             "{\"TimeGenerated\":\"1970-01-01T00:00:00Z\",\"submitted\":0,"
             "\"processed\":-5,\"index\":0}");
  expect_records("{\"tc_report\":[{}],\"processed\":253402300799}",
             "{\"TimeGenerated\":\"9999-12-31T23:59:59Z\",\"index\":0}");
  expect_records("{\"tc_report\":[{}],\"processed\":253402300800}",
             TG_NOW ",\"index\":0}");
  /* Then the blob's Last-Modified, then now. */
  got_init(&g);
  o.last_modified = 1700000000;
  assert_int_equal(run_len(in, strlen(in), &o, &g, NULL, &e), 0);
  assert_string_equal(g.raw.data, "{\"TimeGenerated\":\"2023-11-14T22:13:20Z\""
                      ",\"index\":0}\n");
  got_free(&g);
  got_init(&g);
  o.last_modified = -1;
  o.now = 86399;
  assert_int_equal(run_len(in, strlen(in), &o, &g, NULL, &e), 0);
  assert_string_equal(g.raw.data, "{\"TimeGenerated\":\"1970-01-01T23:59:59Z\""
                      ",\"index\":0}\n");
  got_free(&g);
  /* Leap day. */
  expect_records("{\"tc_report\":[{}],\"processed\":1709251199}",
             "{\"TimeGenerated\":\"2024-02-29T23:59:59Z\",\"processed\":"
             "1709251199,\"index\":0}");
}

static void
test_scan_results_type_string_or_int(void **state)
{
  (void)state;
  expect_records("{\"tc_report\":[{\"classification\":{\"scan_results\":["
             "{\"type\":\"av\"},{\"type\":1}]}}]}",
             TG_NOW ",\"classification\":{\"scan_results\":[{\"type\":\"av\"},"
             "{\"type\":1}]},\"index\":0}");
}

static void
test_tc_report_before_or_after_task_keys(void **state)
{
  const char *want = "{\"TimeGenerated\":\"1970-01-01T00:00:09Z\","
                     "\"task_id\":\"7\",\"processed\":9,\"index\":0}";

  (void)state;
  expect_records("{\"tc_report\":[{}],\"task_id\":7,\"processed\":9}", want);
  expect_records("{\"task_id\":7,\"processed\":9,\"tc_report\":[{}]}", want);
  expect_records("{\"task_id\":7,\"tc_report\":[{}],\"processed\":9}", want);
}

static void
test_duplicate_keys_last_wins(void **state)
{
  (void)state;
  expect_records("{\"task_id\":1,\"tc_report\":[{\"info\":1,\"index\":5,"
             "\"info\":2,\"index\":null}],\"task_id\":2,"
             "\"worker_ip\":[1],\"worker_ip\":null}",
             TG_NOW ",\"task_id\":\"2\",\"info\":2,\"index\":0}");
  /* A second tc_report replaces the first. */
  expect_records("{\"tc_report\":[{\"info\":\"first\"}],"
             "\"tc_report\":[{\"info\":\"second\"}]}",
             TG_NOW ",\"info\":\"second\",\"index\":0}");
}

static void
test_verbatim_compact_and_escaped_keys(void **state)
{
  (void)state;
  /* Whitespace goes, string and number bytes stay as written. */
  expect_records("\xef\xbb\xbf {\r\n \"tc_report\" : [ {\n\t\"info\" : { "
                 "\"a b\" :"
             " [ 1.50 , -0 , 1E+2 , \"\\u00e9\\/\\\"x\" , true , false , null"
             " ] , \"\xc3\xa9\" : { } } } ] }\n",
             TG_NOW ",\"info\":{\"a b\":[1.50,-0,1E+2,\"\\u00e9\\/\\\"x\","
             "true,false,null],\"\xc3\xa9\":{}},\"index\":0}");
  /* Keys are compared after unescaping; unlisted keys are dropped. */
  expect_records("{\"tc_report\":[{\"\\u0069nfo\":1,\"Info\":2,\"story \":3,"
             "\"indicators\":[{\"story\":4}]}],\"task\\u005fid\":5}",
             TG_NOW ",\"task_id\":\"5\",\"info\":1,\"index\":0}");
}

static void
test_array_top_level_and_ndjson(void **state)
{
  struct transform_error e;
  struct got g;
  const char *arr = " [ {\"tc_report\":[{},{}],\"task_id\":1} , "
                    "{\"tc_report\":[],\"task_id\":2},"
                    "{\"tc_report\":[{}],\"task_id\":3} ] ";
  const char *nd = "{\"tc_report\":[{},{}],\"task_id\":1}\r\n\n"
                   "{\"tc_report\":[],\"task_id\":2}\n"
                   "   {\"tc_report\":[{}],\"task_id\":3}{\"tc_report\":[{}],"
                   "\"task_id\":4}\n";

  (void)state;
  assert_int_equal(run(arr, &g, &e), 0);
  assert_int_equal(g.n, 3);
  assert_int_equal(g.task[0], 0);
  assert_int_equal(g.entry[1], 1);
  assert_int_equal(g.task[2], 2);
  assert_int_equal(g.entry[2], 0);
  assert_string_equal(json_string_value(json_object_get(
                        json_array_get(g.recs, 2), "task_id")), "3");
  got_free(&g);
  assert_int_equal(run(nd, &g, &e), 0);
  assert_int_equal(g.n, 4);
  assert_int_equal(g.task[3], 3);
  assert_string_equal(json_string_value(json_object_get(
                        json_array_get(g.recs, 3), "task_id")), "4");
  got_free(&g);
}

static void
test_empty_tc_report_and_stats(void **state)
{
  struct transform_opts o = opts_default();
  struct transform_stats st;
  struct transform_error e;
  struct got g;
  const char *in = "{\"tc_report\":[]}\n{\"tc_report\":[{},{}]}";

  (void)state;
  got_init(&g);
  assert_int_equal(run_len(in, strlen(in), &o, &g, &st, &e), 0);
  assert_int_equal(g.n, 2);
  assert_int_equal(st.tasks, 2);
  assert_int_equal(st.records, 2);
  assert_int_equal(st.bytes, strlen(in));
  got_free(&g);
}

static void
test_emit_result_stops_the_transform(void **state)
{
  struct transform_error e;
  struct got g;
  const char *in = "{\"tc_report\":[{},{},{}]}";
  struct transform_opts o = opts_default();

  (void)state;
  got_init(&g);
  g.stop_at = 2;
  assert_int_equal(run_len(in, strlen(in), &o, &g, NULL, &e), 42);
  assert_int_equal(g.n, 2);
  got_free(&g);
}

static void
test_invalid_options(void **state)
{
  struct transform_opts o = opts_default();
  struct got g;

  (void)state;
  got_init(&g);
  o.max_field_bytes = (size_t)1 << 40;
  assert_int_equal(transform_buffer("{}", 2, &o, collect, &g, NULL, NULL),
                   ERR_INVAL);
  assert_int_equal(transform_buffer("{}", 2, NULL, NULL, &g, NULL, NULL),
                   ERR_INVAL);
  assert_int_equal(transform_run(NULL, NULL, collect, &g, NULL, NULL),
                   ERR_INVAL);
  got_free(&g);
}

/* ---- Shrinking -------------------------------------------------------- */

/* A deterministic pseudo-random sequence for the generated cases. */
static uint32_t
rnd(uint32_t *x)
{
  *x = *x * 1664525u + 1013904223u;
  return *x >> 8;
}

/* Transforms in with max_field_bytes max; returns the raw records. */
static char *
run_max(const char *in, size_t max, unsigned *shrunk)
{
  struct transform_opts o = opts_default();
  struct transform_error e;
  struct got g;
  char *out;
  int rc;

  got_init(&g);
  o.max_field_bytes = max;
  rc = run_len(in, strlen(in), &o, &g, NULL, &e);
  if(rc)
    fail_msg("transform failed (%d): %s", rc, e.text);
  if(shrunk)
    *shrunk = g.shrunk;
  out = strdup(g.raw.data ? g.raw.data : "");
  got_free(&g);
  return out;
}

/*
 * Shrinks value (JSON text) as an entry field (info) and as a task field
 * (worker_address) with max, checks that both agree, and returns the
 * shrunk value ("" when the column was omitted), which must be at most max
 * bytes of valid JSON.
 */
static char *
shrink_both(const char *value, size_t max)
{
  struct buf in;
  char *a, *b, *p, *q, *va, *vb;
  unsigned sa, sb;
  json_t *j;

  buf_init(&in, 1 << 26);
  assert_int_equal(buf_printf(&in, "{\"tc_report\":[{\"info\":%s}]}", value),
                   0);
  a = run_max(in.data, max, &sa);
  buf_reset(&in);
  assert_int_equal(buf_printf(&in, "{\"tc_report\":[{}],"
                              "\"worker_address\":%s}", value), 0);
  b = run_max(in.data, max, &sb);
  buf_free(&in);
  assert_int_equal(sa, sb);
  /* Cut the values out: between the column name and ,"index". */
  p = strstr(a, ",\"info\":");
  q = strstr(b, ",\"worker_address\":");
  va = strdup(p ? p + 8 : "");
  vb = strdup(q ? q + 18 : "");
  if((p = strstr(va, ",\"index\":")) != NULL)
    *p = '\0';
  if((q = strstr(vb, ",\"index\":")) != NULL)
    *q = '\0';
  if(strcmp(va, vb))
    fail_msg("paths disagree for %s max %zu:\n emit pass %s\n validate "
             "pass %s", value, max, va, vb);
  assert_true(strlen(va) <= max);
  if(*va) {
    j = json_loads(va, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
    if(!j)
      fail_msg("shrunk value is not JSON: %s", va);
    json_decref(j);
  }
  free(a);
  free(b);
  free(vb);
  return va;
}

static void
expect_shrink(const char *value, size_t max, const char *want)
{
  char *got = shrink_both(value, max);

  if(strcmp(got, want))
    fail_msg("shrink %s to %zu: got %s want %s", value, max, got, want);
  free(got);
}

static void
test_shrink_arrays_objects_strings(void **state)
{
  (void)state;
  /* Fits: untouched, not counted. */
  expect_shrink("[1,2,3]", 7, "[1,2,3]");
  /* Arrays: the longest fitting prefix. */
  expect_shrink("[1,2,3,4,5]", 6, "[1,2]");
  expect_shrink("[1,2,3,4,5]", 7, "[1,2,3]");
  expect_shrink("[123456]", 7, "[]");
  /* Then the next element shrunk, if something meaningful fits. */
  expect_shrink("[1,\"abcdef\"]", 8, "[1,\"ab\"]");
  expect_shrink("[1,\"abcdef\"]", 6, "[1]");
  expect_shrink("[[1,2,3],[4,5]]", 13, "[[1,2,3],[4]]");
  expect_shrink("[[1,2,3],[4,5]]", 12, "[[1,2,3]]");
  expect_shrink("[[1,2,3],[4,5]]", 10, "[[1,2,3]]");
  expect_shrink("[[1,2,3],[4,5]]", 7, "[[1,2]]");
  expect_shrink("[[1,2,3],[4,5]]", 6, "[[1]]");
  /* Nothing after a shrunk element, even a small one. */
  expect_shrink("[\"abcdefgh\",1]", 8, "[\"abcd\"]");
  /* Objects: members in order; a key is never cut. */
  expect_shrink("{\"a\":1,\"b\":22,\"c\":3}", 14, "{\"a\":1,\"b\":22}");
  expect_shrink("{\"a\":1,\"b\":22,\"c\":3}", 13, "{\"a\":1}");
  expect_shrink("{\"longkey\":\"v\"}", 10, "{}");
  expect_shrink("{\"k\":\"vvvvvv\",\"x\":1}", 12, "{\"k\":\"vvvv\"}");
  expect_shrink("{\"k\":\"vvvvvv\",\"x\":1}", 11, "{\"k\":\"vvv\"}");
  expect_shrink("{\"k\":\"vvvvvv\",\"x\":1}", 7, "{}");
  expect_shrink("{\"a\":{\"b\":[1,2,3]},\"c\":0}", 16, "{\"a\":{\"b\":[1]}}");
  /* The smallest member, ,"":0, still fits in the last five bytes. */
  expect_shrink("{\"a\":1,\"\":2,\"b\":33}", 12, "{\"a\":1,\"\":2}");
  expect_shrink("[{\"a\":1,\"\":2},3]", 14, "[{\"a\":1,\"\":2}]");
  /* Strings at the top keep at least their quotes. */
  expect_shrink("\"abcdefgh\"", 5, "\"abc\"");
  expect_shrink("\"abcdefgh\"", 2, "\"\"");
  /* A number or literal that does not fit is dropped: column omitted. */
  expect_shrink("123456", 5, "");
  expect_shrink("true", 3, "");
}

static void
test_shrink_utf8_and_escapes(void **state)
{
  (void)state;
  /* Multibyte UTF-8 is cut between characters. */
  expect_shrink("\"\xc3\xa9\xc3\xa9\xc3\xa9\"", 6, "\"\xc3\xa9\xc3\xa9\"");
  expect_shrink("\"\xc3\xa9\xc3\xa9\xc3\xa9\"", 5, "\"\xc3\xa9\"");
  expect_shrink("\"a\xe2\x82\xac\xf0\x9f\x98\x80\"", 8, "\"a\xe2\x82\xac\"");
  expect_shrink("[\"a\xe2\x82\xac\xf0\x9f\x98\x80\"]", 9,
                "[\"a\xe2\x82\xac\"]");
  /* Escapes are never split; a surrogate pair is one character. */
  expect_shrink("\"a\\nb\\u00e9c\"", 5, "\"a\\n\"");
  expect_shrink("\"a\\nb\\u00e9c\"", 4, "\"a\"");
  expect_shrink("\"a\\nb\\u00e9c\"", 11, "\"a\\nb\"");
  expect_shrink("\"a\\nb\\u00e9c\"", 12, "\"a\\nb\\u00e9\"");
  expect_shrink("\"\\ud83d\\ude00x\"", 13, "\"\"");
  expect_shrink("\"\\ud83d\\ude00x\"", 14, "\"\\ud83d\\ude00\"");
  expect_shrink("[\"\\ud83d\\ude00x\"]", 15, "[]");
  expect_shrink("[\"\\\\\\\\\\\\\"]", 6, "[\"\\\\\"]");
  /* A unit cut off by the end of the copied prefix is not kept. */
  expect_shrink("{\"a\":[1,\"\\u00e9\\ud83d\\ude00\"]}", 12, "{\"a\":[1]}");
  expect_shrink("{\"a\":[1,\"\xf0\x9f\x98\x80\xf0\x9f\x98\x80\"]}", 16,
                "{\"a\":[1,\"\xf0\x9f\x98\x80\"]}");
  expect_shrink("{\"a\":[1,\"\xf0\x9f\x98\x80\xf0\x9f\x98\x80\"]}", 15,
                "{\"a\":[1]}");
  expect_shrink("[\"ab\\ud83d\\ude00\"]", 12, "[\"ab\"]");
}

/* Appends a random JSON value as text, with escapes and UTF-8 in strings. */
static void
gen_text(struct buf *b, uint32_t *x, int depth)
{
  static const char *const units[] = {
    "a", "b", "7", " ", "\\n", "\\\"", "\\\\", "\\/", "\\u00e9",
    "\\ud83d\\ude00", "\xc3\xa9", "\xe2\x82\xac", "\xf0\x9f\x98\x80",
  };
  uint32_t k = rnd(x) % (depth > 3 ? 3 : 6);
  size_t n;

  switch(k) {
  case 0: case 1:
    buf_putc(b, '"');
    n = rnd(x) % 9;
    for(size_t i = 0; i < n; i++)
      buf_puts(b, units[rnd(x) % (sizeof(units) / sizeof(units[0]))]);
    buf_putc(b, '"');
    break;
  case 2:
    buf_printf(b, "%d", (int)(rnd(x) % 2000) - 100);
    break;
  case 3: case 4:
    buf_putc(b, '[');
    n = rnd(x) % 5;
    for(size_t i = 0; i < n; i++) {
      if(i)
        buf_putc(b, ',');
      gen_text(b, x, depth + 1);
    }
    buf_putc(b, ']');
    break;
  default:
    buf_putc(b, '{');
    n = rnd(x) % 4;
    for(size_t i = 0; i < n; i++) {
      if(rnd(x) % 3 == 0)
        buf_printf(b, "%s\"\":", i ? "," : "");
      else
        buf_printf(b, "%s\"k%zu\\u00e9\":", i ? "," : "", i);
      gen_text(b, x, depth + 1);
    }
    buf_putc(b, '}');
    break;
  }
}

static void
test_shrink_paths_agree_on_escapes_and_utf8(void **state)
{
  uint32_t x = 4711;
  int shrunk = 0;

  (void)state;
  for(int iter = 0; iter < 150; iter++) {
    struct buf v;

    buf_init(&v, 1 << 20);
    gen_text(&v, &x, 0);
    /* Every budget up to the whole value: cuts land on every unit. */
    for(size_t max = 2; max <= v.len + 1; max += 1 + v.len / 40) {
      /* shrink_both: same result on both paths, valid JSON, <= max. */
      free(shrink_both(v.data, max));
      shrunk += max < v.len;
    }
    buf_free(&v);
  }
  assert_true(shrunk > 1000);
}

static void
test_shrink_string_columns_and_counts(void **state)
{
  unsigned shrunk;
  char *out;

  (void)state;
  /* String columns shrink too, and each shrunk field counts per record. */
  out = run_max("{\"tc_report\":[{\"story\":\"0123456789\"},{}],"
                "\"task_id\":\"abcdefghijkl\",\"submitted\":1234567}", 8,
                &shrunk);
  assert_string_equal(out,
    "{\"TimeGenerated\":\"1970-01-15T06:56:07Z\",\"task_id\":\"abcdef\","
    "\"submitted\":1234567,\"index\":0,\"story\":\"012345\"}\n"
    "{\"TimeGenerated\":\"1970-01-15T06:56:07Z\",\"task_id\":\"abcdef\","
    "\"submitted\":1234567,\"index\":1}\n");
  assert_int_equal(shrunk, 3);
  free(out);
  /* A number as a string column is cut like text. */
  out = run_max("{\"tc_report\":[{}],\"task_id\":1234567890}", 6, &shrunk);
  assert_string_equal(out, TG_NOW ",\"task_id\":\"1234\",\"index\":0}\n");
  assert_int_equal(shrunk, 1);
  free(out);
}

/* ---- Shrinking against a reference over jansson values ----------------- */

static size_t
jsize(json_t *v)
{
  char *s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY |
                          JSON_PRESERVE_ORDER);
  size_t n = strlen(s);

  free(s);
  return n;
}

/*
 * The rule of jscan.h, written plainly: the compact text of v shrunk to
 * budget, or NULL when nothing meaningful fits (top: the empty form counts).
 */
static char *
ref_shrink(json_t *v, size_t budget, int top)
{
  struct buf o;
  char *s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY |
                          JSON_PRESERVE_ORDER);
  size_t used = 2, n = 0;

  if(strlen(s) <= budget)
    return s;
  free(s);
  if(budget < 2 || !(json_is_string(v) || json_is_array(v) ||
                     json_is_object(v)))
    return NULL;
  buf_init(&o, 1 << 24);
  if(json_is_string(v)) {
    /* ASCII without escapes in these tests: cut at any byte. */
    const char *t = json_string_value(v);
    size_t keep = budget - 2;

    if(!keep && !top) {
      buf_free(&o);
      return NULL;
    }
    buf_printf(&o, "\"%.*s\"", (int)keep, t);
    return buf_detach(&o, NULL);
  }
  buf_putc(&o, json_is_array(v) ? '[' : '{');
  if(json_is_array(v)) {
    size_t i;
    json_t *x;

    json_array_foreach(v, i, x) {
      size_t sep = n > 0, xs = jsize(x);
      char *part;

      if(used + sep + xs <= budget) {
        char *t = json_dumps(x, JSON_COMPACT | JSON_ENCODE_ANY |
                                JSON_PRESERVE_ORDER);

        buf_printf(&o, "%s%s", sep ? "," : "", t);
        free(t);
        used += sep + xs;
        n++;
        continue;
      }
      if(used + sep < budget &&
         (part = ref_shrink(x, budget - used - sep, 0)) != NULL) {
        buf_printf(&o, "%s%s", sep ? "," : "", part);
        free(part);
        n++;
      }
      break;
    }
  }
  else {
    const char *k;
    json_t *x;

    json_object_foreach(v, k, x) {
      size_t sep = n > 0, ks = strlen(k) + 3, xs = jsize(x);
      char *part;

      if(used + sep + ks + xs <= budget) {
        char *t = json_dumps(x, JSON_COMPACT | JSON_ENCODE_ANY |
                                JSON_PRESERVE_ORDER);

        buf_printf(&o, "%s\"%s\":%s", sep ? "," : "", k, t);
        free(t);
        used += sep + ks + xs;
        n++;
        continue;
      }
      if(used + sep + ks < budget &&
         (part = ref_shrink(x, budget - used - sep - ks, 0)) != NULL) {
        buf_printf(&o, "%s\"%s\":%s", sep ? "," : "", k, part);
        free(part);
        n++;
      }
      break;
    }
  }
  if(!n && !top) {
    buf_free(&o);
    return NULL;
  }
  buf_putc(&o, json_is_array(v) ? ']' : '}');
  return buf_detach(&o, NULL);
}

/* A random value: ASCII strings without escapes, integers, literals. */
static json_t *
gen(uint32_t *x, int depth)
{
  uint32_t k = rnd(x) % (depth > 4 ? 5 : 8);
  char s[40];

  switch(k) {
  case 0: case 1: {
    size_t n = rnd(x) % 24;

    for(size_t i = 0; i < n; i++)
      s[i] = "abcdefghij0123456789 -_.:"[rnd(x) % 25];
    s[n] = '\0';
    return json_string(s);
  }
  case 2:
    /* Often one digit: the smallest values make the tightest fits. */
    if(rnd(x) % 2)
      return json_integer((json_int_t)(rnd(x) % 10));
    return json_integer((json_int_t)(rnd(x) % 200000) - 1000);
  case 3:
    return rnd(x) % 2 ? json_true() : json_false();
  case 4:
    return json_null();
  case 5: case 6: {
    json_t *a = json_array();
    size_t n = rnd(x) % 7;

    for(size_t i = 0; i < n; i++)
      json_array_append_new(a, gen(x, depth + 1));
    return a;
  }
  default: {
    json_t *o = json_object();
    size_t n = rnd(x) % 6;
    int empty = 0;

    for(size_t i = 0; i < n; i++) {
      /* Short keys too: "" makes the smallest member, "":0. */
      if(!empty && rnd(x) % 3 == 0) {
        s[0] = '\0';
        empty = 1;
      }
      else
        snprintf(s, sizeof(s), "k%zu%.*s", i, (int)(rnd(x) % 6), "xyzxyz");
      json_object_set_new(o, s, gen(x, depth + 1));
    }
    return o;
  }
  }
}

static void
test_shrink_matches_reference_on_random_values(void **state)
{
  uint32_t x = 20261130;
  int checked = 0, shrunk = 0;

  (void)state;
  for(int iter = 0; iter < 250; iter++) {
    json_t *v = gen(&x, 0);
    char *text;
    size_t len;

    if(json_is_null(v)) {
      json_decref(v);
      continue;
    }
    text = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY |
                         JSON_PRESERVE_ORDER);
    len = strlen(text);
    /* Every budget: each cut point of the value gets its turn. */
    for(size_t max = 2; max <= len + 1; max += 1 + len / 200) {
      char *want = ref_shrink(v, max, 1);
      char *got = shrink_both(text, max);

      if(strcmp(got, want ? want : ""))
        fail_msg("value %s max %zu:\n got  %s\n want %s", text, max, got,
                 want ? want : "(omitted)");
      checked++;
      shrunk += len > max;
      free(want);
      free(got);
    }
    free(text);
    json_decref(v);
  }
  /* The generator must have exercised both outcomes. */
  assert_true(shrunk > 1000);
  assert_true(checked - shrunk > 200);
}

/* ---- Bad input: message and location ----------------------------------- */

struct bad {
  const char *in;
  size_t len;        /* 0: strlen(in) */
  const char *msg;
  uint64_t offset, line, column;
};

static void
test_bad_input_message_and_location(void **state)
{
  static char deep[1200];
  static const struct bad cases[] = {
    { "", 0, "empty input", 0, 1, 1 },
    { "  \n\t ", 0, "empty input", 5, 2, 3 },
    { "{\"tc_report\":[{\"a\":1}", 0, "unexpected end of input", 21, 1, 22 },
    { "{\"tc_report\":[{\"a\":\"xy", 0, "unexpected end of input", 22, 1, 23 },
    { "{\"tc_report\":[{\"a\":tru", 0, "unexpected end of input", 22, 1, 23 },
    { "{\"tc_report\":[{\"a\":1.", 0, "unexpected end of input", 21, 1, 22 },
    { "{\"tc_report\":[{\"a\":\"\\u12", 0, "unexpected end of input", 24, 1,
      25 },
    { "{\"tc_report\":[],\"x\":\"\xff\"}", 0, "invalid UTF-8 in string", 21,
      1, 22 },
    { "{\"tc_report\":[],\"x\":\"a\xc0\xaf\"}", 0, "invalid UTF-8 in string",
      22, 1, 23 },
    { "{\"tc_report\":[],\"x\":\"\xed\xa0\x80\"}", 0,
      "invalid UTF-8 in string", 21, 1, 22 },
    { "{\"tc_report\":[],\"x\":\"\xf4\x90\x80\x80\"}", 0,
      "invalid UTF-8 in string", 21, 1, 22 },
    { "{\"tc_report\":[],\"x\":\"\xe2\x82\"}", 0, "invalid UTF-8 in string",
      21, 1, 22 },
    { "{\"tc_report\":[{\"info\":\"\x80\"}]}", 0, "invalid UTF-8 in string",
      23, 1, 24 },
    { "{\"tc_report\":[],\"x\":\"\\ud800\"}", 0,
      "lone surrogate in \\u escape",
      21, 1, 22 },
    { "{\"tc_report\":[],\"x\":\"\\udc00\\ud800\"}", 0,
      "lone surrogate in \\u escape", 21, 1, 22 },
    { "{\"tc_report\":[],\"x\":\"\\ud800\\u0041\"}", 0,
      "lone surrogate in \\u escape", 21, 1, 22 },
    { "{\"tc_report\":[],\"x\":\"\\x\"}", 0, "invalid escape in string", 21,
      1, 22 },
    { "{\"tc_report\":[],\"x\":\"\\u12G4\"}", 0,
      "invalid \\u escape in string", 21, 1, 22 },
    { "{\"tc_report\":[],\"x\":\"a\tb\"}", 0, "control character in string",
      22, 1, 23 },
    { "{\"tc_report\":[],\"x\":\"a\0b\"}", 26, "control character in string",
      22, 1, 23 },
    { "{\"tc_report\":[],\"x\":01}", 0, "expected ',' or '}'", 21, 1, 22 },
    { "{\"tc_report\":[],\"x\":-}", 0, "invalid number", 21, 1, 22 },
    { "{\"tc_report\":[],\"x\":1.e5}", 0, "invalid number", 22, 1, 23 },
    { "{\"tc_report\":[],\"x\":.5}", 0, "unexpected character", 20, 1, 21 },
    { "{\"tc_report\":[],\"x\":+1}", 0, "unexpected character", 20, 1, 21 },
    { "{\"tc_report\":[],\"x\":nul}", 0, "invalid literal", 20, 1, 21 },
    { "{\"tc_report\":[],\"x\" 1}", 0, "expected ':'", 20, 1, 21 },
    { "{\"tc_report\":[],\"x\":[1,]}", 0, "unexpected character", 23, 1, 24 },
    { "{\"tc_report\":[],\"x\":{\"a\":1,}}", 0, "expected a string key", 27,
      1, 28 },
    { "{\"tc_report\":[],}", 0, "expected a string key", 16, 1, 17 },
    { "{\"tc_report\":[]\n,\n\"x\":\n  [1 2]}", 0, "expected ',' or ']'", 28,
      4, 6 },
    { "{\"task_id\":1}", 0, "no tc_report array", 0, 1, 1 },
    { "\n\n  {}", 0, "no tc_report array", 4, 3, 3 },
    { "{\"tc_report\":[]}\n{\"task_id\":1}", 0, "no tc_report array", 17, 2,
      1 },
    { "{\"tc_report\":{}}", 0, "tc_report is not an array", 13, 1, 14 },
    { "{\"tc_report\":null}", 0, "tc_report is not an array", 13, 1, 14 },
    { "{\"tc_report\":[{},1]}", 0, "tc_report entry is not an object", 17, 1,
      18 },
    { "{\"tc_report\":[[]]}", 0, "tc_report entry is not an object", 14, 1,
      15 },
    { "{\"tc_report\":[]} x", 0, "unexpected data after a task object", 17, 1,
      18 },
    { "{\"tc_report\":[]},{\"tc_report\":[]}", 0,
      "unexpected data after a task object", 16, 1, 17 },
    { "[{\"tc_report\":[]}] {}", 0,
      "unexpected data after the top-level array", 19, 1, 20 },
    { "[{\"tc_report\":[]},5]", 0, "task report is not an object", 18, 1,
      19 },
    { "[]", 0, "empty top-level array", 1, 1, 2 },
    { "5", 0, "top-level value is not an object or array", 0, 1, 1 },
    { "\"x\"", 0, "top-level value is not an object or array", 0, 1, 1 },
    { "null", 0, "top-level value is not an object or array", 0, 1, 1 },
    { "\x01{}", 0, "top-level value is not an object or array", 0, 1, 1 },
    { deep, 0, "nesting too deep", 0, 1, 0 }, /* filled in below */
  };
  size_t ncases = sizeof(cases) / sizeof(cases[0]);

  (void)state;
  /* 256 levels are fine; the 257th bracket is too deep. */
  strcpy(deep, "{\"tc_report\":[{\"info\":");
  for(int i = 0; i < 253; i++)
    strcat(deep, "[");
  strcat(deep, "1");
  for(int i = 0; i < 253; i++)
    strcat(deep, "]");
  strcat(deep, "}]}");
  {
    struct transform_error e;
    struct got g;

    assert_int_equal(run(deep, &g, &e), 0);
    assert_int_equal(g.n, 1);
    got_free(&g);
  }
  strcpy(deep, "{\"tc_report\":[{\"info\":");
  for(int i = 0; i < 254; i++)
    strcat(deep, "[");
  strcat(deep, "]}]}");

  for(size_t i = 0; i < ncases; i++) {
    const struct bad *c = &cases[i];
    struct transform_opts o = opts_default();
    struct transform_stats st;
    struct transform_error e;
    struct got g;
    size_t len = c->len ? c->len : strlen(c->in);
    uint64_t off = c->offset, col = c->column;
    int rc;

    if(c->in == deep) {
      off = 22 + 253; /* the 254th '[' is the 257th level */
      col = off + 1;
    }
    got_init(&g);
    rc = run_len(c->in, len, &o, &g, &st, &e);
    if(rc != ERR_PARSE || strcmp(e.text, c->msg) || e.offset != off ||
       e.line != c->line || e.column != col)
      fail_msg("case %zu (%.40s): rc %d \"%s\" at %llu line %llu column %llu;"
               " want \"%s\" at %llu line %llu column %llu", i, c->in, rc,
               e.text, (unsigned long long)e.offset,
               (unsigned long long)e.line, (unsigned long long)e.column,
               c->msg, (unsigned long long)off,
               (unsigned long long)c->line, (unsigned long long)col);
    /* All or nothing: no record was emitted. */
    assert_int_equal(g.n, 0);
    assert_int_equal(st.records, 0);
    got_free(&g);
  }
}

static void
test_nothing_emitted_before_validation(void **state)
{
  struct transform_error e;
  struct got g;
  struct buf in;

  (void)state;
  /* 1000 good entries, then a bad byte near the very end. */
  buf_init(&in, 1 << 24);
  assert_int_equal(buf_puts(&in, "{\"tc_report\":["), 0);
  for(int i = 0; i < 1000; i++)
    assert_int_equal(buf_printf(&in, "%s{\"index\":%d}", i ? "," : "", i), 0);
  assert_int_equal(buf_puts(&in, "],\"task_id\":\"\\q\"}"), 0);
  assert_int_equal(run(in.data, &g, &e), ERR_PARSE);
  assert_string_equal(e.text, "invalid escape in string");
  assert_int_equal(e.offset, in.len - 4);
  assert_int_equal(g.n, 0);
  got_free(&g);
  buf_free(&in);
}

static void
test_corrupt_gzip_and_size_cap(void **state)
{
  struct transform_opts o = opts_default();
  struct transform_error e;
  struct got g;
  const char *in = "{\"tc_report\":[{},{}]}";
  unsigned char z[256];
  uLongf zn = sizeof(z);
  z_stream zs;

  (void)state;
  memset(&zs, 0, sizeof(zs));
  assert_int_equal(deflateInit2(&zs, 6, Z_DEFLATED, 31, 8,
                                Z_DEFAULT_STRATEGY), Z_OK);
  zs.next_in = (unsigned char *)(uintptr_t)in;
  zs.avail_in = (uInt)strlen(in);
  zs.next_out = z;
  zs.avail_out = (uInt)zn;
  assert_int_equal(deflate(&zs, Z_FINISH), Z_STREAM_END);
  zn -= zs.avail_out;
  deflateEnd(&zs);
  /* Truncated gzip is bad input, with nothing emitted. */
  got_init(&g);
  assert_int_equal(run_len((const char *)z, zn - 6, &o, &g, NULL, &e),
                   ERR_PARSE);
  assert_string_equal(e.text, "corrupt compressed input");
  assert_int_equal(g.n, 0);
  got_free(&g);
  /* The cap on decompressed bytes. */
  got_init(&g);
  o.max_input_bytes = strlen(in) - 1;
  assert_int_equal(run_len((const char *)z, zn, &o, &g, NULL, &e),
                   ERR_TOOBIG);
  assert_string_equal(e.text, "input larger than the size limit");
  assert_int_equal(g.n, 0);
  o.max_input_bytes = strlen(in);
  assert_int_equal(run_len((const char *)z, zn, &o, &g, NULL, &e), 0);
  assert_int_equal(g.n, 2);
  got_free(&g);
}

/* ---- Generated sources: bounded memory, many tasks, changing input ----- */

/*
 * A source that writes a large report as it is read, so that the test never
 * holds it: one task with n entries of about 1 KB, entry big_at carrying a
 * big_len-byte string in info.
 */
struct gen_src {
  size_t n, next, big_at, big_len, big_done;
  int phase; /* 0 head, 1 entries, 2 big string, 3 tail, 4 end */
  char chunk[2048];
  size_t clen, cpos;
  uint64_t total;
  int passes;
};

static void
gen_refill(struct gen_src *g)
{
  int n = 0;

  g->cpos = 0;
  switch(g->phase) {
  case 0:
    n = snprintf(g->chunk, sizeof(g->chunk), "{\"tc_report\":[\n");
    g->phase = 1;
    break;
  case 1:
    if(g->next == g->n) {
      n = snprintf(g->chunk, sizeof(g->chunk),
                   "],\"task_id\":77,\"processed\":1782864423}\n");
      g->phase = 4;
      break;
    }
    if(g->next == g->big_at) {
      n = snprintf(g->chunk, sizeof(g->chunk), "%s{\"index\":%zu,"
                   "\"info\":\"", g->next ? "," : "", g->next);
      g->phase = 2;
      g->big_done = 0;
      break;
    }
    n = snprintf(g->chunk, sizeof(g->chunk),
                 "%s{\"index\": %zu, \"info\": {\"file\": {\"file_name\": "
                 "\"f%zu\", \"size\": %zu}}, \"strings\": [\"%0900zu\"], "
                 "\"classification\": {\"classification\": %zu}}\n",
                 g->next ? "," : "", g->next, g->next, g->next * 7,
                 g->next, g->next % 4);
    g->next++;
    break;
  case 2:
    if(g->big_done == g->big_len) {
      n = snprintf(g->chunk, sizeof(g->chunk), "\"}");
      g->phase = 1;
      g->next++;
      break;
    }
    n = (int)(g->big_len - g->big_done < sizeof(g->chunk) - 1
              ? g->big_len - g->big_done : sizeof(g->chunk) - 1);
    memset(g->chunk, 'x', (size_t)n);
    g->big_done += (size_t)n;
    break;
  default:
    n = 0;
    break;
  }
  g->clen = (size_t)n;
}

static ssize_t
gen_read(void *ud, void *buf, size_t n)
{
  struct gen_src *g = ud;
  size_t done = 0;

  while(done < n) {
    size_t k;

    if(g->cpos == g->clen) {
      if(g->phase == 4)
        break;
      gen_refill(g);
      continue;
    }
    k = g->clen - g->cpos < n - done ? g->clen - g->cpos : n - done;
    memcpy((char *)buf + done, g->chunk + g->cpos, k);
    g->cpos += k;
    done += k;
  }
  g->total += done;
  return (ssize_t)done;
}

static int
gen_rewind(void *ud)
{
  struct gen_src *g = ud;

  g->next = 0;
  g->phase = 0;
  g->clen = g->cpos = 0;
  g->passes++;
  return 0;
}

struct count {
  size_t n;
  int ok;
  size_t max_len;
};

static int
count_cb(void *ud, const struct transform_record *r)
{
  struct count *c = ud;
  char want[64];
  int n = snprintf(want, sizeof(want), "\"index\":%zu", c->n);

  /* In order, each with its own index and the task's columns. */
  if(r->entry != c->n || !memmem(r->json, r->len, want, (size_t)n) ||
     !memmem(r->json, r->len, "\"task_id\":\"77\"", 14))
    c->ok = 0;
  if(r->len > c->max_len)
    c->max_len = r->len;
  c->n++;
  return 0;
}

static void
test_memory_bounded_50mb_generated_report(void **state)
{
  struct gen_src g;
  struct transform_source src = { gen_read, gen_rewind, &g, NULL, 0 };
  struct transform_opts o = opts_default();
  struct transform_stats st;
  struct transform_error e;
  struct count c = { 0, 1, 0 };

  (void)state;
  memset(&g, 0, sizeof(g));
  g.n = 40000;
  g.big_at = 1234;
  g.big_len = 10u << 20; /* a 10 MB field: costs max_field_bytes, no more */
  assert_int_equal(transform_run(&src, &o, count_cb, &c, &st, &e), 0);
  assert_true(st.bytes > 50000000);
  assert_int_equal(c.n, 40000);
  assert_true(c.ok);
  assert_int_equal(st.records, 40000);
  assert_int_equal(st.shrunk, 1);
  /* The shrunk record holds max_field_bytes of info and a little more. */
  assert_true(c.max_len > TRANSFORM_DEFAULT_MAX_FIELD);
  assert_true(c.max_len < TRANSFORM_DEFAULT_MAX_FIELD + 400);
  assert_int_equal(g.passes, 2);
}

static void
test_many_tasks_are_emitted_in_groups(void **state)
{
  struct transform_opts o = opts_default();
  struct transform_stats st;
  struct transform_error e;
  struct got g;
  struct buf in;
  char pad[4001];
  size_t ntasks = 2600;

  (void)state;
  /* About 10 MB of task-level columns: more than one task table. */
  memset(pad, 'p', 4000);
  pad[4000] = '\0';
  buf_init(&in, 1 << 26);
  for(size_t t = 0; t < ntasks; t++)
    assert_int_equal(buf_printf(&in, "{\"tc_report\":[{\"index\":0},{}],"
                     "\"task_id\":%zu,\"worker_address\":[\"%s\"]}\n", t,
                     pad), 0);
  got_init(&g);
  assert_int_equal(run_len(in.data, in.len, &o, &g, &st, &e), 0);
  assert_int_equal(st.tasks, ntasks);
  assert_int_equal(g.n, 2 * ntasks);
  for(size_t i = 0; i < g.n; i++) {
    json_t *r = json_array_get(g.recs, i);
    char id[32];

    snprintf(id, sizeof(id), "%zu", i / 2);
    assert_int_equal(g.task[i], i / 2);
    assert_int_equal(g.entry[i], i % 2);
    assert_string_equal(json_string_value(json_object_get(r, "task_id")), id);
    assert_int_equal(json_array_size(json_object_get(r, "worker_address")),
                     1);
  }
  got_free(&g);
  buf_free(&in);
}

/* A source whose second pass reads different bytes. */
struct flip_src {
  const char *a, *b;
  size_t pos;
  int pass;
};

static ssize_t
flip_read(void *ud, void *buf, size_t n)
{
  struct flip_src *f = ud;
  const char *s = f->pass > 1 ? f->b : f->a;
  size_t len = strlen(s);

  if(f->pos >= len)
    return 0;
  if(n > len - f->pos)
    n = len - f->pos;
  memcpy(buf, s + f->pos, n);
  f->pos += n;
  return (ssize_t)n;
}

static int
flip_rewind(void *ud)
{
  struct flip_src *f = ud;

  f->pos = 0;
  f->pass++;
  return 0;
}

/*
 * A report several windows long, broken at places past the first window
 * and at its very end: scanned in place, with no window to refill, every
 * error must still be the copying scanner's, at the same offset, line and
 * column (run_len compares the two), and at the byte that was broken.
 */
static void
test_in_place_errors_past_the_window(void **state)
{
  static const struct {
    size_t at;          /* where to break it (0: do not) */
    const char *bytes;  /* what goes there */
    const char *msg;
  } cases[] = {
    { 0, NULL, NULL },
    { 70000, "\x01", "control character in string" },
    { 140000, "\xff", "invalid UTF-8 in string" },
    { 200000, "\\q", "invalid escape in string" },
    { 260000, "", "control character in string" }, /* a NUL byte */
  };
  struct buf in;
  struct got g;
  struct transform_error e;
  struct transform_opts o = opts_default();
  size_t n = 0;

  (void)state;
  buf_init(&in, (size_t)1 << 20);
  assert_int_equal(buf_puts(&in, "{\"tc_report\":["), 0);
  while(in.len < 300000) {
    assert_int_equal(buf_printf(&in, "%s{\"index\":%zu,\"info\":{\"file\":"
                                "{\"file_name\":\"f%zu.bin\",\"size\":%zu}},"
                                "\"story\":\"%s\"}", n ? "," : "", n, n,
                                n * 7,
                                "lorem ipsum dolor sit amet consectetur "
                                "adipiscing elit sed do eiusmod tempor"), 0);
    n++;
  }
  assert_int_equal(buf_puts(&in, "],\"task_id\":7}"), 0);
  for(size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    char *doc = malloc(in.len + 1);
    size_t pos = 0;
    int rc;

    assert_non_null(doc);
    memcpy(doc, in.data, in.len + 1);
    if(cases[i].bytes) {
      /* Inside the next story string from cases[i].at on. */
      const char *q = strstr(doc + cases[i].at, "lorem ipsum");

      assert_non_null(q);
      pos = (size_t)(q - doc) + 6;
      if(cases[i].bytes[0])
        memcpy(doc + pos, cases[i].bytes, strlen(cases[i].bytes));
      else
        doc[pos] = 0;
    }
    got_init(&g);
    rc = run_len(doc, in.len, &o, &g, NULL, &e);
    if(!cases[i].bytes) {
      assert_int_equal(rc, 0);
      assert_int_equal(g.n, n);
    }
    else {
      assert_int_equal(rc, ERR_PARSE);
      assert_string_equal(e.text, cases[i].msg);
      assert_int_equal(e.offset, pos);
      assert_int_equal(e.line, 1);
      assert_int_equal(e.column, pos + 1);
      assert_int_equal(g.n, 0);
    }
    got_free(&g);
    /* Cut short, anywhere in the last window, down to one byte. */
    for(size_t cut = in.len - 1; cut + 70000 > in.len; cut -= 9973) {
      got_init(&g);
      rc = run_len(doc, cut, &o, &g, NULL, &e);
      assert_int_equal(rc, ERR_PARSE);
      assert_int_equal(g.n, 0);
      got_free(&g);
    }
    free(doc);
  }
  buf_free(&in);
}

static void
test_input_changed_between_passes(void **state)
{
  static const char *const later[] = {
    "{\"tc_report\":[{},{}]}",               /* an entry more */
    "{\"tc_report\":[{}]}",                  /* an entry less */
    "{\"x\":1,\"tc_report\":[{},{},{}]}",    /* tc_report moved */
    "{\"tc_report\":[{},{},",                /* truncated */
    "{\"tc_report\":[{\"info\":[}],{},{}]}", /* broken */
    "",                                      /* gone */
  };

  (void)state;
  for(size_t i = 0; i < sizeof(later) / sizeof(later[0]); i++) {
    struct flip_src f = { "{\"tc_report\":[{},{},{}]}", later[i], 0, 0 };
    struct transform_source src = { flip_read, flip_rewind, &f, NULL, 0 };
    struct transform_opts o = opts_default();
    struct transform_error e;
    struct got g;

    /* Records this small are emitted after one pass; force the second. */
    o.two_pass = 1;
    got_init(&g);
    assert_int_equal(transform_run(&src, &o, collect, &g, NULL, &e),
                     ERR_CHANGED);
    got_free(&g);
  }
}

/* ---- Threads ------------------------------------------------------------ */

struct thr {
  const char *in;
  size_t len;
  char *out;
  size_t outlen;
  int rc;
};

static int
thr_cb(void *ud, const struct transform_record *r)
{
  struct buf *b = ud;

  return buf_append(b, r->json, r->len);
}

static void *
thr_main(void *arg)
{
  struct thr *t = arg;
  struct transform_opts o = opts_default();
  struct buf b;

  buf_init(&b, 1 << 26);
  for(int i = 0; i < 20 && !t->rc; i++) {
    buf_reset(&b);
    o.max_field_bytes = 64 + 8 * (size_t)i;
    t->rc = transform_buffer(t->in, t->len, &o, thr_cb, &b, NULL, NULL);
  }
  t->out = buf_detach(&b, &t->outlen);
  return NULL;
}

static void
test_concurrent_transforms_are_independent(void **state)
{
  struct thr t[4];
  pthread_t th[4];
  size_t len;
  char *in = read_file("tests/data/reports/typical.json", &len);

  (void)state;
  for(int i = 0; i < 4; i++) {
    memset(&t[i], 0, sizeof(t[i]));
    t[i].in = in;
    t[i].len = len;
    assert_int_equal(pthread_create(&th[i], NULL, thr_main, &t[i]), 0);
  }
  for(int i = 0; i < 4; i++) {
    assert_int_equal(pthread_join(th[i], NULL), 0);
    assert_int_equal(t[i].rc, 0);
    assert_int_equal(t[i].outlen, t[0].outlen);
    assert_memory_equal(t[i].out, t[0].out, t[0].outlen);
  }
  for(int i = 0; i < 4; i++)
    free(t[i].out);
  free(in);
}

/* ---- The transform command ---------------------------------------------- */

static char *
slurp_stream(FILE *f)
{
  struct buf b;
  char chunk[4096];
  size_t n;

  buf_init(&b, 1 << 24);
  rewind(f);
  while((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
    assert_int_equal(buf_append(&b, chunk, n), 0);
  assert_int_equal(buf_puts(&b, ""), 0);
  return buf_detach(&b, NULL);
}

static void
test_cli_output_errors_and_status(void **state)
{
  char path[] = "/tmp/test_transform_XXXXXX";
  FILE *out = tmpfile(), *err = tmpfile();
  char *o, *e;
  size_t wlen;
  char *want = read_file("tests/data/reports/typical.ndjson", &wlen);
  int fd;

  (void)state;
  assert_non_null(out);
  assert_non_null(err);
  assert_int_equal(transform_cli_run("tests/data/reports/typical.json",
                                     NULL, out, err), 0);
  o = slurp_stream(out);
  e = slurp_stream(err);
  assert_string_equal(o, want);
  assert_string_equal(e, "");
  free(o);
  free(e);

  /* Bad input: exit 4, one line with where and why, nothing on out. */
  fd = mkstemp(path);
  assert_true(fd >= 0);
  assert_int_equal(write(fd, "{\"tc_report\":[\n  {\"a\":}]}", 25), 25);
  close(fd);
  fclose(out);
  fclose(err);
  out = tmpfile();
  err = tmpfile();
  assert_int_equal(transform_cli_run(path, "reports/x.json", out, err), 4);
  o = slurp_stream(out);
  e = slurp_stream(err);
  assert_string_equal(o, "");
  assert_string_equal(e, "spectra-sentinel: reports/x.json: bad input at "
                      "line 2 column 8 (byte 22): unexpected character\n");
  free(o);
  free(e);

  /* A file that is not there: exit 1. */
  unlink(path);
  fclose(err);
  err = tmpfile();
  assert_int_equal(transform_cli_run(path, NULL, out, err), 1);
  e = slurp_stream(err);
  assert_non_null(strstr(e, "cannot read"));
  assert_non_null(strstr(e, path));
  free(e);

  /* Standard input ("-") is spooled, so both passes can read it. */
  assert_non_null(freopen("tests/data/reports/typical.json", "r", stdin));
  fclose(out);
  out = tmpfile();
  assert_int_equal(transform_cli_run("-", NULL, out, err), 0);
  o = slurp_stream(out);
  assert_string_equal(o, want);
  free(o);
  fclose(out);
  fclose(err);
  free(want);
}

int
main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_typical_report_every_column),
    cmocka_unit_test(test_file_and_gzip_give_the_same_records),
    cmocka_unit_test(test_archive_500_children),
    cmocka_unit_test(test_missing_keys_and_nulls),
    cmocka_unit_test(test_task_id_string_and_integer),
    cmocka_unit_test(test_booleans_to_strings),
    cmocka_unit_test(test_int_columns_reals_and_decimal_strings),
    cmocka_unit_test(test_out_of_range_ints_are_omitted),
    cmocka_unit_test(test_process_duration),
    cmocka_unit_test(test_time_generated_fallbacks),
    cmocka_unit_test(test_scan_results_type_string_or_int),
    cmocka_unit_test(test_tc_report_before_or_after_task_keys),
    cmocka_unit_test(test_duplicate_keys_last_wins),
    cmocka_unit_test(test_verbatim_compact_and_escaped_keys),
    cmocka_unit_test(test_array_top_level_and_ndjson),
    cmocka_unit_test(test_empty_tc_report_and_stats),
    cmocka_unit_test(test_emit_result_stops_the_transform),
    cmocka_unit_test(test_invalid_options),
    cmocka_unit_test(test_shrink_arrays_objects_strings),
    cmocka_unit_test(test_shrink_utf8_and_escapes),
    cmocka_unit_test(test_shrink_string_columns_and_counts),
    cmocka_unit_test(test_shrink_matches_reference_on_random_values),
    cmocka_unit_test(test_shrink_paths_agree_on_escapes_and_utf8),
    cmocka_unit_test(test_bad_input_message_and_location),
    cmocka_unit_test(test_nothing_emitted_before_validation),
    cmocka_unit_test(test_corrupt_gzip_and_size_cap),
    cmocka_unit_test(test_memory_bounded_50mb_generated_report),
    cmocka_unit_test(test_many_tasks_are_emitted_in_groups),
    cmocka_unit_test(test_in_place_errors_past_the_window),
    cmocka_unit_test(test_input_changed_between_passes),
    cmocka_unit_test(test_concurrent_transforms_are_independent),
    cmocka_unit_test(test_cli_output_errors_and_status),
  };

  return cmocka_run_group_tests(tests, NULL, NULL);
}
