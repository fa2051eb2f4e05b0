/*
 * test_batcher.c: request bodies from the batcher (sizes, spans, order,
 * rejects, callbacks), owned batches (copy, split), the TimeGenerated clamp
 * and the fixed-width time conversions.
 *
 * The core is a property test: thousands of random records with random
 * sizes (including exactly at, just under and over the limit) and random
 * times (including steps across the 30-minute span) go through batchers
 * with random max_request_bytes, and every body is checked against the
 * records that went in: valid JSON (jansson), within the byte and span
 * limits, records in order and each exactly once, rejects exactly those
 * that cannot fit, greedy (a body is closed only when the next record does
 * not fit), and gzip round trips (gzip_decompress and zlib directly).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>
#include <zlib.h>

#include "batcher.h"
#include "err.h"
#include "gzip.h"
#include "transform.h"

/* A deterministic PRNG (xorshift64*) so that a failure reproduces. */
static uint64_t rng_state;

static uint64_t
rng(void)
{
  rng_state ^= rng_state >> 12;
  rng_state ^= rng_state << 25;
  rng_state ^= rng_state >> 27;
  return rng_state * 2685821657736338717ULL;
}

/* A uniform value in [lo, hi]. */
static int64_t
rng_range(int64_t lo, int64_t hi)
{
  return lo + (int64_t)(rng() % (uint64_t)(hi - lo + 1));
}

struct rec {
  char *json;
  size_t len;
  int64_t t;
};

struct ctx {
  struct rec *recs;          /* every record added, by sequence number */
  size_t nrecs, recs_cap;
  size_t max;                /* max_request_bytes of the batcher */
  uint64_t next_expected;    /* the sequence number the next callback sees */
  uint64_t bodies, accepted, rejected;
  int emitted;               /* a body was emitted during the current call */
  int rejected_now;          /* the current record was rejected */
  size_t last_len;           /* the last emitted body */
  int64_t last_min, last_max;
  int body_rc, reject_rc;    /* what the callbacks return */
  uint64_t body_calls, reject_calls;
  struct gzip_compressor *gz; /* when set, every body is round-tripped */
  int check_batches;          /* when set, every body is copied and split */
};

/*
 * Builds a record of about target bytes (at least the bytes without pad):
 * {"TimeGenerated":"...","seq":N,"pad":"..."} with the transform layout.
 */
static struct rec
make_record(uint64_t seq, int64_t t, size_t target)
{
  char head[128], ts[21];
  size_t hlen, pad;
  struct rec r;

  assert_int_equal(batcher_time_format(t, ts), 0);
  ts[20] = '\0';
  hlen = (size_t)snprintf(head, sizeof(head),
                          "{\"TimeGenerated\":\"%s\",\"seq\":%" PRIu64
                          ",\"pad\":\"", ts, seq);
  pad = target > hlen + 2 ? target - hlen - 2 : 0;
  r.len = hlen + pad + 2;
  r.json = malloc(r.len + 1);
  assert_non_null(r.json);
  memcpy(r.json, head, hlen);
  for(size_t i = 0; i < pad; i++) {
    uint64_t x = rng();

    /* Now and then an escaped quote, so that the parser sees escapes. */
    if(pad - i >= 2 && x % 50 == 0) {
      r.json[hlen + i++] = '\\';
      r.json[hlen + i] = '"';
      continue;
    }
    /* One draw gives up to 8 letters. */
    for(int k = 0; k < 8 && i < pad; k++, i++, x >>= 8)
      r.json[hlen + i] = (char)('a' + (x & 0xff) % 26);
    i--;
  }
  memcpy(r.json + hlen + pad, "\"}", 3);
  r.t = t;
  return r;
}

static void
ctx_push(struct ctx *c, struct rec r)
{
  if(c->nrecs == c->recs_cap) {
    c->recs_cap = c->recs_cap ? c->recs_cap * 2 : 256;
    c->recs = realloc(c->recs, c->recs_cap * sizeof(*c->recs));
    assert_non_null(c->recs);
  }
  c->recs[c->nrecs++] = r;
}

static void
ctx_free(struct ctx *c)
{
  for(size_t i = 0; i < c->nrecs; i++)
    free(c->recs[i].json);
  free(c->recs);
  memset(c, 0, sizeof(*c));
}

/*
 * Checks a body or batch view against the records it claims to hold; with
 * parse, also that jansson reads it as the array of those records.
 */
static void
check_view(const struct ctx *c, const struct batcher_body *body, int parse)
{
  json_error_t jerr;
  json_t *arr, *el;
  int64_t lo, hi;

  assert_true(body->count >= 1);
  assert_true(body->first + body->count <= c->nrecs);
  assert_true(body->len <= c->max);
  assert_int_equal(body->json[0], '[');
  assert_int_equal(body->json[body->len - 1], ']');
  assert_int_equal(body->json[body->len], '\0');
  assert_int_equal(body->offsets[0], 1);
  assert_int_equal(body->offsets[body->count], body->len);
  lo = hi = body->times[0];
  for(uint64_t i = 0; i < body->count; i++) {
    const struct rec *r = &c->recs[body->first + i];
    const char *p;
    size_t n;

    assert_int_equal(batcher_body_record(body, i, &p, &n), 0);
    assert_int_equal(n, r->len);
    assert_memory_equal(p, r->json, n);
    assert_int_equal(body->times[i], r->t);
    assert_int_equal(body->json[body->offsets[i + 1] - 1],
                     i + 1 < body->count ? ',' : ']');
    if(r->t < lo)
      lo = r->t;
    if(r->t > hi)
      hi = r->t;
  }
  assert_int_equal(body->min_time, lo);
  assert_int_equal(body->max_time, hi);
  assert_true(hi - lo <= BATCHER_MAX_SPAN_SECONDS);
  if(!parse)
    return;
  /* A parser, not our offsets, must agree that this is the array. */
  arr = json_loadb(body->json, body->len, 0, &jerr);
  if(!arr)
    fail_msg("body is not JSON: %s at %d", jerr.text, jerr.position);
  assert_true(json_is_array(arr));
  assert_int_equal(json_array_size(arr), body->count);
  for(size_t i = 0; i < json_array_size(arr); i++) {
    el = json_array_get(arr, i);
    assert_true(json_is_object(el));
    assert_int_equal(json_integer_value(json_object_get(el, "seq")),
                     body->first + i);
  }
  json_decref(arr);
}

