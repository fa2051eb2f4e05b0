/*
 * test_transform_onepass.c: the transform's one pass gives the same result
 * as its two passes.
 *
 * When a report's records fit TF_CAPTURE_BUDGET, transform.c keeps each
 * entry's part of its record while validating and emits from memory, with
 * no second pass (its columns are copied by the validating copier instead
 * of the emit pass's block copier). Everything observable must be
 * identical to the two passes (opts.two_pass): every record's bytes, time,
 * task, entry and shrink count, the stats, the return code, and for bad
 * input the message and its location. Inputs: the fixture reports, a few
 * thousand generated documents (random shapes, escapes, UTF-8, duplicate
 * keys and tc_report arrays, NDJSON and arrays of tasks, tiny
 * max_field_bytes), their truncations and corruptions, reports whose
 * records overflow the budget part way (the one pass gives up and falls
 * back), blobs of more task groups than the table holds, and an emit
 * callback that stops early.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "err.h"
#include "transform.h"

#define NOW INT64_C(1782864000) /* 2026-07-01T00:00:00Z */

/* What one transform run showed. */
struct result {
  int rc;
  struct buf out;          /* records, each followed by its metadata line */
  size_t n;
  size_t stop_at;          /* emit answers 7 at this record (1-based) */
  struct transform_stats st;
  struct transform_error err;
};

static int
collect(void *ud, const struct transform_record *r)
{
  struct result *res = ud;
  char meta[128];
  int n;

  res->n++;
  if(buf_append(&res->out, r->json, r->len) != 0)
    return ERR_NOMEM;
  n = snprintf(meta, sizeof(meta), "\n%lld %zu %zu %u\n",
               (long long)r->time_generated, r->task, r->entry, r->shrunk);
  if(buf_append(&res->out, meta, (size_t)n) != 0)
    return ERR_NOMEM;
  if(res->stop_at && res->n == res->stop_at)
    return 7;
  return 0;
}

static void
run(const char *in, size_t len, size_t maxf, int two_pass, size_t stop_at,
    struct result *res)
{
  struct transform_opts o;

  memset(&o, 0, sizeof(o));
  o.max_field_bytes = maxf;
  o.last_modified = -1;
  o.now = NOW;
  o.two_pass = two_pass;
  memset(res, 0, sizeof(*res));
  buf_init(&res->out, (size_t)1 << 30);
  res->stop_at = stop_at;
  res->rc = transform_buffer(in, len, &o, collect, res, &res->st, &res->err);
}

/* Runs in both ways and checks that nothing differs. Returns the rc. */
static int
same(const char *in, size_t len, size_t maxf, size_t stop_at)
{
  struct result a, b;
  int rc;

  run(in, len, maxf, 0, stop_at, &a);
  run(in, len, maxf, 1, stop_at, &b);
  assert_int_equal(a.rc, b.rc);
  assert_int_equal(a.n, b.n);
  assert_int_equal(a.out.len, b.out.len);
  if(a.out.len)
    assert_memory_equal(a.out.data, b.out.data, a.out.len);
  assert_true(a.st.bytes == b.st.bytes);
  assert_true(a.st.tasks == b.st.tasks);
  assert_true(a.st.records == b.st.records);
  assert_true(a.st.shrunk == b.st.shrunk);
  assert_string_equal(a.err.text, b.err.text);
  assert_true(a.err.offset == b.err.offset);
  assert_true(a.err.line == b.err.line);
  assert_true(a.err.column == b.err.column);
  rc = a.rc;
  buf_free(&a.out);
  buf_free(&b.out);
  return rc;
}

/* ---- a small deterministic generator of report-like documents ---------- */

struct gen {
  uint64_t s;
  struct buf b;
};

static unsigned
rnd(struct gen *g, unsigned n)
{
  g->s = g->s * UINT64_C(6364136223846793005) + UINT64_C(1442695040888963407);
  return (unsigned)((g->s >> 33) % n);
}

static void
put(struct gen *g, const char *s)
{
  assert_int_equal(buf_puts(&g->b, s), 0);
}

static void gen_value(struct gen *g, int depth);

static void
gen_string(struct gen *g)
{
  static const char *const parts[] = {
    "abc", "kernel32", "\\\"", "\\\\", "\\n", "\\u00e9", "\\ud83d\\ude00",
    "\xc3\xa9", "\xe6\x96\x87", "\xf0\x9f\x98\x80", " ", "C:\\\\Temp",
    "0123456789abcdef", "http://x.example/a?b=1",
  };
  unsigned n = rnd(g, 6);

  put(g, "\"");
  for(unsigned i = 0; i < n; i++)
    put(g, parts[rnd(g, sizeof(parts) / sizeof(parts[0]))]);
  put(g, "\"");
}

