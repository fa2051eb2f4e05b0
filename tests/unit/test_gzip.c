/*
 * test_gzip.c: gzip_compress produces standard gzip (zlib inflates it back
 * to the input) and gzip_decompress enforces its cap and refuses corrupt,
 * truncated and trailing input.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <zlib.h>

#include "err.h"
#include "gzip.h"

/* A small deterministic PRNG (xorshift64*) so failures reproduce. */
static uint64_t rng_state;

static uint64_t
rng(void)
{
  rng_state ^= rng_state >> 12;
  rng_state ^= rng_state << 25;
  rng_state ^= rng_state >> 27;
  return rng_state * 2685821657736338717ULL;
}

/* Fills p with n bytes of JSON-like text: compressible but not trivial. */
static void
fill_text(unsigned char *p, size_t n)
{
  static const char *const words[] = {
    "{\"classification\":", "\"scan_results\":[", "\"sha1\"", "\"md5\"",
    "\"Win32.Trojan.Graftor\"", "\"file_type\":\"PE\"", ",", "}", "]",
  };
  size_t i = 0;

  while(i < n) {
    if(rng() % 3 == 0) {
      p[i++] = "0123456789abcdef"[rng() % 16];
    }
    else {
      const char *w = words[rng() % (sizeof(words) / sizeof(words[0]))];

      for(; *w && i < n; w++)
        p[i++] = (unsigned char)*w;
    }
  }
}

/* Inflates with zlib directly: proof that the output is standard gzip. */
static void
zlib_inflate_equals(const void *gz, size_t gzlen, const void *want,
                    size_t wantlen)
{
  unsigned char *out = malloc(wantlen + 16);
  z_stream zs;

  assert_non_null(out);
  memset(&zs, 0, sizeof(zs));
  assert_int_equal(inflateInit2(&zs, 16 + MAX_WBITS), Z_OK);
  zs.next_in = (unsigned char *)(uintptr_t)gz;
  zs.avail_in = (uInt)gzlen;
  zs.next_out = out;
  zs.avail_out = (uInt)(wantlen + 16);
  assert_int_equal(inflate(&zs, Z_FINISH), Z_STREAM_END);
  assert_int_equal(zs.avail_in, 0);
  assert_int_equal(zs.total_out, wantlen);
  if(wantlen)
    assert_memory_equal(out, want, wantlen);
  inflateEnd(&zs);
  free(out);
}

/* Compresses with zlib's gzip wrapper, for interoperability tests. */
static void *
zlib_gzip(const void *in, size_t len, size_t *out_len)
{
  size_t cap = len + len / 100 + 64;
  unsigned char *out = malloc(cap);
  z_stream zs;

  assert_non_null(out);
  memset(&zs, 0, sizeof(zs));
  assert_int_equal(deflateInit2(&zs, 6, Z_DEFLATED, 16 + MAX_WBITS, 8,
                                Z_DEFAULT_STRATEGY), Z_OK);
  zs.next_in = (unsigned char *)(uintptr_t)in;
  zs.avail_in = (uInt)len;
  zs.next_out = out;
  zs.avail_out = (uInt)cap;
  assert_int_equal(deflate(&zs, Z_FINISH), Z_STREAM_END);
  *out_len = zs.total_out;
  deflateEnd(&zs);
  return out;
}

static void
test_round_trip(void **state)
{
  static const int levels[] = { 0, 1, 3, 6, 12 };
  static const size_t sizes[] = { 0, 1, 100, 65535, 65536, 65537, 1000000 };
  struct gzip_compressor *c;
  unsigned char *in;
  void *gz, *back;
  size_t gzlen, backlen;

  (void)state;
  rng_state = 0x9e3779b97f4a7c15ULL;
  in = malloc(1000000);
  assert_non_null(in);
  for(size_t l = 0; l < sizeof(levels) / sizeof(levels[0]); l++) {
    assert_int_equal(gzip_compressor_create(levels[l], &c), 0);
    assert_int_equal(gzip_compressor_level(c), levels[l]);
    for(size_t s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
      size_t n = sizes[s];

      fill_text(in, n);
      assert_int_equal(gzip_compress(c, in, n, &gz, &gzlen), 0);
      assert_true(gzlen >= 18);
      assert_int_equal(((unsigned char *)gz)[0], 0x1f);
      assert_int_equal(((unsigned char *)gz)[1], 0x8b);
      /* Text of this kind must actually shrink above level 0. */
      if(levels[l] > 0 && n >= 65536)
        assert_true(gzlen < n / 2);
      zlib_inflate_equals(gz, gzlen, in, n);
      assert_int_equal(gzip_decompress(gz, gzlen, n, &back, &backlen), 0);
      assert_int_equal(backlen, n);
      if(n)
        assert_memory_equal(back, in, n);
      assert_int_equal(((char *)back)[n], '\0');
      free(back);
      free(gz);
    }
    gzip_compressor_destroy(c);
  }
  free(in);
}

