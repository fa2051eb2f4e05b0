/*
 * fuzz_transform.c: the report transform on arbitrary bytes.
 *
 * Checks, for every input:
 *   - every record is valid JSON (jansson), an object starting with a
 *     well-formed TimeGenerated, and no larger than 17 fields of
 *     max_field_bytes can make it;
 *   - all or nothing: a failed transform emitted no record;
 *   - validity agrees with jansson: a blob we accept must be a sequence of
 *     JSON values to jansson too, and a grammar error we report must be one
 *     to jansson (structural rejections such as "no tc_report array" or
 *     "nesting too deep" are our rules, not grammar, and are not compared);
 *   - scanning in place agrees with scanning through the window: the same
 *     input from a padded copy (source_open_padded, the daemon's way for a
 *     blob in memory) gives the same result, records and error location;
 *   - the two copiers agree: the same value placed in a task-level column
 *     (copied while validating) and in an entry-level column (copied by the
 *     block copier of the emit pass) comes out identical after shrinking.
 * max_field_bytes is small (2..97, from a hash of the input) so that the
 * shrink paths run on most inputs.
 */
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "source.h"
#include "transform.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/*
 * jansson's own limits, which are not grammar: number range, depth, and
 * \u0000 in object keys.
 */
static int
jansson_limit(const char *text)
{
  return strstr(text, "overflow") || strstr(text, "too big") ||
         strstr(text, "depth") || strstr(text, "NUL byte in object key");
}

struct fz {
  size_t n;
  uint64_t h;   /* FNV-1a over every record's bytes */
  size_t bound;
  json_t *last; /* the last record, parsed */
};

static int
fz_emit(void *ud, const struct transform_record *r)
{
  struct fz *f = ud;
  json_error_t je;
  json_t *rec;
  const char *tg;

  if(r->len > f->bound)
    abort();
  for(size_t i = 0; i < r->len; i++)
    f->h = (f->h ^ (unsigned char)r->json[i]) * UINT64_C(1099511628211);
  f->h = (f->h ^ 0x0a) * UINT64_C(1099511628211);
  /* Duplicate keys may be inside dynamic values: they are copied as is. */
  rec = json_loadb(r->json, r->len, JSON_ALLOW_NUL, &je);
  if(!rec && jansson_limit(je.text)) {
    /* Valid JSON that jansson cannot hold (1e400): not judged. */
    json_decref(f->last);
    f->last = NULL;
    f->n++;
    return 0;
  }
  if(!rec || !json_is_object(rec))
    abort();
  if(r->len < TRANSFORM_TG_OFFSET + TRANSFORM_TG_LEN + 2 ||
     memcmp(r->json, "{\"TimeGenerated\":\"", TRANSFORM_TG_OFFSET) != 0)
    abort();
  tg = r->json + TRANSFORM_TG_OFFSET;
  if(tg[4] != '-' || tg[7] != '-' || tg[10] != 'T' || tg[13] != ':' ||
     tg[16] != ':' || tg[19] != 'Z' || tg[20] != '"')
    abort();
  json_decref(f->last);
  f->last = rec;
  f->n++;
  return 0;
}

/* Our messages for rules beyond the JSON grammar (or limits). */
static int
structural(const char *msg)
{
  static const char *const list[] = {
    "no tc_report array", "tc_report is not an array",
    "tc_report entry is not an object", "task report is not an object",
    "empty top-level array", "top-level value is not an object or array",
    "unexpected data after a task object",
    "unexpected data after the top-level array", "empty input",
    "nesting too deep",
  };

  for(size_t i = 0; i < sizeof(list) / sizeof(list[0]); i++) {
    if(!strcmp(msg, list[i]))
      return 1;
  }
  return 0;
}

/*
 * jansson's verdict on data as a sequence of whitespace-separated values:
 * 1 valid, 0 invalid, -1 cannot judge (a jansson limit, not the grammar).
 */
static int
jansson_valid(const uint8_t *data, size_t size)
{
  size_t pos = 0;

  for(;;) {
    json_error_t je;
    json_t *v;

    while(pos < size && (data[pos] == ' ' || data[pos] == '\t' ||
                         data[pos] == '\n' || data[pos] == '\r'))
      pos++;
    if(pos == size)
      return 1;
    /* Only containers: a scalar may make jansson read past its end. */
    if(data[pos] != '{' && data[pos] != '[')
      return -1;
    v = json_loadb((const char *)data + pos, size - pos,
                   JSON_DISABLE_EOF_CHECK | JSON_DECODE_ANY | JSON_ALLOW_NUL,
                   &je);
    if(!v)
      return jansson_limit(je.text) ? -1 : 0;
    json_decref(v);
    if(je.position <= 0)
      return -1;
    pos += (size_t)je.position;
  }
}

