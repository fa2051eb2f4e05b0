/*
 * deadletter.h: the dead-letter directory (SPEC section 6).
 *
 * Records the Logs Ingestion API rejects, records too large to send, and
 * blobs that are bad input end here, so that nothing the daemon gives up on
 * disappears silently. The format is NDJSON: one JSON object per line, per
 * rejected record or blob, in files named dead-letter-YYYYMMDD.ndjson (UTC
 * day of the write) so that an operator can replay, inspect or prune them by
 * day. Every line starts with its kind, which is what deadletter_count
 * reads:
 *
 *   {"kind":"record","time":"2026-11-30T00:07:03Z","blob":"in/a.json",
 *    "etag":"0x8D...","record_index":12,"reason":"rejected",
 *    "http_status":400,"error_code":"InvalidRecord","error_message":"...",
 *    "request_id":"5f1c...","record":{...the record as sent...}}
 *   {"kind":"blob","time":"...","blob":"in/b.json","etag":"...",
 *    "reason":"bad_input","error_message":"invalid UTF-8 at line 3 ..."}
 *
 * Members without a value (no ETag, no HTTP status) are left out.
 *
 * Permissions: the directory is created 0700 and the files 0600 (record
 * contents are customer data); existing ones with wider modes are narrowed.
 *
 * Durability (the fsync policy): a record counts as done once it is
 * dead-lettered, and the checkpoint then marks its blob done, so a line must
 * be on disk before that commit. With DEADLETTER_SYNC_EACH (the default)
 * every deadletter_write ends with fdatasync of the file, and the directory
 * is fsynced when a new day's file is created. With DEADLETTER_SYNC_DEFER
 * writes are only appended and the caller calls deadletter_sync() before
 * the checkpoint commit, which batches the cost when many lines come at
 * once. Each line is written with one write(2) on an O_APPEND descriptor
 * (a failed or short write is cut back off the file), so a crash leaves at
 * most a torn last line, which deadletter_count reports as bad.
 *
 * Threading: every function may be called from any thread (a mutex guards
 * the file). The calls do blocking I/O, so the daemon runs them on the
 * thread pool, not on the loop thread.
 */
#ifndef SS_DEADLETTER_H
#define SS_DEADLETTER_H

#include <stddef.h>
#include <stdint.h>

/* Error messages from a service are cut to this many bytes. */
#define DEADLETTER_MAX_MESSAGE 1024

enum deadletter_sync {
  DEADLETTER_SYNC_EACH = 0,
  DEADLETTER_SYNC_DEFER = 1
};

/* One dead-lettered record or blob. Every pointer is borrowed; NULL or 0
   leaves the member out. */
struct deadletter_entry {
  const char *blob;           /* required: the blob name */
  const char *etag;
  int64_t record_index;       /* 0-based record of the blob; < 0 for an
                                 entry about the whole blob */
  const char *reason;         /* required: "rejected", "too_large",
                                 "bad_input", ... */
  int http_status;            /* 0 when no HTTP exchange was involved */
  const char *error_code;     /* error.code of the response body */
  const char *error_message;  /* error.message, or a parser's message;
                                 scrubbed and cut to DEADLETTER_MAX_MESSAGE */
  const char *request_id;     /* the x-ms-client-request-id of the attempt */
  int64_t time;               /* Unix seconds; 0 means now */
  const char *record;         /* the record's JSON, embedded as a value
                                 (or as a string when it does not parse) */
  size_t record_len;
};

struct deadletter;

/*
 * Opens (creating it and its parents, 0700) the dead-letter directory dir
 * (borrowed). Files are opened lazily at the first write. On success *out
 * is owned by the caller (deadletter_destroy). Returns ERR_IO when the
 * directory cannot be made or is not a directory, ERR_NOMEM, ERR_INVAL.
 */
int deadletter_open(const char *dir, enum deadletter_sync sync,
                    struct deadletter **out);

/*
 * Appends one line for e (see the file comment for the format and the
 * fsync policy). Returns 0, ERR_INVAL for a missing blob or reason, ERR_IO
 * (errno kept) when the line could not be written, ERR_NOMEM.
 */
int deadletter_write(struct deadletter *d, const struct deadletter_entry *e);

/* Flushes appended lines to disk (fdatasync). Returns 0 or ERR_IO. */
int deadletter_sync(struct deadletter *d);

/* Closes the file and frees d. NULL is a no-op. */
void deadletter_destroy(struct deadletter *d);

/* What deadletter_count found. */
struct deadletter_counts {
  uint64_t files;     /* *.ndjson files */
  uint64_t records;   /* lines of kind "record" */
  uint64_t blobs;     /* lines of kind "blob" */
  uint64_t bad;       /* lines neither (a torn last line after a crash) */
};

/*
 * Counts the entries in every *.ndjson file of dir (borrowed), for
 * `spectra-sentinel state`. A directory that does not exist counts as
 * empty. Reads in fixed-size chunks, so memory does not grow with the files.
 * Returns 0, or ERR_IO.
 */
int deadletter_count(const char *dir, struct deadletter_counts *out);

#endif
