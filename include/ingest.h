/*
 * ingest.h: the Azure Monitor Logs Ingestion client (SPEC section 3).
 *
 * The caller hands over request bodies made by the batcher; the client
 * sends them to
 *   POST {endpoint}/dataCollectionRules/{dcr}/streams/{stream}
 *        ?api-version=2023-01-01
 * with a bearer token from cred.h, gzip-compressed, and reports, once per
 * body, which of its records were acknowledged (204) and which were
 * rejected by the API and must be dead-lettered. Nothing else ever happens
 * to a record: throttling, outages and configuration errors never lose
 * data, they only delay it.
 *
 * Status policy, per attempt (each attempt has its own
 * x-ms-client-request-id UUID):
 *   2xx            the attempt's records are acknowledged.
 *   429, 503       wait for retry-after-ms, x-ms-retry-after-ms or
 *                  Retry-After (retry_after.h), else back off; retry
 *                  without limit. Every request waits too (the limits are
 *                  per DCR), not just the throttled one.
 *   408, 5xx, connection, TLS and timeout errors
 *                  back off (exponential, full jitter, base 1 s, cap 60 s)
 *                  and retry without limit.
 *   401            drop the token (cred_invalidate), retry at once with a
 *                  new one; a second 401 in a row backs off.
 *   403, 404       configuration problems (role assignment; DCR id, stream
 *                  or endpoint): logged as errors saying what to check,
 *                  backed off and retried; never dead-lettered.
 *   413            split the attempt's records in halves, send both.
 *   400, other 4xx bisect: the halves are sent separately until the
 *                  records the API refuses are isolated; a single refused
 *                  record is rejected with the status, the error code and
 *                  message of the body {"error":{"code","message"}} (or
 *                  x-ms-error-code) and the attempt's request id.
 * A single record answered 413 is rejected too (the batcher keeps records
 * that cannot fit out of bodies, so this only happens when the service's
 * limit is lower than configured).
 *
 * Before each attempt, on the thread pool, the attempt's records are copied
 * from the body, their TimeGenerated values clamped to that moment by the
 * 47 h / 23 h rule (batcher_batch_clamp_time) and gzip-compressed; the loop
 * thread only moves pointers and talks HTTP. An attempt with the whole body
 * and no time to clamp skips the copy: it compresses, or sends, the body
 * the client holds.
 *
 * Bounds: at most `concurrency` attempts are in progress (token, compress,
 * HTTP) at any time; the rest wait in a queue. At most `max_pending` bodies
 * are held: ingest_submit answers ERR_AGAIN beyond that, and the caller
 * waits for a completion before submitting more. Memory is therefore about
 * max_pending bodies plus concurrency compressed copies.
 *
 * Threading: loop thread only, except for the internal thread-pool work.
 */
#ifndef SS_INGEST_H
#define SS_INGEST_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "batcher.h"
#include "cred.h"
#include "http.h"

#define INGEST_API_VERSION "2023-01-01"
#define INGEST_DEFAULT_CONCURRENCY 4
#define INGEST_DEFAULT_TIMEOUT_MS 60000L
/* The cap on an error document kept from a response. */
#define INGEST_MAX_RESPONSE (64u * 1024u)
/* Error messages kept for dead-lettering are cut to this many bytes. */
#define INGEST_MAX_MESSAGE 1024

enum ingest_compression {
  INGEST_GZIP = 0,   /* the default */
  INGEST_NONE = 1
};

/* Strings are borrowed for the duration of ingest_create (copied). */
struct ingest_opts {
  const char *endpoint;          /* https://<dce>.<region>.ingest.monitor.
                                    azure.com, or a DCR's logsIngestion
                                    endpoint; a trailing "/" is ignored */
  const char *dcr_immutable_id;  /* dcr-... */
  const char *stream;            /* Custom-SpectraDetectLogs_CL */
  enum ingest_compression compression;
  int gzip_level;                /* 0: 6 */
  unsigned concurrency;          /* 0: INGEST_DEFAULT_CONCURRENCY */
  size_t max_pending;            /* 0: 4 * concurrency */
  long timeout_ms;               /* per attempt; 0: 60 s */
  uint64_t backoff_base_ms;      /* 0: 1 s */
  uint64_t backoff_cap_ms;       /* 0: 60 s */
  /* Optional: called on the loop thread once per finished attempt with its
     HTTP status (0 when no answer came: connection, TLS or timeout error)
     and its uncompressed body size, for metrics. observe_ud is borrowed. */
  void (*observe)(void *ud, long status, uint64_t json_bytes);
  void *observe_ud;
};

