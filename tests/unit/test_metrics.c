/*
 * test_metrics.c: the metrics registry, its Prometheus text rendering, and
 * the /metrics, /healthz, /readyz server (driven with libcurl).
 *
 * The rendered text is parsed back here (a small parser of the exposition
 * format: # HELP, # TYPE, samples) so that the tests check the format
 * rules, not only substrings: every sample belongs to a family announced
 * once by HELP and TYPE before its samples, and histogram buckets are
 * cumulative and end with +Inf equal to _count.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>

#include "buf.h"
#include "err.h"
#include "metrics.h"

#define P "spectra_sentinel_"

/* ---- a parser of the text exposition format ---- */

#define MAX_SAMPLES 256
#define MAX_FAMILIES 64

struct sample {
  char key[160];     /* name{labels} exactly as written */
  char name[96];     /* metric name */
  double value;
  char raw[48];      /* the value as written */
};

struct family {
  char name[96];
  char type[32];
  int has_help;
  int nsamples;
};

struct expo {
  struct sample s[MAX_SAMPLES];
  int n;
  struct family f[MAX_FAMILIES];
  int nf;
};

static struct family *
family_find(struct expo *e, const char *name)
{
  for(int i = 0; i < e->nf; i++) {
    if(!strcmp(e->f[i].name, name))
      return &e->f[i];
  }
  return NULL;
}

/*
 * The family a sample belongs to: its name, or for a histogram's series the
 * name without _bucket, _sum or _count.
 */
static struct family *
family_of(struct expo *e, const char *name)
{
  static const char *const suffixes[] = { "_bucket", "_sum", "_count" };
  struct family *f = family_find(e, name);
  char base[96];

  if(f)
    return f;
  for(size_t i = 0; i < 3; i++) {
    size_t nl = strlen(name), sl = strlen(suffixes[i]);

    if(nl > sl && !strcmp(name + nl - sl, suffixes[i]) && nl - sl < 96) {
      memcpy(base, name, nl - sl);
      base[nl - sl] = '\0';
      f = family_find(e, base);
      if(f && !strcmp(f->type, "histogram"))
        return f;
    }
  }
  return NULL;
}

/*
 * Parses text into e, failing the test on any line that breaks the format:
 * every line ends with \n, HELP precedes TYPE precedes the samples, a family
 * is announced once, and names and values are well formed.
 */
static void
expo_parse(const char *text, struct expo *e)
{
  const char *p = text;
  struct family *cur = NULL;

  memset(e, 0, sizeof(*e));
  while(*p) {
    const char *nl = strchr(p, '\n');
    char line[512], name[96], rest[400];
    size_t len;

    assert_non_null(nl);
    len = (size_t)(nl - p);
    assert_true(len > 0 && len < sizeof(line));
    memcpy(line, p, len);
    line[len] = '\0';
    p = nl + 1;

    if(!strncmp(line, "# HELP ", 7)) {
      assert_int_equal(sscanf(line + 7, "%95s %399[^\n]", name, rest), 2);
      assert_null(family_find(e, name));
      assert_true(e->nf < MAX_FAMILIES);
      cur = &e->f[e->nf++];
      snprintf(cur->name, sizeof(cur->name), "%s", name);
      cur->has_help = 1;
    }
    else if(!strncmp(line, "# TYPE ", 7)) {
      char type[32];

      assert_int_equal(sscanf(line + 7, "%95s %31s", name, type), 2);
      assert_non_null(cur);
      assert_string_equal(cur->name, name);
      assert_string_equal(cur->type, "");
      assert_true(!strcmp(type, "counter") || !strcmp(type, "gauge") ||
                  !strcmp(type, "histogram"));
      snprintf(cur->type, sizeof(cur->type), "%s", type);
    }
    else {
      struct sample *s;
      const char *sp = strrchr(line, ' ');
      char *end;
      size_t nlen;

      assert_int_not_equal(line[0], '#');
      assert_non_null(sp);
      assert_true(e->n < MAX_SAMPLES);
      s = &e->s[e->n++];
      assert_true((size_t)(sp - line) < sizeof(s->key));
      memcpy(s->key, line, (size_t)(sp - line));
      s->key[sp - line] = '\0';
      snprintf(s->raw, sizeof(s->raw), "%s", sp + 1);
      s->value = strtod(sp + 1, &end);
      assert_true(end != sp + 1 && *end == '\0');
      nlen = strcspn(s->key, "{");
      assert_true(nlen > 0 && nlen < sizeof(s->name));
      memcpy(s->name, s->key, nlen);
      s->name[nlen] = '\0';
      assert_true(strspn(s->name, "abcdefghijklmnopqrstuvwxyz"
                         "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_:") == nlen);
      if(s->key[nlen])
        assert_int_equal(s->key[strlen(s->key) - 1], '}');
      /* A sample belongs to the family announced last, which has a type. */
      assert_non_null(cur);
      assert_ptr_equal(family_of(e, s->name), cur);
      assert_string_not_equal(cur->type, "");
      cur->nsamples++;
    }
  }
}

