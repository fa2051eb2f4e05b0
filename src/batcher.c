/*
 * batcher.c: records into request bodies, and the owned batches the
 * ingestion client keeps, splits and clamps (batcher.h).
 *
 * Cost model: each record's bytes are copied once into the body under
 * construction, whose buffer (capped at max_request_bytes) and per-record
 * arrays are reused from one body to the next, so batching is linear in the
 * input and allocates only while the first bodies grow. Copying a body out
 * of the callback, or a range of it, is one allocation and one memcpy;
 * clamping touches 20 bytes per rewritten record.
 */
#include "batcher.h"

#include <stdalign.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "civil.h"
#include "err.h"
#include "transform.h"

/* What every record starts with; the time's 20 bytes follow, then a quote. */
static const char tg_prefix[] = "{\"TimeGenerated\":\"";

_Static_assert(sizeof(tg_prefix) - 1 == TRANSFORM_TG_OFFSET,
               "record layout disagrees with transform.h");
_Static_assert(TRANSFORM_TG_LEN == 20, "TimeGenerated is not 20 bytes wide");

/* The body's first allocation (it grows from there up to max). */
#define BATCHER_INITIAL_BODY ((size_t)64 << 10)

/* The representable range of the fixed-width time: 0000-01-01..9999-12-31. */
#define TIME_MIN ((int64_t)-62167219200)
#define TIME_MAX ((int64_t)253402300799)

struct batcher {
  size_t max;                 /* max_request_bytes */
  batcher_body_cb on_body;
  batcher_reject_cb on_reject;
  void *ud;                   /* borrowed, passed to the callbacks */
  struct buf body;            /* "[" r0 "," r1 ... without the "]" yet */
  size_t *offsets;            /* owned, slots entries */
  int64_t *times;             /* owned, slots entries */
  size_t slots;
  uint64_t count;             /* records in the body under construction */
  uint64_t first;             /* sequence number of its first record */
  uint64_t next_seq;
  int64_t min_time;
  int64_t max_time;
};

struct batcher_batch {
  struct batcher_body body;   /* the view; its pointers are the three below */
  char *json;                 /* into this allocation */
  size_t *offsets;
  int64_t *times;
  size_t cap;                 /* json bytes allocated (batcher_batch_alloc:
                                 until sealed, body.json is NULL) */
};

/* Reads exactly n decimal digits; -1 if one is not a digit. */
static int
get_digits(const char *p, int n)
{
  int v = 0;

  for(int i = 0; i < n; i++) {
    if(p[i] < '0' || p[i] > '9')
      return -1;
    v = v * 10 + (p[i] - '0');
  }
  return v;
}

int
batcher_time_format(int64_t t, char out[20])
{
  return civil_format_utc(t, out);
}

int
batcher_time_parse(const char *s, int64_t *t)
{
  static const unsigned char mdays[12] = { 31, 29, 31, 30, 31, 30,
                                           31, 31, 30, 31, 30, 31 };
  int y, mo, d, h, mi, se;

  if(!s || !t)
    return ERR_INVAL;
  if(s[4] != '-' || s[7] != '-' || s[10] != 'T' || s[13] != ':' ||
     s[16] != ':' || s[19] != 'Z')
    return ERR_PARSE;
  y = get_digits(s, 4);
  mo = get_digits(s + 5, 2);
  d = get_digits(s + 8, 2);
  h = get_digits(s + 11, 2);
  mi = get_digits(s + 14, 2);
  se = get_digits(s + 17, 2);
  if(y < 0 || mo < 1 || mo > 12 || d < 1 || h < 0 || h > 23 || mi < 0 ||
     mi > 59 || se < 0 || se > 59)
    return ERR_PARSE;
  if(d > mdays[mo - 1] ||
     (mo == 2 && d == 29 && (y % 4 || (y % 100 == 0 && y % 400))))
    return ERR_PARSE;
  *t = civil_days_from_date(y, (unsigned)mo, (unsigned)d) * 86400 + h * 3600 +
       mi * 60 + se;
  return 0;
}

int
batcher_create(size_t max_request_bytes, batcher_body_cb on_body,
               batcher_reject_cb on_reject, void *ud, struct batcher **out)
{
  struct batcher *b;

  if(!out)
    return ERR_INVAL;
  *out = NULL;
  if(!on_body || !on_reject || max_request_bytes < BATCHER_MIN_MAX_REQUEST)
    return ERR_INVAL;
  b = calloc(1, sizeof(*b));
  if(!b)
    return ERR_NOMEM;
  b->max = max_request_bytes;
  b->on_body = on_body;
  b->on_reject = on_reject;
  b->ud = ud;
  buf_init(&b->body, max_request_bytes);
  /* Room for a typical blob's records at once (a blob of the benchmark
     corpus makes 47 KB on average). Grown from 64 bytes, this body and
     the transform's capture buffer cost about four more reallocations
     per blob, each copying what was there (callgrind, headline run:
     15,348 -> 13,725 reallocations from buf_reserve). */
  (void)buf_reserve(&b->body, max_request_bytes < BATCHER_INITIAL_BODY
                                  ? max_request_bytes : BATCHER_INITIAL_BODY);
  *out = b;
  return 0;
}

