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
 *
 * Records are numbered 0, 1, 2, ... in the order they are added, rejected
 * ones included, and the callbacks see them in that order: a rejected record
 * first closes the body under construction. So every body holds consecutive
 * sequence numbers first .. first + count - 1, which is what lets a client
 * map records back to their blobs with two integers per body.
 *
 * A body also carries where each record starts and its time, so that the
 * ingestion client can, without parsing JSON again:
 *   - copy it out of the callback (batcher_batch_create),
 *   - split it in halves after a 413 or bisect it after a 400 (again
 *     batcher_batch_create, on a range of its records),
 *   - rewrite out-of-range TimeGenerated values in place at each send
 *     attempt (batcher_batch_clamp_time, batcher_clamp_time).
 *
 * Body layout: "[" r0 "," r1 "," ... r(n-1) "]" where
 *   offsets[i]      is the byte offset of record i's opening brace,
 *   offsets[n]      is len (one past the closing bracket),
 * so record i is json[offsets[i] .. offsets[i+1] - 1): the byte before the
 * next offset is the separating comma (or the closing bracket).
 */
#ifndef SS_BATCHER_H
#define SS_BATCHER_H

#include <stddef.h>
#include <stdint.h>

#define BATCHER_MAX_SPAN_SECONDS (30 * 60)
#define BATCHER_DEFAULT_MAX_REQUEST 1000000

/*
 * Azure Monitor keeps a TimeGenerated only from about two days before to one
 * day after it receives the record; the clamp keeps an hour of margin on
 * each side (SPEC section 3).
 */
#define BATCHER_CLAMP_PAST_SECONDS (47 * 3600)
#define BATCHER_CLAMP_FUTURE_SECONDS (23 * 3600)

/* The smallest max_request_bytes: "[" plus a one-byte record plus "]". */
#define BATCHER_MIN_MAX_REQUEST 3

struct batcher;

/*
 * A finished body, handed to the body callback. json is the uncompressed
 * array (NUL-terminated after len bytes); first and count say which records
 * (by the sequence number the batcher gave them, starting at 0) it holds;
 * min_time and max_time bound their TimeGenerated values. offsets (count + 1
 * entries) and times (count entries) describe each record as explained at
 * the top of this file. Borrowed: everything is valid only during the
 * callback; copy what you keep (batcher_batch_create does).
 */
struct batcher_body {
  const char *json;
  size_t len;
  uint64_t first;
  uint64_t count;
  int64_t min_time;
  int64_t max_time;
  const size_t *offsets;
  const int64_t *times;
};

/*
 * Receives a finished body (borrowed, see above). Non-zero stops: batcher_add
 * or batcher_flush returns it. The body is gone either way: the callback had
 * its chance to copy it.
 */
typedef int (*batcher_body_cb)(void *ud, const struct batcher_body *body);

/*
 * Receives a record that cannot fit alone: its sequence number, its bytes
 * (borrowed, valid during the call) and why (borrowed, NUL-terminated, e.g.
 * "record of 1200000 bytes exceeds max_request_bytes 1000000"). Non-zero is
 * returned by batcher_add; the record counts as handed over either way.
 */
typedef int (*batcher_reject_cb)(void *ud, uint64_t seq, const char *json,
                                 size_t len, const char *reason);

/*
 * Creates a batcher. The callbacks (both required) are called from
 * batcher_add and batcher_flush on the caller's thread with ud (borrowed,
 * passed through). Returns 0 and *out (owned by the caller, freed with
 * batcher_destroy), or ERR_NOMEM / ERR_INVAL (no callback, or
 * max_request_bytes below BATCHER_MIN_MAX_REQUEST).
 */
int batcher_create(size_t max_request_bytes, batcher_body_cb on_body,
                   batcher_reject_cb on_reject, void *ud,
                   struct batcher **out);

/*
 * Adds one record (a JSON object, borrowed and copied) with its
 * TimeGenerated in Unix seconds. May call on_body with the previous body
 * when this record does not fit in it (bytes or span) or is rejected, and
 * on_reject when the record cannot fit in any body (len + 2 >
 * max_request_bytes). Returns 0, ERR_INVAL (empty record), ERR_NOMEM, or the
 * first non-zero callback result. When it fails before the record was
 * taken (ERR_NOMEM, or on_body failed) the record got no sequence number and
 * may be added again; a record handed to on_reject was taken.
 */
int batcher_add(struct batcher *b, const char *json, size_t len,
                int64_t time_generated);

/* Emits the body under construction, if any. Returns 0 or on_body's result. */
int batcher_flush(struct batcher *b);

/* The sequence number the next added record will get. */
uint64_t batcher_next_seq(const struct batcher *b);

/* Frees the batcher. NULL is a no-op. Unflushed records are dropped. */
void batcher_destroy(struct batcher *b);

/*
 * Record i of body (borrowed): sets *json to its first byte (pointing into
 * body->json, so borrowed like it) and *len to its size. ERR_INVAL when i is
 * not below body->count.
 */
int batcher_body_record(const struct batcher_body *body, uint64_t i,
                        const char **json, size_t *len);

/*
 * An owned, standalone copy of a body or of a range of its records: what the
 * ingestion client keeps while a request is pending, retried, split or
 * bisected. It is mutable only through batcher_batch_clamp_time.
 */