/* The two copiers on the same value: entry column vs task column. */
static void
cross_copiers(const uint8_t *data, size_t size, size_t maxf)
{
  struct transform_opts o;
  struct fz f;
  char *doc;
  size_t n;
  json_t *a, *b;

  if(size > 4096)
    return;
  /* Only one whole value: anything after it would change the document. */
  a = json_loadb((const char *)data, size, JSON_DECODE_ANY | JSON_ALLOW_NUL,
                 NULL);
  if(!a)
    return;
  json_decref(a);
  doc = malloc(2 * size + 64);
  if(!doc)
    return;
  n = (size_t)sprintf(doc, "{\"tc_report\":[{\"info\":");
  memcpy(doc + n, data, size);
  n += size;
  n += (size_t)sprintf(doc + n, "}],\"worker_address\":");
  memcpy(doc + n, data, size);
  n += size;
  doc[n++] = '}';
  memset(&o, 0, sizeof(o));
  o.max_field_bytes = maxf;
  o.last_modified = -1;
  memset(&f, 0, sizeof(f));
  f.bound = 17 * (maxf + 40) + 64;
  if(transform_buffer(doc, n, &o, fz_emit, &f, NULL, NULL) == 0 && f.last) {
    if(f.n != 1)
      abort();
    a = json_object_get(f.last, "info");
    b = json_object_get(f.last, "worker_address");
    if(!a != !b || (a && !json_equal(a, b)))
      abort();
  }
  json_decref(f.last);
  free(doc);
}

/*
 * The same input scanned in place from a copy that ends at its padding (so
 * that ASan catches a read past it): same rc, records and error.
 */
static void
in_place(const uint8_t *data, size_t size, const struct transform_opts *o,
         int rc, const struct fz *f, const struct transform_error *e)
{
  unsigned char *copy = malloc(size + TRANSFORM_PAD);
  struct transform_error e2;
  struct source *src = NULL;
  struct fz f2;
  int rc2;

  if(!copy)
    abort();
  if(size)
    memcpy(copy, data, size);
  memset(copy + size, 0, TRANSFORM_PAD);
  memset(&f2, 0, sizeof(f2));
  memset(&e2, 0, sizeof(e2));
  f2.bound = f->bound;
  if(source_open_padded(copy, size, o->max_input_bytes, &src) != 0)
    abort();
  rc2 = transform_run(source_transform(src), o, fz_emit, &f2, NULL, &e2);
  source_destroy(src);
  json_decref(f2.last);
  if(rc2 != rc || f2.n != f->n || f2.h != f->h)
    abort();
  if(rc == ERR_PARSE &&
     (strcmp(e2.text, e->text) || e2.offset != e->offset ||
      e2.line != e->line || e2.column != e->column))
    abort();
  free(copy);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  struct transform_opts o;
  struct transform_error e;
  struct fz f;
  uint32_t h = 2166136261u;
  size_t maxf;
  int rc, jv;

  for(size_t i = 0; i < size; i++)
    h = (h ^ data[i]) * 16777619u;
  maxf = 2 + h % 96;
  memset(&o, 0, sizeof(o));
  o.max_field_bytes = maxf;
  o.last_modified = (h & 1) ? -1 : 1700000000;
  o.now = 1782864000;
  o.max_input_bytes = 1 << 20;
  memset(&f, 0, sizeof(f));
  f.bound = 17 * (maxf + 40) + 64;
  rc = transform_buffer(data, size, &o, fz_emit, &f, NULL, &e);
  json_decref(f.last);
  in_place(data, size, &o, rc, &f, &e);
  if(rc != 0 && f.n != 0)
    abort(); /* all or nothing */
  if(rc != 0 && rc != ERR_PARSE && rc != ERR_TOOBIG)
    abort();
  if(rc == ERR_PARSE && (e.line == 0 || e.column == 0 || !e.text[0]))
    abort();

  /* Grammar against jansson (not for gzip or a byte order mark). */
  if(size >= 2 && ((data[0] == 0x1f && data[1] == 0x8b) ||
                   (data[0] == 0xef && data[1] == 0xbb)))
    return 0;
  jv = jansson_valid(data, size);
  if(rc == 0 && jv == 0)
    abort(); /* we accepted what is not JSON */
  if(rc == ERR_PARSE && jv == 1 && !structural(e.text) &&
     strcmp(e.text, "corrupt compressed input") != 0)
    abort(); /* we rejected valid JSON */

  cross_copiers(data, size, maxf);
  return 0;
}