/* Compresses a body, then inflates it with gzip_decompress and zlib. */
static void
check_gzip(struct gzip_compressor *gz, const struct batcher_body *body)
{
  void *z, *back;
  size_t zlen, backlen;
  unsigned char *raw;
  z_stream zs;

  assert_int_equal(gzip_compress(gz, body->json, body->len, &z, &zlen), 0);
  assert_int_equal(gzip_decompress(z, zlen, body->len, &back, &backlen), 0);
  assert_int_equal(backlen, body->len);
  assert_memory_equal(back, body->json, backlen);
  free(back);
  raw = malloc(body->len + 1);
  assert_non_null(raw);
  memset(&zs, 0, sizeof(zs));
  assert_int_equal(inflateInit2(&zs, 16 + MAX_WBITS), Z_OK);
  zs.next_in = z;
  zs.avail_in = (uInt)zlen;
  zs.next_out = raw;
  zs.avail_out = (uInt)body->len + 1;
  assert_int_equal(inflate(&zs, Z_FINISH), Z_STREAM_END);
  assert_int_equal(zs.total_out, body->len);
  assert_memory_equal(raw, body->json, body->len);
  inflateEnd(&zs);
  free(raw);
  free(z);
}

/* Copies a body whole and split at a random record, and checks the parts. */
static void
check_batches(const struct ctx *c, const struct batcher_body *body)
{
  struct batcher_batch *all, *a, *b;
  const struct batcher_body *v;
  uint64_t k;

  assert_int_equal(batcher_batch_create(body, 0, body->count, &all), 0);
  v = batcher_batch_body(all);
  assert_int_equal(v->len, body->len);
  assert_memory_equal(v->json, body->json, body->len);
  assert_int_equal(v->first, body->first);
  /* The same bytes as the body, which on_body had jansson parse. */
  check_view(c, v, 0);
  if(body->count >= 2) {
    k = 1 + rng() % (body->count - 1);
    /* Split the copy, not the body: a batch must be splittable again. */
    assert_int_equal(batcher_batch_create(v, 0, k, &a), 0);
    assert_int_equal(batcher_batch_create(v, k, v->count, &b), 0);
    assert_int_equal(batcher_batch_body(a)->first, body->first);
    assert_int_equal(batcher_batch_body(a)->count, k);
    assert_int_equal(batcher_batch_body(b)->first, body->first + k);
    assert_int_equal(batcher_batch_body(b)->count, body->count - k);
    check_view(c, batcher_batch_body(a), 1);
    check_view(c, batcher_batch_body(b), 1);
    batcher_batch_destroy(a);
    batcher_batch_destroy(b);
  }
  batcher_batch_destroy(all);
}

static int
on_body(void *ud, const struct batcher_body *body)
{
  struct ctx *c = ud;

  c->body_calls++;
  if(c->body_rc)
    return c->body_rc;
  assert_int_equal(body->first, c->next_expected);
  check_view(c, body, 1);
  if(c->gz)
    check_gzip(c->gz, body);
  if(c->check_batches)
    check_batches(c, body);
  c->next_expected += body->count;
  c->accepted += body->count;
  c->bodies++;
  c->emitted = 1;
  c->last_len = body->len;
  c->last_min = body->min_time;
  c->last_max = body->max_time;
  return 0;
}

static int
on_reject(void *ud, uint64_t seq, const char *json, size_t len,
          const char *reason)
{
  struct ctx *c = ud;
  char want[128];

  c->reject_calls++;
  assert_int_equal(seq, c->next_expected);
  assert_true(seq < c->nrecs);
  assert_int_equal(len, c->recs[seq].len);
  assert_memory_equal(json, c->recs[seq].json, len);
  assert_true(len + 2 > c->max);
  snprintf(want, sizeof(want),
           "record of %zu bytes exceeds max_request_bytes %zu", len, c->max);
  assert_string_equal(reason, want);
  c->next_expected++;
  c->rejected++;
  c->rejected_now = 1;
  return c->reject_rc;
}

/* How a round draws its records. */
struct shape {
  size_t div;          /* most records are up to max / div bytes */
  unsigned edge_pct;   /* percent at, over or anywhere up to the limit */
  int64_t step;        /* most times move by -step .. 2 * step */
  unsigned jump_pct;   /* percent of times that jump about 30 min or more */
};