/* The sample with key name{labels}, or NULL. */
static const struct sample *
expo_get(const struct expo *e, const char *key)
{
  for(int i = 0; i < e->n; i++) {
    if(!strcmp(e->s[i].key, key))
      return &e->s[i];
  }
  return NULL;
}

/* The raw value of key, failing the test when it is absent. */
static const char *
expo_raw(const struct expo *e, const char *key)
{
  const struct sample *s = expo_get(e, key);

  if(!s)
    fail_msg("no sample %s", key);
  return s->raw;
}

static void
render(const struct metrics *m, struct expo *e, struct buf *keep)
{
  struct buf b;

  buf_init(&b, 1 << 20);
  assert_int_equal(metrics_render(m, &b), 0);
  assert_non_null(b.data);
  expo_parse(b.data, e);
  if(keep)
    *keep = b;
  else
    buf_free(&b);
}

/* ---- registry and rendering ---- */

static void
test_fresh_registry(void **state)
{
  struct metrics *m = NULL;
  struct expo *e = calloc(1, sizeof(*e));
  const struct family *f;

  (void)state;
  assert_non_null(e);
  assert_int_equal(metrics_create(&m), 0);
  render(m, e, NULL);
  /* Every counter is exposed from the start, at 0. */
  assert_string_equal(expo_raw(e, P "records_sent_total"), "0");
  assert_string_equal(expo_raw(e, P "blobs_listed_total"), "0");
  assert_string_equal(expo_raw(e, P "ingestion_requests_total{code=\"204\"}"),
                      "0");
  /* Token expiry is left out until set. */
  assert_null(family_find(e, P "token_expiry_timestamp_seconds"));
  assert_string_equal(expo_raw(e, P "last_successful_poll_timestamp_seconds"),
                      "0.000");
  assert_string_equal(expo_raw(e, P "build_info{version=\"" SS_VERSION
                               "\"}"), "1");
  /* Every family has HELP, TYPE and at least one sample; counters end in
     _total and every name has the prefix, but the standard process one. */
  for(int i = 0; i < e->nf; i++) {
    f = &e->f[i];
    assert_true(f->has_help);
    assert_true(f->nsamples > 0);
    if(!strcmp(f->type, "counter"))
      assert_non_null(strstr(f->name, "_total"));
    if(strcmp(f->name, "process_start_time_seconds"))
      assert_int_equal(strncmp(f->name, P, strlen(P)), 0);
  }
  free(e);
  metrics_destroy(m);
  metrics_destroy(NULL);
}