void
batcher_destroy(struct batcher *b)
{
  if(!b)
    return;
  buf_free(&b->body);
  free(b->offsets);
  free(b->times);
  free(b);
}

uint64_t
batcher_next_seq(const struct batcher *b)
{
  return b->next_seq;
}

/*
 * Ensures room for one more record in the per-record arrays (offsets needs
 * one slot beyond the last record for the closing bracket).
 */
static int
batcher_grow_slots(struct batcher *b)
{
  size_t n;
  size_t *o;
  int64_t *t;

  if(b->count + 2 <= b->slots)
    return 0;
  n = b->slots ? b->slots * 2 : 64;
  if(n > ((size_t)-1) / sizeof(*o))
    return ERR_NOMEM;
  o = realloc(b->offsets, n * sizeof(*o));
  if(!o)
    return ERR_NOMEM;
  b->offsets = o;
  /* A failure here leaves offsets larger than slots says, which is fine. */
  t = realloc(b->times, n * sizeof(*t));
  if(!t)
    return ERR_NOMEM;
  b->times = t;
  b->slots = n;
  return 0;
}

/*
 * Closes the body under construction, hands it to on_body and starts an
 * empty one whose first record will be the next sequence number. Returns
 * on_body's result. The body must not be empty.
 */
static int
batcher_emit(struct batcher *b)
{
  struct batcher_body body;
  int rc;

  /* batcher_add keeps one byte free for this, so it cannot fail. */
  rc = buf_putc(&b->body, ']');
  if(rc)
    return rc;
  b->offsets[b->count] = b->body.len;
  body.json = b->body.data;
  body.len = b->body.len;
  body.first = b->first;
  body.count = b->count;
  body.min_time = b->min_time;
  body.max_time = b->max_time;
  body.offsets = b->offsets;
  body.times = b->times;
  rc = b->on_body(b->ud, &body);
  buf_reset(&b->body);
  b->count = 0;
  b->first = b->next_seq;
  return rc;
}

int
batcher_add(struct batcher *b, const char *json, size_t len,
            int64_t time_generated)
{
  char reason[96];
  size_t before;
  int64_t lo, hi;
  int rc;

  if(!b || !json || !len)
    return ERR_INVAL;
  if(len > b->max - 2) {
    /* Close the open body first so that callbacks follow sequence order. */
    if(b->count) {
      rc = batcher_emit(b);
      if(rc)
        return rc;
    }
    snprintf(reason, sizeof(reason),
             "record of %zu bytes exceeds max_request_bytes %zu", len,
             b->max);
    b->first = ++b->next_seq;
    return b->on_reject(b->ud, b->next_seq - 1, json, len, reason);
  }
  if(b->count) {
    lo = time_generated < b->min_time ? time_generated : b->min_time;
    hi = time_generated > b->max_time ? time_generated : b->max_time;
    /* "[" + records + "," + this + "]" must fit; the "[" is in body.len. */
    if(len + 2 > b->max - b->body.len ||
       (uint64_t)hi - (uint64_t)lo > BATCHER_MAX_SPAN_SECONDS) {
      rc = batcher_emit(b);
      if(rc)
        return rc;
    }
  }
  rc = batcher_grow_slots(b);
  if(rc)
    return rc;
  before = b->body.len;
  rc = buf_putc(&b->body, b->count ? ',' : '[');
  if(!rc)
    rc = buf_append(&b->body, json, len);
  if(rc) {
    buf_truncate(&b->body, before);
    return rc;
  }
  b->offsets[b->count] = b->body.len - len;
  b->times[b->count] = time_generated;
  if(!b->count || time_generated < b->min_time)
    b->min_time = time_generated;
  if(!b->count || time_generated > b->max_time)
    b->max_time = time_generated;
  b->count++;
  b->next_seq++;
  return 0;
}

int
batcher_flush(struct batcher *b)
{
  if(!b)
    return ERR_INVAL;
  return b->count ? batcher_emit(b) : 0;
}

int
batcher_body_record(const struct batcher_body *body, uint64_t i,
                    const char **json, size_t *len)
{
  if(!body || !json || !len || i >= body->count)
    return ERR_INVAL;
  *json = body->json + body->offsets[i];
  *len = body->offsets[i + 1] - 1 - body->offsets[i];
  return 0;
}