static void
test_incompressible_input(void **state)
{
  struct gzip_compressor *c;
  unsigned char *in;
  void *gz, *back;
  size_t n = 300000, gzlen, backlen;

  (void)state;
  rng_state = 12345;
  in = malloc(n);
  assert_non_null(in);
  for(size_t i = 0; i < n; i++)
    in[i] = (unsigned char)rng();
  assert_int_equal(gzip_compressor_create(GZIP_DEFAULT_LEVEL, &c), 0);
  assert_int_equal(gzip_compress(c, in, n, &gz, &gzlen), 0);
  zlib_inflate_equals(gz, gzlen, in, n);
  assert_int_equal(gzip_decompress(gz, gzlen, n, &back, &backlen), 0);
  assert_int_equal(backlen, n);
  assert_memory_equal(back, in, n);
  free(back);
  free(gz);
  gzip_compressor_destroy(c);
  free(in);
}

static void
test_zlib_output_decompresses(void **state)
{
  unsigned char in[5000];
  void *gz, *back;
  size_t gzlen, backlen;

  (void)state;
  rng_state = 777;
  fill_text(in, sizeof(in));
  gz = zlib_gzip(in, sizeof(in), &gzlen);
  assert_int_equal(gzip_decompress(gz, gzlen, sizeof(in), &back, &backlen),
                   0);
  assert_int_equal(backlen, sizeof(in));
  assert_memory_equal(back, in, sizeof(in));
  free(back);
  free(gz);
}

static void
test_cap(void **state)
{
  struct gzip_compressor *c;
  unsigned char *in;
  void *gz, *back = NULL;
  size_t n = 10 * 1000 * 1000, gzlen, backlen = 1;

  (void)state;
  /* A small bomb: 10 MB of zeros is about 10 KB of gzip. */
  in = calloc(1, n);
  assert_non_null(in);
  assert_int_equal(gzip_compressor_create(6, &c), 0);
  assert_int_equal(gzip_compress(c, in, n, &gz, &gzlen), 0);
  assert_true(gzlen < n / 100);
  assert_int_equal(gzip_decompress(gz, gzlen, 1000000, &back, &backlen),
                   ERR_TOOBIG);
  assert_null(back);
  assert_int_equal(backlen, 0);
  /* One byte under the size is over the cap; the exact size is not. */
  assert_int_equal(gzip_decompress(gz, gzlen, n - 1, &back, &backlen),
                   ERR_TOOBIG);
  assert_int_equal(gzip_decompress(gz, gzlen, n, &back, &backlen), 0);
  assert_int_equal(backlen, n);
  assert_memory_equal(back, in, n);
  free(back);
  /* A cap of 0 admits only empty output. */
  free(gz);
  assert_int_equal(gzip_compress(c, in, 0, &gz, &gzlen), 0);
  assert_int_equal(gzip_decompress(gz, gzlen, 0, &back, &backlen), 0);
  assert_int_equal(backlen, 0);
  free(back);
  free(gz);
  assert_int_equal(gzip_compress(c, in, 1, &gz, &gzlen), 0);
  assert_int_equal(gzip_decompress(gz, gzlen, 0, &back, &backlen),
                   ERR_TOOBIG);
  free(gz);
  gzip_compressor_destroy(c);
  free(in);
}