static void
test_counters_exact(void **state)
{
  struct metrics *m = NULL;
  struct expo *e = calloc(1, sizeof(*e));
  struct buf text;

  (void)state;
  assert_non_null(e);
  assert_int_equal(metrics_create(&m), 0);
  metrics_inc(m, METRIC_RECORDS_SENT, 5);
  metrics_inc(m, METRIC_RECORDS_SENT, 1);
  metrics_inc(m, METRIC_BLOBS_SKIPPED_DONE, 2);
  metrics_inc(m, METRIC_BLOBS_SKIPPED_SUFFIX, 3);
  metrics_inc(m, METRIC_BLOBS_SKIPPED_DIRECTORY, 1);
  metrics_inc(m, METRIC_RECORDS_DEAD_LETTERED_TOO_LARGE, 7);
  metrics_inc(m, METRIC_INGESTION_BYTES_UNCOMPRESSED, 10000000000ull);
  /* Out-of-range ids and a NULL registry are ignored, not crashes. */
  metrics_inc(m, METRIC_COUNTER_COUNT, 99);
  metrics_inc(NULL, METRIC_RECORDS_SENT, 1);
  render(m, e, &text);

  assert_string_equal(expo_raw(e, P "records_sent_total"), "6");
  assert_string_equal(expo_raw(e, P "ingestion_sent_uncompressed_bytes_total"),
                      "10000000000");
  assert_string_equal(expo_raw(e, P "records_dead_lettered_total"
                               "{reason=\"too_large\"}"), "7");
  assert_string_equal(expo_raw(e, P "records_dead_lettered_total"
                               "{reason=\"rejected\"}"), "0");
  /* A labelled family is one block: HELP, TYPE, then its four series. */
  assert_non_null(strstr(text.data,
    "# HELP " P "blobs_skipped_total Listed blobs not downloaded, by reason.\n"
    "# TYPE " P "blobs_skipped_total counter\n"
    P "blobs_skipped_total{reason=\"already_done\"} 2\n"
    P "blobs_skipped_total{reason=\"before_start\"} 0\n"
    P "blobs_skipped_total{reason=\"suffix\"} 3\n"
    P "blobs_skipped_total{reason=\"directory\"} 1\n"));
  assert_int_equal(family_find(e, P "blobs_skipped_total")->nsamples, 4);
  buf_free(&text);
  free(e);
  metrics_destroy(m);
}

static void
test_status_codes(void **state)
{
  struct metrics *m = NULL;
  struct expo *e = calloc(1, sizeof(*e));
  const struct family *f;

  (void)state;
  assert_non_null(e);
  assert_int_equal(metrics_create(&m), 0);
  for(int i = 0; i < 3; i++)
    metrics_count_status(m, 204);
  metrics_count_status(m, 429);
  metrics_count_status(m, 413);
  metrics_count_status(m, 418);   /* not in the table: other */
  metrics_count_status(m, 599);
  metrics_count_status(m, 200);
  metrics_count_status(m, 0);     /* no response: error */
  metrics_count_status(m, -9);
  render(m, e, NULL);
  assert_string_equal(expo_raw(e, P "ingestion_requests_total{code=\"204\"}"),
                      "3");
  assert_string_equal(expo_raw(e, P "ingestion_requests_total{code=\"429\"}"),
                      "1");
  assert_string_equal(expo_raw(e, P "ingestion_requests_total{code=\"413\"}"),
                      "1");
  assert_string_equal(expo_raw(e, P "ingestion_requests_total{code=\"503\"}"),
                      "0");
  assert_string_equal(expo_raw(e, P "ingestion_requests_total"
                               "{code=\"other\"}"), "3");
  assert_string_equal(expo_raw(e, P "ingestion_requests_total"
                               "{code=\"error\"}"), "2");
  /* The label set is fixed: no series appeared for 418 or 599. */
  assert_null(expo_get(e, P "ingestion_requests_total{code=\"418\"}"));
  f = family_find(e, P "ingestion_requests_total");
  assert_non_null(f);
  assert_string_equal(f->type, "counter");
  assert_int_equal(f->nsamples, 14);
  free(e);
  metrics_destroy(m);
}

static void
test_histogram(void **state)
{
  static const uint64_t sizes[] = { 100, 16384, 16385, 70000, 1000000,
                                    2000000 };
  struct metrics *m = NULL;
  struct expo *e = calloc(1, sizeof(*e));
  struct buf text;
  uint64_t sum = 0;
  char want[64];
  const char *h = P "ingestion_request_size_bytes";
  const char *hist;

  (void)state;
  assert_non_null(e);
  assert_int_equal(metrics_create(&m), 0);
  for(size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
    metrics_observe_request_size(m, sizes[i]);
    sum += sizes[i];
  }
  render(m, e, &text);
  assert_string_equal(family_find(e, h)->type, "histogram");
  /* le is an inclusive upper bound: 16384 falls in the first bucket. */
  hist = strstr(text.data, "# TYPE " P "ingestion_request_size_bytes "
                "histogram\n");
  assert_non_null(hist);
  assert_non_null(strstr(hist,
    P "ingestion_request_size_bytes_bucket{le=\"16384\"} 2\n"
    P "ingestion_request_size_bytes_bucket{le=\"65536\"} 3\n"
    P "ingestion_request_size_bytes_bucket{le=\"131072\"} 4\n"
    P "ingestion_request_size_bytes_bucket{le=\"262144\"} 4\n"
    P "ingestion_request_size_bytes_bucket{le=\"524288\"} 4\n"
    P "ingestion_request_size_bytes_bucket{le=\"1048576\"} 5\n"
    P "ingestion_request_size_bytes_bucket{le=\"+Inf\"} 6\n"
    P "ingestion_request_size_bytes_sum "));
  snprintf(want, sizeof(want), "%" PRIu64, sum);
  assert_string_equal(expo_raw(e, P "ingestion_request_size_bytes_sum"), want);
  assert_string_equal(expo_raw(e, P "ingestion_request_size_bytes_count"),
                      "6");
  assert_int_equal(family_find(e, h)->nsamples, 9);
  buf_free(&text);
  free(e);
  metrics_destroy(m);
}