struct batcher_batch;

/*
 * Copies records [from, to) of body (borrowed; a callback's body or another
 * batch's) into a new batch whose body is "[" those records "]", with
 * first = body->first + from, its own offsets, times, min_time and
 * max_time. One allocation; the records' bytes are copied once, nothing is
 * parsed. Returns 0 and *out (owned by the caller, freed with
 * batcher_batch_destroy), ERR_INVAL for an empty or out-of-range span, or
 * ERR_NOMEM.
 */
int batcher_batch_create(const struct batcher_body *body, uint64_t from,
                         uint64_t to, struct batcher_batch **out);

/*
 * A new batch of count records and at most cap bytes of body, for a caller
 * that assembles a body itself and hands it on without another copy
 * (batcher_batch_seal, then ingest_submit_batch). *json (cap + 1 bytes),
 * *offsets (count + 1 entries) and *times (count entries) point into the
 * batch and are the caller's to fill until it seals the batch. Returns 0
 * and *out (owned by the caller, freed with batcher_batch_destroy),
 * ERR_INVAL for no records, a capacity under 2 bytes a record or sizes
 * that would overflow, or ERR_NOMEM.
 */
int batcher_batch_alloc(uint64_t count, size_t cap, struct batcher_batch **out,
                        char **json, size_t **offsets, int64_t **times);

/*
 * Finishes a batch from batcher_batch_alloc whose body is the len bytes
 * written to *json ("[" r0 "," ... "]"), with offsets[i] the start of
 * record i and offsets[count] == len, and times filled in: terminates the
 * JSON, sets first and computes min_time and max_time. Returns 0, or
 * ERR_INVAL when len exceeds the capacity or the offsets do not describe
 * such a body (the batch is then unchanged and still the caller's).
 */
int batcher_batch_seal(struct batcher_batch *b, size_t len, uint64_t first);

/*
 * The batch's body: borrowed from the batch, valid until it is destroyed;
 * json, times, min_time and max_time change when it is clamped.
 */
const struct batcher_body *batcher_batch_body(const struct batcher_batch *b);

/*
 * batcher_clamp_time on the batch's body, keeping its times, min_time and
 * max_time up to date. Call it just before each send attempt with that
 * attempt's time (a retry hours later may need it when the first attempt
 * did not), then compress. *clamped (may be NULL) gets the number of
 * records rewritten by this call.
 */
int batcher_batch_clamp_time(struct batcher_batch *b, int64_t now,
                             uint64_t *clamped);

/*
 * Whether batcher_clamp_time at now would rewrite any record of body
 * (borrowed): 1 when every record has the transform's layout and at least
 * one TimeGenerated lies outside the window Azure keeps, else 0 (also for
 * a now outside years 0000..9999, which the clamp refuses). Reads the
 * times from the JSON as the clamp does, and writes nothing: a sender can
 * send a body as it is, without a private copy, when this returns 0.
 */
int batcher_body_needs_clamp(const struct batcher_body *body, int64_t now);

/* Frees a batch. NULL is a no-op. */
void batcher_batch_destroy(struct batcher_batch *b);

/*
 * Rewrites, in place, the TimeGenerated of the records of a body (json,
 * len: writable, borrowed; offsets: count + 1 entries laid out as above,
 * borrowed) so that Azure keeps them (SPEC section 3): a time more than
 * BATCHER_CLAMP_PAST_SECONDS before now or more than
 * BATCHER_CLAMP_FUTURE_SECONDS after now becomes now.
 *
 * Every record must start with {"TimeGenerated":"YYYY-MM-DDTHH:MM:SSZ" (the
 * layout of transform.h), so the rewrite is 20 bytes at a known place and
 * the body keeps its size and offsets.
 *
 * The 30-minute span still has to hold afterwards. A body's records lie
 * within 30 minutes of each other, so when some are out of the window the
 * others sit just inside its edge, hours away from now; leaving them would
 * give the body a span of about a day and the whole request a 400. So when
 * rewriting only the out-of-window records would leave a span over
 * BATCHER_MAX_SPAN_SECONDS, every record of the body is set to now. A body
 * already over the span with nothing out of the window is left alone.
 *
 * times (count entries, may be NULL) receives each record's TimeGenerated
 * after the call; *clamped (may be NULL) the number of records rewritten.
 * Returns 0; ERR_PARSE when a record does not have that layout or its time
 * is not a valid date (nothing is changed: all records are checked first);
 * ERR_INVAL when now is outside years 0000..9999 or an argument is bad.
 */
int batcher_clamp_time(char *json, size_t len, const size_t *offsets,
                       uint64_t count, int64_t now, int64_t *times,
                       uint64_t *clamped);

/*
 * Converts between Unix seconds and the fixed-width RFC 3339 UTC form
 * "YYYY-MM-DDTHH:MM:SSZ" (years 0000..9999). batcher_time_format writes
 * exactly 20 bytes to out (borrowed, no NUL) and returns 0 or ERR_INVAL;
 * batcher_time_parse reads exactly 20 bytes from s (borrowed) and returns 0
 * or ERR_PARSE.
 */
int batcher_time_format(int64_t t, char out[20]);
int batcher_time_parse(const char *s, int64_t *t);

#endif
