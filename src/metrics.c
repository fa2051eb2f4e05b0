/*
 * metrics.c: the metrics registry and the /metrics, /healthz, /readyz
 * server of metrics.h.
 *
 * The registry is a flat block of C11 atomics indexed by enums; names, help
 * texts and labels live in static tables next to it, so an update is one
 * relaxed atomic add and a render walks the tables. Relaxed ordering is
 * enough: every value is independent, and a scrape only needs each value to
 * be one that was really held at some instant.
 *
 * The server is libmicrohttpd with its internal polling thread. We create,
 * bind and listen the socket ourselves and hand it over with
 * MHD_OPTION_LISTEN_SOCKET, because only then is the errno of a failed
 * bind (address in use, not a local address) ours to report.
 */
#include "metrics.h"

#include <errno.h>
#include <inttypes.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <microhttpd.h>

#include "err.h"
#include "log.h"

#ifndef SS_VERSION
#define SS_VERSION "unknown"
#endif

#define PREFIX "spectra_sentinel_"

/* A rendered exposition is a few KiB; the cap only guards against a bug. */
#define METRICS_RENDER_MAX (1024u * 1024u)

/* HTTP server limits: a scraper and a probe or two, never a crowd. */
#define SERVER_CONNECTION_LIMIT 32u
#define SERVER_CONNECTION_TIMEOUT_S 10u
#define SERVER_LISTEN_BACKLOG 16

/* The statuses with their own series; then "other" and "error". */
static const long status_codes[] = {
  204, 400, 401, 403, 404, 408, 413, 429, 500, 502, 503, 504
};
#define STATUS_FIXED (sizeof(status_codes) / sizeof(status_codes[0]))
#define STATUS_OTHER STATUS_FIXED
#define STATUS_ERROR (STATUS_FIXED + 1)
#define STATUS_SLOTS (STATUS_FIXED + 2)

static const uint64_t size_bounds[] = METRICS_SIZE_BUCKETS;
#define SIZE_SLOTS (METRICS_SIZE_BUCKET_COUNT + 1)  /* + the +Inf bucket */

/* The last outcome of the polls and of the sends, for readiness. */
enum outcome { OUTCOME_NONE = 0, OUTCOME_OK = 1, OUTCOME_FAILED = 2 };

struct metrics {
  _Atomic uint64_t counters[METRIC_COUNTER_COUNT];
  _Atomic int64_t gauges[METRIC_GAUGE_COUNT];
  _Atomic uint64_t status[STATUS_SLOTS];
  /* Per-bucket (not cumulative) counts: observe touches one slot, and the
     render sums them, so the +Inf bucket and _count always agree. */
  _Atomic uint64_t size_buckets[SIZE_SLOTS];
  _Atomic uint64_t size_sum;
  _Atomic int64_t heartbeat_mono_ms;
  _Atomic int config_loaded;
  /* Monotonic times drive readiness; wall-clock times are exposed. */
  _Atomic int64_t poll_ok_mono_ms;
  _Atomic int64_t poll_ok_real_ms;
  _Atomic int poll_last;            /* enum outcome */
  _Atomic int64_t send_ok_mono_ms;
  _Atomic int64_t send_ok_real_ms;
  _Atomic int send_last;            /* enum outcome */
  int64_t start_real_ms;            /* written once, before any thread */
};

struct metrics_server {
  struct metrics *m;                /* borrowed */
  struct MHD_Daemon *daemon;
  struct metrics_health health;
  unsigned port;
};

/*
 * One exposed series of a counter or gauge id. Ids of one family are
 * consecutive in their enum and repeat name and help; the family's # HELP
 * and # TYPE lines are written before its first series.
 */
struct series_desc {
  const char *name;
  const char *help;
  const char *labels;               /* "reason=\"suffix\"", or NULL */
};