static void
test_gauges_and_derived(void **state)
{
  struct metrics *m = NULL;
  struct expo *e = calloc(1, sizeof(*e));
  time_t before = time(NULL), now;
  double lag, start, poll;

  (void)state;
  assert_non_null(e);
  assert_int_equal(metrics_create(&m), 0);
  metrics_set(m, METRIC_BACKLOG_BLOBS, 0);
  metrics_set(m, METRIC_CHECKPOINT_WATERMARK, (int64_t)before - 100);
  metrics_set(m, METRIC_TOKEN_EXPIRY_INGESTION, 1900000000);
  metrics_set(m, METRIC_GAUGE_COUNT, 5);   /* ignored */
  render(m, e, NULL);
  /* An empty backlog means no lag, however old the watermark. */
  assert_string_equal(expo_raw(e, P "checkpoint_lag_seconds"), "0");
  assert_string_equal(expo_raw(e, P "token_expiry_timestamp_seconds"
                               "{audience=\"ingestion\"}"), "1900000000");
  assert_null(expo_get(e, P "token_expiry_timestamp_seconds"
                          "{audience=\"storage\"}"));
  assert_string_equal(family_find(e, P "token_expiry_timestamp_seconds")->type,
                      "gauge");

  metrics_set(m, METRIC_BACKLOG_BLOBS, 3);
  metrics_set(m, METRIC_TOKEN_EXPIRY_STORAGE, 1900000100);
  metrics_poll_done(m, 1);
  render(m, e, NULL);
  now = time(NULL);
  assert_string_equal(expo_raw(e, P "backlog_blobs"), "3");
  lag = expo_get(e, P "checkpoint_lag_seconds")->value;
  assert_true(lag >= 100 && lag <= 100 + (double)(now - before));
  assert_string_equal(expo_raw(e, P "token_expiry_timestamp_seconds"
                               "{audience=\"storage\"}"), "1900000100");
  assert_int_equal(family_find(e, P "token_expiry_timestamp_seconds")
                   ->nsamples, 2);
  start = expo_get(e, "process_start_time_seconds")->value;
  assert_true(start >= (double)before - 1 && start <= (double)now + 1);
  poll = expo_get(e, P "last_successful_poll_timestamp_seconds")->value;
  assert_true(poll >= (double)before && poll <= (double)now + 1);
  assert_string_equal(expo_raw(e, P "last_successful_send_timestamp_seconds"),
                      "0.000");
  free(e);
  metrics_destroy(m);
}

static void
test_render_cap(void **state)
{
  struct metrics *m = NULL;
  struct buf b;

  (void)state;
  assert_int_equal(metrics_create(&m), 0);
  buf_init(&b, 200);
  assert_int_equal(metrics_render(m, &b), ERR_TOOBIG);
  assert_true(b.len <= 200);
  buf_free(&b);
  assert_int_equal(metrics_render(NULL, &b), ERR_INVAL);
  metrics_destroy(m);
}

/* ---- concurrency ---- */

#define THREADS 4
#define ROUNDS 50000