/* A record length for a batcher of max bytes, biased towards the edges. */
static size_t
pick_size(size_t max, const struct shape *sh)
{
  uint64_t r = rng() % 100;

  if(r < sh->edge_pct / 2)
    return (size_t)((int64_t)max - 2 + rng_range(-2, 2)); /* at the limit */
  if(r < sh->edge_pct * 3 / 4)
    return max + (size_t)rng_range(0, (int64_t)max / 4); /* over it */
  if(r < sh->edge_pct)
    return (size_t)rng_range(1, (int64_t)max);
  if(r < sh->edge_pct + 3)
    return 1;                                              /* smallest */
  return (size_t)rng_range(1, (int64_t)(max / sh->div + 1));
}

/* The next TimeGenerated: mostly near the last, sometimes across 30 min. */
static int64_t
pick_time(int64_t t, const struct shape *sh)
{
  uint64_t r = rng() % 100;

  if(r >= sh->jump_pct)
    return t + rng_range(-sh->step, 2 * sh->step);
  if(r >= sh->jump_pct / 4)
    return t + (rng() % 2 ? 1 : -1) * rng_range(1790, 1810);
  return t + rng_range(-200000, 200000);
}

/* One round of the property test with a batcher of max bytes. */
static void
property_round(size_t max, const struct shape *sh, size_t nrecords,
               int check_extras)
{
  struct batcher *b;
  struct ctx c;
  int64_t t = 1780000000 + rng_range(0, 100000000);
  int rc;

  memset(&c, 0, sizeof(c));
  c.max = max;
  c.check_batches = check_extras;
  if(check_extras)
    assert_int_equal(gzip_compressor_create(rng() % 2 ? 1 : 6, &c.gz), 0);
  assert_int_equal(batcher_create(max, on_body, on_reject, &c, &b), 0);
  for(size_t i = 0; i < nrecords; i++) {
    struct rec r;

    t = pick_time(t, sh);
    assert_int_equal(batcher_next_seq(b), c.nrecs);
    r = make_record(c.nrecs, t, pick_size(max, sh));
    ctx_push(&c, r);
    c.emitted = 0;
    c.rejected_now = 0;
    rc = batcher_add(b, r.json, r.len, r.t);
    assert_int_equal(rc, 0);
    /*
     * Greedy: a body closed by this add (other than for a reject) is one
     * that this record would have overflowed, in bytes or in span.
     */
    if(c.emitted && !c.rejected_now) {
      int64_t lo = r.t < c.last_min ? r.t : c.last_min;
      int64_t hi = r.t > c.last_max ? r.t : c.last_max;

      assert_true(c.last_len + 1 + r.len > max ||
                  hi - lo > BATCHER_MAX_SPAN_SECONDS);
    }
    if(rng() % 50 == 0) {
      assert_int_equal(batcher_flush(b), 0);
      /* A flush leaves nothing behind: all records so far were seen. */
      assert_int_equal(c.next_expected, c.nrecs);
    }
  }
  assert_int_equal(batcher_flush(b), 0);
  assert_int_equal(c.next_expected, c.nrecs);
  assert_int_equal(c.accepted + c.rejected, nrecords);
  /* Exactly the records that cannot fit alone were rejected. */
  {
    uint64_t too_big = 0;

    for(size_t i = 0; i < c.nrecs; i++)
      too_big += c.recs[i].len + 2 > max;
    assert_int_equal(c.rejected, too_big);
  }
  batcher_destroy(b);
  gzip_compressor_destroy(c.gz);
  ctx_free(&c);
}

static void
test_property_small_limits(void **state)
{
  (void)state;
  rng_state = 0x5eed5eed12345678ULL;
  /*
   * About 15,000 records through 64 batchers of 45 .. 8000 bytes, from
   * rounds of a few big records per body to rounds of a hundred small ones.
   */
  for(int round = 0; round < 64; round++) {
    static const size_t divs[] = { 2, 8, 40, 200 };
    static const int64_t steps[] = { 0, 5, 120 };
    struct shape sh;
    size_t max = (size_t)rng_range(45, 8000);

    sh.div = divs[rng() % 4];
    sh.edge_pct = (unsigned)rng_range(2, 30);
    sh.step = steps[rng() % 3];
    sh.jump_pct = (unsigned)rng_range(1, 20);
    property_round(max, &sh, (size_t)rng_range(50, 450), round % 4 == 0);
  }
}

static void
test_property_default_limit(void **state)
{
  struct shape sh = { 300, 2, 1, 1 };

  (void)state;
  rng_state = 0xfeedface01234567ULL;
  /*
   * The real limit with realistic records (a few KB, about 600 per body)
   * and a few of up to and over 1 MB, with gzip and splits.
   */
  property_round(BATCHER_DEFAULT_MAX_REQUEST, &sh, 1200, 1);
}

static void
test_empty_flush(void **state)
{
  struct batcher *b;
  struct ctx c;

  (void)state;
  memset(&c, 0, sizeof(c));
  c.max = 100;
  assert_int_equal(batcher_create(100, on_body, on_reject, &c, &b), 0);
  assert_int_equal(batcher_flush(b), 0);
  assert_int_equal(c.body_calls, 0);
  ctx_push(&c, make_record(0, 1780000000, 50));
  assert_int_equal(batcher_add(b, c.recs[0].json, c.recs[0].len,
                               c.recs[0].t), 0);
  assert_int_equal(batcher_flush(b), 0);
  assert_int_equal(c.body_calls, 1);
  /* A second flush has nothing to emit. */
  assert_int_equal(batcher_flush(b), 0);
  assert_int_equal(c.body_calls, 1);
  batcher_destroy(b);
  ctx_free(&c);
}