/* Rounds n up to a multiple of the strictest alignment malloc provides. */
static size_t
align_up(size_t n)
{
  size_t a = alignof(max_align_t);

  return (n + a - 1) / a * a;
}

/* Recomputes min_time and max_time of a batch from its times. */
static void
batch_bounds(struct batcher_batch *b)
{
  b->body.min_time = b->times[0];
  b->body.max_time = b->times[0];
  for(uint64_t i = 1; i < b->body.count; i++) {
    if(b->times[i] < b->body.min_time)
      b->body.min_time = b->times[i];
    if(b->times[i] > b->body.max_time)
      b->body.max_time = b->times[i];
  }
}

/*
 * One allocation for a batch of n records and jlen bytes of JSON: the
 * struct, then times, offsets and the JSON (with room for its NUL), the
 * arrays aligned. The callers have checked that the sizes cannot
 * overflow. Returns the batch (owned by the caller) with its three
 * pointers and cap set and its body view zeroed, or NULL.
 */
static struct batcher_batch *
batch_new(size_t n, size_t jlen)
{
  size_t t_at = align_up(sizeof(struct batcher_batch));
  size_t o_at = align_up(t_at + n * sizeof(int64_t));
  size_t j_at = o_at + (n + 1) * sizeof(size_t);
  struct batcher_batch *b = malloc(j_at + jlen + 1);

  if(!b)
    return NULL;
  memset(&b->body, 0, sizeof(b->body));
  b->times = (int64_t *)(void *)((char *)b + t_at);
  b->offsets = (size_t *)(void *)((char *)b + o_at);
  b->json = (char *)b + j_at;
  b->cap = jlen;
  return b;
}

int
batcher_batch_create(const struct batcher_body *body, uint64_t from,
                     uint64_t to, struct batcher_batch **out)
{
  struct batcher_batch *b;
  size_t n, start, end, jlen;

  if(!out)
    return ERR_INVAL;
  *out = NULL;
  if(!body || !body->json || !body->offsets || !body->times || from >= to ||
     to > body->count)
    return ERR_INVAL;
  n = (size_t)(to - from);
  start = body->offsets[from];
  end = body->offsets[to];
  if(!start || end <= start || end > body->len)
    return ERR_INVAL;
  /* The records and the commas between them, without the last separator,
   * in brackets. A body of n records has at least 2n bytes, so n * 16
   * cannot overflow; the check is for a corrupt view. */
  jlen = end - 1 - start + 2;
  if(n > jlen || jlen > ((size_t)-1) / 4)
    return ERR_INVAL;
  b = batch_new(n, jlen);
  if(!b)
    return ERR_NOMEM;
  b->json[0] = '[';
  memcpy(b->json + 1, body->json + start, jlen - 2);
  b->json[jlen - 1] = ']';
  b->json[jlen] = '\0';
  /* Shift every offset so that record from starts right after the "[". */
  for(size_t i = 0; i <= n; i++)
    b->offsets[i] = body->offsets[from + i] - start + 1;
  memcpy(b->times, body->times + from, n * sizeof(int64_t));
  b->body.json = b->json;
  b->body.len = jlen;
  b->body.first = body->first + from;
  b->body.count = n;
  b->body.offsets = b->offsets;
  b->body.times = b->times;
  batch_bounds(b);
  *out = b;
  return 0;
}

int
batcher_batch_alloc(uint64_t count, size_t cap, struct batcher_batch **out,
                    char **json, size_t **offsets, int64_t **times)
{
  struct batcher_batch *b;

  if(!out || !json || !offsets || !times)
    return ERR_INVAL;
  *out = NULL;
  /* A body of n records has at least 2n bytes ("[" and a comma or "]"
   * after each), so a capacity below that cannot hold them, and the checks
   * below keep the sizes of the three arrays from overflowing. */
  if(!count || cap < 2 || count > cap / 2 || cap > ((size_t)-1) / 4)
    return ERR_INVAL;
  b = batch_new((size_t)count, cap);
  if(!b)
    return ERR_NOMEM;
  b->body.count = count;
  *json = b->json;
  *offsets = b->offsets;
  *times = b->times;
  *out = b;
  return 0;
}