static void *
hammer(void *arg)
{
  struct metrics *m = arg;

  for(int i = 0; i < ROUNDS; i++) {
    metrics_inc(m, METRIC_RECORDS_SENT, 1);
    metrics_inc(m, METRIC_INGESTION_BYTES_WIRE, 3);
    metrics_count_status(m, i % 2 ? 204 : 429);
    metrics_observe_request_size(m, (uint64_t)(i % 4) * 100000u);
    metrics_heartbeat(m);
  }
  return NULL;
}

static void
test_concurrent_updates(void **state)
{
  struct metrics *m = NULL;
  struct expo *e = calloc(1, sizeof(*e));
  pthread_t t[THREADS];
  double last = 0;
  int renders = 0;
  char want[32];

  (void)state;
  assert_non_null(e);
  assert_int_equal(metrics_create(&m), 0);
  for(int i = 0; i < THREADS; i++)
    assert_int_equal(pthread_create(&t[i], NULL, hammer, m), 0);
  /* Render while the writers run: each counter only grows, and the +Inf
     bucket always equals _count. */
  for(int i = 0; i < 50; i++) {
    double v;

    render(m, e, NULL);
    renders++;
    v = expo_get(e, P "records_sent_total")->value;
    assert_true(v >= last);
    last = v;
    assert_string_equal(
      expo_raw(e, P "ingestion_request_size_bytes_bucket{le=\"+Inf\"}"),
      expo_raw(e, P "ingestion_request_size_bytes_count"));
  }
  for(int i = 0; i < THREADS; i++)
    assert_int_equal(pthread_join(t[i], NULL), 0);
  render(m, e, NULL);
  snprintf(want, sizeof(want), "%d", THREADS * ROUNDS);
  assert_string_equal(expo_raw(e, P "records_sent_total"), want);
  assert_string_equal(
    expo_raw(e, P "ingestion_request_size_bytes_count"), want);
  snprintf(want, sizeof(want), "%d", THREADS * ROUNDS * 3);
  assert_string_equal(expo_raw(e, P "ingestion_sent_bytes_total"), want);
  snprintf(want, sizeof(want), "%d", THREADS * ROUNDS / 2);
  assert_string_equal(expo_raw(e, P "ingestion_requests_total{code=\"204\"}"),
                      want);
  assert_string_equal(expo_raw(e, P "ingestion_requests_total{code=\"429\"}"),
                      want);
  /* Sizes 0 and 100000 land at or under 131072, 200000 under 262144,
     300000 under 524288: a quarter of the observations each. */
  snprintf(want, sizeof(want), "%d", THREADS * ROUNDS / 2);
  assert_string_equal(
    expo_raw(e, P "ingestion_request_size_bytes_bucket{le=\"131072\"}"), want);
  snprintf(want, sizeof(want), "%" PRIu64,
           (uint64_t)THREADS * (ROUNDS / 4) * (100000u + 200000u + 300000u));
  assert_string_equal(expo_raw(e, P "ingestion_request_size_bytes_sum"), want);
  assert_true(renders == 50);
  free(e);
  metrics_destroy(m);
}

/* ---- the HTTP server ---- */

struct reply {
  long status;
  char body[4096];
  size_t body_len;
  char type[128];
  char allow[64];
};

static size_t
on_body(char *p, size_t size, size_t n, void *arg)
{
  struct reply *r = arg;
  size_t len = size * n, room = sizeof(r->body) - 1 - r->body_len;

  if(len > room)
    len = room;
  memcpy(r->body + r->body_len, p, len);
  r->body_len += len;
  r->body[r->body_len] = '\0';
  return size * n;
}

static size_t
on_header(char *p, size_t size, size_t n, void *arg)
{
  struct reply *r = arg;
  size_t len = size * n;

  if(len > 7 && !strncasecmp(p, "Allow: ", 7)) {
    size_t v = len - 7;

    while(v && (p[7 + v - 1] == '\r' || p[7 + v - 1] == '\n'))
      v--;
    if(v >= sizeof(r->allow))
      v = sizeof(r->allow) - 1;
    memcpy(r->allow, p + 7, v);
    r->allow[v] = '\0';
  }
  return len;
}

/*
 * Sends method to http://127.0.0.1:port/path with an optional body and
 * fills r. Fails the test when no HTTP response arrives.
 */