static void
test_exact_fit(void **state)
{
  struct batcher *b;
  struct ctx c;
  struct rec r1, r2;

  (void)state;
  rng_state = 31;
  /* One record of max - 2 bytes fills a body exactly. */
  memset(&c, 0, sizeof(c));
  r1 = make_record(0, 1780000000, 98);
  c.max = r1.len + 2;
  ctx_push(&c, r1);
  assert_int_equal(batcher_create(c.max, on_body, on_reject, &c, &b), 0);
  assert_int_equal(batcher_add(b, r1.json, r1.len, r1.t), 0);
  assert_int_equal(batcher_flush(b), 0);
  assert_int_equal(c.bodies, 1);
  assert_int_equal(c.last_len, c.max);
  assert_int_equal(c.rejected, 0);
  batcher_destroy(b);
  /* One byte less and it cannot fit anywhere. */
  c.max--;
  c.next_expected = 0;
  c.bodies = 0;
  assert_int_equal(batcher_create(c.max, on_body, on_reject, &c, &b), 0);
  assert_int_equal(batcher_add(b, r1.json, r1.len, r1.t), 0);
  assert_int_equal(batcher_flush(b), 0);
  assert_int_equal(c.rejected, 1);
  assert_int_equal(c.bodies, 0);
  batcher_destroy(b);
  ctx_free(&c);

  /* Two records that fill max exactly share a body; one byte less, not. */
  for(int less = 0; less <= 1; less++) {
    memset(&c, 0, sizeof(c));
    r1 = make_record(0, 1780000000, 70);
    r2 = make_record(1, 1780000000, 90);
    c.max = 1 + r1.len + 1 + r2.len + 1 - (size_t)less;
    ctx_push(&c, r1);
    ctx_push(&c, r2);
    assert_int_equal(batcher_create(c.max, on_body, on_reject, &c, &b), 0);
    assert_int_equal(batcher_add(b, r1.json, r1.len, r1.t), 0);
    assert_int_equal(batcher_add(b, r2.json, r2.len, r2.t), 0);
    assert_int_equal(batcher_flush(b), 0);
    assert_int_equal(c.bodies, less ? 2 : 1);
    assert_int_equal(c.accepted, 2);
    batcher_destroy(b);
    ctx_free(&c);
  }
}

static void
test_span_edge(void **state)
{
  struct batcher *b;
  struct ctx c;
  int64_t t0 = 1780000000;
  int64_t times[] = { t0, t0 + 1000, t0 - 800, t0 + 1000, t0 + 1001 };

  (void)state;
  rng_state = 5;
  memset(&c, 0, sizeof(c));
  c.max = 10000;
  assert_int_equal(batcher_create(c.max, on_body, on_reject, &c, &b), 0);
  /* t0 - 800 .. t0 + 1000 is exactly 30 minutes; t0 + 1001 is one more. */
  for(size_t i = 0; i < sizeof(times) / sizeof(times[0]); i++) {
    ctx_push(&c, make_record(i, times[i], 60));
    assert_int_equal(batcher_add(b, c.recs[i].json, c.recs[i].len,
                                 c.recs[i].t), 0);
    assert_int_equal(c.bodies, i == 4 ? 1 : 0);
  }
  assert_int_equal(c.last_max - c.last_min, BATCHER_MAX_SPAN_SECONDS);
  assert_int_equal(batcher_flush(b), 0);
  assert_int_equal(c.bodies, 2);
  batcher_destroy(b);
  ctx_free(&c);
}

static void
test_callback_errors_propagate(void **state)
{
  struct batcher *b;
  struct ctx c;

  (void)state;
  rng_state = 77;
  memset(&c, 0, sizeof(c));
  c.max = 200;
  assert_int_equal(batcher_create(c.max, on_body, on_reject, &c, &b), 0);
  ctx_push(&c, make_record(0, 1780000000, 150));
  ctx_push(&c, make_record(1, 1780000000, 150));
  assert_int_equal(batcher_add(b, c.recs[0].json, c.recs[0].len,
                               c.recs[0].t), 0);
  /* Record 1 does not fit; emitting record 0's body fails. */
  c.body_rc = 42;
  assert_int_equal(batcher_add(b, c.recs[1].json, c.recs[1].len,
                               c.recs[1].t), 42);
  assert_int_equal(c.body_calls, 1);
  /* The failed body is gone and record 1 was not taken: add it again. */
  assert_int_equal(batcher_next_seq(b), 1);
  c.body_rc = 0;
  c.next_expected = 1;
  assert_int_equal(batcher_add(b, c.recs[1].json, c.recs[1].len,
                               c.recs[1].t), 0);
  c.body_rc = -99;
  assert_int_equal(batcher_flush(b), -99);
  assert_int_equal(batcher_flush(b), 0);
  assert_int_equal(c.body_calls, 2);

  /* A reject callback's result is returned too; the record was taken. */
  c.body_rc = 0;
  c.next_expected = 2;
  c.reject_rc = 7;
  ctx_push(&c, make_record(2, 1780000000, 300));
  assert_int_equal(batcher_add(b, c.recs[2].json, c.recs[2].len,
                               c.recs[2].t), 7);
  assert_int_equal(c.reject_calls, 1);
  assert_int_equal(batcher_next_seq(b), 3);
  batcher_destroy(b);
  ctx_free(&c);
}