static const struct series_desc counter_desc[METRIC_COUNTER_COUNT] = {
  [METRIC_BLOBS_LISTED] = { PREFIX "blobs_listed_total",
    "Blobs returned by List Blobs, before any filter.", NULL },
  [METRIC_BLOBS_PROCESSED] = { PREFIX "blobs_processed_total",
    "Blobs done: every record acknowledged or dead-lettered.", NULL },
  [METRIC_BLOBS_FAILED] = { PREFIX "blobs_failed_total",
    "Blobs done as bad input (not JSON, no tc_report, too large).", NULL },
  [METRIC_BLOBS_SKIPPED_DONE] = { PREFIX "blobs_skipped_total",
    "Listed blobs not downloaded, by reason.", "reason=\"already_done\"" },
  [METRIC_BLOBS_SKIPPED_BEFORE_START] = { PREFIX "blobs_skipped_total",
    "Listed blobs not downloaded, by reason.", "reason=\"before_start\"" },
  [METRIC_BLOBS_SKIPPED_SUFFIX] = { PREFIX "blobs_skipped_total",
    "Listed blobs not downloaded, by reason.", "reason=\"suffix\"" },
  [METRIC_BLOBS_SKIPPED_DIRECTORY] = { PREFIX "blobs_skipped_total",
    "Listed blobs not downloaded, by reason.", "reason=\"directory\"" },
  [METRIC_RECORDS_SENT] = { PREFIX "records_sent_total",
    "Records acknowledged by the Logs Ingestion API.", NULL },
  [METRIC_RECORDS_SHRUNK] = { PREFIX "records_shrunk_total",
    "Records with at least one field shrunk to max_field_bytes.", NULL },
  [METRIC_FIELDS_SHRUNK] = { PREFIX "fields_shrunk_total",
    "Fields shrunk to max_field_bytes.", NULL },
  [METRIC_RECORDS_DEAD_LETTERED_REJECTED] = {
    PREFIX "records_dead_lettered_total",
    "Records written to the dead-letter directory, by reason.",
    "reason=\"rejected\"" },
  [METRIC_RECORDS_DEAD_LETTERED_TOO_LARGE] = {
    PREFIX "records_dead_lettered_total",
    "Records written to the dead-letter directory, by reason.",
    "reason=\"too_large\"" },
  [METRIC_RECORDS_TIME_CLAMPED] = { PREFIX "records_time_clamped_total",
    "Records whose TimeGenerated was set to the send time.", NULL },
  [METRIC_INGESTION_RETRIES] = { PREFIX "ingestion_retries_total",
    "Logs Ingestion requests sent again after a retryable failure.", NULL },
  [METRIC_INGESTION_BYTES_WIRE] = { PREFIX "ingestion_sent_bytes_total",
    "Logs Ingestion request body bytes sent (compressed when enabled).",
    NULL },
  [METRIC_INGESTION_BYTES_UNCOMPRESSED] = {
    PREFIX "ingestion_sent_uncompressed_bytes_total",
    "Logs Ingestion request body bytes before compression.", NULL },
};

static const struct series_desc gauge_desc[METRIC_GAUGE_COUNT] = {
  [METRIC_BACKLOG_BLOBS] = { PREFIX "backlog_blobs",
    "Blobs listed and not yet done.", NULL },
  [METRIC_CHECKPOINT_WATERMARK] = {
    PREFIX "checkpoint_watermark_timestamp_seconds",
    "Last-Modified watermark of the checkpoint, Unix seconds.", NULL },
  [METRIC_TOKEN_EXPIRY_INGESTION] = {
    PREFIX "token_expiry_timestamp_seconds",
    "Expiry of the cached Entra ID access token, Unix seconds.",
    "audience=\"ingestion\"" },
  [METRIC_TOKEN_EXPIRY_STORAGE] = {
    PREFIX "token_expiry_timestamp_seconds",
    "Expiry of the cached Entra ID access token, Unix seconds.",
    "audience=\"storage\"" },
};

