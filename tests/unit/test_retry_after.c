/*
 * test_retry_after.c: the three retry headers, their precedence and bounds.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "err.h"
#include "retry_after.h"

/* 1994-11-06T08:49:37Z, the RFC's example date. */
#define RFC_DATE 784111777

static void
test_delta_seconds(void **state)
{
  int64_t ms = -1;

  (void)state;
  assert_int_equal(retry_after_parse("2", 0, &ms), 0);
  assert_int_equal(ms, 2000);
  assert_int_equal(retry_after_parse(" \t120 ", 0, &ms), 0);
  assert_int_equal(ms, 120000);
  assert_int_equal(retry_after_parse("0", 0, &ms), 0);
  assert_int_equal(ms, 0);
}

static void
test_delta_seconds_bounded(void **state)
{
  int64_t ms = -1;

  (void)state;
  assert_int_equal(retry_after_parse("86400", 0, &ms), 0);
  assert_int_equal(ms, RETRY_AFTER_MAX_MS);
  /* Far beyond int64: saturates instead of overflowing. */
  assert_int_equal(retry_after_parse("99999999999999999999999999", 0, &ms), 0);
  assert_int_equal(ms, RETRY_AFTER_MAX_MS);
}

static void
test_rejects_garbage(void **state)
{
  int64_t ms = 77;

  (void)state;
  assert_int_equal(retry_after_parse("", 0, &ms), ERR_PARSE);
  assert_int_equal(retry_after_parse("-5", 0, &ms), ERR_PARSE);
  assert_int_equal(retry_after_parse("2.5", 0, &ms), ERR_PARSE);
  assert_int_equal(retry_after_parse("2s", 0, &ms), ERR_PARSE);
  assert_int_equal(retry_after_parse("soon", 0, &ms), ERR_PARSE);
  assert_int_equal(retry_after_parse("Sun, 06 Nov 1994 08:49:37 UTC", 0, &ms),
                   ERR_PARSE);
  assert_int_equal(retry_after_parse("Sun, 31 Nov 1994 08:49:37 GMT", 0, &ms),
                   ERR_PARSE);
  assert_int_equal(retry_after_parse("Sun, 06 Nov 1994 24:49:37 GMT", 0, &ms),
                   ERR_PARSE);
  assert_int_equal(retry_after_parse("Sun, 06 Nov 1994 08:49:37 GMTx", 0, &ms),
                   ERR_PARSE);
  assert_int_equal(retry_after_parse(NULL, 0, &ms), ERR_INVAL);
  assert_int_equal(ms, 77);
}

static void
test_imf_fixdate(void **state)
{
  int64_t ms = -1;

  (void)state;
  assert_int_equal(retry_after_parse("Sun, 06 Nov 1994 08:49:37 GMT",
                                     RFC_DATE - 30, &ms), 0);
  assert_int_equal(ms, 30000);
  /* A date in the past means retry now. */
  assert_int_equal(retry_after_parse("Sun, 06 Nov 1994 08:49:37 GMT",
                                     RFC_DATE + 5, &ms), 0);
  assert_int_equal(ms, 0);
  /* A date far ahead is bounded. */
  assert_int_equal(retry_after_parse("Fri, 31 Dec 9999 23:59:59 GMT",
                                     RFC_DATE, &ms), 0);
  assert_int_equal(ms, RETRY_AFTER_MAX_MS);
  /* Leap day. */
  assert_int_equal(retry_after_parse("Thu, 29 Feb 2024 00:00:10 GMT",
                                     1709164800, &ms), 0);
  assert_int_equal(ms, 10000);
  assert_int_equal(retry_after_parse("Thu, 29 Feb 2023 00:00:10 GMT",
                                     1709164800, &ms), ERR_PARSE);
}

static void
test_rfc850_and_asctime(void **state)
{
  int64_t ms = -1;

  (void)state;
  assert_int_equal(retry_after_parse("Sunday, 06-Nov-94 08:49:37 GMT",
                                     RFC_DATE - 7, &ms), 0);
  assert_int_equal(ms, 7000);
  assert_int_equal(retry_after_parse("Sun Nov  6 08:49:37 1994",
                                     RFC_DATE - 9, &ms), 0);
  assert_int_equal(ms, 9000);
  assert_int_equal(retry_after_parse("Sun Nov 16 08:49:37 1994",
                                     RFC_DATE + 10 * 86400 - 1, &ms), 0);
  assert_int_equal(ms, 1000);
}

static void
test_ms_headers(void **state)
{
  int64_t ms = -1;

  (void)state;
  assert_int_equal(retry_after_parse_ms("1500", &ms), 0);
  assert_int_equal(ms, 1500);
  assert_int_equal(retry_after_parse_ms("250.75", &ms), 0);
  assert_int_equal(ms, 250);
  assert_int_equal(retry_after_parse_ms("99999999999", &ms), 0);
  assert_int_equal(ms, RETRY_AFTER_MAX_MS);
  assert_int_equal(retry_after_parse_ms("x", &ms), ERR_PARSE);
  assert_int_equal(retry_after_parse_ms("", &ms), ERR_PARSE);
}

static void
test_pick_order(void **state)
{
  int64_t ms = -1;

  (void)state;
  assert_int_equal(retry_after_pick("100", "200", "3", 0, &ms), 0);
  assert_int_equal(ms, 100);
  assert_int_equal(retry_after_pick(NULL, "200", "3", 0, &ms), 0);
  assert_int_equal(ms, 200);
  assert_int_equal(retry_after_pick(NULL, NULL, "3", 0, &ms), 0);
  assert_int_equal(ms, 3000);
  /* An unparsable header is skipped, not fatal. */
  assert_int_equal(retry_after_pick("bad", NULL, "4", 0, &ms), 0);
  assert_int_equal(ms, 4000);
  assert_int_equal(retry_after_pick(NULL, NULL, NULL, 0, &ms), ERR_NOTFOUND);
  assert_int_equal(retry_after_pick("x", "y", "z", 0, &ms), ERR_NOTFOUND);
}

int
main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_delta_seconds),
    cmocka_unit_test(test_delta_seconds_bounded),
    cmocka_unit_test(test_rejects_garbage),
    cmocka_unit_test(test_imf_fixdate),
    cmocka_unit_test(test_rfc850_and_asctime),
    cmocka_unit_test(test_ms_headers),
    cmocka_unit_test(test_pick_order),
  };

  return cmocka_run_group_tests(tests, NULL, NULL);
}