static void
http(unsigned port, const char *method, const char *path, const char *body,
     size_t body_len, struct reply *r)
{
  CURL *c = curl_easy_init();
  char url[128], *ct = NULL;
  CURLcode cc;

  assert_non_null(c);
  memset(r, 0, sizeof(*r));
  snprintf(url, sizeof(url), "http://127.0.0.1:%u%s", port, path);
  curl_easy_setopt(c, CURLOPT_URL, url);
  curl_easy_setopt(c, CURLOPT_NOPROXY, "*");
  curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 10000L);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, r);
  curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(c, CURLOPT_HEADERDATA, r);
  if(!strcmp(method, "HEAD"))
    curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
  else if(body) {
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)body_len);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
  }
  else if(strcmp(method, "GET"))
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
  cc = curl_easy_perform(c);
  if(cc != CURLE_OK)
    fail_msg("%s %s: %s", method, path, curl_easy_strerror(cc));
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r->status);
  curl_easy_getinfo(c, CURLINFO_CONTENT_TYPE, &ct);
  if(ct)
    snprintf(r->type, sizeof(r->type), "%s", ct);
  curl_easy_cleanup(c);
}

static void
sleep_ms(long ms)
{
  struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

  while(nanosleep(&ts, &ts))
    ;
}

/* Windows short enough for a quick test, long enough for valgrind. */
#define WINDOW_MS 1000
#define STALE_MS 1300

static void
test_server_metrics_endpoint(void **state)
{
  struct metrics *m = NULL;
  struct metrics_server *s = NULL;
  struct expo *e = calloc(1, sizeof(*e));
  struct reply *r = calloc(1, sizeof(*r));
  char err[256];
  unsigned port;

  (void)state;
  assert_non_null(e);
  assert_non_null(r);
  assert_int_equal(metrics_create(&m), 0);
  assert_int_equal(metrics_server_start(m, "127.0.0.1:0", NULL, &s, err,
                                        sizeof(err)), 0);
  assert_non_null(s);
  port = metrics_server_port(s);
  assert_true(port > 0);
  metrics_inc(m, METRIC_RECORDS_SENT, 42);

  http(port, "GET", "/metrics", NULL, 0, r);
  assert_int_equal(r->status, 200);
  assert_string_equal(r->type, "text/plain; version=0.0.4; charset=utf-8");
  expo_parse(r->body, e);
  assert_string_equal(expo_raw(e, P "records_sent_total"), "42");

  /* HEAD: the same status and headers, no body. */
  http(port, "HEAD", "/metrics", NULL, 0, r);
  assert_int_equal(r->status, 200);
  assert_int_equal(r->body_len, 0);

  /* A query string does not change the path. */
  http(port, "GET", "/metrics?name[]=x", NULL, 0, r);
  assert_int_equal(r->status, 200);

  http(port, "GET", "/", NULL, 0, r);
  assert_int_equal(r->status, 404);
  http(port, "GET", "/metrics/", NULL, 0, r);
  assert_int_equal(r->status, 404);
  http(port, "GET", "/healthzz", NULL, 0, r);
  assert_int_equal(r->status, 404);

  http(port, "POST", "/metrics", "x=1", 3, r);
  assert_int_equal(r->status, 405);
  assert_string_equal(r->allow, "GET, HEAD");
  http(port, "DELETE", "/healthz", NULL, 0, r);
  assert_int_equal(r->status, 405);
  http(port, "PUT", "/readyz", NULL, 0, r);
  assert_int_equal(r->status, 405);
  {
    /* A large body (curl sends Expect: 100-continue) is refused without
       being read, and the server keeps serving. */
    size_t big = 256 * 1024;
    char *body = malloc(big);

    assert_non_null(body);
    memset(body, 'a', big);
    http(port, "POST", "/metrics", body, big, r);
    assert_int_equal(r->status, 405);
    free(body);
  }
  http(port, "GET", "/metrics", NULL, 0, r);
  assert_int_equal(r->status, 200);

  metrics_server_stop(s);
  metrics_server_stop(NULL);
  metrics_destroy(m);
  free(r);
  free(e);
}

