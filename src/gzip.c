/*
 * gzip.c: whole-buffer gzip of request bodies (libdeflate) and the inverse
 * (zlib), as declared in gzip.h.
 *
 * Compression uses libdeflate because a request body is a single buffer of
 * at most about 1 MB, which is exactly what libdeflate is built for, and it
 * compresses these JSON bodies about twice as fast as zlib at a comparable
 * ratio (figures in docs/performance.md, "Compression"). Decompression is
 * only needed by tests and fake servers, so it uses zlib, the reference
 * implementation: a body that zlib inflates is a body Azure accepts.
 */
#include "gzip.h"

#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <libdeflate.h>
#include <zlib.h>

#include "buf.h"
#include "err.h"

/* zlib counts in uInt; larger inputs and outputs go through in slices. */
#define GZIP_ZLIB_SLICE ((size_t)UINT_MAX)

/* Output grows by at least this much per step while inflating. */
#define GZIP_INFLATE_STEP ((size_t)64 * 1024)

struct gzip_compressor {
  struct libdeflate_compressor *ld;   /* owned */
  int level;
};

int
gzip_compressor_create(int level, struct gzip_compressor **out)
{
  struct gzip_compressor *c;

  if(!out)
    return ERR_INVAL;
  *out = NULL;
  if(level < GZIP_MIN_LEVEL || level > GZIP_MAX_LEVEL)
    return ERR_INVAL;
  c = calloc(1, sizeof(*c));
  if(!c)
    return ERR_NOMEM;
  /* libdeflate returns NULL only for a bad level (checked) or no memory. */
  c->ld = libdeflate_alloc_compressor(level);
  if(!c->ld) {
    free(c);
    return ERR_NOMEM;
  }
  c->level = level;
  *out = c;
  return 0;
}

void
gzip_compressor_destroy(struct gzip_compressor *c)
{
  if(!c)
    return;
  libdeflate_free_compressor(c->ld);
  free(c);
}

int
gzip_compressor_level(const struct gzip_compressor *c)
{
  return c ? c->level : ERR_INVAL;
}

int
gzip_compress(struct gzip_compressor *c, const void *in, size_t len,
              void **out, size_t *out_len)
{
  size_t bound, n;
  void *dst, *shrunk;

  if(!c || !out || !out_len || (!in && len))
    return ERR_INVAL;
  *out = NULL;
  *out_len = 0;
  /*
   * The bound is the worst case for incompressible input, so the call below
   * cannot run out of room; sizing up front is what makes one call enough.
   */
  bound = libdeflate_gzip_compress_bound(c->ld, len);
  dst = malloc(bound);
  if(!dst)
    return ERR_NOMEM;
  n = libdeflate_gzip_compress(c->ld, len ? in : "", len, dst, bound);
  if(!n) {
    /* Unreachable with a correct bound; fail rather than send garbage. */
    free(dst);
    return ERR_TOOBIG;
  }
  /*
   * A compressed body may wait a long time for its turn (throttling backs
   * off for minutes), so give back the unused tail of the bound. A failed
   * shrink keeps the larger block, which is still correct.
   */
  shrunk = realloc(dst, n);
  if(shrunk)
    dst = shrunk;
  *out = dst;
  *out_len = n;
  return 0;
}

/* Maps a zlib inflate failure to an error code. */
static int
gzip_zerr(int zrc)
{
  return zrc == Z_MEM_ERROR ? ERR_NOMEM : ERR_PARSE;
}

/*
 * Hands zlib the next slice of src[0..len) once it has used up the last
 * one; *fed counts the bytes handed over so far. src is borrowed.
 */
static void
gzip_feed(z_stream *zs, const unsigned char *src, size_t len, size_t *fed)
{
  size_t n;

  if(zs->avail_in || *fed >= len)
    return;
  n = len - *fed < GZIP_ZLIB_SLICE ? len - *fed : GZIP_ZLIB_SLICE;
  /* zlib's next_in is not const-qualified but inflate never writes it. */
  zs->next_in = (unsigned char *)(uintptr_t)(src + *fed);
  zs->avail_in = (uInt)n;
  *fed += n;
}

/*
 * Makes room for more output in b, whose max is one byte over the caller's
 * cap. ERR_TOOBIG when b is full, ERR_NOMEM.
 */
static int
gzip_grow(struct buf *b)
{
  size_t step;

  if(b->cap > b->len + 1)
    return 0;
  /* Double, like buf does, but in steps of at least GZIP_INFLATE_STEP. */
  step = b->len > GZIP_INFLATE_STEP ? b->len : GZIP_INFLATE_STEP;
  if(step > b->max - b->len)
    step = b->max - b->len;
  if(!step)
    return ERR_TOOBIG;
  return buf_reserve(b, step);
}

int
gzip_decompress(const void *in, size_t len, size_t max, void **out,
                size_t *out_len)
{
  const unsigned char *src = in;
  size_t fed = 0, room;
  struct buf b;
  z_stream zs;
  int zrc, rc, zinit = 0;

  if(!out || !out_len || (!in && len))
    return ERR_INVAL;
  *out = NULL;
  *out_len = 0;
  /*
   * The buffer may hold one byte more than max, so that output over the
   * cap is seen as such (ERR_TOOBIG) rather than as a full buffer.
   */
  if(max > ((size_t)-1) / 2)
    max = ((size_t)-1) / 2;
  buf_init(&b, max + 1);
  memset(&zs, 0, sizeof(zs));
  zrc = inflateInit2(&zs, 16 + MAX_WBITS);
  if(zrc != Z_OK) {
    rc = gzip_zerr(zrc);
    goto out;
  }
  zinit = 1;
  for(;;) {
    gzip_feed(&zs, src, len, &fed);
    rc = gzip_grow(&b);
    if(rc)
      goto out;
    room = b.cap - 1 - b.len;
    if(room > GZIP_ZLIB_SLICE)
      room = GZIP_ZLIB_SLICE;
    zs.next_out = (unsigned char *)b.data + b.len;
    zs.avail_out = (uInt)room;
    zrc = inflate(&zs, Z_NO_FLUSH);
    b.len += room - zs.avail_out;
    if(b.len > max) {
      rc = ERR_TOOBIG;
      goto out;
    }
    if(zrc == Z_STREAM_END) {
      /*
       * RFC 1952: a gzip file is a series of members, so another member may
       * follow. Anything else after a member is corrupt input, not padding
       * to ignore (a body with trailing bytes is a bug somewhere): the next
       * round refuses it, since it does not start with a gzip header.
       */
      gzip_feed(&zs, src, len, &fed);
      if(!zs.avail_in)
        break;
      zrc = inflateReset(&zs);
      if(zrc != Z_OK) {
        rc = gzip_zerr(zrc);
        goto out;
      }
      continue;
    }
    if(zrc == Z_OK)
      continue;
    /* No progress with input left means it wants more room: go around. */
    if(zrc == Z_BUF_ERROR && (zs.avail_in || fed < len))
      continue;
    /* Z_BUF_ERROR with all input used is a truncated member. */
    rc = gzip_zerr(zrc);
    goto out;
  }
  if(!b.data) {
    rc = buf_reserve(&b, 0);
    if(rc)
      goto out;
  }
  b.data[b.len] = '\0';
  *out_len = b.len;
  *out = buf_detach(&b, NULL);
  rc = 0;

out:
  if(zinit)
    inflateEnd(&zs);
  buf_free(&b);
  return rc;
}
