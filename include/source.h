/*
 * source.h: re-readable byte sources for the transform.
 *
 * The transform reads a report twice (validate, then emit), so its input
 * must be able to start again from the first byte. A source is one of:
 *   - a memory buffer (borrowed, never copied);
 *   - a file descriptor or a path, read with pread(2) so that rewinding is
 *     free and the file is never loaded whole;
 *   - a gzip wrapper around another source, decompressing with zlib's
 *     streaming inflate into the caller's buffer; rewinding restarts the
 *     inner source and the decompressor. Concatenated gzip members are one
 *     stream, as gzip(1) treats them.
 * The source_open_* helpers detect gzip by its magic bytes 1f 8b (never by
 * a name) and wrap automatically.
 *
 * Every source can carry a cap on the bytes it delivers (max_bytes; 0 means
 * no cap). Reading past the cap fails with ERR_TOOBIG, which bounds the work
 * a decompression bomb can cause. Corrupt or truncated gzip data fails with
 * ERR_PARSE; a failed read with ERR_IO.
 *
 * A source is used by one thread at a time.
 */
#ifndef SS_SOURCE_H
#define SS_SOURCE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "transform.h"

struct source;

/*
 * A source over data[0..len). data is borrowed and must outlive the source.
 * *out is owned by the caller (source_destroy).
 */
int source_memory_create(const void *data, size_t len, struct source **out);

/*
 * A source over the file open as fd, from offset 0, read with pread(2) (so
 * fd must be seekable: a regular file). If own is non-zero the source
 * closes fd when destroyed (also when this call fails); otherwise fd is
 * borrowed and must outlive the source.
 */
int source_fd_create(int fd, int own, struct source **out);

/*
 * A source that gunzips inner. inner is stolen: the new source owns it and
 * destroys it, and so does this call when it fails.
 */
int source_gzip_create(struct source *inner, struct source **out);

/*
 * A source over data[0..len) that decompresses it if it starts with the
 * gzip magic bytes, delivering at most max_bytes (0: no cap). data is
 * borrowed.
 */
int source_open_buffer(const void *data, size_t len, uint64_t max_bytes,
                       struct source **out);

/*
 * Like source_open_buffer, for data followed by TRANSFORM_PAD readable zero
 * bytes (data[len] up to data[len + TRANSFORM_PAD - 1]). When the report is
 * not gzip-compressed and within max_bytes, the source also offers it for
 * scanning in place (transform_source.data), so the transform reads it
 * without copying it. data is borrowed and must not change while in use.
 */
int source_open_padded(const void *data, size_t len, uint64_t max_bytes,
                       struct source **out);

/*
 * A source over the file at path (borrowed), gunzipped if it starts with the
 * gzip magic bytes, delivering at most max_bytes (0: no cap). Returns
 * ERR_NOTFOUND if the file does not exist, ERR_IO if it cannot be opened.
 */
int source_open_file(const char *path, uint64_t max_bytes,
                     struct source **out);

/* Like source_open_file for an open, seekable fd (own: see above). */
int source_open_fd(int fd, int own, uint64_t max_bytes, struct source **out);

/* Sets the cap on delivered bytes (0: none); counts from the last rewind. */
void source_set_max(struct source *s, uint64_t max_bytes);

/* Non-zero if the source decompresses gzip. */
int source_is_gzip(const struct source *s);

/*
 * Reads up to n bytes into buf. Returns the count, 0 at the end, or
 * ERR_IO, ERR_PARSE (corrupt compressed data), ERR_TOOBIG (past the cap),
 * ERR_NOMEM.
 */
ssize_t source_read(struct source *s, void *buf, size_t n);

/* Starts again from the first byte. */
int source_rewind(struct source *s);

/*
 * The transform's view of s: a struct transform_source whose ud is s. The
 * pointer is borrowed and valid while s lives.
 */
const struct transform_source *source_transform(struct source *s);

/* Frees the source (and its inner source, fd if owned). NULL is a no-op. */
void source_destroy(struct source *s);

#endif
