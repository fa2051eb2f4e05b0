/*
 * gzip.h: whole-buffer gzip compression of request bodies, and the inverse.
 *
 * A request body is at most about 1 MB, which suits a whole-buffer
 * compressor: no stream state, one call per body, the output sized up front.
 * Compression is libdeflate; decompression (for tests and fake servers) is
 * zlib, so every body the daemon sends is proven standard gzip.
 */
#ifndef SS_GZIP_H
#define SS_GZIP_H

#include <stddef.h>

/* libdeflate's levels: 0 stores, 1 is fastest, 12 compresses most. */
#define GZIP_MIN_LEVEL 0
#define GZIP_MAX_LEVEL 12

/*
 * The level the daemon uses, chosen by measurement (tests/bench/bench_gzip.c,
 * docs/performance.md "Compression"): level 1 compresses 1 MB bodies at
 * about 200 MB/s per core with a ratio of 4.3 to 4.7; level 6 sends 11% to
 * 16% fewer bytes for about three times the CPU, which is more than the
 * transform itself spends on the same records.
 */
#define GZIP_DEFAULT_LEVEL 1

struct gzip_compressor;

/*
 * Creates a compressor for level (GZIP_MIN_LEVEL..GZIP_MAX_LEVEL, 1 =
 * fastest). Returns 0 and *out, owned by the caller and freed with
 * gzip_compressor_destroy; ERR_INVAL for a bad level; ERR_NOMEM. A
 * compressor holds working memory (libdeflate 1.14: 0.2 MB at level 1,
 * 0.7 MB at levels 3 and 6, 9 MB at level 12) and is not thread-safe: one
 * per thread, reused for every body that thread compresses.
 */
int gzip_compressor_create(int level, struct gzip_compressor **out);

/* Frees a compressor. NULL is a no-op. */
void gzip_compressor_destroy(struct gzip_compressor *c);

/* Returns the level c was created with (c is borrowed). */
int gzip_compressor_level(const struct gzip_compressor *c);

/*
 * Compresses in[0..len) (borrowed) into one new gzip member. On success *out
 * is a malloc'ed buffer owned by the caller (free()) of *out_len bytes.
 * Returns 0, ERR_INVAL or ERR_NOMEM; on failure *out is NULL.
 */
int gzip_compress(struct gzip_compressor *c, const void *in, size_t len,
                  void **out, size_t *out_len);

/*
 * Decompresses in[0..len) (borrowed): one gzip member, or several
 * concatenated (RFC 1952), and nothing after them. On success *out is a
 * malloc'ed buffer owned by the caller (free()) of *out_len bytes, with a NUL
 * byte after them so text can be used as a C string. Returns 0; ERR_TOOBIG
 * when the output would exceed max bytes (nothing beyond max + 1 bytes is
 * ever allocated); ERR_PARSE for input that is not gzip, corrupt, truncated
 * or followed by other bytes; ERR_NOMEM; ERR_INVAL.
 */
int gzip_decompress(const void *in, size_t len, size_t max, void **out,
                    size_t *out_len);

#endif