static void
test_reject_closes_body(void **state)
{
  struct batcher *b;
  struct ctx c;

  (void)state;
  rng_state = 8;
  memset(&c, 0, sizeof(c));
  c.max = 500;
  assert_int_equal(batcher_create(c.max, on_body, on_reject, &c, &b), 0);
  ctx_push(&c, make_record(0, 1780000000, 60));
  ctx_push(&c, make_record(1, 1780000000, 600));
  ctx_push(&c, make_record(2, 1780000000, 60));
  for(size_t i = 0; i < 3; i++)
    assert_int_equal(batcher_add(b, c.recs[i].json, c.recs[i].len,
                                 c.recs[i].t), 0);
  assert_int_equal(batcher_flush(b), 0);
  /* Records 0 and 2 would fit together, but 1 lies between them. */
  assert_int_equal(c.bodies, 2);
  assert_int_equal(c.rejected, 1);
  assert_int_equal(c.next_expected, 3);
  batcher_destroy(b);
  ctx_free(&c);
}

static void
test_bad_arguments(void **state)
{
  struct batcher *b = (void *)1;
  struct ctx c;
  struct batcher_batch *bt = (void *)1;
  struct batcher_body empty;
  const char *p;
  size_t n;

  (void)state;
  memset(&c, 0, sizeof(c));
  memset(&empty, 0, sizeof(empty));
  assert_int_equal(batcher_create(2, on_body, on_reject, &c, &b), ERR_INVAL);
  assert_null(b);
  assert_int_equal(batcher_create(100, NULL, on_reject, &c, &b), ERR_INVAL);
  assert_int_equal(batcher_create(100, on_body, NULL, &c, &b), ERR_INVAL);
  assert_int_equal(batcher_create(100, on_body, on_reject, &c, &b), 0);
  assert_int_equal(batcher_add(b, "{}", 0, 0), ERR_INVAL);
  assert_int_equal(batcher_add(b, NULL, 2, 0), ERR_INVAL);
  assert_int_equal(c.body_calls + c.reject_calls, 0);
  assert_int_equal(batcher_next_seq(b), 0);
  batcher_destroy(b);
  batcher_destroy(NULL);
  assert_int_equal(batcher_batch_create(&empty, 0, 0, &bt), ERR_INVAL);
  assert_null(bt);
  assert_int_equal(batcher_body_record(&empty, 0, &p, &n), ERR_INVAL);
  assert_null(batcher_batch_body(NULL));
  batcher_batch_destroy(NULL);
}

/* Fixed-width time text must agree with the C library's calendar. */
static void
test_time_format_parse(void **state)
{
  char text[21], want[80];
  int64_t t, back;
  struct tm tm;
  time_t tt;

  (void)state;
  rng_state = 2024;
  for(int i = 0; i < 20000; i++) {
    /* 0000-01-01 .. 9999-12-31, and densely around now. */
    t = i % 2 ? rng_range(-62167219200LL, 253402300799LL)
              : rng_range(1700000000, 1900000000);
    tt = (time_t)t;
    assert_non_null(gmtime_r(&tt, &tm));
    snprintf(want, sizeof(want), "%04d-%02d-%02dT%02d:%02d:%02dZ",
             tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
             tm.tm_min, tm.tm_sec);
    assert_int_equal(batcher_time_format(t, text), 0);
    text[20] = '\0';
    assert_string_equal(text, want);
    assert_int_equal(batcher_time_parse(text, &back), 0);
    assert_int_equal(back, t);
  }
  assert_int_equal(batcher_time_format(-62167219201LL, text), ERR_INVAL);
  assert_int_equal(batcher_time_format(253402300800LL, text), ERR_INVAL);
  assert_int_equal(batcher_time_parse("2026-02-29T00:00:00Z", &t), ERR_PARSE);
  assert_int_equal(batcher_time_parse("2028-02-29T00:00:00Z", &t), 0);
  assert_int_equal(batcher_time_parse("2100-02-29T00:00:00Z", &t), ERR_PARSE);
  assert_int_equal(batcher_time_parse("2000-02-29T00:00:00Z", &t), 0);
  assert_int_equal(batcher_time_parse("2026-13-01T00:00:00Z", &t), ERR_PARSE);
  assert_int_equal(batcher_time_parse("2026-04-31T00:00:00Z", &t), ERR_PARSE);
  assert_int_equal(batcher_time_parse("2026-04-30T24:00:00Z", &t), ERR_PARSE);
  assert_int_equal(batcher_time_parse("2026-04-30T23:60:00Z", &t), ERR_PARSE);
  assert_int_equal(batcher_time_parse("2026-04-30T23:59:60Z", &t), ERR_PARSE);
  assert_int_equal(batcher_time_parse("2026-04-30T23:59:59Z", &t), 0);
  assert_int_equal(batcher_time_parse("2026-04-30 23:00:00Z", &t), ERR_PARSE);
  assert_int_equal(batcher_time_parse("2026-04-30T23:00:00+", &t), ERR_PARSE);
  assert_int_equal(batcher_time_parse("2026-0a-30T23:00:00Z", &t), ERR_PARSE);
}

/*
 * Builds a batch holding records at the given times (through a batcher, as
 * the daemon does) and returns it; c keeps the records.
 */
static int
grab_batch(void *ud, const struct batcher_body *body)
{
  struct batcher_batch **out = ud;

  assert_null(*out);
  return batcher_batch_create(body, 0, body->count, out);
}

static int
no_reject(void *ud, uint64_t seq, const char *json, size_t len,
          const char *reason)
{
  (void)ud;
  (void)seq;
  (void)json;
  (void)len;
  fail_msg("unexpected reject: %s", reason);
  return -1;
}