/* Where a record stands when its body completes. */
enum ingest_state {
  INGEST_PENDING = 0,   /* neither (only after a shutdown, rc ERR_ABORTED) */
  INGEST_ACKED = 1,     /* the API answered 2xx for it */
  INGEST_REJECTED = 2   /* the API refused it: dead-letter it */
};

/* Why a record was rejected. Strings are NUL-terminated, never NULL. */
struct ingest_reject {
  int status;                 /* the HTTP status, e.g. 400 */
  const char *code;           /* error.code, or "" */
  const char *message;        /* error.message (cut), or "HTTP <status>" */
  const char *request_id;     /* the attempt's x-ms-client-request-id */
};

/*
 * The outcome of one submitted body, handed to its completion callback.
 * Everything is borrowed and valid during the callback only.
 */
struct ingest_result {
  int rc;                      /* 0: every record is acked or rejected;
                                  ERR_ABORTED: the client shut down first */
  const struct batcher_body *body;  /* the body as submitted (times not
                                       clamped): records by index, first */
  const uint8_t *state;        /* body->count entries of enum ingest_state */
  const struct ingest_reject *const *reject;  /* body->count entries, set
                                                 for rejected records */
  uint64_t acked;
  uint64_t rejected;
};

typedef void (*ingest_done_cb)(void *ud, const struct ingest_result *res);

/* Counters for metrics. */
struct ingest_stats {
  uint64_t requests;          /* attempts that got an HTTP answer or failed */
  uint64_t acked;             /* records acknowledged */
  uint64_t rejected;          /* records rejected */
  uint64_t throttled;         /* 429 and 503 answers */
  uint64_t retries;           /* attempts re-queued after a failure */
  uint64_t auth_refreshes;    /* 401 answers */
  uint64_t config_errors;     /* 403 and 404 answers */
  uint64_t splits;            /* 413 splits */
  uint64_t bisections;        /* 400/4xx bisection steps */
  uint64_t clamped;           /* TimeGenerated values rewritten */
  uint64_t bytes_sent;        /* request bodies as sent (compressed) */
  uint64_t bytes_json;        /* the same, uncompressed */
  uint64_t bodies_pending;    /* bodies held now */
  uint64_t in_flight;         /* attempts in progress now */
};

struct ingest;

/*
 * Creates a client on loop, sending through http and authenticating with
 * cred (all borrowed; they must outlive the client). Returns 0 and *out
 * (owned by the caller, released with ingest_close), ERR_CONFIG (with a
 * logged reason) for a missing endpoint, DCR id or stream or an endpoint
 * that is not http(s), ERR_NOMEM, ERR_INVAL.
 */
int ingest_create(uv_loop_t *loop, struct http_engine *http, struct cred *cred,
                  const struct ingest_opts *opts, struct ingest **out);

/*
 * Submits a body (borrowed: copied before this returns, so it can be called
 * from the batcher's body callback). cb(ud, result) runs exactly once, from
 * the loop, never from within this call. Returns 0; ERR_AGAIN when
 * max_pending bodies are held (nothing was taken: submit it again after a
 * completion); ERR_ABORTED when the client is closing; ERR_INVAL for an
 * empty body; ERR_NOMEM.
 */
int ingest_submit(struct ingest *ing, const struct batcher_body *body,
                  ingest_done_cb cb, void *ud);

/*
 * As ingest_submit, for a body the caller assembled in a batch
 * (batcher_batch_alloc and _seal): on success the client takes the batch
 * (owned by it from then on, freed when the callback has run) instead of
 * copying it. On any error nothing was taken and batch stays the caller's.
 */
int ingest_submit_batch(struct ingest *ing, struct batcher_batch *batch,
                        ingest_done_cb cb, void *ud);

/* Bodies submitted whose callback has not run yet. */
size_t ingest_pending(const struct ingest *ing);

/* Copies the counters into *out. */
void ingest_get_stats(const struct ingest *ing, struct ingest_stats *out);

/*
 * Shuts the client down: stops starting attempts, cancels the HTTP
 * requests and token waits in flight, waits for compression work already
 * running, then calls every pending body's callback with rc ERR_ABORTED
 * (records not yet acked or rejected stay INGEST_PENDING: they were not
 * delivered as far as the caller can know, and stay in the checkpoint),
 * frees the client and finally calls closed(ud) (closed may be NULL). The
 * caller keeps running the loop until then. NULL is a no-op.
 */
void ingest_close(struct ingest *ing, void (*closed)(void *ud), void *ud);

#endif