static int64_t
clock_ms(clockid_t id)
{
  struct timespec ts;

  clock_gettime(id, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int
metrics_create(struct metrics **out)
{
  struct metrics *m;

  *out = NULL;
  m = calloc(1, sizeof(*m));
  if(!m)
    return ERR_NOMEM;
  /* calloc's zero bytes are a valid zero for every lock-free atomic of
     these types; the explicit stores below are the ones that matter. */
  atomic_init(&m->heartbeat_mono_ms, clock_ms(CLOCK_MONOTONIC));
  atomic_init(&m->poll_last, OUTCOME_NONE);
  atomic_init(&m->send_last, OUTCOME_NONE);
  m->start_real_ms = clock_ms(CLOCK_REALTIME);
  *out = m;
  return 0;
}

void
metrics_destroy(struct metrics *m)
{
  free(m);
}

void
metrics_inc(struct metrics *m, enum metric_counter id, uint64_t n)
{
  if(!m || (unsigned)id >= METRIC_COUNTER_COUNT)
    return;
  atomic_fetch_add_explicit(&m->counters[id], n, memory_order_relaxed);
}

void
metrics_set(struct metrics *m, enum metric_gauge id, int64_t value)
{
  if(!m || (unsigned)id >= METRIC_GAUGE_COUNT)
    return;
  atomic_store_explicit(&m->gauges[id], value, memory_order_relaxed);
}

void
metrics_count_status(struct metrics *m, long code)
{
  size_t slot = STATUS_OTHER;

  if(!m)
    return;
  if(code <= 0)
    slot = STATUS_ERROR;
  for(size_t i = 0; i < STATUS_FIXED; i++) {
    if(status_codes[i] == code) {
      slot = i;
      break;
    }
  }
  atomic_fetch_add_explicit(&m->status[slot], 1, memory_order_relaxed);
}

void
metrics_observe_request_size(struct metrics *m, uint64_t bytes)
{
  size_t slot = METRICS_SIZE_BUCKET_COUNT;

  if(!m)
    return;
  for(size_t i = 0; i < METRICS_SIZE_BUCKET_COUNT; i++) {
    if(bytes <= size_bounds[i]) {
      slot = i;
      break;
    }
  }
  atomic_fetch_add_explicit(&m->size_buckets[slot], 1, memory_order_relaxed);
  atomic_fetch_add_explicit(&m->size_sum, bytes, memory_order_relaxed);
}

void
metrics_heartbeat(struct metrics *m)
{
  if(!m)
    return;
  atomic_store_explicit(&m->heartbeat_mono_ms, clock_ms(CLOCK_MONOTONIC),
                        memory_order_relaxed);
}

void
metrics_set_config_loaded(struct metrics *m, int loaded)
{
  if(!m)
    return;
  atomic_store_explicit(&m->config_loaded, loaded ? 1 : 0,
                        memory_order_relaxed);
}

void
metrics_poll_done(struct metrics *m, int ok)
{
  if(!m)
    return;
  if(ok) {
    atomic_store_explicit(&m->poll_ok_mono_ms, clock_ms(CLOCK_MONOTONIC),
                          memory_order_relaxed);
    atomic_store_explicit(&m->poll_ok_real_ms, clock_ms(CLOCK_REALTIME),
                          memory_order_relaxed);
  }
  atomic_store_explicit(&m->poll_last, ok ? OUTCOME_OK : OUTCOME_FAILED,
                        memory_order_relaxed);
}

void
metrics_send_done(struct metrics *m, int ok)
{
  if(!m)
    return;
  if(ok) {
    atomic_store_explicit(&m->send_ok_mono_ms, clock_ms(CLOCK_MONOTONIC),
                          memory_order_relaxed);
    atomic_store_explicit(&m->send_ok_real_ms, clock_ms(CLOCK_REALTIME),
                          memory_order_relaxed);
  }
  atomic_store_explicit(&m->send_last, ok ? OUTCOME_OK : OUTCOME_FAILED,
                        memory_order_relaxed);
}

/* Writes the # HELP and # TYPE lines of a family. */
static int
put_header(struct buf *out, const char *name, const char *help,
           const char *type)
{
  return buf_printf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name,
                    type);
}

/* Writes "name{labels} " or "name ", the part of a sample before its value. */
static int
put_series(struct buf *out, const char *name, const char *labels)
{
  if(labels)
    return buf_printf(out, "%s{%s} ", name, labels);
  return buf_printf(out, "%s ", name);
}

/* Writes a millisecond time as seconds with three decimals. */
static int
put_seconds_ms(struct buf *out, int64_t ms)
{
  return buf_printf(out, "%" PRId64 ".%03d\n", ms / 1000, (int)(ms % 1000));
}

static int
render_counters(const struct metrics *m, struct buf *out)
{
  const char *family = NULL;
  int rc;

  for(size_t i = 0; i < METRIC_COUNTER_COUNT; i++) {
    const struct series_desc *d = &counter_desc[i];
    uint64_t v = atomic_load_explicit(&m->counters[i], memory_order_relaxed);

    if(!family || strcmp(family, d->name)) {
      rc = put_header(out, d->name, d->help, "counter");
      if(rc)
        return rc;
      family = d->name;
    }
    rc = put_series(out, d->name, d->labels);
    if(!rc)
      rc = buf_printf(out, "%" PRIu64 "\n", v);
    if(rc)
      return rc;
  }
  return 0;
}

static int
render_status(const struct metrics *m, struct buf *out)
{
  const char *name = PREFIX "ingestion_requests_total";
  int rc;

  rc = put_header(out, name,
                  "Logs Ingestion requests by HTTP status; code=\"error\" "
                  "when no response arrived.", "counter");
  for(size_t i = 0; !rc && i < STATUS_SLOTS; i++) {
    uint64_t v = atomic_load_explicit(&m->status[i], memory_order_relaxed);

    if(i < STATUS_FIXED)
      rc = buf_printf(out, "%s{code=\"%ld\"} %" PRIu64 "\n", name,
                      status_codes[i], v);
    else
      rc = buf_printf(out, "%s{code=\"%s\"} %" PRIu64 "\n", name,
                      i == STATUS_OTHER ? "other" : "error", v);
  }
  return rc;
}

static int
render_histogram(const struct metrics *m, struct buf *out)
{
  const char *name = PREFIX "ingestion_request_size_bytes";
  uint64_t cumulative = 0, sum;
  int rc;

  rc = put_header(out, name,
                  "Uncompressed body size of Logs Ingestion requests.",
                  "histogram");
  for(size_t i = 0; !rc && i < SIZE_SLOTS; i++) {
    cumulative += atomic_load_explicit(&m->size_buckets[i],
                                       memory_order_relaxed);
    if(i < METRICS_SIZE_BUCKET_COUNT)
      rc = buf_printf(out, "%s_bucket{le=\"%" PRIu64 "\"} %" PRIu64 "\n",
                      name, size_bounds[i], cumulative);
    else
      rc = buf_printf(out, "%s_bucket{le=\"+Inf\"} %" PRIu64 "\n", name,
                      cumulative);
  }
  if(rc)
    return rc;
  sum = atomic_load_explicit(&m->size_sum, memory_order_relaxed);
  return buf_printf(out, "%s_sum %" PRIu64 "\n%s_count %" PRIu64 "\n", name,
                    sum, name, cumulative);
}

/*
 * The gauges of the enum. A token-expiry series that was never set is left
 * out, and so is a family with no series left.
 */
static int
render_gauges(const struct metrics *m, struct buf *out)
{
  const char *family = NULL;
  int rc;

  for(size_t i = 0; i < METRIC_GAUGE_COUNT; i++) {
    const struct series_desc *d = &gauge_desc[i];
    int64_t v = atomic_load_explicit(&m->gauges[i], memory_order_relaxed);

    if(v == 0 && (i == METRIC_TOKEN_EXPIRY_INGESTION ||
                  i == METRIC_TOKEN_EXPIRY_STORAGE))
      continue;
    if(!family || strcmp(family, d->name)) {
      rc = put_header(out, d->name, d->help, "gauge");
      if(rc)
        return rc;
      family = d->name;
    }
    rc = put_series(out, d->name, d->labels);
    if(!rc)
      rc = buf_printf(out, "%" PRId64 "\n", v);
    if(rc)
      return rc;
  }
  return 0;
}

static int
render_derived(const struct metrics *m, struct buf *out)
{
  int64_t wm, backlog, lag = 0, poll_ms, send_ms;
  int rc;

  wm = atomic_load_explicit(&m->gauges[METRIC_CHECKPOINT_WATERMARK],
                            memory_order_relaxed);
  backlog = atomic_load_explicit(&m->gauges[METRIC_BACKLOG_BLOBS],
                                 memory_order_relaxed);
  if(wm > 0 && backlog > 0) {
    lag = clock_ms(CLOCK_REALTIME) / 1000 - wm;
    if(lag < 0)
      lag = 0;
  }
  rc = put_header(out, PREFIX "checkpoint_lag_seconds",
                  "Age of the oldest unfinished blob (now - watermark while "
                  "the backlog is not empty, else 0).", "gauge");
  if(!rc)
    rc = buf_printf(out, PREFIX "checkpoint_lag_seconds %" PRId64 "\n", lag);
  if(rc)
    return rc;

  poll_ms = atomic_load_explicit(&m->poll_ok_real_ms, memory_order_relaxed);
  send_ms = atomic_load_explicit(&m->send_ok_real_ms, memory_order_relaxed);
  rc = put_header(out, PREFIX "last_successful_poll_timestamp_seconds",
                  "Time of the last complete List Blobs round, Unix seconds "
                  "(0: none yet).", "gauge");
  if(!rc)
    rc = put_series(out, PREFIX "last_successful_poll_timestamp_seconds",
                    NULL);
  if(!rc)
    rc = put_seconds_ms(out, poll_ms);
  if(!rc)
    rc = put_header(out, PREFIX "last_successful_send_timestamp_seconds",
                    "Time of the last Logs Ingestion request answered 204, "
                    "Unix seconds (0: none yet).", "gauge");
  if(!rc)
    rc = put_series(out, PREFIX "last_successful_send_timestamp_seconds",
                    NULL);
  if(!rc)
    rc = put_seconds_ms(out, send_ms);
  if(!rc)
    rc = put_header(out, PREFIX "build_info",
                    "Build information; the value is always 1.", "gauge");
  if(!rc)
    rc = buf_printf(out, PREFIX "build_info{version=\"%s\"} 1\n", SS_VERSION);
  if(!rc)
    rc = put_header(out, "process_start_time_seconds",
                    "Start time of the process, Unix seconds.", "gauge");
  if(!rc)
    rc = put_series(out, "process_start_time_seconds", NULL);
  if(!rc)
    rc = put_seconds_ms(out, m->start_real_ms);
  return rc;
}

int
metrics_render(const struct metrics *m, struct buf *out)
{
  int rc;

  if(!m || !out)
    return ERR_INVAL;
  rc = render_counters(m, out);
  if(!rc)
    rc = render_status(m, out);
  if(!rc)
    rc = render_histogram(m, out);
  if(!rc)
    rc = render_gauges(m, out);
  if(!rc)
    rc = render_derived(m, out);
  return rc;
}

/* ---- health and readiness ---- */

/*
 * Liveness: the loop thread's last heartbeat is recent. Writes the body
 * (one line) to text and returns 1 when healthy.
 */
static int
check_health(const struct metrics_server *s, char *text, size_t len)
{
  int64_t age = clock_ms(CLOCK_MONOTONIC) -
    atomic_load_explicit(&s->m->heartbeat_mono_ms, memory_order_relaxed);

  if(age > (int64_t)s->health.liveness_timeout_ms) {
    snprintf(text, len, "unhealthy: no heartbeat from the event loop for "
             "%" PRId64 " ms (limit %" PRIu32 " ms)\n", age,
             s->health.liveness_timeout_ms);
    return 0;
  }
  snprintf(text, len, "ok\n");
  return 1;
}

/*
 * Readiness: the configuration is loaded; a List Blobs round succeeded
 * within the window; and the ingestion side is not failing: no request yet,
 * or the last one succeeded, or one succeeded within the window (a burst of
 * 429s or one failure does not flip readiness at once). An idle pipeline
 * whose last send was long ago and succeeded stays ready.
 */
static int
check_ready(const struct metrics_server *s, char *text, size_t len)
{
  const struct metrics *m = s->m;
  int64_t now = clock_ms(CLOCK_MONOTONIC), window = s->health.ready_window_ms;
  int64_t poll_ok, send_ok;
  int send_last;

  if(!atomic_load_explicit(&m->config_loaded, memory_order_relaxed)) {
    snprintf(text, len, "not ready: configuration not loaded\n");
    return 0;
  }
  poll_ok = atomic_load_explicit(&m->poll_ok_mono_ms, memory_order_relaxed);
  if(!poll_ok) {
    snprintf(text, len, "not ready: no successful poll yet%s\n",
             atomic_load_explicit(&m->poll_last, memory_order_relaxed) ==
             OUTCOME_FAILED ? " (listing failed)" : "");
    return 0;
  }
  if(now - poll_ok > window) {
    snprintf(text, len, "not ready: last successful poll %" PRId64
             " ms ago (window %" PRId64 " ms)\n", now - poll_ok, window);
    return 0;
  }
  send_last = atomic_load_explicit(&m->send_last, memory_order_relaxed);
  send_ok = atomic_load_explicit(&m->send_ok_mono_ms, memory_order_relaxed);
  if(send_last == OUTCOME_FAILED) {
    if(!send_ok) {
      snprintf(text, len, "not ready: ingestion failing, no successful "
               "send yet\n");
      return 0;
    }
    if(now - send_ok > window) {
      snprintf(text, len, "not ready: ingestion failing, last successful "
               "send %" PRId64 " ms ago (window %" PRId64 " ms)\n",
               now - send_ok, window);
      return 0;
    }
  }
  snprintf(text, len, "ready\n");
  return 1;
}

/* ---- HTTP ---- */

/*
 * Queues a response built from len bytes at body with status and content
 * type. When owned is set the body was malloc'ed and MHD frees it (also on
 * failure); otherwise it is copied.
 */
static enum MHD_Result
respond(struct MHD_Connection *c, unsigned status, const char *type,
        char *body, size_t len, int owned)
{
  struct MHD_Response *r;
  enum MHD_Result ret;

  if(owned)
    r = MHD_create_response_from_buffer_with_free_callback(len, body, free);
  else
    r = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_COPY);
  if(!r) {
    if(owned)
      free(body);
    return MHD_NO;
  }
  if(MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type) != MHD_YES
     || MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store")
     != MHD_YES
     || (status == MHD_HTTP_METHOD_NOT_ALLOWED &&
         MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, "GET, HEAD")
         != MHD_YES)) {
    MHD_destroy_response(r);
    return MHD_NO;
  }
  ret = MHD_queue_response(c, status, r);
  MHD_destroy_response(r);
  return ret;
}