int
batcher_batch_seal(struct batcher_batch *b, size_t len, uint64_t first)
{
  uint64_t n;

  if(!b || b->body.json || len > b->cap || len < 2)
    return ERR_INVAL;
  n = b->body.count;
  if(b->json[0] != '[' || b->json[len - 1] != ']' || b->offsets[0] != 1 ||
     b->offsets[n] != len)
    return ERR_INVAL;
  /* Each record starts after "[" or a comma and ends before a comma or
   * the closing "]", as in every body (record_time relies on it). */
  for(uint64_t i = 0; i < n; i++) {
    if(b->offsets[i + 1] <= b->offsets[i] + 1 ||
       b->json[b->offsets[i] - 1] != (i ? ',' : '[') ||
       b->json[b->offsets[i + 1] - 1] != (i + 1 < n ? ',' : ']'))
      return ERR_INVAL;
  }
  b->json[len] = '\0';
  b->body.json = b->json;
  b->body.len = len;
  b->body.first = first;
  b->body.offsets = b->offsets;
  b->body.times = b->times;
  batch_bounds(b);
  return 0;
}

const struct batcher_body *
batcher_batch_body(const struct batcher_batch *b)
{
  return b ? &b->body : NULL;
}

int
batcher_batch_clamp_time(struct batcher_batch *b, int64_t now,
                         uint64_t *clamped)
{
  int rc;

  if(!b)
    return ERR_INVAL;
  rc = batcher_clamp_time(b->json, b->body.len, b->offsets, b->body.count,
                          now, b->times, clamped);
  if(!rc)
    batch_bounds(b);
  return rc;
}

void
batcher_batch_destroy(struct batcher_batch *b)
{
  free(b);
}

/* Whether Azure would keep time t of a record it receives at now. */
static int
in_window(int64_t t, int64_t now)
{
  return t >= now - BATCHER_CLAMP_PAST_SECONDS &&
         t <= now + BATCHER_CLAMP_FUTURE_SECONDS;
}

/*
 * Finds and parses the TimeGenerated of record i of a body. ERR_PARSE when
 * the record does not have the transform.h layout or lies outside the body.
 */
static int
record_time(const char *json, size_t len, const size_t *offsets, uint64_t i,
            int64_t *t)
{
  size_t start = offsets[i], end = offsets[i + 1];

  /* The prefix, 20 bytes of time and the closing quote, then a separator. */
  if(end > len || start >= end ||
     end - start < TRANSFORM_TG_OFFSET + TRANSFORM_TG_LEN + 2)
    return ERR_PARSE;
  if(memcmp(json + start, tg_prefix, TRANSFORM_TG_OFFSET) ||
     json[start + TRANSFORM_TG_OFFSET + TRANSFORM_TG_LEN] != '"')
    return ERR_PARSE;
  return batcher_time_parse(json + start + TRANSFORM_TG_OFFSET, t);
}

int
batcher_body_needs_clamp(const struct batcher_body *body, int64_t now)
{
  char now_text[TRANSFORM_TG_LEN];
  int64_t t;
  int out = 0;

  /* The clamp refuses a send time it cannot write (and the window's
   * arithmetic would overflow near the ends of int64_t). */
  if(!body || !body->json || !body->offsets ||
     batcher_time_format(now, now_text))
    return 0;
  /* The clamp's first pass: it writes only when every record parses and
   * one of them is out of the window. */
  for(uint64_t i = 0; i < body->count; i++) {
    if(record_time(body->json, body->len, body->offsets, i, &t))
      return 0;
    if(!in_window(t, now))
      out = 1;
  }
  return out;
}

int
batcher_clamp_time(char *json, size_t len, const size_t *offsets,
                   uint64_t count, int64_t now, int64_t *times,
                   uint64_t *clamped)
{
  char now_text[TRANSFORM_TG_LEN];
  uint64_t rewritten = 0;
  int64_t t, v, lo = 0, hi = 0;
  int rc, any_out = 0, all;

  if(clamped)
    *clamped = 0;
  if((!json || !offsets) && count)
    return ERR_INVAL;
  if(batcher_time_format(now, now_text))
    return ERR_INVAL;
  /* Pass 1: check every record, and find the span that per-record
   * clamping would leave. Nothing is written unless all records parse. */
  for(uint64_t i = 0; i < count; i++) {
    rc = record_time(json, len, offsets, i, &t);
    if(rc)
      return rc;
    v = t;
    if(!in_window(t, now)) {
      any_out = 1;
      v = now;
    }
    if(!i || v < lo)
      lo = v;
    if(!i || v > hi)
      hi = v;
  }
  all = any_out && hi - lo > BATCHER_MAX_SPAN_SECONDS;
  /* Pass 2: rewrite. */
  for(uint64_t i = 0; i < count; i++) {
    record_time(json, len, offsets, i, &t);
    if(t != now && (all || !in_window(t, now))) {
      memcpy(json + offsets[i] + TRANSFORM_TG_OFFSET, now_text,
             TRANSFORM_TG_LEN);
      t = now;
      rewritten++;
    }
    if(times)
      times[i] = t;
  }
  if(clamped)
    *clamped = rewritten;
  return 0;
}
