/*
 * batcher.h: records into Logs Ingestion request bodies (SPEC section 3).
 *
 * A body is a JSON array of records holding at most max_request_bytes of
 * uncompressed JSON, and records whose TimeGenerated values span at most 30
 * minutes (the API answers 400 RecordsTimeRangeIsMoreThan30Minutes
 * otherwise). Records keep their order and each lands in exactly one body.
 * A record that cannot fit in a body alone is handed back as rejected with
 * the reason, to be dead-lettered; it never reaches the API.
 *
 * The batcher is a plain object with no threads and no I/O: the caller
 * decides where it runs (a worker thread) and what happens to a body.
 */
#ifndef SS_BATCHER_H
#define SS_BATCHER_H

#include <stddef.h>
#include <stdint.h>

#define BATCHER_MAX_SPAN_SECONDS (30 * 60)
#define BATCHER_DEFAULT_MAX_REQUEST 1000000

struct batcher;

/*
 * A finished body, handed to the body callback. json is the uncompressed
 * array; first and count say which records (by the sequence number the
 * batcher gave them, starting at 0) it holds; min_time and max_time bound
 * their TimeGenerated values. Borrowed: valid only during the callback.
 */
struct batcher_body {
  const char *json;
  size_t len;
  uint64_t first;
  uint64_t count;
  int64_t min_time;
  int64_t max_time;
};

/* Receives a finished body. Non-zero stops and is returned by the caller. */
typedef int (*batcher_body_cb)(void *ud, const struct batcher_body *body);

/* Receives a record that cannot fit alone (seq, its bytes, why). */
typedef int (*batcher_reject_cb)(void *ud, uint64_t seq, const char *json,
                                 size_t len, const char *reason);

/*
 * Creates a batcher. The callbacks are called from batcher_add and
 * batcher_flush on the caller's thread. Returns 0 and *out (owned by the
 * caller, freed with batcher_destroy), or ERR_NOMEM / ERR_INVAL.
 */
int batcher_create(size_t max_request_bytes, batcher_body_cb on_body,
                   batcher_reject_cb on_reject, void *ud,
                   struct batcher **out);

/*
 * Adds one record (a JSON object, borrowed and copied) with its
 * TimeGenerated in Unix seconds. May call on_body with the previous body
 * when this record does not fit in it, and on_reject when the record cannot
 * fit in any body. Returns 0 or the first non-zero callback result.
 */
int batcher_add(struct batcher *b, const char *json, size_t len,
                int64_t time_generated);

/* Emits the body under construction, if any. */
int batcher_flush(struct batcher *b);

/* Frees the batcher. NULL is a no-op. Unflushed records are dropped. */
void batcher_destroy(struct batcher *b);

#endif