static enum MHD_Result
respond_text(struct MHD_Connection *c, unsigned status, const char *text)
{
  return respond(c, status, "text/plain; charset=utf-8", (char *)text,
                 strlen(text), 0);
}

static enum MHD_Result
serve_metrics(const struct metrics_server *s, struct MHD_Connection *c)
{
  struct buf b;
  char *body;
  size_t len;

  buf_init(&b, METRICS_RENDER_MAX);
  if(metrics_render(s->m, &b) || !b.data) {
    buf_free(&b);
    return respond_text(c, MHD_HTTP_INTERNAL_SERVER_ERROR,
                        "metrics could not be rendered\n");
  }
  body = buf_detach(&b, &len);
  return respond(c, MHD_HTTP_OK, "text/plain; version=0.0.4; charset=utf-8",
                 body, len, 1);
}

/*
 * The access handler: called by the HTTP thread once the request headers
 * are in. Every response is queued on this first call, so request bodies
 * (which no endpoint accepts) are never buffered; MHD then closes a
 * connection whose body was not read.
 */
static enum MHD_Result
on_request(void *cls, struct MHD_Connection *c, const char *url,
           const char *method, const char *version, const char *upload_data,
           size_t *upload_data_size, void **req_cls)
{
  const struct metrics_server *s = cls;
  char text[256];
  int ok;

  (void)version;
  (void)upload_data;
  (void)upload_data_size;
  (void)req_cls;
  if(strcmp(url, "/metrics") && strcmp(url, "/healthz") &&
     strcmp(url, "/readyz"))
    return respond_text(c, MHD_HTTP_NOT_FOUND, "not found\n");
  if(strcmp(method, MHD_HTTP_METHOD_GET) &&
     strcmp(method, MHD_HTTP_METHOD_HEAD))
    return respond_text(c, MHD_HTTP_METHOD_NOT_ALLOWED,
                        "method not allowed\n");
  if(!strcmp(url, "/metrics"))
    return serve_metrics(s, c);
  if(!strcmp(url, "/healthz"))
    ok = check_health(s, text, sizeof(text));
  else
    ok = check_ready(s, text, sizeof(text));
  return respond_text(c, ok ? MHD_HTTP_OK : MHD_HTTP_SERVICE_UNAVAILABLE,
                      text);
}

