/*
 * test_buf.c: the size cap and growth of struct buf.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>
#include <stdlib.h>

#include "buf.h"
#include "err.h"

static void
test_append_within_cap(void **state)
{
  struct buf b;

  (void)state;
  buf_init(&b, 10);
  assert_int_equal(buf_puts(&b, "hello"), 0);
  assert_int_equal(buf_printf(&b, "%d", 1234), 0);
  assert_int_equal(b.len, 9);
  assert_string_equal(b.data, "hello1234");
  buf_free(&b);
}

static void
test_cap_refuses_and_keeps_contents(void **state)
{
  struct buf b;

  (void)state;
  buf_init(&b, 8);
  assert_int_equal(buf_puts(&b, "12345678"), 0);
  assert_int_equal(buf_putc(&b, 'x'), ERR_TOOBIG);
  assert_int_equal(buf_printf(&b, "%s", "y"), ERR_TOOBIG);
  assert_int_equal(b.len, 8);
  assert_string_equal(b.data, "12345678");
  assert_true(b.cap <= 9);
  buf_free(&b);
}

static void
test_huge_request_does_not_overflow(void **state)
{
  struct buf b;

  (void)state;
  buf_init(&b, (size_t)-1);
  assert_int_equal(buf_putc(&b, 'a'), 0);
  assert_int_equal(buf_reserve(&b, (size_t)-1), ERR_TOOBIG);
  buf_free(&b);
}

static void
test_detach_and_truncate(void **state)
{
  struct buf b;
  size_t len;
  char *p;

  (void)state;
  buf_init(&b, 100);
  assert_int_equal(buf_puts(&b, "abcdef"), 0);
  buf_truncate(&b, 3);
  assert_string_equal(b.data, "abc");
  p = buf_detach(&b, &len);
  assert_int_equal(len, 3);
  assert_string_equal(p, "abc");
  assert_null(b.data);
  free(p);
  buf_free(NULL);
}

int
main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_append_within_cap),
    cmocka_unit_test(test_cap_refuses_and_keeps_contents),
    cmocka_unit_test(test_huge_request_does_not_overflow),
    cmocka_unit_test(test_detach_and_truncate),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