static void
test_server_healthz(void **state)
{
  struct metrics *m = NULL;
  struct metrics_server *s = NULL;
  struct metrics_health h = { .liveness_timeout_ms = WINDOW_MS };
  struct reply *r = calloc(1, sizeof(*r));
  unsigned port;

  (void)state;
  assert_non_null(r);
  assert_int_equal(metrics_create(&m), 0);
  assert_int_equal(metrics_server_start(m, "127.0.0.1:0", &h, &s, NULL, 0),
                   0);
  port = metrics_server_port(s);

  /* A new registry counts as a fresh heartbeat. */
  http(port, "GET", "/healthz", NULL, 0, r);
  assert_int_equal(r->status, 200);
  assert_string_equal(r->body, "ok\n");
  assert_string_equal(r->type, "text/plain; charset=utf-8");

  sleep_ms(STALE_MS);
  http(port, "GET", "/healthz", NULL, 0, r);
  assert_int_equal(r->status, 503);
  assert_int_equal(strncmp(r->body, "unhealthy: no heartbeat", 23), 0);
  assert_non_null(strchr(r->body, '\n'));
  assert_ptr_equal(strchr(r->body, '\n'), r->body + r->body_len - 1);

  metrics_heartbeat(m);
  http(port, "GET", "/healthz", NULL, 0, r);
  assert_int_equal(r->status, 200);
  http(port, "HEAD", "/healthz", NULL, 0, r);
  assert_int_equal(r->status, 200);
  assert_int_equal(r->body_len, 0);

  metrics_server_stop(s);
  metrics_destroy(m);
  free(r);
}

/* GETs /readyz and checks the status and the start of the body. */
static void
expect_ready(unsigned port, long status, const char *prefix)
{
  struct reply *r = calloc(1, sizeof(*r));

  assert_non_null(r);
  http(port, "GET", "/readyz", NULL, 0, r);
  if(r->status != status || strncmp(r->body, prefix, strlen(prefix)))
    fail_msg("/readyz: got %ld \"%s\", want %ld \"%s...\"", r->status,
             r->body, status, prefix);
  free(r);
}

static void
test_server_readyz(void **state)
{
  struct metrics *m = NULL;
  struct metrics_server *s = NULL;
  struct metrics_health h = { .ready_window_ms = WINDOW_MS };
  unsigned port;

  (void)state;
  assert_int_equal(metrics_create(&m), 0);
  assert_int_equal(metrics_server_start(m, "127.0.0.1:0", &h, &s, NULL, 0),
                   0);
  port = metrics_server_port(s);

  expect_ready(port, 503, "not ready: configuration not loaded");
  metrics_set_config_loaded(m, 1);
  expect_ready(port, 503, "not ready: no successful poll yet\n");
  metrics_poll_done(m, 0);
  expect_ready(port, 503, "not ready: no successful poll yet (listing "
               "failed)");
  metrics_poll_done(m, 1);
  expect_ready(port, 200, "ready\n");
  /* A failed poll after a recent success keeps readiness. */
  metrics_poll_done(m, 0);
  expect_ready(port, 200, "ready\n");
  metrics_poll_done(m, 1);

  /* The first sends fail: not ready until one succeeds. */
  metrics_send_done(m, 0);
  expect_ready(port, 503, "not ready: ingestion failing, no successful "
               "send yet");
  metrics_send_done(m, 1);
  expect_ready(port, 200, "ready");
  /* One failure right after a success does not flip readiness. */
  metrics_send_done(m, 0);
  expect_ready(port, 200, "ready");

  /* Past the window: the poll is stale. */
  sleep_ms(STALE_MS);
  expect_ready(port, 503, "not ready: last successful poll ");
  /* Polling again: still failing sends, the last success is stale. */
  metrics_poll_done(m, 1);
  expect_ready(port, 503, "not ready: ingestion failing, last successful "
               "send ");
  metrics_send_done(m, 1);
  expect_ready(port, 200, "ready");

  /* An idle pipeline (last send long ago, but it succeeded) stays ready. */
  sleep_ms(STALE_MS);
  metrics_poll_done(m, 1);
  expect_ready(port, 200, "ready");

  metrics_set_config_loaded(m, 0);
  expect_ready(port, 503, "not ready: configuration not loaded");

  metrics_server_stop(s);
  metrics_destroy(m);
}