/*
 * Routes libmicrohttpd's own diagnostics (a connection it had to drop, a
 * resource limit) to the daemon's log, without their trailing newline.
 */
static void
on_mhd_log(void *cls, const char *fmt, va_list ap)
{
  char msg[512];
  size_t len;

  (void)cls;
  vsnprintf(msg, sizeof(msg), fmt, ap);
  len = strlen(msg);
  while(len && (msg[len - 1] == '\n' || msg[len - 1] == ' '))
    msg[--len] = '\0';
  log_warn("metrics", "http server: %s", msg);
}

/*
 * Splits addr into host (brackets removed) and port. host has hostlen
 * bytes. Returns 0 or ERR_CONFIG with the reason in err.
 */
static int
split_listen(const char *addr, char *host, size_t hostlen, char *port,
             size_t portlen, char *err, size_t errlen)
{
  const char *h, *p, *colon;
  size_t hl;

  if(addr[0] == '[') {
    const char *close = strchr(addr, ']');

    if(!close || close[1] != ':') {
      snprintf(err, errlen, "metrics.listen \"%s\": expected [IPV6]:PORT",
               addr);
      return ERR_CONFIG;
    }
    h = addr + 1;
    hl = (size_t)(close - h);
    p = close + 2;
  }
  else {
    colon = strrchr(addr, ':');
    if(!colon) {
      snprintf(err, errlen, "metrics.listen \"%s\": expected HOST:PORT",
               addr);
      return ERR_CONFIG;
    }
    h = addr;
    hl = (size_t)(colon - h);
    p = colon + 1;
    if(memchr(h, ':', hl)) {
      snprintf(err, errlen, "metrics.listen \"%s\": an IPv6 address needs "
               "brackets, e.g. [::1]:9464", addr);
      return ERR_CONFIG;
    }
  }
  if(hl == 0 || hl >= hostlen) {
    snprintf(err, errlen, "metrics.listen \"%s\": %s host", addr,
             hl ? "overlong" : "missing");
    return ERR_CONFIG;
  }
  if(!*p || strlen(p) > 5 || strspn(p, "0123456789") != strlen(p) ||
     strtoul(p, NULL, 10) > 65535) {
    snprintf(err, errlen, "metrics.listen \"%s\": the port must be a number "
             "from 0 to 65535", addr);
    return ERR_CONFIG;
  }
  memcpy(host, h, hl);
  host[hl] = '\0';
  snprintf(port, portlen, "%s", p);
  return 0;
}