static struct batcher_batch *
batch_of(struct ctx *c, const int64_t *times, size_t n)
{
  struct batcher_batch *bt = NULL;
  struct batcher *b;

  c->max = BATCHER_DEFAULT_MAX_REQUEST;
  assert_int_equal(batcher_create(c->max, grab_batch, no_reject, &bt, &b),
                   0);
  for(size_t i = 0; i < n; i++) {
    ctx_push(c, make_record(c->nrecs, times[i], 80 + rng() % 100));
    assert_int_equal(batcher_add(b, c->recs[c->nrecs - 1].json,
                                 c->recs[c->nrecs - 1].len, times[i]), 0);
  }
  assert_int_equal(batcher_flush(b), 0);
  batcher_destroy(b);
  assert_non_null(bt);
  assert_int_equal(batcher_batch_body(bt)->count, n);
  return bt;
}

/*
 * Checks that record i of v has time want in both its text and times[i],
 * and that everything but those 20 bytes equals the original record.
 */
static void
check_record_time(const struct ctx *c, const struct batcher_body *v,
                  uint64_t i, int64_t want)
{
  const struct rec *r = &c->recs[v->first + i];
  const char *p;
  char text[20];
  size_t n;
  int64_t got;

  assert_int_equal(batcher_body_record(v, i, &p, &n), 0);
  assert_int_equal(n, r->len);
  assert_memory_equal(p, r->json, TRANSFORM_TG_OFFSET);
  assert_memory_equal(p + TRANSFORM_TG_OFFSET + TRANSFORM_TG_LEN,
                      r->json + TRANSFORM_TG_OFFSET + TRANSFORM_TG_LEN,
                      n - TRANSFORM_TG_OFFSET - TRANSFORM_TG_LEN);
  assert_int_equal(batcher_time_parse(p + TRANSFORM_TG_OFFSET, &got), 0);
  assert_int_equal(got, want);
  assert_int_equal(v->times[i], want);
  assert_int_equal(batcher_time_format(want, text), 0);
  assert_memory_equal(p + TRANSFORM_TG_OFFSET, text, 20);
}

static void
test_clamp_window(void **state)
{
  const int64_t now = 1790000000, h = 3600;
  /* Each case is its own body: offset from now, and whether it moves. */
  const struct { int64_t off; int moved; } cases[] = {
    { -48 * h, 1 }, { 24 * h, 1 }, { -46 * h, 0 }, { 22 * h, 0 },
    { -47 * h, 0 }, { -47 * h - 1, 1 }, { 23 * h, 0 }, { 23 * h + 1, 1 },
    { -400 * 24 * h, 1 }, { 0, 0 },
  };
  (void)state;
  rng_state = 47;
  for(size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
    int64_t times[3] = { now + cases[k].off, now + cases[k].off,
                         now + cases[k].off };
    struct ctx c;
    struct batcher_batch *bt;
    const struct batcher_body *v;
    uint64_t clamped = 99;
    json_t *arr;

    memset(&c, 0, sizeof(c));
    bt = batch_of(&c, times, 3);
    v = batcher_batch_body(bt);

    assert_int_equal(batcher_batch_clamp_time(bt, now, &clamped), 0);
    assert_int_equal(clamped, cases[k].moved ? 3 : 0);
    for(uint64_t i = 0; i < 3; i++)
      check_record_time(&c, v, i, cases[k].moved ? now : times[i]);
    assert_int_equal(v->min_time, cases[k].moved ? now : times[0]);
    assert_int_equal(v->max_time, cases[k].moved ? now : times[0]);
    arr = json_loadb(v->json, v->len, 0, NULL);
    assert_non_null(arr);
    assert_int_equal(json_array_size(arr), 3);
    json_decref(arr);
    batcher_batch_destroy(bt);
    ctx_free(&c);
  }
}

static void
test_clamp_straddling_body_moves_whole(void **state)
{
  const int64_t now = 1790000000, h = 3600;
  /* 47 h 10 min .. 46 h 55 min old: a valid 15-minute span across the edge. */
  int64_t times[] = { now - 47 * h - 600, now - 46 * h - 3300,
                      now - 47 * h - 60 };
  struct batcher_batch *bt;
  const struct batcher_body *v;
  struct ctx c;
  uint64_t clamped;

  (void)state;
  rng_state = 48;
  memset(&c, 0, sizeof(c));
  bt = batch_of(&c, times, 3);
  v = batcher_batch_body(bt);
  assert_int_equal(batcher_batch_clamp_time(bt, now, &clamped), 0);
  /* Moving only two would leave a span of 47 h: all three move. */
  assert_int_equal(clamped, 3);
  for(uint64_t i = 0; i < 3; i++)
    check_record_time(&c, v, i, now);
  assert_int_equal(v->max_time - v->min_time, 0);
  batcher_batch_destroy(bt);
  ctx_free(&c);
}

