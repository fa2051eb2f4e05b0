/*
 * backoff.h: capped exponential backoff with full jitter.
 *
 * The delay before retry n (n = 0 for the first retry) is drawn uniformly
 * from [0, min(cap, base * 2^n)] ("full jitter"), which spreads the retries
 * of many clients that failed together instead of making them retry in
 * lockstep. The module is pure: the random source is injectable (tests pass
 * a fixed one) and the caller owns the clock, so it never sleeps or reads
 * the time itself. Defaults: base 1 s, cap 60 s (SPEC section 3).
 */
#ifndef SS_BACKOFF_H
#define SS_BACKOFF_H

#include <stdint.h>

#define BACKOFF_DEFAULT_BASE_MS 1000u
#define BACKOFF_DEFAULT_CAP_MS 60000u

/* Returns a uniformly distributed 64-bit value; ud is the caller's. */
typedef uint64_t (*backoff_rand_fn)(void *ud);

struct backoff {
  uint64_t base_ms;
  uint64_t cap_ms;
  unsigned attempt;        /* retries handed out since the last reset */
  backoff_rand_fn rand;    /* NULL: backoff_rand_default */
  void *rand_ud;           /* borrowed, passed to rand */
};

/*
 * Prepares b with base_ms and cap_ms (0 for either: the default). The
 * random source is the default one until backoff_set_rand.
 */
void backoff_init(struct backoff *b, uint64_t base_ms, uint64_t cap_ms);

/* Replaces the random source (rand NULL: the default one). */
void backoff_set_rand(struct backoff *b, backoff_rand_fn rand, void *ud);

/* The upper bound of the delay of retry attempt: min(cap, base * 2^attempt),
   without overflow. */
uint64_t backoff_ceiling(const struct backoff *b, unsigned attempt);

/*
 * Returns the delay in milliseconds before the next retry, in
 * [0, backoff_ceiling(b, attempt)], and counts the attempt.
 */
uint64_t backoff_next(struct backoff *b);

/* Starts over after a success. */
void backoff_reset(struct backoff *b);

/*
 * A thread-safe random source seeded from the kernel (getrandom), for
 * production use. ud is ignored.
 */
uint64_t backoff_rand_default(void *ud);

#endif
