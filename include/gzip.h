/*
 * gzip.h: whole-buffer gzip compression of request bodies, and the inverse.
 *
 * A request body is at most about 1 MB, which suits a whole-buffer
 * compressor: no stream state, one call per body, the output sized up front.
 */
#ifndef SS_GZIP_H
#define SS_GZIP_H

#include <stddef.h>

struct gzip_compressor;

/*
 * Creates a compressor for level (1 = fastest). Owned by the caller, freed
 * with gzip_compressor_destroy. One compressor per thread.
 */
int gzip_compressor_create(int level, struct gzip_compressor **out);
void gzip_compressor_destroy(struct gzip_compressor *c);

/*
 * Compresses in[0..len) into a new gzip member. On success *out is a
 * malloc'ed buffer owned by the caller (free()) of *out_len bytes.
 */
int gzip_compress(struct gzip_compressor *c, const void *in, size_t len,
                  void **out, size_t *out_len);

/*
 * Decompresses a gzip member into a malloc'ed buffer owned by the caller,
 * refusing output over max bytes (ERR_TOOBIG) and corrupt input (ERR_PARSE).
 */
int gzip_decompress(const void *in, size_t len, size_t max, void **out,
                    size_t *out_len);

#endif
