/*
 * test_backoff.c: the bounds, growth and cap of full-jitter backoff, with
 * an injected random source so that every result is known.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "backoff.h"

static uint64_t
rand_max(void *ud)
{
  (void)ud;
  return UINT64_MAX;
}

static uint64_t
rand_zero(void *ud)
{
  (void)ud;
  return 0;
}

/* Returns the values of an array in turn. */
struct seq {
  const uint64_t *v;
  size_t i;
};

static uint64_t
rand_seq(void *ud)
{
  struct seq *s = ud;

  return s->v[s->i++];
}

static void
test_defaults(void **state)
{
  struct backoff b;

  (void)state;
  backoff_init(&b, 0, 0);
  assert_int_equal(b.base_ms, 1000);
  assert_int_equal(b.cap_ms, 60000);
  assert_int_equal(backoff_ceiling(&b, 0), 1000);
  assert_int_equal(backoff_ceiling(&b, 1), 2000);
  assert_int_equal(backoff_ceiling(&b, 5), 32000);
  assert_int_equal(backoff_ceiling(&b, 6), 60000);
  assert_int_equal(backoff_ceiling(&b, 1000), 60000);
}

static void
test_ceiling_grows_then_caps(void **state)
{
  struct backoff b;
  uint64_t want[] = { 1000, 2000, 4000, 8000, 16000, 32000, 60000, 60000 };

  (void)state;
  backoff_init(&b, 0, 0);
  /* ceiling+1 divides UINT64_MAX+1 only by accident; rand_max gives
     UINT64_MAX % (c+1), so check against an independent computation. */
  backoff_set_rand(&b, rand_max, NULL);
  for(size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
    uint64_t d = backoff_next(&b);

    assert_true(d <= want[i]);
    assert_int_equal(d, UINT64_MAX % (want[i] + 1));
  }
}

static void
test_full_jitter_range(void **state)
{
  struct backoff b;
  uint64_t vals[] = { 0, 1000, 1001, 2000, 2001, 4001 };
  struct seq s = { vals, 0 };

  (void)state;
  backoff_init(&b, 0, 0);
  backoff_set_rand(&b, rand_seq, &s);
  assert_int_equal(backoff_next(&b), 0);        /* attempt 0: [0,1000] */
  assert_int_equal(backoff_next(&b), 1000);     /* attempt 1: [0,2000] */
  assert_int_equal(backoff_next(&b), 1001);     /* attempt 2: [0,4000] */
  assert_int_equal(backoff_next(&b), 2000);     /* attempt 3: [0,8000] */
  backoff_reset(&b);
  assert_int_equal(backoff_next(&b), 2001 % 1001);
  assert_int_equal(backoff_next(&b), 4001 % 2001);
}

static void
test_zero_random_is_zero_delay(void **state)
{
  struct backoff b;

  (void)state;
  backoff_init(&b, 50, 400);
  backoff_set_rand(&b, rand_zero, NULL);
  for(int i = 0; i < 10; i++)
    assert_int_equal(backoff_next(&b), 0);
}

static void
test_cap_below_base_and_huge_values(void **state)
{
  struct backoff b;

  (void)state;
  backoff_init(&b, 5000, 10);
  assert_int_equal(b.cap_ms, 5000);
  assert_int_equal(backoff_ceiling(&b, 3), 5000);
  backoff_init(&b, UINT64_MAX / 3, UINT64_MAX);
  assert_int_equal(backoff_ceiling(&b, 0), UINT64_MAX / 3);
  assert_int_equal(backoff_ceiling(&b, 1), (UINT64_MAX / 3) * 2);
  assert_int_equal(backoff_ceiling(&b, 2), UINT64_MAX);
  assert_int_equal(backoff_ceiling(&b, 200), UINT64_MAX);
}

static void
test_default_random_spreads(void **state)
{
  struct backoff b;
  uint64_t lo = UINT64_MAX, hi = 0;

  (void)state;
  backoff_init(&b, 1000, 1000);
  for(int i = 0; i < 2000; i++) {
    uint64_t d = backoff_next(&b);

    assert_true(d <= 1000);
    if(d < lo)
      lo = d;
    if(d > hi)
      hi = d;
  }
  /* 2000 uniform draws over [0,1000] cover nearly all of it. */
  assert_true(lo < 50);
  assert_true(hi > 950);
}

int
main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_defaults),
    cmocka_unit_test(test_ceiling_grows_then_caps),
    cmocka_unit_test(test_full_jitter_range),
    cmocka_unit_test(test_zero_random_is_zero_delay),
    cmocka_unit_test(test_cap_below_base_and_huge_values),
    cmocka_unit_test(test_default_random_spreads),
  };

  return cmocka_run_group_tests(tests, NULL, NULL);
}
