/*
 * metrics.h: Prometheus metrics, liveness and readiness of the daemon.
 *
 * One registry (struct metrics) holds a fixed set of counters, gauges and
 * one histogram, all pre-registered: the daemon's code names a metric by an
 * enum value and never allocates or looks anything up on the hot path.
 * Every value is a C11 atomic, so the loop thread and the worker threads
 * update them without locks while the HTTP thread reads them.
 *
 * The HTTP side (metrics_server_*) is libmicrohttpd running its own
 * internal polling thread: it never touches the libuv loop, and a loop that
 * is stuck shows as a failing /healthz instead of a silent exporter. It
 * serves, for GET and HEAD:
 *   /metrics  Prometheus text exposition format 0.0.4
 *   /healthz  200 "ok" while the loop thread calls metrics_heartbeat();
 *             503 when the last heartbeat is older than the liveness timeout
 *   /readyz   200 "ready" when the configuration is loaded, a poll succeeded
 *             recently and the ingestion API is not failing; else 503 with
 *             a one-line reason
 * and 404 for any other path, 405 for any other method.
 *
 * Metric names, labels and help texts are fixed strings of this module, so
 * nothing the daemon learns at run time (blob names, URLs, secrets) can ever
 * appear in the exposition.
 */
#ifndef SS_METRICS_H
#define SS_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"

struct metrics;
struct metrics_server;

/*
 * The counters. Several ids may share one metric family and differ by a
 * label (the blobs_skipped reasons, the dead-letter reasons); the comment
 * gives the exposed series.
 */
enum metric_counter {
  /* spectra_sentinel_blobs_listed_total: blobs returned by List Blobs
     (every page, before any filter). */
  METRIC_BLOBS_LISTED = 0,
  /* spectra_sentinel_blobs_processed_total: blobs done because every
     record was acknowledged or dead-lettered. */
  METRIC_BLOBS_PROCESSED,
  /* spectra_sentinel_blobs_failed_total: blobs done as bad input (not
     JSON, no tc_report, over max_blob_bytes). */
  METRIC_BLOBS_FAILED,
  /* spectra_sentinel_blobs_skipped_total{reason="..."}: listed blobs not
     downloaded. */
  METRIC_BLOBS_SKIPPED_DONE,          /* reason="already_done" (checkpoint
                                         or watermark) */
  METRIC_BLOBS_SKIPPED_BEFORE_START,  /* reason="before_start" (start_from) */
  METRIC_BLOBS_SKIPPED_SUFFIX,        /* reason="suffix" (source.suffixes) */
  METRIC_BLOBS_SKIPPED_DIRECTORY,     /* reason="directory" (ADLS directory
                                         marker, hdi_isfolder=true) */
  /* spectra_sentinel_records_sent_total: records acknowledged with 204. */
  METRIC_RECORDS_SENT,
  /* spectra_sentinel_records_shrunk_total: records with at least one field
     shrunk to max_field_bytes. */
  METRIC_RECORDS_SHRUNK,
  /* spectra_sentinel_fields_shrunk_total: fields shrunk (a record may have
     several). */
  METRIC_FIELDS_SHRUNK,
  /* spectra_sentinel_records_dead_lettered_total{reason="..."}. */
  METRIC_RECORDS_DEAD_LETTERED_REJECTED,  /* reason="rejected": a 4xx of
                                             the API isolated by bisection */
  METRIC_RECORDS_DEAD_LETTERED_TOO_LARGE, /* reason="too_large": over
                                             max_request_bytes after
                                             shrinking */
  /* spectra_sentinel_records_time_clamped_total: records whose
     TimeGenerated was set to the send time (outside -47 h .. +23 h). */
  METRIC_RECORDS_TIME_CLAMPED,
  /* spectra_sentinel_ingestion_retries_total: ingestion requests sent again
     after a retryable failure (429, 5xx, 401, network). */
  METRIC_INGESTION_RETRIES,
  /* spectra_sentinel_ingestion_sent_bytes_total: request body bytes on the
     wire (gzip-compressed when compression is on). */
  METRIC_INGESTION_BYTES_WIRE,
  /* spectra_sentinel_ingestion_sent_uncompressed_bytes_total: the same
     bodies before compression. */
  METRIC_INGESTION_BYTES_UNCOMPRESSED,
  METRIC_COUNTER_COUNT
};

/* The gauges the daemon sets (values are integers). */
enum metric_gauge {
  /* spectra_sentinel_backlog_blobs: blobs listed and not yet done. */
  METRIC_BACKLOG_BLOBS = 0,
  /* spectra_sentinel_checkpoint_watermark_timestamp_seconds: the
     checkpoint's Last-Modified watermark W, Unix seconds (0: none yet).
     spectra_sentinel_checkpoint_lag_seconds is derived from it, see
     metrics_render(). */
  METRIC_CHECKPOINT_WATERMARK,
  /* spectra_sentinel_token_expiry_timestamp_seconds{audience="..."}: Unix
     seconds at which the cached Entra ID token expires. A series is only
     exposed once set (non-zero): with Shared Key or SAS storage auth there
     is no storage token, and a 0 would look like an expired one. */
  METRIC_TOKEN_EXPIRY_INGESTION,      /* audience="ingestion" */
  METRIC_TOKEN_EXPIRY_STORAGE,        /* audience="storage" */
  METRIC_GAUGE_COUNT
};

/*
 * The upper bounds (bytes, le) of the request-size histogram
 * spectra_sentinel_ingestion_request_size_bytes, plus +Inf. They bracket the
 * default max_request_bytes (1,000,000) so that the last finite bucket
 * holds every request of a default configuration.
 */