static void
test_clamp_per_attempt(void **state)
{
  const int64_t now = 1790000000, h = 3600;
  int64_t times[] = { now - 46 * h, now - 46 * h + 30 };
  struct batcher_batch *bt;
  const struct batcher_body *v;
  struct ctx c;
  uint64_t clamped;

  (void)state;
  rng_state = 49;
  memset(&c, 0, sizeof(c));
  bt = batch_of(&c, times, 2);
  v = batcher_batch_body(bt);
  /* The first attempt keeps them; a retry two hours later must move them. */
  assert_int_equal(batcher_batch_clamp_time(bt, now, &clamped), 0);
  assert_int_equal(clamped, 0);
  check_record_time(&c, v, 0, times[0]);
  check_record_time(&c, v, 1, times[1]);
  assert_int_equal(batcher_batch_clamp_time(bt, now + 2 * h, &clamped), 0);
  assert_int_equal(clamped, 2);
  check_record_time(&c, v, 0, now + 2 * h);
  check_record_time(&c, v, 1, now + 2 * h);
  /* A later attempt leaves the earlier send time alone while it is valid. */
  assert_int_equal(batcher_batch_clamp_time(bt, now + 3 * h, NULL), 0);
  check_record_time(&c, v, 1, now + 2 * h);
  batcher_batch_destroy(bt);
  ctx_free(&c);
}

/* Builds a body by hand from records; offsets has n + 1 entries. */
static char *
hand_body(const struct rec *r, size_t n, size_t *offsets, size_t *len)
{
  size_t total = 1;
  char *json;

  for(size_t i = 0; i < n; i++)
    total += r[i].len + 1;
  json = malloc(total + 1);
  assert_non_null(json);
  *len = 0;
  for(size_t i = 0; i < n; i++) {
    json[(*len)++] = i ? ',' : '[';
    offsets[i] = *len;
    memcpy(json + *len, r[i].json, r[i].len);
    *len += r[i].len;
  }
  json[(*len)++] = ']';
  json[*len] = '\0';
  offsets[n] = *len;
  return json;
}

static void
test_clamp_low_level(void **state)
{
  const int64_t now = 1790000000, h = 3600;
  struct rec r[3];
  size_t offsets[4], len;
  int64_t times[3];
  uint64_t clamped;
  char *json, *copy;

  (void)state;
  rng_state = 50;
  /*
   * A body no batcher would make (a 48 h span), as a test fake might: the
   * record 48 h old moves; the one 5 minutes old stays, since the span
   * after moving is within 30 minutes; 46 h old stays when alone in range.
   */
  r[0] = make_record(0, now - 48 * h, 100);
  r[1] = make_record(1, now - 300, 100);
  json = hand_body(r, 2, offsets, &len);
  assert_int_equal(batcher_clamp_time(json, len, offsets, 2, now, times,
                                      &clamped), 0);
  assert_int_equal(clamped, 1);
  assert_int_equal(times[0], now);
  /* Offsets that point past the end of the body: refused. */
  assert_int_equal(batcher_clamp_time(json, len - 1, offsets, 2, now, times,
                                      &clamped), ERR_PARSE);
  assert_int_equal(times[1], now - 300);
  assert_memory_equal(json + offsets[1], r[1].json, r[1].len);
  free(json);
  free(r[0].json);
  free(r[1].json);

  /*
   * Out of the window, at now already, and 46 h old: moving the first
   * leaves 46 h of span, so all move; the count says which values changed.
   */
  r[0] = make_record(0, now - 48 * h, 100);
  r[1] = make_record(1, now, 100);
  r[2] = make_record(2, now - 46 * h, 100);
  json = hand_body(r, 3, offsets, &len);
  assert_int_equal(batcher_clamp_time(json, len, offsets, 3, now, times,
                                      &clamped), 0);
  assert_int_equal(clamped, 2);
  for(int i = 0; i < 3; i++) {
    assert_int_equal(times[i], now);
    assert_memory_equal(json + offsets[i] + TRANSFORM_TG_OFFSET,
                        r[1].json + TRANSFORM_TG_OFFSET, TRANSFORM_TG_LEN);
  }
  free(json);
  for(int i = 0; i < 3; i++)
    free(r[i].json);

  /* Over the span but nothing out of the window: not ours to fix. */
  r[0] = make_record(0, now - 46 * h, 100);
  r[1] = make_record(1, now - 300, 100);
  json = hand_body(r, 2, offsets, &len);
  assert_int_equal(batcher_clamp_time(json, len, offsets, 2, now, times,
                                      &clamped), 0);
  assert_int_equal(clamped, 0);
  assert_memory_equal(json + offsets[0], r[0].json, r[0].len);
  free(json);

  /* A record without the layout: ERR_PARSE and nothing changes at all. */
  free(r[1].json);
  r[1].json = strdup("{\"task_id\":\"1\","
                     "\"TimeGenerated\":\"2026-01-01T00:00:00Z\"}");
  r[1].len = strlen(r[1].json);
  r[2] = make_record(2, now - 48 * h, 60);
  free(r[0].json);
  r[0] = make_record(0, now - 48 * h, 60);
  json = hand_body(r, 3, offsets, &len);
  copy = malloc(len);
  assert_non_null(copy);
  memcpy(copy, json, len);
  assert_int_equal(batcher_clamp_time(json, len, offsets, 3, now, times,
                                      &clamped), ERR_PARSE);
  assert_memory_equal(json, copy, len);
  free(json);
  free(copy);

  /* An impossible date in a record is ERR_PARSE too. */
  free(r[1].json);
  r[1] = make_record(1, now, 60);
  memcpy(r[1].json + TRANSFORM_TG_OFFSET, "2026-02-30T00:00:00Z", 20);
  json = hand_body(r, 3, offsets, &len);
  assert_int_equal(batcher_clamp_time(json, len, offsets, 3, now, NULL,
                                      NULL), ERR_PARSE);
  /* Bad now, and an empty body. */
  assert_int_equal(batcher_clamp_time(json, len, offsets, 3,
                                      253402300800LL, NULL, NULL), ERR_INVAL);
  assert_int_equal(batcher_clamp_time(json, len, offsets, 0, now, NULL,
                                      &clamped), 0);
  assert_int_equal(clamped, 0);
  free(json);
  for(int i = 0; i < 3; i++)
    free(r[i].json);
}