/*
 * Resolves addr and returns in *fd a socket bound to it and listening.
 * Returns 0, or ERR_CONFIG with the reason in err.
 */
static int
open_listener(const char *addr, int *fd, unsigned *port, int *ipv6,
              char *err, size_t errlen)
{
  struct addrinfo hints, *res = NULL;
  struct sockaddr_storage ss;
  socklen_t sl = sizeof(ss);
  char host[256], portstr[8];
  int s = -1, one = 1, gai, rc;

  *fd = -1;
  rc = split_listen(addr, host, sizeof(host), portstr, sizeof(portstr),
                    err, errlen);
  if(rc)
    goto out;
  memset(&hints, 0, sizeof(hints));
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  gai = getaddrinfo(host, portstr, &hints, &res);
  if(gai) {
    snprintf(err, errlen, "metrics.listen \"%s\": cannot resolve \"%s\": %s",
             addr, host, gai_strerror(gai));
    rc = ERR_CONFIG;
    goto out;
  }
  s = socket(res->ai_family, res->ai_socktype | SOCK_CLOEXEC,
             res->ai_protocol);
  if(s < 0) {
    snprintf(err, errlen, "metrics.listen \"%s\": socket: %s", addr,
             strerror(errno));
    rc = ERR_CONFIG;
    goto out;
  }
  /* A restarted daemon must be able to bind while old connections of its
     predecessor linger in TIME_WAIT. */
  (void)setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  if(bind(s, res->ai_addr, res->ai_addrlen) || listen(s,
                                                      SERVER_LISTEN_BACKLOG)) {
    snprintf(err, errlen, "metrics.listen \"%s\": cannot listen: %s", addr,
             strerror(errno));
    rc = ERR_CONFIG;
    goto out;
  }
  if(getsockname(s, (struct sockaddr *)&ss, &sl)) {
    snprintf(err, errlen, "metrics.listen \"%s\": getsockname: %s", addr,
             strerror(errno));
    rc = ERR_CONFIG;
    goto out;
  }
  if(ss.ss_family == AF_INET6) {
    *port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    *ipv6 = 1;
  }
  else {
    *port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
    *ipv6 = 0;
  }
  *fd = s;
  s = -1;
out:
  if(s >= 0)
    close(s);
  if(res)
    freeaddrinfo(res);
  return rc;
}