#define METRICS_SIZE_BUCKETS \
  { 16384u, 65536u, 131072u, 262144u, 524288u, 1048576u }
#define METRICS_SIZE_BUCKET_COUNT 6

/* Liveness and readiness parameters of the server; 0 picks the default. */
#define METRICS_DEFAULT_LIVENESS_TIMEOUT_MS 30000u
#define METRICS_DEFAULT_READY_WINDOW_MS 300000u

struct metrics_health {
  uint32_t liveness_timeout_ms;  /* /healthz fails when the last heartbeat
                                    is older than this */
  uint32_t ready_window_ms;      /* /readyz fails when the last successful
                                    poll, or (after a failed send) the last
                                    successful send, is older than this;
                                    make it a few poll intervals */
};

/*
 * Creates a registry with every value 0, the process start time taken now
 * and the heartbeat counted as fresh (a daemon that is still starting up is
 * alive for one liveness timeout). Returns 0 and *out (owned by the caller,
 * freed with metrics_destroy) or ERR_NOMEM.
 */
int metrics_create(struct metrics **out);

/*
 * Frees the registry. Stop every server that reads it first. NULL is a
 * no-op.
 */
void metrics_destroy(struct metrics *m);

/*
 * Adds n to a counter. Any thread; lock-free (relaxed atomic). An id out of
 * range is ignored: the increment functions cannot fail, so that call sites
 * on hot paths need no error handling. m is borrowed.
 */
void metrics_inc(struct metrics *m, enum metric_counter id, uint64_t n);

/* Sets a gauge. Any thread; an id out of range is ignored. */
void metrics_set(struct metrics *m, enum metric_gauge id, int64_t value);

/*
 * Counts one Logs Ingestion request by its outcome in
 * spectra_sentinel_ingestion_requests_total{code="..."}: code is the HTTP
 * status, or 0 (or negative) for a request that got no response
 * (connection, TLS or timeout error: code="error"). 204, 400, 401, 403,
 * 404, 408, 413, 429, 500, 502, 503 and 504 have their own series; any other
 * status is code="other". The label set is fixed, so a misbehaving peer
 * cannot grow the exposition.
 */
void metrics_count_status(struct metrics *m, long code);

/*
 * Records the uncompressed body size of one ingestion request in the
 * histogram spectra_sentinel_ingestion_request_size_bytes.
 */
void metrics_observe_request_size(struct metrics *m, uint64_t bytes);

/*
 * Liveness: the loop thread calls this about once a second (from a
 * uv_timer). It reads the monotonic clock, so wall-clock steps never make
 * the daemon look dead or alive.
 */
void metrics_heartbeat(struct metrics *m);

/*
 * Readiness inputs. metrics_set_config_loaded: 1 once a valid
 * configuration is in effect (0 before). metrics_poll_done: one List Blobs
 * round finished, ok 1 when every page was listed, 0 when it failed.
 * metrics_send_done: one ingestion request finished, ok 1 for 204, 0 for a
 * failure that leaves records pending (network error, 401/403/404, 429,
 * 5xx). Successes also set the gauges
 * spectra_sentinel_last_successful_{poll,send}_timestamp_seconds.
 */
void metrics_set_config_loaded(struct metrics *m, int loaded);
void metrics_poll_done(struct metrics *m, int ok);
void metrics_send_done(struct metrics *m, int ok);

/*
 * Appends the whole registry to out in the Prometheus text exposition
 * format 0.0.4: for each family a "# HELP" and a "# TYPE" line, then its
 * series; a histogram as cumulative _bucket{le="..."} series ending with
 * le="+Inf", then _sum and _count. Also rendered:
 *   spectra_sentinel_checkpoint_lag_seconds: now - watermark while the
 *     backlog is non-zero, else 0. (When every listed blob is done the
 *     watermark is the newest blob's Last-Modified, and now - watermark
 *     would measure a quiet container, not a lagging daemon.)
 *   spectra_sentinel_build_info{version="..."} 1
 *   process_start_time_seconds (the standard name that dashboards use for
 *     uptime, hence without the spectra_sentinel_ prefix)
 * Safe to call from any thread while others update the values: each value
 * is read atomically, and a histogram's +Inf bucket always equals its
 * _count. Returns 0, or ERR_TOOBIG / ERR_NOMEM from out (then out holds a
 * partial text the caller discards). m and out are borrowed.
 */
int metrics_render(const struct metrics *m, struct buf *out);

/*
 * Starts the HTTP server on addr (the metrics.listen setting): "HOST:PORT"
 * or "[IPV6]:PORT", HOST an IP address or a name that resolves locally (the
 * first address is used), PORT 0 for any free port. An empty addr ("" or
 * NULL) disables the server: returns 0 with *out NULL. h may be NULL for
 * the defaults; it is copied. m is borrowed and must outlive the server.
 *
 * Returns 0 and *out (owned by the caller, freed with metrics_server_stop);
 * ERR_CONFIG for a malformed or unresolvable address or one that cannot be
 * bound (in use, not local, no permission), with a message naming the
 * address in err (errlen bytes; err may be NULL); ERR_IO when the HTTP
 * thread cannot be started; ERR_NOMEM.
 */
int metrics_server_start(struct metrics *m, const char *addr,
                         const struct metrics_health *h,
                         struct metrics_server **out,
                         char *err, size_t errlen);

/* The port the server is bound to (useful with port 0); 0 for NULL. */
unsigned metrics_server_port(const struct metrics_server *s);

/*
 * Stops the server: closes the listening socket and every connection and
 * joins the HTTP thread, so no callback runs after it returns. NULL is a
 * no-op.
 */
void metrics_server_stop(struct metrics_server *s);

#endif