static void
gen_number(struct gen *g)
{
  static const char *const nums[] = {
    "0", "7", "-3", "12345678901", "1.5", "-0.25e2", "2147483647.9",
    "1e400", "3E-2", "9223372036854775807", "-2147483649",
  };
  put(g, nums[rnd(g, sizeof(nums) / sizeof(nums[0]))]);
}

static void
gen_container(struct gen *g, int depth, int obj)
{
  unsigned n = rnd(g, 5);

  put(g, obj ? "{" : "[");
  for(unsigned i = 0; i < n; i++) {
    if(i)
      put(g, rnd(g, 8) ? "," : " , ");
    if(obj) {
      gen_string(g);
      put(g, ":");
    }
    gen_value(g, depth + 1);
  }
  put(g, obj ? "}" : "]");
}

static void
gen_value(struct gen *g, int depth)
{
  switch(depth > 4 ? rnd(g, 4) : rnd(g, 7)) {
  case 0: gen_string(g); break;
  case 1: gen_number(g); break;
  case 2: put(g, rnd(g, 3) ? (rnd(g, 2) ? "true" : "false") : "null"); break;
  case 3: gen_string(g); break;
  case 4: gen_container(g, depth, 1); break;
  default: gen_container(g, depth, 0); break;
  }
}

/* An index or parent value: mostly integers, sometimes anything. */
static void
gen_intish(struct gen *g)
{
  static const char *const v[] = {
    "0", "1", "17", "null", "\"42\"", "\"-7\"", "\" 5\"", "2.9", "1e3",
    "true", "[]", "2147483648",
  };
  put(g, v[rnd(g, sizeof(v) / sizeof(v[0]))]);
}

static void
gen_entry(struct gen *g)
{
  static const char *const keys[] = {
    "info", "classification", "index", "parent", "story", "tags",
    "interesting_strings", "indicators", "metadata", "strings", "x",
    "\\u0069ndex", "info",
  };
  unsigned n = rnd(g, 9);

  put(g, "{");
  for(unsigned i = 0; i < n; i++) {
    const char *k = keys[rnd(g, sizeof(keys) / sizeof(keys[0]))];

    if(i)
      put(g, ",");
    put(g, "\"");
    put(g, k);
    put(g, "\":");
    if(!strcmp(k, "index") || !strcmp(k, "parent") ||
       !strcmp(k, "\\u0069ndex"))
      gen_intish(g);
    else
      gen_value(g, 2);
  }
  put(g, "}");
}

static void
gen_task(struct gen *g)
{
  static const char *const keys[] = {
    "task_id", "submitted", "processed", "process_duration",
    "direct_sender", "worker_address", "worker_hostname", "worker_ip",
    "forwarded_for", "custom",
  };
  unsigned nkeys = rnd(g, 6), ntc = 1 + (rnd(g, 6) == 0);
  int first = 1;

  put(g, "{");
  for(unsigned t = 0; t < ntc; t++) {
    unsigned n = rnd(g, 6);

    for(unsigned i = 0; i < nkeys; i++) {
      const char *k = keys[rnd(g, sizeof(keys) / sizeof(keys[0]))];

      if(!first)
        put(g, ",");
      first = 0;
      put(g, "\"");
      put(g, k);
      put(g, "\":");
      if(!strcmp(k, "submitted") || !strcmp(k, "processed"))
        put(g, rnd(g, 4) ? "1767225600" : "\"1767225700\"");
      else
        gen_value(g, 1);
    }
    if(!first)
      put(g, ",");
    first = 0;
    put(g, "\"tc_report\":[");
    for(unsigned i = 0; i < n; i++) {
      if(i)
        put(g, ",");
      gen_entry(g);
    }
    put(g, "]");
  }
  put(g, "}");
}

/* One document: an object, an array of tasks, or NDJSON. */
static void
gen_doc(struct gen *g)
{
  unsigned shape = rnd(g, 3), n = 1 + rnd(g, 3);

  g->b.len = 0;
  if(shape == 1)
    put(g, "[");
  for(unsigned i = 0; i < (shape ? n : 1); i++) {
    if(i)
      put(g, shape == 1 ? "," : "\n");
    gen_task(g);
  }
  if(shape == 1)
    put(g, "]");
}

/* ---- tests --------------------------------------------------------------- */

static char *
slurp(const char *path, size_t *len)
{
  FILE *f = fopen(path, "rb");
  struct buf b;
  char tmp[65536];
  size_t n;

  assert_non_null(f);
  buf_init(&b, (size_t)1 << 30);
  while((n = fread(tmp, 1, sizeof(tmp), f)) > 0)
    assert_int_equal(buf_append(&b, tmp, n), 0);
  fclose(f);
  return buf_detach(&b, len);
}

