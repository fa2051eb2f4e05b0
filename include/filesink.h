/*
 * filesink.h: destination.type "file": records as NDJSON in a local file.
 *
 * The same pipeline as the Logs Ingestion destination, for dry runs and the
 * demo: each request body's records are appended as one line each, and a
 * body counts as acknowledged once the lines are written and fdatasync'ed,
 * so the checkpoint never runs ahead of the file. The records keep their
 * computed TimeGenerated (no 47 h/23 h clamp: nothing is sent to Azure).
 *
 * Thread-safe: bodies may be written from several pool threads; a mutex
 * keeps each body's lines together.
 */
#ifndef SS_FILESINK_H
#define SS_FILESINK_H

#include <stddef.h>
#include <stdint.h>

struct filesink;

/*
 * Opens (creating, mode 0640) path for appending. path is borrowed.
 * Returns 0 and *out (owned by the caller, filesink_destroy), or ERR_IO.
 */
int filesink_open(const char *path, struct filesink **out);

/*
 * Appends the count records of a body laid out as batcher.h describes
 * (json and offsets borrowed) as NDJSON lines, then fdatasyncs. Returns 0,
 * or ERR_IO with the file cut back to where it was (no partial body).
 */
int filesink_write(struct filesink *s, const char *json,
                   const size_t *offsets, uint64_t count);

/* Closes the file. NULL is a no-op. */
void filesink_destroy(struct filesink *s);

#endif
