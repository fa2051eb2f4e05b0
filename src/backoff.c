/*
 * backoff.c: capped exponential backoff with full jitter (backoff.h).
 *
 * The default random source is a per-thread xorshift64* generator seeded
 * once from getrandom(2): jitter needs spread, not cryptographic strength,
 * and a per-thread state needs no lock.
 */
#include "backoff.h"

#include <stddef.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

void
backoff_init(struct backoff *b, uint64_t base_ms, uint64_t cap_ms)
{
  b->base_ms = base_ms ? base_ms : BACKOFF_DEFAULT_BASE_MS;
  b->cap_ms = cap_ms ? cap_ms : BACKOFF_DEFAULT_CAP_MS;
  if(b->cap_ms < b->base_ms)
    b->cap_ms = b->base_ms;
  b->attempt = 0;
  b->rand = NULL;
  b->rand_ud = NULL;
}

void
backoff_set_rand(struct backoff *b, backoff_rand_fn rand, void *ud)
{
  b->rand = rand;
  b->rand_ud = ud;
}

uint64_t
backoff_ceiling(const struct backoff *b, unsigned attempt)
{
  uint64_t c = b->base_ms;

  /* Doubling stops at the cap, so the shift can never overflow. */
  for(unsigned i = 0; i < attempt && c < b->cap_ms; i++)
    c = c > UINT64_MAX / 2 ? UINT64_MAX : c * 2;
  return c < b->cap_ms ? c : b->cap_ms;
}

uint64_t
backoff_next(struct backoff *b)
{
  uint64_t ceiling = backoff_ceiling(b, b->attempt);
  uint64_t r = b->rand ? b->rand(b->rand_ud) : backoff_rand_default(NULL);

  if(b->attempt < 64)
    b->attempt++;
  /* Uniform over [0, ceiling]; the modulo bias is negligible for ceilings
     of minutes against a 64-bit draw. */
  if(ceiling == UINT64_MAX)
    return r;
  return r % (ceiling + 1);
}

void
backoff_reset(struct backoff *b)
{
  b->attempt = 0;
}

uint64_t
backoff_rand_default(void *ud)
{
  static _Thread_local uint64_t state;
  uint64_t x;

  (void)ud;
  if(!state) {
    if(getrandom(&state, sizeof(state), GRND_NONBLOCK) != sizeof(state))
      state = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32);
    if(!state)
      state = 0x9E3779B97F4A7C15ull;
  }
  x = state;
  x ^= x >> 12;
  x ^= x << 25;
  x ^= x >> 27;
  state = x;
  return x * 0x2545F4914F6CDD1Dull;
}