static void
test_fixtures(void **state)
{
  static const char *const dirs[] = { "tests/data/reports",
                                      "tests/data/samples" };
  size_t files = 0;

  (void)state;
  for(size_t d = 0; d < sizeof(dirs) / sizeof(dirs[0]); d++) {
    DIR *dir = opendir(dirs[d]);
    struct dirent *de;

    assert_non_null(dir);
    while((de = readdir(dir)) != NULL) {
      char path[1024];
      size_t len;
      char *data;

      if(de->d_name[0] == '.')
        continue;
      snprintf(path, sizeof(path), "%s/%s", dirs[d], de->d_name);
      data = slurp(path, &len);
      if(!data)
        continue; /* an empty file */
      if(same(data, len, 0, 0) == 0)
        files++;
      same(data, len, 64, 0);
      same(data, len / 2, 0, 0); /* truncated: bad input both ways */
      free(data);
    }
    closedir(dir);
  }
  assert_true(files >= 5);
}

static void
test_generated(void **state)
{
  static const size_t maxf[] = { 0, 3, 12, 40, 200 };
  struct gen g = { 1, { 0 } };
  size_t ok = 0, bad = 0;

  (void)state;
  buf_init(&g.b, (size_t)1 << 24);
  for(int i = 0; i < 3000; i++) {
    gen_doc(&g);
    if(same(g.b.data, g.b.len, maxf[i % 5], 0) == 0)
      ok++;
    else
      bad++;
    /* Cut and corrupted copies: the same error, at the same place. */
    if(g.b.len > 2) {
      size_t cut = 1 + rnd(&g, (unsigned)(g.b.len - 1));
      char save = g.b.data[cut];

      if(same(g.b.data, cut, maxf[i % 5], 0) != 0)
        bad++;
      g.b.data[cut] = "\xff}]\"\\,:x\x01"[rnd(&g, 9)];
      if(same(g.b.data, g.b.len, maxf[i % 5], 0) != 0)
        bad++;
      g.b.data[cut] = save;
    }
  }
  buf_free(&g.b);
  /* Both kinds happened: the comparison covered records and errors. */
  assert_true(ok > 300);
  assert_true(bad > 30);
}

/* A report whose records outgrow the one-pass budget part way: the pass
   gives up, the records still come out the same. */
static void
test_over_budget(void **state)
{
  struct buf b;
  struct result r;

  (void)state;
  buf_init(&b, (size_t)1 << 26);
  assert_int_equal(buf_puts(&b, "{\"task_id\":1,\"tc_report\":[{\"info\":1}],"
                               "\"tc_report\":["), 0);
  for(int i = 0; i < 3000; i++) {
    assert_int_equal(buf_printf(&b, "%s{\"index\":%d,\"story\":\"", i ? "," :
                                "", i), 0);
    for(int k = 0; k < 100; k++)
      assert_int_equal(buf_puts(&b, "0123456789"), 0);
    assert_int_equal(buf_puts(&b, "\",\"metadata\":{\"a\":[1,2,3]}}"), 0);
  }
  assert_int_equal(buf_puts(&b, "],\"processed\":1767225600}"), 0);
  assert_int_equal(same(b.data, b.len, 0, 0), 0);
  run(b.data, b.len, 0, 0, 0, &r);
  assert_int_equal(r.n, 3000); /* the second tc_report wins */
  buf_free(&r.out);
  buf_free(&b);
}

/* More tasks than one group of the task table: the emit passes run. */
static void
test_many_groups(void **state)
{
  struct buf b;
  struct result r;

  (void)state;
  buf_init(&b, (size_t)1 << 27);
  for(int i = 0; i < 12000; i++)
    assert_int_equal(buf_printf(&b, "{\"tc_report\":[{\"info\":%d}],"
                                "\"worker_address\":[\"%0900d\"]}\n", i, i),
                     0);
  assert_int_equal(same(b.data, b.len, 0, 0), 0);
  run(b.data, b.len, 0, 0, 0, &r);
  assert_int_equal(r.n, 12000);
  buf_free(&r.out);
  buf_free(&b);
}

/* emit's non-zero answer stops both ways after the same record. */
static void
test_emit_stops(void **state)
{
  const char *in = "[{\"tc_report\":[{},{\"info\":2},{}]},"
                   "{\"tc_report\":[{\"tags\":[1]}]}]";

  (void)state;
  for(size_t k = 1; k <= 4; k++)
    assert_int_equal(same(in, strlen(in), 0, k), 7);
}

int
main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_fixtures),
    cmocka_unit_test(test_generated),
    cmocka_unit_test(test_over_budget),
    cmocka_unit_test(test_many_groups),
    cmocka_unit_test(test_emit_stops),
  };

  return cmocka_run_group_tests(tests, NULL, NULL);
}