/*
 * A body assembled in place (batcher_batch_alloc, _seal) is the same body
 * batcher_batch_create would make of the same records, and a seal with
 * offsets that do not describe the written bytes is refused.
 */
static void
test_batch_alloc_seal(void **state)
{
  const int64_t now = 1790000000;
  int64_t times[] = { now - 60, now - 30, now };
  struct batcher_batch *bt, *built;
  const struct batcher_body *v, *w;
  struct ctx c;
  char *json;
  size_t *offs, pos = 1;
  int64_t *tm;

  (void)state;
  rng_state = 51;
  memset(&c, 0, sizeof(c));
  bt = batch_of(&c, times, 3);
  v = batcher_batch_body(bt);
  assert_int_equal(batcher_batch_alloc(3, v->len + 7, &built, &json, &offs,
                                       &tm), 0);
  json[0] = '[';
  for(uint64_t i = 0; i < 3; i++) {
    const char *r;
    size_t n;

    assert_int_equal(batcher_body_record(v, i, &r, &n), 0);
    offs[i] = pos;
    memcpy(json + pos, r, n);
    pos += n;
    json[pos++] = i < 2 ? ',' : ']';
    tm[i] = times[i];
  }
  offs[3] = pos;
  /* Longer than what was written, or offsets off by one: refused. */
  assert_int_equal(batcher_batch_seal(built, v->len + 8, 0), ERR_INVAL);
  offs[1]++;
  assert_int_equal(batcher_batch_seal(built, pos, 0), ERR_INVAL);
  offs[1]--;
  offs[3] = pos - 1;
  assert_int_equal(batcher_batch_seal(built, pos, 0), ERR_INVAL);
  offs[3] = pos;
  assert_int_equal(batcher_batch_seal(built, pos, 40), 0);
  /* Sealed once only. */
  assert_int_equal(batcher_batch_seal(built, pos, 40), ERR_INVAL);
  w = batcher_batch_body(built);
  assert_int_equal(w->len, v->len);
  assert_memory_equal(w->json, v->json, v->len);
  assert_int_equal(w->json[w->len], '\0');
  assert_int_equal(w->first, 40);
  assert_int_equal(w->count, 3);
  assert_int_equal(w->min_time, now - 60);
  assert_int_equal(w->max_time, now);
  for(uint64_t i = 0; i <= 3; i++)
    assert_int_equal(w->offsets[i], v->offsets[i]);
  batcher_batch_destroy(built);
  /* Impossible sizes. */
  assert_int_equal(batcher_batch_alloc(0, 10, &built, &json, &offs, &tm),
                   ERR_INVAL);
  assert_null(built);
  assert_int_equal(batcher_batch_alloc(6, 11, &built, &json, &offs, &tm),
                   ERR_INVAL);
  assert_int_equal(batcher_batch_alloc(UINT64_MAX / 2, (size_t)-1, &built,
                                       &json, &offs, &tm), ERR_INVAL);
  batcher_batch_destroy(bt);
  ctx_free(&c);
}

/* needs_clamp agrees with what the clamp then does, and writes nothing. */
static void
test_needs_clamp(void **state)
{
  const int64_t now = 1790000000, h = 3600;
  const int64_t offsets[] = { 0, -46 * h, 22 * h, -47 * h - 1, 23 * h + 1,
                              -400 * 24 * h };

  (void)state;
  rng_state = 52;
  for(size_t k = 0; k < sizeof(offsets) / sizeof(offsets[0]); k++) {
    /* One body: within 30 minutes of each other. */
    int64_t times[2] = { now + offsets[k], now + offsets[k] + 10 };
    struct batcher_batch *bt;
    const struct batcher_body *v;
    struct ctx c;
    char *before;
    uint64_t clamped;
    int need;

    memset(&c, 0, sizeof(c));
    bt = batch_of(&c, times, 2);
    v = batcher_batch_body(bt);
    before = malloc(v->len);
    assert_non_null(before);
    memcpy(before, v->json, v->len);
    need = batcher_body_needs_clamp(v, now);
    assert_memory_equal(before, v->json, v->len);
    assert_int_equal(batcher_batch_clamp_time(bt, now, &clamped), 0);
    assert_int_equal(need, clamped > 0);
    assert_int_equal(need, offsets[k] < -47 * h || offsets[k] > 23 * h);
    free(before);
    batcher_batch_destroy(bt);
    ctx_free(&c);
  }
  assert_int_equal(batcher_body_needs_clamp(NULL, now), 0);
}

int
main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_property_small_limits),
    cmocka_unit_test(test_property_default_limit),
    cmocka_unit_test(test_empty_flush),
    cmocka_unit_test(test_exact_fit),
    cmocka_unit_test(test_span_edge),
    cmocka_unit_test(test_callback_errors_propagate),
    cmocka_unit_test(test_reject_closes_body),
    cmocka_unit_test(test_bad_arguments),
    cmocka_unit_test(test_time_format_parse),
    cmocka_unit_test(test_clamp_window),
    cmocka_unit_test(test_clamp_straddling_body_moves_whole),
    cmocka_unit_test(test_clamp_per_attempt),
    cmocka_unit_test(test_clamp_low_level),
    cmocka_unit_test(test_batch_alloc_seal),
    cmocka_unit_test(test_needs_clamp),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