int
metrics_server_start(struct metrics *m, const char *addr,
                     const struct metrics_health *h,
                     struct metrics_server **out, char *err, size_t errlen)
{
  struct metrics_server *s = NULL;
  char dummy[1];
  unsigned flags;
  int fd = -1, ipv6 = 0, rc;

  if(!err) {
    err = dummy;
    errlen = sizeof(dummy);
  }
  if(errlen)
    err[0] = '\0';
  if(!out || !m)
    return ERR_INVAL;
  *out = NULL;
  if(!addr || !*addr)
    return 0;
  s = calloc(1, sizeof(*s));
  if(!s) {
    rc = ERR_NOMEM;
    goto out;
  }
  s->m = m;
  if(h)
    s->health = *h;
  if(!s->health.liveness_timeout_ms)
    s->health.liveness_timeout_ms = METRICS_DEFAULT_LIVENESS_TIMEOUT_MS;
  if(!s->health.ready_window_ms)
    s->health.ready_window_ms = METRICS_DEFAULT_READY_WINDOW_MS;
  rc = open_listener(addr, &fd, &s->port, &ipv6, err, errlen);
  if(rc)
    goto out;
  flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_AUTO | MHD_USE_ERROR_LOG;
  if(ipv6)
    flags |= MHD_USE_IPv6;
  /* MHD owns fd from here on: it closes it on stop and on almost every
     failure path of its own, so we never close it after this call (a rare
     failure inside MHD may leak one descriptor; a double close could hit
     another thread's file). */
  s->daemon = MHD_start_daemon(flags, 0, NULL, NULL, on_request, s,
                               MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, NULL,
                               MHD_OPTION_LISTEN_SOCKET, (MHD_socket)fd,
                               MHD_OPTION_CONNECTION_LIMIT,
                               SERVER_CONNECTION_LIMIT,
                               MHD_OPTION_CONNECTION_TIMEOUT,
                               SERVER_CONNECTION_TIMEOUT_S,
                               MHD_OPTION_END);
  fd = -1;
  if(!s->daemon) {
    snprintf(err, errlen, "metrics.listen \"%s\": the HTTP server could not "
             "be started", addr);
    rc = ERR_IO;
    goto out;
  }
  *out = s;
  s = NULL;
out:
  if(fd >= 0)
    close(fd);
  free(s);
  return rc;
}

unsigned
metrics_server_port(const struct metrics_server *s)
{
  return s ? s->port : 0;
}

void
metrics_server_stop(struct metrics_server *s)
{
  if(!s)
    return;
  if(s->daemon)
    MHD_stop_daemon(s->daemon);
  free(s);
}
