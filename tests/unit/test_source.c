/*
 * test_source.c: the re-readable sources of source.h: memory, file and
 * gzip, rewinding, gzip detection by magic bytes, the size cap, and corrupt
 * or truncated compressed input.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "err.h"
#include "source.h"

/* Compresses in[0..n) into one gzip member; the caller frees *out. */
static size_t
gz(const void *in, size_t n, unsigned char **out)
{
  z_stream z;
  size_t cap = compressBound((uLong)n) + 64;

  memset(&z, 0, sizeof(z));
  *out = malloc(cap);
  assert_non_null(*out);
  assert_int_equal(deflateInit2(&z, 6, Z_DEFLATED, 16 + MAX_WBITS, 8,
                                Z_DEFAULT_STRATEGY), Z_OK);
  z.next_in = (unsigned char *)(uintptr_t)in;
  z.avail_in = (uInt)n;
  z.next_out = *out;
  z.avail_out = (uInt)cap;
  assert_int_equal(deflate(&z, Z_FINISH), Z_STREAM_END);
  n = cap - z.avail_out;
  deflateEnd(&z);
  return n;
}

/* Reads s to its end in chunks of step bytes into a new NUL-terminated
 * buffer; returns the length, or the negative code. */
static ssize_t
slurp(struct source *s, size_t step, char **out)
{
  size_t len = 0, cap = 1024;
  char *b = malloc(cap);

  assert_non_null(b);
  for(;;) {
    ssize_t n;

    if(cap - len < step + 1) {
      cap = 2 * cap + step;
      b = realloc(b, cap);
      assert_non_null(b);
    }
    n = source_read(s, b + len, step);
    if(n < 0) {
      free(b);
      *out = NULL;
      return n;
    }
    if(n == 0)
      break;
    assert_true((size_t)n <= step);
    len += (size_t)n;
  }
  b[len] = '\0';
  *out = b;
  return (ssize_t)len;
}

/* A deterministic text of n bytes that compresses but not trivially. */
static char *
text(size_t n)
{
  char *t = malloc(n + 1);
  uint32_t x = 12345;

  assert_non_null(t);
  for(size_t i = 0; i < n; i++) {
    x = x * 1103515245 + 12345;
    t[i] = (char)('a' + (x >> 16) % 13);
  }
  t[n] = '\0';
  return t;
}

static void
test_memory_reads_and_rewinds(void **state)
{
  const char data[] = "hello, source";
  struct source *s;
  char *got;

  (void)state;
  assert_int_equal(source_memory_create(data, strlen(data), &s), 0);
  assert_false(source_is_gzip(s));
  assert_int_equal(slurp(s, 4, &got), (ssize_t)strlen(data));
  assert_string_equal(got, data);
  free(got);
  assert_int_equal(source_read(s, (char[4]){ 0 }, 4), 0);
  assert_int_equal(source_rewind(s), 0);
  assert_int_equal(slurp(s, 1, &got), (ssize_t)strlen(data));
  assert_string_equal(got, data);
  free(got);
  source_destroy(s);
  source_destroy(NULL);
}

static void
test_transform_view_reads_the_same(void **state)
{
  const char data[] = "0123456789";
  const struct transform_source *ts;
  struct source *s;
  char b[16];

  (void)state;
  assert_int_equal(source_memory_create(data, 10, &s), 0);
  ts = source_transform(s);
  assert_ptr_equal(ts->ud, s);
  assert_int_equal(ts->read(ts->ud, b, 3), 3);
  assert_memory_equal(b, "012", 3);
  assert_int_equal(ts->rewind(ts->ud), 0);
  assert_int_equal(ts->read(ts->ud, b, 16), 10);
  assert_memory_equal(b, data, 10);
  source_destroy(s);
}

static void
test_file_source_and_not_found(void **state)
{
  char path[] = "/tmp/test_source_XXXXXX";
  char *t = text(200000), *got;
  struct source *s;
  int fd = mkstemp(path);

  (void)state;
  assert_true(fd >= 0);
  assert_int_equal(write(fd, t, 200000), 200000);
  close(fd);
  assert_int_equal(source_open_file(path, 0, &s), 0);
  assert_false(source_is_gzip(s));
  assert_int_equal(slurp(s, 65536, &got), 200000);
  assert_memory_equal(got, t, 200000);
  free(got);
  assert_int_equal(source_rewind(s), 0);
  assert_int_equal(slurp(s, 777, &got), 200000);
  assert_memory_equal(got, t, 200000);
  free(got);
  source_destroy(s);
  unlink(path);
  free(t);
  assert_int_equal(source_open_file(path, 0, &s), ERR_NOTFOUND);
  assert_null(s);
  assert_int_equal(source_open_file("/nonexistent-dir/x/y", 0, &s),
                   ERR_NOTFOUND);
}