static void
test_server_addresses(void **state)
{
  static const char *const bad[] = {
    "nonsense", "127.0.0.1", ":9464", "::1:9464", "[::1]9464", "[::1",
    "127.0.0.1:", "127.0.0.1:70000", "127.0.0.1:abc", "127.0.0.1:-1",
    "127.0.0.1:123456",
  };
  struct metrics *m = NULL;
  struct metrics_server *s = NULL, *s2 = NULL;
  struct reply *r = calloc(1, sizeof(*r));
  char err[256], addr[64];
  int rc;

  (void)state;
  assert_non_null(r);
  assert_int_equal(metrics_create(&m), 0);

  /* "" and NULL disable the server. */
  s = (struct metrics_server *)&s;
  assert_int_equal(metrics_server_start(m, "", NULL, &s, err, sizeof(err)),
                   0);
  assert_null(s);
  assert_int_equal(metrics_server_start(m, NULL, NULL, &s, err, sizeof(err)),
                   0);
  assert_null(s);
  assert_int_equal(metrics_server_port(NULL), 0);

  for(size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    err[0] = '\0';
    rc = metrics_server_start(m, bad[i], NULL, &s, err, sizeof(err));
    if(rc != ERR_CONFIG)
      fail_msg("\"%s\": rc %d", bad[i], rc);
    assert_null(s);
    /* The message names the address. */
    assert_non_null(strstr(err, bad[i]));
  }
  /* Not a local address (TEST-NET-1): the bind fails. */
  rc = metrics_server_start(m, "192.0.2.1:0", NULL, &s, err, sizeof(err));
  assert_int_equal(rc, ERR_CONFIG);
  assert_non_null(strstr(err, "192.0.2.1:0"));
  assert_non_null(strstr(err, "cannot listen"));

  /* A port in use. */
  assert_int_equal(metrics_server_start(m, "127.0.0.1:0", NULL, &s, err,
                                        sizeof(err)), 0);
  snprintf(addr, sizeof(addr), "127.0.0.1:%u", metrics_server_port(s));
  rc = metrics_server_start(m, addr, NULL, &s2, err, sizeof(err));
  assert_int_equal(rc, ERR_CONFIG);
  assert_null(s2);
  assert_non_null(strstr(err, addr));
  assert_non_null(strstr(err, "in use"));
  /* The failed attempt did not disturb the running server. */
  http(metrics_server_port(s), "GET", "/healthz", NULL, 0, r);
  assert_int_equal(r->status, 200);
  /* err may be NULL. */
  assert_int_equal(metrics_server_start(m, addr, NULL, &s2, NULL, 0),
                   ERR_CONFIG);
  metrics_server_stop(s);

  /* The port is free again once stopped. */
  assert_int_equal(metrics_server_start(m, addr, NULL, &s, err, sizeof(err)),
                   0);
  metrics_server_stop(s);

  /* IPv6 loopback, where the machine has it. */
  rc = metrics_server_start(m, "[::1]:0", NULL, &s, err, sizeof(err));
  if(rc == 0) {
    CURL *c = curl_easy_init();
    char url[64];
    long status = 0;

    assert_non_null(c);
    snprintf(url, sizeof(url), "http://[::1]:%u/healthz",
             metrics_server_port(s));
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_NOPROXY, "*");
    curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
    assert_int_equal(curl_easy_perform(c), CURLE_OK);
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    assert_int_equal(status, 200);
    curl_easy_cleanup(c);
    metrics_server_stop(s);
  }
  else {
    assert_int_equal(rc, ERR_CONFIG);
    print_message("[::1] unavailable here: %s\n", err);
  }

  metrics_destroy(m);
  free(r);
}

static int
setup_curl(void **state)
{
  (void)state;
  return curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK ? 0 : -1;
}

static int
teardown_curl(void **state)
{
  (void)state;
  curl_global_cleanup();
  return 0;
}

int
main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_fresh_registry),
    cmocka_unit_test(test_counters_exact),
    cmocka_unit_test(test_status_codes),
    cmocka_unit_test(test_histogram),
    cmocka_unit_test(test_gauges_and_derived),
    cmocka_unit_test(test_render_cap),
    cmocka_unit_test(test_concurrent_updates),
    cmocka_unit_test(test_server_metrics_endpoint),
    cmocka_unit_test(test_server_healthz),
    cmocka_unit_test(test_server_readyz),
    cmocka_unit_test(test_server_addresses),
  };

  return cmocka_run_group_tests(tests, setup_curl, teardown_curl);
}
