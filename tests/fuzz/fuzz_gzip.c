/*
 * fuzz_gzip.c: gzip decompression (gzip_decompress) and the byte sources
 * the transform reads blobs through (source_open_buffer, source_read,
 * source_rewind), on arbitrary bytes, with small caps.
 *
 * The two decompressors are independent code over zlib (one whole-buffer,
 * one streaming with rewinds), so each is the other's oracle:
 *   - when the input starts with the gzip magic, a success of one is a
 *     success of the other with the same bytes (their error kinds may
 *     differ: a corrupt stream past the cap is "too big" to one and
 *     "corrupt" to the other, which is fine);
 *   - a source reads the same bytes after a rewind, whatever the sizes of
 *     the reads (taken from a hash of the input), and fails again if it
 *     failed;
 *   - without the magic, a source delivers the input itself, within its
 *     cap;
 *   - nothing is ever delivered past a cap, and a cap is reported as
 *     ERR_TOOBIG;
 *   - compressing the input at levels 0, 1 and 6 and decompressing it
 *     gives the input back.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "gzip.h"
#include "source.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct gzip_compressor *comp[3];

/*
 * Reads s to its end (or an error) into out (at most cap + 1 bytes are
 * kept), in reads of varying sizes drawn from *h. Returns 0 at the end or
 * the error; *len gets the bytes delivered.
 */
static int
drain(struct source *s, unsigned char *out, size_t cap, uint32_t *h,
      size_t *len)
{
  unsigned char chunk[4096];

  *len = 0;
  for(;;) {
    size_t want = 1 + *h % sizeof(chunk);
    ssize_t r;

    *h = *h * 1103515245u + 12345u;
    r = source_read(s, chunk, want);
    if(r < 0)
      return (int)r;
    if(r == 0)
      return 0;
    if((size_t)r > want)
      abort();
    if(*len + (size_t)r > cap)
      abort(); /* delivered past the cap without ERR_TOOBIG */
    memcpy(out + *len, chunk, (size_t)r);
    *len += (size_t)r;
  }
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  uint32_t h = 2166136261u, h2;
  size_t cap, out_len, n1, n2;
  void *out = NULL;
  unsigned char *a = NULL, *b = NULL;
  struct source *s = NULL;
  int rc, rc1, rc2, magic;

  if(!comp[0]) {
    if(gzip_compressor_create(0, &comp[0]) ||
       gzip_compressor_create(1, &comp[1]) ||
       gzip_compressor_create(6, &comp[2]))
      abort();
  }
  for(size_t i = 0; i < size; i++)
    h = (h ^ data[i]) * 16777619u;
  /* Caps from 1 byte to 64 KiB: small enough that bombs hit them. */
  cap = 1 + h % 65536;
  magic = size >= 2 && data[0] == 0x1f && data[1] == 0x8b;

  /* The whole-buffer decompressor. */
  rc = gzip_decompress(data, size, cap, &out, &out_len);
  if(rc == 0) {
    if(!out || out_len > cap || ((char *)out)[out_len] != '\0')
      abort();
  }
  else if(out || (rc != ERR_PARSE && rc != ERR_TOOBIG && rc != ERR_NOMEM))
    abort();

  /* The streaming source, read twice. */
  a = malloc(cap + 1);
  b = malloc(cap + 1);
  if(!a || !b)
    abort();
  rc1 = source_open_buffer(data, size, cap, &s);
  if(rc1 == 0) {
    if(source_is_gzip(s) != magic)
      abort();
    h2 = h;
    rc1 = drain(s, a, cap, &h2, &n1);
    if(source_rewind(s))
      abort();
    rc2 = drain(s, b, cap, &h2, &n2);
    /* A rewind replays the same bytes. (Which error a stream that is both
       over the cap and corrupt gets depends on the read sizes: a read that
       hits the corruption returns the error, not its bytes.) */
    if((rc1 == 0) != (rc2 == 0) ||
       (rc1 == 0 && (n1 != n2 || memcmp(a, b, n1))))
      abort();
    if(rc1 != 0 && rc1 != ERR_PARSE && rc1 != ERR_TOOBIG &&
       rc1 != ERR_NOMEM)
      abort();
    if(!magic) {
      if(size > cap ? rc1 != ERR_TOOBIG
                    : rc1 != 0 || n1 != size || memcmp(a, data, size))
        abort();
    }
    else {
      /* The two decompressors agree on what succeeds, and on the bytes. */
      if((rc == 0) != (rc1 == 0))
        abort();
      if(rc == 0 && (n1 != out_len || memcmp(a, out, n1)))
        abort();
    }
    source_destroy(s);
  }
  else if(rc1 != ERR_NOMEM)
    abort();
  free(out);

  /* Round trips through the compressor (bounded to keep runs fast). */
  if(size <= 16384) {
    for(int i = 0; i < 3; i++) {
      void *z = NULL, *back = NULL;
      size_t zlen, blen;

      if(gzip_compress(comp[i], data, size, &z, &zlen))
        abort();
      if(gzip_decompress(z, zlen, size, &back, &blen) || blen != size ||
         memcmp(back, data, size))
        abort();
      free(back);
      free(z);
    }
  }
  free(a);
  free(b);
  return 0;
}