static void
test_fd_borrowed_stays_open(void **state)
{
  char path[] = "/tmp/test_source_XXXXXX";
  struct source *s;
  char b[8];
  int fd = mkstemp(path);

  (void)state;
  assert_true(fd >= 0);
  assert_int_equal(write(fd, "abc", 3), 3);
  assert_int_equal(source_open_fd(fd, 0, 0, &s), 0);
  assert_int_equal(source_read(s, b, sizeof(b)), 3);
  source_destroy(s);
  /* Borrowed: still open, and pread does not move its offset. */
  assert_int_equal(pread(fd, b, 3, 0), 3);
  assert_memory_equal(b, "abc", 3);
  close(fd);
  unlink(path);
}

static void
test_gzip_detected_and_rewinds(void **state)
{
  char *t = text(300000), *got;
  unsigned char *z;
  size_t zn = gz(t, 300000, &z);
  struct source *s;

  (void)state;
  assert_int_equal(source_open_buffer(z, zn, 0, &s), 0);
  assert_true(source_is_gzip(s));
  assert_int_equal(slurp(s, 65536, &got), 300000);
  assert_memory_equal(got, t, 300000);
  free(got);
  /* Rewinding restarts the decompressor; odd read sizes change nothing. */
  assert_int_equal(source_rewind(s), 0);
  assert_int_equal(slurp(s, 1, &got), 300000);
  assert_memory_equal(got, t, 300000);
  free(got);
  source_destroy(s);
  free(z);
  free(t);
}

static void
test_gzip_file_detected_by_magic_not_name(void **state)
{
  char path[] = "/tmp/test_source_XXXXXX"; /* no .gz suffix */
  const char *t = "{\"tc_report\":[]}";
  unsigned char *z;
  size_t zn = gz(t, strlen(t), &z);
  struct source *s;
  char *got;
  int fd = mkstemp(path);

  (void)state;
  assert_true(fd >= 0);
  assert_int_equal(write(fd, z, zn), (ssize_t)zn);
  close(fd);
  assert_int_equal(source_open_file(path, 0, &s), 0);
  assert_true(source_is_gzip(s));
  assert_int_equal(slurp(s, 100, &got), (ssize_t)strlen(t));
  assert_string_equal(got, t);
  free(got);
  source_destroy(s);
  unlink(path);
  free(z);
}

static void
test_gzip_concatenated_members(void **state)
{
  unsigned char *a, *b, *both;
  size_t an = gz("first,", 6, &a), bn = gz("second", 6, &b);
  struct source *s;
  char *got;

  (void)state;
  both = malloc(an + bn);
  assert_non_null(both);
  memcpy(both, a, an);
  memcpy(both + an, b, bn);
  assert_int_equal(source_open_buffer(both, an + bn, 0, &s), 0);
  assert_int_equal(slurp(s, 3, &got), 12);
  assert_string_equal(got, "first,second");
  free(got);
  source_destroy(s);
  free(a);
  free(b);
  free(both);
}

static void
test_gzip_truncated_corrupt_and_trailing_garbage(void **state)
{
  char *t = text(50000), *got;
  unsigned char *z, *bad;
  size_t zn = gz(t, 50000, &z);
  struct source *s;

  (void)state;
  /* Truncated: the member never ends. */
  assert_int_equal(source_open_buffer(z, zn - 10, 0, &s), 0);
  assert_int_equal(slurp(s, 4096, &got), ERR_PARSE);
  source_destroy(s);
  /* Only the magic bytes. */
  assert_int_equal(source_open_buffer(z, 2, 0, &s), 0);
  assert_int_equal(slurp(s, 4096, &got), ERR_PARSE);
  source_destroy(s);
  /* A flipped byte in the deflate data (or its CRC) is caught. */
  bad = malloc(zn + 4);
  assert_non_null(bad);
  memcpy(bad, z, zn);
  bad[zn / 2] ^= 0x55;
  assert_int_equal(source_open_buffer(bad, zn, 0, &s), 0);
  assert_int_equal(slurp(s, 4096, &got), ERR_PARSE);
  source_destroy(s);
  /* Garbage after the member is not another member. */
  memcpy(bad, z, zn);
  memcpy(bad + zn, "junk", 4);
  assert_int_equal(source_open_buffer(bad, zn + 4, 0, &s), 0);
  assert_int_equal(slurp(s, 4096, &got), ERR_PARSE);
  source_destroy(s);
  free(bad);
  free(z);
  free(t);
}

static void
test_cap_on_delivered_bytes(void **state)
{
  char *t = text(100000), *got;
  unsigned char *z;
  size_t zn;
  struct source *s;

  (void)state;
  /* Plain: exactly the cap is fine, one byte more is not. */
  assert_int_equal(source_open_buffer(t, 100000, 100000, &s), 0);
  assert_int_equal(slurp(s, 4096, &got), 100000);
  free(got);
  source_destroy(s);
  assert_int_equal(source_open_buffer(t, 100000, 99999, &s), 0);
  assert_int_equal(slurp(s, 4096, &got), ERR_TOOBIG);
  source_destroy(s);
  /* Gzip: the cap counts decompressed bytes (a bomb stops early). */
  memset(t, 'x', 100000);
  zn = gz(t, 100000, &z);
  assert_int_equal(source_open_buffer(z, zn, 50000, &s), 0);
  assert_true(zn < 50000);
  assert_int_equal(slurp(s, 4096, &got), ERR_TOOBIG);
  /* The count restarts with a rewind; a new cap applies from then. */
  assert_int_equal(source_rewind(s), 0);
  source_set_max(s, 0);
  assert_int_equal(slurp(s, 4096, &got), 100000);
  assert_memory_equal(got, t, 100000);
  free(got);
  source_destroy(s);
  free(z);
  free(t);
}