static void
test_corrupt(void **state)
{
  struct gzip_compressor *c;
  unsigned char in[20000], *bad;
  void *gz, *back = NULL;
  size_t gzlen, backlen;

  (void)state;
  rng_state = 4242;
  fill_text(in, sizeof(in));
  assert_int_equal(gzip_compressor_create(1, &c), 0);
  assert_int_equal(gzip_compress(c, in, sizeof(in), &gz, &gzlen), 0);
  bad = malloc(gzlen + 8);
  assert_non_null(bad);

  /* Not gzip at all, and empty input. */
  assert_int_equal(gzip_decompress("[{\"a\":1}]", 9, 100, &back, &backlen),
                   ERR_PARSE);
  assert_int_equal(gzip_decompress("", 0, 100, &back, &backlen), ERR_PARSE);

  /* Every truncation, from the header to the last byte of the trailer. */
  for(size_t cut = 1; cut < gzlen; cut += (cut < 40 || gzlen - cut < 16) ?
                                           1 : 97) {
    assert_int_equal(gzip_decompress(gz, cut, sizeof(in), &back, &backlen),
                     ERR_PARSE);
    assert_null(back);
  }

  /* A flipped byte in the body, and one in the CRC-32 trailer. */
  memcpy(bad, gz, gzlen);
  bad[gzlen / 2] ^= 0x55;
  /* Room to spare: corrupt Huffman data may decode to more than 20000
   * bytes, and that is ERR_TOOBIG, not the corruption under test. */
  assert_int_equal(gzip_decompress(bad, gzlen, 1000000, &back, &backlen),
                   ERR_PARSE);
  memcpy(bad, gz, gzlen);
  bad[gzlen - 6] ^= 0x01;
  assert_int_equal(gzip_decompress(bad, gzlen, sizeof(in), &back, &backlen),
                   ERR_PARSE);

  /* A wrong magic number. */
  memcpy(bad, gz, gzlen);
  bad[1] = 0x8c;
  assert_int_equal(gzip_decompress(bad, gzlen, sizeof(in), &back, &backlen),
                   ERR_PARSE);

  /* Trailing bytes after a valid member. */
  memcpy(bad, gz, gzlen);
  memcpy(bad + gzlen, "\0\0garbag", 8);
  for(size_t extra = 1; extra <= 8; extra++)
    assert_int_equal(gzip_decompress(bad, gzlen + extra, sizeof(in), &back,
                                     &backlen), ERR_PARSE);
  /* A lone 0x1f looks like the start of a member but is not one. */
  bad[gzlen] = 0x1f;
  assert_int_equal(gzip_decompress(bad, gzlen + 1, sizeof(in), &back,
                                   &backlen), ERR_PARSE);
  assert_null(back);

  free(bad);
  free(gz);
  gzip_compressor_destroy(c);
}

static void
test_concatenated_members(void **state)
{
  struct gzip_compressor *c;
  unsigned char a[3000], b[7000], *both;
  void *ga, *gb, *back;
  size_t galen, gblen, backlen;

  (void)state;
  rng_state = 99;
  fill_text(a, sizeof(a));
  fill_text(b, sizeof(b));
  assert_int_equal(gzip_compressor_create(3, &c), 0);
  assert_int_equal(gzip_compress(c, a, sizeof(a), &ga, &galen), 0);
  assert_int_equal(gzip_compress(c, b, sizeof(b), &gb, &gblen), 0);
  both = malloc(galen + gblen);
  assert_non_null(both);
  memcpy(both, ga, galen);
  memcpy(both + galen, gb, gblen);
  assert_int_equal(gzip_decompress(both, galen + gblen, sizeof(a) + sizeof(b),
                                   &back, &backlen), 0);
  assert_int_equal(backlen, sizeof(a) + sizeof(b));
  assert_memory_equal(back, a, sizeof(a));
  assert_memory_equal((char *)back + sizeof(a), b, sizeof(b));
  free(back);
  /* The cap applies to the sum of the members. */
  assert_int_equal(gzip_decompress(both, galen + gblen,
                                   sizeof(a) + sizeof(b) - 1, &back,
                                   &backlen), ERR_TOOBIG);
  /* A truncated second member is still corrupt. */
  assert_int_equal(gzip_decompress(both, galen + gblen - 1,
                                   sizeof(a) + sizeof(b), &back, &backlen),
                   ERR_PARSE);
  free(both);
  free(ga);
  free(gb);
  gzip_compressor_destroy(c);
}

static void
test_bad_arguments(void **state)
{
  struct gzip_compressor *c = (void *)1;
  void *out;
  size_t len;

  (void)state;
  assert_int_equal(gzip_compressor_create(-1, &c), ERR_INVAL);
  assert_null(c);
  assert_int_equal(gzip_compressor_create(13, &c), ERR_INVAL);
  assert_int_equal(gzip_compressor_create(1, NULL), ERR_INVAL);
  assert_int_equal(gzip_compress(NULL, "x", 1, &out, &len), ERR_INVAL);
  assert_int_equal(gzip_decompress(NULL, 5, 10, &out, &len), ERR_INVAL);
  assert_int_equal(gzip_compressor_level(NULL), ERR_INVAL);
  gzip_compressor_destroy(NULL);
}

int
main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_round_trip),
    cmocka_unit_test(test_incompressible_input),
    cmocka_unit_test(test_zlib_output_decompresses),
    cmocka_unit_test(test_cap),
    cmocka_unit_test(test_corrupt),
    cmocka_unit_test(test_concatenated_members),
    cmocka_unit_test(test_bad_arguments),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