/*
 * A padded buffer is offered for scanning in place only when the bytes
 * themselves are the report: not gzip (they must be inflated), not over the
 * cap (reading must stop at it), not empty. Reading still serves it.
 */
static void
test_padded_buffer_offered_in_place(void **state)
{
  char *t = text(5000), *got;
  unsigned char *z, *pz;
  char *pt = malloc(5000 + TRANSFORM_PAD);
  size_t zn;
  struct source *s;

  (void)state;
  assert_non_null(pt);
  memcpy(pt, t, 5000);
  memset(pt + 5000, 0, TRANSFORM_PAD);
  assert_int_equal(source_open_padded(pt, 5000, 0, &s), 0);
  assert_ptr_equal(source_transform(s)->data, pt);
  assert_int_equal(source_transform(s)->len, 5000);
  assert_int_equal(slurp(s, 1000, &got), 5000);
  assert_memory_equal(got, t, 5000);
  free(got);
  source_destroy(s);
  assert_int_equal(source_open_padded(pt, 5000, 5000, &s), 0);
  assert_ptr_equal(source_transform(s)->data, pt);
  source_destroy(s);
  assert_int_equal(source_open_padded(pt, 5000, 4999, &s), 0);
  assert_null(source_transform(s)->data);
  assert_int_equal(slurp(s, 1000, &got), ERR_TOOBIG);
  source_destroy(s);
  assert_int_equal(source_open_padded(pt, 0, 0, &s), 0);
  assert_null(source_transform(s)->data);
  source_destroy(s);
  /* The copying constructor never offers its bytes. */
  assert_int_equal(source_open_buffer(pt, 5000, 0, &s), 0);
  assert_null(source_transform(s)->data);
  source_destroy(s);

  zn = gz(t, 5000, &z);
  pz = malloc(zn + TRANSFORM_PAD);
  assert_non_null(pz);
  memcpy(pz, z, zn);
  memset(pz + zn, 0, TRANSFORM_PAD);
  assert_int_equal(source_open_padded(pz, zn, 0, &s), 0);
  assert_true(source_is_gzip(s));
  assert_null(source_transform(s)->data);
  assert_int_equal(slurp(s, 1000, &got), 5000);
  assert_memory_equal(got, t, 5000);
  free(got);
  source_destroy(s);
  free(pz);
  free(z);
  free(pt);
  free(t);
}

static void
test_short_inputs_are_not_gzip(void **state)
{
  struct source *s;
  char *got;

  (void)state;
  assert_int_equal(source_open_buffer("", 0, 0, &s), 0);
  assert_false(source_is_gzip(s));
  assert_int_equal(slurp(s, 8, &got), 0);
  free(got);
  source_destroy(s);
  assert_int_equal(source_open_buffer("\x1f", 1, 0, &s), 0);
  assert_false(source_is_gzip(s));
  assert_int_equal(slurp(s, 8, &got), 1);
  free(got);
  source_destroy(s);
  assert_int_equal(source_open_buffer("\x1f\x8a", 2, 0, &s), 0);
  assert_false(source_is_gzip(s));
  source_destroy(s);
}

static void
test_invalid_arguments(void **state)
{
  struct source *s;

  (void)state;
  assert_int_equal(source_memory_create(NULL, 5, &s), ERR_INVAL);
  assert_int_equal(source_fd_create(-1, 0, &s), ERR_INVAL);
  assert_int_equal(source_gzip_create(NULL, &s), ERR_INVAL);
  assert_int_equal(source_open_file(NULL, 0, &s), ERR_INVAL);
}

int
main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_memory_reads_and_rewinds),
    cmocka_unit_test(test_transform_view_reads_the_same),
    cmocka_unit_test(test_file_source_and_not_found),
    cmocka_unit_test(test_fd_borrowed_stays_open),
    cmocka_unit_test(test_gzip_detected_and_rewinds),
    cmocka_unit_test(test_gzip_file_detected_by_magic_not_name),
    cmocka_unit_test(test_gzip_concatenated_members),
    cmocka_unit_test(test_gzip_truncated_corrupt_and_trailing_garbage),
    cmocka_unit_test(test_cap_on_delivered_bytes),
    cmocka_unit_test(test_padded_buffer_offered_in_place),
    cmocka_unit_test(test_short_inputs_are_not_gzip),
    cmocka_unit_test(test_invalid_arguments),
  };

  return cmocka_run_group_tests(tests, NULL, NULL);
}
